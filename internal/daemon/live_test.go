package daemon

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/auditrelay/auditrelay/internal/store"
)

// TestSamplerKeepsAnHour: the lag history holds the last 120 samples, the
// oldest first, and skips a source before its first watermark; the rate is
// the delivered events per second between the last two samples.
func TestSamplerKeepsAnHour(t *testing.T) {
	s := newSampler()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	wm := t0.Add(-time.Minute)
	for i := range 130 {
		now := t0.Add(time.Duration(i) * sampleInterval)
		s.add(now, store.Snapshot{
			Sources: []store.SourceState{{Name: "a", Watermark: wm}, {Name: "never"}},
			Sinks:   []store.SinkState{{Name: "k", Delivered: uint64(i) * 300}},
		})
	}
	h := s.lagHistory("a")
	if len(h) != sampleCount {
		t.Fatalf("%d samples kept, want %d", len(h), sampleCount)
	}
	if want := t0.Add(10 * sampleInterval); !h[0].At.Equal(want) {
		t.Errorf("oldest sample at %v, want %v", h[0].At, want)
	}
	last := h[len(h)-1]
	if want := (129*sampleInterval + time.Minute).Seconds(); last.Seconds != want {
		t.Errorf("newest lag %v s, want %v s", last.Seconds, want)
	}
	if got := s.lagHistory("never"); len(got) != 0 {
		t.Errorf("a source without a watermark has samples: %v", got)
	}
	if got, want := s.rate("k"), 300/sampleInterval.Seconds(); got != want {
		t.Errorf("rate = %v, want %v", got, want)
	}
	if got := s.rate("unknown"); got != 0 {
		t.Errorf("rate of an unknown sink = %v, want 0", got)
	}
	// A copy: the caller cannot change the history.
	h[0].Seconds = -1
	if s.lagHistory("a")[0].Seconds == -1 {
		t.Error("lagHistory returned the sampler's own slice")
	}
}

// TestSamplerOneSample: with one sample there is no rate yet.
func TestSamplerOneSample(t *testing.T) {
	s := newSampler()
	s.add(time.Now(), store.Snapshot{Sinks: []store.SinkState{{Name: "k", Delivered: 10}}})
	if got := s.rate("k"); got != 0 {
		t.Errorf("rate after one sample = %v, want 0", got)
	}
}

func TestAllSources(t *testing.T) {
	got := AllSources([]string{"a", "b"}, []store.SourceState{{Name: "old", Events: 1}, {Name: "b", Events: 2}})
	want := []store.SourceState{{Name: "a"}, {Name: "b", Events: 2}, {Name: "old", Events: 1}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("AllSources (-want +got):\n%s", d)
	}
}
