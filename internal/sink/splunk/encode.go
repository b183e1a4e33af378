package splunk

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/klauspost/compress/gzip"

	"github.com/auditrelay/auditrelay/internal/event"
)

// meta is the envelope metadata common to a sink's events.
type meta struct {
	host       string
	index      string // empty: the token's default index
	sourcetype string // empty: Sourcetype(provider)
}

// encoder turns events into HEC envelopes and request bodies. It is not
// safe for concurrent use.
type encoder struct {
	meta    meta
	compact bytes.Buffer
	body    bytes.Buffer
	zbuf    bytes.Buffer
	zw      *gzip.Writer
}

// errNotObject is the reason an event that is not a JSON object is parked.
var errNotObject = errors.New("raw event is not a JSON object")

// appendEnvelope appends ev's envelope to b:
//
//	{"time":1700000000.123,"host":…,"source":<tenant>,"sourcetype":…,"index":…,"fields":{"auditrelay_id":<id>},"event":{…}}
//
// time is the event's own time in epoch seconds with millisecond
// precision (omitted when unknown: HEC then uses the time it receives the
// event), source is the provider's tenant (the source's name when it has
// none), index is omitted when the sink has none (the token's default),
// and event is the provider's JSON compacted, keys in their order and
// every value as served.
func (e *encoder) appendEnvelope(b []byte, ev *event.Raw) ([]byte, error) {
	e.compact.Reset()
	if err := json.Compact(&e.compact, ev.Data); err != nil {
		return b, errors.New("raw event is not JSON: " + err.Error())
	}
	raw := e.compact.Bytes()
	if len(raw) < 2 || raw[0] != '{' {
		return b, errNotObject
	}
	b = append(b, '{')
	if ms := ev.Time.UnixMilli(); !ev.Time.IsZero() && ms >= 0 {
		b = append(b, `"time":`...)
		b = strconv.AppendInt(b, ms/1000, 10)
		f := ms % 1000
		b = append(b, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10), ',')
	}
	b = append(b, `"host":`...)
	b = event.AppendJSONString(b, e.meta.host)
	b = append(b, `,"source":`...)
	src := ev.Tenant
	if src == "" {
		src = ev.Source
	}
	b = event.AppendJSONString(b, src)
	b = append(b, `,"sourcetype":`...)
	st := e.meta.sourcetype
	if st == "" {
		st = Sourcetype(ev.Provider)
	}
	b = event.AppendJSONString(b, st)
	if e.meta.index != "" {
		b = append(b, `,"index":`...)
		b = event.AppendJSONString(b, e.meta.index)
	}
	b = append(b, `,"fields":{"auditrelay_id":`...)
	b = event.AppendJSONString(b, ev.ID)
	b = append(b, `},"event":`...)
	b = append(b, raw...)
	return append(b, '}'), nil
}

// requestBody joins envelopes, one per line (HEC takes objects back to
// back, not an array), and gzips them. The result is valid until the next
// call.
func (e *encoder) requestBody(envelopes [][]byte) ([]byte, error) {
	e.body.Reset()
	for _, env := range envelopes {
		e.body.Write(env)
		e.body.WriteByte('\n')
	}
	e.zbuf.Reset()
	if e.zw == nil {
		zw, err := gzip.NewWriterLevel(&e.zbuf, gzip.BestSpeed)
		if err != nil {
			return nil, err
		}
		e.zw = zw
	} else {
		e.zw.Reset(&e.zbuf)
	}
	if _, err := e.zw.Write(e.body.Bytes()); err != nil {
		return nil, err
	}
	if err := e.zw.Close(); err != nil {
		return nil, err
	}
	return e.zbuf.Bytes(), nil
}
