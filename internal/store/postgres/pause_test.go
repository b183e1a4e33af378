package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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
	openTTL := func(replica string) *Store {
		cfg := config(dsn, replica)
		cfg.LeaseTTL = units.Duration(ttl)
		s, err := Open(context.Background(), cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
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
