package detect_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/auditrelay/auditrelay/internal/detect"
)

// step is one event of a scenario, after a wait, and the outer
// correlations it must make fire (none when empty).
type step struct {
	wait  time.Duration
	event string
	fires []string
}

// run feeds a scenario through the Sigma base rules (sigma-go) and the
// correlation engine, in a synctest bubble whose clock the waits advance,
// and checks which outer correlations fire at each step.
func run(t *testing.T, rules []sigmaRule, corrs []detect.Correlation, steps []step) {
	t.Helper()
	referenced := map[string]bool{}
	for _, c := range corrs {
		for _, r := range c.Rules {
			referenced[r] = true
		}
	}
	synctest.Test(t, func(t *testing.T) {
		e, err := detect.NewEngine(corrs)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range steps {
			time.Sleep(s.wait)
			f, err := detect.Flatten([]byte(s.event))
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			var fired []string
			for _, r := range rules {
				if !r.matches(t, f) {
					continue
				}
				for _, a := range e.Observe(r.name, f) {
					if !referenced[a.Correlation.Name] {
						fired = append(fired, a.Correlation.Name)
					}
				}
			}
			slices.Sort(fired)
			if !slices.Equal(fired, s.fires) {
				t.Errorf("step %d (%s after %v): fired %v, want %v", i, s.event, s.wait, fired, s.fires)
			}
		}
	})
}

func repeat(n int, s step) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func seq(parts ...[]step) []step { return slices.Concat(parts...) }

func one(wait time.Duration, event string, fires ...string) []step {
	return []step{{wait, event, fires}}
}

func pingone(actionType, userID string) string {
	return fmt.Sprintf(`{"action":{"type":%q},"actors":{"user":{"id":%q,"type":"USER"}},"resources":[{"type":"USER","id":%q}],"result":{"status":"SUCCESS"}}`, actionType, userID, userID)
}

func TestCorrelationScenarios(t *testing.T) {
	rules, corrs := loadSigma(t)
	const (
		p1Seq = "pingone_access_denied_then_allowed"
		caSeq = "cyberark_logon_failed_then_success"
		okSeq = "okta_login_failed_then_success"
		enSeq = "entra_signin_failed_then_success"
	)
	denied, allowed := pingone("USER.ACCESS_DENIED", "u1"), pingone("USER.ACCESS_ALLOWED", "u1")
	ca := func(code, user, reason string) string {
		return fmt.Sprintf(`{"auditCode":%q,"applicationCode":"IDP","username":%q,"customData":{"failure_reason":%q}}`, code, user, reason)
	}
	okta := func(result, user string) string {
		return fmt.Sprintf(`{"eventType":"user.session.start","outcome":{"result":%q},"actor":{"alternateId":%q}}`, result, user)
	}
	entra := func(code int, user string) string {
		return fmt.Sprintf(`{"userPrincipalName":%q,"status":{"errorCode":%d}}`, user, code)
	}
	app := func(actionType, id string) string {
		return fmt.Sprintf(`{"action":{"type":%q},"actors":{"user":{"id":"admin","type":"USER"}},"resources":[{"type":"APPLICATION","id":%q}]}`, actionType, id)
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"pingone: five denials then allowed", seq(repeat(5, step{time.Minute, denied, nil}), one(time.Minute, allowed, p1Seq))},
		{"pingone: four denials then allowed", seq(repeat(4, step{time.Minute, denied, nil}), one(time.Minute, allowed))},
		{"pingone: allowed too late", seq(repeat(5, step{time.Minute, denied, nil}), one(16*time.Minute, allowed))},
		{"pingone: denials too spread", seq(repeat(5, step{5 * time.Minute, denied, nil}), one(time.Minute, allowed))},
		{"pingone: another user allowed", seq(repeat(5, step{time.Second, denied, nil}), one(time.Second, pingone("USER.ACCESS_ALLOWED", "u2")))},
		{"pingone: one alert per burst", seq(repeat(5, step{time.Second, denied, nil}), one(time.Second, allowed, p1Seq), one(time.Second, allowed),
			repeat(5, step{time.Second, pingone("PASSWORD.CHECK_FAILED", "u1"), nil}), one(time.Second, pingone("PASSWORD.CHECK_SUCCEEDED", "u1"), p1Seq))},
		{"pingone: allowed before the burst", seq(one(time.Second, allowed), repeat(5, step{time.Second, denied, nil}))},
		{"pingone: ten deletions by one actor", seq(repeat(9, step{30 * time.Second, pingone("USER.DELETED", "admin"), nil}),
			one(30*time.Second, pingone("USER.DELETED", "admin"), "pingone_mass_user_deletion"))},
		{"pingone: ten deletions in 15 minutes", repeat(10, step{100 * time.Second, pingone("USER.DELETED", "admin"), nil})},
		{"pingone: new application granted a role", seq(one(0, app("APPLICATION.CREATED", "app1")), one(50*time.Minute, app("ROLE_ASSIGNMENT.CREATED", "app1"), "pingone_new_application_granted_role"))},
		{"pingone: role granted to an older application", seq(one(0, app("APPLICATION.CREATED", "app1")), one(61*time.Minute, app("ROLE_ASSIGNMENT.CREATED", "app1")))},
		{"pingone: role granted to another application", seq(one(0, app("APPLICATION.CREATED", "app1")), one(time.Minute, app("ROLE_ASSIGNMENT.CREATED", "app2")))},
		{"cyberark: three failures then logon", seq(repeat(3, step{time.Minute, ca("IDP2007", "alice", "Bad password"), nil}), one(time.Minute, ca("IDP2005", "alice", ""), caSeq))},
		{"cyberark: two failures then logon", seq(repeat(2, step{time.Minute, ca("IDP2007", "alice", "Bad password"), nil}), one(time.Minute, ca("IDP2005", "alice", "")))},
		{"cyberark: push fatigue", seq(repeat(4, step{time.Minute, ca("IDP2007", "bob", "MFA not satisfied"), nil}), one(time.Minute, ca("IDP2007", "bob", "MFA not satisfied"), "cyberark_mfa_not_satisfied_burst"))},
		{"cyberark: pushes too spread", repeat(5, step{3 * time.Minute, ca("IDP2007", "bob", "MFA not satisfied"), nil})},
		{"cyberark: mass actions", seq(repeat(49, step{time.Second, ca("PAM00295", "carol", ""), nil}), one(time.Second, ca("PAM00295", "carol", ""), "cyberark_mass_actions_by_user"))},
		{"cyberark: actions of many users", repeat(60, step{time.Second, ca("PAM00295", "", ""), nil})},
		{"okta: five failures then success", seq(repeat(5, step{time.Minute, okta("FAILURE", "ana@example.com"), nil}), one(time.Minute, okta("SUCCESS", "ana@example.com"), okSeq))},
		{"okta: success of another user", seq(repeat(5, step{time.Minute, okta("FAILURE", "ana@example.com"), nil}), one(time.Minute, okta("SUCCESS", "bo@example.com")))},
		{"entra: five wrong passwords then success", seq(repeat(5, step{time.Minute, entra(50126, "adele@contoso.com"), nil}), one(time.Minute, entra(0, "adele@contoso.com"), enSeq))},
		{"entra: MFA interrupts are no wrong passwords", seq(repeat(5, step{time.Minute, entra(50074, "adele@contoso.com"), nil}), one(time.Minute, entra(0, "adele@contoso.com")))},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) { run(t, rules, corrs, tc.steps) })
	}
}

func parseCorrelation(t *testing.T, doc string) detect.Correlation {
	t.Helper()
	c, err := detect.ParseCorrelation([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func observe(e *detect.Engine, rule string, fields string) []string {
	f, _ := detect.Flatten([]byte(fields))
	var names []string
	for _, a := range e.Observe(rule, f) {
		names = append(names, a.Correlation.Name)
	}
	return names
}

func TestEngineValueCountAndTemporal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		vc := parseCorrelation(t, `
title: many addresses
name: many_addresses
correlation:
  type: value_count
  rules: [failed]
  group-by: [user]
  timespan: 10m
  condition: {field: ip, gte: 3}
`)
		tp := parseCorrelation(t, `
title: both
name: both
correlation:
  type: temporal
  rules: [a, b]
  group-by: [host]
  timespan: 5m
  aliases:
    host: {a: src, b: dst}
`)
		e, err := detect.NewEngine([]detect.Correlation{vc, tp})
		if err != nil {
			t.Fatal(err)
		}
		for i, ip := range []string{"1", "2", "2", "3"} {
			got := observe(e, "failed", `{"user":"u","ip":"`+ip+`"}`)
			if want := i == 3; (len(got) == 1) != want {
				t.Errorf("value_count after %d events: %v", i+1, got)
			}
			time.Sleep(time.Minute)
		}
		// temporal, in either order, joined through the aliases.
		if got := observe(e, "b", `{"dst":"h1"}`); got != nil {
			t.Errorf("temporal fired on one rule: %v", got)
		}
		time.Sleep(4 * time.Minute)
		if got := observe(e, "a", `{"src":"h2"}`); got != nil {
			t.Errorf("temporal fired across hosts: %v", got)
		}
		if got := observe(e, "a", `{"src":"h1"}`); !slices.Equal(got, []string{"both"}) {
			t.Errorf("temporal: %v", got)
		}
		time.Sleep(6 * time.Minute)
		if got := observe(e, "b", `{"dst":"h2"}`); got != nil {
			t.Errorf("temporal fired outside its timespan: %v", got)
		}
	})
}

func TestEngineGroupsEveryValueOfAField(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := parseCorrelation(t, `
title: twice
name: twice
correlation: {type: event_count, rules: [r], group-by: [ids], timespan: 1m, condition: {gte: 2}}
`)
		e, _ := detect.NewEngine([]detect.Correlation{c})
		observe(e, "r", `{"ids":["a","b"]}`)
		got := observe(e, "r", `{"ids":["b","c"]}`)
		if !slices.Equal(got, []string{"twice"}) {
			t.Errorf("got %v, want one alert for the group b", got)
		}
	})
}

func TestParseCorrelationErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`title: x
correlation: {type: event_count, rules: [r], group-by: [u], timespan: 5m, condition: {lt: 3}}`, "only a lower bound"},
		{`title: x
correlation: {type: event_count, rules: [r], group-by: [u], timespan: 5m}`, "needs gt or gte"},
		{`title: x
correlation: {type: value_count, rules: [r], group-by: [u], timespan: 5m, condition: {gte: 3}}`, "needs field"},
		{`title: x
correlation: {type: temporal, rules: [r], group-by: [u], timespan: 5m}`, "at least two rules"},
		{`title: x
correlation: {type: sequence, rules: [r, s], group-by: [u], timespan: 5m}`, "is not event_count"},
		{`title: x
correlation: {type: temporal, rules: [r, s], group-by: [u], timespan: 5 minutes}`, "timespan"},
		{`title: x
correlation: {type: temporal, rules: [r, s], timespan: 5m}`, "group-by: required"},
		{`title: x
correlation: {type: temporal, rules: [r, s], group-by: [u], timespan: 5m, aliases: {v: {r: a}}}`, "not used in group-by"},
		{`title: x
logsource: {product: p}`, "no correlation section"},
	} {
		_, err := detect.ParseCorrelation([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.doc, err, tc.want)
		}
	}
}

func TestEngineRefusesLoops(t *testing.T) {
	a := detect.Correlation{Title: "a", Name: "a", Type: detect.TemporalOrdered, Rules: []string{"b", "x"}, GroupBy: []string{"u"}, Timespan: time.Minute}
	b := detect.Correlation{Title: "b", Name: "b", Type: detect.TemporalOrdered, Rules: []string{"a", "y"}, GroupBy: []string{"u"}, Timespan: time.Minute}
	if _, err := detect.NewEngine([]detect.Correlation{a, b}); err == nil {
		t.Error("a loop of correlations was accepted")
	}
}

func TestFlatten(t *testing.T) {
	f, err := detect.Flatten([]byte(`{"a":{"b":"x","n":12345678901234,"z":null},"r":[{"id":"1"},{"id":"2"}],"t":["k"],"e":[],"o":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(f)
	if want := `{"a.b":"x","a.n":12345678901234,"r.id":["1","2"],"t":"k"}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
	for _, bad := range []string{`[1]`, `"x"`, `{"a":1} {}`, `{`} {
		if _, err := detect.Flatten([]byte(bad)); err == nil {
			t.Errorf("%s: flattened", bad)
		}
	}
}

func FuzzFlatten(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[1,{"c":null}]}}`))
	f.Add([]byte(`{"action":{"type":"USER.CREATED"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fields, err := detect.Flatten(data)
		if err != nil {
			return
		}
		if _, err := json.Marshal(fields); err != nil {
			t.Fatalf("flattened fields do not marshal: %v", err)
		}
	})
}
