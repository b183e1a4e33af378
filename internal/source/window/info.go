package window

import (
	"fmt"
	"time"

	"github.com/auditrelay/auditrelay/internal/source"
)

// Info is the readable form of a stored cursor, for `auditrelay checkpoint
// show` and `auditrelay status`. Its JSON keys are documented and stable
// (docs/sources/*.md); zero values are omitted.
type Info struct {
	// Watermark is the instant before which every event has been returned.
	// Zero when the source never polled.
	Watermark time.Time `json:"watermark,omitzero"`
	// MidWindow reports that a window is in progress: its next page is
	// stored and the next poll continues it.
	MidWindow bool `json:"mid_window,omitempty"`
	// From and To bound the window in progress; zero between windows.
	From time.Time `json:"window_from,omitzero"`
	To   time.Time `json:"window_to,omitzero"`
	// Closed reports that the window includes To: [from, to].
	Closed bool `json:"window_closed,omitempty"`
	// Exact reports that the next window starts at the watermark with no
	// overlap before it (start_at, or checkpoint set).
	Exact bool `json:"exact,omitempty"`
}

// String formats the info on one line.
func (i Info) String() string {
	if i.Watermark.IsZero() {
		return "no checkpoint: the first poll starts at now - lookback"
	}
	s := "watermark " + i.Watermark.UTC().Format(time.RFC3339Nano)
	if i.MidWindow {
		end := ")"
		if i.Closed {
			end = "]"
		}
		s += ", window [" + i.From.UTC().Format(time.RFC3339Nano) + ", " + i.To.UTC().Format(time.RFC3339Nano) + end + " in progress"
	} else {
		s += ", between windows"
	}
	if i.Exact {
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
	info := Info{Watermark: c.Until, Exact: c.Exact}
	if c.inWindow() {
		info.MidWindow, info.From, info.To, info.Closed = true, c.From, c.To, e.cfg.Closed
	}
	return info, nil
}

// CursorAt returns a cursor that resumes exactly at t: the next window
// starts there, with no overlap before it. It refuses an instant in the
// future or older than retention (the API no longer serves it).
func (e *Engine) CursorAt(t time.Time) (source.Cursor, error) { return e.cursorAt(t, true) }

// CursorUntil returns a cursor whose watermark is t, between windows, as
// a window ending at t leaves it: the next window re-reads the overlap
// before t, and the store's dedup drops what it already holds. It refuses
// what CursorAt refuses.
func (e *Engine) CursorUntil(t time.Time) (source.Cursor, error) { return e.cursorAt(t, false) }

// cursorAt returns the cursor between windows at t, exact or not.
func (e *Engine) cursorAt(t time.Time, exact bool) (source.Cursor, error) {
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
	return e.codec.encode(cursor{Until: t, Exact: exact}), nil
}
