package normalize

import (
	"fmt"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/jsonscan"
)

// The ASIM schemas and the versions the rows follow.
const (
	ASIMAuthentication        = "Authentication"
	ASIMAuditEvent            = "AuditEvent"
	asimAuthenticationVersion = "0.1.4"
	asimAuditEventVersion     = "0.1.2"
)

// ASIMSchema returns the ASIM schema an event's row belongs to:
// ASIMAuthentication for sign-ins and sign-outs, ASIMAuditEvent for the
// rest.
func ASIMSchema(r event.Raw) (string, error) {
	in, err := prepareInput("asim", &r)
	if err != nil {
		return "", err
	}
	row, err := asimRowOf(r.Provider, in)
	if err != nil {
		return "", err
	}
	if row.auth {
		return ASIMAuthentication, nil
	}
	return ASIMAuditEvent, nil
}

// ASIM appends r as one ASIM row to dst: an Authentication row for
// sign-ins and sign-outs, an AuditEvent row for everything else (the
// EventSchema column tells which), with the provider event whole in the
// AdditionalFields column.
func ASIM(r event.Raw, dst []byte) ([]byte, error) {
	in, err := prepareInput("asim", &r)
	if err != nil {
		return dst, err
	}
	row, err := asimRowOf(r.Provider, in)
	if err != nil {
		return dst, err
	}
	return row.append(dst, in), nil
}

// ASIMOf appends r's row to dst when it belongs to schema
// (ASIMAuthentication or ASIMAuditEvent); ok is false, and nothing is
// appended, for an event of the other schema. It is for a destination that
// takes the rows of one schema, such as a Sentinel table.
func ASIMOf(schema string, r event.Raw, dst []byte) (b []byte, ok bool, err error) {
	in, err := prepareInput("asim", &r)
	if err != nil {
		return dst, false, err
	}
	row, err := asimRowOf(r.Provider, in)
	if err != nil {
		return dst, false, err
	}
	if row.auth != (schema == ASIMAuthentication) {
		return dst, false, nil
	}
	return row.append(dst, in), true, nil
}

// ASIMColumns returns the columns an ASIM row of schema may hold, in the
// order the rows write them, with their Log Analytics types.
func ASIMColumns(schema string) [][2]string {
	cols := [][2]string{{"TimeGenerated", "datetime"}, {"EventStartTime", "datetime"}, {"EventEndTime", "datetime"},
		{"EventCount", "int"}, {"EventType", "string"}, {"EventSchema", "string"}, {"EventSchemaVersion", "string"},
		{"EventResult", "string"}, {"EventResultDetails", "string"}, {"EventOriginalResultDetails", "string"},
		{"EventSeverity", "string"}, {"EventVendor", "string"}, {"EventProduct", "string"}, {"EventOriginalType", "string"},
		{"EventOriginalUid", "string"}, {"EventMessage", "string"}, {"Dvc", "string"}, {"DvcId", "string"}, {"DvcIdType", "string"}}
	if schema == ASIMAuditEvent {
		cols = append(cols, [][2]string{{"Operation", "string"}, {"Object", "string"}, {"ObjectId", "string"},
			{"ObjectType", "string"}, {"NewValue", "string"}}...)
	}
	cols = append(cols, [][2]string{{"ActorUsername", "string"}, {"ActorUserId", "string"}, {"ActorUserIdType", "string"},
		{"ActorUserType", "string"}, {"ActingAppName", "string"}, {"ActingAppId", "string"}}...)
	if schema == ASIMAuthentication {
		cols = append(cols, [][2]string{{"TargetUsername", "string"}, {"TargetUserId", "string"}, {"TargetUserIdType", "string"},
			{"TargetUserType", "string"}, {"TargetSessionId", "string"}, {"TargetHostname", "string"}, {"LogonMethod", "string"},
			{"LogonProtocol", "string"}}...)
	}
	return append(cols, [][2]string{{"TargetAppName", "string"}, {"TargetAppId", "string"}, {"TargetAppType", "string"},
		{"SrcIpAddr", "string"}, {"SrcGeoCity", "string"}, {"SrcGeoCountry", "string"}, {"HttpUserAgent", "string"},
		{"AdditionalFields", "dynamic"}}...)
}

func asimRowOf(provider string, in input) (asimRow, error) {
	switch provider {
	case ProviderPingOne:
		return pingoneASIM(in), nil
	case ProviderCyberArk:
		return cyberarkASIM(in), nil
	case ProviderOkta:
		return oktaASIM(in), nil
	case ProviderEntraDirectoryAudits:
		return entraAuditASIM(in), nil
	case ProviderEntraSignIns:
		return entraSignInASIM(in), nil
	case ProviderEntraProvisioning:
		return entraProvisioningASIM(in), nil
	}
	return asimRow{}, fmt.Errorf("normalize asim: %q event: %w", provider, ErrUnknownProvider)
}

// asimRow is one ASIM row before it is written; byte slices are raw
// string contents of the provider event.
type asimRow struct {
	auth, logoff    bool
	time            int64
	status          int
	severity        int
	vendor, product string
	originalType    []byte // the provider's event code
	codeText        string // the event code when the provider has none in the event
	tenant          []byte // the tenant the event names, when the envelope has none
	originalUID     []byte
	message         []byte
	resultDetails   string // one of the schema's values
	originalDetails []byte // the provider's own result text
	// AuditEvent
	operation        []byte
	eventType        string
	object, objectID []byte
	objectType       string
	newValue         []byte
	// actor and target
	actorName, actorID []byte
	actorType          string
	actingApp          []byte
	actingAppID        []byte
	targetName         []byte
	targetID           []byte
	targetType         string
	targetApp          []byte
	targetAppID        []byte
	targetSession      []byte
	targetHost         []byte
	srcIP, srcCity     []byte
	srcCountry, ua     []byte
	logonMethod        string
	logonProtocol      string
}

// append writes the row.
func (w *asimRow) append(b []byte, in input) []byte {
	b = append(b, '{')
	b = key(b, "TimeGenerated")
	b = appendTimeText(b, w.time)
	b = key(b, "EventStartTime")
	b = appendTimeText(b, w.time)
	b = key(b, "EventEndTime")
	b = appendTimeText(b, w.time)
	b = putInt(b, "EventCount", 1)
	if w.auth {
		t := "Logon"
		if w.logoff {
			t = "Logoff"
		}
		b = putStr(b, "EventType", t)
		b = putStr(b, "EventSchema", ASIMAuthentication)
		b = putStr(b, "EventSchemaVersion", asimAuthenticationVersion)
	} else {
		b = putStr(b, "EventType", w.eventType)
		b = putStr(b, "EventSchema", ASIMAuditEvent)
		b = putStr(b, "EventSchemaVersion", asimAuditEventVersion)
	}
	switch w.status {
	case statusSuccess:
		b = putStr(b, "EventResult", "Success")
	case statusFailure:
		b = putStr(b, "EventResult", "Failure")
		if w.resultDetails == "" && w.auth {
			w.resultDetails = "Other"
		}
	default:
		b = putStr(b, "EventResult", "NA")
	}
	if w.auth {
		b = putStr(b, "EventResultDetails", w.resultDetails)
	} else {
		// AuditEvent enumerates no result details: the provider's text.
		b = putRaw(b, "EventResultDetails", w.originalDetails)
	}
	b = putRaw(b, "EventOriginalResultDetails", w.originalDetails)
	b = putStr(b, "EventSeverity", [...]string{0: "Informational", 1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "High", 6: "High"}[min(w.severity, 6)])
	b = putStr(b, "EventVendor", w.vendor)
	b = putStr(b, "EventProduct", w.product)
	if len(w.originalType) > 0 {
		b = putRaw(b, "EventOriginalType", w.originalType)
	} else {
		b = putStr(b, "EventOriginalType", w.codeText)
	}
	b = putID(b, "EventOriginalUid", in, w.originalUID)
	b = putRaw(b, "EventMessage", w.message)
	b = putStr(b, "Dvc", w.product)
	switch {
	case in.tenant != "":
		b = putStr(b, "DvcId", in.tenant)
		b = putStr(b, "DvcIdType", "Other")
	case len(w.tenant) > 0:
		b = putRaw(b, "DvcId", w.tenant)
		b = putStr(b, "DvcIdType", "Other")
	}
	if !w.auth {
		switch {
		case len(w.operation) > 0:
			b = putRaw(b, "Operation", w.operation)
		case len(w.originalType) > 0:
			b = putRaw(b, "Operation", w.originalType)
		case w.codeText != "":
			b = putStr(b, "Operation", w.codeText)
		default:
			b = putStr(b, "Operation", "Unknown")
		}
		b = putRaw(b, "Object", w.object)
		b = putRaw(b, "ObjectId", w.objectID)
		b = putStr(b, "ObjectType", w.objectType)
		b = putRaw(b, "NewValue", w.newValue)
	}
	b = putRaw(b, "ActorUsername", w.actorName)
	b = putRaw(b, "ActorUserId", w.actorID)
	if len(w.actorID) > 0 {
		b = putStr(b, "ActorUserIdType", "Other")
	}
	if len(w.actorName) > 0 || len(w.actorID) > 0 {
		b = putStr(b, "ActorUserType", w.actorType)
	}
	b = putRaw(b, "ActingAppName", w.actingApp)
	b = putRaw(b, "ActingAppId", w.actingAppID)
	if w.auth {
		b = putRaw(b, "TargetUsername", w.targetName)
		b = putRaw(b, "TargetUserId", w.targetID)
		if len(w.targetID) > 0 {
			b = putStr(b, "TargetUserIdType", "Other")
		}
		if len(w.targetName) > 0 || len(w.targetID) > 0 {
			b = putStr(b, "TargetUserType", w.targetType)
		}
		b = putRaw(b, "TargetSessionId", w.targetSession)
		b = putRaw(b, "TargetHostname", w.targetHost)
		b = putStr(b, "LogonMethod", w.logonMethod)
		b = putStr(b, "LogonProtocol", w.logonProtocol)
	}
	b = putRaw(b, "TargetAppName", w.targetApp)
	b = putRaw(b, "TargetAppId", w.targetAppID)
	if len(w.targetApp) > 0 || len(w.targetAppID) > 0 {
		b = putStr(b, "TargetAppType", "SaaS application")
	}
	b = putRaw(b, "SrcIpAddr", w.srcIP)
	b = putRaw(b, "SrcGeoCity", w.srcCity)
	b = putRaw(b, "SrcGeoCountry", w.srcCountry)
	b = putRaw(b, "HttpUserAgent", w.ua)
	b = jsonscan.AppendCompact(key(b, "AdditionalFields"), in.data)
	return append(b, '}')
}

// appendTimeText appends Unix milliseconds as a quoted RFC 3339 time.
func appendTimeText(b []byte, ms int64) []byte {
	b = append(b, '"')
	b = time.UnixMilli(ms).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	return append(b, '"')
}

// auditEventType maps an OCSF route to the AuditEvent EventType.
func auditEventType(rt route) string {
	switch rt.class {
	case classAccountChange:
		switch rt.activity {
		case acCreate:
			return "Create"
		case acDelete:
			return "Delete"
		case acEnable, acUnlock, acMFAEnable:
			return "Enable"
		case acDisable, acLock, acMFADisable:
			return "Disable"
		}
		return "Set"
	case classGroupManagement:
		switch rt.activity {
		case gmCreate:
			return "Create"
		case gmDelete:
			return "Delete"
		}
		return "Set"
	case classUserAccess:
		return "Set"
	case classEntityManagement, classAPIActivity:
		switch rt.activity {
		case emCreate:
			return "Create"
		case emRead:
			return "Read"
		case emUpdate:
			return "Set"
		case emDelete:
			return "Delete"
		}
		if rt.class == classEntityManagement {
			switch rt.activity {
			case 8, 10, 13:
				return "Enable"
			case 9, 11, 12:
				return "Disable"
			}
		}
	}
	return "Other"
}

// objectType maps a provider object type to the AuditEvent ObjectType.
func objectType(t []byte) string {
	switch {
	case len(t) == 0:
		return "Other"
	case containsFold(t, "user") || containsFold(t, "group") || containsFold(t, "device") || equalFold(t, "Account"):
		return "Directory Service Object"
	case containsFold(t, "app") || containsFold(t, "client") || containsFold(t, "service") || equalFold(t, "Safe"):
		return "Cloud Resource"
	case containsFold(t, "polic"):
		return "Policy Rule"
	case containsFold(t, "role"):
		return "Configuration Atom"
	}
	return "Other"
}

// authFailureDetails maps a provider's failure text to the Authentication
// EventResultDetails value.
func authFailureDetails(reason []byte) string {
	switch {
	case len(reason) == 0:
		return ""
	case containsFold(reason, "mfa") || containsFold(reason, "strong authentication") || containsFold(reason, "challenge"):
		return "MFA not satisfied"
	case containsFold(reason, "password") && containsFold(reason, "expired"):
		return "Password expired"
	case containsFold(reason, "expired") && containsFold(reason, "session"):
		return "Session expired"
	case containsFold(reason, "locked") || containsFold(reason, "lock_out") || containsFold(reason, "locked_out"):
		return "User locked"
	case containsFold(reason, "disabled") || containsFold(reason, "deactivated"):
		return "User disabled"
	case containsFold(reason, "username or password") || containsFold(reason, "invalid_credentials") ||
		containsFold(reason, "bad password") || containsFold(reason, "invalid credentials") || containsFold(reason, "validating credentials"):
		return "No such user or password"
	case containsFold(reason, "policy") || containsFold(reason, "access control") || containsFold(reason, "not a member") ||
		containsFold(reason, "not allowed"):
		return "Logon violates policy"
	}
	return "Other"
}

func pingoneASIM(in input) asimRow {
	e := decodePingOne(&in)
	rt := e.route()
	w := asimRow{auth: rt.class == classAuthentication, time: timeMS(e.recordedAt, in.time), status: e.status(),
		severity: sevInformational, vendor: "Ping Identity", product: "PingOne", originalType: e.actionType,
		originalUID: e.id, message: e.resultDesc, operation: e.actionType, eventType: auditEventType(rt), tenant: e.tenant(""),
		actorName: e.user.name, actorID: e.user.id, actorType: "Regular", actingApp: e.client.name, actingAppID: e.client.id,
		srcIP: e.ip, ua: e.userAgent}
	if !isIP(w.srcIP) {
		w.srcIP = nil
	}
	if w.auth {
		s := e.subject()
		w.targetName, w.targetID, w.targetType = s.name, s.id, "Regular"
		w.targetApp, w.targetAppID, w.targetSession = e.client.name, e.client.id, e.sessionID
		w.actingApp, w.actingAppID = nil, nil
		w.logonMethod = "Username & password"
		if e.failed() {
			w.resultDetails, w.originalDetails = authFailureDetails(e.resultDesc), e.resultDesc
		}
		return w
	}
	obj := e.resOther
	for _, p := range [...]party{e.resGroup, e.resUser} {
		if obj.empty() {
			obj = p
		}
	}
	w.object, w.objectID, w.objectType = obj.name, obj.id, objectType(obj.typ)
	if rt.class == classUserAccess {
		w.newValue = e.role()
	}
	if e.failed() {
		w.originalDetails = e.resultDesc
	}
	return w
}

func cyberarkASIM(in input) asimRow {
	e := decodeCyberArk(&in)
	rt := e.route()
	ms, ok := integer(e.timestamp)
	if !ok {
		ms = timeMS(nil, in.time)
	}
	// Vendor and product as the Sentinel ASimAuthenticationCyberArkAudit
	// parser sets them.
	w := asimRow{auth: rt.class == classAuthentication && rt.activity != activityOther, time: ms, status: e.status(),
		severity: e.severity(), vendor: "CyberArk", product: "Audit", originalType: e.auditCode, originalUID: e.uuid, tenant: e.tenantID,
		message: e.message, operation: e.action, eventType: auditEventType(rt),
		actorName: e.username, actorID: e.userID, actorType: cyberarkUserType(e.identityType), srcIP: e.srcIP(),
		srcCity: e.cdCity, srcCountry: e.cdCountry}
	if w.auth {
		w.logoff = rt.activity == authLogoff
		w.targetName, w.targetID, w.targetType = e.username, e.userID, cyberarkUserType(e.identityType)
		w.actorName, w.actorID = nil, nil
		w.targetSession, w.targetApp = e.sessionID, e.serviceName
		if _, remote := e.authKind(); remote {
			w.targetHost = e.target
			w.logonProtocol = "RemoteInteractive"
		}
		switch mfa, known := e.mfa(); {
		case known && mfa:
			w.logonMethod = "Multi factor authentication"
		case known:
			w.logonMethod = "Username & password"
		}
		if e.failed() {
			r := e.cdFailure
			if len(r) == 0 {
				r = e.message
			}
			w.resultDetails, w.originalDetails = authFailureDetails(r), r
		}
		return w
	}
	obj := e.entity()
	w.object, w.objectID, w.objectType = obj.name, obj.id, objectType(obj.typ)
	if rt.class == classUserAccess || rt.class == classAccountChange {
		t := e.targetUser()
		w.object, w.objectID, w.objectType = t.name, t.id, "Directory Service Object"
		w.newValue = e.cdRole
	}
	if e.failed() {
		w.originalDetails = e.message
	}
	return w
}

// cyberarkUserType maps identityType to an ASIM user type, as the
// ASimAuthenticationCyberArkAudit parser does.
func cyberarkUserType(t []byte) string {
	switch {
	case equalFold(t, "HUMAN"):
		return "Regular"
	case equalFold(t, "NON_HUMAN"):
		return "Machine"
	}
	return "Other"
}

func oktaASIM(in input) asimRow {
	e := decodeOkta(&in)
	rt := e.route()
	w := asimRow{auth: rt.class == classAuthentication, time: timeMS(e.published, in.time), status: e.status(),
		severity: e.severityID(), vendor: "Okta", product: "Okta", originalType: e.eventType, originalUID: e.uuid,
		message: e.displayMessage, operation: e.eventType, eventType: auditEventType(rt),
		actorName: e.actor.name, actorID: e.actor.id, actorType: "Regular", srcIP: e.ip, srcCity: e.city,
		srcCountry: e.country, ua: e.userAgent}
	if !isIP(w.srcIP) {
		w.srcIP = nil
	}
	if !e.actorIsPerson {
		w.actorName, w.actorID, w.actingApp, w.actingAppID = nil, nil, e.actor.display, e.actor.id
	}
	if w.auth {
		w.logoff = rt.activity == authLogoff
		w.targetName, w.targetID, w.targetType = e.actor.name, e.actor.id, "Regular"
		w.actorName, w.actorID = nil, nil
		w.targetSession = e.sessionID
		w.targetApp, w.targetAppID = e.tApp.display, e.tApp.id
		if containsFold(e.eventType, "mfa") {
			w.logonMethod = "Multi factor authentication"
		}
		if e.status() == statusFailure {
			w.resultDetails, w.originalDetails = authFailureDetails(e.reason), e.reason
		}
		return w
	}
	obj := e.tOther
	for _, p := range [...]party{e.tApp, e.tGroup, e.tUser} {
		if obj.empty() {
			obj = p
		}
	}
	if len(obj.display) > 0 {
		obj.name = obj.display
	}
	w.object, w.objectID, w.objectType = obj.name, obj.id, objectType(obj.typ)
	if e.status() == statusFailure {
		w.originalDetails = e.reason
	}
	return w
}

func entraAuditASIM(in input) asimRow {
	e := decodeEntraAudit(&in)
	rt := e.route()
	w := asimRow{time: timeMS(e.activityTime, in.time), status: entraStatus(e.result), severity: sevInformational,
		vendor: "Microsoft", product: "Entra ID", originalType: e.activity, originalUID: e.id, message: e.activity,
		operation: e.activity, eventType: auditEventType(rt), actorName: e.user.name, actorID: e.user.id, actorType: "Regular",
		srcIP: e.userIP, ua: e.userAgent}
	if e.user.empty() {
		w.actingApp, w.actingAppID = e.appName, e.appID
	}
	if !isIP(w.srcIP) {
		w.srcIP = nil
	}
	obj := e.tFirst
	if len(obj.display) > 0 && string(obj.typ) != "User" {
		obj.name = obj.display
	}
	w.object, w.objectID, w.objectType = obj.name, obj.id, objectType(obj.typ)
	if rt.class == classUserAccess {
		w.newValue = e.roleName
	}
	if w.status == statusFailure {
		w.originalDetails = e.resultReason
	}
	return w
}

func entraSignInASIM(in input) asimRow {
	e := decodeEntraSignIn(&in)
	w := asimRow{auth: !e.user.empty(), time: timeMS(e.created, in.time), status: e.status(), severity: sevInformational,
		vendor: "Microsoft", product: "Entra ID", codeText: "signIn", originalUID: e.id,
		targetName: e.user.name, targetID: e.user.id, targetType: "Regular", targetApp: e.resourceName, targetAppID: e.resourceID,
		actingApp: e.appName, actingAppID: e.appID, srcIP: e.ip, srcCity: e.city, srcCountry: e.country, ua: e.userAgent,
		targetSession: e.sessionID, eventType: "Other", object: e.appName, objectType: "Cloud Resource"}
	if !isIP(w.srcIP) {
		w.srcIP = nil
	}
	if equalFold(e.authRequirement, "multiFactorAuthentication") {
		w.logonMethod = "Multi factor authentication"
	}
	if w.status == statusFailure {
		w.resultDetails, w.originalDetails, w.message = authFailureDetails(e.failureReason), e.failureReason, e.failureReason
	}
	return w
}

func entraProvisioningASIM(in input) asimRow {
	e := decodeEntraProvisioning(&in)
	rt := e.route()
	s := e.subject()
	w := asimRow{time: timeMS(e.at, in.time), status: entraStatus(e.status), severity: sevInformational,
		vendor: "Microsoft", product: "Entra ID", originalType: e.action, originalUID: e.id, message: e.errorReason,
		operation: e.action, eventType: auditEventType(rt), actingApp: e.spName, actingAppID: e.spID, tenant: e.tenantID,
		object: s.name, objectID: s.id, objectType: objectType(s.typ), targetApp: e.targetSystem, targetAppID: e.targetSystID,
		originalDetails: e.errorReason}
	return w
}
