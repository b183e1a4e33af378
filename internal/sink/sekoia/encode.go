package sekoia

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/klauspost/compress/gzip"
)

// encoder turns events into the messages of a batch body. It is not safe
// for concurrent use.
type encoder struct {
	compact bytes.Buffer
	body    bytes.Buffer
	zbuf    bytes.Buffer
	zw      *gzip.Writer
}

// message returns the event as the intake's parser wants it: the provider's
// JSON compacted onto one line, keys in their order and every value as
// served. The result is valid until the next call.
func (e *encoder) message(raw []byte) ([]byte, error) {
	e.compact.Reset()
	if err := json.Compact(&e.compact, raw); err != nil {
		return nil, fmt.Errorf("raw event is not JSON: %w", err)
	}
	m := e.compact.Bytes()
	if len(m) == 0 || m[0] != '{' {
		return nil, fmt.Errorf("raw event is not a JSON object")
	}
	return m, nil
}

// batchBody builds {"intake_key": key, "jsons": [quoted…]}, gzipped when
// zip is set. The result is valid until the next call.
func (e *encoder) batchBody(key string, quoted [][]byte, zip bool) ([]byte, error) {
	e.body.Reset()
	e.body.WriteString(`{"intake_key":`)
	k, _ := json.Marshal(key) // a string always marshals
	e.body.Write(k)
	e.body.WriteString(`,"jsons":[`)
	for i, q := range quoted {
		if i > 0 {
			e.body.WriteByte(',')
		}
		e.body.Write(q)
	}
	e.body.WriteString(`]}`)
	if !zip {
		return e.body.Bytes(), nil
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
