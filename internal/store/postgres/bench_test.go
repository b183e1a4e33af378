package postgres

import (
	"testing"

	"github.com/auditrelay/auditrelay/internal/store/postgres/pgtest"
	"github.com/auditrelay/auditrelay/internal/store/storetest"
)

// BenchmarkStorePath measures the spool path of one event on PostgreSQL
// (see storetest.BenchmarkStorePath), fenced: the append and the ack renew
// their leases. The throwaway test cluster runs with fsync off, a server
// given by $AUDITRELAY_TEST_POSTGRES_DSN as it is configured; storetest's
// BenchmarkStorePath runs it on a cluster with fsync on, beside bbolt.
func BenchmarkStorePath(b *testing.B) {
	s := open(b, pgtest.DSN(b), "bench", true)
	if _, err := s.Acquire(b.Context(), kindSource, storetest.BenchSource); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Acquire(b.Context(), kindSink, storetest.BenchSink); err != nil {
		b.Fatal(err)
	}
	storetest.BenchmarkStorePath(b, s)
}
