package elasticsearch

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

var t0 = time.Date(2026, 11, 30, 8, 15, 42, 123_000_000, time.UTC)

// sampleEvents are one event of each provider, one with a line break and
// characters that need escaping.
func sampleEvents() []event.Raw {
	return []event.Raw{
		{Source: "pingone-eu", Provider: "pingone", Tenant: "env-1", ID: "a1", Time: t0,
			Data: json.RawMessage(`{"id":"a1","recordedAt":"2026-11-30T08:15:42.123Z","action":{"type":"USER.CREATED"},"result":{"status":"SUCCESS","description":"said \"hi\"\\ok"}}`)},
		{Source: "okta", Provider: "okta", Tenant: "acme.okta.com", ID: "u-2", Time: t0.Add(time.Second),
			Data: json.RawMessage("{\n  \"uuid\": \"u-2\",\n  \"eventType\": \"user.session.start\",\n  \"displayMessage\": \"Ünïcode \u2028 sep\"\n}")},
		{Source: "cyberark", Provider: "cyberark", Tenant: "t-9", ID: "t-9:c3", Time: t0.Add(2 * time.Second),
			Data: json.RawMessage(`{"uuid":"c3","action":"Login","tenantId":"t-9"}`)},
		{Source: "entra", Provider: "entra_directory_audits", Tenant: "tid", ID: "d4", Time: t0.Add(3 * time.Second),
			Data: json.RawMessage(`{"id":"d4","category":"UserManagement","activityDateTime":"2026-11-30T08:15:45.1234567Z"}`)},
	}
}

func encodeAll(t testing.TB, cfg Config, evs []event.Raw) []byte {
	t.Helper()
	cfg.SetDefaults()
	e := newEncoder(cfg)
	var b []byte
	for i := range evs {
		var err error
		if b, err = e.appendItem(b, &evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", name, diff)
	}
}

// TestEncodeGolden pins the _bulk bodies of each format.
func TestEncodeGolden(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"integration.golden.ndjson", Config{Format: FormatIntegration}},
		{"raw.golden.ndjson", Config{Format: FormatRaw}},
		{"index.golden.ndjson", Config{Format: FormatIntegration, Index: "auditrelay-audit"}},
	} {
		t.Run(c.name, func(t *testing.T) { golden(t, c.name, encodeAll(t, c.cfg, sampleEvents())) })
	}
}

// TestEncodeIntegrationShape decodes every line and checks what Elastic's
// integration pipelines read: message is the event byte for byte, the
// action is a create into the integration's data stream, and data_stream
// matches it.
func TestEncodeIntegrationShape(t *testing.T) {
	evs := sampleEvents()
	lines := strings.Split(strings.TrimSuffix(string(encodeAll(t, Config{}, evs)), "\n"), "\n")
	if len(lines) != 2*len(evs) {
		t.Fatalf("%d lines for %d events", len(lines), len(evs))
	}
	want := []struct{ index, dataset string }{
		{"logs-ping_one.audit-default", "ping_one.audit"},
		{"logs-okta.system-default", "okta.system"},
		{"logs-auditrelay.cyberark-default", "auditrelay.cyberark"},
		{"logs-auditrelay.entra_directory_audits-default", "auditrelay.entra_directory_audits"},
	}
	for i, ev := range evs {
		var action struct {
			Create struct {
				Index string `json:"_index"`
				ID    string `json:"_id"`
			} `json:"create"`
		}
		if err := json.Unmarshal([]byte(lines[2*i]), &action); err != nil {
			t.Fatalf("action %d: %v", i, err)
		}
		if action.Create.Index != want[i].index || action.Create.ID != DocID(&ev) {
			t.Errorf("action %d = %+v, want index %s id %s", i, action.Create, want[i].index, DocID(&ev))
		}
		var doc struct {
			Timestamp  string                                    `json:"@timestamp"`
			Message    *string                                   `json:"message"`
			Raw        json.RawMessage                           `json:"raw"`
			Event      struct{ Original string }                 `json:"event"`
			DataStream struct{ Type, Dataset, Namespace string } `json:"data_stream"`
		}
		if err := json.Unmarshal([]byte(lines[2*i+1]), &doc); err != nil {
			t.Fatalf("doc %d: %v", i, err)
		}
		if doc.Timestamp != ev.Time.Format(time.RFC3339Nano) {
			t.Errorf("doc %d @timestamp %q", i, doc.Timestamp)
		}
		if doc.DataStream.Type != "logs" || doc.DataStream.Dataset != want[i].dataset || doc.DataStream.Namespace != "default" {
			t.Errorf("doc %d data_stream %+v", i, doc.DataStream)
		}
		if IntegrationFor(ev.Provider).Exists {
			if doc.Message == nil || *doc.Message != string(ev.Data) {
				t.Errorf("doc %d message = %v, want the raw event verbatim", i, doc.Message)
			}
		} else if doc.Message != nil || doc.Raw != nil || doc.Event.Original != string(ev.Data) {
			// no integration: ECS, keeping the event in event.original
			t.Errorf("doc %d: want ECS with event.original %s, no message; got %s", i, ev.Data, lines[2*i+1])
		}
	}
}

// TestDocID pins the id function: a change would duplicate every event
// re-sent across an upgrade.
func TestDocID(t *testing.T) {
	ev := event.Raw{Source: "x", Provider: "pingone", Tenant: "env-1", ID: "a1"}
	if got, want := DocID(&ev), "rQspn2UTVbsqzH6RKdSPXRBB6lQ"; got != want {
		t.Errorf("DocID = %s, want %s", got, want)
	}
	other := ev
	other.Source = "renamed"
	if DocID(&other) != DocID(&ev) {
		t.Error("DocID depends on the source name")
	}
	other = ev
	other.Tenant = "env-2"
	if DocID(&other) == DocID(&ev) {
		t.Error("DocID ignores the tenant")
	}
	// The separator keeps "a"+"bc" apart from "ab"+"c".
	a := event.Raw{Provider: "p", Tenant: "a", ID: "bc"}
	b := event.Raw{Provider: "p", Tenant: "ab", ID: "c"}
	if DocID(&a) == DocID(&b) {
		t.Error("DocID collides across the tenant/id boundary")
	}
}

// TestEncodeRefusesNonObject: an event that is not a JSON object is an
// error (parked by the sink), not a malformed _bulk line.
func TestEncodeRefusesNonObject(t *testing.T) {
	cfg := Config{}
	cfg.SetDefaults()
	e := newEncoder(cfg)
	for _, data := range []string{`[1,2]`, `"x"`, `{"a":`, ``} {
		ev := event.Raw{Provider: "okta", ID: "x", Data: json.RawMessage(data)}
		if b, err := e.appendItem(nil, &ev); err == nil {
			t.Errorf("%q encoded as %q", data, b)
		}
	}
}

// BenchmarkEncode measures the encoder on realistic PingOne events in
// format integration (go test -cpu 1 -run XXX -bench Encode).
func BenchmarkEncode(b *testing.B) {
	const n = 1000
	evs := make([]event.Raw, n)
	for i := range evs {
		id := fmt.Sprintf("5f1c2a9e-0b7d-4c1e-9a3f-%012d", i)
		evs[i] = event.Raw{Source: "pingone-eu", Provider: "pingone", Tenant: "c2f2bb7c-1c58-4d7f-a4a5-7c0e4b1e2d3f", ID: id,
			Time: t0.Add(time.Duration(i) * time.Millisecond),
			Data: json.RawMessage(fmt.Sprintf(`{"_links":{"self":{"href":"https://api.pingone.eu/v1/environments/c2f2bb7c/activities/%s"}},"id":"%s","recordedAt":"2026-11-30T08:15:42.123Z","createdAt":"2026-11-30T08:15:42.130Z","correlationId":"e8a3b1c2-7d6f-4a0b-9c3e-2f1d0a9b8c7d","actors":{"client":{"id":"1a2b3c4d","name":"Admin Console","type":"CLIENT"},"user":{"id":"9f8e7d6c","name":"alice@example.com","type":"USER","environment":{"id":"c2f2bb7c"}}},"action":{"type":"USER.UPDATED","description":"User Updated"},"resources":[{"type":"USER","id":"0a1b2c3d","name":"bob@example.com","environment":{"id":"c2f2bb7c"}}],"result":{"status":"SUCCESS","description":"Updated User bob@example.com \"display name\""}}`, id, id)),
		}
	}
	cfg := Config{}
	cfg.SetDefaults()
	e := newEncoder(cfg)
	buf := make([]byte, 0, 2<<20)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		buf = buf[:0]
		for i := range evs {
			var err error
			if buf, err = e.appendItem(buf, &evs[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
	b.SetBytes(int64(len(buf)))
}

// TestEncodeNormalized: formats ecs and ocsf write the normalized event,
// with one @timestamp and the data stream fields of auditrelay's own data
// streams, and keep the raw event (event.original, raw_data).
func TestEncodeNormalized(t *testing.T) {
	ev := sampleEvents()[0] // PingOne
	for _, tc := range []struct{ format, index, dataset, keeps string }{
		{FormatECS, "logs-auditrelay.pingone-default", "auditrelay.pingone", "event.original"},
		{FormatOCSF, "logs-auditrelay.pingone_ocsf-default", "auditrelay.pingone_ocsf", "raw_data"},
	} {
		lines := strings.Split(strings.TrimSuffix(string(encodeAll(t, Config{Format: tc.format}, []event.Raw{ev})), "\n"), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], `"_index":"`+tc.index+`"`) {
			t.Fatalf("%s: lines %q, want one create into %s", tc.format, lines, tc.index)
		}
		var doc map[string]json.RawMessage
		if err := json.Unmarshal([]byte(lines[1]), &doc); err != nil {
			t.Fatalf("%s: %v", tc.format, err)
		}
		if n := strings.Count(lines[1], `"@timestamp":`); n != 1 {
			t.Errorf("%s: @timestamp %d times", tc.format, n)
		}
		var ds struct{ Type, Dataset, Namespace string }
		json.Unmarshal(doc["data_stream"], &ds)
		if ds.Dataset != tc.dataset || ds.Type != "logs" {
			t.Errorf("%s: data_stream %+v", tc.format, ds)
		}
		var original string
		if tc.format == FormatECS {
			var e struct{ Original string }
			json.Unmarshal(doc["event"], &e)
			original = e.Original
		} else {
			json.Unmarshal(doc["raw_data"], &original)
			if _, ok := doc["class_uid"]; !ok {
				t.Errorf("ocsf: no class_uid in %s", lines[1])
			}
		}
		if original != string(ev.Data) {
			t.Errorf("%s: %s = %q, want the raw event", tc.format, tc.keeps, original)
		}
	}
}
