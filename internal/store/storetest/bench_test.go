package storetest_test

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/store"
	"github.com/auditrelay/auditrelay/internal/store/bolt"
	"github.com/auditrelay/auditrelay/internal/store/postgres"
	"github.com/auditrelay/auditrelay/internal/store/postgres/pgtest"
	"github.com/auditrelay/auditrelay/internal/store/storetest"
)

// The PostgreSQL cluster of these benchmarks syncs its WAL to disk, as a
// production server does.
func TestMain(m *testing.M) { os.Exit(pgtest.MainWith(m, pgtest.Options{Durable: true})) }

// BenchmarkStorePath runs the store path on both stores in one run, each
// as durable as it is in production: bbolt with fsync, PostgreSQL over a
// local unix socket with fsync and synchronous_commit on, fenced as a
// replica is (the append and the ack renew their leases).
func BenchmarkStorePath(b *testing.B) {
	b.Run("store=bolt", func(b *testing.B) {
		s, err := bolt.Open(b.TempDir(), bolt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		storetest.BenchmarkStorePath(b, s)
	})
	b.Run("store=postgres", func(b *testing.B) {
		dsn := pgtest.DSN(b)
		ctx := context.Background()
		s, err := postgres.Open(ctx, postgres.Config{DSN: secret.New(dsn), ReplicaID: "bench"}, postgres.Options{Fenced: true})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		for _, l := range []struct{ kind, name string }{{store.LeaseSource, storetest.BenchSource}, {store.LeaseSink, storetest.BenchSink}} {
			if took, err := s.Acquire(ctx, l.kind, l.name); err != nil || !took {
				b.Fatalf("take the lease of %s %s: %v, %v", l.kind, l.name, took, err)
			}
		}
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		var fsync, syncCommit string
		err = conn.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit')`).Scan(&fsync, &syncCommit)
		conn.Close(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("PostgreSQL fsync=%s synchronous_commit=%s", fsync, syncCommit)
		storetest.BenchmarkStorePath(b, s)
	})
}
