package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/store/postgres/pgtest"
)

// TestMigrateToPostgres runs the daemon on the embedded store while the API
// serves a backlog and live events, stops it part-way, migrates its store
// into PostgreSQL with `store migrate`, and runs a replica on PostgreSQL:
// each sink ends with every event exactly once, so the replica resumed
// where the embedded store stopped (cursors, dedup ids, spool, offsets) and
// sent nothing again. A migration while the daemon runs is refused.
func TestMigrateToPostgres(t *testing.T) {
	bin := binary(t)
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	w := newWorld(t, 2)
	now := time.Now()
	w.emu.Backlog(w.gen, w.envs[0].ID, w.srv.URL, 4000, now.Add(-time.Hour), now.Add(-10*time.Second))
	w.emu.Backlog(w.gen, w.envs[1].ID, w.srv.URL, 1500, now.Add(-30*time.Minute), now.Add(-10*time.Second))
	live, stopLive := context.WithCancel(context.Background())
	var gens sync.WaitGroup
	for i, e := range w.envs {
		g := emulator.NewGenerator(uint64(300 + i))
		gens.Go(func() { w.emu.Run(live, g, e.ID, w.srv.URL, 100, time.Second) })
	}
	defer func() { stopLive(); gens.Wait() }()
	// A third sink cannot write while the embedded store runs (a file
	// where its directory should be): its offset stays at 0 and the spool
	// keeps every event for it, to be read from PostgreSQL.
	blocker := filepath.Join(dir, "blocked")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	late := filepath.Join(blocker, "c.ndjson")
	cfg := w.config(t, dir, "  - name: late\n    file: { path: "+late+", batch_size: 500 }\n")
	pgcfg := replicaFiles(t, cfg, dir, 1, haLeaseTTL)[0]
	environ := append(w.environ(), "AUDITRELAY_POSTGRES_DSN="+dsn)
	migrate := func() (string, error) {
		cmd := exec.Command(bin, "store", "migrate", "--from", filepath.Join(dir, "data"), "--config", pgcfg)
		cmd.Env = environ
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	p := start(t, bin, cfg, w.environ(), filepath.Join(dir, "bolt.log"))
	deadline := time.Now().Add(30 * time.Second)
	for len(sinkIDs(t, filepath.Join(dir, "out", "a.ndjson"))) < 1000 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := migrate(); err == nil || !strings.Contains(out, "needs the daemon stopped") {
		t.Errorf("migration while the daemon runs: %v: %s", err, out)
	}
	p.stop(t)
	delivered := len(sinkIDs(t, filepath.Join(dir, "out", "a.ndjson")))
	out, err := migrate()
	if err != nil || !strings.Contains(out, "migrated ") {
		t.Fatalf("store migrate: %v: %s", err, out)
	}
	t.Logf("%d events delivered before the migration; %s", delivered, strings.TrimSpace(out))
	if m := regexp.MustCompile(`, (\d+) spool entries`).FindStringSubmatch(out); m == nil || m[1] == "0" {
		t.Errorf("no spool entry migrated: the test proves less than it claims: %s", out)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}

	r := start(t, bin, pgcfg, environ, filepath.Join(dir, "pg.log"))
	time.Sleep(2 * time.Second)
	stopLive()
	gens.Wait()
	want := w.want()
	waitAll(t, dir, want, 90*time.Second)
	for deadline := time.Now().Add(60 * time.Second); !covers(sinkIDs(t, late), want) && time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
	}
	r.stop(t)
	compare(t, "archive", want, sinkIDs(t, filepath.Join(dir, "out", "a.ndjson")))
	compare(t, "second", want, sinkIDs(t, filepath.Join(dir, "out", "b.ndjson")))
	compare(t, "late", want, sinkIDs(t, late))
	if delivered >= len(want) {
		t.Errorf("all %d events were delivered before the migration: the test proves less than it claims", len(want))
	}
}
