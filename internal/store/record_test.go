package store

import (
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
