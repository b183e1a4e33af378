package splunk

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/auditrelay/auditrelay/internal/event"
)

// sampleEvents are one event of each provider, with the quirks an encoder
// can get wrong: pretty-printed JSON, escapes, no tenant, no time.
func sampleEvents() []event.Raw {
	t := time.Date(2026, 11, 30, 8, 15, 42, 987_654_321, time.UTC)
	return []event.Raw{
		{Source: "pingone-eu", Provider: "pingone", Tenant: "env-1", ID: "a1", Time: t,
			Data: json.RawMessage("{\n  \"id\": \"a1\",\n  \"action\": {\"type\": \"USER.UPDATED\"},\n  \"note\": \"tab\\there \\\"q\\\" é\"\n}")},
		{Source: "cyberark", Provider: "cyberark", Tenant: "acme", ID: "c\"2", Time: t.Add(time.Second),
			Data: json.RawMessage(`{"uuid":"c\"2","customData":{"PAM":{"target":"Root\\x"}}}`)},
		{Source: "okta", Provider: "okta", Tenant: "acme.okta.com", ID: "o3", Time: t.Add(-time.Millisecond),
			Data: json.RawMessage(`{"uuid":"o3","eventType":"user.session.start"}`)},
		{Source: "entra", Provider: "entra_sign_ins", ID: "e4",
			Data: json.RawMessage(`{"id":"e4","createdDateTime":"2026-11-30T08:15:42.1234567Z"}`)},
	}
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("body is not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

// TestRequestBodyGolden pins the exact bytes of a request: concatenated
// envelopes, millisecond times, source = tenant, per-provider sourcetypes,
// index, fields.auditrelay_id.
func TestRequestBodyGolden(t *testing.T) {
	enc := encoder{meta: meta{host: "relay-1", index: "identity"}}
	var envs [][]byte
	for _, ev := range sampleEvents() {
		b, err := enc.appendEnvelope(nil, &ev)
		if err != nil {
			t.Fatalf("appendEnvelope(%s): %v", ev.ID, err)
		}
		envs = append(envs, b)
	}
	z, err := enc.requestBody(envs)
	if err != nil {
		t.Fatal(err)
	}
	got := gunzip(t, z)
	golden := filepath.Join("testdata", "body.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
	// Each line is one envelope object, not an array.
	for i, line := range strings.Split(strings.TrimSuffix(string(got), "\n"), "\n") {
		var env struct {
			Time       *json.Number      `json:"time"`
			Source     string            `json:"source"`
			Sourcetype string            `json:"sourcetype"`
			Fields     map[string]string `json:"fields"`
			Event      json.RawMessage   `json:"event"`
		}
		if err := json.Unmarshal([]byte(line), &env); err != nil {
			t.Fatalf("line %d is not an object: %v", i, err)
		}
		ev := sampleEvents()[i]
		if env.Fields["auditrelay_id"] != ev.ID {
			t.Errorf("line %d: auditrelay_id = %q, want %q", i, env.Fields["auditrelay_id"], ev.ID)
		}
		if ev.Time.IsZero() != (env.Time == nil) {
			t.Errorf("line %d: time = %v for event time %v", i, env.Time, ev.Time)
		} else if env.Time != nil {
			want := fmt.Sprintf("%d.%03d", ev.Time.Unix(), ev.Time.Nanosecond()/1e6)
			if env.Time.String() != want {
				t.Errorf("line %d: time = %s, want %s", i, env.Time, want)
			}
		}
	}
}

// TestEnvelopeRefusesNonObjects parks what HEC would refuse as an event.
func TestEnvelopeRefusesNonObjects(t *testing.T) {
	var enc encoder
	for _, raw := range []string{`"text"`, `[1]`, `{"a":`, ``, `null`} {
		ev := event.Raw{ID: "x", Data: json.RawMessage(raw)}
		if _, err := enc.appendEnvelope(nil, &ev); err == nil {
			t.Errorf("appendEnvelope(%q) = nil error, want one", raw)
		}
	}
}

// FuzzEnvelope checks that any metadata and any JSON object make one valid
// envelope whose event is the compacted input.
func FuzzEnvelope(f *testing.F) {
	f.Add("env\"1", "id\x01\xff", []byte(`{"a":"\u00e9\n","b":[1,2.50]}`))
	f.Fuzz(func(t *testing.T, tenant, id string, raw []byte) {
		enc := encoder{meta: meta{host: "h"}}
		ev := event.Raw{Provider: "okta", Tenant: tenant, ID: id, Time: time.UnixMilli(1_700_000_000_123), Data: raw}
		b, err := enc.appendEnvelope(nil, &ev)
		if err != nil {
			return
		}
		var env struct {
			Event  json.RawMessage   `json:"event"`
			Fields map[string]string `json:"fields"`
		}
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("envelope %s is not JSON: %v", b, err)
		}
		var want bytes.Buffer
		json.Compact(&want, raw)
		if !bytes.Equal(env.Event, want.Bytes()) {
			t.Fatalf("event = %s, want %s", env.Event, want.Bytes())
		}
		if bytes.ContainsAny(b, "\n\r") {
			t.Fatalf("envelope spans lines: %q", b)
		}
	})
}

// BenchmarkEncode measures envelopes and gzip per event, batches of 1000
// PingOne-sized events.
func BenchmarkEncode(b *testing.B) {
	raw := []byte(`{"id":"0d6f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b","recordedAt":"2026-11-30T08:15:42.987Z","createdAt":"2026-11-30T08:15:42.987Z",` +
		`"action":{"type":"USER.ACCESS_ALLOWED","description":"User Access Allowed"},"actors":{"client":{"id":"5c8f1a2b-3c4d","name":"Admin Console","type":"CLIENT"},` +
		`"user":{"id":"7a8b9c0d-1e2f","name":"alice@example.com","type":"USER","population":{"id":"9f8e7d6c"}}},"resources":[{"type":"USER","id":"7a8b9c0d-1e2f","name":"alice@example.com"}],` +
		`"result":{"status":"SUCCESS","description":"Passed role access control"},"source":{"ipAddress":"203.0.113.7","userAgent":"Mozilla/5.0 (X11; Linux x86_64)"},` +
		`"_embedded":{},"environment":{"id":"2c7e1f3a-5b6d-4e8f-9a0b-1c2d3e4f5a6b"}}`)
	const n = 1000
	batch := make([]event.Raw, n)
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	for i := range batch {
		batch[i] = event.Raw{Source: "pingone-eu", Provider: "pingone", Tenant: "2c7e1f3a-5b6d-4e8f-9a0b-1c2d3e4f5a6b",
			ID: fmt.Sprintf("0d6f1a2b-3c4d-4e5f-8a9b-%012d", i), Time: t0.Add(time.Duration(i) * time.Millisecond), Data: raw}
	}
	enc := encoder{meta: meta{host: "relay-1", index: "identity"}}
	envs := make([][]byte, n)
	buf := make([]byte, 0, n*700)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		buf = buf[:0]
		for i := range batch {
			start := len(buf)
			var err error
			buf, err = enc.appendEnvelope(buf, &batch[i])
			if err != nil {
				b.Fatal(err)
			}
			envs[i] = buf[start:]
		}
		if _, err := enc.requestBody(envs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}
