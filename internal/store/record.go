package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
)

// A spool record is the bytes an implementation keeps for one spooled
// event: version byte 1, then uvarint-length-prefixed source,
// provider, tenant and id, a varint event time in Unix nanoseconds, and the
// raw event data to the end.
const recordVersion = 1

// ErrRecord is the error of a spool record that cannot be decoded.
var ErrRecord = errors.New("malformed spool record")

// RecordSize returns an upper bound of the encoded size of ev.
func RecordSize(ev *event.Raw) int {
	return 1 + 4*binary.MaxVarintLen64 + len(ev.Source) + len(ev.Provider) + len(ev.Tenant) + len(ev.ID) +
		binary.MaxVarintLen64 + len(ev.Data)
}

// AppendRecord appends the spool record of ev to b.
func AppendRecord(b []byte, ev *event.Raw) []byte {
	b = append(b, recordVersion)
	for _, s := range []string{ev.Source, ev.Provider, ev.Tenant, ev.ID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendVarint(b, ev.Time.UnixNano())
	return append(b, ev.Data...)
}

// RecordSource returns a record's source name without decoding the rest.
func RecordSource(b []byte) (string, error) {
	if len(b) < 1 || b[0] != recordVersion {
		return "", ErrRecord
	}
	s, _, err := readString(b[1:])
	return s, err
}

func readString(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return "", nil, ErrRecord
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}

// RecordSourceTime returns a record's source name and event time without
// decoding its data: b may be the record's first bytes only, as long as
// they reach past the event time.
func RecordSourceTime(b []byte) (string, time.Time, error) {
	if len(b) < 1 || b[0] != recordVersion {
		return "", time.Time{}, ErrRecord
	}
	src, rest, err := readString(b[1:])
	if err != nil {
		return "", time.Time{}, err
	}
	for range 3 {
		if _, rest, err = readString(rest); err != nil {
			return "", time.Time{}, err
		}
	}
	t, k := binary.Varint(rest)
	if k <= 0 {
		return "", time.Time{}, ErrRecord
	}
	return src, time.Unix(0, t).UTC(), nil
}

// RecordHeadBytes is how many leading bytes of a record RecordSourceTime
// needs at most for any record whose source, provider, tenant and id
// together take less than 4 KB.
const RecordHeadBytes = 4096

// DeletedThrough records, per source, the latest event time among the
// spool entries deleted once every sink had passed them: every event of a
// source after that instant that the source stored is still in the spool.
type DeletedThrough map[string]time.Time

// AnySource is the key of DeletedThrough that stands for every source: a
// store written before deletions were recorded, or whose record is
// damaged, knows only that entries were deleted through that instant.
const AnySource = ""

// Through returns the instant through which entries of src may have been
// deleted (zero when none was).
func (d DeletedThrough) Through(src string) time.Time {
	t, a := d[src], d[AnySource]
	if a.After(t) {
		return a
	}
	return t
}

// Add records that the entry whose record (or first RecordHeadBytes of it)
// is rec was deleted, and reports whether that moved its source's time. An
// unreadable record (kept in a park file when a sink skipped it) moves
// nothing.
func (d DeletedThrough) Add(rec []byte) bool {
	src, t, err := RecordSourceTime(rec)
	if err != nil {
		return false
	}
	return d.Merge(src, t)
}

// Merge moves the time of src to t if t is later, and reports whether it
// did.
func (d DeletedThrough) Merge(src string, t time.Time) bool {
	if cur, ok := d[src]; ok && !t.After(cur) {
		return false
	}
	d[src] = t.UTC()
	return true
}

// DecodeRecord decodes a spool record; its Data does not alias b.
func DecodeRecord(b []byte) (event.Raw, error) {
	var d Decoder
	return d.Decode(b)
}

// A Decoder decodes spool records for a batch: the events it returns share
// their source, provider and tenant strings with the event before when
// they are the same, and their data is carved from one buffer, so that a
// batch of a thousand events costs a handful of allocations rather than
// five each. Data does not alias the record decoded unless Alias is set.
type Decoder struct {
	// Alias has Data alias the record: for records in memory that is
	// never written again, which then need not be copied.
	Alias                 bool
	src, provider, tenant string
	buf                   []byte
}

// decoderChunk is the size of the buffers a Decoder carves event data
// from; larger data gets a buffer of its own.
const decoderChunk = 256 << 10

// Decode decodes one record.
func (d *Decoder) Decode(b []byte) (event.Raw, error) {
	if len(b) < 1 || b[0] != recordVersion {
		return event.Raw{}, fmt.Errorf("%w: unknown version", ErrRecord)
	}
	b = b[1:]
	var f [4][]byte
	for i := range f {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return event.Raw{}, ErrRecord
		}
		f[i], b = b[k:k+int(n)], b[k+int(n):]
	}
	t, k := binary.Varint(b)
	if k <= 0 {
		return event.Raw{}, ErrRecord
	}
	// string(x) == s compares without allocating.
	if string(f[0]) != d.src {
		d.src = string(f[0])
	}
	if string(f[1]) != d.provider {
		d.provider = string(f[1])
	}
	if string(f[2]) != d.tenant {
		d.tenant = string(f[2])
	}
	raw := b[k:]
	var data []byte
	if d.Alias {
		data = raw[:len(raw):len(raw)]
	} else if len(raw) > decoderChunk/4 {
		data = bytes.Clone(raw)
	} else {
		if cap(d.buf)-len(d.buf) < len(raw) {
			d.buf = make([]byte, 0, decoderChunk)
		}
		n := len(d.buf)
		d.buf = append(d.buf, raw...)
		data = d.buf[n:len(d.buf):len(d.buf)]
	}
	return event.Raw{Source: d.src, Provider: d.provider, Tenant: d.tenant, ID: string(f[3]), Time: time.Unix(0, t).UTC(), Data: data}, nil
}

// A spool entry is either one record (version 1) or a batch: the records
// of consecutive positions in one value, so that a page of a thousand
// events is one entry to write and one to delete instead of a thousand.
// A batch is version byte 2, a uvarint count (at least 1), then each
// record with a 4-byte big-endian length before it.
const batchVersion = 2

// BatchWriter builds a batch entry at the end of a buffer, leaving room in
// front for the header so that the records are never copied again.
type BatchWriter struct {
	b  []byte
	at int // where the entry's header room starts
	n  int
}

// batchHead is the most bytes a batch header takes.
const batchHead = 1 + binary.MaxVarintLen64

// Reset starts a new batch after b's contents, in b's storage when it has
// room.
func (w *BatchWriter) Reset(b []byte) {
	w.at, w.n = len(b), 0
	w.b = append(b, make([]byte, batchHead)...)
}

// Add appends the record of ev to the batch and returns its size.
func (w *BatchWriter) Add(ev *event.Raw) int {
	at := len(w.b)
	w.b = append(w.b, 0, 0, 0, 0)
	w.b = AppendRecord(w.b, ev)
	n := len(w.b) - at - 4
	binary.BigEndian.PutUint32(w.b[at:], uint32(n))
	w.n++
	return n
}

// Len returns the number of records added.
func (w *BatchWriter) Len() int { return w.n }

// Entry returns the batch entry, the header then the records added: the
// tail of the writer's buffer (see Buffer), which ends with it.
func (w *BatchWriter) Entry() []byte {
	var h [batchHead]byte
	head := binary.AppendUvarint(append(h[:0], batchVersion), uint64(w.n))
	start := w.at + batchHead - len(head)
	copy(w.b[start:], head)
	return w.b[start:len(w.b):len(w.b)]
}

// Buffer returns the whole buffer: what it held at Reset, the header room
// and the records added.
func (w *BatchWriter) Buffer() []byte { return w.b }

// EntryCount returns how many records (positions) a spool entry holds,
// reading its header only.
func EntryCount(v []byte) (int, error) {
	if len(v) > 0 && v[0] == recordVersion {
		return 1, nil
	}
	if len(v) < 2 || v[0] != batchVersion {
		return 0, fmt.Errorf("%w: unknown entry version", ErrRecord)
	}
	n, k := binary.Uvarint(v[1:])
	// Each record takes at least its length and version byte.
	if k <= 0 || n == 0 || n > uint64(len(v)-1-k)/5 {
		return 0, fmt.Errorf("%w: bad batch count", ErrRecord)
	}
	return int(n), nil
}

// SplitEntry appends the records of a spool entry to recs, in position
// order, as sub-slices of v. A batch whose framing does not add up is an
// error as a whole; a record inside it is decoded (and may fail) on its
// own.
func SplitEntry(v []byte, recs [][]byte) ([][]byte, error) {
	n, err := EntryCount(v)
	if err != nil {
		return recs, err
	}
	if v[0] == recordVersion {
		return append(recs, v), nil
	}
	_, k := binary.Uvarint(v[1:])
	b := v[1+k:]
	for range n {
		if len(b) < 4 {
			return recs, fmt.Errorf("%w: batch cut short", ErrRecord)
		}
		l := binary.BigEndian.Uint32(b)
		if uint64(len(b)-4) < uint64(l) {
			return recs, fmt.Errorf("%w: batch cut short", ErrRecord)
		}
		recs = append(recs, b[4:4+l:4+l])
		b = b[4+l:]
	}
	if len(b) != 0 {
		return recs, fmt.Errorf("%w: %d bytes after the batch's last record", ErrRecord, len(b))
	}
	return recs, nil
}
