package cli

import (
	"strings"
	"testing"
)

// TestEmulateUnknownKind: a missing or unknown kind lists every emulator
// and exits 2.
func TestEmulateUnknownKind(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"emulate"}, "usage: auditrelay emulate KIND"},
		{[]string{"emulate", "kafka"}, `unknown emulator "kafka"; one of: pingone, cyberark, sentinel, sekoia, okta, entra, splunk, elasticsearch, syslog`},
		{[]string{"emulate", "--listen", "127.0.0.1:0"}, `unknown emulator "--listen"; one of: pingone, cyberark, sentinel, sekoia, okta, entra, splunk, elasticsearch, syslog`},
	} {
		out, errs, code := runMain(t, tc.args...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d", tc.args, code, exitUsage)
		}
		if out != "" {
			t.Errorf("%v: stdout %q, want nothing", tc.args, out)
		}
		if !strings.Contains(errs, tc.want) {
			t.Errorf("%v: stderr lacks %q:\n%s", tc.args, tc.want, errs)
		}
		for _, kind := range []string{"\n  pingone ", "\n  cyberark ", "\n  sentinel ", "\n  sekoia ", "\n  okta ", "\n  entra ", "\n  splunk ", "\n  elasticsearch ", "\n  syslog "} {
			if !strings.Contains(errs, kind) {
				t.Errorf("%v: usage lacks the %s emulator:\n%s", tc.args, strings.TrimSpace(kind), errs)
			}
		}
	}
}
