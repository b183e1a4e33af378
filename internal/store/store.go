// Package store is the contract between the pipeline and auditrelay's
// durable state: per-source cursors and dedup ids, the spool of events, and
// per-sink offsets. Two implementations keep it: store/bolt, one bbolt file
// under the data directory (one machine, the default), and store/postgres,
// tables in PostgreSQL shared by several replicas.
//
// Whatever the implementation, a page of events and the cursor that follows
// it are committed in one transaction, so a cursor never runs ahead of
// stored events. Events whose id the source already stored within its dedup
// horizon are dropped in that same transaction. Every stored event gets a
// spool position; positions become visible in increasing order, so a sink
// that read everything up to a position never finds a lower one later.
// Sinks read the spool from their own offsets and advance them after the
// destination acknowledged; an entry is deleted once every sink's offset
// has passed it.
package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
)

// Store is the durable state the pipeline, the daemon's status and metrics
// and the CLI use. Its methods are safe for concurrent use.
type Store interface {
	// Append stores a page for the named source in one transaction: its
	// new events (dropping ids already stored within the dedup horizon),
	// the ids, the new cursor and watermark. fingerprint must match the
	// one stored with the source's cursor, if any (else ErrFingerprint).
	Append(name, fingerprint string, p source.Page, now time.Time) (AppendResult, error)
	// Cursor returns the stored cursor of a source (nil if it never
	// stored one) and its fingerprint.
	Cursor(name string) (source.Cursor, string, error)
	// SetCursor stores cur as the cursor of a source, with its
	// fingerprint and watermark, keeping its dedup ids and counters.
	SetCursor(name, fingerprint string, cur source.Cursor, watermark time.Time) error
	// ResetSource forgets a source's cursor, fingerprint, ids and state;
	// its events already in the spool still go to the sinks. It reports
	// whether the store knew the source.
	ResetSource(name string) (bool, error)
	// RecordSourceError stores the last error of a source for status.
	RecordSourceError(name, msg string, at time.Time) error

	// SetSinks registers the configured sinks: a new sink starts at the
	// oldest entry still in the spool; the offsets of sinks no longer
	// configured are dropped, and entries every remaining sink has passed
	// are deleted.
	SetSinks(names []string) error
	// Offset returns a sink's offset: the position of the last entry it
	// acknowledged or skipped.
	Offset(sink string) (uint64, error)
	// Read returns up to max events (and at most maxBytes of raw data,
	// but at least one event) after position after, of the sources route
	// accepts (nil accepts all). last is the position of the last entry
	// examined, routed or not: acknowledging last moves the sink past the
	// skipped entries too; last == after means nothing new.
	//
	// A batch ends before an entry that cannot be decoded; when that
	// entry comes first, Read fails with a *CorruptError. An entry whose
	// source cannot be read is treated as routed.
	Read(after uint64, max, maxBytes int, route func(source string) bool) (batch []event.Raw, last uint64, err error)
	// Ack advances a sink's offset to offset after it delivered n events
	// (and skipped the others up to offset), then deletes the entries
	// every sink has passed, in one transaction. An offset behind the
	// stored one is refused.
	Ack(sink string, offset uint64, n int, now time.Time) error
	// SkipCorrupt advances a sink's offset to seq, the unreadable entry a
	// Read reported in a CorruptError, and counts it in the sink's state.
	// Call it only once the record is kept elsewhere.
	SkipCorrupt(sink string, seq uint64, now time.Time) error
	// RecordSinkError stores the last error of a sink for status.
	RecordSinkError(sink, msg string, at time.Time) error

	// Snapshot reads every source's and sink's state.
	Snapshot() (Snapshot, error)
	// Changed returns a channel closed at the next append (possibly by
	// another process sharing the store), for sink runners waiting for
	// work. A sink runner also polls: a wake-up may be missed.
	Changed() <-chan struct{}
	// SpoolBytes returns the size of the events in the spool.
	SpoolBytes() int64
	// SpoolCount returns the number of events in the spool.
	SpoolCount() int64
	// Close releases the store.
	Close() error
}

// ErrFingerprint is returned when a source's stored cursor belongs to another
// provider, tenant or API than the configured one.
var ErrFingerprint = errors.New("stored checkpoint belongs to another environment")

// CheckFingerprint returns an ErrFingerprint error when stored (the
// fingerprint kept with a source's cursor, "" when none) is not want.
func CheckFingerprint(name, stored, want string) error {
	if stored != "" && stored != want {
		return fmt.Errorf("%w: source %q was stored for %s, the configuration now reads %s; if that is intended, stop auditrelay and run `auditrelay checkpoint reset --source %s`",
			ErrFingerprint, name, stored, want, name)
	}
	return nil
}

// SourceState is what the store knows about a source, for status output.
type SourceState struct {
	Name        string    `json:"name"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	Watermark   time.Time `json:"watermark,omitzero"`
	LastPoll    time.Time `json:"last_poll,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	Events      uint64    `json:"events"`
	Duplicates  uint64    `json:"duplicates"`
	// Late counts the events first stored from an overlap re-read: they
	// became visible after a window had passed their time.
	Late uint64 `json:"late,omitempty"`
	// FirstWatermark is the watermark of the source's first page. Events
	// its first window re-reads behind it were never passed over, so they
	// are not late.
	FirstWatermark time.Time `json:"first_watermark,omitzero"`
	Gaps           []Gap     `json:"gaps,omitempty"`
	// ReadFrom is the earliest provider time the source has read from
	// (the start of its first window, or an earlier instant a checkpoint
	// was set to): events before it were never read. Zero in a store
	// written before it was recorded.
	ReadFrom time.Time `json:"read_from,omitzero"`
	// Cursor is the source's opaque cursor.
	Cursor []byte `json:"cursor,omitempty"`
	// Owner is the replica holding the source's lease, and LeaseExpires
	// when that lease ends unless renewed; both are empty in a store
	// without leases.
	Owner        string    `json:"owner,omitempty"`
	LeaseExpires time.Time `json:"lease_expires,omitzero"`
}

// Gap is a span a source reported it could not read.
type Gap struct {
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Reason   string    `json:"reason"`
	Reported time.Time `json:"reported"`
}

// MaxGaps bounds the gaps kept per source.
const MaxGaps = 20

// BeginPage prepares the state of a source for page p about to be stored
// with fingerprint: it records the fingerprint and, on the source's first
// page, its first watermark. It returns the instant before which a new
// event counts as late (zero when none does).
func (st *SourceState) BeginPage(fingerprint string, p *source.Page) (lateBefore time.Time) {
	st.Fingerprint = fingerprint
	from := p.ReadFrom
	if from.IsZero() {
		from = p.DedupHorizon
	}
	if st.Watermark.IsZero() && st.FirstWatermark.IsZero() {
		st.FirstWatermark = p.Watermark.UTC()
		if st.ReadFrom.IsZero() {
			st.ReadFrom = from.UTC()
		}
	}
	if !from.IsZero() && !st.ReadFrom.IsZero() && from.Before(st.ReadFrom) {
		st.ReadFrom = from.UTC()
	}
	if !p.LateBefore.After(st.FirstWatermark) {
		return time.Time{} // the first window: nothing was passed over yet
	}
	return p.LateBefore
}

// EndPage records in the state of a source that page p was stored at now
// with the outcome res.
func (st *SourceState) EndPage(p *source.Page, res AppendResult, now time.Time) {
	if !p.Watermark.IsZero() {
		st.Watermark = p.Watermark.UTC()
	}
	st.LastPoll = now.UTC()
	st.LastError, st.LastErrorAt = "", time.Time{}
	st.Events += uint64(res.Added)
	st.Duplicates += uint64(res.Duplicates)
	st.Late += uint64(len(res.Late))
	if p.Gap != nil {
		st.Gaps = append(st.Gaps, Gap{From: p.Gap.From.UTC(), To: p.Gap.To.UTC(), Reason: p.Gap.Reason, Reported: now.UTC()})
		if len(st.Gaps) > MaxGaps {
			st.Gaps = st.Gaps[len(st.Gaps)-MaxGaps:]
		}
	}
}

// SetCheckpoint records in the state of a source that an operator moved
// its checkpoint to watermark.
func (st *SourceState) SetCheckpoint(fingerprint string, watermark time.Time) {
	// A source that never read starts reading there; one that did has
	// read from the earlier of both (unknown stays unknown).
	if (st.ReadFrom.IsZero() && st.Watermark.IsZero()) || (!st.ReadFrom.IsZero() && watermark.Before(st.ReadFrom)) {
		st.ReadFrom = watermark.UTC()
	}
	st.Fingerprint, st.Watermark = fingerprint, watermark.UTC()
	// The next window re-reads behind an instant no window passed over:
	// its overlap holds no late event.
	st.FirstWatermark = watermark.UTC()
}

// SinkState is what the store knows about a sink, for status output.
type SinkState struct {
	Name        string    `json:"name"`
	Offset      uint64    `json:"offset"`
	Delivered   uint64    `json:"delivered"`
	LastSend    time.Time `json:"last_send,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Backlog is the number of spool entries after Offset (entries of
	// sources the sink does not route are included).
	Backlog uint64 `json:"backlog"`
	// Corrupt counts the spool entries this sink found unreadable and
	// skipped (each kept in its park file first; see SkipCorrupt).
	Corrupt uint64 `json:"corrupt,omitempty"`
	// Owner and LeaseExpires are as in SourceState.
	Owner        string    `json:"owner,omitempty"`
	LeaseExpires time.Time `json:"lease_expires,omitzero"`
}

// Acked records in the state of a sink an acknowledgement of n delivered
// and corrupt skipped entries at now.
func (st *SinkState) Acked(n, corrupt int, now time.Time) {
	st.Delivered += uint64(n)
	st.Corrupt += uint64(corrupt)
	if n > 0 {
		st.LastSend = now.UTC()
	}
	st.LastError, st.LastErrorAt = "", time.Time{}
}

// AppendResult says what an Append stored.
type AppendResult struct {
	Added, Duplicates int
	Bytes             int64
	// Late holds, for each new event found in the overlap behind the
	// watermark (before the page's LateBefore), how far behind it was.
	Late []time.Duration
}

// Snapshot is the whole store's state for status output.
type Snapshot struct {
	Sources    []SourceState `json:"sources"`
	Sinks      []SinkState   `json:"sinks"`
	SpoolBytes int64         `json:"spool_bytes"`
	SpoolCount int64         `json:"spool_events"`
	LastSeq    uint64        `json:"last_seq"`
	// DeletedThrough holds, per source, the latest event time among the
	// entries deleted from the spool (every routed sink had acknowledged
	// them); a source absent from it never had an entry deleted. It
	// outlives ResetSource: the spool still lacks what was deleted.
	DeletedThrough DeletedThrough `json:"deleted_through,omitempty"`
	// Replicas lists the live replicas of a shared store; empty for a
	// store on one machine.
	Replicas []Replica `json:"replicas,omitempty"`
}

// Replica is one live process sharing a store.
type Replica struct {
	ID       string    `json:"id"`
	LastSeen time.Time `json:"last_seen"`
}

// CorruptError is returned (wrapped) by Read when the first entry it would
// return cannot be decoded. Every entry after the reader's offset and
// before Seq was of a source it does not route: after keeping Record
// somewhere an operator can find it, the reader moves past it with
// SkipCorrupt.
type CorruptError struct {
	Seq    uint64
	Record []byte // the entry's stored bytes
	Err    error
}

// Error says which entry is unreadable.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("spool entry %d is unreadable: %v", e.Seq, e.Err)
}

// Unwrap returns the decoding error.
func (e *CorruptError) Unwrap() error { return e.Err }

// Export is everything a store holds, for `auditrelay store migrate`:
// read from one implementation in one read transaction and written into
// another in one write transaction.
type Export struct {
	// Sources holds each source's state with its Cursor set.
	Sources []ExportedSource
	// Sinks holds each sink's state with its Offset set.
	Sinks []SinkState
	// LastSeq is the last spool position given out: the next event
	// stored gets a higher one.
	LastSeq uint64
	// DeletedThrough is the spool's record of what it deleted, as in
	// Snapshot.
	DeletedThrough DeletedThrough
	// Spool calls fn with every spool entry, in position order, with its
	// stored bytes (valid only during the call). It may be called only
	// while the function that received the Export runs.
	Spool func(fn func(seq uint64, record []byte) error) error
}

// ExportedSource is one source of an Export.
type ExportedSource struct {
	State SourceState
	// IDs are the dedup ids the source keeps within its horizon.
	IDs []DedupID
}

// DedupID is one id a source keeps for dedup, with its event's time.
type DedupID struct {
	Time int64 // Unix nanoseconds
	ID   string
}
