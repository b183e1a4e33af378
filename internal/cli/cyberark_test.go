package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestEmulateCyberArkAndSekoia(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"emulate", "cyberark", "--listen", "127.0.0.1:0", "--backlog", "10"}, []string{"CyberArk emulator on http://127.0.0.1:", "app_id: auditrelay", "api_key: demo-api-key"}},
		{[]string{"emulate", "sekoia", "--listen", "127.0.0.1:0"}, []string{"Sekoia.io intake emulator on http://127.0.0.1:", "intake_key: demo-intake-key", "accepted 0 messages"}},
	} {
		// A context already done: the command prints its setup, serves,
		// and stops at once.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var out, errb bytes.Buffer
		code := Main(ctx, tc.args, Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
		if code != exitOK {
			t.Errorf("%v: exit %d: %s", tc.args, code, errb.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out.String())
			}
		}
	}
}
