package pipeline

import (
	"context"
	"sync"
	"time"
)

// DefaultFlowHigh is the spool size above which sources wait for the sinks,
// when the sinks are delivering (see Flow).
const DefaultFlowHigh = 32 << 20

// The pacing of Flow.
const (
	// flowWait is the longest a source waits for an acknowledgement
	// before it looks at the spool and the sinks again.
	flowWait = time.Second
	// flowIdle is how long after the last acknowledgement the sinks count
	// as not delivering: a dead or halted sink then lets the spool fill up
	// to spool_max_bytes, as it always did.
	flowIdle = 5 * time.Second
)

// Flow keeps sources from running ahead of live sinks. Many sources
// catching up at once can store pages faster than a sink delivers them:
// without pacing, the spool grows to hold the whole backlog (memory and
// disk), and the sink, one goroutine among many pollers, gets an ever
// smaller share of the CPU. With a Flow, a source whose store holds more
// than High bytes waits, before its next poll, until the sinks have
// brought it under High again, but only while some sink has acknowledged a
// batch in the last few seconds: a sink that is down does not hold polling
// back, the spool absorbs its outage up to spool_max_bytes.
//
// One Flow is shared by the runners of a process. A nil *Flow paces
// nothing.
type Flow struct {
	high  int64
	mu    sync.Mutex
	acked chan struct{} // closed and replaced on every acknowledgement
	last  time.Time
}

// NewFlow returns a Flow pacing sources above high bytes of spool; high <= 0
// means DefaultFlowHigh.
func NewFlow(high int64) *Flow {
	if high <= 0 {
		high = DefaultFlowHigh
	}
	return &Flow{high: high, acked: make(chan struct{})}
}

// acknowledged records that a sink acknowledged a batch at now.
func (f *Flow) acknowledged(now time.Time) {
	if f == nil {
		return
	}
	f.mu.Lock()
	f.last = now
	close(f.acked)
	f.acked = make(chan struct{})
	f.mu.Unlock()
}

// ahead reports whether a source should wait, with the spool at spool
// bytes at now, and the channel that the next acknowledgement closes.
func (f *Flow) ahead(spool int64, now time.Time) (bool, <-chan struct{}) {
	if f == nil || spool < f.high {
		return false, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last.IsZero() || now.Sub(f.last) > flowIdle {
		return false, nil
	}
	return true, f.acked
}

// wait returns once the source may poll: when it is not ahead (spool
// returns the spool's size, now the time), looking again at every
// acknowledgement and every flowWait, or when ctx ends.
func (f *Flow) wait(ctx context.Context, spool func() int64, now func() time.Time) {
	for {
		ahead, acked := f.ahead(spool(), now())
		if !ahead {
			return
		}
		t := time.NewTimer(flowWait)
		select {
		case <-acked:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
}
