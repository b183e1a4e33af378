package syslog

import (
	"net/netip"
	"strings"
)

// fields are the parts of a provider event that the syslog header, CEF
// and LEEF carry, read from the provider's JSON with the scanner of
// jsonscan.go; a value of an unexpected type reads as empty and leaves the
// other fields alone.
type fields struct {
	action      string // the provider's action code: MSGID, CEF signature id, LEEF EventID
	name        string // what happened, in words
	outcome     string // success, failure or "" (unknown)
	reason      string // why it failed
	severity    int    // 0 to 10, CEF's scale
	category    string
	actorName   string
	actorID     string
	targetName  string
	targetID    string
	targetType  string
	service     string // the application or system acted on
	srcIP       string // a valid IP address or ""
	userAgent   string
	correlation string
}

// product names the provider in CEF's and LEEF's headers.
type product struct{ vendor, product string }

// mappingVersion is the CEF Device Version and LEEF Product Version: the
// version of this mapping, raised whenever a field moves, so that a parser
// can tell.
const mappingVersion = "1.0"

// productOf returns the vendor and product of a provider's events.
func productOf(provider string) product {
	switch provider {
	case "pingone":
		return product{"Ping Identity", "PingOne"}
	case "cyberark":
		return product{"CyberArk", "Identity Security Platform"}
	case "okta":
		return product{"Okta", "Okta Identity Cloud"}
	case "entra_directory_audits", "entra_sign_ins", "entra_provisioning":
		return product{"Microsoft", "Entra ID"}
	}
	return product{"auditrelay", provider}
}

// Severities on CEF's 0 to 10 scale.
const (
	sevLow    = 3
	sevMedium = 5
	sevRaised = 6
	sevHigh   = 8
)

// fieldsOf reads a provider event's fields from its compact JSON; an
// unknown provider gives none.
func fieldsOf(provider string, data []byte) fields {
	switch provider {
	case "pingone":
		return pingOneFields(data)
	case "cyberark":
		return cyberArkFields(data)
	case "okta":
		return oktaFields(data)
	case "entra_directory_audits":
		return entraAuditFields(data)
	case "entra_sign_ins":
		return entraSignInFields(data)
	case "entra_provisioning":
		return entraProvisioningFields(data)
	}
	return fields{severity: sevLow}
}

// pingOneFields maps a PingOne activity: action.type, action.description,
// result.status and .description, actors.user (or actors.client),
// resources[0], source.ipAddress and .userAgent, correlationId.
func pingOneFields(data []byte) fields {
	f := fields{severity: sevLow}
	var actorsV, resourcesV, resultV []byte
	for m := membersOf(data); m.next(); {
		switch string(m.key) {
		case "correlationId":
			f.correlation = str(m.val)
		case "actors":
			actorsV = m.val
		case "source":
			f.srcIP, f.userAgent = ipOrEmpty(str(get(m.val, "ipAddress"))), str(get(m.val, "userAgent"))
		case "action":
			f.action, f.name = str(get(m.val, "type")), str(get(m.val, "description"))
		case "resources":
			resourcesV = m.val
		case "result":
			resultV = m.val
		}
	}
	if f.name == "" {
		f.name = f.action
	}
	switch strings.ToUpper(str(get(resultV, "status"))) {
	case "SUCCESS":
		f.outcome = "success"
	case "FAILED":
		f.outcome, f.reason, f.severity = "failure", str(get(resultV, "description")), sevRaised
	}
	user, client := get(actorsV, "user"), get(actorsV, "client")
	f.actorID, f.actorName = str(get(user, "id")), str(get(user, "name"))
	if f.actorID == "" && f.actorName == "" {
		f.actorID, f.actorName = str(get(client, "id")), str(get(client, "name"))
	}
	f.service = str(get(client, "name"))
	if r := first(resourcesV); r != nil {
		f.targetID, f.targetName, f.targetType = str(get(r, "id")), str(get(r, "name")), str(get(r, "type"))
	}
	return f
}

// cyberArkFields maps a CyberArk audit event: auditCode, action (or
// message), auditType, applicationCode, username and userId, the target
// user, account, safe or host, source when it is an IP address,
// serviceName, correlationId (or sessionId).
func cyberArkFields(data []byte) fields {
	f := fields{severity: sevLow}
	var auditType, message, sessionID, accountID, accountName, targetAccount, safe, target string
	var custom []byte
	for m := membersOf(data); m.next(); {
		switch string(m.key) {
		case "auditCode":
			f.action = str(m.val)
		case "action":
			f.name = str(m.val)
		case "applicationCode":
			f.category = str(m.val)
		case "auditType":
			auditType = str(m.val)
		case "username":
			f.actorName = str(m.val)
		case "userId":
			f.actorID = str(m.val)
		case "source":
			f.srcIP = ipOrEmpty(str(m.val))
		case "serviceName":
			f.service = str(m.val)
		case "message":
			message = str(m.val)
		case "correlationId":
			f.correlation = str(m.val)
		case "sessionId":
			sessionID = str(m.val)
		case "accountId":
			accountID = str(m.val)
		case "accountName":
			accountName = str(m.val)
		case "targetAccount":
			targetAccount = str(m.val)
		case "safe":
			safe = str(m.val)
		case "target":
			target = str(m.val)
		case "customData":
			custom = m.val
		}
	}
	if f.correlation == "" {
		f.correlation = sessionID
	}
	if f.name == "" {
		f.name = message
	}
	switch strings.ToLower(auditType) {
	case "info":
		f.outcome = "success"
	case "warning":
		f.outcome, f.severity = "success", sevMedium
	case "failure", "error", "system error":
		f.outcome, f.severity, f.reason = "failure", sevRaised+1, message
	}
	cdID, cdName := str(get(custom, "user_id")), str(get(custom, "user_name"))
	switch {
	case cdID != "" || cdName != "":
		f.targetID, f.targetName, f.targetType = cdID, cdName, "User"
	case accountID != "" || targetAccount != "" || accountName != "":
		f.targetID, f.targetName, f.targetType = accountID, firstOf(accountName, targetAccount), "Account"
	case safe != "":
		f.targetName, f.targetType = safe, "Safe"
	case target != "":
		f.targetName, f.targetType = target, "Host"
	}
	return f
}

// oktaFields maps an Okta LogEvent: eventType, displayMessage, severity,
// outcome.result and .reason, actor, target[0], client.ipAddress and
// .userAgent.rawUserAgent, transaction.id.
func oktaFields(data []byte) fields {
	f := fields{severity: sevLow}
	var severity string
	var outcome, target []byte
	for m := membersOf(data); m.next(); {
		switch string(m.key) {
		case "eventType":
			f.action = str(m.val)
		case "displayMessage":
			f.name = str(m.val)
		case "severity":
			severity = str(m.val)
		case "actor":
			f.actorID, f.actorName = str(get(m.val, "id")), firstOf(str(get(m.val, "alternateId")), str(get(m.val, "displayName")))
		case "client":
			f.srcIP, f.userAgent = ipOrEmpty(str(get(m.val, "ipAddress"))), str(get(get(m.val, "userAgent"), "rawUserAgent"))
		case "outcome":
			outcome = m.val
		case "transaction":
			f.correlation = str(get(m.val, "id"))
		case "target":
			target = m.val
		}
	}
	if f.name == "" {
		f.name = f.action
	}
	if i := strings.IndexByte(f.action, '.'); i > 0 {
		f.category = f.action[:i]
	}
	switch strings.ToUpper(str(get(outcome, "result"))) {
	case "SUCCESS", "ALLOW":
		f.outcome = "success"
	case "FAILURE", "DENY":
		f.outcome, f.reason, f.severity = "failure", str(get(outcome, "reason")), sevRaised
	}
	switch strings.ToUpper(severity) {
	case "DEBUG":
		f.severity = min(f.severity, 1)
	case "WARN":
		f.severity = max(f.severity, sevRaised)
	case "ERROR":
		f.severity = max(f.severity, sevHigh)
	}
	if t := first(target); t != nil {
		alt, display := str(get(t, "alternateId")), str(get(t, "displayName"))
		f.targetID, f.targetName, f.targetType = str(get(t, "id")), firstOf(alt, display), str(get(t, "type"))
		if f.targetType == "AppInstance" {
			f.service = firstOf(display, alt)
		}
	}
	return f
}

// entraAuditFields maps a Graph directoryAudit: activityDisplayName,
// category, result and resultReason, initiatedBy.user (or .app),
// targetResources[0], loggedByService, correlationId.
func entraAuditFields(data []byte) fields {
	f := fields{severity: sevLow}
	var result, reason string
	var initiated, targets []byte
	for m := membersOf(data); m.next(); {
		switch string(m.key) {
		case "activityDisplayName":
			f.action = str(m.val)
		case "category":
			f.category = str(m.val)
		case "correlationId":
			f.correlation = str(m.val)
		case "loggedByService":
			f.service = str(m.val)
		case "result":
			result = str(m.val)
		case "resultReason":
			reason = str(m.val)
		case "initiatedBy":
			initiated = m.val
		case "targetResources":
			targets = m.val
		}
	}
	f.name = f.action
	switch strings.ToLower(result) {
	case "success":
		f.outcome = "success"
	case "failure", "timeout":
		f.outcome, f.reason, f.severity = "failure", reason, sevRaised
	}
	user, app := get(initiated, "user"), get(initiated, "app")
	if id, upn := str(get(user, "id")), str(get(user, "userPrincipalName")); id != "" || upn != "" {
		f.actorID, f.actorName, f.srcIP = id, upn, ipOrEmpty(str(get(user, "ipAddress")))
	} else {
		f.actorID, f.actorName = str(get(app, "servicePrincipalId")), str(get(app, "displayName"))
	}
	if t := first(targets); t != nil {
		f.targetID, f.targetType = str(get(t, "id")), str(get(t, "type"))
		f.targetName = firstOf(str(get(t, "userPrincipalName")), str(get(t, "displayName")))
	}
	return f
}

// entraSignInFields maps a Graph signIn: the action is "Sign-in
// activity"; status.errorCode (0: success) and .failureReason,
// userPrincipalName and userId, appDisplayName, ipAddress,
// deviceDetail.browser (or clientAppUsed), riskLevelDuringSignIn,
// correlationId.
func entraSignInFields(data []byte) fields {
	f := fields{action: "Sign-in activity", name: "Sign-in activity", category: "SignInLogs", severity: sevLow}
	var status []byte
	var risk, browser, clientApp string
	for m := membersOf(data); m.next(); {
		switch string(m.key) {
		case "userPrincipalName":
			f.actorName = str(m.val)
		case "userId":
			f.actorID = str(m.val)
		case "appDisplayName":
			f.service = str(m.val)
		case "ipAddress":
			f.srcIP = ipOrEmpty(str(m.val))
		case "clientAppUsed":
			clientApp = str(m.val)
		case "correlationId":
			f.correlation = str(m.val)
		case "riskLevelDuringSignIn":
			risk = str(m.val)
		case "status":
			status = m.val
		case "deviceDetail":
			browser = str(get(m.val, "browser"))
		}
	}
	f.userAgent = firstOf(browser, clientApp)
	if code, ok := integer(get(status, "errorCode")); ok {
		if code == 0 {
			f.outcome = "success"
		} else {
			f.outcome, f.reason, f.severity = "failure", str(get(status, "failureReason")), sevRaised
		}
	}
	switch strings.ToLower(risk) {
	case "medium":
		f.severity = max(f.severity, sevRaised)
	case "high":
		f.severity = max(f.severity, sevHigh)
	}
	return f
}

// entraProvisioningFields maps a Graph provisioningObjectSummary:
// provisioningAction, provisioningStatusInfo.status and
// .errorInformation.reason, initiatedBy, targetIdentity, targetSystem,
// changeId.
func entraProvisioningFields(data []byte) fields {
	f := fields{category: "ProvisioningLogs", severity: sevLow, name: "Provisioning"}
	var status []byte
	for m := membersOf(data); m.next(); {
		switch string(m.key) {
		case "provisioningAction":
			f.action = str(m.val)
		case "changeId":
			f.correlation = str(m.val)
		case "provisioningStatusInfo":
			status = m.val
		case "initiatedBy":
			f.actorID, f.actorName = str(get(m.val, "id")), str(get(m.val, "displayName"))
		case "targetSystem":
			f.service = str(get(m.val, "displayName"))
		case "targetIdentity":
			f.targetID, f.targetName, f.targetType = str(get(m.val, "id")), str(get(m.val, "displayName")), str(get(m.val, "identityType"))
		}
	}
	if f.action != "" {
		f.name = "Provisioning " + f.action
	}
	switch strings.ToLower(str(get(status, "status"))) {
	case "success":
		f.outcome = "success"
	case "failure":
		f.outcome, f.reason, f.severity = "failure", str(get(get(status, "errorInformation"), "reason")), sevRaised
	}
	return f
}

// ipOrEmpty returns s when it is an IP address, "" otherwise (CyberArk
// names a component there for vault events, for instance).
func ipOrEmpty(s string) string {
	if _, err := netip.ParseAddr(s); err != nil {
		return ""
	}
	return s
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
