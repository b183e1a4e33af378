package store

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
)

// TestAppendCountsLateEvents: an event first stored from an overlap re-read
// behind a watermark that an earlier window reached is late, with how far
// behind it was; the first window's overlap and repeats are not.
func TestAppendCountsLateEvents(t *testing.T) {
	s := open(t, t.TempDir())
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	w0 := t0
	// The first window starts at the lookback and re-reads the overlap
	// before it: those events were never passed over.
	res, err := s.Append("s1", "fp", source.Page{Events: []event.Raw{ev("s1", "old", w0.Add(-30*time.Second)), ev("s1", "a", w0.Add(time.Second))},
		Next: source.Cursor("c1"), Watermark: w0, LateBefore: w0, DedupHorizon: w0.Add(-time.Minute)}, t0)
	if err != nil || res.Added != 2 || len(res.Late) != 0 {
		t.Fatalf("first window = %+v, %v; want 2 added, none late", res, err)
	}
	// The first window ends at w1; the next re-reads behind it and finds
	// "a" again (a repeat), "late" 40 s behind it and "new" after it.
	w1 := w0.Add(10 * time.Minute)
	if _, err := s.Append("s1", "fp", source.Page{Next: source.Cursor("c2"), Watermark: w1, DedupHorizon: w0}, t0); err != nil {
		t.Fatal(err)
	}
	res, err = s.Append("s1", "fp", source.Page{Events: []event.Raw{ev("s1", "a", w0.Add(time.Second)), ev("s1", "late", w1.Add(-40*time.Second)), ev("s1", "new", w1.Add(time.Second))},
		Next: source.Cursor("c3"), Watermark: w1, LateBefore: w1, DedupHorizon: w1.Add(-time.Minute)}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 2 || res.Duplicates != 1 {
		t.Fatalf("second window = %+v", res)
	}
	if diff := cmp.Diff([]time.Duration{40 * time.Second}, res.Late); diff != "" {
		t.Fatalf("late (-want +got):\n%s", diff)
	}
	snap, err := s.Snapshot()
	if err != nil || len(snap.Sources) != 1 || snap.Sources[0].Late != 1 || !snap.Sources[0].FirstWatermark.Equal(w0) {
		t.Fatalf("source state %+v, %v; want 1 late, first watermark %v", snap.Sources, err, w0)
	}
	// A checkpoint moved by an operator starts a first window again.
	w2 := w1.Add(time.Hour)
	if err := s.SetCursor("s1", "fp", source.Cursor("c4"), w2); err != nil {
		t.Fatal(err)
	}
	res, err = s.Append("s1", "fp", source.Page{Events: []event.Raw{ev("s1", "before-set", w2.Add(-10*time.Second))},
		Next: source.Cursor("c5"), Watermark: w2, LateBefore: w2}, t0)
	if err != nil || res.Added != 1 || len(res.Late) != 0 {
		t.Fatalf("after checkpoint set = %+v, %v; want nothing late", res, err)
	}
}
