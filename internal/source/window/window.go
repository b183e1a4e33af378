// Package window is the one implementation of windowed polling for audit
// APIs that are queried by time: it owns the time arithmetic (half-open
// windows at the API's precision, the settle delay, the overlap re-read,
// bounded catch-up windows, retention limits reported as gaps) and the
// cursor format (checkpointed after every page, restarted when the API
// refuses a stored page position). A provider supplies only how to open a
// window and fetch one page of it, through Fetcher.
//
// The algorithm, for each poll:
//
//   - with no window in progress, the next window is [until − overlap,
//     min(now − settle_delay, until + max_window)), clamped to what the API
//     still serves; a resume older than that is reported as a Gap, never
//     skipped silently;
//   - one page of the window is fetched; its events outside the window are
//     dropped; the cursor stored with them holds the next page's position,
//     or, once the window is read, the new watermark (its end);
//   - a stored position the API refuses is read again from the window's
//     first page (halving the window first for cursors that expire), and
//     the store's dedup drops what was already read.
package window

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
)

// Keys under which a cursor stores its page position (Config.PosKey).
const (
	// PosNext stores a next-page link (PingOne, Microsoft Graph).
	PosNext = "next"
	// PosCursorRef stores a server-side results cursor (CyberArk).
	PosCursorRef = "cursorRef"
)

// Window is the span one query reads: [From, To), or [From, To] when the
// Config says Closed.
type Window struct {
	From, To time.Time
}

// Result is one page of a window.
type Result struct {
	// Events are the page's events, each with its provider time; those
	// outside the window are dropped by the engine.
	Events []event.Raw
	// Next is the position of the window's next page; empty when this
	// page was its last.
	Next string
}

// Fetcher is what a provider supplies: how to read one window.
type Fetcher interface {
	// Open returns the position of the first page of w. It may call the
	// API (to create a server-side query) or only build a URL.
	Open(ctx context.Context, w Window) (string, error)
	// Fetch reads the page of w at pos, a position Open or an earlier
	// Fetch returned (possibly stored across a restart).
	Fetch(ctx context.Context, w Window, pos string) (Result, error)
	// Refused reports whether err is the API refusing pos: an expired or
	// unknown page position, to be read again from a fresh one.
	Refused(err error) bool
}

// Refusal says what to do when the API refuses a stored page position.
type Refusal int

const (
	// RestartWindow reads the window again from its first page.
	RestartWindow Refusal = iota
	// HalveWindow halves the window (keeping its start) before reading it
	// again, so that a window too large to be read within a cursor's
	// lifetime still makes progress.
	HalveWindow
)

// Config is the engine's configuration for one source.
type Config struct {
	// Name is the source's configured name, quoted in the fix of an
	// unreadable checkpoint.
	Name string
	// Provider names the provider in logs and errors ("pingone").
	Provider string
	// Precision is the API's timestamp precision: time.Millisecond,
	// time.Second, 100 * time.Nanosecond. Every bound is truncated to it.
	Precision time.Duration
	// SettleDelay keeps windows this far behind now: the time an event may
	// take to become visible in query results.
	SettleDelay time.Duration
	// Overlap is re-read behind the watermark at the start of each window;
	// the store's dedup drops what was already delivered.
	Overlap time.Duration
	// Lookback is how far back the first poll starts.
	Lookback time.Duration
	// Retention is how far back the API serves events; queries stay
	// RetentionMargin inside it.
	Retention       time.Duration
	RetentionMargin time.Duration
	// GapReason is the reason of a Gap reported when a resume is older
	// than retention.
	GapReason string
	// MaxWindow caps how far one window moves the watermark, so that a
	// long catch-up proceeds in bounded windows.
	MaxWindow time.Duration
	// StartAt, when set, is where the first poll starts instead of the
	// lookback: exactly there, with no overlap before it.
	StartAt time.Time
	// EndAt, when set, bounds the span read: no window ends after it, and
	// once the watermark has reached it every poll returns an empty page
	// with the watermark at EndAt and More false (a backfill of a past
	// span, done).
	EndAt time.Time
	// Closed makes windows include their end instant: [From, To].
	Closed bool
	// OnRefused is what a refused stored position does.
	OnRefused Refusal
	// ServerPositions says that Open creates positions on the server (a
	// results cursor): one refused right after it was created is the API
	// misbehaving and is retried as a transient error. Otherwise the
	// first page's position is the query itself, and the provider's own
	// classification of its refusal stands.
	ServerPositions bool
	// PosKey is the cursor key of the page position: PosNext (default)
	// or PosCursorRef.
	PosKey string
	// CheckPos, when set, checks a stored position at decoding (for
	// example that a link is an absolute https URL).
	CheckPos func(pos string) error
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives the engine's logs; the caller attaches the source's
	// name. Default: discard.
	Logger *slog.Logger
}

// Engine walks windows for one source. It keeps no state between polls:
// everything it needs is in the cursor.
type Engine struct {
	cfg   Config
	f     Fetcher
	codec codec
	log   *slog.Logger
	now   func() time.Time
}

// New returns an engine reading through f. It does no I/O.
func New(cfg Config, f Fetcher) (*Engine, error) {
	switch {
	case f == nil:
		return nil, errors.New("window: new engine: no fetcher")
	case cfg.Provider == "":
		return nil, errors.New("window: new engine: no provider name")
	case cfg.Precision <= 0 || cfg.Precision > time.Second:
		return nil, fmt.Errorf("window: new engine: precision %v is not between 1ns and 1s", cfg.Precision)
	case cfg.MaxWindow < cfg.Precision:
		return nil, fmt.Errorf("window: new engine: max window %v is shorter than the precision", cfg.MaxWindow)
	case cfg.Retention <= cfg.RetentionMargin:
		return nil, fmt.Errorf("window: new engine: retention %v is not longer than its margin %v", cfg.Retention, cfg.RetentionMargin)
	case cfg.SettleDelay < 0 || cfg.Overlap < 0 || cfg.Lookback < 0:
		return nil, errors.New("window: new engine: negative settle delay, overlap or lookback")
	}
	if cfg.PosKey == "" {
		cfg.PosKey = PosNext
	}
	if cfg.PosKey != PosNext && cfg.PosKey != PosCursorRef {
		return nil, fmt.Errorf("window: new engine: unknown position key %q", cfg.PosKey)
	}
	if cfg.GapReason == "" {
		cfg.GapReason = fmt.Sprintf("older than the %v the API serves", cfg.Retention)
	}
	e := &Engine{cfg: cfg, f: f, codec: newCodec(&cfg), log: cfg.Logger, now: cfg.Now}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	return e, nil
}

// Poll reads the next page after cur: the next page of the window in
// progress, or the first page of the next window. See the package
// documentation.
func (e *Engine) Poll(ctx context.Context, cur source.Cursor) (source.Page, error) {
	p := e.cfg.Provider
	now := e.now().UTC()
	settled := now.Add(-e.cfg.SettleDelay).Truncate(e.cfg.Precision)
	limit := e.limit(now)
	overlap := e.cfg.Overlap
	var c cursor
	if len(cur) == 0 {
		// A lookback reaching back to the retention limit is a choice,
		// not a loss: start at the oldest instant served, with no gap.
		c.Until = later(now.Add(-e.cfg.Lookback).Truncate(e.cfg.Precision), limit)
		if !e.cfg.StartAt.IsZero() {
			// Take over exactly where another collector stopped: no
			// overlap before start_at, even if the first window has to
			// wait for it to settle. A start older than retention is
			// reported as a gap, like a resume.
			c.Until, c.Exact = e.cfg.StartAt.UTC().Truncate(e.cfg.Precision), true
		}
	} else {
		var err error
		if c, err = e.codec.decode(cur); err != nil {
			return source.Page{}, &delivery.Error{Class: delivery.Permanent, Op: p + ": poll", Err: err,
				Fix: "the stored checkpoint is not one this source can resume: run `auditrelay checkpoint reset --source " + e.cfg.Name + " --config FILE`, which starts it over from its lookback"}
		}
	}
	if c.Exact {
		overlap = 0
	}
	if c.inWindow() && (c.From.Before(limit) || c.To.After(settled)) {
		// Written with a longer retention, a shorter settle delay or a
		// clock ahead of this one: finishing it would read what the API no
		// longer serves or has not settled yet.
		e.log.Warn(p+": stored window is outside what can be read now (retention or settle_delay changed, or the clock moved); starting a new window from the watermark",
			"cursor", e.describe(c), "watermark", c.Until)
		c = cursor{Until: c.Until}
	}

	var gap *source.Gap
	fresh := false // c.Pos was opened by this poll
	if !c.inWindow() {
		if c.Until.Before(limit) {
			gap = &source.Gap{From: c.Until, To: limit, Reason: e.cfg.GapReason}
			e.log.Warn(p+": events are lost: the watermark is older than the API serves",
				"watermark", c.Until, "resume", limit)
			c.Until = limit
		}
		to := earlier(settled, c.Until.Add(e.cfg.MaxWindow))
		if !e.cfg.EndAt.IsZero() {
			to = earlier(to, e.cfg.EndAt.UTC().Truncate(e.cfg.Precision))
		}
		if !to.After(c.Until) {
			// Nothing has settled since the watermark: nothing to read.
			next := cur
			if len(cur) == 0 || gap != nil {
				next = e.codec.encode(c)
			}
			return source.Page{Next: next, Watermark: c.Until, Gap: gap,
				DedupHorizon: later(c.Until.Add(-e.cfg.Overlap), limit)}, nil
		}
		c.From, c.To, c.Exact = later(c.Until.Add(-overlap), limit), to, false
		pos, err := e.f.Open(ctx, Window{From: c.From, To: c.To})
		if err != nil {
			return source.Page{}, err
		}
		if pos == "" {
			return source.Page{}, &delivery.Error{Class: delivery.Transient, Op: p + ": open window",
				Msg: "the API gave no position for the window's first page"}
		}
		c.Pos, fresh = pos, true
		e.log.Debug(p+": window opened", "cursor", e.describe(c))
	}

	res, err := e.f.Fetch(ctx, Window{From: c.From, To: c.To}, c.Pos)
	if err != nil && !fresh && e.f.Refused(err) {
		if e.cfg.OnRefused == HalveWindow {
			if half := c.From.Add(c.To.Sub(c.From) / 2).Truncate(e.cfg.Precision); half.After(c.Until) {
				c.To = half
			}
		}
		e.log.Warn(p+": stored page position refused; reading its window again from the first page",
			"cursor", e.describe(c), "err", err)
		pos, oerr := e.f.Open(ctx, Window{From: c.From, To: c.To})
		if oerr != nil {
			return source.Page{}, oerr
		}
		c.Pos, fresh = pos, true
		res, err = e.f.Fetch(ctx, Window{From: c.From, To: c.To}, c.Pos)
	}
	if err != nil {
		var he *delivery.Error
		if e.cfg.ServerPositions && fresh && e.f.Refused(err) && errors.As(err, &he) {
			he.Class = delivery.Transient
		}
		return source.Page{}, err
	}

	events := res.Events[:0] // filtered in place: the page is the engine's to keep
	dropped := 0
	for _, ev := range res.Events {
		if ev.Time.Before(c.From) || ev.Time.After(c.To) || (!e.cfg.Closed && ev.Time.Equal(c.To)) {
			dropped++
			continue
		}
		events = append(events, ev)
	}
	if dropped > 0 {
		e.log.Debug(p+": dropped events outside the window", "cursor", e.describe(c), "events", dropped)
	}
	out := source.Page{Events: events, DedupHorizon: c.From, Gap: gap}
	if c.From.Before(c.Until) {
		out.LateBefore = c.Until // the overlap re-read behind the watermark
	}
	switch {
	case res.Next == "":
		e.finish(&out, c, settled)
	case res.Next == c.Pos:
		// The same position again would return the same page forever.
		e.log.Warn(p+": the API gave back the page position it was called with; ending the window", "cursor", e.describe(c))
		e.finish(&out, c, settled)
	default:
		c.Pos = res.Next
		out.Next, out.Watermark, out.More = e.codec.encode(c), c.Until, true
	}
	e.log.Debug(p+": polled", "cursor", e.describe(c), "events", len(events), "watermark", out.Watermark, "more", out.More)
	return out, nil
}

// finish fills out for the last page of c's window: the watermark moves
// to the window's end, and another window is ready at once when that end
// is older than the settle limit.
func (e *Engine) finish(out *source.Page, c cursor, settled time.Time) {
	done := cursor{Until: c.To}
	more := c.To.Before(settled)
	if !e.cfg.EndAt.IsZero() && !c.To.Before(e.cfg.EndAt.UTC().Truncate(e.cfg.Precision)) {
		more = false
	}
	out.Next, out.Watermark, out.More = e.codec.encode(done), c.To, more
}

// limit returns the oldest instant a query may start at now.
func (e *Engine) limit(now time.Time) time.Time {
	return now.Add(-e.cfg.Retention + e.cfg.RetentionMargin).Truncate(e.cfg.Precision)
}

// describe formats c's window for logs.
func (e *Engine) describe(c cursor) string {
	if !c.inWindow() {
		return "until " + e.codec.format(c.Until)
	}
	end := ")"
	if e.cfg.Closed {
		end = "]"
	}
	return "[" + e.codec.format(c.From) + ", " + e.codec.format(c.To) + end
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

// earlier returns the earlier of a and b.
func earlier(a, b time.Time) time.Time {
	if a.After(b) {
		return b
	}
	return a
}
