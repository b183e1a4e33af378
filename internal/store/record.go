package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
)

// A spool record is: version byte 1, then uvarint-length-prefixed source,
// provider, tenant and id, a varint event time in Unix nanoseconds, and the
// raw event data to the end.
const recordVersion = 1

var errRecord = errors.New("malformed spool record")

// recordSize returns an upper bound of the encoded size of ev.
func recordSize(ev *event.Raw) int {
	return 1 + 4*binary.MaxVarintLen64 + len(ev.Source) + len(ev.Provider) + len(ev.Tenant) + len(ev.ID) +
		binary.MaxVarintLen64 + len(ev.Data)
}

func encodeRecord(b []byte, ev *event.Raw) []byte {
	b = append(b, recordVersion)
	for _, s := range []string{ev.Source, ev.Provider, ev.Tenant, ev.ID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendVarint(b, ev.Time.UnixNano())
	return append(b, ev.Data...)
}

// recordSource returns a record's source name without decoding the rest.
func recordSource(b []byte) (string, error) {
	if len(b) < 1 || b[0] != recordVersion {
		return "", errRecord
	}
	s, _, err := readString(b[1:])
	return s, err
}

func readString(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return "", nil, errRecord
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}

func decodeRecord(b []byte) (event.Raw, error) {
	if len(b) < 1 || b[0] != recordVersion {
		return event.Raw{}, fmt.Errorf("%w: unknown version", errRecord)
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
		return event.Raw{}, errRecord
	}
	data := make([]byte, len(b)-k)
	copy(data, b[k:])
	return event.Raw{Source: f[0], Provider: f[1], Tenant: f[2], ID: f[3], Time: time.Unix(0, t).UTC(), Data: data}, nil
}
