package sentinel

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/normalize"
)

// TestColumnsMatchDecode: the reflection-free readers of the PingOne
// columns give what encoding/json gives for the fixtures and generated
// activities.
func TestColumnsMatchDecode(t *testing.T) {
	evs := fixtures(t)
	gen := emulator.NewGenerator(4)
	for i := range 300 {
		a := gen.Activity("env", "https://api.pingone.eu", time.Date(2026, 11, 25, 0, 0, i, 0, time.UTC))
		evs = append(evs, event.Raw{ID: a.ID, Data: a.JSON})
	}
	for _, ev := range evs {
		var want auditActivity
		unmarshalObject(ev.Data, &want)
		got := normalize.PingOneColumnsOf(ev.Data)
		wb, _ := json.Marshal(want.columns())
		gb, _ := json.Marshal(got)
		if string(wb) != string(gb) {
			t.Errorf("%s:\n scan   %s\n decode %s", ev.ID, gb, wb)
		}
		// The normalizer's pass, which the encoder uses for PingOne,
		// reads the same values.
		ev.Provider = normalize.ProviderPingOne
		_, cols, err := normalize.PingOneEventColumns(ev)
		if err != nil {
			t.Fatal(err)
		}
		if nb, _ := json.Marshal(cols); string(nb) != string(wb) {
			t.Errorf("%s:\n normalize %s\n decode    %s", ev.ID, nb, wb)
		}
	}
}

// auditActivity is what the auditrelay format reads of an activity, as
// encoding/json decodes it: the reference the readers are checked against.
type auditActivity struct {
	RecordedAt          json.RawMessage `json:"recordedAt"`
	CreatedAt           json.RawMessage `json:"createdAt"`
	InternalCorrelation json.RawMessage `json:"internalCorrelation"`
	Resources           json.RawMessage `json:"resources"`
	Actors              struct {
		Client party `json:"client"`
		User   party `json:"user"`
	} `json:"actors"`
	Result struct {
		Status json.RawMessage `json:"status"`
		ID     json.RawMessage `json:"id"`
	} `json:"result"`
	Links struct {
		Self struct {
			Href json.RawMessage `json:"href"`
		} `json:"self"`
	} `json:"_links"`
}

// party is an actor of an activity.
type party struct {
	ID          json.RawMessage `json:"id"`
	Name        json.RawMessage `json:"name"`
	Type        json.RawMessage `json:"type"`
	Href        json.RawMessage `json:"href"`
	Environment struct {
		ID json.RawMessage `json:"id"`
	} `json:"environment"`
	Population struct {
		ID json.RawMessage `json:"id"`
	} `json:"population"`
}

// columns returns a as the readers return it.
func (a *auditActivity) columns() normalize.PingOneColumns {
	p := func(x party) normalize.PingOneParty {
		return normalize.PingOneParty{ID: x.ID, Name: x.Name, Type: x.Type, Href: x.Href, EnvironmentID: x.Environment.ID, PopulationID: x.Population.ID}
	}
	return normalize.PingOneColumns{RecordedAt: a.RecordedAt, CreatedAt: a.CreatedAt, InternalCorrelation: a.InternalCorrelation,
		Resources: a.Resources, ResultStatus: a.Result.Status, ResultID: a.Result.ID, Href: a.Links.Self.Href,
		Client: p(a.Actors.Client), User: p(a.Actors.User)}
}

// BenchmarkEncode measures the encoder alone: rows (with a light
// normalizer), split and gzip, for 1000 generated activities, or 1000
// generated Okta LogEvents for okta_v2.
func BenchmarkEncode(b *testing.B) {
	gen := emulator.NewGenerator(9)
	pingOne := make([]event.Raw, 1000)
	for i := range pingOne {
		a := gen.Activity("env", "https://api.pingone.eu", time.Date(2026, 11, 25, 0, 0, 0, i*1e6, time.UTC))
		pingOne[i] = event.Raw{Source: "p1", Provider: "pingone", Tenant: "env", ID: a.ID, Time: a.RecordedAt, Data: a.JSON}
	}
	og := emulator.NewOktaGenerator(9)
	okta := make([]event.Raw, 1000)
	for i := range okta {
		e := og.Event(time.Date(2026, 11, 25, 0, 0, 0, i*1e6, time.UTC))
		okta[i] = event.Raw{Source: "okta", Provider: "okta", Tenant: "example.okta.com", ID: e.UUID, Time: e.Published, Data: e.JSON}
	}
	for _, format := range []string{FormatPingOneV2, FormatAuditRelay, FormatOktaV2} {
		batch := pingOne
		if format == FormatOktaV2 {
			batch = okta
		}
		b.Run(format, func(b *testing.B) {
			norm := testNormalize
			if format != FormatOktaV2 {
				norm = normalize.PingOneEvent // what the daemon passes for PingOne
			}
			enc := newEncoder(format, norm, MaxCallBytes)
			b.ReportAllocs()
			for b.Loop() {
				rows, _ := enc.rows(batch, nil)
				for _, call := range enc.split(rows) {
					if _, _, err := newCompressor().body(call); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// TestCyberArkAuditRows: every declared column carries the event's own
// value, in the stream's order; undeclared fields and nulls are left out;
// a missing timestamp or tenantId comes from the envelope; events of
// another provider and data that is not an object are parked.
func TestCyberArkAuditRows(t *testing.T) {
	evs := cyberArkFixtures(t)
	evs = append(evs,
		event.Raw{Source: "p1", Provider: "pingone", ID: "p-1", Data: []byte(`{"id":"p-1"}`)},
		event.Raw{Source: "ca-prod", Provider: "cyberark", ID: "t/not-json", Data: []byte(`[1,2]`)},
	)
	enc := newEncoder(FormatCyberArkAudit, nil, MaxCallBytes)
	rows, parked := enc.rows(evs, nil)
	if len(rows) != len(evs)-2 || len(parked) != 2 {
		t.Fatalf("%d rows, %d parked; want %d and 2", len(rows), len(parked), len(evs)-2)
	}
	if !strings.Contains(parked[0].reason, "CyberArk audit events only, not pingone") || parked[0].ev.ID != "p-1" {
		t.Errorf("parked[0] = %s: %s", parked[0].ev.ID, parked[0].reason)
	}
	if !strings.Contains(parked[1].reason, "not a JSON object") {
		t.Errorf("parked[1]: %s", parked[1].reason)
	}
	declared := map[string]bool{}
	var order []string
	for _, c := range StreamColumns(FormatCyberArkAudit) {
		declared[c.Name] = true
		order = append(order, c.Name)
	}
	for i, r := range rows {
		var in, out map[string]json.RawMessage
		if err := json.Unmarshal(evs[i].Data, &in); err != nil {
			t.Fatalf("fixture %d is not a JSON object: %v", i, err)
		}
		if len(in) == 0 {
			t.Fatalf("fixture %d has no fields", i)
		}
		if err := json.Unmarshal(r.data, &out); err != nil {
			t.Fatalf("row %d is not a JSON object: %v", i, err)
		}
		for k, v := range in {
			switch {
			case !declared[k]:
				if _, ok := out[k]; ok {
					t.Errorf("row %d sends undeclared %q", i, k)
				}
			case string(v) == "null":
				if k != "timestamp" {
					if _, ok := out[k]; ok {
						t.Errorf("row %d sends null %q", i, k)
					}
				}
			case string(out[k]) != string(v):
				t.Errorf("row %d: %s = %s, want the event's %s", i, k, out[k], v)
			}
		}
		// Columns appear in the stream's order.
		last := -1
		for j, name := range order {
			if at := bytes.Index(r.data, []byte(`"`+name+`":`)); at >= 0 {
				if at < last {
					t.Errorf("row %d: %s (column %d) out of order", i, name, j)
				}
				last = at
			}
		}
		// timestamp is the event time in epoch milliseconds, the value
		// the DCR's transform makes TimeGenerated of.
		ms, err := strconv.ParseInt(string(out["timestamp"]), 10, 64)
		if err != nil || !time.UnixMilli(ms).Equal(evs[i].Time) {
			t.Errorf("row %d: timestamp %s, want %d", i, out["timestamp"], evs[i].Time.UnixMilli())
		}
	}
	var last map[string]json.RawMessage
	json.Unmarshal(rows[len(rows)-1].data, &last)
	if string(last["timestamp"]) != strconv.Itoa(testCyberArkMillis) || string(last["tenantId"]) != `"`+testCyberArkTenant+`"` {
		t.Errorf("filled timestamp %s, tenantId %s; want %d and %q", last["timestamp"], last["tenantId"], testCyberArkMillis, testCyberArkTenant)
	}
	if string(last["username"]) != `"Übel Nutzer"` {
		t.Errorf("username %s", last["username"])
	}
}

// TestRowArena: rows share blocks without overwriting each other; a row
// that outgrows its space is moved, and the space of a row not kept is
// handed out again.
func TestRowArena(t *testing.T) {
	var a rowArena
	var kept [][]byte
	want := []string{}
	for i := range 2000 {
		s := strings.Repeat(strconv.Itoa(i%10), 100+i%700)
		b := a.next(800)
		if i%7 == 3 {
			b = append(b, strings.Repeat("x", 900)...) // outgrows: moved
		}
		b = append(b, s...)
		if i%11 == 5 {
			continue // parked: not kept
		}
		b = a.keep(b)
		if cap(b) != len(b) {
			t.Fatalf("row %d kept with room to grow into the next", i)
		}
		kept = append(kept, b)
		want = append(want, string(b))
	}
	for i, b := range kept {
		if string(b) != want[i] {
			t.Fatalf("row %d changed after later rows were written: %.20q..., want %.20q...", i, b, want[i])
		}
	}
	// Rows written in place sit one after the other.
	var p rowArena
	x := p.keep(append(p.next(10), "abc"...))
	y := p.keep(append(p.next(10), "def"...))
	if &p.buf[3] != &y[0] || &p.buf[0] != &x[0] {
		t.Fatal("the second row does not follow the first in its block")
	}
}
