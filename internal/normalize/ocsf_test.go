package normalize

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/auditrelay/auditrelay/internal/event"
)

// TestOCSFEmulated runs every event kind the emulators generate through
// the OCSF normalizers and the schema checker: all must pass, and the
// routing of each kind is pinned.
func TestOCSFEmulated(t *testing.T) {
	s := ocsfSchemaForTest(t)
	// want maps a provider's event code to its "class_uid/activity_id".
	want := map[string]map[string]string{
		ProviderPingOne: {
			"USER.ACCESS_ALLOWED": "3002/1", "USER.ACCESS_DENIED": "3002/1", "USER.CREATED": "3001/1",
			"USER.UPDATED": "3001/99", "USER.DELETED": "3001/6", "GROUP.CREATED": "3006/6",
			"MEMBER_OF_GROUP.CREATED": "3006/3", "APPLICATION.CREATED": "3004/1", "APPLICATION.UPDATED": "3004/3",
			"ROLE_ASSIGNMENT.CREATED": "3005/1", "SECRET.READ": "3004/2", "ACTION.CREATED": "3004/1",
		},
		ProviderCyberArk: {
			"IDP1100": "3002/1", "IDP1101": "3002/1", "IDP2009": "3002/99", "IDP2001": "3001/1", "IDP3001": "3005/1",
			"IDP6004": "3004/3", "PAM00295": "3004/2", "PAM00088": "3004/3", "PAM00185": "3004/1", "PAM00032": "3004/1",
			"PAM00099": "3004/2",
		},
		ProviderOkta: {
			"user.session.start": "3002/1", "user.authentication.sso": "3002/1", "user.authentication.auth_via_mfa": "3002/1",
			"policy.evaluate_sign_on": "6003/99", "user.account.lock": "3001/9", "user.lifecycle.create": "3001/1",
			"group.user_membership.add": "3006/3", "application.user_membership.add": "3005/1",
			"system.api_token.create": "6003/1", "user.mfa.factor.deactivate": "3001/11",
		},
		ProviderEntraDirectoryAudits: {
			"Update user": "3001/99", "Add user": "3001/1", "Add member to group": "3006/3",
			"Update application – Certificates and secrets management": "3004/3", "Add member to role": "3005/1",
			"GroupLifecyclePolicies_Get": "3004/3", "Add member to role completed (PIM activation)": "3005/1",
			"Reset password (self-service)": "3001/4", "Update conditional access policy": "3004/3",
		},
		ProviderEntraSignIns:      {"signIn": "3002/1"},
		ProviderEntraProvisioning: {"create": "3001/1", "update": "3001/99"},
	}
	for _, p := range Providers() {
		t.Run(p, func(t *testing.T) {
			seen := map[string]bool{}
			statuses := map[float64]bool{}
			var b []byte
			for _, r := range emulated(t, p, 1500, 1) {
				var err error
				if b, err = OCSF(r, b[:0]); err != nil {
					t.Fatalf("event %s: %v", r.ID, err)
				}
				if errs := s.Check(b); len(errs) > 0 {
					t.Fatalf("event %s (%s) fails the OCSF checker:\n  %s\n%s", r.ID, r.Data, strings.Join(errs, "\n  "), b)
				}
				var ev struct {
					Class    int     `json:"class_uid"`
					Activity int     `json:"activity_id"`
					Status   float64 `json:"status_id"`
					RawData  string  `json:"raw_data"`
					Metadata struct {
						UID       string `json:"uid"`
						EventCode string `json:"event_code"`
						Tenant    string `json:"tenant_uid"`
					} `json:"metadata"`
				}
				if err := json.Unmarshal(b, &ev); err != nil {
					t.Fatal(err)
				}
				if ev.RawData != string(r.Data) {
					t.Fatalf("event %s: raw_data is not the provider event", r.ID)
				}
				if ev.Metadata.UID != r.ID {
					t.Errorf("event %s: metadata.uid %q", r.ID, ev.Metadata.UID)
				}
				if ev.Metadata.Tenant != r.Tenant {
					t.Errorf("event %s: metadata.tenant_uid %q, want %q", r.ID, ev.Metadata.Tenant, r.Tenant)
				}
				statuses[ev.Status] = true
				code := ev.Metadata.EventCode
				got := fmt.Sprintf("%d/%d", ev.Class, ev.Activity)
				w, ok := want[p][code]
				if !ok {
					t.Errorf("event code %q is not in the table (routed to %s)", code, got)
					continue
				}
				seen[code] = true
				if got != w {
					t.Errorf("%s %q: routed to %s, want %s", p, code, got, w)
				}
			}
			for code := range want[p] {
				if !seen[code] {
					t.Errorf("the emulator generated no %q", code)
				}
			}
			if !statuses[statusSuccess] || !statuses[statusFailure] {
				t.Errorf("statuses seen %v: want both success and failure", statuses)
			}
		})
	}
}

// TestOCSFGolden pins the OCSF output of hand-picked and edge-case events
// (testdata/golden/*.raw.json); each must also pass the checker.
func TestOCSFGolden(t *testing.T) {
	s := ocsfSchemaForTest(t)
	for name, r := range goldenInputs(t) {
		b, err := OCSF(r, nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if errs := s.Check(b); len(errs) > 0 {
			t.Errorf("%s fails the OCSF checker:\n  %s\n%s", name, strings.Join(errs, "\n  "), b)
		}
		golden(t, name+".ocsf.json", b)
	}
}

// TestOCSFErrors covers what is no event.
func TestOCSFErrors(t *testing.T) {
	for _, data := range []string{``, `[]`, `"x"`, `{`, `{"a":1}{`, `null`} {
		if _, err := OCSF(event.Raw{Provider: ProviderPingOne, Data: []byte(data)}, nil); err == nil {
			t.Errorf("data %q: no error", data)
		}
	}
	if _, err := OCSF(event.Raw{Provider: "nope", Data: []byte(`{}`)}, nil); err == nil || !strings.Contains(err.Error(), "no normalizer") {
		t.Errorf("unknown provider: %v", err)
	}
}

// FuzzOCSF feeds arbitrary JSON (and non-JSON) to every OCSF normalizer:
// none may panic, and each output must be one valid JSON object holding
// the event in raw_data.
func FuzzOCSF(f *testing.F) {
	for i, p := range Providers() {
		for _, r := range emulated(f, p, 5, uint64(i)) {
			f.Add(uint8(i), string(r.Data))
		}
	}
	for _, s := range []string{`{}`, `{"actors":{"user":7},"resources":[1,null,{"type":"USER"}]}`, `{"customData":{"nested_items":[{"name":"x"}]}}`,
		`{"target":"x","client":[],"status":{"errorCode":"1"}}`, "{\"id\":\"\xff\"}", `{"a\"b":{"c":[{"d":"\u2028"}]}}`} {
		f.Add(uint8(0), s)
	}
	provs := Providers()
	f.Fuzz(func(t *testing.T, pi uint8, data string) {
		r := event.Raw{Provider: provs[int(pi)%len(provs)], ID: "x", Data: []byte(data)}
		b, err := OCSF(r, nil)
		if err != nil {
			if json.Valid([]byte(data)) && strings.HasPrefix(strings.TrimSpace(data), "{") {
				t.Fatalf("a JSON object gives %v", err)
			}
			return
		}
		if !json.Valid(b) || b[0] != '{' || slices.Contains(b, '\n') {
			t.Fatalf("output is not one line of JSON: %s", b)
		}
		var ev struct {
			RawData *string `json:"raw_data"`
		}
		if err := json.Unmarshal(b, &ev); err != nil || ev.RawData == nil {
			t.Fatalf("no raw_data: %v %s", err, b)
		}
	})
}
