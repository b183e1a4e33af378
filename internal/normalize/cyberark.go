package normalize

import "bytes"

// cyberark is what the normalizers read of a CyberArk ISP audit event, as
// raw string contents (nil when absent, null or not a string).
type cyberark struct {
	data                                 []byte
	uuid, tenantID, timestamp            []byte // timestamp: the raw number
	username, userID, identityType       []byte
	appCode, auditCode, auditType        []byte
	action, actionType                   []byte
	source, component, serviceName       []byte
	accessMethod, accountID, target      []byte
	command, sessionID, message          []byte
	cloudProvider, safe, accountName     []byte
	targetPlatform, targetAccount        []byte
	correlationID                        []byte
	customData                           []byte // raw object
	cdUserID, cdUserName, cdDirectory    []byte
	cdCity, cdCountry, cdBrowser, cdOS   []byte
	cdFailure, cdAuthMethod, cdRole      []byte
	cdClientIP                           []byte
	cdPAMTarget, cdPAMNewTarget          []byte
	cdAppName, cdAppID, cdAppDesc, cdSvc []byte
}

// decodeCyberArk reads an event in one pass over its members.
func decodeCyberArk(in *input) cyberark {
	e := cyberark{data: in.data}
	m := in.members()
	for {
		k, v, ok := m.next()
		if !ok {
			break
		}
		switch string(k) {
		case "uuid":
			e.uuid = str(v)
		case "tenantId":
			e.tenantID = str(v)
		case "timestamp":
			e.timestamp = number(v)
		case "username":
			e.username = trim(str(v))
		case "userId":
			e.userID = trim(str(v))
		case "identityType":
			e.identityType = str(v)
		case "applicationCode":
			e.appCode = str(v)
		case "auditCode":
			e.auditCode = str(v)
		case "auditType":
			e.auditType = str(v)
		case "action":
			e.action = str(v)
		case "actionType":
			e.actionType = str(v)
		case "source":
			e.source = trim(str(v))
		case "component":
			e.component = str(v)
		case "serviceName":
			e.serviceName = str(v)
		case "accessMethod":
			e.accessMethod = str(v)
		case "accountId":
			e.accountID = str(v)
		case "target":
			e.target = trim(str(v))
		case "command":
			e.command = str(v)
		case "sessionId":
			e.sessionID = str(v)
		case "message":
			e.message = str(v)
		case "cloudProvider":
			e.cloudProvider = str(v)
		case "safe":
			e.safe = str(v)
		case "accountName":
			e.accountName = str(v)
		case "targetPlatform":
			e.targetPlatform = str(v)
		case "targetAccount":
			e.targetAccount = str(v)
		case "correlationId":
			e.correlationID = str(v)
		case "customData":
			e.customData = v
			e.readCustomData(v)
		}
	}
	return e
}

// readCustomData reads customData, flat or as a nested_items list of
// name/value pairs.
func (e *cyberark) readCustomData(v []byte) {
	set := func(k, val []byte) {
		switch string(k) {
		case "user_id":
			e.cdUserID = str(val)
		case "user_name":
			e.cdUserName = str(val)
		case "directory_service_id":
			e.cdDirectory = str(val)
		case "geoip_city_name":
			e.cdCity = str(val)
		case "geoip_country_name":
			e.cdCountry = str(val)
		case "request_browser_name":
			e.cdBrowser = str(val)
		case "request_device_os":
			e.cdOS = str(val)
		case "failure_reason":
			e.cdFailure = str(val)
		case "authentication_method", "auth_method":
			e.cdAuthMethod = str(val)
		case "role_name", "role":
			e.cdRole = str(val)
		case "client_ip_address", "source_ip_address":
			if e.cdClientIP == nil {
				e.cdClientIP = str(val)
			}
		case "app_display_name":
			e.cdAppName = str(val)
		case "id":
			e.cdAppID = str(val)
		case "description":
			e.cdAppDesc = str(val)
		case "service_name":
			e.cdSvc = str(val)
		case "PAM":
			e.cdPAMTarget = str(get(val, "target"))
			e.cdPAMNewTarget = str(get(val, "new_target"))
		case "target":
			if e.cdPAMTarget == nil {
				e.cdPAMTarget = str(val)
			}
		case "new_target":
			if e.cdPAMNewTarget == nil {
				e.cdPAMNewTarget = str(val)
			}
		}
	}
	m := objectMembers(v)
	for {
		k, val, ok := m.next()
		if !ok {
			return
		}
		if string(k) == "nested_items" {
			it := arrayElements(val)
			for {
				item, ok := it.next()
				if !ok {
					break
				}
				if n := str(get(item, "name")); n != nil {
					set(n, get(item, "value"))
				}
			}
			continue
		}
		set(k, val)
	}
}

// trim returns v without surrounding spaces.
func trim(v []byte) []byte {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return nil
	}
	return v
}

// failed reports whether the event records a failure: auditType Failure,
// Error or System Error, or a failed Identity sign-in.
func (e *cyberark) failed() bool {
	return equalFold(e.auditType, "Failure") || equalFold(e.auditType, "Error") || equalFold(e.auditType, "System Error") ||
		string(e.auditCode) == "IDP2007" || string(e.auditCode) == "IDP1101"
}

func (e *cyberark) status() int {
	switch {
	case e.failed():
		return statusFailure
	case equalFold(e.auditType, "Info") || equalFold(e.auditType, "Warning"):
		return statusSuccess
	}
	return statusUnknown
}

func (e *cyberark) severity() int {
	switch {
	case equalFold(e.auditType, "Warning"):
		return sevMedium
	case equalFold(e.auditType, "Error") || equalFold(e.auditType, "System Error"):
		return sevHigh
	}
	return sevInformational
}

// actor returns the acting user.
func (e *cyberark) actor() party {
	return party{id: e.userID, name: e.username, email: e.username}
}

// targetUser returns the user an Identity event is about.
func (e *cyberark) targetUser() party {
	return party{id: e.cdUserID, name: e.cdUserName, email: e.cdUserName}
}

// userType returns the OCSF user type of identityType.
func (e *cyberark) userType() int {
	switch {
	case equalFold(e.identityType, "HUMAN"):
		return userTypeUser
	case equalFold(e.identityType, "NON_HUMAN"), equalFold(e.identityType, "MACHINE"):
		return userTypeService
	case bytes.HasSuffix(e.username, []byte("$")):
		return userTypeSystem
	}
	return 0
}

// Session kinds of authentication codes.
const (
	caSessionNone   = iota
	caSessionLogon  // a sign-in
	caSessionLogoff // a sign-out
	caSessionToken  // an OAuth token grant
)

// authKind returns how an event is an authentication, and whether it is a
// remote interactive (PSM, SIA/DPA) session.
func (e *cyberark) authKind() (kind int, remote bool) {
	switch c := string(e.auditCode); c {
	case "IDP2005", "IDP2007", "IDP1100", "IDP1101", "PAM00007":
		return caSessionLogon, false
	case "IDP2006", "PAM00008":
		return caSessionLogoff, false
	case "IDP2009":
		return caSessionToken, false
	case "PAM00300", "PAM00302", "PAM00378", "PAM00380", "DPAI401", "DPAE403", "PSMSTRT":
		return caSessionLogon, true
	case "PAM00301", "PAM00303", "PAM00379", "PAM00381", "DPAI402", "PSMTRMN":
		return caSessionLogoff, true
	}
	switch string(e.action) {
	case "cloud.core.login", "cloud.core.loginfail":
		return caSessionLogon, false
	case "cloud.core.logout":
		return caSessionLogoff, false
	}
	return caSessionNone, false
}

// entityActivity returns the Entity Management activity of an event by its
// action and actionType.
func (e *cyberark) entityActivity() int {
	a := e.action
	switch {
	case containsFold(a, "retrieve") || containsFold(a, "show password") || containsFold(a, "copy password") ||
		containsFold(a, "use password") || containsFold(a, "open file") || containsFold(a, "get file"):
		return emRead
	case containsFold(a, "set password") || containsFold(a, "store password") || containsFold(a, "change password") ||
		containsFold(a, "reconcile"):
		return emUpdate
	case containsFold(a, "delete") || containsFold(a, "remove"):
		return emDelete
	case hasPrefixFold(a, "add") || containsFold(a, "create"):
		return emCreate
	}
	switch {
	case equalFold(e.actionType, "Create"):
		return emCreate
	case equalFold(e.actionType, "Edit"), equalFold(e.actionType, "Update"):
		return emUpdate
	case equalFold(e.actionType, "Delete"):
		return emDelete
	case equalFold(e.actionType, "Read"), equalFold(e.actionType, "View"):
		return emRead
	}
	return activityOther
}

// route returns the OCSF class and activity of the event.
func (e *cyberark) route() route {
	switch kind, _ := e.authKind(); kind {
	case caSessionLogon:
		return route{class: classAuthentication, activity: authLogon}
	case caSessionLogoff:
		return route{class: classAuthentication, activity: authLogoff}
	case caSessionToken:
		return route{class: classAuthentication, activity: activityOther, name: "Token Grant"}
	}
	a, target := e.action, e.targetUser()
	switch {
	case !target.empty() && (string(e.auditCode) == "IDP2001" || string(a) == "add-user" || string(a) == "cloud.core.user.add"):
		return route{class: classAccountChange, activity: acCreate}
	case !target.empty() && (string(a) == "delete-user" || string(a) == "remove-user" || string(a) == "cloud.core.user.delete"):
		return route{class: classAccountChange, activity: acDelete}
	case !target.empty() && containsFold(a, "role.addmember"):
		return route{class: classUserAccess, activity: uaAssign}
	case !target.empty() && containsFold(a, "role.removemember"):
		return route{class: classUserAccess, activity: uaRevoke}
	}
	rt := route{class: classEntityManagement, activity: e.entityActivity()}
	if rt.activity == activityOther {
		rt.name = string(e.action)
	}
	return rt
}

// entity returns the object an Entity Management event acts on.
func (e *cyberark) entity() party {
	switch {
	case len(e.accountName) > 0 || len(e.accountID) > 0:
		return party{id: e.accountID, name: e.accountName, typ: []byte("Account")}
	case string(e.auditCode) == "PAM00099" && len(e.cdPAMTarget) > 0:
		return party{name: e.cdPAMTarget, typ: []byte("File")}
	case len(e.safe) > 0:
		return party{name: e.safe, typ: []byte("Safe")}
	case len(e.cdAppName) > 0:
		return party{id: e.cdAppID, name: e.cdAppName, typ: []byte("Application")}
	case !e.targetUser().empty():
		return party{id: e.cdUserID, name: e.cdUserName, typ: []byte("User")}
	case len(e.cdPAMTarget) > 0:
		return party{name: e.cdPAMTarget, typ: e.component}
	case len(e.target) > 0:
		return party{name: e.target, typ: e.component}
	}
	name := e.action
	if len(name) == 0 {
		name = e.auditCode
	}
	if len(name) == 0 {
		name = []byte("CyberArk")
	}
	return party{name: name, typ: e.component}
}

// srcIP returns the client address: source when it is one, else the one
// customData names.
func (e *cyberark) srcIP() []byte {
	if isIP(e.source) {
		return e.source
	}
	if isIP(e.cdClientIP) {
		return e.cdClientIP
	}
	return nil
}

// mfa reports whether the sign-in method names more than one factor.
func (e *cyberark) mfa() (mfa, known bool) {
	m := e.cdAuthMethod
	switch {
	case len(m) == 0:
		return false, false
	case equalFold(m, "MultiAuth") || bytes.IndexByte(m, ',') >= 0:
		return true, true
	}
	return false, true
}

// cyberarkOCSF appends an event as OCSF.
func cyberarkOCSF(b []byte, in input) []byte {
	e := decodeCyberArk(&in)
	rt := e.route()
	b = append(b, '{')
	b = appendClass(b, rt, e.severity())
	ms, ok := integer(e.timestamp)
	if !ok {
		ms = timeMS(nil, in.time)
	}
	b = putInt(b, "time", ms)
	b, mm := appendMetadataStart(b, product{name: "Identity Security Platform Audit", vendor: "CyberArk", logName: "ISP Audit"}, e.serviceName)
	b = putID(b, "uid", in, e.uuid)
	b = putStr(b, "log_source", in.source)
	b = putRaw(b, "event_code", e.auditCode)
	b = putRaw(b, "original_time", e.timestamp)
	b = putRaw(b, "correlation_uid", e.correlationID)
	if len(e.tenantID) > 0 {
		b = putRaw(b, "tenant_uid", e.tenantID)
	} else {
		b = putStr(b, "tenant_uid", in.tenant)
	}
	b = closeObj(b, mm)
	b = putRaw(b, "message", e.message)
	st := e.status()
	b = appendStatus(b, st, nil)
	if st == statusFailure {
		if len(e.cdFailure) > 0 {
			b = putRaw(b, "status_detail", e.cdFailure)
		} else {
			b = putRaw(b, "status_detail", e.message)
		}
	}
	am := len(b)
	b = open(b, "actor")
	b = appendUser(b, "user", e.actor(), e.userType())
	if len(e.sessionID) > 0 {
		sm := len(b)
		b = open(b, "session")
		b = putRaw(b, "uid", e.sessionID)
		b = closeObj(b, sm)
	}
	b = closeObj(b, am)
	sm := len(b)
	b = open(b, "src_endpoint")
	if ip := e.srcIP(); ip != nil {
		b = putRaw(b, "ip", ip)
	}
	if len(e.source) > 0 && !isIP(e.source) {
		b = putRaw(b, "name", e.source)
	}
	if len(e.cdCity) > 0 && b[len(b)-1] != '{' {
		lm := len(b)
		b = open(b, "location")
		b = putRaw(b, "city", e.cdCity)
		b = closeObj(b, lm)
	}
	b = closeObj(b, sm)
	switch rt.class {
	case classAuthentication:
		b = appendUser(b, "user", e.actor(), e.userType())
		svc := e.serviceName
		if len(svc) == 0 {
			svc = e.appCode
		}
		if len(svc) == 0 {
			svc = []byte("CyberArk Identity Security Platform")
		}
		b = appendNamed(b, "service", party{name: svc}, false)
		if _, remote := e.authKind(); remote {
			if len(e.target) > 0 {
				dm := len(b)
				b = open(b, "dst_endpoint")
				if isIP(e.target) {
					b = putRaw(b, "ip", e.target)
				} else {
					b = putRaw(b, "hostname", e.target)
				}
				b = closeObj(b, dm)
			}
			b = putInt(b, "logon_type_id", 10)
			b = putStr(b, "logon_type", "Remote Interactive")
			b = putBool(b, "is_remote", true)
		}
		if mfa, known := e.mfa(); known {
			b = putBool(b, "is_mfa", mfa)
		}
		if len(e.sessionID) > 0 {
			sm := len(b)
			b = open(b, "session")
			b = putRaw(b, "uid", e.sessionID)
			b = closeObj(b, sm)
		}
	case classAccountChange:
		b = appendUser(b, "user", e.targetUser(), 0)
	case classUserAccess:
		b = appendUser(b, "user", e.targetUser(), 0)
		pm := len(b)
		b = openArr(b, "privileges")
		if len(e.cdRole) > 0 {
			b = appendRawStr(b, e.cdRole)
		} else {
			b = appendRawStr(b, e.action)
		}
		b = closeArr(b, pm)
	default:
		ent := e.entity()
		em := len(b)
		b = open(b, "entity")
		b = putRaw(b, "uid", ent.id)
		b = putRaw(b, "name", ent.name)
		b = putRaw(b, "type", ent.typ)
		b = closeObj(b, em)
	}
	b = appendUnmapped(b, in, shapeCyberArk)
	b = appendRawData(b, in.data)
	return append(b, '}')
}

// cyberarkMapping tells which members of an event OCSF maps; customData
// and the vault fields stay whole under unmapped, for rules keyed on them.
func cyberarkMapping(p []byte) int {
	switch string(p) {
	case "uuid", "tenantId", "timestamp", "username", "userId", "auditCode", "message",
		"sessionId", "correlationId", "serviceName", "source":
		return pathMapped
	}
	return pathUnmapped
}

// cyberarkECS appends an event as ECS, with the fields and values
// Sekoia's "CyberArk Audit Logs" intake format gives the same event, plus
// event.kind, event.outcome of failures and sign-ins, the authentication
// category of sign-in codes, and cyberark.audit fields for what that
// format leaves unmapped (audit_type, action_type, access_method,
// command, identity_type, correlation_id).
func cyberarkECS(b []byte, in input) []byte {
	e := decodeCyberArk(&in)
	code := string(e.auditCode)
	var c ecsEvent
	switch code {
	case "PAM00088", "PAM00294", "IDP6004":
		c.category("configuration")
		c.typ("change")
	case "PAM00105", "PAM00032", "PAM00185", "IDP2001":
		c.category("configuration")
		c.typ("creation")
	case "PAM00295", "PAM00099":
		c.category("configuration")
		c.typ("access")
	case "PAM00273", "IDP6010":
		c.category("configuration")
		c.typ("deletion")
	case "IDP2009":
		c.category("authentication")
		c.typ("start")
		c.outcome = "success"
	}
	switch kind, remote := e.authKind(); {
	case kind == caSessionLogon:
		c.category("authentication")
		c.typ("start")
		if remote {
			c.category("session")
		}
	case kind == caSessionLogoff:
		c.category("authentication")
		c.typ("end")
		if remote {
			c.category("session")
		}
	}
	if kind, _ := e.authKind(); kind == caSessionLogon || kind == caSessionLogoff {
		c.outcome = outcomeOf(e.status())
	}
	if e.failed() {
		c.outcome = "failure"
	}
	var rel related
	b = append(b, '{')
	ms, ok := integer(e.timestamp)
	if !ok {
		ms = timeMS(nil, in.time)
	}
	b = appendTimestamp(b, ms)
	b, em := appendEventStart(b, c)
	b = putID(b, "id", in, e.uuid)
	b = putRaw(b, "action", e.action)
	b = putRaw(b, "code", e.auditCode)
	b = putRaw(b, "dataset", e.appCode)
	b = putRaw(b, "provider", e.component)
	b = putRaw(b, "reason", e.message)
	b = appendEventEnd(b, em, in.data)
	// user and user.target
	um := len(b)
	b = open(b, "user")
	b = putRaw(b, "id", e.userID)
	if bytes.IndexByte(e.username, '@') >= 0 {
		b = putRaw(b, "email", e.username)
	} else {
		b = putRaw(b, "name", e.username)
		rel.user(e.username)
	}
	tm := len(b)
	b = open(b, "target")
	targetName := e.targetAccount
	var targetDomain []byte
	switch code {
	case "PAM00105", "PAM00294", "PAM00295":
		if i := bytes.Index(e.cdPAMTarget, []byte(`\\`)); i >= 0 {
			targetDomain, targetName = e.cdPAMTarget[:i], e.cdPAMTarget[i+2:]
		}
	}
	if bytes.IndexByte(e.cdUserName, '@') >= 0 {
		b = putRaw(b, "email", e.cdUserName)
	} else if len(e.cdUserName) > 0 {
		targetName = e.cdUserName
	}
	b = putRaw(b, "id", e.cdUserID)
	b = putRaw(b, "name", targetName)
	b = putRaw(b, "domain", targetDomain)
	rel.user(targetName)
	b = closeObj(b, tm)
	b = closeObj(b, um)
	// source, destination, observer
	srcIP := isIP(e.source)
	if srcIP || len(e.cdCity) > 0 || len(e.cdCountry) > 0 {
		sm := len(b)
		b = open(b, "source")
		if srcIP {
			b = putRaw(b, "ip", e.source)
			b = putRaw(b, "address", e.source)
			rel.ip(e.source)
		}
		gm := len(b)
		b = open(b, "geo")
		b = putRaw(b, "city_name", e.cdCity)
		b = putRaw(b, "country_name", e.cdCountry)
		b = closeObj(b, gm)
		b = closeObj(b, sm)
	}
	if len(e.target) > 0 {
		dm := len(b)
		b = open(b, "destination")
		if isIP(e.target) {
			b = putRaw(b, "ip", e.target)
			rel.ip(e.target)
		}
		b = putRaw(b, "address", e.target)
		b = closeObj(b, dm)
	}
	om := len(b)
	b = open(b, "observer")
	b = putStr(b, "vendor", "CyberArk")
	b = putRaw(b, "product", e.serviceName)
	if !srcIP {
		b = putRaw(b, "name", e.source)
	}
	b = closeObj(b, om)
	if len(e.cdBrowser) > 0 {
		am := len(b)
		b = open(b, "user_agent")
		b = putRaw(b, "name", e.cdBrowser)
		b = closeObj(b, am)
	}
	if len(e.cdOS) > 0 {
		hm := len(b)
		b = open(b, "host")
		osm := len(b)
		b = open(b, "os")
		b = putRaw(b, "platform", e.cdOS)
		b = closeObj(b, osm)
		b = closeObj(b, hm)
	}
	if code == "PAM00099" && len(e.cdPAMTarget) > 0 {
		fm := len(b)
		b = open(b, "file")
		b = putRaw(b, "path", e.cdPAMTarget)
		name := e.cdPAMTarget
		if i := bytes.LastIndex(name, []byte(`\\`)); i >= 0 {
			name = name[i+2:]
		}
		b = putRaw(b, "name", name)
		b = closeObj(b, fm)
	}
	if len(e.cloudProvider) > 0 {
		cm := len(b)
		b = open(b, "cloud")
		b = putRaw(b, "provider", e.cloudProvider)
		b = closeObj(b, cm)
	}
	org := e.tenantID
	if len(org) == 0 && in.tenant != "" {
		org = []byte(in.tenant)
	}
	if len(org) > 0 {
		om := len(b)
		b = open(b, "organization")
		b = putRaw(b, "id", org)
		b = closeObj(b, om)
	}
	b = appendRelated(b, &rel)
	cym := len(b)
	b = open(b, "cyberark")
	am := len(b)
	b = open(b, "audit")
	b = putRaw(b, "uuid", e.uuid)
	b = putRaw(b, "safe", e.safe)
	b = putRaw(b, "session_id", e.sessionID)
	b = putRaw(b, "account_id", e.accountID)
	b = putRaw(b, "account_name", e.accountName)
	b = putRaw(b, "target_platform", e.targetPlatform)
	if code == "PAM00105" || code == "PAM00295" {
		b = putRaw(b, "new_target", e.cdPAMNewTarget)
	}
	b = putRaw(b, "directory_service_id", e.cdDirectory)
	if len(e.cdAppName) > 0 {
		apm := len(b)
		b = open(b, "application")
		b = putRaw(b, "description", e.cdAppDesc)
		b = putRaw(b, "id", e.cdAppID)
		b = putRaw(b, "display_name", e.cdAppName)
		b = putRaw(b, "service_name", e.cdSvc)
		b = closeObj(b, apm)
	}
	b = putRaw(b, "audit_type", e.auditType)
	b = putRaw(b, "action_type", e.actionType)
	b = putRaw(b, "access_method", e.accessMethod)
	b = putRaw(b, "command", e.command)
	b = putRaw(b, "identity_type", e.identityType)
	b = putRaw(b, "correlation_id", e.correlationID)
	b = closeObj(b, am)
	b = closeObj(b, cym)
	b = appendLabels(b, in)
	b = appendECSVersion(b)
	return append(b, '}')
}
