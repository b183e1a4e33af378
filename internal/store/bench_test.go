package store

import (
	"fmt"
	"strings"
	"testing"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
)

// BenchmarkStorePath measures the spool path of one event: appended with a
// page of 1000 ~1 KB events and its cursor in one fsynced transaction
// (with dedup ids), read back for a sink, and deleted after the ack.
func BenchmarkStorePath(b *testing.B) {
	for _, sync := range []bool{true, false} {
		b.Run(fmt.Sprintf("fsync=%v", sync), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{NoSync: !sync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			s.SetSinks([]string{"file"})
			const page = 1000
			pad := strings.Repeat("x", 900)
			evs := make([]event.Raw, page)
			n := 0
			b.SetBytes(1024)
			b.ReportAllocs()
			b.ResetTimer()
			var off uint64
			for done := 0; done < b.N; done += page {
				for i := range evs {
					n++
					evs[i] = event.Raw{Source: "pingone-eu", Provider: "pingone", Tenant: "f1d3a2b4-0000-4000-8000-000000000000",
						ID: fmt.Sprintf("7c1e5e0a-%08d-4000-8000-000000000000", n), Time: t0,
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
		})
	}
}
