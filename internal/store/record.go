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
