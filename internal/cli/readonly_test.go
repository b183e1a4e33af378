package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadOnlyCommandsWithoutSecrets runs status, checkpoint show and
// store parked from a shell that lacks the daemon's secrets: they only read
// the store, so they work, while the commands that use the secrets still
// refuse the file.
func TestReadOnlyCommandsWithoutSecrets(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "auditrelay.yaml")
	body := `data_dir: ` + filepath.Join(dir, "data") + `
sources:
  - name: pingone-eu
    pingone: {region: EU, environment_id: env-1, client_id: c, client_secret: "${env:AR_TEST_UNSET_PINGONE}"}
  - name: cyberark
    cyberark:
      identity_url: "https://abc1234.id.cyberark.cloud"
      app_id: auditrelay
      client_id: "svc-audit@cyberark.cloud.12345"
      client_secret: "${env:AR_TEST_UNSET_CYBERARK}"
      audit_url: "https://mytenant.audit.cyberark.cloud"
      api_key: "${file:/nonexistent/auditrelay/api_key}"
sinks:
  - name: sekoia
    sources: [cyberark]
    sekoia: {intake_key: "${env:AR_TEST_UNSET_SEKOIA}"}
  - name: archive
    sources: [pingone-eu]
    file: {path: ` + filepath.Join(dir, "events.ndjson") + `}
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"status", "--config", cfg},
		{"status", "--config", cfg, "--json"},
		{"checkpoint", "show", "--config", cfg},
		{"store", "parked", "--config", cfg},
	} {
		out, errs, code := runMain(t, args...)
		if code != exitOK || strings.Contains(errs, "AR_TEST_UNSET") {
			t.Errorf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
		}
	}
	for _, cmd := range []string{"validate", "run"} {
		_, errs, code := runMain(t, cmd, "--config", cfg)
		if code != exitUsage || !strings.Contains(errs, "environment variable AR_TEST_UNSET_PINGONE is not set") ||
			!strings.Contains(errs, "cannot read /nonexistent/auditrelay/api_key") {
			t.Errorf("%s: exit %d, stderr:\n%s\nwant exit %d naming every unresolved secret", cmd, code, errs, exitUsage)
		}
	}
}
