package normalize

import "bytes"

// okta is what the normalizers read of an Okta System Log event, as raw
// string contents (nil when absent, null or not a string).
type okta struct {
	data                         []byte
	uuid, published, eventType   []byte
	severity, displayMessage     []byte
	actor                        party
	actorType                    []byte
	ip, userAgent                []byte
	city, state, country         []byte
	lat, lon                     []byte // raw numbers
	result, reason               []byte
	sessionID, transactionID     []byte
	requestID, requestURI        []byte
	isp, domain, asOrg, asNumber []byte // asNumber: raw number
	privilegeGranted             []byte
	tUser, tGroup, tApp, tOther  party
	authProvider                 []byte
	device                       []byte
	actorIsPerson                bool
}

// decodeOkta reads an event in one pass over its members.
func decodeOkta(in *input) okta {
	e := okta{data: in.data}
	m := in.members()
	for {
		k, v, ok := m.next()
		if !ok {
			break
		}
		switch string(k) {
		case "uuid":
			e.uuid = str(v)
		case "published":
			e.published = str(v)
		case "eventType":
			e.eventType = str(v)
		case "severity":
			e.severity = str(v)
		case "displayMessage":
			e.displayMessage = str(v)
		case "actor":
			e.actor = oktaParty(v)
			e.actorType = e.actor.typ
		case "client":
			e.readClient(v)
		case "outcome":
			e.result = str(get(v, "result"))
			e.reason = str(get(v, "reason"))
		case "authenticationContext":
			e.sessionID = str(get(v, "externalSessionId"))
		case "transaction":
			e.transactionID = str(get(v, "id"))
		case "debugContext":
			d := get(v, "debugData")
			e.requestID = str(get(d, "requestId"))
			e.privilegeGranted = str(get(d, "privilegeGranted"))
		case "securityContext":
			sm := objectMembers(v)
			for {
				sk, sv, ok := sm.next()
				if !ok {
					break
				}
				switch string(sk) {
				case "isp":
					e.isp = str(sv)
				case "domain":
					e.domain = str(sv)
				case "asOrg":
					e.asOrg = str(sv)
				case "asNumber":
					e.asNumber = number(sv)
				}
			}
		case "target":
			it := arrayElements(v)
			for {
				t, ok := it.next()
				if !ok {
					break
				}
				p := oktaParty(t)
				switch {
				case string(p.typ) == "User" && e.tUser.empty():
					e.tUser = p
				case string(p.typ) == "UserGroup" && e.tGroup.empty():
					e.tGroup = p
				case (string(p.typ) == "AppInstance" || string(p.typ) == "AppUser") && e.tApp.empty():
					e.tApp = p
				case e.tOther.empty():
					e.tOther = p
				}
			}
		}
	}
	e.actorIsPerson = string(e.actorType) == "User"
	return e
}

// readClient reads client in one pass.
func (e *okta) readClient(v []byte) {
	m := objectMembers(v)
	for {
		k, val, ok := m.next()
		if !ok {
			return
		}
		switch string(k) {
		case "ipAddress":
			e.ip = str(val)
		case "userAgent":
			e.userAgent = str(get(val, "rawUserAgent"))
		case "geographicalContext":
			gm := objectMembers(val)
			for {
				gk, gv, ok := gm.next()
				if !ok {
					break
				}
				switch string(gk) {
				case "city":
					e.city = str(gv)
				case "state":
					e.state = str(gv)
				case "country":
					e.country = str(gv)
				case "geolocation":
					e.lat = number(get(gv, "lat"))
					e.lon = number(get(gv, "lon"))
				}
			}
		}
	}
}

// oktaParty reads an actor or target: name is the login (alternateId).
func oktaParty(v []byte) party {
	alt := str(get(v, "alternateId"))
	if string(alt) == "unknown" {
		alt = nil
	}
	p := party{id: str(get(v, "id")), typ: str(get(v, "type")), display: str(get(v, "displayName"))}
	p.name, p.email = alt, alt
	if p.name == nil {
		p.name = p.display
	}
	return p
}

func (e *okta) status() int {
	switch {
	case equalFold(e.result, "SUCCESS") || equalFold(e.result, "ALLOW"):
		return statusSuccess
	case equalFold(e.result, "FAILURE") || equalFold(e.result, "DENY"):
		return statusFailure
	case len(e.result) == 0 || equalFold(e.result, "UNKNOWN"):
		return statusUnknown
	}
	return statusOther
}

func (e *okta) severityID() int {
	switch {
	case equalFold(e.severity, "WARN"):
		return sevMedium
	case equalFold(e.severity, "ERROR"):
		return sevHigh
	}
	return sevInformational
}

// subject returns the user an account event is about: the User target,
// else the actor.
func (e *okta) subject() party {
	if !e.tUser.empty() {
		return e.tUser
	}
	if e.actorIsPerson {
		return e.actor
	}
	return party{}
}

func oktaVerb(t []byte) []byte {
	if i := bytes.LastIndexByte(t, '.'); i >= 0 {
		return t[i+1:]
	}
	return t
}

// route returns the OCSF class and activity of the event.
func (e *okta) route() route {
	t := e.eventType
	ts := string(t)
	switch {
	case ts == "user.session.start" || (bytes.HasPrefix(t, []byte("user.authentication.")) && ts != "user.authentication.slo"):
		if e.actorIsPerson {
			return route{class: classAuthentication, activity: authLogon}
		}
	case ts == "user.session.end" || ts == "user.authentication.slo":
		if e.actorIsPerson {
			return route{class: classAuthentication, activity: authLogoff}
		}
	case bytes.HasPrefix(t, []byte("user.lifecycle.")) || bytes.HasPrefix(t, []byte("user.account.")) || bytes.HasPrefix(t, []byte("user.mfa.")):
		if e.subject().empty() {
			break
		}
		switch {
		case ts == "user.lifecycle.create":
			return route{class: classAccountChange, activity: acCreate}
		case bytes.HasPrefix(t, []byte("user.lifecycle.delete")):
			return route{class: classAccountChange, activity: acDelete}
		case ts == "user.lifecycle.activate" || ts == "user.lifecycle.reactivate" || ts == "user.lifecycle.unsuspend":
			return route{class: classAccountChange, activity: acEnable}
		case ts == "user.lifecycle.deactivate" || ts == "user.lifecycle.suspend":
			return route{class: classAccountChange, activity: acDisable}
		case ts == "user.account.lock" || ts == "user.account.lock.limit":
			return route{class: classAccountChange, activity: acLock}
		case bytes.HasPrefix(t, []byte("user.account.unlock")):
			return route{class: classAccountChange, activity: acUnlock}
		case ts == "user.account.reset_password":
			return route{class: classAccountChange, activity: acPasswordReset}
		case ts == "user.account.update_password":
			return route{class: classAccountChange, activity: acPasswordChg}
		case ts == "user.mfa.factor.activate":
			return route{class: classAccountChange, activity: acMFAEnable}
		case ts == "user.mfa.factor.deactivate" || ts == "user.mfa.factor.reset_all" || ts == "user.mfa.factor.suspend":
			return route{class: classAccountChange, activity: acMFADisable}
		case ts == "user.account.privilege.grant":
			return route{class: classUserAccess, activity: uaAssign}
		case ts == "user.account.privilege.revoke":
			return route{class: classUserAccess, activity: uaRevoke}
		}
	case bytes.HasPrefix(t, []byte("group.")):
		if e.tGroup.empty() {
			break
		}
		switch ts {
		case "group.user_membership.add":
			return route{class: classGroupManagement, activity: gmAddUser}
		case "group.user_membership.remove":
			return route{class: classGroupManagement, activity: gmRemoveUser}
		case "group.lifecycle.create":
			return route{class: classGroupManagement, activity: gmCreate}
		case "group.lifecycle.delete":
			return route{class: classGroupManagement, activity: gmDelete}
		case "group.privilege.grant":
			return route{class: classGroupManagement, activity: gmAssign}
		case "group.privilege.revoke":
			return route{class: classGroupManagement, activity: gmRevoke}
		}
	case ts == "application.user_membership.add" || ts == "application.user_membership.remove":
		if e.subject().empty() {
			break
		}
		if ts == "application.user_membership.add" {
			return route{class: classUserAccess, activity: uaAssign}
		}
		return route{class: classUserAccess, activity: uaRevoke}
	}
	// Okta's own OCSF mappings send what no class fits to API Activity;
	// that class needs the client's address, so without one the event
	// goes to Entity Management.
	act := verbActivity(oktaVerb(t))
	if isIP(e.ip) && e.hasActor() {
		rt := route{class: classAPIActivity, activity: act}
		if act == activityOther {
			rt.name = verbName(oktaVerb(t))
		}
		return rt
	}
	rt := route{class: classEntityManagement, activity: act}
	if act == activityOther {
		rt.name = verbName(oktaVerb(t))
	}
	return rt
}

func (e *okta) hasActor() bool { return !e.actor.empty() }

// privilege returns what a grant gives.
func (e *okta) privilege() []byte {
	switch {
	case len(e.privilegeGranted) > 0:
		return e.privilegeGranted
	case !e.tApp.empty():
		return e.tApp.display
	case len(e.displayMessage) > 0:
		return e.displayMessage
	}
	return e.eventType
}

// oktaOCSF appends an event as OCSF.
func oktaOCSF(b []byte, in input) []byte {
	e := decodeOkta(&in)
	rt := e.route()
	b = append(b, '{')
	b = appendClass(b, rt, e.severityID())
	b = putInt(b, "time", timeMS(e.published, in.time))
	b, mm := appendMetadataStart(b, product{name: "Okta System Log", vendor: "Okta", logName: "System Log"}, nil)
	b = putID(b, "uid", in, e.uuid)
	b = putStr(b, "log_source", in.source)
	b = putRaw(b, "event_code", e.eventType)
	b = putRaw(b, "original_time", e.published)
	b = putRaw(b, "correlation_uid", e.transactionID)
	b = putStr(b, "tenant_uid", in.tenant)
	b = closeObj(b, mm)
	b = putRaw(b, "message", e.displayMessage)
	st := e.status()
	b = appendStatus(b, st, e.result)
	if st != statusSuccess {
		b = putRaw(b, "status_detail", e.reason)
	}
	am := len(b)
	b = open(b, "actor")
	if e.actorIsPerson {
		b = appendUser(b, "user", e.actor, userTypeUser)
	} else if string(e.actorType) == "SystemPrincipal" {
		b = appendUser(b, "user", e.actor, userTypeSystem)
	} else {
		b = putRaw(b, "app_uid", e.actor.id)
		b = putRaw(b, "app_name", e.actor.display)
	}
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
		b = putRaw(b, "domain", e.domain)
		b = putRaw(b, "isp", e.isp)
		if e.asNumber != nil || len(e.asOrg) > 0 {
			asm := len(b)
			b = open(b, "autonomous_system")
			b = putNum(b, "number", e.asNumber)
			b = putRaw(b, "name", e.asOrg)
			b = closeObj(b, asm)
		}
		if len(e.city) > 0 || len(e.state) > 0 || isCountryCode(e.country) {
			lm := len(b)
			b = open(b, "location")
			b = putRaw(b, "city", e.city)
			b = putRaw(b, "region", e.state)
			if isCountryCode(e.country) {
				b = putRaw(b, "country", e.country)
			}
			b = putNum(b, "lat", e.lat)
			b = putNum(b, "long", e.lon)
			b = closeObj(b, lm)
		}
		b = closeObj(b, sm)
	}
	if len(e.userAgent) > 0 || len(e.requestID) > 0 {
		hm := len(b)
		b = open(b, "http_request")
		b = putRaw(b, "uid", e.requestID)
		b = putRaw(b, "user_agent", e.userAgent)
		b = closeObj(b, hm)
	}
	switch rt.class {
	case classAuthentication:
		b = appendUser(b, "user", e.actor, userTypeUser)
		svc := e.tApp
		if svc.empty() {
			svc = party{name: []byte("Okta")}
		} else if len(svc.display) > 0 {
			svc.name = svc.display
		}
		b = appendNamed(b, "service", svc, false)
		if containsFold(e.eventType, "mfa") {
			b = putBool(b, "is_mfa", true)
		}
		if len(e.sessionID) > 0 {
			sm := len(b)
			b = open(b, "session")
			b = putRaw(b, "uid", e.sessionID)
			b = closeObj(b, sm)
		}
	case classAccountChange:
		b = appendUser(b, "user", e.subject(), userTypeUser)
	case classUserAccess:
		b = appendUser(b, "user", e.subject(), userTypeUser)
		pm := len(b)
		b = openArr(b, "privileges")
		b = appendRawStr(b, e.privilege())
		b = closeArr(b, pm)
	case classGroupManagement:
		g := e.tGroup
		if len(g.display) > 0 {
			g.name = g.display
		}
		b = appendNamed(b, "group", g, false)
		if !e.tUser.empty() {
			b = appendUser(b, "user", e.tUser, userTypeUser)
		}
		if rt.activity == gmAssign || rt.activity == gmRevoke {
			pm := len(b)
			b = openArr(b, "privileges")
			b = appendRawStr(b, e.privilege())
			b = closeArr(b, pm)
		}
	case classAPIActivity:
		apm := len(b)
		b = open(b, "api")
		b = putRaw(b, "operation", e.eventType)
		if len(e.requestID) > 0 {
			rm := len(b)
			b = open(b, "request")
			b = putRaw(b, "uid", e.requestID)
			b = closeObj(b, rm)
		}
		b = closeObj(b, apm)
	default:
		ent := e.tOther
		for _, p := range [...]party{e.tApp, e.tGroup, e.tUser} {
			if ent.empty() {
				ent = p
			}
		}
		if ent.empty() {
			ent = party{name: e.eventType}
		}
		if len(ent.display) > 0 {
			ent.name = ent.display
		}
		em := len(b)
		b = open(b, "entity")
		b = putRaw(b, "uid", ent.id)
		b = putRaw(b, "name", ent.name)
		b = putRaw(b, "type", ent.typ)
		b = closeObj(b, em)
	}
	b = appendUnmapped(b, in, shapeOkta)
	b = appendRawData(b, in.data)
	return append(b, '}')
}

// isCountryCode reports whether v is an ISO 3166-1 alpha-2 code's shape.
func isCountryCode(v []byte) bool {
	return len(v) == 2 && 'A' <= v[0] && v[0] <= 'Z' && 'A' <= v[1] && v[1] <= 'Z'
}

// oktaMapping tells which paths of an event OCSF maps.
func oktaMapping(p []byte) int {
	switch string(p) {
	case "actor", "client", "client.userAgent", "client.geographicalContext", "client.geographicalContext.geolocation",
		"outcome", "authenticationContext", "transaction", "debugContext", "debugContext.debugData", "securityContext":
		return pathPartial
	case "uuid", "published", "eventType", "severity", "displayMessage",
		"actor.id", "actor.type", "actor.alternateId", "actor.displayName",
		"client.ipAddress", "client.userAgent.rawUserAgent",
		"client.geographicalContext.city", "client.geographicalContext.state",
		"client.geographicalContext.geolocation.lat", "client.geographicalContext.geolocation.lon",
		"outcome.result", "outcome.reason", "authenticationContext.externalSessionId",
		"transaction.id", "debugContext.debugData.requestId",
		"securityContext.isp", "securityContext.domain", "securityContext.asOrg", "securityContext.asNumber":
		return pathMapped
	}
	return pathUnmapped
}

// oktaECS appends an event as ECS, after Elastic's okta integration: the
// actor as user, the client as source and user_agent, the first user and
// group targets as user.target, and Okta's own sections under okta.
func oktaECS(b []byte, in input) []byte {
	e := decodeOkta(&in)
	t := e.eventType
	rt := e.route()
	var c ecsEvent
	switch rt.class {
	case classAuthentication:
		c.category("authentication")
		c.category("session")
		if rt.activity == authLogoff {
			c.typ("end")
		} else {
			c.typ("start")
		}
	case classAccountChange:
		c.category("iam")
		c.typ("user")
		switch rt.activity {
		case acCreate:
			c.typ("creation")
		case acDelete:
			c.typ("deletion")
		default:
			c.typ("change")
		}
	case classGroupManagement:
		c.category("iam")
		c.typ("group")
		switch rt.activity {
		case gmCreate:
			c.typ("creation")
		case gmDelete:
			c.typ("deletion")
		default:
			c.typ("change")
		}
	case classUserAccess:
		c.category("iam")
		c.typ("admin")
		c.typ("change")
	default:
		switch {
		case hasPrefixFold(t, "policy."):
			c.category("configuration")
			c.typ("info")
		case hasPrefixFold(t, "system.api_token."):
			c.category("iam")
			c.category("configuration")
			switch rt.activity {
			case emCreate:
				c.typ("creation")
			case emDelete:
				c.typ("deletion")
			default:
				c.typ("change")
			}
		}
		if hasPrefixFold(t, "application.") {
			c.category("configuration")
			c.typ("change")
		}
	}
	switch e.status() {
	case statusSuccess:
		c.outcome = "success"
	case statusFailure:
		c.outcome = "failure"
	default:
		c.outcome = "unknown"
	}
	var rel related
	b = append(b, '{')
	b = appendTimestamp(b, timeMS(e.published, in.time))
	b = putRaw(b, "message", e.displayMessage)
	b, em := appendEventStart(b, c)
	b = putRaw(b, "action", t)
	b = putID(b, "id", in, e.uuid)
	b = putRaw(b, "reason", e.reason)
	b = putStr(b, "dataset", "okta.system")
	b = appendEventEnd(b, em, in.data)
	um := len(b)
	b = open(b, "user")
	b = putRaw(b, "id", e.actor.id)
	b = putRaw(b, "name", e.actor.name)
	b = putRaw(b, "full_name", e.actor.display)
	if isEmail(e.actor.email) {
		b = putRaw(b, "email", e.actor.email)
	}
	rel.user(e.actor.name)
	tm := len(b)
	b = open(b, "target")
	b = putRaw(b, "id", e.tUser.id)
	b = putRaw(b, "name", e.tUser.name)
	b = putRaw(b, "full_name", e.tUser.display)
	if isEmail(e.tUser.email) {
		b = putRaw(b, "email", e.tUser.email)
	}
	rel.user(e.tUser.name)
	if !e.tGroup.empty() {
		gm := len(b)
		b = open(b, "group")
		b = putRaw(b, "id", e.tGroup.id)
		b = putRaw(b, "name", e.tGroup.display)
		b = closeObj(b, gm)
	}
	b = closeObj(b, tm)
	b = closeObj(b, um)
	if isIP(e.ip) {
		rel.ip(e.ip)
		cm := len(b)
		b = open(b, "client")
		b = putRaw(b, "ip", e.ip)
		b = closeObj(b, cm)
		sm := len(b)
		b = open(b, "source")
		b = putRaw(b, "ip", e.ip)
		b = putRaw(b, "domain", e.domain)
		if e.asNumber != nil || len(e.asOrg) > 0 {
			am := len(b)
			b = open(b, "as")
			b = putNum(b, "number", e.asNumber)
			if len(e.asOrg) > 0 {
				om := len(b)
				b = open(b, "organization")
				b = putRaw(b, "name", e.asOrg)
				b = closeObj(b, om)
			}
			b = closeObj(b, am)
		}
		gm := len(b)
		b = open(b, "geo")
		b = putRaw(b, "city_name", e.city)
		b = putRaw(b, "region_name", e.state)
		b = putRaw(b, "country_name", e.country)
		if e.lat != nil && e.lon != nil {
			lm := len(b)
			b = open(b, "location")
			b = putNum(b, "lat", e.lat)
			b = putNum(b, "lon", e.lon)
			b = closeObj(b, lm)
		}
		b = closeObj(b, gm)
		b = closeObj(b, sm)
	}
	if len(e.userAgent) > 0 {
		am := len(b)
		b = open(b, "user_agent")
		b = putRaw(b, "original", e.userAgent)
		b = closeObj(b, am)
	}
	b = appendRelated(b, &rel)
	om := len(b)
	b = open(b, "okta")
	b = putRaw(b, "uuid", e.uuid)
	b = putRaw(b, "event_type", t)
	b = putRaw(b, "severity", e.severity)
	b = putRaw(b, "display_message", e.displayMessage)
	am := len(b)
	b = open(b, "actor")
	b = putRaw(b, "id", e.actor.id)
	b = putRaw(b, "type", e.actorType)
	b = putRaw(b, "alternate_id", e.actor.email)
	b = putRaw(b, "display_name", e.actor.display)
	b = closeObj(b, am)
	ocm := len(b)
	b = open(b, "outcome")
	b = putRaw(b, "result", e.result)
	b = putRaw(b, "reason", e.reason)
	b = closeObj(b, ocm)
	// Okta's other sections, as served.
	m := in.members()
	for {
		k, v, ok := m.next()
		if !ok {
			break
		}
		switch string(k) {
		case "client":
			b = putCompact(b, "client", v)
		case "authenticationContext":
			b = putCompact(b, "authentication_context", v)
		case "securityContext":
			b = putCompact(b, "security_context", v)
		case "debugContext":
			b = putCompact(b, "debug_context", v)
		case "transaction":
			b = putCompact(b, "transaction", v)
		case "request":
			b = putCompact(b, "request", v)
		case "target":
			b = putCompact(b, "target", v)
		}
	}
	b = closeObj(b, om)
	b = appendLabels(b, in)
	b = appendECSVersion(b)
	return append(b, '}')
}
