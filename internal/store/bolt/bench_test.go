package bolt

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store/storetest"
)

// BenchmarkStorePath measures the spool path of one event (see
// storetest.BenchmarkStorePath), with and without fsync.
func BenchmarkStorePath(b *testing.B) {
	for _, sync := range []bool{true, false} {
		b.Run(fmt.Sprintf("fsync=%v", sync), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{NoSync: !sync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			storetest.BenchmarkStorePath(b, s)
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
