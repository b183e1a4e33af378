package sentinel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/auditrelay/auditrelay/internal/detect"
)

// TemplateOptions select what Template creates.
type TemplateOptions struct {
	// Format is pingone_v2, auditrelay, cyberark_audit or okta_v2.
	Format string
	// Table is the custom table, ending in _CL; empty means the format's
	// default: PingOne_AuditActivitiesV2_CL (the PingOne connector's),
	// PingOne_AuditActivities_CL, CyberArk_AuditEvents_CL (the
	// CyberArkAudit solution's) or OktaV2_CL (the Okta Single Sign-On
	// solution's).
	Table string
	// Workspace is the default of the workspaceName parameter; empty
	// leaves the parameter without a default.
	Workspace string
	// DCE adds a data collection endpoint; without it the DCR is of kind
	// Direct and has its own logs ingestion endpoint.
	DCE bool
	// Detections, when set, adds the analytics rules (scheduled alert
	// rules of Microsoft Sentinel) and hunting queries (saved searches)
	// whose queries read the table: see Detections.
	Detections *detect.Content
}

// Default tables of each format.
const (
	DefaultTablePingOneV2     = "PingOne_AuditActivitiesV2_CL"
	DefaultTableAuditRelay    = "PingOne_AuditActivities_CL"
	DefaultTableCyberArkAudit = "CyberArk_AuditEvents_CL"
	DefaultTableOktaV2        = "OktaV2_CL"
	// DefaultTableASIMAudit and DefaultTableASIMAuthentication hold the
	// ASIM formats' rows, ready for the ASIM unifying parsers.
	DefaultTableASIMAudit          = "AuditRelayAuditEvent_CL"
	DefaultTableASIMAuthentication = "AuditRelayAuthentication_CL"
)

// DefaultTable returns the table a format's template creates when none is
// named, or "" for an unknown format.
func DefaultTable(format string) string {
	switch format {
	case FormatPingOneV2:
		return DefaultTablePingOneV2
	case FormatAuditRelay:
		return DefaultTableAuditRelay
	case FormatCyberArkAudit:
		return DefaultTableCyberArkAudit
	case FormatOktaV2:
		return DefaultTableOktaV2
	case FormatASIMAudit:
		return DefaultTableASIMAudit
	case FormatASIMAuthentication:
		return DefaultTableASIMAuthentication
	}
	return ""
}

// validTableName reports whether name is a custom table's name: a
// letter, then letters, digits or '_', ending in _CL, at most 45
// characters.
func validTableName(name string) bool {
	if len(name) < 4 || len(name) > 45 || !strings.HasSuffix(name, "_CL") {
		return false
	}
	return ValidColumnName(name)
}

// ValidColumnName reports whether name obeys the Log Analytics rules for a
// column: it starts with a letter, has at most 45 characters of letters,
// digits and '_', and is not reserved.
func ValidColumnName(name string) bool {
	if name == "" || len(name) > 45 {
		return false
	}
	switch name {
	case "_ResourceId", "id", "_SubscriptionId", "TenantId", "Type", "UniqueId", "Title":
		return false
	}
	for i, r := range name {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if i == 0 && !letter {
			return false
		}
		if !letter && !(r >= '0' && r <= '9') && r != '_' {
			return false
		}
	}
	return true
}

// TableColumns returns the columns of the Log Analytics table a format's
// DCR writes.
func TableColumns(format string) []Column {
	switch format {
	case FormatPingOneV2:
		// Exactly the connector's table, PingOne_AuditActivitiesV2_CL.
		return []Column{
			{Name: "TimeGenerated", Type: "datetime", Description: "The event's createdAt (its recordedAt when absent)"},
			{Name: "Id", Type: "string"},
			{Name: "CorrelationId", Type: "string"},
			{Name: "RecordedAt", Type: "datetime"},
			{Name: "CreatedAt", Type: "datetime"},
			{Name: "InternalCorrelationSessionId", Type: "string"},
			{Name: "ClientId", Type: "string"},
			{Name: "ClientName", Type: "string"},
			{Name: "ClientType", Type: "string"},
			{Name: "UserId", Type: "string"},
			{Name: "UserName", Type: "string"},
			{Name: "UserEnvironmentId", Type: "string"},
			{Name: "UserPopulationId", Type: "string"},
			{Name: "UserType", Type: "string"},
			{Name: "SourceUserAgent", Type: "string"},
			{Name: "SourceIpAddress", Type: "string"},
			{Name: "ActionType", Type: "string"},
			{Name: "ActionDescription", Type: "string"},
			{Name: "Resources", Type: "dynamic"},
			{Name: "ResultStatus", Type: "string"},
			{Name: "ResultDescription", Type: "string"},
		}
	case FormatAuditRelay:
		return auditRelayColumns()
	case FormatCyberArkAudit:
		return cyberArkAuditTableColumns()
	case FormatOktaV2:
		return oktaV2TableColumns()
	case FormatASIMAudit, FormatASIMAuthentication:
		return asimColumns(format)
	}
	return nil
}

// Transform returns the DCR transformation of a format: KQL over the input
// stream, with TimeGenerated the event's time.
func Transform(format string) string {
	switch format {
	case FormatPingOneV2:
		// The connector's mapping; `source` is both the input and a
		// column, hence ['source'].
		return "source" +
			" | extend TimeGenerated = coalesce(createdAt, recordedAt)" +
			" | project TimeGenerated, Id = tostring(id), CorrelationId = tostring(correlationId)," +
			" RecordedAt = recordedAt, CreatedAt = createdAt," +
			" InternalCorrelationSessionId = tostring(internalCorrelation.sessionId)," +
			" ClientId = tostring(actors.client.id), ClientName = tostring(actors.client.name), ClientType = tostring(actors.client.type)," +
			" UserId = tostring(actors.user.id), UserName = tostring(actors.user.name)," +
			" UserEnvironmentId = tostring(actors.user.environment.id), UserPopulationId = tostring(actors.user.population.id)," +
			" UserType = tostring(actors.user.type)," +
			" SourceUserAgent = tostring(['source'].userAgent), SourceIpAddress = tostring(['source'].ipAddress)," +
			" ActionType = tostring(action.type), ActionDescription = tostring(action.description)," +
			" Resources = resources, ResultStatus = tostring(result.status), ResultDescription = tostring(result.description)"
	case FormatAuditRelay:
		return "source | extend TimeGenerated = coalesce(TimeGenerated, RecordedAt, CreatedAt)"
	case FormatCyberArkAudit:
		return cyberArkAuditTransform()
	case FormatOktaV2:
		return oktaV2Transform
	case FormatASIMAudit, FormatASIMAuthentication:
		// The rows are ASIM already; the event time is TimeGenerated.
		return "source | extend TimeGenerated = coalesce(TimeGenerated, EventStartTime)"
	}
	return ""
}

// oktaV2Transform is the transformKql of the Okta Single Sign-On
// solution's DCR (see oktaSolution), character for character, so that
// OktaV2_CL gets the rows the solution's connector would write and its
// analytics rules, hunting queries and workbook work unchanged:
// TimeGenerated from published, the ASIM-style columns from the LogEvent's
// fields, and its lookups of severity, outcome.result and actor.type.
const oktaV2Transform = "let OktaASIMSev = parse_json('{\"DEBUG\": \"Informational\",\"INFO\": \"Informational\"," +
	"\"WARN\": \"Medium\", \"ERROR\": \"High\"}');\n" +
	"let OktaASIMEventResult = parse_json('{\"SUCCESS\": \"Success\",\"ALLOW\": \"Success\"," +
	"\"DENY\": \"Failure\", \"SKIPPED\": \"Failure\",\"FAILURE\": \"Failure\",\"CHALLENGE\": \"Partial\"," +
	" \"UNKNOWN\": \"NA\"}');\n" +
	"let OktaDvcAction = parse_json('{\"SUCCESS\": \"\",\"ALLOW\": \"Allow\",\"DENY\": \"Deny\"," +
	" \"SKIPPED\": \"Drop\",\"FAILURE\": \"\",\"CHALLENGE\": \"\", \"UNKNOWN\": \"\"}');\n" +
	"let OktaActorUserType = parse_json('{\"SystemPrincipal\": \"System Principal\"," +
	"\"PublicClientApp\": \"Application\",\"User\": \"Regular\"}');\n" +
	"source | extend userId = iff((tostring(actor.id) == \"unknown\"), \"\", tostring(actor.id))," +
	"username = iff((tostring(actor.alternateId) contains \"@\"),tostring(actor.alternateId)," +
	"\"\") | project TimeGenerated = todatetime(published), DomainName," +
	" ActorDetailEntry = actor.detailEntry,ActorDisplayName = tostring(actor.displayName)," +
	"OriginalUserId = tostring(actor.id)," +
	"OriginalActorAlternateId = tostring(actor.alternateId),ActorUserId = userId," +
	"ActorUserIdType = iff(isempty(userId),\"\", \"OktaId\"),ActorUsername = username," +
	"ActorUsernameType = iff(isempty(username), \"\", \"UPN\")," +
	"ActorUserType = tostring(OktaActorUserType[tostring(actor.type)])," +
	"OriginalUserType = tostring(actor.type)," +
	"AuthenticationContextAuthenticationProvider = tostring(authenticationContext.authenticationProvider)," +
	"AuthenticationContextAuthenticationStep = toint(authenticationContext.authenticationStep)," +
	"AuthenticationContextCredentialProvider = tostring(authenticationContext.credentialProvider)," +
	"LogonMethod = tostring(authenticationContext.credentialType)," +
	"ActorSessionId = tostring(authenticationContext.externalSessionId)," +
	"AuthenticationContextInterface = tostring(authenticationContext.interface)," +
	"AuthenticationContextIssuerId = tostring(authenticationContext.issuer.id)," +
	"AuthenticationContextIssuerType = tostring(authenticationContext.issuer.type)," +
	"OriginalClientDevice = tostring(client.device)," +
	"SrcDeviceType = iff(tostring(client.device) == \"Computer\", \"Computer\", \"\")," +
	"SrcGeoCity = tostring(client.geographicalContext.city)," +
	"SrcGeoCountry = tostring(client.geographicalContext.country)," +
	"SrcGeoLatitude = toreal(client.geographicalContext.geolocation.lat)," +
	" SrcGeoLongtitude = toreal(client.geographicalContext.geolocation.lon)," +
	"  SrcGeoPostalCode = tostring(client.geographicalContext.postalCode)," +
	" SrcGeoRegion = tostring(client.geographicalContext.state)," +
	"  SrcDvcIdType = iff(isempty(client.id),\"\", \"OktaId\"),SrcDvcId = tostring(client.id)," +
	"SrcIpAddr = tostring(client.ipAddress)," +
	" ActingAppName = tostring(client.userAgent.browser),ActingAppType = \"Browser\"," +
	"SrcDvcOs = tostring(client.userAgent.os)," +
	" HttpUserAgent = tostring(client.userAgent.rawUserAgent)," +
	"  SrcZone = tostring(client.zone), DebugData = debugContext.debugData," +
	" EventMessage = displayMessage,EventOriginalType = eventType," +
	"LegacyEventType = legacyEventType,EventOriginalUid = uuid," +
	"EventOriginalResultDetails = tostring(outcome.reason)," +
	" EventResult = tostring(OktaASIMEventResult[tostring(outcome.result)])," +
	"  OriginalOutcomeResult = tostring(outcome.result),Request = request," +
	"SecurityContextAsNumber = toint(securityContext.asNumber)," +
	" SecurityContextAsOrg = tostring(securityContext.asOrg)," +
	"SecurityContextDomain = tostring(securityContext.domain)," +
	"SrcIsp = tostring(securityContext.isp)," +
	"  SecurityContextIsProxy = tobool(securityContext.isProxy)," +
	"EventSeverity = tostring(OktaASIMSev[severity]),OriginalSeverity = severity," +
	"OriginalTarget = target,Version = version,TransactionType = tostring(transaction.type)," +
	" TransactionId = tostring(transaction.id), TransactionDetail = transaction.detail," +
	"DvcAction = tostring(OktaDvcAction[tostring(outcome.result)]) \n"

// cyberArkAuditTransform is the CyberArkAudit solution's transform, written
// from the column lists: TimeGenerated is epoch + timestamp milliseconds,
// tenantId becomes CyberArkTenantId, the dynamic stream columns become
// JSON text, every other table column is the stream column of its name.
// The source column is written ['source'], `source` alone being the input.
func cyberArkAuditTransform() string {
	stream := map[string]string{}
	for _, c := range cyberArkAuditStreamColumns() {
		stream[c.Name] = c.Type
	}
	var b strings.Builder
	b.WriteString("source | project TimeGenerated = datetime(1970-01-01) + totimespan(timestamp * 1ms), CyberArkTenantId = tenantId")
	for _, c := range cyberArkAuditTableColumns()[2:] {
		from := c.Name
		if from == "source" {
			from = "['source']"
		}
		if stream[c.Name] == "dynamic" && c.Type == "string" {
			from = "tostring(" + from + ")"
		}
		b.WriteString(", " + c.Name + " = " + from)
	}
	return b.String()
}

// Template returns an ARM template that creates the custom table, the DCR
// (stream declaration and transformation) and optionally a DCE, with
// outputs named after the sink settings they fill: endpoint,
// dcr_immutable_id and stream.
func Template(o TemplateOptions) ([]byte, error) {
	stream := DefaultStream(o.Format)
	if stream == "" {
		return nil, fmt.Errorf("format %q is not a format (want %s)", o.Format, formatList())
	}
	if o.Table == "" {
		o.Table = DefaultTable(o.Format)
	}
	if !validTableName(o.Table) {
		return nil, fmt.Errorf("table %q is not a custom table name (a letter, then letters, digits or '_', ending in _CL, at most 45 characters)", o.Table)
	}
	type obj = map[string]any
	workspace := obj{"type": "string", "metadata": obj{"description": "The Log Analytics workspace of Microsoft Sentinel, in this resource group"}}
	if o.Workspace != "" {
		workspace["defaultValue"] = o.Workspace
	}
	params := obj{
		"workspaceName": workspace,
		"location": obj{"type": "string", "defaultValue": "[resourceGroup().location]",
			"metadata": obj{"description": "The workspace's region: a DCR must be in its workspace's region"}},
		"tableName":          obj{"type": "string", "defaultValue": o.Table},
		"dataCollectionRule": obj{"type": "string", "defaultValue": "auditrelay-" + strings.ToLower(strings.TrimSuffix(o.Table, "_CL"))},
		"retentionInDays":    obj{"type": "int", "defaultValue": 90, "minValue": 4, "maxValue": 730},
	}
	dcrID := "[resourceId('Microsoft.Insights/dataCollectionRules', parameters('dataCollectionRule'))]"
	tableID := "[resourceId('Microsoft.OperationalInsights/workspaces/tables', parameters('workspaceName'), parameters('tableName'))]"
	table := obj{
		"type":       "Microsoft.OperationalInsights/workspaces/tables",
		"apiVersion": "2022-10-01",
		"name":       "[concat(parameters('workspaceName'), '/', parameters('tableName'))]",
		"properties": obj{
			"plan":            "Analytics",
			"retentionInDays": "[parameters('retentionInDays')]",
			"schema":          obj{"name": "[parameters('tableName')]", "columns": TableColumns(o.Format)},
		},
	}
	if o.Format == FormatOktaV2 {
		// The solution may have created the table already: deploying it
		// again is harmless (same columns) but resets its retention, so
		// it can be left alone.
		params["createTable"] = obj{"type": "bool", "defaultValue": true,
			"metadata": obj{"description": "Create the table (or update it to the solution's columns); false when the Okta Single Sign-On solution's table is there already, keeping its retention"}}
		table["condition"] = "[parameters('createTable')]"
	}
	resources := []any{table}
	dcrProps := obj{
		"streamDeclarations": obj{stream: obj{"columns": stripDescriptions(StreamColumns(o.Format))}},
		"destinations": obj{"logAnalytics": []any{obj{
			"name":                "workspace",
			"workspaceResourceId": "[resourceId('Microsoft.OperationalInsights/workspaces', parameters('workspaceName'))]",
		}}},
		"dataFlows": []any{obj{
			"streams":      []string{stream},
			"destinations": []string{"workspace"},
			"transformKql": Transform(o.Format),
			"outputStream": "[concat('Custom-', parameters('tableName'))]",
		}},
	}
	dcr := obj{
		"type":       "Microsoft.Insights/dataCollectionRules",
		"apiVersion": "2023-03-11",
		"name":       "[parameters('dataCollectionRule')]",
		"location":   "[parameters('location')]",
		"dependsOn":  []string{tableID},
		"properties": dcrProps,
	}
	endpoint := "[reference(" + strings.Trim(dcrID, "[]") + ", '2023-03-11').endpoints.logsIngestion]"
	if o.DCE {
		params["dataCollectionEndpoint"] = obj{"type": "string", "defaultValue": "[concat(parameters('dataCollectionRule'), '-dce')]"}
		dceID := "resourceId('Microsoft.Insights/dataCollectionEndpoints', parameters('dataCollectionEndpoint'))"
		resources = append(resources, obj{
			"type":       "Microsoft.Insights/dataCollectionEndpoints",
			"apiVersion": "2023-03-11",
			"name":       "[parameters('dataCollectionEndpoint')]",
			"location":   "[parameters('location')]",
			"properties": obj{"networkAcls": obj{"publicNetworkAccess": "Enabled"}},
		})
		dcr["dependsOn"] = []string{tableID, "[" + dceID + "]"}
		dcrProps["dataCollectionEndpointId"] = "[" + dceID + "]"
		endpoint = "[reference(" + dceID + ", '2023-03-11').logsIngestion.endpoint]"
	} else {
		dcr["kind"] = "Direct"
	}
	resources = append(resources, dcr)
	what := ""
	if o.Detections != nil {
		ds := Detections(o.Detections, o.Format, o.Table)
		resources = append(resources, detectionResources(ds, tableID)...)
		rules := 0
		for _, d := range ds {
			if d.Analytic != nil {
				rules++
			}
		}
		what = fmt.Sprintf(", %d analytics rules and %d hunting queries (saved searches) of Microsoft Sentinel (the workspace must have Sentinel enabled)", rules, len(ds)-rules)
	}
	t := obj{
		"$schema":        "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
		"contentVersion": "1.0.0.0",
		"metadata": obj{"description": fmt.Sprintf("auditrelay sentinel sink, format %s: the table %s, the DCR with stream %s%s%s. Grant the app Monitoring Metrics Publisher on the DCR.",
			o.Format, o.Table, stream, map[bool]string{true: " and a DCE", false: ""}[o.DCE], what)},
		"parameters": params,
		"resources":  resources,
		"outputs": obj{
			"endpoint":         obj{"type": "string", "value": endpoint},
			"dcr_immutable_id": obj{"type": "string", "value": "[reference(" + strings.Trim(dcrID, "[]") + ", '2023-03-11').immutableId]"},
			"stream":           obj{"type": "string", "value": stream},
			"format":           obj{"type": "string", "value": o.Format},
		},
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(t); err != nil {
		return nil, fmt.Errorf("sentinel: template: %w", err)
	}
	return b.Bytes(), nil
}

// stripDescriptions returns columns without descriptions: a stream
// declaration has names and types only.
func stripDescriptions(cols []Column) []Column {
	out := make([]Column, len(cols))
	for i, c := range cols {
		out[i] = Column{Name: c.Name, Type: c.Type}
	}
	return out
}
