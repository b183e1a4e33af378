package pipeline

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
)

// pagesSource serves its pages in order, then empty pages.
type pagesSource struct {
	mu    sync.Mutex
	pages []source.Page
}

func (s *pagesSource) Fingerprint() string { return "pages" }

func (s *pagesSource) Poll(ctx context.Context, cur source.Cursor) (source.Page, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pages) == 0 {
		return source.Page{Next: cur}, nil
	}
	p := s.pages[0]
	s.pages = s.pages[1:]
	p.More = len(s.pages) > 0
	return p, nil
}

func clockEvent(id string, at time.Time) event.Raw {
	return event.Raw{Source: "clock", Provider: "test", ID: id, Time: at, Data: []byte(fmt.Sprintf(`{"id":%q}`, id))}
}

// TestLateEventsAreCounted: an event first stored from an overlap re-read
// behind a watermark an earlier window passed is counted, with its depth.
func TestLateEventsAreCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "mem")
		w0 := time.Now().Add(-time.Hour)
		w1 := w0.Add(10 * time.Minute)
		src := &pagesSource{pages: []source.Page{
			{Events: []event.Raw{clockEvent("first-overlap", w0.Add(-time.Second))}, Next: source.Cursor("1"), Watermark: w0, LateBefore: w0},
			{Next: source.Cursor("2"), Watermark: w1},
			{Events: []event.Raw{clockEvent("late", w1.Add(-90*time.Second)), clockEvent("on-time", w1.Add(time.Second))},
				Next: source.Cursor("3"), Watermark: w1.Add(time.Minute), LateBefore: w1},
		}}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { r.source(src, 0).Run(ctx) })
		time.Sleep(time.Second)
		cancel()
		wg.Wait()
		if n := testutil.ToFloat64(r.metrics.late.WithLabelValues("clock")); n != 1 {
			t.Errorf("auditrelay_source_late_events_total = %v, want 1", n)
		}
		want := `
# HELP auditrelay_source_late_event_depth_seconds How far behind the watermark each late event was found. Near the source's overlap, events later still may be missed: raise settle_delay or overlap.
# TYPE auditrelay_source_late_event_depth_seconds histogram
auditrelay_source_late_event_depth_seconds_bucket{source="clock",le="1"} 0
auditrelay_source_late_event_depth_seconds_bucket{source="clock",le="5"} 0
auditrelay_source_late_event_depth_seconds_bucket{source="clock",le="15"} 0
auditrelay_source_late_event_depth_seconds_bucket{source="clock",le="30"} 0
auditrelay_source_late_event_depth_seconds_bucket{source="clock",le="60"} 0
auditrelay_source_late_event_depth_seconds_bucket{source="clock",le="120"} 1
auditrelay_source_late_event_depth_seconds_bucket{source="clock",le="300"} 1
auditrelay_source_late_event_depth_seconds_bucket{source="clock",le="600"} 1
auditrelay_source_late_event_depth_seconds_bucket{source="clock",le="900"} 1
auditrelay_source_late_event_depth_seconds_bucket{source="clock",le="1800"} 1
auditrelay_source_late_event_depth_seconds_bucket{source="clock",le="3600"} 1
auditrelay_source_late_event_depth_seconds_bucket{source="clock",le="7200"} 1
auditrelay_source_late_event_depth_seconds_bucket{source="clock",le="+Inf"} 1
auditrelay_source_late_event_depth_seconds_sum{source="clock"} 90
auditrelay_source_late_event_depth_seconds_count{source="clock"} 1
`
		if err := testutil.GatherAndCompare(r.reg, strings.NewReader(want), "auditrelay_source_late_event_depth_seconds"); err != nil {
			t.Error(err)
		}
	})
}
