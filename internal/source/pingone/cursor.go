package pingone

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/source"
)

// cursorVersion is the version of the cursor encoding written by this
// package. A cursor of another version is refused, never guessed at.
const cursorVersion = 1

// maxCursorBytes bounds a stored cursor: one next-page URL and three
// timestamps fit many times over.
const maxCursorBytes = 64 << 10

// timeLayout is the timestamp format of filters and cursors: UTC with
// millisecond precision, the API's own precision.
const timeLayout = "2006-01-02T15:04:05.000Z"

// cursor is the decoded form of a source.Cursor.
//
// Until is the watermark: every event recorded before it has been returned.
// When a window is in progress, From and To bound it (half-open, [From, To))
// and Next is the URL of its next page; otherwise all three are zero.
type cursor struct {
	Until time.Time
	From  time.Time
	To    time.Time
	Next  string
}

// cursorJSON is the stored form of a cursor.
type cursorJSON struct {
	V     int    `json:"v"`
	Until string `json:"until"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
	Next  string `json:"next,omitempty"`
}

// inWindow reports whether a window is in progress.
func (c cursor) inWindow() bool { return c.Next != "" }

// formatTime formats t as the API and the cursor expect it.
func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// encode returns the stored form of c.
func (c cursor) encode() source.Cursor {
	j := cursorJSON{V: cursorVersion, Until: formatTime(c.Until)}
	if c.inWindow() {
		j.From, j.To, j.Next = formatTime(c.From), formatTime(c.To), c.Next
	}
	b, _ := json.Marshal(j) // a struct of strings and an int always marshals
	return b
}

// decodeCursor parses and checks a stored cursor. It never panics, whatever
// the input; an error means the cursor was not written by this package (or
// was damaged) and must not be resumed.
func decodeCursor(b source.Cursor) (cursor, error) {
	if len(b) > maxCursorBytes {
		return cursor{}, fmt.Errorf("cursor is %d bytes, more than a pingone cursor can be", len(b))
	}
	var j cursorJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return cursor{}, fmt.Errorf("cursor is not a pingone cursor: %w", err)
	}
	if j.V != cursorVersion {
		return cursor{}, fmt.Errorf("cursor version %d is not supported (want %d)", j.V, cursorVersion)
	}
	var c cursor
	var err error
	if c.Until, err = parseCursorTime("until", j.Until); err != nil {
		return cursor{}, err
	}
	if c.Until.IsZero() {
		return cursor{}, errors.New("cursor has no until")
	}
	if j.From == "" && j.To == "" && j.Next == "" {
		return c, nil
	}
	if j.From == "" || j.To == "" || j.Next == "" {
		return cursor{}, errors.New("cursor has a partial window (want from, to and next together)")
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
	u, err := url.Parse(j.Next)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return cursor{}, errors.New("cursor next page is not an absolute http(s) URL")
	}
	c.Next = j.Next
	return c, nil
}

// parseCursorTime parses one of a cursor's timestamps.
func parseCursorTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, fmt.Errorf("cursor has no %s", field)
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || !strings.HasSuffix(v, "Z") {
		return time.Time{}, fmt.Errorf("cursor %s %q is not a UTC timestamp", field, v)
	}
	return t.UTC().Truncate(time.Millisecond), nil
}

// CursorInfo is the human view of a stored cursor, for `auditrelay
// checkpoint show` and `auditrelay status`. Its JSON keys are stable and
// documented; zero values are left out.
type CursorInfo struct {
	// Watermark is the instant before which every event has been returned.
	// Zero when the source has never polled.
	Watermark time.Time `json:"watermark,omitzero"`
	// MidWindow reports that a window is in progress: its next page is stored
	// and the next poll continues it.
	MidWindow bool `json:"mid_window,omitempty"`
	// From and To bound the window in progress, [From, To); zero when none.
	From time.Time `json:"window_from,omitzero"`
	To   time.Time `json:"window_to,omitzero"`
}

// String formats the info on one line.
func (i CursorInfo) String() string {
	if i.Watermark.IsZero() {
		return "no checkpoint: the first poll starts at now - lookback"
	}
	s := "watermark " + formatTime(i.Watermark)
	if i.MidWindow {
		s += ", window [" + formatTime(i.From) + ", " + formatTime(i.To) + ") in progress"
	} else {
		s += ", between windows"
	}
	return s
}

// Describe decodes a stored cursor for display. A nil cursor (the source
// never polled) gives a zero CursorInfo.
func (s *Source) Describe(cur source.Cursor) (CursorInfo, error) {
	if len(cur) == 0 {
		return CursorInfo{}, nil
	}
	c, err := decodeCursor(cur)
	if err != nil {
		return CursorInfo{}, fmt.Errorf("pingone: describe cursor: %w", err)
	}
	info := CursorInfo{Watermark: c.Until}
	if c.inWindow() {
		info.MidWindow, info.From, info.To = true, c.From, c.To
	}
	return info, nil
}

// CursorAt returns a cursor that resumes reading at t, for `auditrelay
// checkpoint set`: the next window starts at t (less the overlap, which
// deduplication absorbs). It refuses a t in the future, or older than the
// 14 days the activities API serves.
func (s *Source) CursorAt(t time.Time) (source.Cursor, error) {
	now := s.now().UTC()
	t = t.UTC().Truncate(time.Millisecond)
	if t.After(now) {
		return nil, fmt.Errorf("pingone: %s is in the future (now is %s): give an instant that has passed", formatTime(t), formatTime(now))
	}
	if limit := now.Add(-MaxLookback + retentionMargin); t.Before(limit) {
		return nil, fmt.Errorf("pingone: %s is older than the 14 days the activities API serves (the oldest instant it can resume from is %s): give a later instant, or ask PingOne for an audit restore",
			formatTime(t), formatTime(limit.Truncate(time.Millisecond)))
	}
	return cursor{Until: t}.encode(), nil
}
