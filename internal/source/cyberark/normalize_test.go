package cyberark

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/auditrelay/auditrelay/internal/event"
)

func TestNormalize(t *testing.T) {
	b, err := os.ReadFile("testdata/events.json")
	if err != nil {
		t.Fatal(err)
	}
	var raws []json.RawMessage
	json.Unmarshal(b, &raws)
	tenant := "c0ffee00-1111-4222-8333-444455556666"
	raw := func(i int) event.Raw {
		return event.Raw{Source: "ca", Provider: Provider, Tenant: tenant, ID: "id", Time: time.UnixMilli(1772971200123).UTC(), Data: raws[i]}
	}
	want := []event.Event{
		{Action: "add-user", Description: "add-user", Outcome: event.OutcomeSuccess,
			Actor:    &event.Party{Type: "User", ID: "5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f", Name: "alice.martin@example.cyberark.cloud.12345"},
			SourceIP: "2001:db8:85a3::8a2e:370:7334",
			Targets:  []event.Party{{Type: "User", ID: "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", Name: "bob.nguyen@example.cyberark.cloud.12345"}},
			Tags:     []string{"IDP", "IDP2001"}},
		{Action: "Retrieve password", Description: "(Action: Copy Password)access", Outcome: event.OutcomeSuccess,
			Actor: &event.Party{Type: "User", ID: "alice.martin@example.cyberark.cloud.12345", Name: "alice.martin@example.cyberark.cloud.12345"},
			Targets: []event.Party{{Type: "Account", ID: "27_4", Name: "root"}, {Type: "Safe", Name: "Linux Root"},
				{Type: "Host", Name: "10.0.3.7"}},
			Tags: []string{"PAM", "PAM00295"}},
		{Action: "Set Password", Outcome: event.OutcomeSuccess, CorrelationID: "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9",
			Actor: &event.Party{Type: "User", ID: "PVWAGWUser", Name: "PVWAGWUser"},
			Tags:  []string{"PAM", "PAM00088"}},
	}
	for i, w := range want {
		r := raw(i)
		w.Time, w.Provider, w.Tenant, w.Source, w.ID, w.Raw = r.Time, Provider, tenant, "ca", "id", r.Data
		got, err := Normalize(r)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("event %d (-want +got):\n%s", i, diff)
		}
	}
	got, err := Normalize(event.Raw{ID: "x", Data: json.RawMessage(`{"auditType":"Failure","message":"bad password","source":"PVWA","userId":7,"customData":"x"}`)})
	if err != nil || got.Outcome != event.OutcomeFailure || got.Reason != "bad password" || got.SourceIP != "" || got.Actor != nil {
		t.Errorf("lenient failure: %+v %v", got, err)
	}
	if _, err := Normalize(event.Raw{ID: "x", Data: json.RawMessage(`[1]`)}); err == nil {
		t.Error("an array normalized")
	}
}
