package pingone

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/auditrelay/auditrelay/internal/event"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestNormalizeGolden normalizes every testdata/normalize/*.json activity and
// compares the event (without Raw) with the .golden file beside it.
func TestNormalizeGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "normalize", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			data := readFixture(t, filepath.Join("normalize", name+".json"))
			raw := event.Raw{
				Source: "p1-eu", Provider: Provider, Tenant: "env-eu", ID: "id-from-envelope",
				Time: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), Data: data,
			}
			ev, err := Normalize(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ev.Raw, data) {
				t.Errorf("Raw changed:\n got %s\nwant %s", ev.Raw, data)
			}
			ev.Raw = nil
			got, err := json.MarshalIndent(ev, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", "normalize", name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("Normalize(%s) (-want +got):\n%s", name, diff)
			}
		})
	}
}

func TestNormalizeFields(t *testing.T) {
	data := readFixture(t, "normalize/user_signon.json")
	ev, err := Normalize(event.Raw{Source: "s", Provider: Provider, Tenant: "t", ID: "a3e9c0d2-55b1-4f6e-8d7a-19c2e4b6f001", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	ev.Raw = nil
	want := event.Event{
		Time:          ms("2026-11-24T09:15:02.417Z"),
		Provider:      "pingone",
		Tenant:        "t",
		Source:        "s",
		ID:            "a3e9c0d2-55b1-4f6e-8d7a-19c2e4b6f001",
		Action:        "USER.ACCESS_ALLOWED",
		Description:   "User Access Allowed",
		Outcome:       event.OutcomeSuccess,
		Reason:        "Passed role access control",
		Actor:         &event.Party{Type: "USER", ID: "u-1029", Name: "m.okafor@example.org"},
		Client:        &event.Party{Type: "CLIENT", ID: "b7e1f0aa-2c3d-4e5f-8a9b-0c1d2e3f4a5b", Name: "Staff Portal"},
		Targets:       []event.Party{{Type: "USER", ID: "u-1029", Name: "m.okafor@example.org"}},
		SourceIP:      "198.51.100.23",
		UserAgent:     "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
		CorrelationID: "c-7731-alpha",
		SessionID:     "sess-4f2e",
		Tags:          []string{"adminIdentityEvent"},
	}
	if diff := cmp.Diff(want, ev); diff != "" {
		t.Errorf("Normalize (-want +got):\n%s", diff)
	}
}

func TestNormalizeActorFallsBackToClient(t *testing.T) {
	ev, err := Normalize(event.Raw{ID: "x", Data: readFixture(t, "normalize/worker_secret_read.json")})
	if err != nil {
		t.Fatal(err)
	}
	want := &event.Party{Type: "CLIENT", ID: "wk-31", Name: "Nightly Sync Worker"}
	if diff := cmp.Diff(want, ev.Actor); diff != "" {
		t.Errorf("Actor (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, ev.Client); diff != "" {
		t.Errorf("Client (-want +got):\n%s", diff)
	}
	if ev.Actor == ev.Client {
		t.Error("Actor and Client share one Party: a sink changing one changes the other")
	}
	if ev.Provider != "pingone" {
		t.Errorf("Provider = %q, want pingone when the Raw has none", ev.Provider)
	}
}

func TestNormalizeErrors(t *testing.T) {
	for _, data := range []string{``, `null`, `[]`, `"x"`, `{"id":`, `42`} {
		if _, err := Normalize(event.Raw{ID: "bad", Data: json.RawMessage(data)}); err == nil {
			t.Errorf("Normalize(%q) = nil error", data)
		}
	}
}

func TestOutcome(t *testing.T) {
	for in, want := range map[string]event.Outcome{
		"SUCCESS": event.OutcomeSuccess, "success": event.OutcomeSuccess, "FAILED": event.OutcomeFailure,
		"": event.OutcomeUnknown, "PARTIAL": event.OutcomeUnknown,
	} {
		data, _ := json.Marshal(map[string]any{"id": "a", "result": map[string]string{"status": in}})
		e, err := Normalize(event.Raw{ID: "a", Data: data})
		if err != nil || e.Outcome != want {
			t.Errorf("result.status %q: outcome %q (%v), want %q", in, e.Outcome, err, want)
		}
		if got := outcome(in); got != want {
			t.Errorf("reference outcome(%q) = %q, want %q", in, got, want)
		}
	}
}
