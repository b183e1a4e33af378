package normalize

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/auditrelay/auditrelay/internal/event"
)

// TestECSEmulated runs every event kind the emulators generate through
// the ECS normalizers and the ECS checker.
func TestECSEmulated(t *testing.T) {
	s := ecsSchemaForTest(t)
	for _, p := range Providers() {
		t.Run(p, func(t *testing.T) {
			var b []byte
			outcomes := map[string]bool{}
			for _, r := range emulated(t, p, 1500, 1) {
				var err error
				if b, err = ECS(r, b[:0]); err != nil {
					t.Fatalf("event %s: %v", r.ID, err)
				}
				if errs := s.Check(b); len(errs) > 0 {
					t.Fatalf("event %s (%s) fails the ECS checker:\n  %s\n%s", r.ID, r.Data, strings.Join(errs, "\n  "), b)
				}
				var doc struct {
					Event struct {
						Original string `json:"original"`
						Outcome  string `json:"outcome"`
					} `json:"event"`
				}
				if err := json.Unmarshal(b, &doc); err != nil {
					t.Fatal(err)
				}
				if doc.Event.Original != string(r.Data) {
					t.Fatalf("event %s: event.original is not the provider event", r.ID)
				}
				outcomes[doc.Event.Outcome] = true
			}
			if p != ProviderCyberArk && (!outcomes["success"] || !outcomes["failure"]) {
				t.Errorf("outcomes %v: want success and failure", outcomes)
			}
		})
	}
}

// TestECSPingOneFixes pins what the ECS mapping adds to Elastic's ping_one
// pipeline: source.ip, user_agent.original, and the authentication
// category of failed password checks and denied access.
func TestECSPingOneFixes(t *testing.T) {
	for _, tt := range []struct{ typ, status, cats, types, outcome string }{
		{"PASSWORD.CHECK_FAILED", "FAILED", "iam,authentication", "start,info", "failure"},
		{"USER.ACCESS_DENIED", "FAILED", "iam,authentication", "start,user", "failure"},
		{"USER.ACCESS_ALLOWED", "SUCCESS", "iam,authentication", "start,user", "success"},
		{"GROUP.UPDATED", "SUCCESS", "iam,configuration", "change,group", "success"},
		{"SECRET.READ", "SUCCESS", "iam,configuration", "access,info", "success"},
	} {
		data := `{"id":"1","recordedAt":"2026-01-01T00:00:00Z","action":{"type":"` + tt.typ + `"},"result":{"status":"` + tt.status +
			`"},"source":{"ipAddress":"192.0.2.9","userAgent":"UA/1"},"actors":{"user":{"id":"u","name":"n","type":"USER"}}}`
		b, err := ECS(event.Raw{Provider: ProviderPingOne, Data: []byte(data)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Event struct {
				Category, Type  []string
				Outcome, Action string
			}
			Source    struct{ IP string }
			UserAgent struct{ Original string } `json:"user_agent"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(doc.Event.Category, ","); got != tt.cats {
			t.Errorf("%s: category %s, want %s", tt.typ, got, tt.cats)
		}
		if got := strings.Join(doc.Event.Type, ","); got != tt.types {
			t.Errorf("%s: type %s, want %s", tt.typ, got, tt.types)
		}
		if doc.Event.Outcome != tt.outcome || doc.Event.Action != strings.ToLower(tt.typ) {
			t.Errorf("%s: outcome %q action %q", tt.typ, doc.Event.Outcome, doc.Event.Action)
		}
		if doc.Source.IP != "192.0.2.9" || doc.UserAgent.Original != "UA/1" {
			t.Errorf("%s: source.ip %q, user_agent.original %q", tt.typ, doc.Source.IP, doc.UserAgent.Original)
		}
	}
}

// TestECSGolden pins the ECS output of the golden inputs; each must pass
// the checker.
func TestECSGolden(t *testing.T) {
	s := ecsSchemaForTest(t)
	for name, r := range goldenInputs(t) {
		b, err := ECS(r, nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if errs := s.Check(b); len(errs) > 0 {
			t.Errorf("%s fails the ECS checker:\n  %s\n%s", name, strings.Join(errs, "\n  "), b)
		}
		golden(t, name+".ecs.json", b)
	}
}

// FuzzECS feeds arbitrary JSON to every ECS normalizer: none may panic,
// and each output must be one line of valid JSON with event.original.
func FuzzECS(f *testing.F) {
	for i, p := range Providers() {
		for _, r := range emulated(f, p, 5, uint64(i)) {
			f.Add(uint8(i), string(r.Data))
		}
	}
	f.Add(uint8(1), `{"customData":{"PAM":{"target":"a\\b"}},"auditCode":"PAM00099","username":"x@y"}`)
	provs := Providers()
	f.Fuzz(func(t *testing.T, pi uint8, data string) {
		b, err := ECS(event.Raw{Provider: provs[int(pi)%len(provs)], ID: "x", Data: []byte(data)}, nil)
		if err != nil {
			if json.Valid([]byte(data)) && strings.HasPrefix(strings.TrimSpace(data), "{") {
				t.Fatalf("a JSON object gives %v", err)
			}
			return
		}
		if !json.Valid(b) || slices.Contains(b, '\n') {
			t.Fatalf("output is not one line of JSON: %s", b)
		}
		var doc struct {
			Event struct{ Original *string } `json:"event"`
		}
		if err := json.Unmarshal(b, &doc); err != nil || doc.Event.Original == nil {
			t.Fatalf("no event.original: %v %s", err, b)
		}
	})
}

// TestECSCyberArkAsSekoia pins, for one event of each kind Sekoia's
// "CyberArk Audit Logs" format has a test for, the ECS fields and values
// that format gives (fixtures of our own in the same shape).
func TestECSCyberArkAsSekoia(t *testing.T) {
	const base = `"tenantId":"43de6333-0000-4000-8000-000000000001","timestamp":1739269449904,`
	for _, tt := range []struct {
		name, data string
		want       map[string]any
	}{
		{"IDP2001", `{"uuid":"u1",` + base + `"username":"ann@tenant.example","applicationCode":"IDP","auditCode":"IDP2001","auditType":"Info","action":"add-user","userId":"id-ann","source":"2001:db8::5","actionType":"Create","component":"Identity","serviceName":"Identity","message":"add-user","customData":{"directory_service_id":"dir-1","user_id":"id-bo","user_name":"bo@tenant.example"},"cloudProvider":"aws","identityType":"HUMAN"}`,
			map[string]any{"@timestamp": "2025-02-11T10:24:09.904Z", "event.code": "IDP2001", "event.action": "add-user", "event.category": []any{"configuration"},
				"event.type": []any{"creation"}, "event.dataset": "IDP", "event.provider": "Identity", "event.reason": "add-user",
				"user.email": "ann@tenant.example", "user.id": "id-ann", "source.ip": "2001:db8::5", "source.address": "2001:db8::5",
				"user.target.email": "bo@tenant.example", "user.target.id": "id-bo", "cyberark.audit.directory_service_id": "dir-1",
				"observer.vendor": "CyberArk", "observer.product": "Identity", "organization.id": "43de6333-0000-4000-8000-000000000001", "cloud.provider": "aws"}},
		{"IDP2009", `{"uuid":"u2",` + base + `"username":"INTEGRATION","applicationCode":"IDP","auditCode":"IDP2009","auditType":"Info","action":"cloud.core.oauthtoken.create","userId":"id-i","source":"198.51.100.7","component":"Identity","serviceName":"Identity","message":"cloud.core.oauthtoken.create","customData":{}}`,
			map[string]any{"event.category": []any{"authentication"}, "event.type": []any{"start"}, "event.outcome": "success", "user.name": "INTEGRATION",
				"related.user": []any{"INTEGRATION"}, "related.ip": []any{"198.51.100.7"}}},
		{"PAM00099", `{"uuid":"u3",` + base + `"username":"ann","applicationCode":"PAM","auditCode":"PAM00099","auditType":"Info","action":"Open File","userId":"ann","source":"PVWA","component":"Vault","serviceName":"Privilege Cloud","message":"","customData":{"PAM":{"new_target":"","target":"Root\\PVConfiguration.xml"}},"safe":"PVWAConfig"}`,
			map[string]any{"event.category": []any{"configuration"}, "event.type": []any{"access"}, "file.path": `Root\PVConfiguration.xml`, "file.name": "PVConfiguration.xml",
				"observer.name": "PVWA", "cyberark.audit.safe": "PVWAConfig", "user.name": "ann"}},
		{"PAM00295", `{"uuid":"u4",` + base + `"username":"ann","applicationCode":"PAM","auditCode":"PAM00295","auditType":"Info","action":"Retrieve password","userId":"ann","source":"PVWA","component":"Vault","serviceName":"Privilege Cloud","accountId":"12_3","target":"10.0.0.9","message":"(Action: Copy Password)access","customData":{"PAM":{"new_target":"nt","target":"Root\\Operating System-UnixSSH-10.0.0.9-root"}},"safe":"Linux","accountName":"Operating System-UnixSSH-10.0.0.9-root","targetPlatform":"UnixSSH","targetAccount":"root"}`,
			map[string]any{"event.type": []any{"access"}, "event.reason": "(Action: Copy Password)access", "destination.ip": "10.0.0.9", "destination.address": "10.0.0.9",
				"user.target.domain": "Root", "user.target.name": "Operating System-UnixSSH-10.0.0.9-root", "cyberark.audit.new_target": "nt",
				"cyberark.audit.account_id": "12_3", "cyberark.audit.target_platform": "UnixSSH"}},
		{"PAM00088", `{"uuid":"u5",` + base + `"username":"PVWAGWUser","applicationCode":"PAM","auditCode":"PAM00088","auditType":"Info","action":"Set Password","userId":"PVWAGWUser","source":"PVWAAPP","component":"Vault","serviceName":"Privilege Cloud","message":"","customData":{"PAM":{"new_target":"","target":""}},"safe":"","targetAccount":""}`,
			map[string]any{"event.category": []any{"configuration"}, "event.type": []any{"change"}, "user.name": "PVWAGWUser", "user.id": "PVWAGWUser", "observer.name": "PVWAAPP"}},
	} {
		b, err := ECS(event.Raw{Provider: ProviderCyberArk, Data: []byte(tt.data)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if errs := ecsSchemaForTest(t).Check(b); len(errs) > 0 {
			t.Errorf("%s: %v", tt.name, errs)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		for path, want := range tt.want {
			var v any = doc
			for _, k := range strings.Split(strings.Replace(path, "@timestamp", "\x00", 1), ".") {
				k = strings.Replace(k, "\x00", "@timestamp", 1)
				m, _ := v.(map[string]any)
				v = m[k]
			}
			if gotJSON, wantJSON := fmt.Sprint(v), fmt.Sprint(want); gotJSON != wantJSON {
				t.Errorf("%s: %s = %v, want %v", tt.name, path, v, want)
			}
		}
	}
}
