package storetest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store"
)

// Names of the source and sink BenchmarkStorePath uses; a fenced store
// must hold their leases before it runs.
const (
	BenchSource = "pingone-eu"
	BenchSink   = "file"
)

// BenchmarkStorePath measures the spool path of one event through s, an
// empty store: appended with a page of 1000 ~1 KB events and its cursor
// in one transaction (with dedup ids), read back for a sink, and deleted
// after the ack. Ids are random UUIDs and each page is newest first, as
// PingOne serves them. It reports events/s. Each implementation runs it
// from its own BenchmarkStorePath, and storetest's from one benchmark
// side by side.
func BenchmarkStorePath(b *testing.B, s store.Store) {
	if err := s.SetSinks([]string{BenchSink}); err != nil {
		b.Fatal(err)
	}
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
			evs[i] = event.Raw{Source: BenchSource, Provider: "pingone", Tenant: "f1d3a2b4-0000-4000-8000-000000000000",
				ID:   fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, rng.Uint32()&0xfff, rng.Uint64()&0xffffffffffff),
				Time: T0.Add(time.Duration(done+page-i) * time.Millisecond),
				Data: []byte(`{"id":"x","pad":"` + pad + `"}`)}
		}
		res, err := s.Append(BenchSource, "fp", source.Page{Events: evs, Next: source.Cursor("cursor"), DedupHorizon: T0}, T0)
		if err != nil {
			b.Fatal(err)
		}
		if res.Added != page {
			b.Fatalf("append added %d of %d events", res.Added, page)
		}
		batch, last, err := s.Read(off, page, 8<<20, nil)
		if err != nil || len(batch) != page {
			b.Fatalf("read %d, %v", len(batch), err)
		}
		if err := s.Ack(BenchSink, last, len(batch), T0); err != nil {
			b.Fatal(err)
		}
		off = last
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
