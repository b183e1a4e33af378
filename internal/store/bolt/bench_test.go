package bolt

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
)

// BenchmarkStorePath measures the spool path of one event: appended with a
// page of 1000 ~1 KB events and its cursor in one fsynced transaction
// (with dedup ids), read back for a sink, and deleted after the ack. Ids
// are random UUIDs and each page is newest first, as PingOne serves them.
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
			rng := rand.New(rand.NewPCG(1, 2))
			b.SetBytes(1024)
			b.ReportAllocs()
			b.ResetTimer()
			var off uint64
			for done := 0; done < b.N; done += page {
				for i := range evs {
					n++
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
		})
	}
}

// BenchmarkDedup measures an overlap re-read: a page of 1000 events of
// which half were already stored, with the horizon pruning old ids.
func BenchmarkDedup(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.SetSinks([]string{"file"})
	const page = 1000
	data := []byte(`{"id":"x","pad":"` + strings.Repeat("x", 900) + `"}`)
	mk := func(i int) event.Raw {
		return event.Raw{Source: "p", Provider: "pingone", Tenant: "t", ID: fmt.Sprintf("id-%09d", i),
			Time: t0.Add(time.Duration(i) * time.Millisecond), Data: data}
	}
	evs := make([]event.Raw, page)
	b.ReportAllocs()
	b.ResetTimer()
	dups := 0
	for n := 0; n < b.N; n += page {
		base := n / 2 // each page repeats the second half of the previous one
		for i := range evs {
			evs[i] = mk(base + i)
		}
		res, err := s.Append("p", "fp", source.Page{Events: evs, DedupHorizon: t0.Add(time.Duration(base-page) * time.Millisecond)}, t0)
		if err != nil {
			b.Fatal(err)
		}
		dups += res.Duplicates
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if b.N >= 2*page && dups == 0 {
		b.Fatal("no duplicate was dropped")
	}
}
