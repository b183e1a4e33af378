// Package source defines the contract between a provider API and the pipeline.
// A source knows one provider: its authentication, paging, time windows, rate
// limits and quirks. Nothing outside a source's package knows its paging rules;
// the pipeline only stores the opaque cursor a source returns.
package source

import (
	"context"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
)

// Cursor is a source's opaque position. The pipeline stores it in the same
// transaction as the events of the page that produced it. A nil Cursor means
// the source has never run.
type Cursor []byte

// Page is the result of one poll.
type Page struct {
	// Events are the events of this page, in any order. They may repeat events
	// of earlier pages (overlap re-reads); the store drops repeats by ID.
	Events []event.Raw
	// Next is the cursor to resume from once Events are stored. It is stored
	// with Events in one transaction.
	Next Cursor
	// Watermark is the instant before which every event has been returned; it
	// drives the lag metric. Zero means unchanged.
	Watermark time.Time
	// DedupHorizon is the oldest event time a later poll can return again:
	// ids of events older than this may be forgotten. Zero keeps every id.
	DedupHorizon time.Time
	// ReadFrom, when set, is the oldest event time this page's read
	// covers; the store keeps the oldest it was given as where the source
	// began reading (a backfill stops there). Zero means DedupHorizon,
	// which is that instant for windowed sources.
	ReadFrom time.Time
	// LateBefore, when set, is the watermark the page's window re-reads
	// behind (its overlap): an event before it that the store did not have
	// yet became visible only after an earlier window had passed its time.
	// The store counts those as late events, so that operators can size
	// settle_delay and overlap from evidence.
	LateBefore time.Time
	// More reports that another page is ready now, so the pipeline polls
	// again without waiting for the poll interval.
	More bool
	// Gap, when set, reports a span the provider can no longer serve (for
	// example a resume older than its retention): it is logged, counted and
	// shown in status, never skipped silently.
	Gap *Gap
}

// Gap is a span of time whose events could not be read.
type Gap struct {
	From, To time.Time
	Reason   string
}

// Source is one configured provider API.
type Source interface {
	// Poll reads the next page after cur. It must not change any state that
	// outlives the call except caches (tokens): a Poll whose Page was not
	// stored is simply repeated from the same cursor.
	Poll(ctx context.Context, cur Cursor) (Page, error)
	// Fingerprint identifies what the source reads (provider, tenant, API
	// URL). A stored cursor with another fingerprint is never resumed.
	Fingerprint() string
}
