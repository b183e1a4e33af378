package sentinel

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
	}
	return nil
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
