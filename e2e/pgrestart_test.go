package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/store/postgres/pgtest"
)

// TestPostgresRestart stops PostgreSQL at once (pg_ctl stop -m immediate)
// in the middle of a backlog read by two replicas, keeps it down for a few
// seconds, and starts it again on the same socket. The replicas keep
// running: their logs say polling is paused and the heartbeat fails while
// the database is down, and that the heartbeat recovered; they resume
// where the last commits left off, and each file sink ends with every
// event exactly once. The test runs on a cluster of its own, so that the
// other tests' databases stay up.
func TestPostgresRestart(t *testing.T) {
	bin := binary(t)
	srv := pgtest.Own(t)
	dsn := srv.NewDatabase(t)
	installCommitLog(t, dsn)
	dir := t.TempDir()
	w := newWorld(t, 2)
	now := time.Now()
	for _, e := range w.envs {
		w.emu.Backlog(w.gen, e.ID, w.srv.URL, 4000, now.Add(-time.Hour), now.Add(-10*time.Second))
	}
	base := w.config(t, dir, "")
	// Two requests a second on the licence: the backlog takes about 20 s
	// to read, and the outage falls in its middle. The lease outlasts the
	// outage, so that no work moves: this is about pausing and resuming.
	rewrite(t, base, "rate_limit: 10", "rate_limit: 2")
	const ttl, down = 10 * time.Second, 4 * time.Second
	c := startCluster(t, bin, dsn, base, dir, 2, ttl, w.environ())
	archive := filepath.Join(dir, "out", "a.ndjson")
	want := w.want()
	// Counting only the lines appended since the last look keeps the
	// wait light on a loaded machine, so the outage starts near a quarter.
	lines := &lineCounter{path: archive}
	for deadline := time.Now().Add(60 * time.Second); lines.count() < len(want)/4; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the archive sink holds %d of %d events after 60s", lines.count(), len(want))
		}
	}
	before := lines.count()
	srv.Crash()
	crashedAt := time.Now()
	time.Sleep(down)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	upAt := time.Now()
	t.Logf("PostgreSQL down for %v (immediate stop to accepting connections) with %d of %d events in the archive", upAt.Sub(crashedAt).Round(10*time.Millisecond), before, len(want))
	at, by := firstCommit(t, dsn, "source", "env-1", "", upAt, 60*time.Second)
	t.Logf("first page of env-1 committed by %s %v after PostgreSQL accepted connections again", by, at.Sub(upAt).Round(10*time.Millisecond))
	for _, p := range c.procs {
		select {
		case <-p.done:
			t.Fatalf("a replica exited while PostgreSQL was down: %v", p.err)
		default:
		}
	}
	waitAll(t, dir, want, 90*time.Second)
	c.stop()
	compare(t, "archive", want, sinkIDs(t, archive))
	compare(t, "second", want, sinkIDs(t, filepath.Join(dir, "out", "b.ndjson")))
	if before >= len(want) {
		t.Errorf("all %d events were delivered before the outage: the test proves less than it claims", len(want))
	}
	for _, line := range []string{
		"cannot store polled events; polling paused, nothing is lost",
		"store heartbeat failed",
		"store heartbeat recovered",
	} {
		n, first := c.logCount(line), c.firstLine(line)
		t.Logf("%d log lines %q, the first: %s", n, line, first)
		if n == 0 {
			t.Errorf("no replica logged %q", line)
		}
	}
	for _, l := range c.logs {
		assertNoSecrets(t, l, w)
	}
}

// rewrite replaces old with new in the file at path, which must hold it.
func rewrite(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not hold %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), old, new)), 0o600); err != nil {
		t.Fatal(err)
	}
}
