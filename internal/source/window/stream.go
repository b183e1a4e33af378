package window

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/source"
)

// StreamFetcher is what a provider with a continuation ordered by commit
// time supplies (Okta's polling mode): no windows, no settle delay; the
// cursor is the API's own next link.
type StreamFetcher interface {
	// Start returns the position of a stream that begins at since.
	Start(ctx context.Context, since time.Time) (string, error)
	// Fetch reads the page at pos.
	Fetch(ctx context.Context, pos string) (Result, error)
	// Refused reports whether err is the API refusing pos (expired or
	// unknown), to be started again from the watermark.
	Refused(err error) bool
}

// StreamConfig is the stream engine's configuration for one source.
type StreamConfig struct {
	// Name, Provider, Precision, Lookback, Retention, RetentionMargin,
	// GapReason, Now and Logger are as in Config.
	Name            string
	Provider        string
	Precision       time.Duration
	Lookback        time.Duration
	Retention       time.Duration
	RetentionMargin time.Duration
	GapReason       string
	Now             func() time.Time
	Logger          *slog.Logger
	// Restart is how far behind the watermark a stream starts again when
	// its stored position is refused; the store's dedup drops the events
	// read twice.
	Restart time.Duration
	// DedupWindow is how long the ids of delivered events are kept, by
	// event time behind the watermark. It covers Restart and events that
	// the API commits late with an older time.
	DedupWindow time.Duration
	// CheckPos, when set, checks a stored position at decoding.
	CheckPos func(pos string) error
}

// Stream walks one source's continuation.
type Stream struct {
	cfg    StreamConfig
	f      StreamFetcher
	layout string
	log    *slog.Logger
	now    func() time.Time
}

// NewStream returns a stream engine reading through f. It does no I/O.
func NewStream(cfg StreamConfig, f StreamFetcher) (*Stream, error) {
	switch {
	case f == nil:
		return nil, errors.New("window: new stream: no fetcher")
	case cfg.Provider == "":
		return nil, errors.New("window: new stream: no provider name")
	case cfg.Precision <= 0 || cfg.Precision > time.Second:
		return nil, fmt.Errorf("window: new stream: precision %v is not between 1ns and 1s", cfg.Precision)
	case cfg.Retention <= cfg.RetentionMargin:
		return nil, fmt.Errorf("window: new stream: retention %v is not longer than its margin %v", cfg.Retention, cfg.RetentionMargin)
	case cfg.Restart < 0 || cfg.Lookback < 0:
		return nil, errors.New("window: new stream: negative restart or lookback")
	case cfg.DedupWindow < cfg.Restart:
		return nil, fmt.Errorf("window: new stream: dedup window %v is shorter than the restart overlap %v", cfg.DedupWindow, cfg.Restart)
	}
	if cfg.GapReason == "" {
		cfg.GapReason = fmt.Sprintf("older than the %v the API serves", cfg.Retention)
	}
	s := &Stream{cfg: cfg, f: f, layout: layoutFor(cfg.Precision), log: cfg.Logger, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// streamCursor is the decoded form of a stream's source.Cursor: the
// watermark (every event committed before it has been returned) and the
// position of the next page. Without a position the stream starts at
// Since, or when that is zero at the watermark less the restart overlap.
type streamCursor struct {
	Watermark time.Time
	Pos       string
	Since     time.Time
}

type streamJSON struct {
	V         int    `json:"v"`
	Watermark string `json:"watermark"`
	Next      string `json:"next,omitempty"`
	Since     string `json:"since,omitempty"`
}

func (s *Stream) encode(c streamCursor) source.Cursor {
	j := streamJSON{V: cursorVersion, Watermark: c.Watermark.UTC().Format(s.layout), Next: c.Pos}
	if c.Pos == "" && !c.Since.IsZero() {
		j.Since = c.Since.UTC().Format(s.layout)
	}
	b, _ := json.Marshal(j)
	return b
}

func (s *Stream) decode(b source.Cursor) (streamCursor, error) {
	k := codec{layout: s.layout, prec: s.cfg.Precision, provider: s.cfg.Provider}
	if len(b) > maxCursorBytes {
		return streamCursor{}, fmt.Errorf("cursor is %d bytes, more than a %s cursor can be", len(b), s.cfg.Provider)
	}
	var j streamJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return streamCursor{}, fmt.Errorf("cursor is not a %s cursor: %w", s.cfg.Provider, err)
	}
	if j.V != cursorVersion {
		return streamCursor{}, fmt.Errorf("cursor version %d is not supported (want %d)", j.V, cursorVersion)
	}
	var c streamCursor
	var err error
	if c.Watermark, err = k.parseTime("watermark", j.Watermark); err != nil {
		return streamCursor{}, err
	}
	if strings.ContainsFunc(j.Next, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return streamCursor{}, errors.New("cursor next holds control characters")
	}
	if j.Next != "" && s.cfg.CheckPos != nil {
		if err := s.cfg.CheckPos(j.Next); err != nil {
			return streamCursor{}, fmt.Errorf("cursor next: %w", err)
		}
	}
	c.Pos = j.Next
	if j.Since != "" {
		if c.Pos != "" {
			return streamCursor{}, errors.New("cursor has both a next link and a start")
		}
		if c.Since, err = k.parseTime("since", j.Since); err != nil {
			return streamCursor{}, err
		}
	}
	return c, nil
}

// Poll reads the page at the stored position. An empty page means caught
// up: the watermark moves to the instant of the request and More is false.
// A refused position, or a watermark older than retention, starts the
// stream again (reporting a Gap for what retention lost).
func (s *Stream) Poll(ctx context.Context, cur source.Cursor) (source.Page, error) {
	p := s.cfg.Provider
	now := s.now().UTC()
	asked := now.Truncate(s.cfg.Precision)
	limit := now.Add(-s.cfg.Retention + s.cfg.RetentionMargin).Truncate(s.cfg.Precision)
	var c streamCursor
	if len(cur) == 0 {
		c.Watermark = later(now.Add(-s.cfg.Lookback).Truncate(s.cfg.Precision), limit)
		c.Since = c.Watermark
	} else {
		var err error
		if c, err = s.decode(cur); err != nil {
			return source.Page{}, &delivery.Error{Class: delivery.Permanent, Op: p + ": poll", Err: err,
				Fix: "the stored checkpoint is not one this source can resume: run `auditrelay checkpoint reset --source " + s.cfg.Name + " --config FILE`, which starts it over from its lookback"}
		}
	}
	var gap *source.Gap
	if c.Watermark.Before(limit) {
		gap = &source.Gap{From: c.Watermark, To: limit, Reason: s.cfg.GapReason}
		s.log.Warn(p+": events are lost: the watermark is older than the API serves", "watermark", c.Watermark, "resume", limit)
		c = streamCursor{Watermark: limit}
	}
	fresh := false
	// readFrom is the oldest time this read covers: where a stream
	// starts, or its watermark when it goes on. Its dedup horizon reaches
	// further back and says nothing of where it began reading.
	readFrom := c.Watermark
	if c.Pos == "" {
		since := c.Since
		if since.IsZero() {
			since = c.Watermark.Add(-s.cfg.Restart)
		}
		since = later(since, limit)
		pos, err := s.start(ctx, since)
		if err != nil {
			return source.Page{}, err
		}
		c.Pos, fresh, readFrom = pos, true, since
	}
	res, err := s.f.Fetch(ctx, c.Pos)
	if err != nil && !fresh && s.f.Refused(err) {
		s.log.Warn(p+": stored next link refused; starting again from the watermark less the restart overlap",
			"watermark", c.Watermark, "restart", s.cfg.Restart, "err", err)
		since := later(c.Watermark.Add(-s.cfg.Restart), limit)
		pos, serr := s.start(ctx, since)
		if serr != nil {
			return source.Page{}, serr
		}
		c.Pos, readFrom = pos, since
		res, err = s.f.Fetch(ctx, c.Pos)
	}
	if err != nil {
		return source.Page{}, err
	}
	out := source.Page{Events: res.Events, Gap: gap, ReadFrom: readFrom}
	next := streamCursor{Watermark: c.Watermark, Pos: res.Next}
	switch {
	case len(res.Events) == 0:
		// Caught up: everything committed before this request was
		// returned.
		next.Watermark = later(c.Watermark, asked)
	default:
		for _, ev := range res.Events {
			next.Watermark = later(next.Watermark, ev.Time.UTC().Truncate(s.cfg.Precision))
		}
		// More pages may be ready, unless the API pointed back at this
		// page: asking again at once would loop on it.
		out.More = res.Next != "" && res.Next != c.Pos
		if res.Next == c.Pos {
			s.log.Warn(p + ": the API gave back the next link it was called with after a full page; waiting for the poll interval")
		}
	}
	next.Watermark = earlier(next.Watermark, asked) // an event stamped in the future does not move it past now
	out.Next, out.Watermark = s.encode(next), next.Watermark
	out.DedupHorizon = later(next.Watermark.Add(-s.cfg.DedupWindow), limit)
	s.log.Debug(p+": polled", "events", len(res.Events), "watermark", out.Watermark, "more", out.More)
	return out, nil
}

func (s *Stream) start(ctx context.Context, since time.Time) (string, error) {
	pos, err := s.f.Start(ctx, since)
	if err != nil {
		return "", err
	}
	if pos == "" {
		return "", &delivery.Error{Class: delivery.Transient, Op: s.cfg.Provider + ": start", Msg: "no position for the stream's first page"}
	}
	s.log.Debug(s.cfg.Provider+": stream started", "since", since)
	return pos, nil
}

// Describe decodes a stored stream cursor for display.
func (s *Stream) Describe(cur source.Cursor) (Info, error) {
	if len(cur) == 0 {
		return Info{}, nil
	}
	c, err := s.decode(cur)
	if err != nil {
		return Info{}, fmt.Errorf("%s: describe cursor: %w", s.cfg.Provider, err)
	}
	return Info{Watermark: c.Watermark}, nil
}

// CursorAt returns a cursor that starts the stream at t. It refuses an
// instant in the future or older than retention.
func (s *Stream) CursorAt(t time.Time) (source.Cursor, error) {
	now := s.now().UTC()
	t = t.UTC().Truncate(s.cfg.Precision)
	if t.After(now) {
		return nil, fmt.Errorf("%s: %s is in the future", s.cfg.Provider, t.Format(s.layout))
	}
	if limit := now.Add(-s.cfg.Retention + s.cfg.RetentionMargin).Truncate(s.cfg.Precision); t.Before(limit) {
		return nil, fmt.Errorf("%s: %s is older than the API serves (%s is the oldest instant it can resume from)",
			s.cfg.Provider, t.Format(s.layout), limit.Format(s.layout))
	}
	return s.encode(streamCursor{Watermark: t, Since: t}), nil
}
