package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/auditrelay/auditrelay/internal/store"
)

// The lag history a running daemon keeps for the status page: one sample
// of every source's lag and every sink's delivered count per
// sampleInterval, the last sampleCount of them (an hour).
const (
	sampleInterval = 30 * time.Second
	sampleCount    = 120
)

// LagSample is a source's lag at an instant: how far its watermark was
// behind the clock.
type LagSample struct {
	At      time.Time `json:"at"`
	Seconds float64   `json:"seconds"`
}

// SourceLive is what a running daemon adds to the store's state of a
// source.
type SourceLive struct {
	// Provider and Tenant say what the source reads.
	Provider string `json:"provider,omitempty"`
	Tenant   string `json:"tenant,omitempty"`
	// LagHistory holds the lag sampled every 30 seconds over the last
	// hour, oldest first, then the lag at the status's own instant; empty
	// before the source has a watermark.
	LagHistory []LagSample `json:"lag_history,omitempty"`
}

// SinkLive is what a running daemon adds to the store's state of a sink.
type SinkLive struct {
	// EventsPerSecond is the rate of delivered events between the last two
	// samples (30 seconds apart).
	EventsPerSecond float64 `json:"events_per_second"`
	// Parked counts the events this process parked for the sink (in its
	// park file, or the PostgreSQL store's parked table).
	Parked int64 `json:"parked"`
}

// sampler keeps the lag history of the sources and the delivered counts of
// the sinks, sampled from snapshots of the store.
type sampler struct {
	mu   sync.Mutex
	lag  map[string][]LagSample
	prev map[string]delivered // the sample before last
	last map[string]delivered
}

// delivered is a sink's delivered count at an instant.
type delivered struct {
	at time.Time
	n  uint64
}

func newSampler() *sampler {
	return &sampler{lag: map[string][]LagSample{}, prev: map[string]delivered{}, last: map[string]delivered{}}
}

// add records the sample of snap taken at now.
func (s *sampler) add(now time.Time, snap store.Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, src := range snap.Sources {
		if src.Watermark.IsZero() {
			continue
		}
		h := append(s.lag[src.Name], LagSample{At: now.UTC(), Seconds: max(0, now.Sub(src.Watermark).Seconds())})
		if len(h) > sampleCount {
			h = append(h[:0], h[len(h)-sampleCount:]...)
		}
		s.lag[src.Name] = h
	}
	for _, sk := range snap.Sinks {
		if l, ok := s.last[sk.Name]; ok {
			s.prev[sk.Name] = l
		}
		s.last[sk.Name] = delivered{at: now, n: sk.Delivered}
	}
}

// lagHistory returns a copy of a source's lag history.
func (s *sampler) lagHistory(name string) []LagSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]LagSample(nil), s.lag[name]...)
}

// rate returns a sink's delivered events per second between its last two
// samples; 0 before it has two.
func (s *sampler) rate(name string) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.prev[name]
	l := s.last[name]
	dt := l.at.Sub(p.at).Seconds()
	if !ok || dt <= 0 || l.n < p.n {
		return 0
	}
	return float64(l.n-p.n) / dt
}

// sample samples the store at once and then every sampleInterval until ctx
// is done.
func (d *Daemon) sample(ctx context.Context) {
	t := time.NewTicker(sampleInterval)
	defer t.Stop()
	for {
		if snap, err := d.Snapshot(); err == nil {
			d.samples.add(time.Now(), snap)
		} else {
			d.log.Debug("status sample", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// AllSources returns the states of every source named (the configured ones,
// in their order), a zero state for each the store does not know, followed
// by the stored states of other sources.
func AllSources(names []string, stored []store.SourceState) []store.SourceState {
	byName := map[string]store.SourceState{}
	for _, s := range stored {
		byName[s.Name] = s
	}
	var out []store.SourceState
	for _, name := range names {
		s, ok := byName[name]
		if !ok {
			s = store.SourceState{Name: name}
		}
		out = append(out, s)
		delete(byName, name)
	}
	for _, s := range stored {
		if _, ok := byName[s.Name]; ok {
			out = append(out, s)
		}
	}
	return out
}

// status returns the running daemon's status: the store's state with
// every configured source, the halted runners, and the figures only the
// process has.
func (d *Daemon) status() (Status, error) {
	snap, err := d.Snapshot()
	if err != nil {
		return Status{}, err
	}
	snap.Sources = AllSources(d.cfg.SourceNames(), snap.Sources)
	st := Status{Version: d.version, Running: true, Store: snap, Halted: d.health.Failed(), Halts: d.health.Halts(),
		SpoolMaxBytes: int64(d.cfg.SpoolMaxBytes),
		Sources:       make(map[string]SourceLive, len(d.sources)), Sinks: make(map[string]SinkLive, len(d.sinks))}
	now := time.Now()
	watermarks := make(map[string]time.Time, len(snap.Sources))
	for _, s := range snap.Sources {
		watermarks[s.Name] = s.Watermark
	}
	for _, s := range d.sources {
		h := d.samples.lagHistory(s.Name)
		if wm := watermarks[s.Name]; !wm.IsZero() {
			h = append(h, LagSample{At: now.UTC(), Seconds: max(0, now.Sub(wm).Seconds())})
		}
		st.Sources[s.Name] = SourceLive{Provider: s.Provider, Tenant: s.Tenant, LagHistory: h}
	}
	for _, s := range d.sinks {
		l := SinkLive{EventsPerSecond: d.samples.rate(s.Name)}
		if s.Parked != nil {
			l.Parked = s.Parked()
		}
		st.Sinks[s.Name] = l
	}
	return st, nil
}
