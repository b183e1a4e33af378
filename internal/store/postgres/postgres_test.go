package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store"
	"github.com/auditrelay/auditrelay/internal/store/postgres/pgtest"
	"github.com/auditrelay/auditrelay/internal/store/storetest"
	"github.com/auditrelay/auditrelay/internal/units"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var t0 = storetest.T0

func config(dsn, replica string) Config {
	return Config{DSN: secret.New(dsn), LeaseTTL: units.Duration(DefaultLeaseTTL), ReplicaID: replica}
}

func open(t testing.TB, dsn string, replica string, fenced bool) *Store {
	t.Helper()
	s, err := Open(context.Background(), config(dsn, replica), Options{Fenced: fenced})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// putRaw stores record as the next spool entry, bypassing the encoder.
func putRaw(t *testing.T, s *Store, record []byte) uint64 {
	t.Helper()
	var seq int64
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `UPDATE spool_head SET seq = seq + 1, bytes = bytes + $1, count = count + 1 RETURNING seq`, len(record)).Scan(&seq); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO spool (pos, rec) VALUES ($1, $2)`, seq, record)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	return uint64(seq)
}

// TestContract runs the store contract against a real PostgreSQL.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		dsn := pgtest.DSN(t)
		s := open(t, dsn, "r1", false)
		h := storetest.Harness{Store: s}
		h.PutRaw = func(t *testing.T, record []byte) uint64 { return putRaw(t, s, record) }
		h.Reopen = func(t *testing.T) store.Store {
			s.Close()
			s = open(t, dsn, "r1", false)
			return s
		}
		return h
	})
}

func page(src string, ids ...string) source.Page {
	var evs []event.Raw
	for _, id := range ids {
		evs = append(evs, storetest.Event(src, id, t0))
	}
	return source.Page{Events: evs, Next: source.Cursor("after-" + ids[len(ids)-1])}
}

// waitForLockWait waits until some backend of the database waits for a
// lock (the second writer, queued behind the first one's head lock).
func waitForLockWait(t *testing.T, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the second writer never waited for the first one's lock")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestCommitOrderIsPositionOrder forces two writers' commits out of order:
// writer A takes its spool positions and then stalls before committing
// while writer B appends. With positions from a sequence, B would commit
// positions above A's first and a sink reading "after offset X" would
// pass A's rows for ever. Here B waits for A's commit, a reader meanwhile
// sees neither, and after A commits every row is read, in commit order.
func TestCommitOrderIsPositionOrder(t *testing.T) {
	dsn := pgtest.DSN(t)
	a := open(t, dsn, "a", false)
	b := open(t, dsn, "b", false)
	reader := open(t, dsn, "reader", false)
	if err := reader.SetSinks([]string{"sink"}); err != nil {
		t.Fatal(err)
	}
	holding, release := make(chan struct{}), make(chan struct{})
	a.afterPositions = func(string) {
		close(holding)
		<-release
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() {
		_, err := a.Append("src-a", "fp", page("src-a", "a1", "a2", "a3"), t0)
		errs <- err
	})
	<-holding
	bDone := make(chan struct{})
	wg.Go(func() {
		_, err := b.Append("src-b", "fp", page("src-b", "b1", "b2"), t0)
		errs <- err
		close(bDone)
	})
	waitForLockWait(t, reader)
	select {
	case <-bDone:
		t.Fatal("writer B committed while writer A held uncommitted positions")
	default:
	}
	batch, last, err := reader.Read(0, 100, 1<<20, nil)
	if err != nil || len(batch) != 0 || last != 0 {
		t.Fatalf("read while A is uncommitted = %v, last %d, %v; want nothing", batch, last, err)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var off uint64
	for {
		batch, last, err := reader.Read(off, 2, 1<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		if last == off {
			break
		}
		for _, e := range batch {
			got = append(got, e.ID)
		}
		off = last
	}
	if diff := cmp.Diff([]string{"a1", "a2", "a3", "b1", "b2"}, got); diff != "" || off != 5 {
		t.Fatalf("read in commit order (-want +got):\n%s\nlast %d", diff, off)
	}
}

// TestConcurrentWritersAndReaderLoseNothing runs several writers of their
// own sources at once against a reader that acks as it goes: every event
// reaches the reader exactly once.
func TestConcurrentWritersAndReaderLoseNothing(t *testing.T) {
	dsn := pgtest.DSN(t)
	reader := open(t, dsn, "reader", false)
	if err := reader.SetSinks([]string{"sink"}); err != nil {
		t.Fatal(err)
	}
	const writers, pages, per = 4, 20, 25
	var wg sync.WaitGroup
	for w := range writers {
		s := open(t, dsn, fmt.Sprint("w", w), false)
		wg.Go(func() {
			src := fmt.Sprint("src-", w)
			for p := range pages {
				var ids []string
				for i := range per {
					ids = append(ids, fmt.Sprintf("%d-%d", p, i))
				}
				if _, err := s.Append(src, "fp", page(src, ids...), t0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	seen := map[string]int{}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var off uint64
	finished := false
	for {
		batch, last, err := reader.Read(off, 37, 1<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range batch {
			seen[e.Source+"/"+e.ID]++
		}
		if last != off {
			if err := reader.Ack("sink", last, len(batch), t0); err != nil {
				t.Fatal(err)
			}
			off = last
			continue
		}
		if finished {
			break
		}
		select {
		case <-done:
			finished = true
		case <-reader.Changed():
		case <-time.After(time.Second):
		}
	}
	if len(seen) != writers*pages*per {
		t.Fatalf("reader saw %d distinct events, want %d", len(seen), writers*pages*per)
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("event %s read %d times", k, n)
		}
	}
	if reader.SpoolCount() != 0 {
		t.Fatalf("spool count %d after acking everything", reader.SpoolCount())
	}
}

func TestFencedCommitsNeedTheLease(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	r1 := open(t, dsn, "r1", true)
	r2 := open(t, dsn, "r2", true)
	if err := r1.SetSinks([]string{"k"}); err != nil {
		t.Fatal(err)
	}
	var lost *store.LeaseLostError
	if _, err := r1.Append("s", "fp", page("s", "0"), t0); !errors.As(err, &lost) {
		t.Fatalf("append without the lease = %v, want a LeaseLostError", err)
	}
	if ok, err := r1.Acquire(ctx, store.LeaseSource, "s"); !ok || err != nil {
		t.Fatalf("r1 acquire = %v %v", ok, err)
	}
	if ok, err := r2.Acquire(ctx, store.LeaseSource, "s"); ok || err != nil {
		t.Fatalf("r2 acquire of a live lease = %v %v, want false", ok, err)
	}
	if _, err := r1.Append("s", "fp", page("s", "1"), t0); err != nil {
		t.Fatal(err)
	}
	// r1 stalls past its lease; r2 takes it over
	if _, err := r2.pool.Exec(ctx, `UPDATE leases SET expires_at = now() - interval '1 second' WHERE kind = 'source' AND name = 's'`); err != nil {
		t.Fatal(err)
	}
	if ok, err := r2.Acquire(ctx, store.LeaseSource, "s"); !ok || err != nil {
		t.Fatalf("r2 acquire of an expired lease = %v %v", ok, err)
	}
	_, err := r1.Append("s", "fp", page("s", "2"), t0)
	if !errors.As(err, &lost) || lost.Owner != "r2" || !strings.Contains(err.Error(), "taken over by r2") {
		t.Fatalf("append of the former owner = %v, want a LeaseLostError naming r2", err)
	}
	if r1.Holds(store.LeaseSource, "s") {
		t.Fatal("r1 still believes it holds the lease")
	}
	cur, _, _ := r2.Cursor("s")
	if string(cur) != "after-1" || r2.refresh(ctx) != nil || r2.SpoolCount() != 1 {
		t.Fatalf("the fenced append changed the store: cursor %q, spool %d", cur, r2.SpoolCount())
	}
	if err := r1.SetCursor("s", "fp", source.Cursor("x"), t0); !errors.As(err, &lost) {
		t.Fatalf("checkpoint set by the former owner = %v", err)
	}
	if _, err := r2.Append("s", "fp", page("s", "2"), t0); err != nil {
		t.Fatal(err)
	}
	// the same for a sink's offset
	if ok, _ := r1.Acquire(ctx, store.LeaseSink, "k"); !ok {
		t.Fatal("r1 could not take the sink")
	}
	if err := r1.Ack("k", 1, 1, t0); err != nil {
		t.Fatal(err)
	}
	r2.pool.Exec(ctx, `UPDATE leases SET expires_at = now() - interval '1 second' WHERE kind = 'sink'`)
	if ok, _ := r2.Acquire(ctx, store.LeaseSink, "k"); !ok {
		t.Fatal("r2 could not take the expired sink lease")
	}
	if err := r1.Ack("k", 2, 1, t0); !errors.As(err, &lost) {
		t.Fatalf("ack of the former owner = %v", err)
	}
	if off, _ := r2.Offset("k"); off != 1 {
		t.Fatalf("offset = %d after a fenced ack", off)
	}
	// a heartbeat finds lost leases too, and keeps held ones
	r1.Acquire(ctx, store.LeaseSource, "other")
	r1.pool.Exec(ctx, `UPDATE leases SET owner = 'r3', epoch = epoch + 1 WHERE name = 'other'`)
	live, lostLeases, err := r1.Heartbeat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(lostLeases) != 1 || lostLeases[0].Name != "other" || !slicesContain(live, "r1") {
		t.Fatalf("heartbeat = live %v, lost %+v", live, lostLeases)
	}
	if _, _, err := r2.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r2.Release(ctx, store.LeaseSource, "s"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := r1.Acquire(ctx, store.LeaseSource, "s"); !ok {
		t.Fatal("a released lease could not be taken at once")
	}
	snap, err := r1.Snapshot()
	if err != nil || len(snap.Replicas) != 2 || snap.Sources[0].Owner != "r1" || snap.Sources[0].LeaseExpires.IsZero() {
		t.Fatalf("snapshot = %+v, %v", snap, err)
	}
}

func slicesContain(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

func TestNewerSchemaRefused(t *testing.T) {
	dsn := pgtest.DSN(t)
	s := open(t, dsn, "r1", false)
	if _, err := s.pool.Exec(context.Background(), `UPDATE schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(context.Background(), config(dsn, "r1"), Options{})
	if err == nil || !strings.Contains(err.Error(), "migrated by a newer auditrelay (schema version 99, this version reads 2)") {
		t.Fatalf("err = %v", err)
	}
	if c, _ := delivery.ClassOf(err); c != delivery.Permanent {
		t.Fatalf("class = %v, want permanent", c)
	}
	// opening again an up-to-date schema is a no-op
	dsn2 := pgtest.DSN(t)
	open(t, dsn2, "r1", false).Close()
	open(t, dsn2, "r2", false)
}

func TestOpenErrorsHideThePassword(t *testing.T) {
	const pw = "s3cr3t-Pa55"
	for _, dsn := range []string{
		"postgres://auditrelay:" + pw + "@127.0.0.1:1/auditrelay?sslmode=disable&connect_timeout=2",
		"host=127.0.0.1 port=1 user=auditrelay password=" + pw + " sslmode=disable connect_timeout=2",
		"postgres://auditrelay:" + pw + "@127.0.0.1:1/auditrelay?sslmode=bogus",
	} {
		_, err := Open(context.Background(), config(dsn, "r"), Options{})
		if err == nil {
			t.Fatalf("open %s succeeded", dsn)
		}
		if strings.Contains(err.Error(), pw) {
			t.Fatalf("error shows the password: %v", err)
		}
	}
}

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn, err string
	}{
		{"postgres://u@db.example.com/a?sslmode=verify-full", ""},
		{"postgres://u@db.example.com/a?sslmode=require", ""},
		{"postgres://u@db.example.com/a", "could go without TLS"},
		{"postgres://u@db.example.com/a?sslmode=disable", "could go without TLS"},
		{"postgres://u@127.0.0.1/a?sslmode=disable", ""},
		{"postgres://u@localhost/a", ""},
		{"host=/var/run/postgresql dbname=a", ""},
		{"/var/run/postgresql", ""},
		{"postgres://u@[::1]:5432/a?sslmode=disable", ""},
		{"postgres://u:pw@db.example.com/a?sslmode=nope", "sslmode"},
	} {
		_, err := ParseDSN(secret.New(tc.dsn))
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseDSN(%q) = %v, want %q", tc.dsn, err, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), ":pw@") {
			t.Errorf("ParseDSN(%q) shows the password: %v", tc.dsn, err)
		}
	}
}

func TestConfig(t *testing.T) {
	c := Config{}
	c.SetDefaults()
	errs := c.Validate()
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "dsn: required") || c.LeaseTTL.D() != DefaultLeaseTTL {
		t.Fatalf("empty block: %v, lease_ttl %v", errs, c.LeaseTTL)
	}
	c = Config{DSN: secret.New("postgres://u@db.example.com/a?sslmode=verify-full"), LeaseTTL: units.Duration(time.Second), ReplicaID: "bad\nid"}
	errs = c.Validate()
	if len(errs) != 2 || !strings.HasPrefix(errs[0].Error(), "lease_ttl: ") || !strings.HasPrefix(errs[1].Error(), "replica_id: ") {
		t.Fatalf("errors = %v", errs)
	}
	if r := (&Config{}).Replica(); !strings.HasSuffix(r, fmt.Sprint("-", os.Getpid())) {
		t.Fatalf("default replica id %q", r)
	}
	if c := (Config{DSN: secret.Unresolved(), LeaseTTL: units.Duration(DefaultLeaseTTL)}); len(c.Validate()) != 0 {
		t.Fatal("an unresolved dsn should only be checked for presence")
	}
}

// TestSameSourceAppendsAtOnce has two unfenced stores append the same
// ids as the first page of one source at once: writer A stalls before
// its commit while B appends. B waits for A, then finds every id stored:
// each is spooled once, and neither append fails.
func TestSameSourceAppendsAtOnce(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, b := open(t, dsn, "a", false), open(t, dsn, "b", false)
	if err := a.SetSinks([]string{"sink"}); err != nil {
		t.Fatal(err)
	}
	holding, release := make(chan struct{}), make(chan struct{})
	a.afterPositions = func(string) {
		close(holding)
		<-release
	}
	ids := []string{"1", "2", "3"}
	var wg sync.WaitGroup
	var resA, resB store.AppendResult
	var errA, errB error
	wg.Go(func() { resA, errA = a.Append("src", "fp", page("src", ids...), t0) })
	<-holding
	wg.Go(func() { resB, errB = b.Append("src", "fp", page("src", ids...), t0) })
	waitForLockWait(t, b)
	close(release)
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("appends failed: %v; %v", errA, errB)
	}
	if resA.Added != 3 || resB.Added != 0 || resB.Duplicates != 3 {
		t.Fatalf("A added %d, B added %d with %d duplicates; want 3, then 0 with 3", resA.Added, resB.Added, resB.Duplicates)
	}
	batch, _, err := b.Read(0, 100, 1<<20, nil)
	if err != nil || len(batch) != 3 {
		t.Fatalf("spool holds %d events, %v; want 3", len(batch), err)
	}
}

// TestCollectWithSinksAtDifferentPaces has two sinks on two stores ack
// at their own pace while a third sink joins (at offset 0) and leaves: at
// the end the spool holds exactly the entries above the lowest offset, and
// its counters agree with its rows.
func TestCollectWithSinksAtDifferentPaces(t *testing.T) {
	dsn := pgtest.DSN(t)
	w := open(t, dsn, "w", false)
	fast, slow := open(t, dsn, "fast", false), open(t, dsn, "slow", false)
	if err := w.SetSinks([]string{"fast", "slow"}); err != nil {
		t.Fatal(err)
	}
	for p := range 30 {
		var ids []string
		for i := range 10 {
			ids = append(ids, fmt.Sprintf("%d-%d", p, i))
		}
		if _, err := w.Append("src", "fp", page("src", ids...), t0); err != nil {
			t.Fatal(err)
		}
	}
	drain := func(s *Store, sink string, step int, upTo uint64) {
		off, err := s.Offset(sink)
		if err != nil {
			t.Error(err)
			return
		}
		for off < upTo {
			batch, last, err := s.Read(off, min(step, int(upTo-off)), 1<<20, nil)
			if err != nil {
				t.Error(err)
				return
			}
			if err := s.Ack(sink, last, len(batch), t0); err != nil {
				t.Error(err)
				return
			}
			off = last
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { drain(fast, "fast", 7, 300) })
	wg.Go(func() { drain(slow, "slow", 3, 120) })
	wg.Wait()
	// A sink joins at the oldest entry, and leaves again.
	if err := w.SetSinks([]string{"fast", "slow", "new"}); err != nil {
		t.Fatal(err)
	}
	drain(slow, "slow", 11, 200)
	if err := w.SetSinks([]string{"fast", "slow"}); err != nil {
		t.Fatal(err)
	}
	drain(slow, "slow", 13, 250)
	var rows, lowest, highest, bytes int64
	if err := w.pool.QueryRow(context.Background(), `SELECT count(*), coalesce(min(pos), 0), coalesce(max(pos), 0), coalesce(sum(length(rec)), 0) FROM spool`).Scan(&rows, &lowest, &highest, &bytes); err != nil {
		t.Fatal(err)
	}
	if rows != 50 || lowest != 251 || highest != 300 {
		t.Fatalf("spool holds %d rows, %d to %d; want 50, 251 to 300", rows, lowest, highest)
	}
	if err := w.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.SpoolCount() != rows || w.SpoolBytes() != bytes {
		t.Fatalf("spool head counts %d events of %d bytes, the rows %d of %d", w.SpoolCount(), w.SpoolBytes(), rows, bytes)
	}
}
