package store

import (
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
	if len(b) < 1 || b[0] != recordVersion {
		return event.Raw{}, fmt.Errorf("%w: unknown version", ErrRecord)
	}
	b = b[1:]
	var f [4]string
	for i := range f {
		var err error
		if f[i], b, err = readString(b); err != nil {
			return event.Raw{}, err
		}
	}
	t, k := binary.Varint(b)
	if k <= 0 {
		return event.Raw{}, ErrRecord
	}
	data := make([]byte, len(b)-k)
	copy(data, b[k:])
	return event.Raw{Source: f[0], Provider: f[1], Tenant: f[2], ID: f[3], Time: time.Unix(0, t).UTC(), Data: data}, nil
}
