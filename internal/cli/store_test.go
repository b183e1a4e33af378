package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/auditrelay/auditrelay/internal/store/bolt"
)

// writeConfig writes a configuration with one file sink, "archive", and
// data_dir dir, and returns its path.
func writeConfig(t *testing.T, dir string) string {
	t.Helper()
	cfg := fmt.Sprintf(`data_dir: %s
sources:
  - name: pingone-na
    pingone:
      environment_id: 0b5b1c9e-7d4a-4f0e-9a51-3c2d1e0f9a8b
      client_id: 6f1c2d3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f
      client_secret: not-a-real-secret
sinks:
  - name: archive
    sources: [pingone-na]
    file: { path: %s }
`, dir, filepath.Join(dir, "out.ndjson"))
	path := filepath.Join(dir, "auditrelay.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestStatusShowsCorruptRecords(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	st, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetSinks([]string{"archive"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	// the state a sink runner leaves after skipping two unreadable records
	db, err := bbolt.Open(filepath.Join(dir, bolt.FileName), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("sinks")).Bucket([]byte("archive")).Put([]byte("state"), []byte(`{"corrupt":2}`))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, errs, code := runMain(t, "status", "--config", cfg)
	if code != exitOK {
		t.Fatalf("status exit %d: %s", code, errs)
	}
	want := "CORRUPT archive: 2 unreadable spool records skipped, kept in " + filepath.Join(dir, "parked", "archive.ndjson")
	if !strings.Contains(out, want) {
		t.Fatalf("status output lacks %q:\n%s", want, out)
	}
}

func TestStoreCompact(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	st, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetSinks([]string{"archive"}); err != nil {
		t.Fatal(err)
	}
	// while the store is held, as by a running daemon, compaction is refused
	_, errs, code := runMain(t, "store", "compact", "--config", cfg)
	if code != exitFailure || !strings.Contains(errs, "needs the daemon stopped") || !strings.Contains(errs, "already running with pid") {
		t.Errorf("compact of a held store: exit %d, stderr %q", code, errs)
	}
	st.Close()
	out, errs, code := runMain(t, "store", "compact", "--config", cfg)
	if code != exitOK || !strings.Contains(out, filepath.Join(dir, bolt.FileName)+" compacted: ") {
		t.Fatalf("compact: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	st, err = bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatalf("store unusable after compaction: %v", err)
	}
	defer st.Close()
	if off, err := st.Offset("archive"); err != nil || off != 0 {
		t.Fatalf("sink offset after compaction = %d, %v", off, err)
	}
	if _, _, code := runMain(t, "store", "vacuum"); code != exitUsage {
		t.Errorf("unknown store verb: exit %d, want %d", code, exitUsage)
	}
}
