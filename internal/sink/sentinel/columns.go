package sentinel

import "github.com/auditrelay/auditrelay/internal/normalize"

// Column is one column of a DCR stream declaration or a Log Analytics
// table.
type Column struct {
	Name string `json:"name"`
	// Type is a Log Analytics type: string, datetime, dynamic, boolean,
	// int, long, real.
	Type        string `json:"type"`
	Description string `json:"description,omitempty"`
}

// StreamColumns returns the columns of the input stream a format sends,
// in the order the encoder writes them. It returns nil for an unknown
// format.
func StreamColumns(format string) []Column {
	switch format {
	case FormatPingOneV2:
		// Exactly the stream Custom-PingOne_AuditActivitiesV2_CL of the
		// Sentinel PingOne connector's DCR.
		return []Column{
			{Name: "id", Type: "string"},
			{Name: "correlationId", Type: "string"},
			{Name: "recordedAt", Type: "datetime"},
			{Name: "createdAt", Type: "datetime"},
			{Name: "internalCorrelation", Type: "dynamic"},
			{Name: "actors", Type: "dynamic"},
			{Name: "source", Type: "dynamic"},
			{Name: "action", Type: "dynamic"},
			{Name: "resources", Type: "dynamic"},
			{Name: "result", Type: "dynamic"},
		}
	case FormatAuditRelay:
		return auditRelayColumns()
	case FormatCyberArkAudit:
		return cyberArkAuditStreamColumns()
	case FormatOktaV2:
		return oktaV2StreamColumns()
	case FormatASIMAudit, FormatASIMAuthentication:
		return asimColumns(format)
	}
	return nil
}

// asimSchema returns the ASIM schema of an ASIM format.
func asimSchema(format string) string {
	if format == FormatASIMAuthentication {
		return normalize.ASIMAuthentication
	}
	return normalize.ASIMAuditEvent
}

// asimColumns are the columns of an ASIM format's stream and table: the
// ASIM schema's columns the rows write.
func asimColumns(format string) []Column {
	var cols []Column
	for _, c := range normalize.ASIMColumns(asimSchema(format)) {
		cols = append(cols, Column{Name: c[0], Type: c[1]})
	}
	return cols
}

// cyberArkAuditStreamColumns are the columns of the input stream
// Custom-CyberArk_AuditEvents, in the order the CyberArkAudit solution's
// DCR declares them: the CyberArk audit event's own field names and types.
//
// Source: Azure/Azure-Sentinel, Solutions/CyberArkAudit/Package/
// mainTemplate.json of solution version 3.2.0 (resource CyberArkAuditDCR,
// streamDeclarations), and Solutions/CyberArkAudit/Data Connectors/
// CyberArkAudit_CCP/CyberArkAudit_DCR.json. timestamp is declared int there
// (the earlier stream Custom-CyberArkAuditV2 declared long); the encoder
// sends the event's epoch milliseconds either way.
func cyberArkAuditStreamColumns() []Column {
	return []Column{
		{Name: "uuid", Type: "string"},
		{Name: "tenantId", Type: "string"},
		{Name: "timestamp", Type: "int"},
		{Name: "username", Type: "string"},
		{Name: "applicationCode", Type: "string"},
		{Name: "auditCode", Type: "string"},
		{Name: "auditType", Type: "string"},
		{Name: "userId", Type: "string"},
		{Name: "action", Type: "string"},
		{Name: "source", Type: "string"},
		{Name: "actionType", Type: "string"},
		{Name: "component", Type: "string"},
		{Name: "serviceName", Type: "string"},
		{Name: "accessMethod", Type: "string"},
		{Name: "accountId", Type: "string"},
		{Name: "target", Type: "string"},
		{Name: "command", Type: "string"},
		{Name: "sessionId", Type: "string"},
		{Name: "message", Type: "string"},
		{Name: "customData", Type: "dynamic"},
		{Name: "cloudProvider", Type: "string"},
		{Name: "cloudWorkspacesAndRoles", Type: "dynamic"},
		{Name: "cloudIdentities", Type: "string"},
		{Name: "cloudAssets", Type: "string"},
		{Name: "safe", Type: "string"},
		{Name: "accountName", Type: "string"},
		{Name: "targetPlatform", Type: "string"},
		{Name: "targetAccount", Type: "string"},
		{Name: "identityType", Type: "string"},
		{Name: "correlationId", Type: "string"},
	}
}

// cyberArkAuditTableColumns are the columns of CyberArk_AuditEvents_CL, in
// the order the CyberArkAudit solution's table declares them. The
// solution's transform keeps every stream column under its own name except
// tenantId (CyberArkTenantId, TenantId being reserved) and accountId (not a
// table column: dropped), writes the two dynamic columns as strings, and
// adds TimeGenerated from timestamp.
//
// Source: Azure/Azure-Sentinel, Solutions/CyberArkAudit/Package/
// mainTemplate.json of solution version 3.2.0 (resource
// CyberArk_AuditEvents_CL), and Solutions/CyberArkAudit/Data Connectors/
// CyberArkAudit_CCP/CyberArkAudit_Tables.json.
func cyberArkAuditTableColumns() []Column {
	return []Column{
		{Name: "TimeGenerated", Type: "datetime", Description: "The event's timestamp (epoch milliseconds)"},
		{Name: "CyberArkTenantId", Type: "string", Description: "tenantId: the CyberArk tenant"},
		{Name: "accountName", Type: "string"},
		{Name: "action", Type: "string"},
		{Name: "accessMethod", Type: "string"},
		{Name: "actionType", Type: "string"},
		{Name: "applicationCode", Type: "string"},
		{Name: "auditCode", Type: "string"},
		{Name: "auditType", Type: "string"},
		{Name: "correlationId", Type: "string"},
		{Name: "cloudAssets", Type: "string"},
		{Name: "cloudIdentities", Type: "string"},
		{Name: "cloudProvider", Type: "string"},
		{Name: "cloudWorkspacesAndRoles", Type: "string", Description: "JSON text"},
		{Name: "command", Type: "string"},
		{Name: "component", Type: "string"},
		{Name: "customData", Type: "string", Description: "JSON text"},
		{Name: "identityType", Type: "string"},
		{Name: "message", Type: "string"},
		{Name: "target", Type: "string"},
		{Name: "timestamp", Type: "int"},
		{Name: "targetPlatform", Type: "string"},
		{Name: "targetAccount", Type: "string"},
		{Name: "safe", Type: "string"},
		{Name: "sessionId", Type: "string"},
		{Name: "serviceName", Type: "string"},
		{Name: "source", Type: "string"},
		{Name: "userId", Type: "string"},
		{Name: "username", Type: "string"},
		{Name: "uuid", Type: "string"},
	}
}

// oktaSolution names the version of the Okta Single Sign-On solution the
// okta_v2 stream, table and transform are taken from.
//
// Source: Azure/Azure-Sentinel, Solutions/Okta Single Sign-On/Package/
// mainTemplate.json of solution version 3.1.11, commit
// 3911d2608b63a948e57c0edd400a698144b70ebf (resources oktassov2-ccp, the
// DCR, and OktaV2_CL, the table), checked against Solutions/Okta Single
// Sign-On/Data Connectors/OktaNativePollerConnectorV2/OktaSSOv2_DCR.json
// (commit 1095f2df5f2c8237174fcb9e78d891a11b3d676e), OktaSSOv2_Tables.json
// (commit f040568dc6f7e71df0fca85adcbd73a13ef768e6) and
// OktaSSOv2_PollingConfig.json (commit
// 0ad0c9ca9695195e8b2425fe155e0d81ac264a9e). Those connector files predate
// DomainName: since solution 3.0.8 the poller adds it to every event
// (addOnAttributes: the org's domain, such as example.okta.com), the
// stream declares it second and the table keeps it.
const oktaSolution = "Okta Single Sign-On 3.1.11"

// oktaV2StreamColumns are the columns of the input stream Custom-OktaSSO_CL,
// in the order the Okta Single Sign-On solution's DCR declares them: the
// top-level fields of an Okta LogEvent under their own names, and
// DomainName, which the solution's poller adds (see oktaSolution).
func oktaV2StreamColumns() []Column {
	return []Column{
		{Name: "uuid", Type: "string"},
		{Name: "DomainName", Type: "string"},
		{Name: "published", Type: "datetime"},
		{Name: "eventType", Type: "string"},
		{Name: "version", Type: "string"},
		{Name: "severity", Type: "string"},
		{Name: "legacyEventType", Type: "string"},
		{Name: "displayMessage", Type: "string"},
		{Name: "actor", Type: "dynamic"},
		{Name: "client", Type: "dynamic"},
		{Name: "outcome", Type: "dynamic"},
		{Name: "target", Type: "dynamic"},
		{Name: "transaction", Type: "dynamic"},
		{Name: "debugContext", Type: "dynamic"},
		{Name: "authenticationContext", Type: "dynamic"},
		{Name: "securityContext", Type: "dynamic"},
		{Name: "request", Type: "dynamic"},
	}
}

// oktaV2TableColumns are the columns of OktaV2_CL, in the order the Okta
// Single Sign-On solution's table declares them (see oktaSolution): the
// ASIM-style names its transform writes. SrcGeoLongtitude is the
// solution's spelling.
func oktaV2TableColumns() []Column {
	return []Column{
		{Name: "ActingAppName", Type: "string"},
		{Name: "ActingAppType", Type: "string"},
		{Name: "ActorDetailEntry", Type: "dynamic"},
		{Name: "ActorDisplayName", Type: "string"},
		{Name: "ActorSessionId", Type: "string"},
		{Name: "ActorUserId", Type: "string"},
		{Name: "ActorUserIdType", Type: "string"},
		{Name: "ActorUsername", Type: "string"},
		{Name: "ActorUsernameType", Type: "string"},
		{Name: "ActorUserType", Type: "string"},
		{Name: "AuthenticationContextAuthenticationProvider", Type: "string"},
		{Name: "AuthenticationContextAuthenticationStep", Type: "int"},
		{Name: "AuthenticationContextCredentialProvider", Type: "string"},
		{Name: "AuthenticationContextInterface", Type: "string"},
		{Name: "AuthenticationContextIssuerId", Type: "string"},
		{Name: "AuthenticationContextIssuerType", Type: "string"},
		{Name: "DebugData", Type: "dynamic"},
		{Name: "DomainName", Type: "string"},
		{Name: "DvcAction", Type: "string"},
		{Name: "EventMessage", Type: "string"},
		{Name: "EventOriginalResultDetails", Type: "string"},
		{Name: "EventOriginalType", Type: "string"},
		{Name: "EventOriginalUid", Type: "string"},
		{Name: "EventResult", Type: "string"},
		{Name: "EventSeverity", Type: "string"},
		{Name: "HttpUserAgent", Type: "string"},
		{Name: "LegacyEventType", Type: "string"},
		{Name: "LogonMethod", Type: "string"},
		{Name: "OriginalActorAlternateId", Type: "string"},
		{Name: "OriginalClientDevice", Type: "string"},
		{Name: "OriginalOutcomeResult", Type: "string"},
		{Name: "OriginalSeverity", Type: "string"},
		{Name: "OriginalTarget", Type: "dynamic"},
		{Name: "OriginalUserId", Type: "string"},
		{Name: "OriginalUserType", Type: "string"},
		{Name: "Request", Type: "dynamic"},
		{Name: "SecurityContextAsNumber", Type: "int"},
		{Name: "SecurityContextAsOrg", Type: "string"},
		{Name: "SecurityContextDomain", Type: "string"},
		{Name: "SecurityContextIsProxy", Type: "boolean"},
		{Name: "SrcDeviceType", Type: "string"},
		{Name: "SrcDvcId", Type: "string"},
		{Name: "SrcDvcOs", Type: "string"},
		{Name: "SrcGeoCity", Type: "string"},
		{Name: "SrcGeoCountry", Type: "string"},
		{Name: "SrcGeoLatitude", Type: "real"},
		{Name: "SrcGeoLongtitude", Type: "real"},
		{Name: "SrcGeoPostalCode", Type: "string"},
		{Name: "SrcGeoRegion", Type: "string"},
		{Name: "SrcIpAddr", Type: "string"},
		{Name: "SrcIsp", Type: "string"},
		{Name: "SrcZone", Type: "string"},
		{Name: "TimeGenerated", Type: "datetime"},
		{Name: "TransactionDetail", Type: "dynamic"},
		{Name: "TransactionId", Type: "string"},
		{Name: "TransactionType", Type: "string"},
		{Name: "Version", Type: "string"},
		{Name: "SrcDvcIdType", Type: "string"},
	}
}

// auditRelayColumns are the columns of the auditrelay format: stream and
// table alike.
func auditRelayColumns() []Column {
	return []Column{
		{Name: "TimeGenerated", Type: "datetime", Description: "When the event happened (the provider's event time), not when it was ingested"},
		{Name: "Id", Type: "string", Description: "The provider's event id"},
		{Name: "CorrelationId", Type: "string", Description: "Ties the request to its audit events"},
		{Name: "RecordedAt", Type: "datetime", Description: "PingOne recordedAt"},
		{Name: "CreatedAt", Type: "datetime", Description: "PingOne createdAt"},
		{Name: "Provider", Type: "string", Description: "The provider API, such as pingone"},
		{Name: "EnvironmentId", Type: "string", Description: "The provider tenant: the PingOne environment id"},
		{Name: "AuditRelaySource", Type: "string", Description: "The auditrelay source the event was read by"},
		{Name: "Href", Type: "string", Description: "The event's URL at the provider"},
		{Name: "ActionType", Type: "string", Description: "action.type, such as USER.ACCESS_ALLOWED"},
		{Name: "ActionDescription", Type: "string", Description: "action.description"},
		{Name: "Outcome", Type: "string", Description: "success, failure or unknown"},
		{Name: "ResultStatus", Type: "string", Description: "result.status"},
		{Name: "ResultDescription", Type: "string", Description: "result.description"},
		{Name: "ResultId", Type: "string", Description: "result.id"},
		{Name: "ClientId", Type: "string", Description: "actors.client.id"},
		{Name: "ClientName", Type: "string", Description: "actors.client.name"},
		{Name: "ClientType", Type: "string", Description: "actors.client.type"},
		{Name: "ClientEnvironmentId", Type: "string", Description: "actors.client.environment.id"},
		{Name: "ClientHref", Type: "string", Description: "actors.client.href"},
		{Name: "UserId", Type: "string", Description: "actors.user.id"},
		{Name: "UserName", Type: "string", Description: "actors.user.name"},
		{Name: "UserType", Type: "string", Description: "actors.user.type"},
		{Name: "UserEnvironmentId", Type: "string", Description: "actors.user.environment.id"},
		{Name: "UserPopulationId", Type: "string", Description: "actors.user.population.id"},
		{Name: "UserHref", Type: "string", Description: "actors.user.href"},
		{Name: "SourceIpAddress", Type: "string", Description: "source.ipAddress"},
		{Name: "SourceUserAgent", Type: "string", Description: "source.userAgent"},
		{Name: "InternalCorrelationSessionId", Type: "string", Description: "internalCorrelation.sessionId"},
		{Name: "InternalCorrelation", Type: "dynamic", Description: "internalCorrelation, every field"},
		{Name: "Resources", Type: "dynamic", Description: "resources"},
		{Name: "Tags", Type: "dynamic", Description: "tags, such as adminIdentityEvent"},
		{Name: "AdminIdentityEvent", Type: "boolean", Description: "true when tags holds adminIdentityEvent"},
		{Name: "Raw", Type: "dynamic", Description: "The provider's event as served"},
	}
}
