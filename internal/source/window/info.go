package window

import (
	"fmt"
	"time"

	"github.com/auditrelay/auditrelay/internal/source"
)

// Info is the readable form of a stored cursor, for `auditrelay checkpoint
// show` and `auditrelay status`. Its JSON keys are documented and stable;
// zero values are omitted.
type Info struct {
	// Watermark is the instant before which every event has been returned.
	// Zero when the source never polled.
	Watermark time.Time `json:"watermark,omitzero"`
	// Window is the window in progress, whose next page is stored: the
	// next poll continues it. Nil between windows.
	Window *Span `json:"window,omitempty"`
	// ExactStart reports that the next window starts at the watermark with
	// no overlap before it (start_at, or checkpoint set).
	ExactStart bool `json:"exact_start,omitempty"`
}

// Span is a window's bounds.
type Span struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Closed reports that To is included: [from, to] rather than [from, to).
	Closed bool `json:"closed,omitempty"`
}

// String formats the info on one line.
func (i Info) String() string {
	if i.Watermark.IsZero() {
		return "no checkpoint: the first poll starts at now - lookback"
	}
	s := "watermark " + i.Watermark.UTC().Format(time.RFC3339Nano)
	if w := i.Window; w != nil {
		end := ")"
		if w.Closed {
			end = "]"
		}
		s += ", window [" + w.From.UTC().Format(time.RFC3339Nano) + ", " + w.To.UTC().Format(time.RFC3339Nano) + end + " in progress"
	} else {
		s += ", between windows"
	}
	if i.ExactStart {
		s += "; the next window starts exactly there"
	}
	return s
}

// Describe decodes a stored cursor for display. A nil cursor (the source
// never polled) gives a zero Info.
func (e *Engine) Describe(cur source.Cursor) (Info, error) {
	if len(cur) == 0 {
		return Info{}, nil
	}
	c, err := e.codec.decode(cur)
	if err != nil {
		return Info{}, fmt.Errorf("%s: describe cursor: %w", e.cfg.Provider, err)
	}
	info := Info{Watermark: c.Until, ExactStart: c.Exact}
	if c.inWindow() {
		info.Window = &Span{From: c.From, To: c.To, Closed: e.cfg.Closed}
	}
	return info, nil
}

// CursorAt returns a cursor that resumes exactly at t: the next window
// starts there, with no overlap before it. It refuses an instant in the
// future or older than retention (the API no longer serves it).
func (e *Engine) CursorAt(t time.Time) (source.Cursor, error) {
	now := e.now().UTC()
	t = t.UTC().Truncate(e.cfg.Precision)
	if t.After(now) {
		return nil, fmt.Errorf("%s: %s is in the future", e.cfg.Provider, e.codec.format(t))
	}
	// An instant within the settle delay is allowed: the first window
	// waits until it has settled.
	if limit := e.limit(now); t.Before(limit) {
		return nil, fmt.Errorf("%s: %s is older than the API serves (%s is the oldest instant it can resume from)",
			e.cfg.Provider, e.codec.format(t), e.codec.format(limit))
	}
	return e.codec.encode(cursor{Until: t, Exact: true}), nil
}
