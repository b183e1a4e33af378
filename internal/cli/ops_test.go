package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/auditrelay/auditrelay/internal/store"
)

// opsConfig writes a configuration with a PingOne source "p1" and a
// CyberArk source "ca1" reading api (a loopback base URL), both into a file
// sink, and returns its path and data directory.
func opsConfig(t *testing.T, api string) (cfgPath, dataDir string) {
	t.Helper()
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cr3t-value-ops"), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir = filepath.Join(dir, "data")
	cfg := fmt.Sprintf(`data_dir: %s
sources:
  - name: p1
    pingone:
      environment_id: 0b6e7c1a-0000-4000-8000-000000000001
      client_id: client-1
      client_secret: "${file:%[2]s}"
      api_url: %[3]s
      auth_url: %[3]s
      lookback: 2h
  - name: ca1
    cyberark:
      identity_url: %[3]s
      app_id: auditrelay
      client_id: svc@example.com
      client_secret: "${file:%[2]s}"
      audit_url: %[3]s
      api_key: "${file:%[2]s}"
      lookback: 2h
sinks:
  - name: archive
    sources: [p1, ca1]
    file: { path: %[4]s }
`, dataDir, secret, api, filepath.Join(dir, "out", "a.ndjson"))
	cfgPath = filepath.Join(dir, "auditrelay.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dataDir
}

// TestCheckpointUnknownSource: a source name that is not configured is a
// usage error naming the configured ones, never "nothing to do".
func TestCheckpointUnknownSource(t *testing.T) {
	cfg, _ := opsConfig(t, "http://127.0.0.1:1")
	for _, verb := range []string{"show", "reset"} {
		out, errs, code := runMain(t, "checkpoint", verb, "--config", cfg, "--source", "nope")
		if code != exitUsage {
			t.Errorf("checkpoint %s --source nope: exit %d, want %d; stdout %q", verb, code, exitUsage, out)
		}
		if want := `--source "nope" is not configured; configured: p1, ca1`; !strings.Contains(errs, want) {
			t.Errorf("checkpoint %s --source nope: stderr lacks %q:\n%s", verb, want, errs)
		}
	}
}

// openStore opens the store of dataDir for a test to prepare, and closes
// it at cleanup unless the test closes it first.
func openStore(t *testing.T, dataDir string) *store.Store {
	t.Helper()
	st, err := store.Open(dataDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// line returns the first line of out whose fields start with fields, or
// "" when none does.
func line(out string, fields ...string) string {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= len(fields) && slices.Equal(f[:len(fields)], fields) {
			return l
		}
	}
	return ""
}

// TestStatusNever: a sink that never sent shows "never", not "- ago".
func TestStatusNever(t *testing.T) {
	cfg, dataDir := opsConfig(t, "http://127.0.0.1:1")
	st := openStore(t, dataDir)
	if err := st.SetSinks([]string{"archive"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	out, errs, code := runMain(t, "status", "--config", cfg)
	if code != exitOK {
		t.Fatalf("status: exit %d: %s", code, errs)
	}
	if l := line(out, "archive"); !slices.Equal(strings.Fields(l), []string{"archive", "0", "0", "0", "never", "-"}) {
		t.Errorf("sink row %q, want archive 0 0 0 never -; output:\n%s", l, out)
	}
	if strings.Contains(out, "- ago") {
		t.Errorf("status shows \"- ago\":\n%s", out)
	}
}
