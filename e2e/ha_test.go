package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/store/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// haLeaseTTL is the lease of the failover tests: short, so that a test
// sees many takeovers.
const haLeaseTTL = 3 * time.Second

// replicaConfigs writes one configuration per replica: the same sources,
// sinks and PostgreSQL store, each with its own data_dir and replica_id.
func replicaConfigs(t *testing.T, w *world, dir string, n int) []string {
	t.Helper()
	base, err := os.ReadFile(w.config(t, dir, ""))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for i := range n {
		text := strings.Replace(string(base), "data_dir: "+filepath.Join(dir, "data"), "data_dir: "+filepath.Join(dir, fmt.Sprint("data-r", i)), 1)
		text += fmt.Sprintf("store:\n  postgres:\n    dsn: \"${env:AUDITRELAY_POSTGRES_DSN}\"\n    lease_ttl: %s\n    replica_id: r%d\n", haLeaseTTL, i)
		p := filepath.Join(dir, fmt.Sprintf("r%d.yaml", i))
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// leaseOwner reads who holds the lease of a source, and whether it is live.
func leaseOwner(t *testing.T, dsn, kind, name string) (owner string, live bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	err = conn.QueryRow(ctx, `SELECT owner, expires_at > now() FROM leases WHERE kind = $1 AND name = $2`, kind, name).Scan(&owner, &live)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" {
		return "", false // no replica created the schema yet
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return owner, live
}

// waitOwner waits until a live replica other than not holds the lease, and
// returns it and how long that took.
func waitOwner(t *testing.T, dsn, kind, name, not string, timeout time.Duration) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if o, live := leaseOwner(t, dsn, kind, name); live && o != "" && o != not {
			return o, time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s %s not owned by a live replica other than %q within %v", kind, name, not, timeout)
	return "", 0
}

// TestFailover runs three replicas on one PostgreSQL store while the API
// serves a backlog, live events and faults. The owner of a source is
// killed with SIGKILL five times at random moments (and restarted), and
// one replica is stopped with SIGSTOP for longer than its lease, then
// resumed: every source is owned again within lease_ttl plus a poll
// interval (and the heartbeat's period), nothing is lost, and duplicates
// stay within one batch per kill per sink.
func TestFailover(t *testing.T) {
	bin := binary(t)
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	w := newWorld(t, 4)
	now := time.Now()
	for i, e := range w.envs {
		w.emu.Backlog(w.gen, e.ID, w.srv.URL, 1500+500*i, now.Add(-time.Hour), now.Add(-10*time.Second))
	}
	w.emu.SetFaults(emulator.Faults{ServerError: 0.03, Truncate: 0.02, Throttle: 0.02, Slow: 0.02, SlowDelay: 300 * time.Millisecond})
	live, stopLive := context.WithCancel(context.Background())
	var gens sync.WaitGroup
	for i, e := range w.envs {
		g := emulator.NewGenerator(uint64(200 + i))
		gens.Go(func() { w.emu.Run(live, g, e.ID, w.srv.URL, 100, 1500*time.Millisecond) })
	}
	cfgs := replicaConfigs(t, w, dir, 3)
	environ := append(w.environ(), "AUDITRELAY_POSTGRES_DSN="+dsn)
	procs := make([]*proc, 3)
	logs := make([]string, 3)
	for i := range procs {
		logs[i] = filepath.Join(dir, fmt.Sprintf("r%d.log", i))
		procs[i] = start(t, bin, cfgs[i], environ, logs[i])
	}
	defer func() {
		for _, p := range procs {
			if p != nil {
				p.cmd.Process.Signal(syscall.SIGCONT)
				p.cmd.Process.Kill()
				<-p.done
			}
		}
	}()
	owner, _ := waitOwner(t, dsn, "source", "env-1", "", 30*time.Second)
	idx := func(replica string) int {
		var i int
		fmt.Sscanf(replica, "r%d", &i)
		return i
	}
	// Within lease_ttl the replica row of the dead one expires and its
	// leases with it; the next heartbeat (a fifth of the lease later)
	// takes them; one poll interval later the new owner polls.
	bound := haLeaseTTL + haLeaseTTL/5 + 200*time.Millisecond + time.Second
	rng := rand.New(rand.NewPCG(3, 4))
	const kills = 5
	var took []time.Duration
	for range kills {
		time.Sleep(time.Duration(500+rng.IntN(2000)) * time.Millisecond)
		owner, _ = waitOwner(t, dsn, "source", "env-1", "", 30*time.Second)
		i := idx(owner)
		procs[i].kill(t)
		next, d := waitOwner(t, dsn, "source", "env-1", owner, 30*time.Second)
		took = append(took, d)
		if d > bound {
			t.Errorf("env-1 owned again by %s %v after the kill of %s; want within %v", next, d, owner, bound)
		}
		procs[i] = start(t, bin, cfgs[i], environ, logs[i])
	}
	// SIGSTOP the owner of env-2 beyond its lease, then resume it: it must
	// commit nothing more for what it lost.
	owner, _ = waitOwner(t, dsn, "source", "env-2", "", 30*time.Second)
	paused := procs[idx(owner)]
	paused.cmd.Process.Signal(syscall.SIGSTOP)
	next, d := waitOwner(t, dsn, "source", "env-2", owner, 30*time.Second)
	t.Logf("env-2 moved from the paused %s to %s in %v", owner, next, d)
	time.Sleep(haLeaseTTL)
	paused.cmd.Process.Signal(syscall.SIGCONT)

	stopLive()
	gens.Wait()
	w.emu.SetFaults(emulator.Faults{})
	want := w.want()
	waitAll(t, dir, want, 120*time.Second)
	for _, p := range procs {
		p.stop(t)
	}
	procs = nil
	for _, sink := range []struct {
		name, path string
		batch      int
	}{{"archive", "a.ndjson", 300}, {"second", "b.ndjson", 1000}} {
		missing, dups := lossAndDuplicates(t, want, sinkIDs(t, filepath.Join(dir, "out", sink.path)))
		t.Logf("sink %s: %d events, %d missing, %d duplicates", sink.name, len(want), missing, dups)
		if missing > 0 {
			t.Errorf("sink %s: %d of %d events lost", sink.name, missing, len(want))
		}
		if limit := (kills + 1) * sink.batch; dups > limit {
			t.Errorf("sink %s: %d duplicates, more than one batch per kill (%d)", sink.name, dups, limit)
		}
	}
	slices.Sort(took)
	t.Logf("failover of env-1 over %d kills: min %v, median %v, max %v", kills, took[0], took[len(took)/2], took[len(took)-1])
	var lost int
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		lost += strings.Count(string(b), "lease lost")
	}
	t.Logf("%d log lines of replicas dropping work whose lease they lost", lost)
	for _, l := range logs {
		if b, _ := os.ReadFile(l); strings.Contains(string(b), "s3cr3t-value-") {
			t.Errorf("%s shows a client secret", l)
		}
	}
}
