package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/auditrelay/auditrelay/internal/store/postgres/pgtest"
	"github.com/auditrelay/auditrelay/internal/units"
)

// TestPausedTransactionFreesTheSpoolHead stalls writer A after it took
// its spool positions, as a replica stopped with SIGSTOP in the middle of
// an append: its session sits idle in a transaction holding the spool
// head's row lock. The server ends that transaction after a third of
// lease_ttl, so writer B's append commits within the lease (and before
// its own lock_timeout, half the lease); A's transaction commits nothing.
func TestPausedTransactionFreesTheSpoolHead(t *testing.T) {
	dsn := pgtest.DSN(t)
	const ttl = MinLeaseTTL
	openTTL := func(replica string) *Store { return openLease(t, dsn, replica, ttl) }
	a, b, reader := openTTL("a"), openTTL("b"), openTTL("reader")
	if err := reader.SetSinks([]string{"sink"}); err != nil {
		t.Fatal(err)
	}
	holding, resume := make(chan struct{}), make(chan struct{})
	a.afterPositions = func(string) {
		close(holding)
		<-resume
	}
	release := sync.OnceFunc(func() { close(resume) })
	t.Cleanup(release) // before the stores close, on failure too
	aErr := make(chan error, 1)
	go func() {
		_, err := a.Append("src-a", "fp", page("src-a", "a1", "a2"), t0)
		aErr <- err
	}()
	<-holding
	started := time.Now()
	if _, err := b.Append("src-b", "fp", page("src-b", "b1", "b2"), t0); err != nil {
		t.Fatalf("append behind a paused transaction: %v; want it to commit once the server ended the paused one", err)
	}
	took := time.Since(started)
	if took > ttl {
		t.Errorf("the append behind a paused transaction took %v; want within lease_ttl %v", took, ttl)
	}
	if took < ttl/3-100*time.Millisecond {
		t.Errorf("the append behind a paused transaction took %v, less than the idle timeout %v: it did not wait for the lock", took, ttl/3)
	}
	release()
	if err := <-aErr; err == nil {
		t.Fatal("the paused append committed after the server ended its transaction")
	}
	batch, _, err := reader.Read(0, 100, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range batch {
		got = append(got, e.ID)
	}
	if diff := cmp.Diff([]string{"b1", "b2"}, got); diff != "" {
		t.Fatalf("spool after the paused append was ended (-want +got):\n%s", diff)
	}
	t.Logf("the append behind a paused transaction committed after %v (lease_ttl %v)", took, ttl)
}

// TestLockTimeouts: the idle timeout ends a paused transaction before a
// waiter gives up on its lock, and both well within the lease.
func TestLockTimeouts(t *testing.T) {
	got := lockTimeouts(15 * time.Second)
	want := map[string]string{"idle_in_transaction_session_timeout": "5000", "lock_timeout": "7500"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lockTimeouts(15s) (-want +got):\n%s", diff)
	}
}

// blockingRows is a pgx.CopyFromSource that yields one row, then blocks
// until released: a client paused in the middle of a COPY.
type blockingRows struct {
	n       int
	release <-chan struct{}
}

func (r *blockingRows) Next() bool {
	r.n++
	if r.n > 1 {
		<-r.release
		return false
	}
	return true
}

func (r *blockingRows) Values() ([]any, error) { return []any{int64(1 << 40), []byte("x")}, nil }

func (r *blockingRows) Err() error { return nil }

// TestPausedCopyFreesTheSpoolHead stalls a COPY into the spool while its
// transaction holds the spool head's row lock, as a replica stopped with
// SIGSTOP while it streamed a page's rows. The server does not count a
// session in COPY as idle, so idle_in_transaction_session_timeout never
// ends it; the heartbeat of another replica does, once the COPY has waited
// for its client a third of lease_ttl, and that replica's append commits
// within the lease.
func TestPausedCopyFreesTheSpoolHead(t *testing.T) {
	dsn := pgtest.DSN(t)
	const ttl = MinLeaseTTL
	openTTL := func(replica string) *Store { return openLease(t, dsn, replica, ttl) }
	a, b := openTTL("a"), openTTL("b")
	resume := make(chan struct{})
	release := sync.OnceFunc(func() { close(resume) })
	t.Cleanup(release)
	copying := make(chan error, 1)
	go func() {
		ctx := context.Background()
		copying <- pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE spool_head SET seq = seq`); err != nil {
				return err
			}
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"spool"}, []string{"pos", "rec"}, &blockingRows{release: resume})
			return err
		})
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var beats sync.WaitGroup
	beats.Go(func() {
		for ctx.Err() == nil {
			b.Heartbeat(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(ttl / 5):
			}
		}
	})
	// Wait until the COPY waits for its client.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var n int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'copy %' AND wait_event = 'ClientRead'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the COPY never waited for its client")
		}
	}
	started := time.Now()
	var err error
	for time.Since(started) < 2*ttl {
		if _, err = b.Append("src-b", "fp", page("src-b", "b1"), t0); err == nil {
			break
		}
	}
	took := time.Since(started)
	cancel()
	beats.Wait()
	if err != nil {
		t.Fatalf("append behind a paused COPY: %v after %v; want it to commit once the paused COPY was ended", err, took)
	}
	if took > ttl {
		t.Errorf("the append behind a paused COPY took %v; want within lease_ttl %v", took, ttl)
	}
	release()
	if err := <-copying; err == nil {
		t.Fatal("the paused COPY committed after it was ended")
	}
	t.Logf("the append behind a paused COPY committed after %v (lease_ttl %v)", took, ttl)
}

// openLease opens the store of dsn as replica with lease_ttl ttl, closed
// when the test ends.
func openLease(t *testing.T, dsn, replica string, ttl time.Duration) *Store {
	t.Helper()
	cfg := config(dsn, replica)
	cfg.LeaseTTL = units.Duration(ttl)
	s, err := Open(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
