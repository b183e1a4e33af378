package store

import (
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/source"
)

// TestReadFrom: a source's ReadFrom is the start of its first window, moves
// back only when a page or a checkpoint reaches further back, and stays
// unknown for a state that never recorded it.
func TestReadFrom(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	now := t0.Add(time.Hour)
	var st SourceState
	page := func(horizon, watermark time.Time) {
		p := source.Page{DedupHorizon: horizon, Watermark: watermark}
		st.BeginPage("fp", &p)
		st.EndPage(&p, AppendResult{}, now)
	}
	page(t0.Add(-time.Minute), t0.Add(10*time.Minute))
	if want := t0.Add(-time.Minute); !st.ReadFrom.Equal(want) {
		t.Fatalf("ReadFrom after the first page = %v, want its window's start %v", st.ReadFrom, want)
	}
	page(t0.Add(9*time.Minute), t0.Add(20*time.Minute))
	if want := t0.Add(-time.Minute); !st.ReadFrom.Equal(want) {
		t.Errorf("ReadFrom after a later page = %v, want it kept at %v", st.ReadFrom, want)
	}
	st.SetCheckpoint("fp", t0.Add(-time.Hour))
	if want := t0.Add(-time.Hour); !st.ReadFrom.Equal(want) {
		t.Errorf("ReadFrom after a checkpoint set back = %v, want %v", st.ReadFrom, want)
	}
	st.SetCheckpoint("fp", t0.Add(time.Hour))
	if want := t0.Add(-time.Hour); !st.ReadFrom.Equal(want) {
		t.Errorf("ReadFrom after a checkpoint set forward = %v, want it kept at %v", st.ReadFrom, want)
	}

	old := SourceState{Watermark: t0, FirstWatermark: t0.Add(-time.Hour)} // written before ReadFrom existed
	p := source.Page{DedupHorizon: t0.Add(-time.Minute), Watermark: t0.Add(time.Minute)}
	old.BeginPage("fp", &p)
	old.SetCheckpoint("fp", t0.Add(-2*time.Hour))
	if !old.ReadFrom.IsZero() {
		t.Errorf("ReadFrom of an old state = %v, want it unknown", old.ReadFrom)
	}

	var fresh SourceState
	fresh.SetCheckpoint("fp", t0)
	if !fresh.ReadFrom.Equal(t0) {
		t.Errorf("ReadFrom of a source set before its first poll = %v, want %v", fresh.ReadFrom, t0)
	}
}
