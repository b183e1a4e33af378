package postgres

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store/postgres/pgtest"
)

// BenchmarkStorePath measures the spool path of one event on PostgreSQL,
// as BenchmarkStorePath of store/bolt does on bbolt: appended with a page
// of 1000 ~1 KB events and its cursor in one transaction (with dedup ids
// and the fenced lease renewal), read back for a sink, and deleted after
// the fenced ack. synchronous_commit is on; the throwaway test cluster
// runs with fsync off, a server given by $AUDITRELAY_TEST_POSTGRES_DSN as
// it is configured.
func BenchmarkStorePath(b *testing.B) {
	s := open(b, pgtest.DSN(b), "bench", true)
	if _, err := s.Acquire(b.Context(), kindSource, "pingone-eu"); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Acquire(b.Context(), kindSink, "file"); err != nil {
		b.Fatal(err)
	}
	s.SetSinks([]string{"file"})
	const page = 1000
	pad := strings.Repeat("x", 900)
	evs := make([]event.Raw, page)
	rng := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	var off uint64
	for done := 0; done < b.N; done += page {
		for i := range evs {
			evs[i] = event.Raw{Source: "pingone-eu", Provider: "pingone", Tenant: "f1d3a2b4-0000-4000-8000-000000000000",
				ID:   fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, rng.Uint32()&0xfff, rng.Uint64()&0xffffffffffff),
				Time: t0.Add(time.Duration(done+page-i) * time.Millisecond),
				Data: []byte(`{"id":"x","pad":"` + pad + `"}`)}
		}
		if _, err := s.Append("pingone-eu", "fp", source.Page{Events: evs, Next: source.Cursor("cursor"), DedupHorizon: t0}, t0); err != nil {
			b.Fatal(err)
		}
		batch, last, err := s.Read(off, page, 8<<20, nil)
		if err != nil || len(batch) != page {
			b.Fatalf("read %d, %v", len(batch), err)
		}
		if err := s.Ack("file", last, len(batch), t0); err != nil {
			b.Fatal(err)
		}
		off = last
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
