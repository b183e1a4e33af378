package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// EntraGenerator makes realistic, deterministic Microsoft Graph audit log
// events: directoryAudit (user, group, application, role and PIM changes,
// self-service password resets, with composite ids such as
// Directory_<correlationId>_<5 chars>_<digits>), signIn (interactive
// sign-ins with device, location, conditional access, risk and status)
// and provisioningObjectSummary (provisioning cycles' creates, updates and
// failures), with 7-digit fraction times.
type EntraGenerator struct {
	rng    *rand.Rand
	tenant string
	users  []entraPerson
	apps   []entraNamed
	groups []entraNamed
}

type entraPerson struct {
	id, upn, name, ip string
	city, state, cc   string
}

type entraNamed struct{ id, name string }

// NewEntraGenerator returns a generator of the tenant's events; the same
// seed gives the same events.
func NewEntraGenerator(tenant string, seed uint64) *EntraGenerator {
	g := &EntraGenerator{rng: rand.New(rand.NewPCG(seed, 0xe7a6e17)), tenant: tenant}
	first := []string{"Adele", "Alex", "Diego", "Grady", "Isaiah", "Johanna", "Lee", "Lidia", "Megan", "Nestor", "Patti", "Pradeep"}
	last := []string{"Vance", "Wilber", "Siciliani", "Archie", "Langer", "Lauer", "Gu", "Holloway", "Bowen", "Wilke", "Fernandez", "Gupta"}
	places := [][3]string{{"Redmond", "Washington", "US"}, {"Dublin", "Dublin", "IE"}, {"Paris", "Ile-de-France", "FR"}, {"Bengaluru", "Karnataka", "IN"}, {"Sydney", "New South Wales", "AU"}}
	for i := range 30 {
		f, l := first[g.rng.IntN(len(first))], last[g.rng.IntN(len(last))]
		p := places[g.rng.IntN(len(places))]
		g.users = append(g.users, entraPerson{id: g.uuid(), upn: fmt.Sprintf("%s.%s%d@contoso.com", strings.ToLower(f), strings.ToLower(l), i),
			name: f + " " + l, ip: fmt.Sprintf("%d.%d.%d.%d", 20+g.rng.IntN(150), g.rng.IntN(256), g.rng.IntN(256), 1+g.rng.IntN(254)),
			city: p[0], state: p[1], cc: p[2]})
	}
	for _, n := range []string{"Office 365 Exchange Online", "Microsoft Teams", "Azure Portal", "Salesforce", "ServiceNow", "Graph Explorer"} {
		g.apps = append(g.apps, entraNamed{g.uuid(), n})
	}
	for _, n := range []string{"Finance", "Engineering", "All Company", "Helpdesk Admins", "Sales EMEA"} {
		g.groups = append(g.groups, entraNamed{g.uuid(), n})
	}
	return g
}

func (g *EntraGenerator) uuid() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(g.rng.UintN(256))
	}
	return formatUUID(b)
}

func (g *EntraGenerator) user() entraPerson { return g.users[g.rng.IntN(len(g.users))] }

func (g *EntraGenerator) upper(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.rng.IntN(len(alphabet))]
	}
	return string(b)
}

// at returns t at 100 ns with a random sub-millisecond part, as Graph's
// times have.
func (g *EntraGenerator) at(t time.Time) time.Time {
	return t.UTC().Truncate(time.Millisecond).Add(time.Duration(g.rng.IntN(10000)) * 100 * time.Nanosecond)
}

func entraEvent(id string, t time.Time, v map[string]any) EntraEvent {
	b, _ := json.Marshal(v) // maps of strings, numbers, bools and slices always marshal
	return EntraEvent{ID: id, Time: t, JSON: b}
}

// DirectoryAudit returns a directoryAudit at about t.
func (g *EntraGenerator) DirectoryAudit(t time.Time) EntraEvent {
	t = g.at(t)
	corr := g.uuid()
	kinds := []struct{ svc, cat, activity, op, prefix string }{
		{"Core Directory", "UserManagement", "Update user", "Update", "Directory"},
		{"Core Directory", "UserManagement", "Add user", "Add", "Directory"},
		{"Core Directory", "GroupManagement", "Add member to group", "Assign", "Directory"},
		{"Core Directory", "ApplicationManagement", "Update application – Certificates and secrets management ", "Update", "Directory"},
		{"Core Directory", "RoleManagement", "Add member to role", "Assign", "Directory"},
		{"Self-service Group Management", "GroupManagement", "GroupLifecyclePolicies_Get", "Update", "SSGM"},
		{"PIM", "RoleManagement", "Add member to role completed (PIM activation)", "Add", "PIM"},
		{"Self-service Password Management", "UserManagement", "Reset password (self-service)", "Update", "SSPR"},
		{"Core Directory", "Policy", "Update conditional access policy", "Update", "IPCGraph"},
	}
	k := kinds[g.rng.IntN(len(kinds))]
	var id string
	switch k.prefix {
	case "Directory":
		id = fmt.Sprintf("Directory_%s_%s_%d", corr, g.upper(5), 10000000+g.rng.IntN(90000000))
	case "SSGM":
		id = fmt.Sprintf("SSGM_%s_%s_%d", corr, g.upper(5), 10000000+g.rng.IntN(90000000))
	case "PIM":
		id = fmt.Sprintf("PIM_%s_%s_%d", corr, g.upper(5), 1000000+g.rng.IntN(9000000))
	case "SSPR":
		id = fmt.Sprintf("SSPR_%s_%s_%d", corr, g.upper(5), 10000000+g.rng.IntN(90000000))
	default:
		id = fmt.Sprintf("%s_%s_%s_%d", k.prefix, corr, g.upper(5), 1000000+g.rng.IntN(90000000))
	}
	actor, target := g.user(), g.user()
	result, reason := "success", ""
	if g.rng.IntN(20) == 0 {
		result, reason = "failure", "Microsoft.Online.Workflows.ObjectAlreadyExistsException"
	}
	var initiatedBy map[string]any
	if g.rng.IntN(4) == 0 {
		a := g.apps[g.rng.IntN(len(g.apps))]
		initiatedBy = map[string]any{"user": nil, "app": map[string]any{"appId": g.uuid(), "displayName": a.name, "servicePrincipalId": a.id, "servicePrincipalName": nil}}
	} else {
		initiatedBy = map[string]any{"app": nil, "user": map[string]any{"id": actor.id, "displayName": nil, "userPrincipalName": actor.upn, "ipAddress": actor.ip, "userType": nil, "homeTenantId": nil, "homeTenantName": nil}}
	}
	res := map[string]any{"id": target.id, "displayName": nil, "type": "User", "userPrincipalName": target.upn, "groupType": nil,
		"modifiedProperties": []any{map[string]any{"displayName": "AccountEnabled", "oldValue": "[true]", "newValue": "[false]"}}}
	switch k.cat {
	case "GroupManagement":
		gr := g.groups[g.rng.IntN(len(g.groups))]
		res = map[string]any{"id": gr.id, "displayName": gr.name, "type": "Group", "userPrincipalName": nil, "groupType": "unifiedGroups", "modifiedProperties": []any{}}
	case "ApplicationManagement":
		a := g.apps[g.rng.IntN(len(g.apps))]
		res = map[string]any{"id": a.id, "displayName": a.name, "type": "Application", "userPrincipalName": nil, "groupType": nil,
			"modifiedProperties": []any{map[string]any{"displayName": "KeyDescription", "oldValue": "[]", "newValue": `["[KeyIdentifier=` + g.uuid() + `,KeyType=Password,KeyUsage=Verify,DisplayName=auditrelay]"]`}}}
	}
	return entraEvent(id, t, map[string]any{
		"id": id, "category": k.cat, "correlationId": corr, "result": result, "resultReason": reason,
		"activityDisplayName": k.activity, "activityDateTime": t.Format(entraTimeLayout), "loggedByService": k.svc,
		"operationType": k.op, "initiatedBy": initiatedBy, "targetResources": []any{res},
		"additionalDetails": []any{map[string]any{"key": "User-Agent", "value": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Edge/124.0"}},
	})
}

// SignIn returns an interactive signIn at about t.
func (g *EntraGenerator) SignIn(t time.Time) EntraEvent {
	t = g.at(t)
	u := g.user()
	a := g.apps[g.rng.IntN(len(g.apps))]
	id := g.uuid()
	status := map[string]any{"errorCode": 0, "failureReason": "Other.", "additionalDetails": nil}
	ca := "success"
	risk := "none"
	switch g.rng.IntN(12) {
	case 0:
		status = map[string]any{"errorCode": 50126, "failureReason": "Error validating credentials due to invalid username or password.", "additionalDetails": "The user didn't enter the right credentials."}
		ca = "notApplied"
	case 1:
		status = map[string]any{"errorCode": 50074, "failureReason": "Strong Authentication is required.", "additionalDetails": "The user is required to complete MFA."}
		ca = "failure"
	case 2:
		risk = "medium"
	}
	return entraEvent(id, t, map[string]any{
		"id": id, "createdDateTime": t.Format(entraTimeLayout), "userDisplayName": u.name, "userPrincipalName": u.upn, "userId": u.id,
		"appId": g.uuid(), "appDisplayName": a.name, "ipAddress": u.ip, "clientAppUsed": "Browser", "correlationId": g.uuid(),
		"conditionalAccessStatus": ca, "isInteractive": true, "riskDetail": "none", "riskLevelAggregated": risk, "riskLevelDuringSignIn": risk,
		"riskState": "none", "riskEventTypes": []any{}, "riskEventTypes_v2": []any{}, "resourceDisplayName": "Microsoft Graph",
		"resourceId": "00000003-0000-0000-c000-000000000000", "status": status,
		"deviceDetail": map[string]any{"deviceId": "", "displayName": "", "operatingSystem": "Windows 10", "browser": "Edge 124.0.0", "isCompliant": false, "isManaged": false, "trustType": ""},
		"location": map[string]any{"city": u.city, "state": u.state, "countryOrRegion": u.cc,
			"geoCoordinates": map[string]any{"altitude": nil, "latitude": 47 + g.rng.Float64(), "longitude": -122 + g.rng.Float64()}},
		"appliedConditionalAccessPolicies": []any{map[string]any{"id": g.uuid(), "displayName": "Require MFA for admins", "enforcedGrantControls": []any{"Mfa"}, "enforcedSessionControls": []any{}, "result": "notApplied"}},
	})
}

// Provisioning returns a provisioningObjectSummary at about t.
func (g *EntraGenerator) Provisioning(t time.Time) EntraEvent {
	t = g.at(t)
	u := g.user()
	id := g.uuid()
	jobID := "SalesforceOutDelta." + strings.ReplaceAll(g.tenant, "-", "")[:min(12, len(strings.ReplaceAll(g.tenant, "-", "")))]
	action, status := "create", map[string]any{"@odata.type": "#microsoft.graph.provisioningStatusInfo", "status": "success", "errorInformation": nil}
	if g.rng.IntN(8) == 0 {
		action = "update"
	}
	if g.rng.IntN(15) == 0 {
		status = map[string]any{"@odata.type": "#microsoft.graph.provisioningStatusInfo", "status": "failure",
			"errorInformation": map[string]any{"errorCode": "ContosoEntryConflict", "reason": "Failed to create User in Salesforce; Error: StatusCode: Conflict, Reason: 409 Conflict",
				"additionalDetails": nil, "errorCategory": "NonServiceFailure", "recommendedAction": nil}}
	}
	return entraEvent(id, t, map[string]any{
		"id": id, "activityDateTime": t.Format(entraTimeLayout), "tenantId": g.tenant, "jobId": jobID, "cycleId": g.uuid(),
		"changeId": g.uuid(), "provisioningAction": action, "durationInMilliseconds": 300 + g.rng.IntN(9000),
		"provisioningStatusInfo": status,
		"provisioningSteps": []any{
			map[string]any{"name": "EntryImportAdd", "provisioningStepType": "import", "status": "success", "description": "Received User '" + u.upn + "' change of type (Add) from Azure Active Directory"},
			map[string]any{"name": "EntryExportAdd", "provisioningStepType": "export", "status": status["status"], "description": "User '" + u.upn + "' was exported to Salesforce"},
		},
		"modifiedProperties": []any{map[string]any{"displayName": "userName", "oldValue": nil, "newValue": u.upn}},
		"servicePrincipal":   map[string]any{"id": g.uuid(), "displayName": "Salesforce"},
		"sourceSystem":       map[string]any{"id": g.uuid(), "displayName": "Azure Active Directory", "details": map[string]any{}},
		"targetSystem":       map[string]any{"id": g.uuid(), "displayName": "Salesforce", "details": map[string]any{"ApplicationId": g.uuid()}},
		"initiatedBy":        map[string]any{"id": "", "displayName": "Azure AD Provisioning Service", "initiatorType": "system"},
		"sourceIdentity":     map[string]any{"id": u.id, "displayName": u.name, "identityType": "User", "details": map[string]any{}},
		"targetIdentity":     map[string]any{"id": g.upper(18), "displayName": u.name, "identityType": "User", "details": map[string]any{}},
	})
}

// Event returns an event of stream at about t.
func (g *EntraGenerator) Event(stream string, t time.Time) EntraEvent {
	switch stream {
	case EntraSignIns:
		return g.SignIn(t)
	case EntraProvisioning:
		return g.Provisioning(t)
	}
	return g.DirectoryAudit(t)
}

// Backlog adds n events of stream to tenant, spread evenly over [from,
// to), each visible up to maxLag after its time.
func (e *Entra) Backlog(g *EntraGenerator, tenant, stream string, n int, from, to time.Time, maxLag time.Duration) {
	if n <= 0 {
		return
	}
	step := to.Sub(from) / time.Duration(n)
	evs := make([]EntraEvent, 0, n)
	for i := range n {
		ev := g.Event(stream, from.Add(time.Duration(i)*step))
		if maxLag > 0 {
			ev.Visible = ev.Time.Add(time.Duration(g.rng.Int64N(int64(maxLag))))
		}
		evs = append(evs, ev)
	}
	e.Add(tenant, stream, evs...)
}

// Run adds live events of each stream to tenant until ctx is done: about
// rate per second per stream with exponential gaps, timed at their arrival
// and visible up to maxLag later. It uses the Entra's clock.
func (e *Entra) Run(ctx context.Context, g *EntraGenerator, tenant string, streams []string, rate float64, maxLag time.Duration) {
	if rate <= 0 || len(streams) == 0 {
		return
	}
	total := rate * float64(len(streams))
	for {
		gap := time.Duration(g.rng.ExpFloat64() / total * float64(time.Second))
		select {
		case <-ctx.Done():
			return
		case <-time.After(gap):
		}
		now := e.opts.Now()
		stream := streams[g.rng.IntN(len(streams))]
		ev := g.Event(stream, now)
		if maxLag > 0 {
			ev.Visible = now.Add(time.Duration(g.rng.Int64N(int64(maxLag))))
		}
		e.Add(tenant, stream, ev)
	}
}
