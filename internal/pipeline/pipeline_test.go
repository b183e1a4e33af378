package pipeline

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store/bolt"
)

// clockSource emits one event every tick of (fake) time, up to now, with a
// cursor holding the time of the next event. It re-serves the last event of
// every poll, as an overlap re-read would, so dedup is exercised too.
type clockSource struct {
	tick  time.Duration
	start time.Time
	mu    sync.Mutex
	polls int
}

func (s *clockSource) Fingerprint() string { return "clock" }

func (s *clockSource) Poll(ctx context.Context, cur source.Cursor) (source.Page, error) {
	s.mu.Lock()
	s.polls++
	s.mu.Unlock()
	next := s.start
	if len(cur) == 8 {
		next = time.Unix(0, int64(binary.BigEndian.Uint64(cur)))
	}
	now := time.Now()
	var evs []event.Raw
	first := next.Add(-s.tick) // overlap: repeat the previous event
	if first.Before(s.start) {
		first = s.start
	}
	for t := first; t.Before(now) && len(evs) < 500; t = t.Add(s.tick) {
		id := fmt.Sprintf("e%d", t.Sub(s.start)/s.tick)
		evs = append(evs, event.Raw{Source: "clock", Provider: "test", ID: id, Time: t,
			Data: json.RawMessage(fmt.Sprintf(`{"id":%q}`, id))})
		next = t.Add(s.tick)
	}
	return source.Page{Events: evs, Next: binary.BigEndian.AppendUint64(nil, uint64(next.UnixNano())),
		Watermark: next, More: len(evs) == 500}, nil
}

func (s *clockSource) pollCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polls
}

// memSink records what it accepted; it fails while down reports an error.
type memSink struct {
	mu   sync.Mutex
	ids  []string
	down func() error
}

func (m *memSink) Send(ctx context.Context, batch []event.Raw) error {
	if m.down != nil {
		if err := m.down(); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range batch {
		m.ids = append(m.ids, e.ID)
	}
	return nil
}

func (m *memSink) Close(context.Context) error { return nil }

func (m *memSink) got() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.ids...)
}

type rig struct {
	st      *bolt.Store
	metrics *Metrics
	reg     *prometheus.Registry
	health  *Health
	log     *slog.Logger
}

func newRig(t *testing.T, sinks ...string) *rig {
	st, err := bolt.Open(t.TempDir(), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.SetSinks(sinks); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	return &rig{st: st, metrics: NewMetrics(reg), reg: reg, health: NewHealth(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func (r *rig) source(src source.Source, spoolMax int64) *SourceRunner {
	return &SourceRunner{Name: "clock", Source: src, Store: r.st, PollInterval: time.Second, SpoolMax: spoolMax,
		Backoff: delivery.Backoff{Base: time.Second, Max: time.Minute}, Logger: r.log, Metrics: r.metrics, Health: r.health}
}

func (r *rig) sink(name string, s *memSink) *SinkRunner {
	return &SinkRunner{Name: name, Sink: s, Store: r.st, Routes: map[string]bool{"clock": true}, BatchSize: 100,
		Backoff: delivery.Backoff{Base: time.Second, Max: time.Minute}, PermanentRetry: 5 * time.Minute,
		Logger: r.log, Metrics: r.metrics, Health: r.health}
}

// checkExactlyOnce asserts ids are e0..e(n-1), each once, in order.
func checkExactlyOnce(t *testing.T, name string, ids []string, n int) {
	t.Helper()
	if len(ids) != n {
		t.Errorf("sink %s got %d events, want %d", name, len(ids), n)
	}
	for i, id := range ids {
		if want := fmt.Sprintf("e%d", i); id != want {
			t.Errorf("sink %s event %d is %s, want %s (loss or duplicate)", name, i, id, want)
			return
		}
	}
}

func TestTenMinuteSinkOutageBlocksNoOther(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "flaky", "steady")
		start := time.Now()
		src := &clockSource{tick: 100 * time.Millisecond, start: start}
		outage := func() error {
			if e := time.Since(start); e > 2*time.Minute && e < 12*time.Minute {
				return &delivery.Error{Class: delivery.Transient, Op: "test: send", Status: 503}
			}
			return nil
		}
		flaky, steady := &memSink{down: outage}, &memSink{}
		ctx, cancel := context.WithCancel(context.Background())
		srcCtx, stopSource := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { r.source(src, 0).Run(srcCtx) })
		wg.Go(func() { r.sink("flaky", flaky).Run(ctx) })
		wg.Go(func() { r.sink("steady", steady).Run(ctx) })

		time.Sleep(11 * time.Minute)
		// the steady sink is current while the flaky one is stuck
		if n := len(steady.got()); n < 6500 {
			t.Errorf("steady sink has %d events after 11 minutes; blocked by the outage?", n)
		}
		if n := len(flaky.got()); n > 1300 {
			t.Errorf("flaky sink has %d events, more than before its outage", n)
		}
		if v := testutil.ToFloat64(r.metrics.retries.WithLabelValues("sink", "flaky", "transient")); v < 5 {
			t.Errorf("retries of the flaky sink = %v", v)
		}
		time.Sleep(9 * time.Minute)
		stopSource()
		time.Sleep(10 * time.Second) // let both sinks drain
		cancel()
		wg.Wait()
		n := int(time.Duration(20*time.Minute) / (100 * time.Millisecond))
		// events up to the last poll: both sinks identical, exactly once
		s := steady.got()
		if len(s) < n-20 {
			t.Fatalf("steady sink has %d events, want about %d", len(s), n)
		}
		checkExactlyOnce(t, "steady", s, len(s))
		checkExactlyOnce(t, "flaky", flaky.got(), len(s))
		if r.st.SpoolCount() != 0 {
			t.Errorf("spool still holds %d events every sink acknowledged", r.st.SpoolCount())
		}
	})
}

func TestFullSpoolPausesPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "dead")
		start := time.Now()
		src := &clockSource{tick: 10 * time.Millisecond, start: start}
		var mu sync.Mutex
		isDown := true
		sink := &memSink{down: func() error {
			mu.Lock()
			defer mu.Unlock()
			if isDown {
				return errors.New("connection refused")
			}
			return nil
		}}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		const bound = 32 << 10
		wg.Go(func() { r.source(src, bound).Run(ctx) })
		wg.Go(func() { r.sink("dead", sink).Run(ctx) })
		time.Sleep(2 * time.Minute)
		if got := testutil.ToFloat64(r.metrics.paused.WithLabelValues("clock")); got != 1 {
			t.Errorf("paused = %v with a full spool", got)
		}
		polls := src.pollCount()
		bytes := r.st.SpoolBytes()
		if bytes < bound || bytes > bound+64<<10 {
			t.Errorf("spool holds %d bytes; want just past the %d bound", bytes, bound)
		}
		time.Sleep(time.Minute)
		if src.pollCount() != polls {
			t.Errorf("source polled %d more times while the spool was full", src.pollCount()-polls)
		}
		mu.Lock()
		isDown = false
		mu.Unlock()
		time.Sleep(3 * time.Minute)
		cancel()
		wg.Wait()
		got := sink.got()
		if len(got) < 10000 {
			t.Errorf("after recovery only %d events delivered", len(got))
		}
		checkExactlyOnce(t, "dead", got, len(got))
		if got := testutil.ToFloat64(r.metrics.paused.WithLabelValues("clock")); got != 0 {
			t.Errorf("still paused after the sink recovered")
		}
	})
}

func TestPermanentErrorHaltsAndHeals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "s")
		start := time.Now()
		src := &clockSource{tick: time.Second, start: start}
		var mu sync.Mutex
		fixed := false
		sink := &memSink{down: func() error {
			mu.Lock()
			defer mu.Unlock()
			if !fixed {
				return &delivery.Error{Class: delivery.Permanent, Op: "test: send", Status: 403, Fix: "grant the role"}
			}
			return nil
		}}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { r.source(src, 0).Run(ctx) })
		wg.Go(func() { r.sink("s", sink).Run(ctx) })
		time.Sleep(time.Minute)
		if f := r.health.Failed(); f["sink/s"] == "" {
			t.Errorf("health does not report the halted sink: %v", f)
		}
		if up := testutil.ToFloat64(r.metrics.up.WithLabelValues("sink", "s")); up != 0 {
			t.Errorf("runner_up = %v while halted", up)
		}
		// Not t.Fatal: the runners must be stopped before the bubble ends.
		switch snap, err := r.st.Snapshot(); {
		case err != nil:
			t.Errorf("snapshot: %v", err)
		case len(snap.Sinks) != 1:
			t.Errorf("status has %d sinks, want 1: %+v", len(snap.Sinks), snap.Sinks)
		case snap.Sinks[0].LastError == "":
			t.Error("status has no last error for the halted sink")
		}
		mu.Lock()
		fixed = true
		mu.Unlock()
		time.Sleep(6 * time.Minute) // the next permanent retry comes after 5 minutes
		if f := r.health.Failed(); len(f) != 0 {
			t.Errorf("still failed after the fix: %v", f)
		}
		cancel()
		wg.Wait()
		got := sink.got()
		if len(got) < 400 {
			t.Errorf("delivered %d events after healing", len(got))
		}
		checkExactlyOnce(t, "s", got, len(got))
	})
}

// blockingSink blocks in Send until ctx is cancelled.
type blockingSink struct{ entered chan struct{} }

func (b *blockingSink) Send(ctx context.Context, _ []event.Raw) error {
	close(b.entered)
	<-ctx.Done()
	return ctx.Err()
}
func (b *blockingSink) Close(context.Context) error { return nil }

func TestShutdownAbandonsUnackedSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "s")
		src := &clockSource{tick: time.Second, start: time.Now().Add(-10 * time.Second)}
		if _, err := r.st.Append("clock", "clock", mustPoll(t, src), time.Now()); err != nil {
			t.Fatal(err)
		}
		bs := &blockingSink{entered: make(chan struct{})}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		sr := r.sink("s", nil)
		sr.Sink = bs
		go func() { done <- sr.Run(ctx) }()
		<-bs.entered
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v, want nil on shutdown", err)
		}
		if off, _ := r.st.Offset("s"); off != 0 {
			t.Fatalf("offset advanced to %d for an abandoned send", off)
		}
	})
}

func mustPoll(t *testing.T, s source.Source) source.Page {
	p, err := s.Poll(context.Background(), nil)
	if err != nil || len(p.Events) == 0 {
		t.Fatalf("poll: %d events, %v", len(p.Events), err)
	}
	return p
}

// gatedSink is a memSink whose first Send waits for release.
type gatedSink struct {
	memSink
	entered, release chan struct{}
	once             sync.Once
}

func (g *gatedSink) Send(ctx context.Context, batch []event.Raw) error {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return g.memSink.Send(ctx, batch)
}

// TestStoredDuringSendIsDelivered: the runner reads the next batch while
// one is being sent; events stored after that read are still delivered at
// once (not at the next 5 s wake-up), each once and in order.
func TestStoredDuringSendIsDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "s")
		at := time.Now().Add(-time.Hour)
		page := func(from, n int, next string) source.Page {
			var evs []event.Raw
			for i := from; i < from+n; i++ {
				evs = append(evs, clockEvent(fmt.Sprintf("e%d", i), at))
			}
			return source.Page{Events: evs, Next: source.Cursor(next), Watermark: at}
		}
		if _, err := r.st.Append("clock", "clock", page(0, 100, "1"), time.Now()); err != nil {
			t.Fatal(err)
		}
		g := &gatedSink{entered: make(chan struct{}), release: make(chan struct{})}
		sr := r.sink("s", nil)
		sr.Sink = g
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- sr.Run(ctx) }()
		<-g.entered
		synctest.Wait() // the read of the batch after the first has found nothing
		if _, err := r.st.Append("clock", "clock", page(100, 150, "2"), time.Now()); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		close(g.release)
		for len(g.got()) < 250 && time.Since(start) < time.Minute {
			time.Sleep(100 * time.Millisecond)
		}
		if waited := time.Since(start); waited >= time.Second {
			t.Errorf("events stored during a send waited %v to be delivered", waited)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
		checkExactlyOnce(t, "s", g.got(), 250)
		if off, _ := r.st.Offset("s"); off != 250 {
			t.Errorf("offset %d after delivering 250 events", off)
		}
	})
}
