package pipeline

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestFlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := NewFlow(100)
		var spool atomic.Int64
		waited := func() time.Duration {
			start := time.Now()
			f.wait(ctx, spool.Load, time.Now)
			return time.Since(start)
		}
		spool.Store(1000)
		if d := waited(); d != 0 {
			t.Errorf("no sink has acknowledged yet: waited %v, want 0", d)
		}
		f.acknowledged(time.Now())
		spool.Store(99)
		if d := waited(); d != 0 {
			t.Errorf("spool under the mark: waited %v, want 0", d)
		}
		// A sink delivers 100 bytes every 300ms: the spool is under the
		// mark after the third acknowledgement.
		spool.Store(350)
		go func() {
			for range 3 {
				time.Sleep(300 * time.Millisecond)
				spool.Add(-100)
				f.acknowledged(time.Now())
			}
		}()
		if d := waited(); d != 900*time.Millisecond {
			t.Errorf("waited %v for the sink to bring the spool under the mark, want 900ms", d)
		}
		// The sink stops: the source waits until it counts as down.
		spool.Store(1000)
		if d := waited(); d != flowIdle+flowWait {
			t.Errorf("the sinks stopped: waited %v, want %v (until they count as not delivering, seen at the next look)", d, flowIdle+flowWait)
		}
		if d := waited(); d != 0 {
			t.Errorf("the sinks are down: waited %v, want 0 (a dead sink holds nothing back)", d)
		}
		cctx, cancel := context.WithCancel(ctx)
		f.acknowledged(time.Now())
		go func() { time.Sleep(10 * time.Millisecond); cancel() }()
		start := time.Now()
		f.wait(cctx, spool.Load, time.Now)
		if d := time.Since(start); d != 10*time.Millisecond {
			t.Errorf("a cancelled wait took %v", d)
		}
		var nilFlow *Flow
		nilFlow.acknowledged(time.Now())
		nilFlow.wait(ctx, spool.Load, time.Now)
	})
}
