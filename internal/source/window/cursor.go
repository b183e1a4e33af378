package window

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

// maxCursorBytes bounds a stored cursor: a page position (a next-page URL
// or an opaque token) and three timestamps fit many times over.
const maxCursorBytes = 256 << 10

// cursor is the decoded form of a source.Cursor.
//
// Until is the watermark: every event whose time is before it has been
// returned. While a window is in progress, From and To bound it and Pos is
// the provider's position of its next page; otherwise all three are zero.
// Exact, between windows only, makes the next window start at Until
// without overlap (a start_at taking over from another collector).
type cursor struct {
	Until time.Time
	From  time.Time
	To    time.Time
	Pos   string
	Exact bool
}

// cursorJSON is the stored form of a cursor. The position is stored under
// the key the provider names (Config.PosKey): "next" for a next-page link,
// "cursorRef" for CyberArk's results cursor.
type cursorJSON struct {
	V     int    `json:"v"`
	Until string `json:"until"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
	Next  string `json:"next,omitempty"`
	Ref   string `json:"cursorRef,omitempty"`
	Exact bool   `json:"exact,omitempty"`
}

// inWindow reports whether a window is in progress.
func (c cursor) inWindow() bool { return c.Pos != "" }

// codec encodes and decodes the cursors of one Config.
type codec struct {
	layout   string        // the format of the cursor's instants
	prec     time.Duration // their precision
	posKey   string        // "next" or "cursorRef"
	checkPos func(string) error
	provider string
}

func newCodec(cfg *Config) codec {
	return codec{layout: layoutFor(cfg.Precision), prec: cfg.Precision, posKey: cfg.PosKey,
		checkPos: cfg.CheckPos, provider: cfg.Provider}
}

// layoutFor returns the UTC timestamp layout with the fewest fraction
// digits that write every multiple of precision exactly: whole seconds, milliseconds, microseconds or the
// 100 ns ticks of Microsoft Graph.
func layoutFor(precision time.Duration) string {
	digits := 0
	for p := time.Second; precision%p != 0 && digits < 9; p /= 10 {
		digits++
	}
	if digits == 0 {
		return "2006-01-02T15:04:05Z"
	}
	return "2006-01-02T15:04:05." + strings.Repeat("0", digits) + "Z"
}

func (k codec) format(t time.Time) string { return t.UTC().Format(k.layout) }

// encode returns the stored form of c.
func (k codec) encode(c cursor) source.Cursor {
	j := cursorJSON{V: cursorVersion, Until: k.format(c.Until)}
	if c.inWindow() {
		j.From, j.To = k.format(c.From), k.format(c.To)
		if k.posKey == PosCursorRef {
			j.Ref = c.Pos
		} else {
			j.Next = c.Pos
		}
	} else {
		j.Exact = c.Exact
	}
	b, _ := json.Marshal(j) // strings, a bool and an int always marshal
	return b
}

// decode parses and checks a stored cursor. It never panics, whatever the
// input; an error means the cursor was not written with this Config's
// encoding (or was damaged) and must not be resumed.
func (k codec) decode(b source.Cursor) (cursor, error) {
	if len(b) > maxCursorBytes {
		return cursor{}, fmt.Errorf("cursor is %d bytes, more than a %s cursor can be", len(b), k.provider)
	}
	var j cursorJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return cursor{}, fmt.Errorf("cursor is not a %s cursor: %w", k.provider, err)
	}
	if j.V != cursorVersion {
		return cursor{}, fmt.Errorf("cursor version %d is not supported (want %d)", j.V, cursorVersion)
	}
	pos, other := j.Next, j.Ref
	if k.posKey == PosCursorRef {
		pos, other = j.Ref, j.Next
	}
	if other != "" {
		return cursor{}, fmt.Errorf("cursor is not a %s cursor: its page position is not under %q", k.provider, k.posKey)
	}
	var c cursor
	var err error
	if c.Until, err = k.parseTime("until", j.Until); err != nil {
		return cursor{}, err
	}
	if j.From == "" && j.To == "" && pos == "" {
		c.Exact = j.Exact
		return c, nil
	}
	if j.Exact {
		return cursor{}, errors.New("cursor has exact with a window in progress")
	}
	if j.From == "" || j.To == "" || pos == "" {
		return cursor{}, fmt.Errorf("cursor has a partial window (want from, to and %s together)", k.posKey)
	}
	if c.From, err = k.parseTime("from", j.From); err != nil {
		return cursor{}, err
	}
	if c.To, err = k.parseTime("to", j.To); err != nil {
		return cursor{}, err
	}
	if !c.From.Before(c.To) {
		return cursor{}, fmt.Errorf("cursor window [%s, %s) is empty", j.From, j.To)
	}
	if c.Until.Before(c.From) || !c.Until.Before(c.To) {
		return cursor{}, fmt.Errorf("cursor watermark %s is outside its window [%s, %s)", j.Until, j.From, j.To)
	}
	if strings.ContainsFunc(pos, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return cursor{}, fmt.Errorf("cursor %s holds control characters", k.posKey)
	}
	if k.checkPos != nil {
		if err := k.checkPos(pos); err != nil {
			return cursor{}, fmt.Errorf("cursor %s: %w", k.posKey, err)
		}
	}
	c.Pos = pos
	return c, nil
}

// parseTime parses one of a cursor's instants: UTC, no finer than the
// precision, not before 1970.
func (k codec) parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, fmt.Errorf("cursor has no %s", field)
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || !strings.HasSuffix(v, "Z") {
		return time.Time{}, fmt.Errorf("cursor %s %q is not a UTC timestamp", field, v)
	}
	if t.IsZero() {
		return time.Time{}, fmt.Errorf("cursor has no %s", field)
	}
	if t.Year() < 1970 {
		return time.Time{}, fmt.Errorf("cursor %s %q is out of range", field, v)
	}
	if !t.Truncate(k.prec).Equal(t) {
		return time.Time{}, fmt.Errorf("cursor %s %q is finer than the %v the API counts in", field, v, k.prec)
	}
	return t.UTC(), nil
}
