package sentinel

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/event"
)

// TestScanMatchesDecode: the reflection-free reader gives what
// encoding/json gives for the fixtures and generated activities.
func TestScanMatchesDecode(t *testing.T) {
	evs := fixtures(t)
	gen := emulator.NewGenerator(4)
	for i := range 300 {
		a := gen.Activity("env", "https://api.pingone.eu", time.Date(2026, 11, 25, 0, 0, i, 0, time.UTC))
		evs = append(evs, event.Raw{ID: a.ID, Data: a.JSON})
	}
	for _, ev := range evs {
		var want auditActivity
		unmarshalObject(ev.Data, &want)
		got := scanAuditActivity(ev.Data)
		wb, _ := json.Marshal(want)
		gb, _ := json.Marshal(got)
		if string(wb) != string(gb) {
			t.Errorf("%s:\n scan   %s\n decode %s", ev.ID, gb, wb)
		}
	}
}

// FuzzScanAuditActivity: any input is read without panicking, and the raw
// values taken from valid JSON are valid JSON.
func FuzzScanAuditActivity(f *testing.F) {
	for _, ev := range fixtures(f) {
		f.Add([]byte(ev.Data))
	}
	f.Add([]byte(`{"actors":{"client":{"id":"a\"b","environment":{"id":1}}},"result":[],"_links":{"self":"x"}}`))
	f.Add([]byte(`{"a":"\\","b":[{"c":"}"}],"resources":[1,2,{"x":"]"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a := scanAuditActivity(data)
		if !json.Valid(data) {
			return
		}
		for _, raw := range [][]byte{a.RecordedAt, a.CreatedAt, a.InternalCorrelation, a.Resources} {
			if raw != nil && !json.Valid(raw) {
				t.Fatalf("raw value %q of %q is not JSON", raw, data)
			}
		}
	})
}

// BenchmarkEncode measures the encoder alone: rows (with a light
// normalizer), split and gzip, for 1000 generated activities.
func BenchmarkEncode(b *testing.B) {
	gen := emulator.NewGenerator(9)
	batch := make([]event.Raw, 1000)
	for i := range batch {
		a := gen.Activity("env", "https://api.pingone.eu", time.Date(2026, 11, 25, 0, 0, 0, i*1e6, time.UTC))
		batch[i] = event.Raw{Source: "p1", Provider: "pingone", Tenant: "env", ID: a.ID, Time: a.RecordedAt, Data: a.JSON}
	}
	for _, format := range []string{FormatPingOneV2, FormatAuditRelay} {
		b.Run(format, func(b *testing.B) {
			enc := newEncoder(format, testNormalize, MaxCallBytes)
			b.ReportAllocs()
			for b.Loop() {
				rows, _ := enc.rows(batch, nil)
				for _, call := range enc.split(rows) {
					if _, _, err := enc.body(call); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
		})
	}
}
