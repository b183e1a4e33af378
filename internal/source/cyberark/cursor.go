package cyberark

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/source"
)

// cursorVersion is the version of the cursor encoding written here. A
// cursor of another version is refused, never guessed at.
const cursorVersion = 1

// maxCursorBytes bounds a stored cursor: a cursorRef is a base64 query and
// position, a few kilobytes at most.
const maxCursorBytes = 256 << 10

// cursorTimeLayout is the format of the cursor's instants: UTC, whole
// seconds, the API's precision.
const cursorTimeLayout = "2006-01-02T15:04:05Z"

// cursor is the decoded form of a source.Cursor.
//
// Until is the watermark: every event whose timestamp is before it has been
// returned. While a window is in progress, From and To bound it, [From, To)
// in whole seconds, and Ref is the API's cursorRef of its next results page.
// Exact, between windows only, makes the next window start at Until without
// overlap: the first window after start_at.
type cursor struct {
	Until time.Time
	From  time.Time
	To    time.Time
	Ref   string
	Exact bool
}

type cursorJSON struct {
	V     int    `json:"v"`
	Until string `json:"until"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
	Ref   string `json:"cursorRef,omitempty"`
	Exact bool   `json:"exact,omitempty"`
}

func (c cursor) inWindow() bool { return c.Ref != "" }

func formatCursorTime(t time.Time) string { return t.UTC().Format(cursorTimeLayout) }

func (c cursor) encode() source.Cursor {
	j := cursorJSON{V: cursorVersion, Until: formatCursorTime(c.Until)}
	if c.inWindow() {
		j.From, j.To, j.Ref = formatCursorTime(c.From), formatCursorTime(c.To), c.Ref
	} else {
		j.Exact = c.Exact
	}
	b, _ := json.Marshal(j) // strings and an int always marshal
	return b
}

// decodeCursor parses and checks a stored cursor. It never panics; an error
// means the cursor was not written by this package, or was damaged.
func decodeCursor(b source.Cursor) (cursor, error) {
	if len(b) > maxCursorBytes {
		return cursor{}, fmt.Errorf("cursor is %d bytes, more than a cyberark cursor can be", len(b))
	}
	var j cursorJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return cursor{}, fmt.Errorf("cursor is not a cyberark cursor: %w", err)
	}
	if j.V != cursorVersion {
		return cursor{}, fmt.Errorf("cursor version %d is not supported (want %d)", j.V, cursorVersion)
	}
	var c cursor
	var err error
	if c.Until, err = parseCursorTime("until", j.Until); err != nil {
		return cursor{}, err
	}
	if j.From == "" && j.To == "" && j.Ref == "" {
		c.Exact = j.Exact
		return c, nil
	}
	if j.Exact {
		return cursor{}, errors.New("cursor has exact with a window in progress")
	}
	if j.From == "" || j.To == "" || j.Ref == "" {
		return cursor{}, errors.New("cursor has a partial window (want from, to and cursorRef together)")
	}
	if c.From, err = parseCursorTime("from", j.From); err != nil {
		return cursor{}, err
	}
	if c.To, err = parseCursorTime("to", j.To); err != nil {
		return cursor{}, err
	}
	if !c.From.Before(c.To) {
		return cursor{}, fmt.Errorf("cursor window [%s, %s) is empty", j.From, j.To)
	}
	if c.Until.Before(c.From) || !c.Until.Before(c.To) {
		return cursor{}, fmt.Errorf("cursor watermark %s is outside its window [%s, %s)", j.Until, j.From, j.To)
	}
	if strings.ContainsFunc(j.Ref, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return cursor{}, errors.New("cursor cursorRef holds control characters")
	}
	c.Ref = j.Ref
	return c, nil
}

func parseCursorTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, fmt.Errorf("cursor has no %s", field)
	}
	t, err := time.Parse(cursorTimeLayout, v)
	if err != nil || t.Format(cursorTimeLayout) != v {
		return time.Time{}, fmt.Errorf("cursor %s %q is not a UTC timestamp in whole seconds", field, v)
	}
	if t.Year() < 1970 {
		return time.Time{}, fmt.Errorf("cursor %s %q is out of range", field, v)
	}
	return t.UTC(), nil
}

// CursorInfo is the human view of a stored cursor, for `auditrelay
// checkpoint show` and `auditrelay status`. Its JSON keys are stable and
// documented; zero values are left out.
type CursorInfo struct {
	// Watermark is the instant before which every event has been returned;
	// zero when the source never polled.
	Watermark time.Time `json:"watermark,omitzero"`
	// MidWindow reports that a window is in progress: its cursorRef is
	// stored and the next poll continues it.
	MidWindow bool `json:"mid_window,omitempty"`
	// From and To bound the window in progress, [From, To).
	From time.Time `json:"window_from,omitzero"`
	To   time.Time `json:"window_to,omitzero"`
	// Exact reports that the next window starts at the watermark without
	// overlap (start_at, before its first window).
	Exact bool `json:"exact,omitempty"`
}

// String formats the info on one line.
func (i CursorInfo) String() string {
	if i.Watermark.IsZero() {
		return "no checkpoint: the first poll starts at now - lookback"
	}
	s := "watermark " + formatCursorTime(i.Watermark)
	if i.MidWindow {
		s += ", window [" + formatCursorTime(i.From) + ", " + formatCursorTime(i.To) + ") in progress"
	} else {
		s += ", between windows"
	}
	if i.Exact {
		s += "; the first window starts exactly there (start_at)"
	}
	return s
}

// Describe decodes a stored cursor for display. A nil cursor gives a zero
// CursorInfo.
func (s *Source) Describe(cur source.Cursor) (CursorInfo, error) {
	if len(cur) == 0 {
		return CursorInfo{}, nil
	}
	c, err := decodeCursor(cur)
	if err != nil {
		return CursorInfo{}, fmt.Errorf("cyberark: describe cursor: %w", err)
	}
	info := CursorInfo{Watermark: c.Until, Exact: c.Exact}
	if c.inWindow() {
		info.MidWindow, info.From, info.To = true, c.From, c.To
	}
	return info, nil
}

// CursorAt returns a cursor that resumes reading exactly at t, for
// `auditrelay checkpoint set`: like start_at, the next window starts at t
// (in whole seconds) without overlap. It refuses a t in the future, or
// older than retention.
func (s *Source) CursorAt(t time.Time) (source.Cursor, error) {
	now := s.now().UTC()
	t = t.UTC().Truncate(time.Second)
	if t.After(now) {
		return nil, fmt.Errorf("cyberark: %s is in the future (now is %s): give an instant that has passed", formatCursorTime(t), formatCursorTime(now))
	}
	if limit := now.Add(-s.cfg.Retention.D() + retentionMargin); t.Before(limit) {
		return nil, fmt.Errorf("cyberark: %s is older than retention (%v; the oldest instant it can resume from is %s): give a later instant, or raise retention if the tenant keeps events that long",
			formatCursorTime(t), s.cfg.Retention, formatCursorTime(limit))
	}
	return cursor{Until: t, Exact: true}.encode(), nil
}
