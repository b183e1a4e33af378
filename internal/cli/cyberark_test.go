package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEmulateCyberArkSekoiaOkta(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "okta.pem")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"emulate", "cyberark", "--listen", "127.0.0.1:0", "--backlog", "10"}, []string{"CyberArk emulator on http://127.0.0.1:", "app_id: auditrelay", "api_key: demo-api-key"}},
		{[]string{"emulate", "sekoia", "--listen", "127.0.0.1:0"}, []string{"Sekoia.io intake emulator on http://127.0.0.1:", "intake_key: demo-intake-key", "accepted 0 messages"}},
		{[]string{"emulate", "okta", "--listen", "127.0.0.1:0", "--backlog", "10", "--key-file", keyFile},
			[]string{"Okta emulator on http://127.0.0.1:", "api_token: " + demoOktaToken, "client_id: " + demoOktaClientID + "  private_key_file: " + keyFile}},
		{[]string{"emulate", "splunk", "--listen", "127.0.0.1:0"},
			[]string{"Splunk HTTP Event Collector emulator on http://127.0.0.1:", "token: " + demoSplunkToken, "indexed 0 events"}},
		{[]string{"emulate", "elasticsearch", "--listen", "127.0.0.1:0"},
			[]string{"Elasticsearch emulator on http://127.0.0.1:", "api_key: " + demoElasticsearchAPIKey, "indexed 0 documents"}},
		{[]string{"emulate", "elasticsearch", "--listen", "127.0.0.1:0", "--opensearch"}, []string{"OpenSearch emulator on http://127.0.0.1:"}},
		{[]string{"emulate", "entra", "--listen", "127.0.0.1:0", "--backlog", "10"},
			[]string{"Entra ID + Microsoft Graph emulator on http://127.0.0.1:", "tenant_id: " + demoEntraTenant, "client_secret: " + demoEntraSecret}},
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

// TestEmulateOktaKeyFile: the written key is private to its owner, and an
// existing file is never overwritten.
func TestEmulateOktaKeyFile(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "okta.pem")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	env := Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
	if code := Main(ctx, []string{"emulate", "okta", "--listen", "127.0.0.1:0", "--key-file", keyFile}, env); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v, %v: want mode 0600", fi, err)
	}
	before, _ := os.ReadFile(keyFile)
	if code := Main(ctx, []string{"emulate", "okta", "--listen", "127.0.0.1:0", "--key-file", keyFile}, env); code != exitFailure {
		t.Fatalf("a second run over the key file exits %d, want %d", code, exitFailure)
	}
	if after, _ := os.ReadFile(keyFile); string(after) != string(before) || !strings.Contains(errb.String(), "does not exist yet") {
		t.Fatalf("the key file was overwritten, or the error does not say why: %s", errb.String())
	}
}
