package pipeline

import (
	"context"
	"log/slog"
)

// acker acknowledges a sink's batches in the background, for a sink that
// recognizes what it wrote before a restart (sink.Rereader). Each
// acknowledgement is a store commit, whose fsyncs wait behind every
// source's appends: the sink runner would otherwise send one batch per
// commit. Instead it sends on while one acknowledgement commits, and the
// batches sent meanwhile are acknowledged together in the next. A crash
// sends again everything whose acknowledgement had not committed, so at
// most limit events (what the sink recognizes) are ever sent and not
// acknowledged. Its methods are called from the runner's goroutine.
type acker struct {
	r     *SinkRunner
	ctx   context.Context
	log   *slog.Logger
	limit int

	done       chan error // the acknowledgement in flight; nil when none
	flight     int        // the events it acknowledges
	flightLast uint64     // the offset it stores

	last    uint64 // sent, their acknowledgement not started: up to last,
	n       int    // n events
	pending bool

	out int // events sent whose acknowledgement has not committed
}

// sent records a batch of n events, ending at offset last, that the sink
// accepted.
func (a *acker) sent(last uint64, n int) error {
	a.last, a.n, a.pending = last, a.n+n, true
	a.out += n
	return a.poll(false)
}

// room returns once n more events may be sent. A nil acker (every
// acknowledgement awaited) always has room.
func (a *acker) room(n int) error {
	if a == nil {
		return nil
	}
	if err := a.poll(false); err != nil {
		return err
	}
	for a.out+n > a.limit && (a.done != nil || a.pending) {
		if err := a.poll(true); err != nil {
			return err
		}
	}
	return nil
}

// flush returns once every batch sent is acknowledged; at once for a nil
// acker.
func (a *acker) flush() error {
	for a != nil && (a.done != nil || a.pending) {
		if err := a.poll(true); err != nil {
			return err
		}
	}
	return nil
}

// poll collects the acknowledgement in flight when it has committed
// (waiting for it if wait), then starts one for the batches sent since,
// if any.
func (a *acker) poll(wait bool) error {
	if a.done != nil {
		var err error
		if wait {
			err = <-a.done
		} else {
			select {
			case err = <-a.done:
			default:
				return nil
			}
		}
		a.done = nil
		if err != nil {
			return err
		}
		a.out -= a.flight
		a.r.Metrics.offset.WithLabelValues(a.r.Name).Set(float64(a.flightLast))
		a.r.Flow.acknowledged(a.r.now()) // the spool is smaller now
	}
	if a.pending {
		ch := make(chan error, 1)
		last, n := a.last, a.n
		a.done, a.flight, a.flightLast = ch, n, last
		a.n, a.pending = 0, false
		go func() { ch <- a.r.ack(a.ctx, a.log, last, n) }()
	}
	return nil
}
