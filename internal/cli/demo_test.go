package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/store"
)

func writeFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestDemoRefusesForeignDir: a --dir with a real store in it is left
// untouched, with exit 2 and the way out.
func TestDemoRefusesForeignDir(t *testing.T) {
	dir := t.TempDir()
	kept := []string{"data/auditrelay.db", "events.ndjson", "events.ndjson.1", "auditrelay.log"}
	writeFiles(t, dir, kept...)
	out, errs, code := runMain(t, "demo", "--dir", dir, "--duration", "1ms")
	if code != exitUsage {
		t.Errorf("demo in a foreign directory: exit %d, want %d; stdout:\n%s", code, exitUsage, out)
	}
	if !strings.Contains(errs, "is not empty and was not made by auditrelay demo") || !strings.Contains(errs, "give it a new or empty one") {
		t.Errorf("stderr does not say why and what to do:\n%s", errs)
	}
	for _, n := range kept {
		if b, err := os.ReadFile(filepath.Join(dir, n)); err != nil || string(b) != n {
			t.Errorf("%s after the refused demo: %q, %v; want it untouched", n, b, err)
		}
	}
	if exists(filepath.Join(dir, demoMarker)) {
		t.Error("the refused demo marked the directory as its own")
	}
}

// TestPrepareDemoDir: a new or empty directory is marked; a marked one
// loses the previous run's store, output and log, and nothing else.
func TestPrepareDemoDir(t *testing.T) {
	for _, dir := range []string{filepath.Join(t.TempDir(), "new"), t.TempDir()} {
		if refused, err := prepareDemoDir(dir); err != nil || refused {
			t.Fatalf("prepareDemoDir(%s) = %v, %v", dir, refused, err)
		}
		if !exists(filepath.Join(dir, demoMarker)) {
			t.Errorf("%s is not marked", dir)
		}
	}
	dir := t.TempDir()
	if _, err := prepareDemoDir(dir); err != nil {
		t.Fatal(err)
	}
	demo := []string{"data/auditrelay.db", "data/parked/sekoia.ndjson", "events.ndjson", "events.ndjson.1", "events.ndjson.2", "auditrelay.log"}
	writeFiles(t, dir, demo...)
	writeFiles(t, dir, "notes.txt")
	if refused, err := prepareDemoDir(dir); err != nil || refused {
		t.Fatalf("prepareDemoDir of a marked directory = %v, %v", refused, err)
	}
	for _, n := range demo {
		if exists(filepath.Join(dir, n)) {
			t.Errorf("%s of the previous run is still there", n)
		}
	}
	for _, n := range []string{"notes.txt", demoMarker} {
		if !exists(filepath.Join(dir, n)) {
			t.Errorf("%s was removed; the demo did not make it", n)
		}
	}
}

// TestDemoProgress: the live line counts each sink's deliveries apart,
// never their sum as if it were events.
func TestDemoProgress(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	snap := store.Snapshot{
		Sources: []store.SourceState{
			{Name: "demo-env-1", Events: 700, Watermark: now.Add(-6 * time.Second)},
			{Name: "demo-cyberark", Events: 300},
		},
		Sinks: []store.SinkState{
			{Name: "sentinel", Delivered: 650},
			{Name: "file", Delivered: 700},
			{Name: "sekoia", Delivered: 300},
		},
		SpoolCount: 50,
	}
	got := demoProgress(snap, now, 95)
	want := "10:00:00  polled    1000      95 events/s  delivered: file 700, sekoia 300, sentinel 650  spool    50  lag: cyberark -, env-1 6s"
	if got != want {
		t.Errorf("demoProgress =\n%q, want\n%q", got, want)
	}
}
