package normalize

import (
	"bytes"

	"github.com/auditrelay/auditrelay/internal/jsonscan"
)

// The product every Entra stream's OCSF events name.
func entraProduct(logName string) product {
	return product{name: "Microsoft Entra ID", vendor: "Microsoft", logName: logName}
}

// entraAudit is what the normalizers read of a Graph directoryAudit.
type entraAudit struct {
	data                          []byte
	id, category, correlationID   []byte
	result, resultReason          []byte
	activity, activityTime        []byte
	service, operationType        []byte
	user                          party // initiatedBy.user
	userIP                        []byte
	appID, appName, spID          []byte // initiatedBy.app
	tUser, tGroup, tOther, tFirst party
	roleName                      []byte // from a target's modifiedProperties
	userAgent                     []byte // additionalDetails User-Agent
	initiatedByApp, byApp         bool
}

func decodeEntraAudit(in *input) entraAudit {
	e := entraAudit{data: in.data}
	m := in.members()
	for {
		k, v, ok := m.next()
		if !ok {
			break
		}
		switch string(k) {
		case "id":
			e.id = str(v)
		case "category":
			e.category = str(v)
		case "correlationId":
			e.correlationID = str(v)
		case "result":
			e.result = str(v)
		case "resultReason":
			e.resultReason = str(v)
		case "activityDisplayName":
			e.activity = bytes.TrimSpace(str(v))
		case "activityDateTime":
			e.activityTime = str(v)
		case "loggedByService":
			e.service = str(v)
		case "operationType":
			e.operationType = str(v)
		case "initiatedBy":
			u, a := get(v, "user"), get(v, "app")
			e.user = party{id: str(get(u, "id")), name: str(get(u, "userPrincipalName")), display: str(get(u, "displayName"))}
			e.user.email = e.user.name
			e.userIP = str(get(u, "ipAddress"))
			e.appID, e.appName, e.spID = str(get(a, "appId")), str(get(a, "displayName")), str(get(a, "servicePrincipalId"))
		case "targetResources":
			it := arrayElements(v)
			for {
				t, ok := it.next()
				if !ok {
					break
				}
				p := party{id: str(get(t, "id")), typ: str(get(t, "type")), display: str(get(t, "displayName"))}
				p.name = str(get(t, "userPrincipalName"))
				p.email = p.name
				if p.name == nil {
					p.name = p.display
				}
				if e.tFirst.empty() {
					e.tFirst = p
				}
				switch {
				case string(p.typ) == "User" && e.tUser.empty():
					e.tUser = p
				case string(p.typ) == "Group" && e.tGroup.empty():
					e.tGroup = p
				case e.tOther.empty():
					e.tOther = p
				}
				if e.roleName == nil {
					e.roleName = entraRoleName(get(t, "modifiedProperties"))
				}
			}
		case "additionalDetails":
			it := arrayElements(v)
			for {
				d, ok := it.next()
				if !ok {
					break
				}
				if string(str(get(d, "key"))) == "User-Agent" {
					e.userAgent = str(get(d, "value"))
				}
			}
		}
	}
	return e
}

// entraRoleName returns the new Role.DisplayName of modifiedProperties,
// without the JSON quoting Graph puts in the value ("\"Global Reader\"").
func entraRoleName(props []byte) []byte {
	it := arrayElements(props)
	for {
		p, ok := it.next()
		if !ok {
			return nil
		}
		if string(str(get(p, "displayName"))) == "Role.DisplayName" {
			v := str(get(p, "newValue"))
			v = bytes.TrimPrefix(bytes.TrimSuffix(v, []byte(`\"`)), []byte(`\"`))
			if len(v) == 0 || bytes.IndexByte(v, '\\') >= 0 {
				return nil
			}
			return v
		}
	}
}

func entraStatus(result []byte) int {
	switch {
	case equalFold(result, "success"):
		return statusSuccess
	case equalFold(result, "failure"):
		return statusFailure
	case len(result) == 0 || equalFold(result, "unknownFutureValue"):
		return statusUnknown
	}
	return statusOther
}

func (e *entraAudit) actorUser() party {
	if e.user.empty() {
		return party{}
	}
	return e.user
}

func (e *entraAudit) route() route {
	a := e.activity
	switch {
	case string(e.category) == "UserManagement" && !e.tUser.empty():
		switch {
		case equalFold(a, "Add user"):
			return route{class: classAccountChange, activity: acCreate}
		case equalFold(a, "Delete user") || equalFold(a, "Hard delete user"):
			return route{class: classAccountChange, activity: acDelete}
		case equalFold(a, "Disable account"):
			return route{class: classAccountChange, activity: acDisable}
		case equalFold(a, "Enable account"):
			return route{class: classAccountChange, activity: acEnable}
		case hasPrefixFold(a, "Reset password") || hasPrefixFold(a, "Reset user password"):
			return route{class: classAccountChange, activity: acPasswordReset}
		case hasPrefixFold(a, "Change password") || hasPrefixFold(a, "Change user password"):
			return route{class: classAccountChange, activity: acPasswordChg}
		case equalFold(a, "Update user"):
			return route{class: classAccountChange, activity: activityOther, name: "Update"}
		}
	case string(e.category) == "UserManagement" && !e.user.empty() && (hasPrefixFold(a, "Reset password") || hasPrefixFold(a, "Change password")):
		// Self-service resets name the user as the initiator only.
		if hasPrefixFold(a, "Reset password") {
			return route{class: classAccountChange, activity: acPasswordReset}
		}
		return route{class: classAccountChange, activity: acPasswordChg}
	case string(e.category) == "GroupManagement" && !e.tGroup.empty():
		switch {
		case equalFold(a, "Add member to group"):
			return route{class: classGroupManagement, activity: gmAddUser}
		case equalFold(a, "Remove member from group"):
			return route{class: classGroupManagement, activity: gmRemoveUser}
		case equalFold(a, "Add group"):
			return route{class: classGroupManagement, activity: gmCreate}
		case equalFold(a, "Delete group") || equalFold(a, "Hard Delete group"):
			return route{class: classGroupManagement, activity: gmDelete}
		}
	case string(e.category) == "RoleManagement" && !e.tUser.empty():
		switch {
		case hasPrefixFold(a, "Add member to role") || hasPrefixFold(a, "Add eligible member to role"):
			return route{class: classUserAccess, activity: uaAssign}
		case hasPrefixFold(a, "Remove member from role") || hasPrefixFold(a, "Remove eligible member from role"):
			return route{class: classUserAccess, activity: uaRevoke}
		}
	}
	rt := route{class: classEntityManagement, activity: verbActivity(e.operationType)}
	if rt.activity == activityOther {
		rt.name = string(e.operationType)
	}
	return rt
}

// entraAuditOCSF appends a directoryAudit as OCSF.
func entraAuditOCSF(b []byte, in input) []byte {
	e := decodeEntraAudit(&in)
	rt := e.route()
	b = append(b, '{')
	b = appendClass(b, rt, sevInformational)
	b = putInt(b, "time", timeMS(e.activityTime, in.time))
	b, mm := appendMetadataStart(b, entraProduct("directoryAudits"), e.service)
	b = putID(b, "uid", in, e.id)
	b = putStr(b, "log_source", in.source)
	b = putRaw(b, "event_code", e.activity)
	b = putRaw(b, "original_time", e.activityTime)
	b = putRaw(b, "correlation_uid", e.correlationID)
	b = putStr(b, "tenant_uid", in.tenant)
	b = closeObj(b, mm)
	b = putRaw(b, "message", e.activity)
	st := entraStatus(e.result)
	b = appendStatus(b, st, e.result)
	if st != statusSuccess {
		b = putRaw(b, "status_detail", e.resultReason)
	}
	am := len(b)
	b = open(b, "actor")
	b = appendUser(b, "user", e.user, 0)
	if e.user.empty() {
		b = putRaw(b, "app_uid", e.appID)
		b = putRaw(b, "app_name", e.appName)
	}
	b = closeObj(b, am)
	if isIP(e.userIP) {
		sm := len(b)
		b = open(b, "src_endpoint")
		b = putRaw(b, "ip", e.userIP)
		b = closeObj(b, sm)
	}
	if len(e.userAgent) > 0 {
		hm := len(b)
		b = open(b, "http_request")
		b = putRaw(b, "user_agent", e.userAgent)
		b = closeObj(b, hm)
	}
	switch rt.class {
	case classAccountChange:
		s := e.tUser
		if s.empty() {
			s = e.user
		}
		b = appendUser(b, "user", s, 0)
	case classUserAccess:
		b = appendUser(b, "user", e.tUser, 0)
		pm := len(b)
		b = openArr(b, "privileges")
		if len(e.roleName) > 0 {
			b = appendRawStr(b, e.roleName)
		} else {
			b = appendRawStr(b, e.activity)
		}
		b = closeArr(b, pm)
	case classGroupManagement:
		g := e.tGroup
		if len(g.display) > 0 {
			g.name = g.display
		}
		b = appendNamed(b, "group", g, false)
		b = appendUser(b, "user", e.tUser, 0)
	default:
		ent := e.tFirst
		if ent.empty() {
			ent = party{name: e.activity, typ: e.category}
		}
		if ent.empty() {
			ent = party{name: []byte("Microsoft Entra ID")}
		}
		em := len(b)
		b = open(b, "entity")
		b = putRaw(b, "uid", ent.id)
		b = putRaw(b, "name", ent.name)
		b = putRaw(b, "type", ent.typ)
		b = closeObj(b, em)
	}
	b = appendUnmapped(b, in, shapeEntraAudit)
	b = appendRawData(b, in.data)
	return append(b, '}')
}

func entraAuditMapping(p []byte) int {
	switch string(p) {
	case "initiatedBy", "initiatedBy.user", "initiatedBy.app":
		return pathPartial
	case "id", "correlationId", "result", "resultReason", "activityDisplayName", "activityDateTime", "loggedByService",
		"initiatedBy.user.id", "initiatedBy.user.userPrincipalName", "initiatedBy.user.displayName", "initiatedBy.user.ipAddress",
		"initiatedBy.app.appId", "initiatedBy.app.displayName":
		return pathMapped
	}
	return pathUnmapped
}

// entraSignIn is what the normalizers read of a Graph signIn.
type entraSignIn struct {
	data                         []byte
	id, created, correlationID   []byte
	user                         party
	appID, appName               []byte
	ip, userAgent, clientApp     []byte
	resourceName, resourceID     []byte
	errorCode                    []byte // raw number
	failureReason, details       []byte
	city, state, country         []byte
	lat, lon                     []byte
	authRequirement, riskLevel   []byte
	deviceOS, deviceBrowser      []byte
	deviceName                   []byte
	authProtocol, sessionID      []byte
	interactive, interactiveSeen bool
}

func decodeEntraSignIn(in *input) entraSignIn {
	e := entraSignIn{data: in.data}
	m := in.members()
	for {
		k, v, ok := m.next()
		if !ok {
			break
		}
		switch string(k) {
		case "id":
			e.id = str(v)
		case "createdDateTime":
			e.created = str(v)
		case "correlationId":
			e.correlationID = str(v)
		case "userDisplayName":
			e.user.display = str(v)
		case "userPrincipalName":
			e.user.name = str(v)
			e.user.email = e.user.name
		case "userId":
			e.user.id = str(v)
		case "appId":
			e.appID = str(v)
		case "appDisplayName":
			e.appName = str(v)
		case "ipAddress":
			e.ip = str(v)
		case "userAgent":
			e.userAgent = str(v)
		case "resourceDisplayName":
			e.resourceName = str(v)
		case "resourceId":
			e.resourceID = str(v)
		case "status":
			e.errorCode = number(get(v, "errorCode"))
			e.failureReason = str(get(v, "failureReason"))
		case "location":
			e.city = str(get(v, "city"))
			e.state = str(get(v, "state"))
			e.country = str(get(v, "countryOrRegion"))
			g := get(v, "geoCoordinates")
			e.lat = number(get(g, "latitude"))
			e.lon = number(get(g, "longitude"))
		case "authenticationRequirement":
			e.authRequirement = str(v)
		case "deviceDetail":
			e.deviceOS = str(get(v, "operatingSystem"))
		case "authenticationProtocol":
			e.authProtocol = str(v)
		case "sessionId":
			e.sessionID = str(v)
		case "isInteractive":
			e.interactiveSeen = string(v) == "true" || string(v) == "false"
			e.interactive = string(v) == "true"
		}
	}
	return e
}

func (e *entraSignIn) status() int {
	switch {
	case string(e.errorCode) == "0":
		return statusSuccess
	case e.errorCode != nil:
		return statusFailure
	}
	return statusUnknown
}

// authProtocolID maps authenticationProtocol to OCSF auth_protocol_id.
func (e *entraSignIn) authProtocolID() (int, string) {
	switch {
	case equalFold(e.authProtocol, "saml20"):
		return 5, "SAML"
	case equalFold(e.authProtocol, "oAuth2"), equalFold(e.authProtocol, "ropc"), equalFold(e.authProtocol, "deviceCode"):
		return 6, "OAUTH 2.0"
	case equalFold(e.authProtocol, "wsFederation"):
		return 99, "WS-Federation"
	}
	return 0, ""
}

// entraSignInOCSF appends a signIn as OCSF Authentication.
func entraSignInOCSF(b []byte, in input) []byte {
	e := decodeEntraSignIn(&in)
	rt := route{class: classAuthentication, activity: authLogon}
	if e.user.empty() {
		rt = route{class: classEntityManagement, activity: activityOther, name: "Sign-in"}
	}
	b = append(b, '{')
	b = appendClass(b, rt, sevInformational)
	b = putInt(b, "time", timeMS(e.created, in.time))
	b, mm := appendMetadataStart(b, entraProduct("signIns"), nil)
	b = putID(b, "uid", in, e.id)
	b = putStr(b, "log_source", in.source)
	b = putStr(b, "event_code", "signIn")
	b = putRaw(b, "original_time", e.created)
	b = putRaw(b, "correlation_uid", e.correlationID)
	b = putStr(b, "tenant_uid", in.tenant)
	b = closeObj(b, mm)
	st := e.status()
	b = appendStatus(b, st, nil)
	if e.errorCode != nil {
		b = key(b, "status_code")
		b = append(b, '"')
		b = append(b, e.errorCode...)
		b = append(b, '"')
	}
	if st == statusFailure {
		b = putRaw(b, "status_detail", e.failureReason)
		b = putRaw(b, "message", e.failureReason)
	}
	am := len(b)
	b = open(b, "actor")
	b = appendUser(b, "user", e.user, userTypeUser)
	b = putRaw(b, "app_uid", e.appID)
	b = putRaw(b, "app_name", e.appName)
	b = closeObj(b, am)
	if isIP(e.ip) {
		sm := len(b)
		b = open(b, "src_endpoint")
		b = putRaw(b, "ip", e.ip)
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
	if len(e.userAgent) > 0 {
		hm := len(b)
		b = open(b, "http_request")
		b = putRaw(b, "user_agent", e.userAgent)
		b = closeObj(b, hm)
	}
	if rt.class == classAuthentication {
		b = appendUser(b, "user", e.user, userTypeUser)
		svc := party{id: e.resourceID, name: e.resourceName}
		if svc.empty() {
			svc = party{id: e.appID, name: e.appName}
		}
		if svc.empty() {
			svc = party{name: []byte("Microsoft Entra ID")}
		}
		b = appendNamed(b, "service", svc, false)
		if len(e.authRequirement) > 0 {
			b = putBool(b, "is_mfa", equalFold(e.authRequirement, "multiFactorAuthentication"))
		}
		if id, name := e.authProtocolID(); id != 0 {
			b = putInt(b, "auth_protocol_id", int64(id))
			b = putStr(b, "auth_protocol", name)
		}
		if e.interactiveSeen && e.interactive {
			b = putInt(b, "logon_type_id", 2)
			b = putStr(b, "logon_type", "Interactive")
		}
		if len(e.sessionID) > 0 {
			sm := len(b)
			b = open(b, "session")
			b = putRaw(b, "uid", e.sessionID)
			b = closeObj(b, sm)
		}
	} else {
		em := len(b)
		b = open(b, "entity")
		b = putRaw(b, "uid", e.appID)
		b = putRaw(b, "name", e.appName)
		if b[len(b)-1] == '{' {
			b = putStr(b, "name", "Microsoft Entra ID")
		}
		b = closeObj(b, em)
	}
	b = appendUnmapped(b, in, shapeEntraSignIn)
	b = appendRawData(b, in.data)
	return append(b, '}')
}

func entraSignInMapping(p []byte) int {
	switch string(p) {
	case "status", "location", "location.geoCoordinates":
		return pathPartial
	case "id", "createdDateTime", "correlationId", "userDisplayName", "userPrincipalName", "userId", "appId",
		"appDisplayName", "ipAddress", "userAgent", "resourceDisplayName", "resourceId", "status.errorCode",
		"status.failureReason", "location.city", "location.state", "location.geoCoordinates.latitude",
		"location.geoCoordinates.longitude", "authenticationRequirement", "authenticationProtocol", "sessionId":
		return pathMapped
	}
	return pathUnmapped
}

// entraProvisioning is what the normalizers read of a Graph
// provisioningObjectSummary.
type entraProvisioning struct {
	data                   []byte
	id, at, tenantID       []byte
	cycleID, changeID      []byte
	action, status         []byte
	errorCode, errorReason []byte
	duration               []byte // raw number
	spID, spName           []byte
	initiator              []byte
	source, target         party
	targetSystem           []byte
	targetSystID           []byte
}

func decodeEntraProvisioning(in *input) entraProvisioning {
	e := entraProvisioning{data: in.data}
	m := in.members()
	for {
		k, v, ok := m.next()
		if !ok {
			break
		}
		switch string(k) {
		case "id":
			e.id = str(v)
		case "activityDateTime":
			e.at = str(v)
		case "tenantId":
			e.tenantID = str(v)
		case "cycleId":
			e.cycleID = str(v)
		case "provisioningAction":
			e.action = str(v)
		case "durationInMilliseconds":
			e.duration = number(v)
		case "provisioningStatusInfo":
			e.status = str(get(v, "status"))
			ei := get(v, "errorInformation")
			e.errorCode = str(get(ei, "errorCode"))
			e.errorReason = str(get(ei, "reason"))
		case "servicePrincipal":
			e.spID, e.spName = str(get(v, "id")), str(get(v, "displayName"))
		case "initiatedBy":
			e.initiator = str(get(v, "displayName"))
		case "sourceIdentity":
			e.source = party{id: str(get(v, "id")), name: str(get(v, "displayName")), typ: str(get(v, "identityType"))}
		case "targetIdentity":
			e.target = party{id: str(get(v, "id")), name: str(get(v, "displayName")), typ: str(get(v, "identityType"))}
		case "targetSystem":
			e.targetSystID, e.targetSystem = str(get(v, "id")), str(get(v, "displayName"))
		}
	}
	return e
}

func (e *entraProvisioning) subject() party {
	if !e.target.empty() {
		return e.target
	}
	return e.source
}

func (e *entraProvisioning) route() route {
	isUser := string(e.subject().typ) == "User" || len(e.subject().typ) == 0
	if !e.subject().empty() && isUser {
		switch {
		case equalFold(e.action, "create"):
			return route{class: classAccountChange, activity: acCreate}
		case equalFold(e.action, "delete"):
			return route{class: classAccountChange, activity: acDelete}
		case equalFold(e.action, "disable"):
			return route{class: classAccountChange, activity: acDisable}
		case equalFold(e.action, "update"):
			return route{class: classAccountChange, activity: activityOther, name: "Update"}
		}
	}
	rt := route{class: classEntityManagement, activity: verbActivity(e.action)}
	if rt.activity == activityOther {
		rt.name = string(e.action)
	}
	return rt
}

// entraProvisioningOCSF appends a provisioning event as OCSF.
func entraProvisioningOCSF(b []byte, in input) []byte {
	e := decodeEntraProvisioning(&in)
	rt := e.route()
	b = append(b, '{')
	b = appendClass(b, rt, sevInformational)
	b = putInt(b, "time", timeMS(e.at, in.time))
	b, mm := appendMetadataStart(b, entraProduct("provisioning"), nil)
	b = putID(b, "uid", in, e.id)
	b = putStr(b, "log_source", in.source)
	b = putRaw(b, "event_code", e.action)
	b = putRaw(b, "original_time", e.at)
	b = putRaw(b, "correlation_uid", e.cycleID)
	if len(e.tenantID) > 0 {
		b = putRaw(b, "tenant_uid", e.tenantID)
	} else {
		b = putStr(b, "tenant_uid", in.tenant)
	}
	b = closeObj(b, mm)
	st := entraStatus(e.status)
	b = appendStatus(b, st, e.status)
	b = putRaw(b, "status_code", e.errorCode)
	b = putRaw(b, "status_detail", e.errorReason)
	b = putNum(b, "duration", e.duration)
	am := len(b)
	b = open(b, "actor")
	b = putRaw(b, "app_uid", e.spID)
	b = putRaw(b, "app_name", e.spName)
	if b[len(b)-1] == '{' {
		b = putRaw(b, "app_name", e.initiator)
	}
	b = closeObj(b, am)
	if rt.class == classAccountChange {
		b = appendUser(b, "user", e.subject(), userTypeUser)
	} else {
		ent := e.subject()
		if ent.empty() {
			ent = party{id: e.targetSystID, name: e.targetSystem}
		}
		if ent.empty() {
			ent = party{name: []byte("Microsoft Entra provisioning")}
		}
		em := len(b)
		b = open(b, "entity")
		b = putRaw(b, "uid", ent.id)
		b = putRaw(b, "name", ent.name)
		b = putRaw(b, "type", ent.typ)
		b = closeObj(b, em)
	}
	b = appendUnmapped(b, in, shapeEntraProvisioning)
	b = appendRawData(b, in.data)
	return append(b, '}')
}

func entraProvisioningMapping(p []byte) int {
	switch string(p) {
	case "provisioningStatusInfo", "provisioningStatusInfo.errorInformation", "servicePrincipal":
		return pathPartial
	case "id", "activityDateTime", "tenantId", "cycleId", "provisioningAction", "durationInMilliseconds",
		"provisioningStatusInfo.status", "provisioningStatusInfo.errorInformation.errorCode",
		"provisioningStatusInfo.errorInformation.reason", "servicePrincipal.id", "servicePrincipal.displayName":
		return pathMapped
	}
	return pathUnmapped
}

// entraVendor writes the members of a Graph event that ECS has no place
// for under azure.<stream>, keys as served, values compacted.
func entraVendor(b []byte, in *input, stream string, skip func(k []byte) bool) []byte {
	am := len(b)
	b = open(b, "azure")
	sm := len(b)
	b = open(b, stream)
	m := in.members()
	for {
		k, v, ok := m.next()
		if !ok {
			break
		}
		if skip(k) || string(v) == "null" {
			continue
		}
		b = appendRawStr(sep(b), k)
		b = append(b, ':')
		b = jsonscan.AppendCompact(b, v)
	}
	b = closeObj(b, sm)
	return closeObj(b, am)
}

// entraAuditECS appends a directoryAudit as ECS, after Elastic's azure
// auditlogs data stream.
func entraAuditECS(b []byte, in input) []byte {
	e := decodeEntraAudit(&in)
	var c ecsEvent
	c.category("iam")
	switch {
	case equalFold(e.operationType, "Add"):
		c.typ("creation")
	case equalFold(e.operationType, "Delete"):
		c.typ("deletion")
	default:
		c.typ("change")
	}
	switch string(e.category) {
	case "UserManagement":
		c.typ("user")
	case "GroupManagement":
		c.typ("group")
	case "RoleManagement":
		c.typ("admin")
	case "Policy", "ApplicationManagement":
		c.category("configuration")
	}
	c.outcome = outcomeOf(entraStatus(e.result))
	var rel related
	b = append(b, '{')
	b = appendTimestamp(b, timeMS(e.activityTime, in.time))
	b = putRaw(b, "message", e.activity)
	b, em := appendEventStart(b, c)
	b = putRaw(b, "action", e.activity)
	b = putID(b, "id", in, e.id)
	b = putRaw(b, "provider", e.service)
	b = putRaw(b, "reason", e.resultReason)
	b = putStr(b, "dataset", "azure.auditlogs")
	b = appendEventEnd(b, em, in.data)
	um := len(b)
	b = open(b, "user")
	b = putRaw(b, "id", e.user.id)
	b = putRaw(b, "name", e.user.name)
	b = putRaw(b, "full_name", e.user.display)
	if isEmail(e.user.email) {
		b = putRaw(b, "email", e.user.email)
	}
	rel.user(e.user.name)
	tm := len(b)
	b = open(b, "target")
	b = putRaw(b, "id", e.tUser.id)
	b = putRaw(b, "name", e.tUser.name)
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
	if isIP(e.userIP) {
		sm := len(b)
		b = open(b, "source")
		b = putRaw(b, "ip", e.userIP)
		b = closeObj(b, sm)
		rel.ip(e.userIP)
	}
	if len(e.userAgent) > 0 {
		am := len(b)
		b = open(b, "user_agent")
		b = putRaw(b, "original", e.userAgent)
		b = closeObj(b, am)
	}
	if len(e.appName) > 0 || len(e.appID) > 0 {
		sm := len(b)
		b = open(b, "service")
		b = putRaw(b, "name", e.appName)
		b = closeObj(b, sm)
	}
	b = appendRelated(b, &rel)
	if in.tenant != "" {
		om := len(b)
		b = open(b, "organization")
		b = putStr(b, "id", in.tenant)
		b = closeObj(b, om)
	}
	b = entraVendor(b, &in, "auditlogs", func(k []byte) bool {
		switch string(k) {
		case "id", "activityDateTime", "activityDisplayName":
			return true
		}
		return false
	})
	b = appendLabels(b, in)
	b = appendECSVersion(b)
	return append(b, '}')
}

// entraSignInECS appends a signIn as ECS, after Elastic's azure
// signinlogs data stream.
func entraSignInECS(b []byte, in input) []byte {
	e := decodeEntraSignIn(&in)
	var c ecsEvent
	c.category("authentication")
	c.typ("start")
	c.outcome = outcomeOf(e.status())
	var rel related
	b = append(b, '{')
	b = appendTimestamp(b, timeMS(e.created, in.time))
	if e.status() == statusFailure {
		b = putRaw(b, "message", e.failureReason)
	}
	b, em := appendEventStart(b, c)
	b = putStr(b, "action", "Sign-in activity")
	b = putID(b, "id", in, e.id)
	if e.status() == statusFailure {
		b = putRaw(b, "reason", e.failureReason)
	}
	b = putStr(b, "dataset", "azure.signinlogs")
	b = appendEventEnd(b, em, in.data)
	um := len(b)
	b = open(b, "user")
	b = putRaw(b, "id", e.user.id)
	b = putRaw(b, "name", e.user.name)
	b = putRaw(b, "full_name", e.user.display)
	if isEmail(e.user.email) {
		b = putRaw(b, "email", e.user.email)
	}
	b = closeObj(b, um)
	rel.user(e.user.name)
	if isIP(e.ip) {
		rel.ip(e.ip)
		sm := len(b)
		b = open(b, "source")
		b = putRaw(b, "ip", e.ip)
		gm := len(b)
		b = open(b, "geo")
		b = putRaw(b, "city_name", e.city)
		b = putRaw(b, "region_name", e.state)
		if isCountryCode(e.country) {
			b = putRaw(b, "country_iso_code", e.country)
		}
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
	if len(e.userAgent) > 0 || len(e.deviceOS) > 0 {
		am := len(b)
		b = open(b, "user_agent")
		b = putRaw(b, "original", e.userAgent)
		if len(e.deviceOS) > 0 {
			om := len(b)
			b = open(b, "os")
			b = putRaw(b, "name", e.deviceOS)
			b = closeObj(b, om)
		}
		b = closeObj(b, am)
	}
	if e.errorCode != nil && string(e.errorCode) != "0" {
		erm := len(b)
		b = open(b, "error")
		b = key(b, "code")
		b = append(b, '"')
		b = append(b, e.errorCode...)
		b = append(b, '"')
		b = closeObj(b, erm)
	}
	b = appendRelated(b, &rel)
	if in.tenant != "" {
		om := len(b)
		b = open(b, "organization")
		b = putStr(b, "id", in.tenant)
		b = closeObj(b, om)
	}
	b = entraVendor(b, &in, "signinlogs", func(k []byte) bool {
		switch string(k) {
		case "id", "createdDateTime", "userPrincipalName", "userId", "userDisplayName", "ipAddress", "userAgent":
			return true
		}
		return false
	})
	b = appendLabels(b, in)
	b = appendECSVersion(b)
	return append(b, '}')
}

// entraProvisioningECS appends a provisioning event as ECS.
func entraProvisioningECS(b []byte, in input) []byte {
	e := decodeEntraProvisioning(&in)
	var c ecsEvent
	c.category("iam")
	c.typ("user")
	switch {
	case equalFold(e.action, "create"):
		c.typ("creation")
	case equalFold(e.action, "delete"):
		c.typ("deletion")
	default:
		c.typ("change")
	}
	c.outcome = outcomeOf(entraStatus(e.status))
	var rel related
	b = append(b, '{')
	b = appendTimestamp(b, timeMS(e.at, in.time))
	b = putRaw(b, "message", e.errorReason)
	b, em := appendEventStart(b, c)
	b = putRaw(b, "action", e.action)
	b = putID(b, "id", in, e.id)
	b = putRaw(b, "reason", e.errorReason)
	if ms, ok := integer(e.duration); ok {
		b = putInt(b, "duration", ms*1_000_000) // ECS durations are in nanoseconds
	}
	b = putStr(b, "dataset", "azure.provisioning")
	b = appendEventEnd(b, em, in.data)
	t := e.subject()
	um := len(b)
	b = open(b, "user")
	tm := len(b)
	b = open(b, "target")
	b = putRaw(b, "id", t.id)
	b = putRaw(b, "full_name", t.name)
	b = closeObj(b, tm)
	b = closeObj(b, um)
	rel.user(t.name)
	if len(e.spName) > 0 {
		sm := len(b)
		b = open(b, "service")
		b = putRaw(b, "name", e.spName)
		b = closeObj(b, sm)
	}
	b = appendRelated(b, &rel)
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
	b = entraVendor(b, &in, "provisioning", func(k []byte) bool {
		switch string(k) {
		case "id", "activityDateTime":
			return true
		}
		return false
	})
	b = appendLabels(b, in)
	b = appendECSVersion(b)
	return append(b, '}')
}
