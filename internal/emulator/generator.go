package emulator

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Generator makes realistic PingOne audit activities: sign-ons (most of
// them), user, group, application and role administration, secret reads and
// system events, with the actors, resources, sources and results PingOne
// records for each. Each environment gets its own population of users,
// administrators, applications and groups, created on first use.
//
// A Generator is deterministic: the same seed and the same sequence of calls
// produce the same activities. It is not safe for concurrent use; give each
// goroutine its own.
type Generator struct {
	rng    *rand.Rand
	worlds map[string]*world
	buf    []byte // encoding scratch
}

// NewGenerator returns a Generator seeded with seed.
func NewGenerator(seed uint64) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, 0xac71_717e5)), worlds: map[string]*world{}}
}

// world is the directory of one environment that activities refer to.
type world struct {
	populations []string
	users       []person
	admins      []person
	apps        []named // applications users sign on to
	workers     []named // worker applications (client-only actors)
	groups      []named
	policies    []string // sign-on policy ids
	console     named    // the PingOne Admin Console application
}

// person is a user of the directory.
type person struct {
	id, name, population string
}

// named is an object with an id and a name.
type named struct {
	id, name string
}

// The wire shapes of an activity, in PingOne's field order.
type (
	activityJSON struct {
		Links               selfLinks            `json:"_links"`
		ID                  string               `json:"id"`
		RecordedAt          string               `json:"recordedAt"`
		CreatedAt           string               `json:"createdAt"`
		CorrelationID       string               `json:"correlationId"`
		InternalCorrelation *internalCorrelation `json:"internalCorrelation,omitempty"`
		Actors              *actorsJSON          `json:"actors,omitempty"`
		Source              *sourceJSON          `json:"source,omitempty"`
		Action              actionJSON           `json:"action"`
		Resources           []resourceJSON       `json:"resources"`
		Result              resultJSON           `json:"result"`
		Tags                []string             `json:"tags,omitempty"`
	}
	selfLinks struct {
		Self hrefJSON `json:"self"`
	}
	hrefJSON struct {
		Href string `json:"href"`
	}
	internalCorrelation struct {
		SessionID string `json:"sessionId"`
	}
	actorsJSON struct {
		Client *actorJSON `json:"client,omitempty"`
		User   *actorJSON `json:"user,omitempty"`
	}
	actorJSON struct {
		ID          string   `json:"id"`
		Name        string   `json:"name"`
		Environment *idJSON  `json:"environment,omitempty"`
		Population  *popJSON `json:"population,omitempty"`
		Href        string   `json:"href,omitempty"`
		Type        string   `json:"type"`
	}
	idJSON struct {
		ID string `json:"id"`
	}
	popJSON struct {
		ID string `json:"id,omitempty"`
	}
	sourceJSON struct {
		IPAddress string `json:"ipAddress"`
		UserAgent string `json:"userAgent"`
	}
	actionJSON struct {
		Type        string `json:"type"`
		Description string `json:"description"`
	}
	resourceJSON struct {
		Type        string   `json:"type"`
		ID          string   `json:"id"`
		Name        string   `json:"name"`
		Environment idJSON   `json:"environment"`
		Population  *popJSON `json:"population,omitempty"`
		Href        string   `json:"href"`
	}
	resultJSON struct {
		Status      string `json:"status"`
		Description string `json:"description"`
		ID          string `json:"id,omitempty"`
	}
)

// eventKind is one kind of activity and its weight in the mix.
type eventKind struct {
	typ, description string
	weight           int
}

// eventKinds is the activity mix: sign-ons dominate, as in real tenants.
var eventKinds = [...]eventKind{
	{"USER.ACCESS_ALLOWED", "User Access Allowed", 50},
	{"USER.ACCESS_DENIED", "User Access Denied", 10},
	{"USER.CREATED", "User Created", 5},
	{"USER.UPDATED", "User Updated", 8},
	{"USER.DELETED", "User Deleted", 2},
	{"GROUP.CREATED", "Group Created", 2},
	{"MEMBER_OF_GROUP.CREATED", "Member of Group Created", 5},
	{"APPLICATION.CREATED", "Application Created", 2},
	{"APPLICATION.UPDATED", "Application Updated", 3},
	{"ROLE_ASSIGNMENT.CREATED", "Role Assignment Created", 3},
	{"SECRET.READ", "Secret Read", 3},
	{"ACTION.CREATED", "Action Created", 2},
}

// Vocabulary of the generated directory. All domains and addresses are
// reserved for documentation (RFC 2606, RFC 5737, RFC 3849).
var (
	firstNames = [...]string{"avery", "blake", "camila", "darius", "elena", "farid", "grace", "hiro",
		"ines", "jonas", "keiko", "liam", "maya", "nikolai", "olga", "priya", "quentin", "rosa",
		"samir", "tessa", "umar", "vera", "wen", "ximena", "yusuf", "zoe"}
	lastNames = [...]string{"abara", "bergstrom", "castillo", "dubois", "eriksen", "fontaine", "gallo",
		"haddad", "ivanova", "jensen", "kowalski", "lindqvist", "moreau", "nakamura", "okafor",
		"petrov", "quinn", "rahman", "santos", "tanaka", "urquhart", "varga", "weber", "yilmaz"}
	mailDomains = [...]string{"example.com", "example.org", "example.net"}
	appNames    = [...]string{"Customer Portal", "HR Self-Service", "Expense Tracker", "Partner Hub",
		"Mobile Banking", "Support Desk", "Analytics Console", "Travel Booking", "Payroll", "Intranet"}
	workerNames = [...]string{"SCIM Provisioner", "Terraform Worker", "Audit Exporter", "HR Sync Worker"}
	groupNames  = [...]string{"Engineering", "Finance", "Sales", "Support", "Contractors", "Auditors",
		"Helpdesk", "Executives", "Marketing", "Legal", "Training", "On-call"}
	roleNames = [...]string{"Identity Data Admin", "Environment Admin", "Application Owner",
		"Identity Data Read Only", "Client Application Developer"}
	userAttrs  = [...]string{"enabled", "password", "email", "name.given", "name.family", "mobilePhone", "population", "title"}
	userAgents = [...]string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 15; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
	}
	denyReasons = [...]string{
		"Failed role access control",
		"User is not a member of a group allowed to access the application",
		"Invalid username or password",
		"User account is locked",
		"User account is disabled",
	}
)

// maxUsers bounds the users an environment accumulates through USER.CREATED.
const maxUsers = 400

// uuid returns a random version 4 UUID from the generator's source.
func (g *Generator) uuid() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], g.rng.Uint64())
	binary.LittleEndian.PutUint64(b[8:], g.rng.Uint64())
	return formatUUID(b)
}

// pick returns a random element of s.
func pick[T any](g *Generator, s []T) T { return s[g.rng.IntN(len(s))] }

// chance reports true with probability p.
func (g *Generator) chance(p float64) bool { return g.rng.Float64() < p }

// newPerson makes a user of one of the populations.
func (g *Generator) newPerson(w *world, admin bool) person {
	name := pick(g, firstNames[:]) + "." + pick(g, lastNames[:])
	if g.chance(0.3) {
		name += strconv.Itoa(g.rng.IntN(100))
	}
	domain := pick(g, mailDomains[:])
	if admin {
		name = "admin." + name
		domain = mailDomains[0]
	}
	return person{id: g.uuid(), name: name + "@" + domain, population: pick(g, w.populations)}
}

// world returns the environment's directory, creating it on first use.
func (g *Generator) world(envID string) *world {
	if w := g.worlds[envID]; w != nil {
		return w
	}
	w := &world{console: named{g.uuid(), "PingOne Admin Console"}}
	for range 1 + g.rng.IntN(3) {
		w.populations = append(w.populations, g.uuid())
	}
	for range 150 {
		w.users = append(w.users, g.newPerson(w, false))
	}
	for range 3 + g.rng.IntN(3) {
		w.admins = append(w.admins, g.newPerson(w, true))
	}
	for _, n := range appNames[:4+g.rng.IntN(len(appNames)-3)] {
		w.apps = append(w.apps, named{g.uuid(), n})
	}
	for _, n := range workerNames[:1+g.rng.IntN(len(workerNames))] {
		w.workers = append(w.workers, named{g.uuid(), n})
	}
	for _, n := range groupNames[:3+g.rng.IntN(5)] {
		w.groups = append(w.groups, named{g.uuid(), n})
	}
	for range 2 + g.rng.IntN(3) {
		w.policies = append(w.policies, g.uuid())
	}
	g.worlds[envID] = w
	return w
}

// ipAddress returns a documentation address, sometimes IPv6.
func (g *Generator) ipAddress() string {
	if g.chance(0.1) {
		return fmt.Sprintf("2001:db8:%x::%x", g.rng.IntN(0x10000), 1+g.rng.IntN(0xfffe))
	}
	nets := [...]string{"192.0.2.", "198.51.100.", "203.0.113."}
	return pick(g, nets[:]) + strconv.Itoa(1+g.rng.IntN(254))
}

// Activity returns a new activity of environment envID recorded at
// recordedAt (kept at millisecond precision, UTC), with hrefs under apiBase
// (such as "http://127.0.0.1:9001", without /v1). It is visible at once:
// VisibleAt = RecordedAt.
func (g *Generator) Activity(envID, apiBase string, recordedAt time.Time) Activity {
	w := g.world(envID)
	recordedAt = recordedAt.UTC().Truncate(time.Millisecond)
	base := strings.TrimSuffix(apiBase, "/") + "/v1/environments/" + envID
	id := g.uuid()
	a := activityJSON{
		Links:         selfLinks{Self: hrefJSON{base + "/activities/" + id}},
		ID:            id,
		RecordedAt:    recordedAt.Format(timeFormat),
		CreatedAt:     recordedAt.Add(time.Duration(5+g.rng.IntN(296)) * time.Millisecond).Format(timeFormat),
		CorrelationID: g.uuid(),
	}
	b := builder{g: g, w: w, envID: envID, base: base}
	n := 0
	for _, k := range eventKinds {
		n += k.weight
	}
	r := g.rng.IntN(n)
	var kind eventKind
	for _, k := range eventKinds {
		if r < k.weight {
			kind = k
			break
		}
		r -= k.weight
	}
	a.Action = actionJSON{Type: kind.typ, Description: kind.description}
	b.fill(&a)
	g.buf = a.appendJSON(g.buf[:0])
	return Activity{ID: id, RecordedAt: recordedAt, VisibleAt: recordedAt, JSON: bytes.Clone(g.buf)}
}

// builder fills the actors, resources and result of one activity.
type builder struct {
	g     *Generator
	w     *world
	envID string
	base  string
}

func (b builder) env() *idJSON { return &idJSON{b.envID} }

// clientActor is an application acting.
func (b builder) clientActor(app named) *actorJSON {
	return &actorJSON{ID: app.id, Name: app.name, Environment: b.env(), Href: b.base + "/applications/" + app.id, Type: "CLIENT"}
}

// userActor is a user acting; its population is sometimes unknown ({}).
func (b builder) userActor(u person) *actorJSON {
	pop := &popJSON{u.population}
	if b.g.chance(0.1) {
		pop = &popJSON{}
	}
	return &actorJSON{ID: u.id, Name: u.name, Environment: b.env(), Population: pop, Href: b.base + "/users/" + u.id, Type: "USER"}
}

// adminActors is who performs an administrative change: an administrator in
// the admin console, or a worker application on its own.
func (b builder) adminActors() *actorsJSON {
	if b.g.chance(0.3) {
		return &actorsJSON{Client: b.clientActor(pick(b.g, b.w.workers))}
	}
	client := &actorJSON{ID: "adminui", Name: "adminui", Type: "CLIENT"}
	if b.g.chance(0.5) {
		client = b.clientActor(b.w.console)
	}
	return &actorsJSON{Client: client, User: b.userActor(pick(b.g, b.w.admins))}
}

func (b builder) userResource(u person) resourceJSON {
	return resourceJSON{Type: "USER", ID: u.id, Name: u.name, Environment: idJSON{b.envID}, Population: &popJSON{u.population}, Href: b.base + "/users/" + u.id}
}

func (b builder) namedResource(typ, path string, n named) resourceJSON {
	return resourceJSON{Type: typ, ID: n.id, Name: n.name, Environment: idJSON{b.envID}, Href: b.base + path + n.id}
}

// fill completes a by its action type.
func (b builder) fill(a *activityJSON) {
	g, w := b.g, b.w
	success := func(desc string) { a.Result = resultJSON{Status: "SUCCESS", Description: desc} }
	switch a.Action.Type {
	case "USER.ACCESS_ALLOWED", "USER.ACCESS_DENIED":
		u, app := pick(g, w.users), pick(g, w.apps)
		if g.chance(0.25) {
			u, app = pick(g, w.admins), w.console
		}
		a.Actors = &actorsJSON{Client: b.clientActor(app), User: b.userActor(u)}
		a.Source = &sourceJSON{IPAddress: g.ipAddress(), UserAgent: pick(g, userAgents[:])}
		if g.chance(0.4) {
			a.InternalCorrelation = &internalCorrelation{SessionID: g.uuid()}
		}
		a.Resources = []resourceJSON{b.userResource(u)}
		if a.Action.Type == "USER.ACCESS_DENIED" {
			a.Result = resultJSON{Status: "FAILED", Description: pick(g, denyReasons[:]), ID: g.uuid()}
		} else if app == w.console {
			success("Passed role access control")
		} else {
			success("Passed application access control")
		}
	case "USER.CREATED":
		a.Actors = b.adminActors()
		u := g.newPerson(w, false)
		if len(w.users) < maxUsers {
			w.users = append(w.users, u)
		}
		a.Resources = []resourceJSON{b.userResource(u)}
		success("Created User " + u.name)
	case "USER.UPDATED":
		a.Actors = b.adminActors()
		u := pick(g, w.users)
		if g.chance(0.1) {
			u = pick(g, w.admins)
			a.Tags = []string{"adminIdentityEvent"}
		}
		a.Resources = []resourceJSON{b.userResource(u)}
		success(fmt.Sprintf("Updated %s for User %s", pick(g, userAttrs[:]), u.name))
	case "USER.DELETED":
		a.Actors = b.adminActors()
		i := g.rng.IntN(len(w.users))
		u := w.users[i]
		if len(w.users) > 50 {
			w.users = append(w.users[:i], w.users[i+1:]...)
		}
		if g.chance(0.2) {
			a.Tags = []string{"adminIdentityEvent"}
		}
		a.Resources = []resourceJSON{b.userResource(u)}
		success("Deleted User " + u.name)
	case "GROUP.CREATED":
		a.Actors = b.adminActors()
		grp := named{g.uuid(), pick(g, groupNames[:]) + " " + strconv.Itoa(g.rng.IntN(1000))}
		a.Resources = []resourceJSON{b.namedResource("GROUP", "/groups/", grp)}
		success("Created Group " + grp.name)
	case "MEMBER_OF_GROUP.CREATED":
		a.Actors = b.adminActors()
		u, grp := pick(g, w.users), pick(g, w.groups)
		a.Resources = []resourceJSON{b.userResource(u), b.namedResource("GROUP", "/groups/", grp)}
		success(fmt.Sprintf("Added User %s to Group %s", u.name, grp.name))
	case "APPLICATION.CREATED":
		a.Actors = b.adminActors()
		app := named{g.uuid(), pick(g, appNames[:]) + " (" + pick(g, []string{"staging", "test", "EU", "v2"}) + ")"}
		a.Resources = []resourceJSON{b.namedResource("APPLICATION", "/applications/", app)}
		success("Created Application " + app.name)
	case "APPLICATION.UPDATED":
		a.Actors = b.adminActors()
		app := pick(g, w.apps)
		a.Resources = []resourceJSON{b.namedResource("APPLICATION", "/applications/", app)}
		success(fmt.Sprintf("Updated %s for Application %s", pick(g, []string{"redirectUris", "enabled", "grantTypes", "tokenEndpointAuthMethod", "name"}), app.name))
	case "ROLE_ASSIGNMENT.CREATED":
		a.Actors = b.adminActors()
		u := pick(g, w.users)
		role := pick(g, roleNames[:])
		if g.chance(0.5) {
			u = pick(g, w.admins)
			a.Tags = []string{"adminIdentityEvent"}
		}
		a.Resources = []resourceJSON{b.userResource(u)}
		success(fmt.Sprintf("Assigned role %s to User %s", role, u.name))
	case "SECRET.READ":
		a.Actors = b.adminActors()
		app := pick(g, append(w.apps[:len(w.apps):len(w.apps)], w.workers...))
		a.Resources = []resourceJSON{b.namedResource("APPLICATION", "/applications/", app)}
		success(fmt.Sprintf("Client secret read for application '%s'", app.id))
	default: // ACTION.CREATED: a system event, without actors
		pol, action := pick(g, w.policies), g.uuid()
		a.Resources = []resourceJSON{{Type: "SIGN_ON_POLICY", ID: pol, Name: pol, Environment: idJSON{b.envID},
			Href: b.base + "/signOnPolicies/" + pol + "/actions/" + action}}
		success("Created Action " + action)
	}
}
