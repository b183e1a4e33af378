package emulator

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// CyberArkGenerator makes realistic CyberArk ISP audit events: Identity
// (IDP) sign-ins, token grants, user, role and application changes, and
// Privilege Cloud (PAM) safe, file and password actions. Every event has
// the 29 keys CyberArk serves, in its order, with null and "" where the real
// API has them; some also carry correlationId, isDr and originRegion. It is
// deterministic for a seed and not safe for concurrent use.
type CyberArkGenerator struct {
	rng   *rand.Rand
	users []string
	ids   map[string]string
}

// NewCyberArkGenerator returns a generator seeded with seed.
func NewCyberArkGenerator(seed uint64) *CyberArkGenerator {
	g := &CyberArkGenerator{rng: rand.New(rand.NewPCG(seed, 0xcabe_7e57)), ids: map[string]string{}}
	for _, n := range []string{"alice.martin", "bob.nguyen", "carol.schmidt", "dan.okafor", "eve.rossi", "frank.dubois", "grace.kim", "hugo.silva"} {
		u := n + "@example.cyberark.cloud.12345"
		g.users = append(g.users, u)
		g.ids[u] = g.uuid()
	}
	return g
}

func (g *CyberArkGenerator) uuid() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	return formatUUID(b)
}

func (g *CyberArkGenerator) ip() string {
	if g.rng.IntN(6) == 0 {
		return fmt.Sprintf("2001:db8:%x:%x::%x", g.rng.IntN(0xffff), g.rng.IntN(0xffff), 1+g.rng.IntN(0xfffe))
	}
	return fmt.Sprintf("203.0.113.%d", 1+g.rng.IntN(254))
}

// caJSON writes one JSON object with keys in insertion order.
type caJSON struct{ b []byte }

func (j *caJSON) key(k string) {
	if len(j.b) > 1 {
		j.b = append(j.b, ',')
	}
	j.b = appendString(j.b, k)
	j.b = append(j.b, ':')
}
func (j *caJSON) str(k, v string)       { j.key(k); j.b = appendString(j.b, v) }
func (j *caJSON) null(k string)         { j.key(k); j.b = append(j.b, "null"...) }
func (j *caJSON) raw(k, v string)       { j.key(k); j.b = append(j.b, v...) }
func (j *caJSON) num(k string, v int64) { j.key(k); j.b = strconv.AppendInt(j.b, v, 10) }

// opt writes v, or null when v is nil.
func (j *caJSON) opt(k string, v *string) {
	if v == nil {
		j.null(k)
		return
	}
	j.str(k, *v)
}

func sp(s string) *string { return &s }

// caFields are one event's values; nil pointers are served as null.
type caFields struct {
	username, app, code, auditType, action, userID, source, actionType, component, service, message string
	accessMethod, accountID, target, command, sessionID                                             *string
	customData                                                                                      string
	cloudProvider, safe, accountName, targetPlatform, targetAccount, identityType                   *string
}

// Event returns a new event of tenant tenantID at ts (millisecond
// precision), visible at once.
func (g *CyberArkGenerator) Event(tenantID string, ts time.Time) CyberArkEvent {
	ts = time.UnixMilli(ts.UnixMilli()).UTC()
	user := pick2(g, g.users)
	ip := g.ip()
	var f caFields
	switch k := g.rng.IntN(100); {
	case k < 40: // sign-in
		ok := g.rng.IntN(10) > 0
		f = caFields{username: user, app: "IDP", code: "IDP1100", auditType: "Info", action: "cloud.core.login", userID: g.ids[user],
			source: ip, actionType: "Start", component: "Identity", service: "Identity", message: "User login succeeded",
			customData:    `{"geoip_city_name":"Paris","geoip_country_name":"France","request_browser_name":"Chrome","request_device_os":"Windows","auth_method":"Password,Email"}`,
			cloudProvider: sp("aws"), identityType: sp("HUMAN")}
		if !ok {
			f.code, f.auditType, f.action, f.actionType, f.message = "IDP1101", "Failure", "cloud.core.loginfail", "Start", "User login failed: bad password"
		}
	case k < 55: // OAuth token
		f = caFields{username: "CYBERARKACCOUNTSINTEGRATION", app: "IDP", code: "IDP2009", auditType: "Info", action: "cloud.core.oauthtoken.create",
			userID: g.uuid(), source: ip, actionType: "Create", component: "Identity", service: "Identity", message: "cloud.core.oauthtoken.create",
			customData:    `{"is_internal_application":true,"client":"__idaptive_cybr_user_oidc","scopes":"openid api profile","token_type":"Id"}`,
			cloudProvider: sp("aws"), identityType: sp("HUMAN")}
	case k < 62: // user created
		target := pick2(g, g.users)
		f = caFields{username: user, app: "IDP", code: "IDP2001", auditType: "Info", action: "add-user", userID: g.ids[user], source: ip,
			actionType: "Create", component: "Identity", service: "Identity", message: "add-user",
			customData:    `{"directory_service_id":"` + g.uuid() + `","user_id":"` + g.ids[target] + `","user_name":"` + target + `"}`,
			cloudProvider: sp("aws"), identityType: sp("HUMAN")}
	case k < 67: // role change
		f = caFields{username: user, app: "IDP", code: "IDP3001", auditType: "Warning", action: "cloud.core.role.addmember", userID: g.ids[user], source: ip,
			actionType: "Edit", component: "Identity", service: "Identity", message: "Role membership changed",
			customData:    `{"role_name":"System Administrator","user_name":"` + pick2(g, g.users) + `"}`,
			cloudProvider: sp("aws"), identityType: sp("HUMAN")}
	case k < 70: // application change
		f = caFields{username: user, app: "IDP", code: "IDP6004", auditType: "Info", action: "cloud.saas.application.appmodify", userID: g.ids[user], source: ip,
			actionType: "Edit", component: "Identity", service: "Identity", message: "cloud.saas.application.appmodify",
			customData:    `{"app_url":"","service_name":"SIEMExport","description":"Export audit","app_display_name":"SIEM export","id":"` + g.uuid() + `","on_prem":false,"geoip_latitude":48.8717}`,
			cloudProvider: sp("aws"), identityType: sp("HUMAN")}
	case k < 82: // retrieve password
		acct := fmt.Sprintf("Operating System-UnixSSH-10.0.%d.%d-root", g.rng.IntN(255), 1+g.rng.IntN(254))
		f = caFields{username: user, app: "PAM", code: "PAM00295", auditType: "Info", action: "Retrieve password", userID: user, source: "PVWA",
			actionType: "Password", component: "Vault", service: "Privilege Cloud", message: "(Action: Copy Password)access",
			accountID: sp(fmt.Sprintf("%d_%d", 10+g.rng.IntN(90), 1+g.rng.IntN(20))), target: sp("10.0.0." + strconv.Itoa(1+g.rng.IntN(254))),
			customData: `{"PAM":{"new_target":"","target":"Root\\` + acct + `"}}`, safe: sp("Linux Root"), accountName: sp(acct),
			targetPlatform: sp("UnixSSH"), targetAccount: sp("root")}
	case k < 88: // set password (CPM)
		f = caFields{username: "PVWAGWUser", app: "PAM", code: "PAM00088", auditType: "Info", action: "Set Password", userID: "PVWAGWUser", source: "PVWAAPP",
			actionType: "Password", component: "Vault", service: "Privilege Cloud", message: "",
			accountID: sp(""), target: sp(""), customData: `{"PAM":{"new_target":"","target":""}}`, safe: sp(""), accountName: sp(""),
			targetPlatform: sp(""), targetAccount: sp("")}
	case k < 92: // safe created
		f = caFields{username: user, app: "PAM", code: "PAM00185", auditType: "Info", action: "Add Safe", userID: user, source: "PVWA",
			actionType: "Create", component: "Vault", service: "Privilege Cloud", message: "Add Safe",
			target: sp(""), customData: `{"PAM":{"new_target":"","target":"Root\\DB-Prod"}}`, safe: sp("DB-Prod"), accountName: sp(""),
			targetPlatform: sp(""), targetAccount: sp("")}
	case k < 96: // safe owner
		f = caFields{username: user, app: "PAM", code: "PAM00032", auditType: "Info", action: "Add Owner", userID: user, source: "PVWA",
			actionType: "Edit", component: "Vault", service: "Privilege Cloud", message: "Add Owner",
			target: sp(""), customData: `{"PAM":{"new_target":"","target":""}}`, safe: sp("DB-Prod"), accountName: sp(""),
			targetPlatform: sp(""), targetAccount: sp("")}
	default: // open file
		f = caFields{username: user, app: "PAM", code: "PAM00099", auditType: "Info", action: "Open File", userID: user, source: "PVWA",
			actionType: "Execute", component: "Vault", service: "Privilege Cloud", message: "",
			target: sp(""), customData: `{"PAM":{"new_target":"","target":"Root\\PVConfiguration.xml"}}`, safe: sp("PVWAConfig"), accountName: sp(""),
			targetPlatform: sp(""), targetAccount: sp("")}
	}
	id := g.uuid()
	j := caJSON{b: make([]byte, 0, 1024)}
	j.b = append(j.b, '{')
	j.str("uuid", id)
	j.str("tenantId", tenantID)
	j.num("timestamp", ts.UnixMilli())
	j.str("username", f.username)
	j.str("applicationCode", f.app)
	j.str("auditCode", f.code)
	j.str("auditType", f.auditType)
	j.str("action", f.action)
	j.str("userId", f.userID)
	j.str("source", f.source)
	j.str("actionType", f.actionType)
	j.str("component", f.component)
	j.str("serviceName", f.service)
	j.opt("accessMethod", f.accessMethod)
	j.opt("accountId", f.accountID)
	j.opt("target", f.target)
	j.opt("command", f.command)
	j.opt("sessionId", f.sessionID)
	j.str("message", f.message)
	j.raw("customData", f.customData)
	j.opt("cloudProvider", f.cloudProvider)
	j.raw("cloudWorkspacesAndRoles", "[]")
	j.null("cloudIdentities")
	j.null("cloudAssets")
	j.opt("safe", f.safe)
	j.opt("accountName", f.accountName)
	j.opt("targetPlatform", f.targetPlatform)
	j.opt("targetAccount", f.targetAccount)
	j.opt("identityType", f.identityType)
	if g.rng.IntN(4) == 0 {
		j.str("correlationId", g.uuid())
		j.raw("isDr", "false")
		j.str("originRegion", "eu-central-1")
	}
	j.b = append(j.b, '}')
	return CyberArkEvent{UUID: id, Timestamp: ts, ApplicationCode: f.app, JSON: j.b}
}

func pick2[T any](g *CyberArkGenerator, s []T) T { return s[g.rng.IntN(len(s))] }

// Backlog adds n events of g at random instants of [from, to), all visible.
func (c *CyberArk) Backlog(g *CyberArkGenerator, tenantID string, n int, from, to time.Time) {
	if n <= 0 {
		return
	}
	span := to.Sub(from).Milliseconds()
	offs := make([]int64, n)
	for i := range offs {
		if span > 0 {
			offs[i] = g.rng.Int64N(span)
		}
	}
	slices.Sort(offs)
	evs := make([]CyberArkEvent, n)
	for i, off := range offs {
		evs[i] = g.Event(tenantID, from.Add(time.Duration(off)*time.Millisecond))
	}
	c.Add(tenantID, evs...)
}

// Burst adds n events of g inside the one second starting at sec (truncated
// to the second), many of them in the same millisecond, each visible from
// visibleAt (zero: at once).
func (c *CyberArk) Burst(g *CyberArkGenerator, tenantID string, n int, sec, visibleAt time.Time) []CyberArkEvent {
	sec = sec.Truncate(time.Second)
	evs := make([]CyberArkEvent, n)
	for i := range evs {
		ms := int64(0)
		if g.rng.IntN(2) == 0 {
			ms = g.rng.Int64N(1000)
		}
		evs[i] = g.Event(tenantID, sec.Add(time.Duration(ms)*time.Millisecond))
		evs[i].VisibleAt = visibleAt
	}
	c.Add(tenantID, evs...)
	return evs
}

// Run adds live events of g until ctx is done: about rate per second with
// exponential gaps, each visible after a random lag in [0, maxLag]; about
// one arrival in 500 is a burst of 20 to 500 events in the same second. It
// uses the emulator's clock for timestamps and timers for waiting.
func (c *CyberArk) Run(ctx context.Context, g *CyberArkGenerator, tenantID string, rate float64, maxLag time.Duration) {
	if rate <= 0 {
		<-ctx.Done()
		return
	}
	gap := func() time.Duration { return time.Duration(g.rng.ExpFloat64() / rate * float64(time.Second)) }
	next := c.opts.Now().Add(gap())
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if wait := next.Sub(c.opts.Now()); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		now := c.opts.Now()
		var batch []CyberArkEvent
		for !next.After(now) && len(batch) < 10_000 {
			n := 1
			if g.rng.IntN(500) == 0 {
				n = 20 + g.rng.IntN(481)
			}
			for range n {
				e := g.Event(tenantID, next)
				if maxLag > 0 {
					e.VisibleAt = e.Timestamp.Add(time.Duration(g.rng.Int64N(int64(maxLag) + 1)))
				}
				batch = append(batch, e)
			}
			next = next.Add(gap())
		}
		c.Add(tenantID, batch...)
	}
}

// StartDemo adds one tenant with printable credentials (app "auditrelay",
// client "svc-audit@cyberark.cloud.12345" / "demo-secret", API key
// "demo-api-key", either client authentication), a backlog of n events over
// the last backlog, and live traffic at rate until ctx is done (Wait waits
// for it). It returns the tenant.
func (c *CyberArk) StartDemo(ctx context.Context, seed uint64, n int, backlog time.Duration, rate float64, maxLag time.Duration) CyberArkTenant {
	g := NewCyberArkGenerator(seed)
	t := CyberArkTenant{ID: g.uuid(), AppID: "auditrelay", ClientID: "svc-audit@cyberark.cloud.12345",
		ClientSecret: "demo-secret", APIKey: "demo-api-key"}
	c.AddTenant(t)
	now := c.opts.Now()
	if n > 0 && backlog > 0 {
		c.Backlog(g, t.ID, n, now.Add(-backlog), now)
	}
	if rate > 0 {
		c.wg.Go(func() { c.Run(ctx, g, t.ID, rate, maxLag) })
	}
	return t
}

// Wait blocks until the live traffic started by StartDemo has stopped.
func (c *CyberArk) Wait() { c.wg.Wait() }
