package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

// OktaGenerator makes realistic, deterministic System Log events: sign-ins
// with their policy evaluations and MFA, lockouts, admin changes to users,
// groups and apps, API token use, with actors, clients, geography, security
// context, targets and transactions in Okta's LogEvent shape.
type OktaGenerator struct {
	rng   *rand.Rand
	users []oktaPerson
	n     int
}

type oktaPerson struct {
	id, login, name string
	ip              string
	city, country   string
}

// NewOktaGenerator returns a generator; the same seed gives the same events.
func NewOktaGenerator(seed uint64) *OktaGenerator {
	g := &OktaGenerator{rng: rand.New(rand.NewPCG(seed, 0x0c7a6e17))}
	first := []string{"Ana", "Bo", "Chen", "Dara", "Eli", "Fatou", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lena"}
	last := []string{"Silva", "Berg", "Wu", "Okafor", "Novak", "Diallo", "Moreau", "Sato", "Petrov", "Kim"}
	places := [][2]string{{"Paris", "France"}, {"Berlin", "Germany"}, {"Austin", "United States"}, {"Osaka", "Japan"}, {"Lagos", "Nigeria"}, {"Toronto", "Canada"}}
	for i := range 40 {
		f, l := first[g.rng.IntN(len(first))], last[g.rng.IntN(len(last))]
		p := places[g.rng.IntN(len(places))]
		g.users = append(g.users, oktaPerson{
			id: g.oktaID("00u"), login: fmt.Sprintf("%s.%s%d@example.com", f, l, i), name: f + " " + l,
			ip:   fmt.Sprintf("%d.%d.%d.%d", 80+g.rng.IntN(100), g.rng.IntN(256), g.rng.IntN(256), 1+g.rng.IntN(254)),
			city: p[0], country: p[1],
		})
	}
	return g
}

// oktaID returns an Okta-style 20-character id with prefix.
func (g *OktaGenerator) oktaID(prefix string) string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
	b := []byte(prefix)
	for len(b) < 20 {
		b = append(b, alphabet[g.rng.IntN(len(alphabet))])
	}
	return string(b)
}

func (g *OktaGenerator) uuid() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(g.rng.UintN(256))
	}
	return formatUUID(b)
}

// Event returns the next event, published at published.
func (g *OktaGenerator) Event(published time.Time) OktaEvent {
	g.n++
	u := g.users[g.rng.IntN(len(g.users))]
	published = published.UTC().Truncate(time.Millisecond)
	kinds := []struct {
		typ, msg, severity string
		outcome            string
	}{
		{"user.session.start", "User login to Okta", "INFO", "SUCCESS"},
		{"user.session.start", "User login to Okta", "WARN", "FAILURE"},
		{"user.authentication.sso", "User single sign on to app", "INFO", "SUCCESS"},
		{"user.authentication.auth_via_mfa", "Authentication of user via MFA", "INFO", "SUCCESS"},
		{"policy.evaluate_sign_on", "Evaluation of sign-on policy", "INFO", "ALLOW"},
		{"user.account.lock", "Max sign in attempts exceeded", "WARN", "SUCCESS"},
		{"user.lifecycle.create", "Create okta user", "INFO", "SUCCESS"},
		{"group.user_membership.add", "Add user to group membership", "INFO", "SUCCESS"},
		{"application.user_membership.add", "Add user to application membership", "INFO", "SUCCESS"},
		{"system.api_token.create", "Create API token", "INFO", "SUCCESS"},
		{"user.mfa.factor.deactivate", "Reset factor for user", "WARN", "SUCCESS"},
	}
	k := kinds[g.rng.IntN(len(kinds))]
	ev := map[string]any{
		"uuid":            g.uuid(),
		"published":       published.Format("2006-01-02T15:04:05.000Z"),
		"eventType":       k.typ,
		"version":         "0",
		"severity":        k.severity,
		"legacyEventType": nil,
		"displayMessage":  k.msg,
		"actor":           map[string]any{"id": u.id, "type": "User", "alternateId": u.login, "displayName": u.name, "detailEntry": nil},
		"client": map[string]any{
			"userAgent": map[string]any{"rawUserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15", "os": "Mac OS X", "browser": "SAFARI"},
			"zone":      "null", "device": "Computer", "id": nil, "ipAddress": u.ip,
			"geographicalContext": map[string]any{"city": u.city, "country": u.country, "state": nil, "postalCode": nil,
				"geolocation": map[string]any{"lat": 40 + g.rng.Float64(), "lon": 2 + g.rng.Float64()}},
		},
		"outcome": map[string]any{"result": k.outcome, "reason": nil},
		"authenticationContext": map[string]any{"authenticationProvider": nil, "credentialProvider": nil, "credentialType": nil,
			"issuer": nil, "interface": nil, "authenticationStep": 0, "externalSessionId": "102" + g.oktaID("")[:17]},
		"securityContext": map[string]any{"asNumber": 3215 + g.rng.IntN(1000), "asOrg": "example telecom", "isp": "example isp", "domain": "example.net", "isProxy": false},
		"transaction":     map[string]any{"type": "WEB", "id": g.oktaID("Y"), "detail": map[string]any{}},
		"debugContext":    map[string]any{"debugData": map[string]any{"requestId": g.oktaID("Z"), "requestUri": "/api/v1/authn", "url": "/api/v1/authn?"}},
		"request":         map[string]any{"ipChain": []any{map[string]any{"ip": u.ip, "version": "V4", "source": nil}}},
		"target":          []any{},
	}
	if k.outcome == "FAILURE" {
		ev["outcome"] = map[string]any{"result": "FAILURE", "reason": "INVALID_CREDENTIALS"}
	}
	switch k.typ {
	case "user.lifecycle.create", "group.user_membership.add", "application.user_membership.add", "user.mfa.factor.deactivate":
		t := g.users[g.rng.IntN(len(g.users))]
		ev["target"] = []any{map[string]any{"id": t.id, "type": "User", "alternateId": t.login, "displayName": t.name, "detailEntry": nil}}
		if k.typ == "group.user_membership.add" {
			ev["target"] = append(ev["target"].([]any), map[string]any{"id": g.oktaID("00g"), "type": "UserGroup", "alternateId": "unknown", "displayName": "Engineering"})
		}
	case "user.authentication.sso":
		ev["target"] = []any{map[string]any{"id": g.oktaID("0oa"), "type": "AppInstance", "alternateId": "Salesforce", "displayName": "Salesforce.com"}}
	}
	b, _ := json.Marshal(ev) // maps of strings, numbers and slices always marshal
	return OktaEvent{UUID: ev["uuid"].(string), Published: published, JSON: b}
}

// Backlog adds n events spread evenly over [from, to), each committed
// up to maxLag after it was published.
func (o *Okta) Backlog(g *OktaGenerator, n int, from, to time.Time, maxLag time.Duration) {
	if n <= 0 {
		return
	}
	step := to.Sub(from) / time.Duration(n)
	evs := make([]OktaEvent, 0, n)
	for i := range n {
		ev := g.Event(from.Add(time.Duration(i) * step))
		if maxLag > 0 {
			ev.Persisted = ev.Published.Add(time.Duration(g.rng.Int64N(int64(maxLag))))
		}
		evs = append(evs, ev)
	}
	o.Add(evs...)
}

// Run adds live events until ctx is done: about rate per second with
// exponential gaps, published at their arrival and committed up to maxLag
// later; one arrival in 300 is a burst of 5 to 1,500 events in the same
// millisecond. It uses the Okta's clock for timestamps.
func (o *Okta) Run(ctx context.Context, g *OktaGenerator, rate float64, maxLag time.Duration) {
	if rate <= 0 {
		return
	}
	for {
		gap := time.Duration(g.rng.ExpFloat64() / rate * float64(time.Second))
		select {
		case <-ctx.Done():
			return
		case <-time.After(gap):
		}
		now := o.opts.Now()
		n := 1
		if g.rng.IntN(300) == 0 {
			n = 5 + g.rng.IntN(1496)
		}
		evs := make([]OktaEvent, n)
		for i := range evs {
			evs[i] = g.Event(now)
			if maxLag > 0 {
				evs[i].Persisted = now.Add(time.Duration(g.rng.Int64N(int64(maxLag))))
			}
		}
		o.Add(evs...)
	}
}
