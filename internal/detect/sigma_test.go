package detect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bradleyjkemp/sigma-go"
	"github.com/bradleyjkemp/sigma-go/evaluator"

	"github.com/auditrelay/auditrelay/detections"
	"github.com/auditrelay/auditrelay/internal/detect"
	"github.com/auditrelay/auditrelay/internal/emulator"
)

// logsources are the Sigma logsources of our rules: product, service, and
// the provider of the events they read (see docs/detections.md).
var logsources = map[[2]string]string{
	{"pingone", "audit"}:          "pingone",
	{"cyberark", "isp_audit"}:     "cyberark",
	{"okta", "okta"}:              "okta",
	{"entra", "directory_audits"}: "entra_directory_audits",
	{"entra", "sign_ins"}:         "entra_sign_ins",
}

// sigmaRule is a single-event rule and its evaluator.
type sigmaRule struct {
	file string
	name string
	rule sigma.Rule
	eval *evaluator.RuleEvaluator
}

// loadSigma parses every Sigma file: single-event rules with sigma-go,
// correlation rules with detect.ParseCorrelation.
func loadSigma(t *testing.T) ([]sigmaRule, []detect.Correlation) {
	t.Helper()
	files, err := fs.Glob(detections.FS(), "sigma/*/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Sigma files: %v", err)
	}
	var rules []sigmaRule
	var corrs []detect.Correlation
	for _, f := range files {
		b, err := fs.ReadFile(detections.FS(), f)
		if err != nil {
			t.Fatal(err)
		}
		if detect.IsCorrelation(b) {
			if !strings.HasPrefix(path.Base(f), "mr_") {
				t.Errorf("%s: a correlation rule's file name starts with mr_", f)
			}
			c, err := detect.ParseCorrelation(b)
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			corrs = append(corrs, c)
			continue
		}
		r, err := sigma.ParseRule(b)
		if err != nil {
			t.Errorf("%s: sigma-go: %v", f, err)
			continue
		}
		name, _ := r.AdditionalFields["name"].(string)
		rules = append(rules, sigmaRule{file: f, name: name, rule: r, eval: evaluatorFor(r)})
	}
	return rules, corrs
}

// evaluatorFor evaluates a rule over detect.Fields: each field of the
// rule is looked up under its own dotted name, and a field with several
// values matches when one of them does.
func evaluatorFor(r sigma.Rule) *evaluator.RuleEvaluator {
	cfg := sigma.Config{FieldMappings: map[string]sigma.FieldMapping{}}
	for _, s := range r.Detection.Searches {
		for _, m := range s.EventMatchers {
			for _, f := range m {
				cfg.FieldMappings[f.Field] = sigma.FieldMapping{TargetNames: []string{f.Field}}
			}
		}
	}
	return evaluator.ForRule(r, evaluator.WithConfig(cfg))
}

func (r sigmaRule) matches(t *testing.T, f detect.Fields) bool {
	t.Helper()
	res, err := r.eval.Matches(context.Background(), map[string]any(f))
	if err != nil {
		t.Fatalf("%s: %v", r.file, err)
	}
	return res.Match
}

func TestSigmaRulesWellFormed(t *testing.T) {
	rules, corrs := loadSigma(t)
	ids, names := map[string]string{}, map[string]string{}
	seen := func(file, id, name string) {
		if id == "" || name == "" {
			t.Errorf("%s: id and name are required", file)
		}
		if prev, ok := ids[id]; ok {
			t.Errorf("%s: id %s is also %s's", file, id, prev)
		}
		if prev, ok := names[name]; ok {
			t.Errorf("%s: name %s is also %s's", file, name, prev)
		}
		ids[id], names[name] = file, file
	}
	for _, r := range rules {
		seen(r.file, r.rule.ID, r.name)
		if path.Base(r.file) != r.name+".yml" {
			t.Errorf("%s: file name is not the rule's name %s", r.file, r.name)
		}
		ls := [2]string{r.rule.Logsource.Product, r.rule.Logsource.Service}
		if _, ok := logsources[ls]; !ok {
			t.Errorf("%s: logsource %v is not one of ours", r.file, ls)
		}
		if !slices.Contains([]string{"informational", "low", "medium", "high", "critical"}, r.rule.Level) {
			t.Errorf("%s: level %q", r.file, r.rule.Level)
		}
		if !slices.ContainsFunc(r.rule.Tags, func(s string) bool { return strings.HasPrefix(s, "attack.t") }) {
			t.Errorf("%s: no ATT&CK technique tag", r.file)
		}
	}
	for _, c := range corrs {
		seen(c.Title, c.ID, c.Name)
	}
	// Every rule a correlation refers to exists.
	for _, c := range corrs {
		for _, ref := range c.Rules {
			if _, ok := names[ref]; !ok {
				t.Errorf("correlation %s refers to %s, which is no rule", c.Name, ref)
			}
		}
	}
	if _, err := detect.NewEngine(corrs); err != nil {
		t.Error(err)
	}
	// Every analytics rule implements Sigma rules that exist.
	content, err := detect.Load(detections.FS())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range content.Analytics {
		for _, s := range a.Sigma {
			if _, ok := names[s]; !ok {
				t.Errorf("%s: sigma %s is no rule", a.File, s)
			}
		}
	}
}

// emulatedEvents generates events of every provider from the emulators,
// flattened, by provider.
func emulatedEvents(t *testing.T) map[string][]detect.Fields {
	t.Helper()
	out := map[string][]detect.Fields{}
	add := func(provider string, data []byte) {
		f, err := detect.Flatten(data)
		if err != nil {
			t.Fatalf("%s event: %v", provider, err)
		}
		out[provider] = append(out[provider], f)
	}
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	p1 := emulator.NewGenerator(1)
	ca := emulator.NewCyberArkGenerator(2)
	ok := emulator.NewOktaGenerator(3)
	en := emulator.NewEntraGenerator("72f988bf-86f1-41af-91ab-2d7cd011db47", 4)
	for i := range 3000 {
		ts := at.Add(time.Duration(i) * time.Second)
		add("pingone", p1.Activity("env-1", "https://api.pingone.eu", ts).JSON)
		if i < 1500 {
			add("cyberark", ca.Event("tenant-1", ts).JSON)
			add("okta", ok.Event(ts).JSON)
			add("entra_directory_audits", en.DirectoryAudit(ts).JSON)
			add("entra_sign_ins", en.SignIn(ts).JSON)
		}
	}
	return out
}

func is(f detect.Fields, field string, values ...string) bool {
	for _, v := range f.Values(field) {
		for _, want := range values {
			if strings.EqualFold(fmt.Sprint(v), want) {
				return true
			}
		}
	}
	return false
}

func containsAny(f detect.Fields, field string, subs ...string) bool {
	for _, v := range f.Values(field) {
		for _, s := range subs {
			if strings.Contains(strings.ToLower(fmt.Sprint(v)), strings.ToLower(s)) {
				return true
			}
		}
	}
	return false
}

// oracles say, independently of the Sigma engine, which events each rule
// is meant to match; emulated lists the rules whose events the emulators
// generate, which must then match some generated events and miss others.
var oracles = map[string]struct {
	emulated bool
	match    func(detect.Fields) bool
}{
	"pingone_admin_acting_on_admin": {true, func(f detect.Fields) bool {
		return is(f, "tags", "adminIdentityEvent") && is(f, "action.type", "USER.UPDATED", "USER.DELETED", "PASSWORD.RESET", "ROLE_ASSIGNMENT.CREATED", "ROLE_ASSIGNMENT.DELETED")
	}},
	"pingone_secret_read_by_api_client": {true, func(f detect.Fields) bool {
		return is(f, "action.type", "SECRET.READ") && !is(f, "actors.user.type", "USER")
	}},
	"pingone_application_secret_changed": {false, func(f detect.Fields) bool { return is(f, "action.type", "SECRET.CREATED", "SECRET.UPDATED") }},
	"pingone_privileged_role_assigned": {true, func(f detect.Fields) bool {
		return is(f, "action.type", "ROLE_ASSIGNMENT.CREATED") &&
			containsAny(f, "result.description", "Environment Admin", "Organization Admin", "Identity Data Admin", "Client Application Developer")
	}},
	"pingone_policy_changed": {false, func(f detect.Fields) bool {
		at := strings.ToUpper(f.String("action.type"))
		prefix := slices.ContainsFunc([]string{"SIGN_ON_POLICY.", "SIGN_ON_POLICY_ACTION.", "SIGN_ON_POLICY_ASSIGNMENT.", "MFA_SETTINGS.", "PASSWORD_POLICY.", "AUTHORIZE_POLICY."},
			func(p string) bool { return strings.HasPrefix(at, p) })
		return prefix && (strings.HasSuffix(at, ".UPDATED") || strings.HasSuffix(at, ".DELETED"))
	}},
	"pingone_identity_provider_changed": {false, func(f detect.Fields) bool {
		return is(f, "action.type", "IDENTITY_PROVIDER.CREATED", "IDENTITY_PROVIDER.UPDATED", "IDENTITY_PROVIDER.DELETED")
	}},
	"pingone_application_created":     {true, func(f detect.Fields) bool { return is(f, "action.type", "APPLICATION.CREATED") }},
	"pingone_role_assignment_created": {true, func(f detect.Fields) bool { return is(f, "action.type", "ROLE_ASSIGNMENT.CREATED") }},
	"pingone_access_denied":           {true, func(f detect.Fields) bool { return is(f, "action.type", "USER.ACCESS_DENIED", "PASSWORD.CHECK_FAILED") }},
	"pingone_access_allowed": {true, func(f detect.Fields) bool {
		return is(f, "action.type", "USER.ACCESS_ALLOWED", "PASSWORD.CHECK_SUCCEEDED")
	}},
	"pingone_user_deleted":           {true, func(f detect.Fields) bool { return is(f, "action.type", "USER.DELETED") }},
	"cyberark_identity_logon_failed": {false, func(f detect.Fields) bool { return is(f, "auditCode", "IDP2007") }},
	"cyberark_identity_logon":        {false, func(f detect.Fields) bool { return is(f, "auditCode", "IDP2005") }},
	"cyberark_logon_failed_mfa": {false, func(f detect.Fields) bool {
		return is(f, "auditCode", "IDP2007") && containsAny(f, "customData.failure_reason", "MFA")
	}},
	"cyberark_password_retrieved": {true, func(f detect.Fields) bool { return is(f, "auditCode", "PAM00295") }},
	"cyberark_safe_owner_changed": {true, func(f detect.Fields) bool { return is(f, "auditCode", "PAM00032", "PAM00273") }},
	"cyberark_identity_role_or_policy_changed": {true, func(f detect.Fields) bool {
		return is(f, "applicationCode", "IDP") && is(f, "action", "policy-add", "policy-change", "cloud.core.role.addmember")
	}},
	"cyberark_user_action": {true, func(f detect.Fields) bool { return strings.TrimSpace(f.String("username")) != "" }},
	"okta_admin_privilege_granted": {false, func(f detect.Fields) bool {
		return is(f, "eventType", "user.account.privilege.grant", "group.privilege.grant")
	}},
	"okta_mfa_factor_reset": {true, func(f detect.Fields) bool {
		return is(f, "eventType", "user.mfa.factor.deactivate", "user.mfa.factor.reset_all")
	}},
	"okta_api_token_created": {true, func(f detect.Fields) bool { return is(f, "eventType", "system.api_token.create") }},
	"okta_session_start_failed": {true, func(f detect.Fields) bool {
		return is(f, "eventType", "user.session.start") && is(f, "outcome.result", "FAILURE")
	}},
	"okta_session_start_succeeded": {true, func(f detect.Fields) bool {
		return is(f, "eventType", "user.session.start") && is(f, "outcome.result", "SUCCESS")
	}},
	"entra_role_member_added": {true, func(f detect.Fields) bool {
		return is(f, "category", "RoleManagement") && is(f, "result", "success") &&
			is(f, "activityDisplayName", "Add member to role", "Add eligible member to role", "Add member to role completed (PIM activation)")
	}},
	"entra_application_credentials_added": {true, func(f detect.Fields) bool {
		a := strings.ToLower(f.String("activityDisplayName"))
		return is(f, "category", "ApplicationManagement") &&
			(strings.HasPrefix(a, "update application – certificates and secrets management") || strings.HasPrefix(a, "add service principal credentials"))
	}},
	"entra_conditional_access_policy_changed": {true, func(f detect.Fields) bool {
		return is(f, "category", "Policy") && is(f, "activityDisplayName", "Update conditional access policy", "Delete conditional access policy")
	}},
	"entra_signin_bad_password": {true, func(f detect.Fields) bool { return is(f, "status.errorCode", "50126") }},
	"entra_signin_succeeded":    {true, func(f detect.Fields) bool { return is(f, "status.errorCode", "0") }},
}

// TestSigmaRulesOnEmulatedEvents evaluates every rule with sigma-go over
// the events the emulators generate for its provider: it must fire on
// exactly the events its oracle says.
func TestSigmaRulesOnEmulatedEvents(t *testing.T) {
	rules, _ := loadSigma(t)
	events := emulatedEvents(t)
	for _, r := range rules {
		o, ok := oracles[r.name]
		if !ok {
			t.Errorf("%s: no oracle for %s", r.file, r.name)
			continue
		}
		provider := logsources[[2]string{r.rule.Logsource.Product, r.rule.Logsource.Service}]
		pos, neg := 0, 0
		for i, f := range events[provider] {
			got, want := r.matches(t, f), o.match(f)
			if got != want {
				b, _ := json.Marshal(f)
				t.Errorf("%s: %s event %d: match %v, want %v: %s", r.name, provider, i, got, want, b)
				break
			}
			if got {
				pos++
			} else {
				neg++
			}
		}
		// cyberark_user_action is meant to match every event with a
		// username, which every emulated event has.
		if neg == 0 && r.name != "cyberark_user_action" {
			t.Errorf("%s: matched every %s event", r.name, provider)
		}
		if o.emulated && pos == 0 {
			t.Errorf("%s: matched none of %d %s events, though the emulator makes them", r.name, len(events[provider]), provider)
		}
		if !o.emulated && pos > 0 {
			t.Errorf("%s: matched %d %s events: mark it emulated", r.name, pos, provider)
		}
	}
}

// TestSigmaRulesOnEdgeCases evaluates every rule over its hand-written
// events, testdata/sigma/<name>.json: it fires on each positive and on no
// negative, and its oracle agrees.
func TestSigmaRulesOnEdgeCases(t *testing.T) {
	rules, _ := loadSigma(t)
	for _, r := range rules {
		b, err := os.ReadFile("testdata/sigma/" + r.name + ".json")
		if err != nil {
			t.Errorf("%s: %v", r.name, err)
			continue
		}
		var cases struct{ Positive, Negative []json.RawMessage }
		if err := json.Unmarshal(b, &cases); err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		if len(cases.Positive) == 0 || len(cases.Negative) == 0 {
			t.Errorf("%s: needs positive and negative events", r.name)
		}
		for want, evs := range map[bool][]json.RawMessage{true: cases.Positive, false: cases.Negative} {
			for i, ev := range evs {
				f, err := detect.Flatten(ev)
				if err != nil {
					t.Fatalf("%s: %v", r.name, err)
				}
				if got := r.matches(t, f); got != want {
					t.Errorf("%s: event %d (%s): match %v, want %v", r.name, i, ev, got, want)
				}
				if o, ok := oracles[r.name]; ok && o.match(f) != want {
					t.Errorf("%s: the oracle disagrees on event %d (%s)", r.name, i, ev)
				}
			}
		}
	}
}
