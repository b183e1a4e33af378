// Package pipeline runs sources into the store and the store into sinks. It
// knows the source and sink contracts, never a concrete provider or
// destination.
//
// A source runner polls, stores each page together with its cursor in one
// transaction, and pauses while the spool is at its size bound. A sink
// runner reads the spool from its own offset, sends, and advances the offset
// only after the sink acknowledged. Failures are retried by class: transient
// with capped jittered backoff, throttled after the server's Retry-After,
// permanent after a long pause with the operator's fix logged.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/sink"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store"
)

// Defaults used when a runner leaves a field zero.
const (
	DefaultPermanentRetry = 5 * time.Minute
	DefaultBatchSize      = 1000
	DefaultBatchBytes     = 4 << 20
)

// Health records which runners are halted on a permanent error, for
// readiness checks and status.
type Health struct {
	mu     sync.Mutex
	failed map[string]Halt
}

// Halt is a runner halted on a permanent error: what failed and, apart,
// the operator's fix.
type Halt struct {
	// Runner is "source/NAME" or "sink/NAME".
	Runner string `json:"runner"`
	// Error is the error without its fix.
	Error string `json:"error"`
	// Fix is what the operator does about it; empty when not known.
	Fix string `json:"fix,omitempty"`
	// full is the error as it was, its fix included.
	full string
}

// NewHealth returns an empty Health.
func NewHealth() *Health { return &Health{failed: map[string]Halt{}} }

func (h *Health) set(key string, err error) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		delete(h.failed, key)
		return
	}
	msg, fix := err.Error(), ""
	if de := (*delivery.Error)(nil); errors.As(err, &de) && de.Fix != "" {
		fix = de.Fix
		msg = strings.TrimSuffix(msg, " ("+fix+")")
	}
	h.failed[key] = Halt{Runner: key, Error: msg, Fix: fix, full: err.Error()}
}

// Failed returns the halted runners and their errors, each with its fix
// in parentheses.
func (h *Health) Failed() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]string, len(h.failed))
	for k, v := range h.failed {
		out[k] = v.full
	}
	return out
}

// Halts returns the halted runners sorted by runner.
func (h *Health) Halts() []Halt {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Halt, 0, len(h.failed))
	for _, v := range h.failed {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Runner < out[j].Runner })
	return out
}

// SourceRunner polls one source into the store.
type SourceRunner struct {
	Name         string
	Source       source.Source
	Store        store.Store
	PollInterval time.Duration
	// SpoolMax pauses polling while the spool holds at least this many
	// bytes; 0 means no bound.
	SpoolMax       int64
	Backoff        delivery.Backoff
	PermanentRetry time.Duration
	Logger         *slog.Logger
	Metrics        *Metrics
	Health         *Health
	// Now defaults to time.Now.
	Now func() time.Time
	// Until, when set, makes the runner read a bounded span (a backfill):
	// Run returns nil once a page with nothing more to read has a
	// watermark at or past Until. Such a runner exports no watermark:
	// its lag is not the source's.
	Until time.Time
	// Flow, when set, holds polling back while the spool is large and
	// the sinks are delivering it (see Flow).
	Flow *Flow
}

func (r *SourceRunner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Run polls until ctx is done. It returns nil on cancellation and an error
// only when the stored checkpoint cannot be used.
func (r *SourceRunner) Run(ctx context.Context) error {
	log := r.Logger.With("source", r.Name)
	cur, fp, err := r.Store.Cursor(r.Name)
	if err != nil {
		return err
	}
	if want := r.Source.Fingerprint(); fp != "" && fp != want {
		return fmt.Errorf("source %s: %w: stored for %s, the configuration now reads %s; stop auditrelay and run `auditrelay checkpoint reset --source %s --config FILE` to start it over from its lookback",
			r.Name, store.ErrFingerprint, fp, want, r.Name)
	}
	m := r.Metrics
	up := m.up.WithLabelValues("source", r.Name)
	up.Set(1)
	paused := m.paused.WithLabelValues(r.Name)
	key := "source/" + r.Name
	attempt := 0
	isPaused := false
	// While a page is being stored, the next one (when the source says one
	// is ready) is already fetched from its cursor: the fetch and decode of
	// page n+1 overlap the fsync of page n. Poll has no side effects, so a
	// prefetched page whose predecessor failed to store is simply used or
	// fetched again from the same cursor.
	var pending chan polled
	defer func() {
		if pending != nil {
			<-pending // its Poll ends with ctx
		}
	}()
	for ctx.Err() == nil {
		if r.SpoolMax > 0 && r.Store.SpoolBytes() >= r.SpoolMax {
			if !isPaused {
				isPaused = true
				paused.Set(1)
				log.Warn("spool full: polling paused until sinks catch up", "spool_bytes", r.Store.SpoolBytes(), "limit", r.SpoolMax)
			}
			delivery.Sleep(ctx, time.Second)
			continue
		}
		if isPaused {
			isPaused = false
			paused.Set(0)
			log.Info("spool below its bound: polling resumed")
		}
		if pending == nil {
			r.Flow.wait(ctx, r.Store.SpoolBytes, r.now)
			if ctx.Err() != nil {
				return nil
			}
		}
		var page source.Page
		var err error
		if pending != nil {
			got := <-pending
			pending = nil
			page, err = got.page, got.err
		} else {
			page, err = r.Source.Poll(ctx, cur)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			attempt++
			m.polls.WithLabelValues(r.Name, "error").Inc()
			r.fail(ctx, log, key, err, attempt)
			continue
		}
		m.polls.WithLabelValues(r.Name, "ok").Inc()
		spool := r.Store.SpoolBytes()
		ahead, _ := r.Flow.ahead(spool, r.now()) // then the next page waits for the sinks
		if page.More && (r.SpoolMax <= 0 || spool < r.SpoolMax) && !ahead {
			ch, next := make(chan polled, 1), page.Next
			pending = ch
			go func() {
				p, err := r.Source.Poll(ctx, next)
				ch <- polled{p, err}
			}()
		}
		res, err := r.store(ctx, log, page)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if attempt > 0 {
			log.Info("source recovered", "attempts", attempt)
		}
		attempt = 0
		r.Health.set(key, nil)
		up.Set(1)
		cur = page.Next
		m.eventsIn.WithLabelValues(r.Name).Add(float64(res.Added))
		m.duplicates.WithLabelValues(r.Name).Add(float64(res.Duplicates))
		if len(res.Late) > 0 {
			m.late.WithLabelValues(r.Name).Add(float64(len(res.Late)))
			h := m.lateDepth.WithLabelValues(r.Name)
			deepest := time.Duration(0)
			for _, d := range res.Late {
				h.Observe(d.Seconds())
				deepest = max(deepest, d)
			}
			log.Debug("late events found in the overlap", "events", len(res.Late), "deepest", deepest)
		}
		if !page.Watermark.IsZero() && r.Until.IsZero() {
			m.watermark.WithLabelValues(r.Name).Set(float64(page.Watermark.UnixMilli()) / 1e3)
		}
		if page.Gap != nil {
			m.gaps.WithLabelValues(r.Name).Inc()
			log.Error("events lost at the provider: span older than it serves", "from", page.Gap.From, "to", page.Gap.To, "reason", page.Gap.Reason)
		}
		log.Debug("poll", "events", res.Added, "duplicates", res.Duplicates, "watermark", page.Watermark, "more", page.More)
		if !r.Until.IsZero() && !page.More && !page.Watermark.Before(r.Until) {
			log.Info("span read to its end", "until", r.Until)
			return nil
		}
		if !page.More {
			delivery.Sleep(ctx, r.PollInterval)
		}
	}
	return nil
}

// polled is the outcome of a prefetched poll.
type polled struct {
	page source.Page
	err  error
}

// store appends a page, retrying store failures (disk full, fsync errors)
// until it is stored: the cursor never moves past data that is not on disk.
func (r *SourceRunner) store(ctx context.Context, log *slog.Logger, page source.Page) (store.AppendResult, error) {
	for attempt := 1; ; attempt++ {
		res, err := r.Store.Append(r.Name, r.Source.Fingerprint(), page, r.now())
		if err == nil {
			return res, nil
		}
		if errors.Is(err, store.ErrFingerprint) || isLeaseLost(err) {
			return res, err
		}
		r.Metrics.retries.WithLabelValues("source", r.Name, "store").Inc()
		d := r.Backoff.Delay(attempt)
		log.Error("cannot store polled events; polling paused, nothing is lost (free disk space or fix the data_dir; with store.postgres, bring the database back)", "err", err, "attempt", attempt, "delay", d)
		if !delivery.Sleep(ctx, d) {
			return res, ctx.Err()
		}
	}
}

func (r *SourceRunner) fail(ctx context.Context, log *slog.Logger, key string, err error, attempt int) {
	class, _ := delivery.ClassOf(err)
	r.Metrics.retries.WithLabelValues("source", r.Name, class.String()).Inc()
	if rerr := r.Store.RecordSourceError(r.Name, err.Error(), r.now()); rerr != nil {
		log.Warn("cannot record source error", "err", rerr)
	}
	d := r.Backoff.Wait(err, attempt)
	if class == delivery.Permanent {
		d = r.PermanentRetry
		if d <= 0 {
			d = DefaultPermanentRetry
		}
		r.Metrics.up.WithLabelValues("source", r.Name).Set(0)
		r.Health.set(key, err)
		log.Error("source halted: fix the configuration; retrying", "err", err, "attempt", attempt, "delay", d)
	} else if attempt >= 3 {
		log.Warn("poll failed; retrying", "err", err, "class", class.String(), "attempt", attempt, "delay", d)
	} else {
		log.Debug("poll failed; retrying", "err", err, "class", class.String(), "attempt", attempt, "delay", d)
	}
	delivery.Sleep(ctx, d)
}

// SinkRunner delivers the spool to one sink.
type SinkRunner struct {
	Name  string
	Sink  sink.Sink
	Store store.Store
	// Routes are the sources this sink takes.
	Routes map[string]bool
	// Park keeps the spool records that cannot be decoded before the
	// runner skips them; nil only logs and counts them.
	Park           park.Keeper
	BatchSize      int
	BatchBytes     int
	Backoff        delivery.Backoff
	PermanentRetry time.Duration
	Logger         *slog.Logger
	Metrics        *Metrics
	Health         *Health
	Now            func() time.Time
	// Owned, when set, reports whether this replica may still deliver for
	// the sink (it holds the sink's lease); a batch is sent only while it
	// does. Nil means always, as with a store on one machine.
	Owned func() bool
	// Flow, when set, is told of every acknowledgement, which lets the
	// sources it holds back poll again (see Flow).
	Flow *Flow
}

func (r *SinkRunner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Run delivers until ctx is done. A send in flight when ctx is cancelled
// is abandoned without acknowledging it: its events are sent again after a
// restart.
func (r *SinkRunner) Run(ctx context.Context) error {
	log := r.Logger.With("sink", r.Name)
	off, err := r.Store.Offset(r.Name)
	if err != nil {
		return err
	}
	size, bytes := r.BatchSize, r.BatchBytes
	if size <= 0 {
		size = DefaultBatchSize
	}
	if bytes <= 0 {
		bytes = DefaultBatchBytes
	}
	route := func(src string) bool { return r.Routes[src] }
	m := r.Metrics
	m.up.WithLabelValues("sink", r.Name).Set(1)
	m.offset.WithLabelValues(r.Name).Set(float64(off))
	// A sink that skips what it wrote before a restart has its batches
	// acknowledged in the background (see acker). With leases (Owned)
	// every acknowledgement is awaited, so that a replica that lost the
	// sink sends nothing more.
	var acks *acker
	if rr, ok := r.Sink.(sink.Rereader); ok && r.Owned == nil && rr.Rereads() >= 2*size {
		acks = &acker{r: r, ctx: ctx, log: log, limit: rr.Rereads()}
	}
	defer acks.flush()
	// The next batch is read while this one is sent: reading a batch
	// (the spool, its segment, decoding) is a third of a file sink's
	// work, and the send mostly waits for a write or the network.
	read := func(off uint64) spoolRead {
		changed := r.Store.Changed()
		batch, last, err := r.Store.Read(off, size, bytes, route)
		return spoolRead{changed: changed, batch: batch, last: last, err: err}
	}
	var next chan spoolRead // a read of the batch after off, in flight
	defer func() {
		if next != nil {
			<-next // the store outlives no read
		}
	}()
	for ctx.Err() == nil {
		var rd spoolRead
		if next != nil {
			rd, next = <-next, nil
		} else {
			rd = read(off)
		}
		changed, batch, last, err := rd.changed, rd.batch, rd.last, rd.err
		if ce := (*store.CorruptError)(nil); errors.As(err, &ce) {
			if err := acks.flush(); err != nil {
				return stopped(ctx, err)
			}
			if err := r.skipCorrupt(ctx, log, ce); err != nil {
				return stopped(ctx, err)
			}
			off = ce.Seq
			m.offset.WithLabelValues(r.Name).Set(float64(off))
			continue
		}
		if err != nil {
			m.retries.WithLabelValues("sink", r.Name, "store").Inc()
			log.Error("cannot read the spool; retrying", "err", err)
			delivery.Sleep(ctx, time.Second)
			continue
		}
		if last == off {
			if err := acks.flush(); err != nil {
				return stopped(ctx, err)
			}
			select {
			case <-ctx.Done():
			case <-changed:
			case <-time.After(5 * time.Second):
			}
			continue
		}
		if err := acks.room(len(batch)); err != nil {
			return stopped(ctx, err)
		}
		if r.Owned != nil && !r.Owned() {
			return &store.LeaseLostError{Kind: store.LeaseSink, Name: r.Name, Reason: "its lease was not renewed within lease_ttl (this replica was paused or cut off from the store), so the batch read was not sent"}
		}
		if len(batch) > 0 {
			next = make(chan spoolRead, 1)
			go func(ch chan<- spoolRead, from uint64) { ch <- read(from) }(next, last)
		}
		if len(batch) > 0 && !r.send(ctx, log, batch) {
			return nil
		}
		if acks != nil {
			if err := acks.sent(last, len(batch)); err != nil {
				return stopped(ctx, err)
			}
		} else if err := r.ack(ctx, log, last, len(batch)); err != nil {
			return stopped(ctx, err)
		} else {
			m.offset.WithLabelValues(r.Name).Set(float64(last))
			r.Flow.acknowledged(r.now())
		}
		off = last
		if len(batch) > 0 {
			m.eventsOut.WithLabelValues(r.Name).Add(float64(len(batch)))
			m.batches.WithLabelValues(r.Name).Inc()
			log.Debug("delivered", "events", len(batch), "offset", off)
		}
	}
	return nil
}

// spoolRead is the result of one read of the spool for a sink: the batch
// after an offset, the offset of its last event, and the channel that was
// current before the read (closed when more is stored).
type spoolRead struct {
	changed <-chan struct{}
	batch   []event.Raw
	last    uint64
	err     error
}

// send retries a batch until the sink accepts it; false means ctx ended.
func (r *SinkRunner) send(ctx context.Context, log *slog.Logger, batch []event.Raw) bool {
	key := "sink/" + r.Name
	failures := 0
	err := SendRetrying(ctx, r.Sink, batch, func(err error, attempt int) (time.Duration, bool) {
		failures++
		class, _ := delivery.ClassOf(err)
		r.Metrics.retries.WithLabelValues("sink", r.Name, class.String()).Inc()
		if rerr := r.Store.RecordSinkError(r.Name, err.Error(), r.now()); rerr != nil {
			log.Warn("cannot record sink error", "err", rerr)
		}
		d := r.Backoff.Wait(err, attempt)
		switch {
		case class == delivery.Permanent:
			d = r.PermanentRetry
			if d <= 0 {
				d = DefaultPermanentRetry
			}
			r.Metrics.up.WithLabelValues("sink", r.Name).Set(0)
			r.Health.set(key, err)
			log.Error("sink halted: fix the configuration; retrying", "err", err, "events", len(batch), "attempt", attempt, "delay", d)
		case attempt >= 3:
			log.Warn("send failed; retrying", "err", err, "class", class.String(), "events", len(batch), "attempt", attempt, "delay", d)
		default:
			log.Debug("send failed; retrying", "err", err, "class", class.String(), "attempt", attempt, "delay", d)
		}
		return d, true
	})
	if err != nil {
		return false
	}
	if failures > 0 {
		log.Info("sink recovered", "attempts", failures+1)
		r.Metrics.up.WithLabelValues("sink", r.Name).Set(1)
		r.Health.set(key, nil)
	}
	return true
}

// SendRetrying sends batch to s until s accepts it. After each failure it
// calls failed with the error and the attempt's number (1-based), which
// returns how long to wait before the next attempt, or false to give up:
// SendRetrying then returns that error. When ctx ends first it returns
// ctx's error. The sink runner and replay both send through it.
func SendRetrying(ctx context.Context, s sink.Sink, batch []event.Raw, failed func(err error, attempt int) (time.Duration, bool)) error {
	for attempt := 1; ; attempt++ {
		err := s.Send(ctx, batch)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d, again := failed(err, attempt)
		if !again {
			return err
		}
		if !delivery.Sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

// skipCorrupt keeps an unreadable spool record with the park keeper, then moves
// the offset past it, retrying failures of either. It fails when ctx ended
// first (the record is then found again after a restart) or the sink's
// lease was lost.
func (r *SinkRunner) skipCorrupt(ctx context.Context, log *slog.Logger, ce *store.CorruptError) error {
	reason := ce.Error()
	where := "nowhere (no park file): only this log line"
	for attempt := 1; r.Park != nil; attempt++ {
		err := r.Park.KeepRecord(ce.Seq, ce.Record, reason)
		if err == nil {
			where = r.Park.Where()
			break
		}
		r.Metrics.retries.WithLabelValues("sink", r.Name, "park").Inc()
		d := r.Backoff.Delay(attempt)
		log.Error("cannot keep an unreadable spool record with the parked events; retrying", "err", err, "attempt", attempt, "delay", d)
		if !delivery.Sleep(ctx, d) {
			return ctx.Err()
		}
	}
	for attempt := 1; ; attempt++ {
		err := r.Store.SkipCorrupt(r.Name, ce.Seq, r.now())
		if err == nil {
			break
		}
		if isLeaseLost(err) {
			return err
		}
		r.Metrics.retries.WithLabelValues("sink", r.Name, "store").Inc()
		d := r.Backoff.Delay(attempt)
		log.Error("cannot store the sink offset; retrying (free disk space or fix the data_dir; with store.postgres, bring the database back)", "err", err, "attempt", attempt, "delay", d)
		if !delivery.Sleep(ctx, d) {
			return ctx.Err()
		}
	}
	r.Metrics.corrupt.WithLabelValues(r.Name).Inc()
	log.Error("skipped an unreadable spool record; its event cannot be delivered (the store file may be damaged: check the disk)",
		"seq", ce.Seq, "bytes", len(ce.Record), "err", ce.Err, "kept", where)
	return nil
}

// ack stores the new offset, retrying store failures. It fails when ctx
// ended first (the batch is then delivered again after a restart) or the
// sink's lease was lost (the new owner delivers it again).
func (r *SinkRunner) ack(ctx context.Context, log *slog.Logger, last uint64, n int) error {
	for attempt := 1; ; attempt++ {
		err := r.Store.Ack(r.Name, last, n, r.now())
		if err == nil {
			return nil
		}
		if isLeaseLost(err) {
			return err
		}
		r.Metrics.retries.WithLabelValues("sink", r.Name, "store").Inc()
		d := r.Backoff.Delay(attempt)
		log.Error("cannot store the sink offset; retrying (free disk space or fix the data_dir; with store.postgres, bring the database back)", "err", err, "attempt", attempt, "delay", d)
		if !delivery.Sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

// isLeaseLost reports whether err says this replica lost the lease of the
// runner's work: the runner stops, and the new owner resumes from the last
// commit.
func isLeaseLost(err error) bool {
	var lost *store.LeaseLostError
	return errors.As(err, &lost)
}

// stopped returns what Run returns once a runner stops on err: nil when
// ctx ended, else err.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
