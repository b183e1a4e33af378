package sentinel

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
)

// TestOktaV2Rows: every declared column carries the LogEvent's own value,
// byte for byte and in the stream's order; DomainName is the org; fields
// the stream does not declare (device) and nulls are left out; events of
// another provider and data that is not an object are parked.
func TestOktaV2Rows(t *testing.T) {
	evs := oktaFixtures(t)
	n := len(evs)
	evs = append(evs,
		event.Raw{Source: "p1", Provider: "pingone", ID: "p-1", Data: []byte(`{"id":"p-1"}`)},
		event.Raw{Source: "okta-prod", Provider: "okta", ID: "not-object", Data: []byte(`["uuid"]`)},
		event.Raw{Source: "okta-prod", Provider: "okta", ID: "not-json", Data: []byte(`{"uuid":`)},
	)
	enc := newEncoder(FormatOktaV2, nil, MaxCallBytes)
	rows, parked := enc.rows(evs, nil)
	if len(rows) != n || len(parked) != 3 {
		t.Fatalf("%d rows, %d parked; want %d and 3", len(rows), len(parked), n)
	}
	if !strings.Contains(parked[0].reason, "Okta System Log events only, not pingone") || parked[0].ev.ID != "p-1" {
		t.Errorf("parked[0] = %s: %s", parked[0].ev.ID, parked[0].reason)
	}
	if !strings.Contains(parked[1].reason, "not a JSON object") || !strings.Contains(parked[2].reason, "not valid JSON") {
		t.Errorf("parked: %q, %q", parked[1].reason, parked[2].reason)
	}
	var order []string
	declared := map[string]bool{}
	for _, c := range StreamColumns(FormatOktaV2) {
		declared[c.Name] = true
		order = append(order, c.Name)
	}
	written := map[string]int{}
	for i, r := range rows {
		var in, out map[string]json.RawMessage
		if err := json.Unmarshal(evs[i].Data, &in); err != nil || len(in) == 0 {
			t.Fatalf("fixture %d is not a JSON object: %v", i, err)
		}
		if err := json.Unmarshal(r.data, &out); err != nil {
			t.Fatalf("row %d is not a JSON object: %v", i, err)
		}
		if _, ok := in["device"]; !ok {
			t.Fatalf("fixture %d has no device, the field the stream does not declare", i)
		}
		for k, v := range in {
			got, sent := out[k]
			switch {
			case !declared[k]:
				if sent {
					t.Errorf("row %d sends undeclared %q", i, k)
				}
			case string(v) == "null":
				if sent {
					t.Errorf("row %d sends null %q", i, k)
				}
			case string(got) != string(v):
				t.Errorf("row %d: %s = %s, want the served %s", i, k, got, v)
			}
		}
		for k := range out {
			written[k]++
			if _, served := in[k]; !served && k != "DomainName" {
				t.Errorf("row %d sends %q, which the event does not have", i, k)
			}
		}
		if string(out["DomainName"]) != `"`+testOktaOrg+`"` {
			t.Errorf("row %d: DomainName %s, want %q", i, out["DomainName"], testOktaOrg)
		}
		last := -1
		for j, name := range order {
			if at := bytes.Index(r.data, []byte(`"`+name+`":`)); at >= 0 {
				if at < last {
					t.Errorf("row %d: %s (column %d) out of order", i, name, j)
				}
				last = at
			}
		}
	}
	// The fixtures write every declared column.
	for _, name := range order {
		if written[name] == 0 {
			t.Errorf("no fixture writes %s", name)
		}
	}
	if written["target"] != n-1 || written["legacyEventType"] != n-1 {
		t.Errorf("target written %d times, legacyEventType %d; want %d (one fixture has them null)", written["target"], written["legacyEventType"], n-1)
	}
}

// TestOktaV2Envelope: a LogEvent without uuid or published gets the
// envelope's id and time, so that the transform's EventOriginalUid and
// TimeGenerated are never empty; a tenant-less event sends no DomainName.
func TestOktaV2Envelope(t *testing.T) {
	at := time.Date(2026, 11, 25, 9, 30, 1, 234e6, time.UTC)
	enc := newEncoder(FormatOktaV2, nil, MaxCallBytes)
	rows, parked := enc.rows([]event.Raw{
		{Source: "o", Provider: "okta", Tenant: "acme.oktapreview.com", ID: "env-id", Time: at, Data: []byte(`{"eventType":"user.session.end","published":null,"extra":{"x":1}}`)},
		{Source: "o", Provider: "", ID: "u2", Data: []byte(` {"uuid":"u2","published":"2026-11-25T09:30:02Z","severity":"DEBUG"} `)},
	}, nil)
	if len(parked) != 0 || len(rows) != 2 {
		t.Fatalf("%d rows, parked %v", len(rows), parked)
	}
	if want := `{"uuid":"env-id","DomainName":"acme.oktapreview.com","published":"2026-11-25T09:30:01.234Z","eventType":"user.session.end"}`; string(rows[0].data) != want {
		t.Errorf("row\n got %s\nwant %s", rows[0].data, want)
	}
	if want := `{"uuid":"u2","published":"2026-11-25T09:30:02Z","severity":"DEBUG"}`; string(rows[1].data) != want {
		t.Errorf("row\n got %s\nwant %s", rows[1].data, want)
	}
}

// TestOktaV2LongField: a dynamic column over the field limit keeps its
// JSON structure, cut in its strings, and is counted.
func TestOktaV2LongField(t *testing.T) {
	long := strings.Repeat("é", MaxFieldBytes)
	data := `{"uuid":"big","published":"2026-11-25T09:30:02Z","debugContext":{"debugData":{"requestUri":"/x","url":"` + long + `"}}}`
	enc := newEncoder(FormatOktaV2, nil, MaxCallBytes)
	rows, parked := enc.rows([]event.Raw{{Source: "o", Provider: "okta", Tenant: testOktaOrg, ID: "big", Data: []byte(data)}}, nil)
	if len(parked) != 0 || len(rows) != 1 {
		t.Fatalf("%d rows, parked %v", len(rows), parked)
	}
	var out struct {
		DebugContext json.RawMessage `json:"debugContext"`
	}
	if err := json.Unmarshal(rows[0].data, &out); err != nil {
		t.Fatal(err)
	}
	var dc struct {
		DebugData struct{ RequestURI, URL string } `json:"debugData"`
	}
	if err := json.Unmarshal(out.DebugContext, &dc); err != nil {
		t.Fatalf("debugContext is no longer an object: %v", err)
	}
	if len(out.DebugContext) > MaxFieldBytes || dc.DebugData.RequestURI != "/x" || !strings.HasPrefix(long, dc.DebugData.URL) || len(dc.DebugData.URL) == 0 {
		t.Errorf("debugContext of %d bytes, requestUri %q, url of %d bytes", len(out.DebugContext), dc.DebugData.RequestURI, len(dc.DebugData.URL))
	}
	if enc.truncated != 1 {
		t.Errorf("truncated %d, want 1", enc.truncated)
	}
}

// FuzzOktaV2Row: any event data is encoded or parked without panicking; a
// row is a JSON object whose every column is declared and, but for the
// envelope's, the input's own top-level value.
func FuzzOktaV2Row(f *testing.F) {
	for _, ev := range oktaFixtures(f) {
		f.Add([]byte(ev.Data))
	}
	f.Add([]byte(`{"uuid":null,"published":1,"actor":"a\"}","target":[{"id":"]"}],"Actor":{}}`))
	f.Add([]byte(`{"uuid":"x","uuid":"y","client":{"ipAddress":"\u2028"}}`))
	declared := map[string]bool{}
	for _, c := range StreamColumns(FormatOktaV2) {
		declared[c.Name] = true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		enc := newEncoder(FormatOktaV2, nil, MaxCallBytes)
		rows, parked := enc.rows([]event.Raw{{Source: "o", Provider: "okta", Tenant: testOktaOrg, ID: "env", Data: data}}, nil)
		if len(rows)+len(parked) != 1 {
			t.Fatalf("%d rows and %d parked of one event", len(rows), len(parked))
		}
		if len(rows) == 0 {
			return
		}
		var out map[string]json.RawMessage
		if err := json.Unmarshal(rows[0].data, &out); err != nil {
			t.Fatalf("row %q of %q is not a JSON object: %v", rows[0].data, data, err)
		}
		var in map[string]json.RawMessage
		exact := json.Unmarshal(data, &in) == nil && enc.truncated == 0
		for k, v := range out {
			if !declared[k] {
				t.Fatalf("row sends undeclared %q", k)
			}
			if !exact || k == "DomainName" {
				continue
			}
			w, ok := in[k]
			if !ok || string(w) == "null" {
				continue // filled from the envelope
			}
			if !bytes.Equal(w, v) {
				// encoding/json matches keys case-insensitively; a key
				// of another case may have supplied the value.
				if !caseVariant(in, k, v) {
					t.Fatalf("%s = %s, want the input's %s", k, v, w)
				}
			}
		}
	})
}

// caseVariant reports whether in has a key equal to k but for case whose
// value is v.
func caseVariant(in map[string]json.RawMessage, k string, v json.RawMessage) bool {
	for ik, iv := range in {
		if ik != k && strings.EqualFold(ik, k) && bytes.Equal(iv, v) {
			return true
		}
	}
	return false
}
