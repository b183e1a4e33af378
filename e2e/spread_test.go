package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/store/postgres/pgtest"
)

// ownedCounts reads how many live leases of kind each replica holds, and
// how many names of that kind have no live owner.
func ownedCounts(t *testing.T, dsn, kind string, names int) (map[string]int, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT owner, count(*) FROM leases WHERE kind = $1 AND expires_at > now() GROUP BY owner`, kind)
	if err != nil {
		return nil, names // no replica created the schema yet
	}
	counts := map[string]int{}
	owned := 0
	for rows.Next() {
		var owner string
		var n int
		if err := rows.Scan(&owner, &n); err != nil {
			t.Fatal(err)
		}
		counts[owner] = n
		owned += n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return counts, names - owned
}

// balanced reports whether every one of replicas owns ⌊n/R⌋ or ⌈n/R⌉ of
// the n names and nobody else owns any.
func balanced(counts map[string]int, unowned, n int, replicas []string) bool {
	if unowned != 0 || len(counts) != len(replicas) {
		return false
	}
	lo, hi := n/len(replicas), (n+len(replicas)-1)/len(replicas)
	for _, r := range replicas {
		if c := counts[r]; c < lo || c > hi {
			return false
		}
	}
	return true
}

// waitBalanced waits until the sources are shared out evenly between
// replicas, and returns how long that took.
func waitBalanced(t *testing.T, dsn string, n int, replicas []string, timeout time.Duration) (time.Duration, map[string]int) {
	t.Helper()
	start := time.Now()
	var counts map[string]int
	var unowned int
	for time.Since(start) < timeout {
		counts, unowned = ownedCounts(t, dsn, "source", n)
		if balanced(counts, unowned, n, replicas) {
			return time.Since(start), counts
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("sources not shared out between %v within %v: owned %v, %d without a live owner", replicas, timeout, counts, unowned)
	return 0, nil
}

// TestWorkSharing runs 300 PingOne sources, each on its own licence, over
// replicas of the binary on one PostgreSQL store: two replicas split them
// 150/150; a third joining takes its 100 within a lease; one leaving hands
// its share to the others within a lease; every event reaches the file
// sink exactly once throughout, and a replica that owns no sink still
// reports ready.
func TestWorkSharing(t *testing.T) {
	bin := binary(t)
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	const n = 300
	emu := emulator.NewPingOne(emulator.PingOneOptions{TokenTTL: time.Hour})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	gen := emulator.NewGenerator(11)
	now := time.Now()
	var envs []emulator.Environment
	var b strings.Builder
	environ := append(os.Environ(), "AUDITRELAY_POSTGRES_DSN="+dsn)
	b.WriteString("sources:\n")
	for i := range n {
		e := emulator.Environment{
			ID: fmt.Sprintf("5a3e0c11-0000-4000-8000-%012d", i+1), Licence: fmt.Sprint("lic-", i),
			ClientID: fmt.Sprintf("client-%d", i+1), ClientSecret: fmt.Sprintf("s3cr3t-value-%d", i+1),
			AuthMethod: "client_secret_basic",
		}
		emu.AddEnvironment(e)
		envs = append(envs, e)
		emu.Backlog(gen, e.ID, srv.URL, 10+i%7, now.Add(-30*time.Minute), now.Add(-10*time.Second))
		environ = append(environ, fmt.Sprintf("SECRET_%d=%s", i+1, e.ClientSecret))
		fmt.Fprintf(&b, `  - name: tenant-%03d
    pingone:
      environment_id: %q
      client_id: %q
      client_secret: "${env:SECRET_%d}"
      api_url: %s
      auth_url: %s
      poll_interval: 2s
      settle_delay: 1s
      overlap: 1s
      lookback: 1h
      licence: lic-%d
`, i, e.ID, e.ClientID, i+1, srv.URL, srv.URL, i)
	}
	fmt.Fprintf(&b, "sinks:\n  - name: archive\n    file: { path: %s, batch_size: 500 }\n", filepath.Join(dir, "out", "a.ndjson"))
	cfgs := make([]string, 3)
	addrs := make([]string, len(cfgs))
	for i := range cfgs {
		addrs[i] = freePort(t)
		text := fmt.Sprintf("data_dir: %s\nmetrics_listen: %s\n", filepath.Join(dir, fmt.Sprint("data-r", i)), addrs[i]) +
			b.String() +
			fmt.Sprintf("store:\n  postgres:\n    dsn: \"${env:AUDITRELAY_POSTGRES_DSN}\"\n    lease_ttl: %s\n    replica_id: r%d\n", haLeaseTTL, i)
		cfgs[i] = filepath.Join(dir, fmt.Sprintf("r%d.yaml", i))
		if err := os.WriteFile(cfgs[i], []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	procs := make([]*proc, len(cfgs))
	defer func() {
		for _, p := range procs {
			if p != nil {
				p.cmd.Process.Kill()
				<-p.done
			}
		}
	}()
	run := func(i int) {
		procs[i] = start(t, bin, cfgs[i], environ, filepath.Join(dir, fmt.Sprintf("r%d.log", i)))
	}
	// The bound of a move: the leaver's replica row and leases expire
	// (lease_ttl), the next heartbeat (a fifth of it) takes them.
	bound := haLeaseTTL + haLeaseTTL/5 + time.Second

	run(0)
	run(1)
	d, c := waitBalanced(t, dsn, n, []string{"r0", "r1"}, 60*time.Second)
	t.Logf("%d sources over 2 replicas: %v, %v after both started", n, c, d.Round(10*time.Millisecond))

	run(2)
	d, c = waitBalanced(t, dsn, n, []string{"r0", "r1", "r2"}, 60*time.Second)
	t.Logf("after r2 joined: %v within %v", c, d.Round(10*time.Millisecond))
	if d > bound+2*time.Second { // its start-up counts too
		t.Errorf("r2 got its share %v after it started; want within %v", d, bound+2*time.Second)
	}

	procs[1].kill(t)
	procs[1] = nil
	d, c = waitBalanced(t, dsn, n, []string{"r0", "r2"}, 60*time.Second)
	t.Logf("after r1 was killed: %v within %v", c, d.Round(10*time.Millisecond))
	if d > bound {
		t.Errorf("r1's share moved %v after the kill; want within %v", d, bound)
	}

	// The sink runner lives on one replica; the other owns no sink and
	// still reports ready.
	sinks, unowned := ownedCounts(t, dsn, "sink", 1)
	if unowned != 0 || len(sinks) != 1 {
		t.Errorf("sink leases: %v, %d without a live owner; want one owner", sinks, unowned)
	}
	for _, i := range []int{0, 2} {
		if !readyz(t, addrs[i]) {
			t.Errorf("r%d (sink leases %v) does not answer ready", i, sinks)
		}
	}

	want := map[string]bool{}
	for _, e := range envs {
		for _, a := range emu.Activities(e.ID) {
			want[e.ID+"/"+a.ID] = true
		}
	}
	out := filepath.Join(dir, "out", "a.ndjson")
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline) && !covers(sinkIDs(t, out), want); {
		time.Sleep(250 * time.Millisecond)
	}
	compare(t, "archive", want, sinkIDs(t, out))
	for i, p := range procs {
		if p != nil {
			p.cmd.Process.Signal(syscall.SIGTERM)
			<-p.done
			procs[i] = nil
		}
	}
}

// readyz reports whether a replica's /readyz answers 200.
func readyz(t *testing.T, addr string) bool {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
