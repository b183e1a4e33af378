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
func decodeCyberArk(data []byte) cyberark {
	e := cyberark{data: data}
	m := objectMembers(data)
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
	e := decodeCyberArk(in.data)
	rt := e.route()
	b = append(b, '{')
	b = appendClass(b, rt, e.severity())
	ms, ok := integer(e.timestamp)
	if !ok {
		ms = timeMS(nil, in.time)
	}
	b = putInt(b, "time", ms)
	b, mm := appendMetadataStart(b, product{name: "Identity Security Platform Audit", vendor: "CyberArk", logName: "ISP Audit"}, e.serviceName)
	b = putRaw(b, "uid", e.uuid)
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
	b = appendUnmapped(b, in.data, shapeCyberArk)
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
