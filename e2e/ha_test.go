package e2e

import (
	"context"
	"errors"
	"flag"
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
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/sink/sentinel"
	"github.com/auditrelay/auditrelay/internal/store/postgres"
	"github.com/auditrelay/auditrelay/internal/store/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var failoverKills = flag.Int("failover-kills", 5, "how many times TestFailover kills the owner of a source with SIGKILL (10 for the figure in docs/high-availability.md)")

// haLeaseTTL is the lease of the failover tests: short, so that a test
// sees many takeovers.
const haLeaseTTL = 3 * time.Second

// haPollInterval is the poll_interval of the sources of the failover
// tests.
const haPollInterval = 200 * time.Millisecond

// replicaConfigs writes one configuration per replica from w's: see
// replicaFiles.
func replicaConfigs(t *testing.T, w *world, dir string, n int) []string {
	t.Helper()
	return replicaFiles(t, w.config(t, dir, ""), dir, n, haLeaseTTL)
}

// replicaFiles writes one configuration per replica from the one at base:
// the same sources, sinks and PostgreSQL store (the DSN in
// $AUDITRELAY_POSTGRES_DSN), each with its own data_dir and replica_id
// (r0, r1, …).
func replicaFiles(t *testing.T, base, dir string, n int, ttl time.Duration) []string {
	t.Helper()
	b, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for i := range n {
		text := strings.Replace(string(b), "data_dir: "+filepath.Join(dir, "data"), "data_dir: "+filepath.Join(dir, fmt.Sprint("data-r", i)), 1)
		text += fmt.Sprintf("store:\n  postgres:\n    dsn: \"${env:AUDITRELAY_POSTGRES_DSN}\"\n    lease_ttl: %s\n    replica_id: r%d\n", ttl, i)
		p := filepath.Join(dir, fmt.Sprintf("r%d.yaml", i))
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// cluster is replicas of the binary sharing one PostgreSQL store.
type cluster struct {
	t       *testing.T
	bin     string
	dsn     string
	cfgs    []string
	logs    []string
	environ []string
	procs   []*proc
}

// startCluster starts n replicas of the configuration at base, each
// logging to r<i>.log in dir; they are killed when t ends. Each replica
// connects with its id as application_name ($PGAPPNAME), so that the
// commit log (see installCommitLog) knows who committed what.
func startCluster(t *testing.T, bin, dsn, base, dir string, n int, ttl time.Duration, environ []string) *cluster {
	c := &cluster{t: t, bin: bin, dsn: dsn, cfgs: replicaFiles(t, base, dir, n, ttl),
		environ: append(environ, "AUDITRELAY_POSTGRES_DSN="+dsn), procs: make([]*proc, n)}
	for i := range n {
		c.logs = append(c.logs, filepath.Join(dir, fmt.Sprintf("r%d.log", i)))
		c.start(i)
	}
	t.Cleanup(func() {
		for _, p := range c.procs {
			if p != nil {
				p.cmd.Process.Signal(syscall.SIGCONT)
				p.cmd.Process.Kill()
				<-p.done
			}
		}
	})
	return c
}

func (c *cluster) start(i int) {
	env := append(slices.Clip(c.environ), fmt.Sprintf("PGAPPNAME=r%d", i))
	c.procs[i] = start(c.t, c.bin, c.cfgs[i], env, c.logs[i])
}

// replica returns the process of a replica id (r0, r1, …).
func (c *cluster) replica(id string) (int, *proc) {
	var i int
	if _, err := fmt.Sscanf(id, "r%d", &i); err != nil || i < 0 || i >= len(c.procs) {
		c.t.Fatalf("no replica %q", id)
	}
	return i, c.procs[i]
}

// stop stops every replica with SIGTERM, expecting exit 0.
func (c *cluster) stop() {
	for i, p := range c.procs {
		p.stop(c.t)
		c.procs[i] = nil
	}
}

// logCount counts the lines of every replica's log holding s.
func (c *cluster) logCount(s string) int {
	n := 0
	for _, l := range c.logs {
		b, _ := os.ReadFile(l)
		n += strings.Count(string(b), s)
	}
	return n
}

// firstLine returns the first line of the replicas' logs holding s, in
// the order of the replicas.
func (c *cluster) firstLine(s string) string {
	for _, l := range c.logs {
		b, _ := os.ReadFile(l)
		for line := range strings.Lines(string(b)) {
			if strings.Contains(line, s) {
				return strings.TrimSpace(line)
			}
		}
	}
	return ""
}

// query runs f on a connection of its own to the store's database.
func query(t *testing.T, dsn string, f func(ctx context.Context, conn *pgx.Conn) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := f(ctx, conn); err != nil {
		t.Fatal(err)
	}
}

// leaseOwner reads who holds the lease of a source, and whether it is live.
func leaseOwner(t *testing.T, dsn, kind, name string) (owner string, live bool) {
	t.Helper()
	query(t, dsn, func(ctx context.Context, conn *pgx.Conn) error {
		err := conn.QueryRow(ctx, `SELECT owner, expires_at > now() FROM leases WHERE kind = $1 AND name = $2`, kind, name).Scan(&owner, &live)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42P01" || errors.Is(err, pgx.ErrNoRows) {
			return nil // no replica created the schema, or took the lease, yet
		}
		return err
	})
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

// heldLease is a lease a replica holds.
type heldLease struct {
	kind, name string
	epoch      int64
}

func (l heldLease) String() string { return l.kind + " " + l.name }

// leasesOf returns the live leases a replica holds.
func leasesOf(t *testing.T, dsn, replica string) []heldLease {
	t.Helper()
	var out []heldLease
	query(t, dsn, func(ctx context.Context, conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `SELECT kind, name, epoch FROM leases WHERE owner = $1 AND expires_at > now() ORDER BY kind, name`, replica)
		if err != nil {
			return err
		}
		var l heldLease
		_, err = pgx.ForEachRow(rows, []any{&l.kind, &l.name, &l.epoch}, func() error {
			out = append(out, l)
			return nil
		})
		return err
	})
	return out
}

// waitRetaken waits until each lease is held by a live replica other than
// not, and returns how long each took from since. It reads all of them in
// one statement on one connection, so that its polling adds little to
// what it measures.
func waitRetaken(t *testing.T, dsn string, leases []heldLease, not string, since time.Time, timeout time.Duration) map[heldLease]time.Duration {
	t.Helper()
	took := map[heldLease]time.Duration{}
	var kinds, names []string
	for _, l := range leases {
		kinds, names = append(kinds, l.kind), append(names, l.name)
	}
	query(t, dsn, func(ctx context.Context, conn *pgx.Conn) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		for len(took) < len(leases) && ctx.Err() == nil {
			rows, err := conn.Query(ctx, `SELECT l.kind, l.name FROM leases l JOIN unnest($1::text[], $2::text[]) AS w(kind, name) USING (kind, name)
				WHERE l.expires_at > now() AND l.owner <> $3`, kinds, names, not)
			if err != nil {
				break
			}
			var k, n string
			if _, err := pgx.ForEachRow(rows, []any{&k, &n}, func() error {
				for _, l := range leases {
					if _, ok := took[l]; !ok && l.kind == k && l.name == n {
						took[l] = time.Since(since)
					}
				}
				return nil
			}); err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		return nil
	})
	if len(took) < len(leases) {
		t.Fatalf("leases of %s not taken over within %v: only %v of %v", not, timeout, took, leases)
	}
	return took
}

// installCommitLog creates the store's schema in the database of dsn and
// adds triggers that record, in e2e_commits, every commit of a source's
// page (its row written without a last error: Append) and every advance of
// a sink's offset (Ack): which replica committed it (its connection's
// application_name), the owner and epoch of the lease as the committing
// transaction saw them, and when. A fenced store renews the lease in that
// transaction, so the owner must be the committer, at the epoch it took.
// The spool's own row (@spool, its record of what acks deleted) is written
// by whichever sink acks, under that sink's lease: it is not a source.
func installCommitLog(t *testing.T, dsn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, postgres.Config{DSN: secret.New(dsn), ReplicaID: "e2e"}, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	query(t, dsn, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, `
CREATE TABLE e2e_commits (
	kind    text NOT NULL,
	name    text NOT NULL,
	replica text NOT NULL,
	owner   text,
	epoch   bigint,
	at      timestamptz NOT NULL
);
CREATE FUNCTION e2e_source_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.state->>'last_error' IS NULL THEN
		INSERT INTO e2e_commits SELECT 'source', NEW.name, current_setting('application_name'), l.owner, l.epoch, clock_timestamp()
		FROM (SELECT 1) AS one LEFT JOIN leases l ON l.kind = 'source' AND l.name = NEW.name;
	END IF;
	RETURN NULL;
END $$;
CREATE FUNCTION e2e_sink_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.off > OLD.off THEN
		INSERT INTO e2e_commits SELECT 'sink', NEW.name, current_setting('application_name'), l.owner, l.epoch, clock_timestamp()
		FROM (SELECT 1) AS one LEFT JOIN leases l ON l.kind = 'sink' AND l.name = NEW.name;
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER e2e_source_commits AFTER INSERT OR UPDATE ON sources FOR EACH ROW WHEN (NEW.name <> '@spool') EXECUTE FUNCTION e2e_source_commit();
CREATE TRIGGER e2e_sink_commits AFTER UPDATE ON sinks FOR EACH ROW EXECUTE FUNCTION e2e_sink_commit();`)
		return err
	})
}

// firstCommit waits for the first commit for (kind, name) after since by
// a replica other than not, and returns when it was made (by the
// database's clock) and by whom.
func firstCommit(t *testing.T, dsn, kind, name, not string, since time.Time, timeout time.Duration) (at time.Time, by string) {
	t.Helper()
	query(t, dsn, func(ctx context.Context, conn *pgx.Conn) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		for ctx.Err() == nil {
			err := conn.QueryRow(ctx, `SELECT at, replica FROM e2e_commits WHERE kind = $1 AND name = $2 AND replica <> $3 AND at > $4 ORDER BY at LIMIT 1`,
				kind, name, not, since).Scan(&at, &by)
			if err == nil || !errors.Is(err, pgx.ErrNoRows) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		return nil
	})
	if by == "" {
		t.Fatalf("no %s %s page committed by a replica other than %s within %v of %v", kind, name, not, timeout, since)
	}
	return at, by
}

// unfencedCommits lists the commits whose committer did not hold the lease
// at the epoch the transaction saw.
func unfencedCommits(t *testing.T, dsn string) (n int, examples []string) {
	t.Helper()
	query(t, dsn, func(ctx context.Context, conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `SELECT kind, name, replica, coalesce(owner, ''), coalesce(epoch, 0), at FROM e2e_commits WHERE owner IS DISTINCT FROM replica ORDER BY at`)
		if err != nil {
			return err
		}
		var kind, name, replica, owner string
		var epoch int64
		var at time.Time
		_, err = pgx.ForEachRow(rows, []any{&kind, &name, &replica, &owner, &epoch, &at}, func() error {
			n++
			if len(examples) < 5 {
				examples = append(examples, fmt.Sprintf("%s %s by %s at %s while %s held epoch %d", kind, name, replica, at.Format(time.StampMilli), owner, epoch))
			}
			return nil
		})
		return err
	})
	return n, examples
}

// commitsAt counts the commits of a replica for a lease at its epoch
// after since.
func commitsAt(t *testing.T, dsn, replica string, l heldLease, since time.Time) int {
	t.Helper()
	var n int
	query(t, dsn, func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `SELECT count(*) FROM e2e_commits WHERE replica = $1 AND kind = $2 AND name = $3 AND epoch = $4 AND at > $5`,
			replica, l.kind, l.name, l.epoch, since).Scan(&n)
	})
	return n
}

// logSince returns what a log file holds beyond its first off bytes.
func logSince(path string, off int64) string {
	b, _ := os.ReadFile(path)
	if int64(len(b)) < off {
		return ""
	}
	return string(b[off:])
}

// logSize returns the size of a log file.
func logSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// haSink is a sink of the failover test: how to count what it holds, by
// eventKey, and its batch size.
type haSink struct {
	name  string
	batch int
	keys  func() map[string]int
}

// TestFailover runs three replicas on one PostgreSQL store while a PingOne
// licence (four environments) and a CyberArk tenant serve a backlog, live
// events and faults, into two file sinks and Microsoft Sentinel (which
// fails and throttles some calls). The owner of a source (a PingOne and
// the CyberArk one in turn) is killed with SIGKILL at random moments
// (-failover-kills times, and restarted); every lease the dead replica
// held is taken again within lease_ttl plus a poll interval (and the
// heartbeat's period), and the new owner's first committed page is timed.
// Then one replica is stopped with SIGSTOP until all its leases were taken
// over, and resumed: it logs that it lost them, and the database shows it
// committed nothing under the epochs it had held. Nothing is lost, no
// commit was made by a replica that did not hold the lease, and
// duplicates stay within one batch per kill per sink.
func TestFailover(t *testing.T) {
	bin := binary(t)
	began := time.Now()
	dsn := pgtest.DSN(t)
	installCommitLog(t, dsn)
	dir := t.TempDir()
	w := newWorld(t, 4)
	ca := newCAWorld(t, 30*time.Second)
	az := newAzure(t)
	w.moreSources = ca.sourceYAML()
	now := time.Now()
	for i, e := range w.envs {
		w.emu.Backlog(w.gen, e.ID, w.srv.URL, 1500+500*i, now.Add(-time.Hour), now.Add(-10*time.Second))
	}
	ca.ca.Backlog(ca.gen, ca.tenant.ID, 3000, now.Add(-time.Hour), now.Add(-10*time.Second))
	w.emu.SetFaults(emulator.Faults{ServerError: 0.03, Truncate: 0.02, Throttle: 0.02, Slow: 0.02, SlowDelay: 300 * time.Millisecond})
	ca.ca.SetFaults(emulator.CyberArkFaults{ServerError: 0.03, Truncate: 0.02, Throttle: 0.02, Early401: 0.02, ExpireCursor: 0.03})
	az.emu.SetFaults(emulator.SentinelFaults{Throttle: 0.05, ServerError: 0.05, RetryAfter: time.Second})
	live, stopLive := context.WithCancel(context.Background())
	var gens sync.WaitGroup
	for i, e := range w.envs {
		g := emulator.NewGenerator(uint64(200 + i))
		gens.Go(func() { w.emu.Run(live, g, e.ID, w.srv.URL, 50, 1500*time.Millisecond) })
	}
	gens.Go(func() { ca.ca.Run(live, emulator.NewCyberArkGenerator(13), ca.tenant.ID, 40, 2*time.Second) })
	const sentinelBatch = 250
	base := w.config(t, dir, az.sinkYAML(sentinel.FormatAuditRelay, sentinelBatch))
	environ := append(append(w.environ(), caSecrets()...), "AZ_SECRET="+azSecret)
	c := startCluster(t, bin, dsn, base, dir, 3, haLeaseTTL, environ)
	sinks := []haSink{
		{"archive", 300, func() map[string]int { return fileKeys(t, filepath.Join(dir, "out", "a.ndjson")) }},
		{"second", 1000, func() map[string]int { return fileKeys(t, filepath.Join(dir, "out", "b.ndjson")) }},
		{"sentinel", sentinelBatch, az.keys},
	}

	// A dead replica's leases expire within lease_ttl of its last renewal;
	// the next heartbeat of another (a fifth of the lease later) takes
	// them, and one poll interval later the new owner polls. Two seconds
	// cover the test's own polling and a loaded machine (2 cores shared
	// with builds reach a load average of 11).
	bound := haLeaseTTL + haLeaseTTL/5 + haPollInterval + 2*time.Second
	// The new owner's first page also waits for its first poll (a token
	// first, and retries of the faults the emulators inject) and commit.
	firstBound := bound + 3*time.Second
	started := time.Now()
	targets := []string{"env-1", "cyberark-prod"}
	rng := rand.New(rand.NewPCG(3, 4))
	kills := *failoverKills
	var owned, firstPage []time.Duration
	for k := range kills {
		target := targets[k%len(targets)]
		time.Sleep(time.Duration(500+rng.IntN(2000)) * time.Millisecond)
		owner, _ := waitOwner(t, dsn, "source", target, "", 30*time.Second)
		i, p := c.replica(owner)
		held := leasesOf(t, dsn, owner)
		killedAt := time.Now()
		p.kill(t)
		took := waitRetaken(t, dsn, held, owner, killedAt, 30*time.Second)
		var worst time.Duration
		for l, d := range took {
			worst = max(worst, d)
			if d > bound {
				t.Errorf("kill %d: %v owned again %v after the kill of its owner %s; want within %v", k+1, l, d, owner, bound)
			}
		}
		at, by := firstCommit(t, dsn, "source", target, owner, killedAt, 30*time.Second)
		first := at.Sub(killedAt)
		if first > firstBound {
			t.Errorf("kill %d: the first page of %s committed %v after the kill of its owner %s; want within %v", k+1, target, first, owner, firstBound)
		}
		owned = append(owned, took[heldLease{"source", target, leaseEpoch(held, "source", target)}])
		firstPage = append(firstPage, first)
		t.Logf("kill %d of %s (owner of %s and %d other leases): %s owned again after %v (all its leases within %v), first page committed by %s after %v",
			k+1, owner, target, len(held)-1, target, owned[len(owned)-1].Round(time.Millisecond), worst.Round(time.Millisecond), by, first.Round(time.Millisecond))
		c.start(i)
	}

	// SIGSTOP the owner of env-2 until every lease it held was taken
	// over, then resume it: it must learn that it lost them, and commit
	// nothing under the epochs it held.
	owner, _ := waitOwner(t, dsn, "source", "env-2", "", 30*time.Second)
	_, paused := c.replica(owner)
	held := leasesOf(t, dsn, owner)
	stoppedAt := time.Now()
	paused.cmd.Process.Signal(syscall.SIGSTOP)
	took := waitRetaken(t, dsn, held, owner, stoppedAt, 30*time.Second)
	t.Logf("the paused %s lost %v within %v", owner, held, took)
	resumedLog := logSize(paused.log)
	paused.cmd.Process.Signal(syscall.SIGCONT)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logSince(paused.log, resumedLog), "lease lost"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("the resumed %s did not log that it lost its leases within 10s", owner)
			break
		}
	}

	t.Logf("kills and pause took %v (%v from the start)", time.Since(started).Round(time.Second), time.Since(began).Round(time.Second))
	started = time.Now()
	stopLive()
	gens.Wait()
	w.emu.SetFaults(emulator.Faults{})
	ca.ca.SetFaults(emulator.CyberArkFaults{})
	az.emu.SetFaults(emulator.SentinelFaults{})
	want := w.want()
	for k := range ca.want() {
		want[k] = true
	}
	caughtUp := map[string]time.Duration{}
	for deadline := time.Now().Add(120 * time.Second); len(caughtUp) < len(sinks) && time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		for _, s := range sinks {
			if _, ok := caughtUp[s.name]; !ok && covers(s.keys(), want) {
				caughtUp[s.name] = time.Since(started).Round(100 * time.Millisecond)
			}
		}
	}
	t.Logf("after the live events stopped, the sinks caught up in %v", caughtUp)
	resumedLines := logSince(paused.log, resumedLog)
	c.stop()

	for _, s := range sinks {
		missing, dups := lossAndDuplicates(t, want, s.keys())
		t.Logf("sink %s: %d events, %d missing, %d duplicates", s.name, len(want), missing, dups)
		if missing > 0 {
			t.Errorf("sink %s: %d of %d events lost", s.name, missing, len(want))
		}
		if limit := (kills + 1) * s.batch; dups > limit {
			t.Errorf("sink %s: %d duplicates, more than one batch per kill (%d)", s.name, dups, limit)
		}
	}
	if n, ex := unfencedCommits(t, dsn); n > 0 {
		t.Errorf("%d commits by a replica that did not hold the lease, such as %v", n, ex)
	}
	for _, l := range held {
		if n := commitsAt(t, dsn, owner, l, stoppedAt.Add(took[l])); n > 0 {
			t.Errorf("the paused %s committed %d times for %v under epoch %d after it was taken over", owner, n, l, l.epoch)
		}
	}
	for _, line := range strings.Split(resumedLines, "\n") {
		if strings.Contains(line, "lease lost") {
			t.Logf("%s after SIGCONT: %s", owner, line)
		}
	}
	if st := ca.ca.Stats(); st.Faults == 0 {
		t.Error("no CyberArk fault was injected; the test proves less than it claims")
	}
	if st := az.emu.Stats(); st.Faults == 0 {
		t.Error("no Sentinel fault was injected; the test proves less than it claims")
	}
	t.Logf("over %d kills (load average %s), min / median / max: owned again %s; first page committed by the new owner %s",
		kills, loadAvg(), spread(owned), spread(firstPage))
	t.Logf("%d log lines of replicas dropping work whose lease they lost", c.logCount("lease lost"))
	for _, l := range c.logs {
		if b, _ := os.ReadFile(l); strings.Contains(string(b), "s3cr3t-value-") || strings.Contains(string(b), caSecret) || strings.Contains(string(b), azSecret) {
			t.Errorf("%s shows a client secret", l)
		}
	}
}

// leaseEpoch returns the epoch of a lease in held.
func leaseEpoch(held []heldLease, kind, name string) int64 {
	for _, l := range held {
		if l.kind == kind && l.name == name {
			return l.epoch
		}
	}
	return 0
}

// spread formats the minimum, median and maximum of ds.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
	return fmt.Sprintf("%v / %v / %v", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]))
}
