package sentinel

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/event"
)

// deliver sends batch until the sink accepts it, waiting as the pipeline
// does: the server's Retry-After, or capped jittered backoff. It returns
// the attempts made.
func deliver(t *testing.T, s *Sink, batch []event.Raw) int {
	t.Helper()
	b := delivery.Backoff{Base: time.Second, Max: time.Minute}
	for attempt := 1; ; attempt++ {
		err := s.Send(context.Background(), batch)
		if err == nil {
			return attempt
		}
		if delivery.IsPermanent(err) {
			t.Fatalf("permanent error: %v", err)
		}
		time.Sleep(b.Wait(err, attempt))
	}
}

func checkExactlyOnce(t *testing.T, r *rig, batches [][]event.Raw) {
	t.Helper()
	col := "id"
	if r.cfg.Format == FormatAuditRelay {
		col = "Id"
	}
	got := idCounts(r.rows(), col)
	want := 0
	for _, b := range batches {
		for _, ev := range b {
			want++
			if got[ev.ID] != 1 {
				t.Errorf("%s ingested %d times", ev.ID, got[ev.ID])
			}
		}
	}
	if len(got) != want {
		t.Errorf("%d distinct rows, want %d", len(got), want)
	}
}

// TestThrottleAndUnavailableStorms: with half the calls answered 429 or
// 503, every batch is delivered exactly once, honouring Retry-After.
func TestThrottleAndUnavailableStorms(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, FormatPingOneV2, emulator.SentinelOptions{Seed: 3}, func(c *Config) { c.MaxRequestBytes = 100000 })
		r.emu.SetFaults(emulator.SentinelFaults{Throttle: 0.3, ServerError: 0.2, RetryAfter: 5 * time.Second})
		var batches [][]event.Raw
		attempts := 0
		start := time.Now()
		for i := range 20 {
			b := synthetic("b"+string(rune('a'+i)), 300, 400) // several calls each
			batches = append(batches, b)
			attempts += deliver(t, r.sink, b)
		}
		checkExactlyOnce(t, r, batches)
		st := r.emu.Stats()
		if st.Faults < 20 {
			t.Errorf("only %d faults injected", st.Faults)
		}
		// Each fault asked for 5 s; a retry never came sooner.
		if el := time.Since(start); el < time.Duration(attempts-20)*5*time.Second {
			t.Errorf("%d retries in %v: Retry-After not honoured", attempts-20, el)
		}
		t.Logf("%d calls, %d faults, %d attempts, %v simulated", st.Calls, st.Faults, attempts, time.Since(start))
	})
}

// TestTenMinuteOutage: the service answers 503 for ten minutes; batches
// wait and are all delivered, once each, after it recovers.
func TestTenMinuteOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, FormatAuditRelay, emulator.SentinelOptions{}, nil)
		var batches [][]event.Raw
		for i := range 5 {
			batches = append(batches, synthetic("pre"+string(rune('a'+i)), 60, 100))
		}
		deliver(t, r.sink, batches[0])
		r.emu.SetDown(http.StatusServiceUnavailable)
		start := time.Now()
		go func() {
			time.Sleep(10 * time.Minute)
			r.emu.SetDown(0)
		}()
		for _, b := range batches[1:] {
			deliver(t, r.sink, b)
		}
		if el := time.Since(start); el < 10*time.Minute || el > 12*time.Minute {
			t.Errorf("delivered after %v, want shortly after the 10-minute outage", el)
		}
		checkExactlyOnce(t, r, batches)
		if n := r.emu.Stats().Faults; n < 10 {
			t.Errorf("only %d calls failed during the outage", n)
		}
	})
}
