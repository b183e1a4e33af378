package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/source"
)

// BackfillSuffix makes the name a backfill of a source runs and stores its
// cursor under: NAME@backfill. No configured source can be called so: a
// source name has no '@'.
const BackfillSuffix = "@backfill"

// BackfillName returns the name a backfill of source runs under.
func BackfillName(source string) string { return source + BackfillSuffix }

// BackfillOf returns the source a backfill name reads, and whether name is
// one.
func BackfillOf(name string) (string, bool) { return strings.CutSuffix(name, BackfillSuffix) }

// Span is the half-open span of provider time [From, To).
type Span struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Overlaps reports whether s and o share an instant.
func (s Span) Overlaps(o Span) bool { return s.From.Before(o.To) && o.From.Before(s.To) }

// String formats s as [from, to).
func (s Span) String() string {
	return "[" + s.From.UTC().Format(time.RFC3339Nano) + ", " + s.To.UTC().Format(time.RFC3339Nano) + ")"
}

// backfillVersion is the version of the BackfillCursor encoding.
const backfillVersion = 1

// BackfillCursor is the stored cursor of a backfill: the span it reads,
// the cursor of the source reading it, and the spans that the source's
// backfills completed (this one included once Finished).
type BackfillCursor struct {
	V        int    `json:"v"`
	Span     Span   `json:"span"`
	Finished bool   `json:"finished,omitempty"`
	Done     []Span `json:"done,omitempty"`
	// Inner is the cursor of the source reading Span.
	Inner []byte `json:"cursor,omitempty"`
}

// Encode returns the stored form of c.
func (c BackfillCursor) Encode() source.Cursor {
	c.V = backfillVersion
	b, _ := json.Marshal(c) // a struct of times, bools and bytes: never fails
	return b
}

// DecodeBackfill decodes a stored backfill cursor.
func DecodeBackfill(cur source.Cursor) (BackfillCursor, error) {
	var c BackfillCursor
	if err := json.Unmarshal(cur, &c); err != nil {
		return BackfillCursor{}, fmt.Errorf("backfill cursor: %w", err)
	}
	if c.V != backfillVersion {
		return BackfillCursor{}, fmt.Errorf("backfill cursor: version %d, want %d", c.V, backfillVersion)
	}
	if !c.Span.From.Before(c.Span.To) {
		return BackfillCursor{}, errors.New("backfill cursor: empty span")
	}
	return c, nil
}

// BackfillSource reads a backfill's span through Inner, a source bounded
// at the span's end, keeping Inner's cursor inside the BackfillCursor it
// stores.
type BackfillSource struct {
	Name  string
	Inner source.Source
}

// Fingerprint is the inner source's: the backfill reads what it reads.
func (b BackfillSource) Fingerprint() string { return b.Inner.Fingerprint() }

// Poll reads the next page of the span; the page that reaches its end
// marks the cursor Finished.
func (b BackfillSource) Poll(ctx context.Context, cur source.Cursor) (source.Page, error) {
	c, err := DecodeBackfill(cur)
	if err != nil {
		return source.Page{}, &delivery.Error{Class: delivery.Permanent, Op: "backfill " + b.Name, Err: err,
			Fix: "the stored backfill cannot be resumed: stop auditrelay and run `auditrelay checkpoint reset --source " + BackfillName(b.Name) + " --config FILE`, then start the backfill again"}
	}
	if c.Finished {
		return source.Page{Next: cur, Watermark: c.Span.To}, nil
	}
	p, err := b.Inner.Poll(ctx, c.Inner)
	if err != nil {
		return p, err
	}
	c.Inner = p.Next
	if !p.More && !p.Watermark.Before(c.Span.To) {
		c.Finished = true
		c.Done = append(c.Done, c.Span)
	}
	p.Next = c.Encode()
	return p, nil
}
