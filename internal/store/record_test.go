package store

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/auditrelay/auditrelay/internal/event"
)

func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, &event.Raw{Source: "s", Provider: "p", Tenant: "t", ID: "i", Time: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), Data: []byte("{}")}))
	f.Add([]byte{1, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		if src, err := RecordSource(b); err != nil || src != r.Source {
			t.Fatalf("RecordSource = %q, %v; DecodeRecord read %q", src, err, r.Source)
		}
		again := AppendRecord(nil, &r)
		r2, err := DecodeRecord(again)
		if err != nil || !cmp.Equal(r, r2) {
			t.Fatalf("round trip changed the record: %v", err)
		}
		if len(again) > RecordSize(&r) {
			t.Fatalf("record of %d bytes, RecordSize said at most %d", len(again), RecordSize(&r))
		}
	})
}

// TestDecoderAlias checks that a Decoder copies event data unless Alias is
// set, and then gives data no room to grow into the next record.
func TestDecoderAlias(t *testing.T) {
	rec := AppendRecord(nil, &event.Raw{Source: "s", Provider: "p", ID: "1", Time: time.Unix(5, 0), Data: []byte(`{"a":1}`)})
	for _, alias := range []bool{false, true} {
		b := bytes.Clone(rec)
		d := Decoder{Alias: alias}
		ev, err := d.Decode(b)
		if err != nil || string(ev.Data) != `{"a":1}` || cap(ev.Data) != len(ev.Data) && alias {
			t.Fatalf("alias %v: decoded %q (cap %d), %v", alias, ev.Data, cap(ev.Data), err)
		}
		b[len(b)-2] = '2'
		if aliased := string(ev.Data) == `{"a":2}`; aliased != alias {
			t.Fatalf("alias %v: data follows the record: %v", alias, aliased)
		}
	}
}
