package normalize

import (
	"bytes"
)

// pingone is what the normalizers read of a PingOne audit activity, as raw
// string contents (nil when absent or not a string).
type pingone struct {
	data                        []byte
	id, recordedAt, createdAt   []byte
	correlationID, sessionID    []byte
	user, client                party
	userPopulation, userEnv     []byte
	ip, userAgent               []byte
	actionType, actionDesc      []byte
	resultStatus, resultDesc    []byte
	resultID                    []byte
	resources, tags, embedded   []byte // raw arrays and objects
	resUser, resGroup, resOther party
	resEnv, clientEnv           []byte
	// cols are the raw values Sentinel's auditrelay format writes.
	cols PingOneColumns
}

// PingOneColumns are the values of a PingOne activity that the Sentinel
// sink's auditrelay format writes in columns of their own, as raw JSON
// values (nil when absent): read in the pass that maps the activity to
// the canonical event, so that the sink does not walk it again.
type PingOneColumns struct {
	RecordedAt, CreatedAt  []byte
	InternalCorrelation    []byte // an object
	Resources              []byte // an array
	ResultStatus, ResultID []byte
	Href                   []byte // _links.self.href
	Client, User           PingOneParty
}

// PingOneParty is an actor of a PingOne activity, as raw JSON values.
type PingOneParty struct {
	ID, Name, Type, Href        []byte
	EnvironmentID, PopulationID []byte
}

// party returns p as the normalizers' party.
func (p *PingOneParty) party() party {
	return party{id: str(p.ID), name: str(p.Name), typ: str(p.Type)}
}

// decodePingOne reads an activity in one pass over its members.
func decodePingOne(in *input) pingone {
	e := pingone{data: in.data}
	m := in.members()
	for {
		k, v, ok := m.next()
		if !ok {
			break
		}
		switch string(k) {
		case "id":
			e.id = str(v)
		case "correlationId":
			e.correlationID = str(v)
		case "internalCorrelation":
			e.sessionID = str(get(v, "sessionId"))
		case "source":
			e.ip = str(get(v, "ipAddress"))
			e.userAgent = str(get(v, "userAgent"))
		case "action":
			e.actionType = str(get(v, "type"))
			e.actionDesc = str(get(v, "description"))
		case "result":
			e.resultDesc = str(get(v, "description"))
		case "resources":
			e.resources = v
			it := arrayElements(v)
			for {
				r, ok := it.next()
				if !ok {
					break
				}
				p, env, _ := pingoneParty(r)
				if e.resEnv == nil {
					e.resEnv = env
				}
				switch {
				case string(p.typ) == "USER" && e.resUser.empty():
					e.resUser = p
				case string(p.typ) == "GROUP" && e.resGroup.empty():
					e.resGroup = p
				case e.resOther.empty():
					e.resOther = p
				}
			}
		case "tags":
			e.tags = v
		case "_embedded":
			e.embedded = v
		}
		e.cols.read(k, v)
	}
	c := &e.cols
	e.recordedAt, e.createdAt = str(c.RecordedAt), str(c.CreatedAt)
	e.user, e.userEnv, e.userPopulation = c.User.party(), str(c.User.EnvironmentID), str(c.User.PopulationID)
	e.client, e.clientEnv = c.Client.party(), str(c.Client.EnvironmentID)
	e.resultStatus, e.resultID = str(c.ResultStatus), str(c.ResultID)
	return e
}

// PingOneColumnsOf reads the PingOne columns out of data, a JSON object
// its caller has validated (the Sentinel sink's auditrelay format writes
// them for the events of any provider, which may carry fields of the same
// names). Other input gives what can be read of it, without panicking.
func PingOneColumnsOf(data []byte) PingOneColumns {
	var c PingOneColumns
	m := objectMembers(bytes.TrimSpace(data))
	for {
		k, v, ok := m.next()
		if !ok {
			return c
		}
		c.read(k, v)
	}
}

// read takes the value v of the activity's top-level member k when it is
// one of the columns' (the last one when a key repeats, as for the other
// top-level fields).
func (c *PingOneColumns) read(k, v []byte) {
	switch string(k) {
	case "recordedAt":
		c.RecordedAt = v
	case "createdAt":
		c.CreatedAt = v
	case "internalCorrelation":
		c.InternalCorrelation = v
	case "resources":
		c.Resources = v
	case "actors":
		am := objectMembers(v)
		for {
			ak, av, ok := am.next()
			if !ok {
				break
			}
			switch string(ak) {
			case "user":
				c.User = pingoneRawParty(av)
			case "client":
				c.Client = pingoneRawParty(av)
			}
		}
	case "result":
		c.ResultStatus, c.ResultID = get(v, "status"), get(v, "id")
	case "_links":
		c.Href = get(get(v, "self"), "href")
	}
}

// pingoneParty reads an actor or resource in one pass: its id, name and
// type, and the ids of its environment and population.
func pingoneParty(v []byte) (p party, env, population []byte) {
	r := pingoneRawParty(v)
	return r.party(), str(r.EnvironmentID), str(r.PopulationID)
}

// pingoneRawParty reads an actor or resource in one pass, as raw values.
func pingoneRawParty(v []byte) PingOneParty {
	var p PingOneParty
	m := objectMembers(v)
	for {
		k, val, ok := m.next()
		if !ok {
			return p
		}
		switch string(k) {
		case "id":
			p.ID = val
		case "name":
			p.Name = val
		case "type":
			p.Type = val
		case "href":
			p.Href = val
		case "environment":
			p.EnvironmentID = get(val, "id")
		case "population":
			p.PopulationID = get(val, "id")
		}
	}
}

// failed reports whether the activity's result is a failure.
func (e *pingone) failed() bool {
	return equalFold(e.resultStatus, "FAILED") || equalFold(e.resultStatus, "FAILURE")
}

// status returns the OCSF status id of the result.
func (e *pingone) status() int {
	switch {
	case equalFold(e.resultStatus, "SUCCESS"):
		return statusSuccess
	case e.failed():
		return statusFailure
	}
	return statusUnknown
}

// verb returns the part of action.type after its last dot: CREATED,
// UPDATED, ...
func (e *pingone) verb() []byte {
	if i := bytes.LastIndexByte(e.actionType, '.'); i >= 0 {
		return e.actionType[i+1:]
	}
	return e.actionType
}

// noun returns the part of action.type before its last dot.
func (e *pingone) noun() []byte {
	if i := bytes.LastIndexByte(e.actionType, '.'); i >= 0 {
		return e.actionType[:i]
	}
	return e.actionType
}

// tenant returns the environment id: the envelope's, or the one the
// resources or actors name.
func (e *pingone) tenant(envelope string) []byte {
	switch {
	case envelope != "":
		return nil
	case e.resEnv != nil:
		return e.resEnv
	case e.userEnv != nil:
		return e.userEnv
	}
	return e.clientEnv
}

// subject returns the user an activity is about: the USER resource, or
// the acting user.
func (e *pingone) subject() party {
	if !e.resUser.empty() {
		return e.resUser
	}
	return e.user
}

// isAuthentication reports whether action.type is a sign-on decision or
// a credential check.
func pingoneIsAuthentication(t []byte) bool {
	switch string(t) {
	case "USER.ACCESS_ALLOWED", "USER.ACCESS_DENIED", "PASSWORD.CHECK_SUCCEEDED", "PASSWORD.CHECK_FAILED",
		"USER.AUTHENTICATED", "AUTHENTICATION.SUCCEEDED", "AUTHENTICATION.FAILED":
		return true
	}
	return hasPrefixFold(t, "MFA.AUTHENTICATION") || hasPrefixFold(t, "MFA.CHECK")
}

// route returns the OCSF class and activity of the activity.
func (e *pingone) route() route {
	t := e.actionType
	switch {
	case pingoneIsAuthentication(t):
		if !e.subject().empty() {
			return route{class: classAuthentication, activity: authLogon}
		}
	case bytes.HasPrefix(t, []byte("USER.")) || bytes.HasPrefix(t, []byte("PASSWORD.")) ||
		bytes.HasPrefix(t, []byte("ACCOUNT.")) || bytes.HasPrefix(t, []byte("DEVICE.")):
		if e.subject().empty() {
			break
		}
		switch string(t) {
		case "USER.CREATED":
			return route{class: classAccountChange, activity: acCreate}
		case "USER.DELETED":
			return route{class: classAccountChange, activity: acDelete}
		case "USER.UPDATED":
			return route{class: classAccountChange, activity: activityOther, name: "Update"}
		case "PASSWORD.RESET", "PASSWORD.RECOVERY":
			return route{class: classAccountChange, activity: acPasswordReset}
		case "PASSWORD.SET", "PASSWORD.CHANGED", "PASSWORD.UPDATED":
			return route{class: classAccountChange, activity: acPasswordChg}
		case "ACCOUNT.LOCKED", "USER.LOCKED":
			return route{class: classAccountChange, activity: acLock}
		case "ACCOUNT.UNLOCKED", "USER.UNLOCKED":
			return route{class: classAccountChange, activity: acUnlock}
		case "USER.ENABLED":
			return route{class: classAccountChange, activity: acEnable}
		case "USER.DISABLED":
			return route{class: classAccountChange, activity: acDisable}
		case "DEVICE.CREATED", "DEVICE.ACTIVATED":
			return route{class: classAccountChange, activity: acMFAEnable}
		case "DEVICE.DELETED":
			return route{class: classAccountChange, activity: acMFADisable}
		}
	case bytes.HasPrefix(t, []byte("GROUP.")):
		if e.resGroup.empty() {
			break
		}
		switch string(e.verb()) {
		case "CREATED":
			return route{class: classGroupManagement, activity: gmCreate}
		case "DELETED":
			return route{class: classGroupManagement, activity: gmDelete}
		default:
			return route{class: classGroupManagement, activity: activityOther, name: verbName(e.verb())}
		}
	case bytes.HasPrefix(t, []byte("MEMBER_OF_GROUP.")):
		if e.resGroup.empty() {
			break
		}
		switch string(e.verb()) {
		case "CREATED":
			return route{class: classGroupManagement, activity: gmAddUser}
		case "DELETED":
			return route{class: classGroupManagement, activity: gmRemoveUser}
		}
	case bytes.HasPrefix(t, []byte("ROLE_ASSIGNMENT.")):
		if e.subject().empty() {
			break
		}
		switch string(e.verb()) {
		case "CREATED":
			return route{class: classUserAccess, activity: uaAssign}
		case "DELETED":
			return route{class: classUserAccess, activity: uaRevoke}
		}
	}
	return route{class: classEntityManagement, activity: verbActivity(e.verb()), name: verbName(e.verb())}
}

// verbActivity maps a provider verb to an Entity Management (and API
// Activity) activity id.
func verbActivity(v []byte) int {
	switch {
	case equalFold(v, "CREATED") || equalFold(v, "CREATE") || equalFold(v, "ADD") || equalFold(v, "ADDED"):
		return emCreate
	case equalFold(v, "READ") || equalFold(v, "GET") || equalFold(v, "ACCESSED"):
		return emRead
	case equalFold(v, "UPDATED") || equalFold(v, "UPDATE") || equalFold(v, "EDIT") || equalFold(v, "MODIFIED"):
		return emUpdate
	case equalFold(v, "DELETED") || equalFold(v, "DELETE") || equalFold(v, "REMOVED") || equalFold(v, "REMOVE"):
		return emDelete
	}
	return activityOther
}

// verbName returns a verb as an activity_name: "UPDATED" becomes
// "Updated".
func verbName(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	b := make([]byte, len(v))
	for i, c := range v {
		switch {
		case c == '_':
			c = ' '
		case i > 0 && v[i-1] != '_':
			c = lower(c)
		}
		b[i] = c
	}
	return string(b)
}

// role returns the role an assignment grants: a ROLE resource, else the
// name in "Assigned role NAME to ..." of result.description, else the
// action description.
func (e *pingone) role() []byte {
	if string(e.resOther.typ) == "ROLE" && len(e.resOther.name) > 0 {
		return e.resOther.name
	}
	for _, p := range []string{"Assigned role ", "Removed role ", "Unassigned role "} {
		if d := e.resultDesc; bytes.HasPrefix(d, []byte(p)) {
			rest := d[len(p):]
			if i := bytes.Index(rest, []byte(" to ")); i > 0 {
				return rest[:i]
			}
			if i := bytes.Index(rest, []byte(" from ")); i > 0 {
				return rest[:i]
			}
		}
	}
	if len(e.actionDesc) > 0 {
		return e.actionDesc
	}
	return e.actionType
}

// pingoneOCSF appends an activity as OCSF.
func pingoneOCSF(b []byte, in input) []byte {
	e := decodePingOne(&in)
	rt := e.route()
	b = append(b, '{')
	b = appendClass(b, rt, sevInformational)
	b = putInt(b, "time", timeMS(e.recordedAt, in.time))
	b, mm := appendMetadataStart(b, product{name: "PingOne", vendor: "Ping Identity", logName: "AuditActivities"}, nil)
	b = putID(b, "uid", in, e.id)
	b = putStr(b, "log_source", in.source)
	b = putRaw(b, "event_code", e.actionType)
	b = putRaw(b, "original_time", e.recordedAt)
	if ms, ok := parseTimeMS(e.createdAt); ok {
		b = putInt(b, "logged_time", ms)
	}
	b = putRaw(b, "correlation_uid", e.correlationID)
	b = putStr(b, "tenant_uid", in.tenant)
	b = putRaw(b, "tenant_uid", e.tenant(in.tenant))
	b = closeObj(b, mm)
	if len(e.resultDesc) > 0 {
		b = putRaw(b, "message", e.resultDesc)
	} else {
		b = putRaw(b, "message", e.actionDesc)
	}
	st := e.status()
	b = appendStatus(b, st, nil)
	if st == statusFailure {
		b = putRaw(b, "status_detail", e.resultDesc)
	}
	am := len(b)
	b = open(b, "actor")
	b = appendUser(b, "user", party{id: e.user.id, name: e.user.name, email: e.user.name}, userTypeUser)
	b = putRaw(b, "app_uid", e.client.id)
	b = putRaw(b, "app_name", e.client.name)
	if len(e.sessionID) > 0 {
		sm := len(b)
		b = open(b, "session")
		b = putRaw(b, "uid", e.sessionID)
		b = closeObj(b, sm)
	}
	b = closeObj(b, am)
	if isIP(e.ip) {
		sm := len(b)
		b = open(b, "src_endpoint")
		b = putRaw(b, "ip", e.ip)
		b = closeObj(b, sm)
	}
	if len(e.userAgent) > 0 {
		hm := len(b)
		b = open(b, "http_request")
		b = putRaw(b, "user_agent", e.userAgent)
		b = closeObj(b, hm)
	}
	switch rt.class {
	case classAuthentication:
		s := e.subject()
		b = appendUser(b, "user", party{id: s.id, name: s.name, email: s.name}, userTypeUser)
		svc := e.client
		if svc.empty() {
			svc = party{name: []byte("PingOne")}
		}
		b = appendNamed(b, "service", svc, false)
		if hasPrefixFold(e.actionType, "MFA.") {
			b = putBool(b, "is_mfa", true)
		}
		if len(e.sessionID) > 0 {
			sm := len(b)
			b = open(b, "session")
			b = putRaw(b, "uid", e.sessionID)
			b = closeObj(b, sm)
		}
	case classAccountChange:
		s := e.subject()
		b = appendUser(b, "user", party{id: s.id, name: s.name, email: s.name}, userTypeUser)
	case classUserAccess:
		s := e.subject()
		b = appendUser(b, "user", party{id: s.id, name: s.name, email: s.name}, userTypeUser)
		pm := len(b)
		b = openArr(b, "privileges")
		b = appendRawStr(b, e.role())
		b = closeArr(b, pm)
	case classGroupManagement:
		b = appendNamed(b, "group", e.resGroup, false)
		if !e.resUser.empty() {
			b = appendUser(b, "user", party{id: e.resUser.id, name: e.resUser.name, email: e.resUser.name}, userTypeUser)
		}
	default:
		ent := e.resOther
		switch {
		case ent.empty() && !e.resUser.empty():
			ent = e.resUser
		case ent.empty() && !e.resGroup.empty():
			ent = e.resGroup
		}
		if ent.empty() {
			ent = party{name: e.noun(), typ: e.noun()}
		}
		em := len(b)
		b = open(b, "entity")
		b = putRaw(b, "uid", ent.id)
		b = putRaw(b, "name", ent.name)
		b = putRaw(b, "type", ent.typ)
		b = closeObj(b, em)
	}
	b = appendUnmapped(b, in, shapePingOne)
	b = appendRawData(b, in.data)
	return append(b, '}')
}

// pingoneMapping tells which paths of an activity OCSF maps.
func pingoneMapping(p []byte) int {
	switch string(p) {
	case "actors", "actors.user", "actors.client", "source", "action", "result", "internalCorrelation":
		return pathPartial
	case "id", "recordedAt", "createdAt", "correlationId", "internalCorrelation.sessionId",
		"actors.user.id", "actors.user.name", "actors.user.type",
		"actors.client.id", "actors.client.name", "actors.client.type",
		"source.ipAddress", "source.userAgent", "action.type", "action.description",
		"result.status", "result.description":
		return pathMapped
	}
	return pathUnmapped
}

// pingoneECS appends an activity as ECS, as Elastic's ping_one audit
// pipeline does, plus source.ip, user_agent.original and the
// authentication category of sign-on decisions and password checks,
// which the pipeline leaves out.
func pingoneECS(b []byte, in input) []byte {
	e := decodePingOne(&in)
	t := e.actionType
	var c ecsEvent
	c.category("iam")
	if pingoneIsAuthentication(t) {
		c.category("authentication")
		c.typ("start")
	}
	switch {
	case containsFold(t, "CREATED"):
		c.category("configuration")
		c.typ("creation")
	case containsFold(t, "DELETED"):
		c.category("configuration")
		c.typ("deletion")
	case containsFold(t, "UPDATED"):
		c.category("configuration")
		c.typ("change")
	case equalFold(t, "SECRET.READ"):
		c.category("configuration")
		c.typ("access")
	}
	if containsFold(e.noun(), "USER") {
		c.typ("user")
	}
	if containsFold(e.noun(), "GROUP") {
		c.typ("group")
	}
	if containsFold(t, "EMAIL") {
		c.category("email")
		c.typ("info")
	}
	if !c.hasType("admin", "change", "creation", "deletion", "group", "info", "user") {
		c.typ("info") // so that iam has one of the types ECS expects of it
	}
	c.outcome = outcomeOf(e.status())
	var rel related
	b = append(b, '{')
	b = appendTimestamp(b, timeMS(e.recordedAt, in.time))
	b = putRaw(b, "message", e.resultDesc)
	tm := len(b)
	b = openArr(b, "tags")
	it := arrayElements(e.tags)
	for {
		v, ok := it.next()
		if !ok {
			break
		}
		if s := str(v); s != nil {
			b = appendRawStr(sep(b), s)
		}
	}
	b = closeArr(b, tm)
	b, em := appendEventStart(b, c)
	if len(t) > 0 {
		b = appendLowerRaw(key(b, "action"), t)
	}
	b = putID(b, "id", in, e.id)
	b = appendEventEnd(b, em, in.data)
	um := len(b)
	b = open(b, "user")
	b = putRaw(b, "id", e.user.id)
	b = putRaw(b, "name", e.user.name)
	b = closeObj(b, um)
	rel.user(e.user.name)
	cm := len(b)
	b = open(b, "client")
	cum := len(b)
	b = open(b, "user")
	b = putRaw(b, "id", e.client.id)
	b = putRaw(b, "name", e.client.name)
	b = closeObj(b, cum)
	b = closeObj(b, cm)
	rel.user(e.client.name)
	if isIP(e.ip) {
		sm := len(b)
		b = open(b, "source")
		b = putRaw(b, "ip", e.ip)
		b = closeObj(b, sm)
		rel.ip(e.ip)
	}
	if len(e.userAgent) > 0 {
		am := len(b)
		b = open(b, "user_agent")
		b = putRaw(b, "original", e.userAgent)
		b = closeObj(b, am)
	}
	b = appendRelated(b, &rel)
	tenant := e.tenant(in.tenant)
	om := len(b)
	b = open(b, "organization")
	b = putStr(b, "id", in.tenant)
	b = putRaw(b, "id", tenant)
	b = closeObj(b, om)
	pm := len(b)
	b = open(b, "ping_one")
	am := len(b)
	b = open(b, "audit")
	b = putRaw(b, "created_at", e.createdAt)
	crm := len(b)
	b = open(b, "correlation")
	b = putRaw(b, "id", e.correlationID)
	b = closeObj(b, crm)
	if len(e.sessionID) > 0 {
		icm := len(b)
		b = open(b, "internal_correlation")
		b = putRaw(b, "session_id", e.sessionID)
		b = closeObj(b, icm)
	}
	acm := len(b)
	b = open(b, "action")
	b = putRaw(b, "description", e.actionDesc)
	b = closeObj(b, acm)
	rm := len(b)
	b = open(b, "result")
	b = putRaw(b, "id", e.resultID)
	b = putRaw(b, "description", e.resultDesc)
	b = putRaw(b, "status", e.resultStatus)
	b = closeObj(b, rm)
	arm := len(b)
	b = open(b, "actors")
	for _, a := range [...]struct {
		k             string
		typ, env, pop []byte
	}{{"user", e.user.typ, e.userEnv, e.userPopulation}, {"client", e.client.typ, e.clientEnv, nil}} {
		xm := len(b)
		b = open(b, a.k)
		b = putRaw(b, "type", a.typ)
		if len(a.env) > 0 {
			m := len(b)
			b = open(b, "environment")
			b = putRaw(b, "id", a.env)
			b = closeObj(b, m)
		}
		if len(a.pop) > 0 {
			m := len(b)
			b = open(b, "population")
			b = putRaw(b, "id", a.pop)
			b = closeObj(b, m)
		}
		b = closeObj(b, xm)
	}
	b = closeObj(b, arm)
	b = putCompact(b, "resources", e.resources)
	b = putCompact(b, "embedded", e.embedded)
	b = closeObj(b, am)
	b = closeObj(b, pm)
	b = appendLabels(b, in)
	b = appendECSVersion(b)
	return append(b, '}')
}
