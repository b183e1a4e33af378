package sentinel

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// armTemplate is the part of an ARM template the test reads.
type armTemplate struct {
	Schema     string                     `json:"$schema"`
	Parameters map[string]json.RawMessage `json:"parameters"`
	Resources  []struct {
		Type       string          `json:"type"`
		Kind       string          `json:"kind"`
		Condition  string          `json:"condition"`
		APIVersion string          `json:"apiVersion"`
		Properties json.RawMessage `json:"properties"`
	} `json:"resources"`
	Outputs map[string]struct {
		Type, Value string
	} `json:"outputs"`
}

type tableProps struct {
	Schema struct {
		Columns []Column `json:"columns"`
	} `json:"schema"`
}

type dcrProps struct {
	DataCollectionEndpointID string `json:"dataCollectionEndpointId"`
	StreamDeclarations       map[string]struct {
		Columns []Column `json:"columns"`
	} `json:"streamDeclarations"`
	DataFlows []struct {
		Streams      []string `json:"streams"`
		TransformKql string   `json:"transformKql"`
		OutputStream string   `json:"outputStream"`
	} `json:"dataFlows"`
}

func TestTemplate(t *testing.T) {
	for _, tc := range []struct {
		format, table, stream string
		dce                   bool
	}{
		{FormatPingOneV2, DefaultTablePingOneV2, DefaultStreamPingOneV2, false},
		{FormatAuditRelay, DefaultTableAuditRelay, DefaultStreamAuditRelay, true},
		{FormatAuditRelay, "Acme_Audit_CL", DefaultStreamAuditRelay, false},
		{FormatCyberArkAudit, DefaultTableCyberArkAudit, DefaultStreamCyberArkAudit, false},
		{FormatCyberArkAudit, DefaultTableCyberArkAudit, DefaultStreamCyberArkAudit, true},
		{FormatOktaV2, DefaultTableOktaV2, DefaultStreamOktaV2, false},
		{FormatOktaV2, DefaultTableOktaV2, DefaultStreamOktaV2, true},
	} {
		t.Run(tc.format+"/"+tc.table, func(t *testing.T) {
			table := tc.table
			if table == DefaultTable(tc.format) {
				table = "" // the default
			}
			b, err := Template(TemplateOptions{Format: tc.format, Table: table, Workspace: "sentinel-ws", DCE: tc.dce})
			if err != nil {
				t.Fatal(err)
			}
			var tpl armTemplate
			if err := json.Unmarshal(b, &tpl); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if !strings.Contains(tpl.Schema, "deploymentTemplate.json") {
				t.Errorf("$schema %q", tpl.Schema)
			}
			var ws, tableParam struct{ DefaultValue any }
			json.Unmarshal(tpl.Parameters["workspaceName"], &ws)
			json.Unmarshal(tpl.Parameters["tableName"], &tableParam)
			if ws.DefaultValue != "sentinel-ws" || tableParam.DefaultValue != tc.table {
				t.Errorf("parameters: workspace %v, table %v", ws.DefaultValue, tableParam.DefaultValue)
			}
			byType := map[string]int{}
			var tp tableProps
			var dp dcrProps
			for _, r := range tpl.Resources {
				byType[r.Type]++
				switch r.Type {
				case "Microsoft.OperationalInsights/workspaces/tables":
					json.Unmarshal(r.Properties, &tp)
					// Only okta_v2 may leave the solution's table alone.
					if want := map[bool]string{true: "[parameters('createTable')]"}[tc.format == FormatOktaV2]; r.Condition != want {
						t.Errorf("table condition %q, want %q", r.Condition, want)
					}
				case "Microsoft.Insights/dataCollectionRules":
					json.Unmarshal(r.Properties, &dp)
					if wantKind := map[bool]string{false: "Direct", true: ""}[tc.dce]; r.Kind != wantKind {
						t.Errorf("DCR kind %q, want %q", r.Kind, wantKind)
					}
				}
			}
			wantTypes := map[string]int{"Microsoft.OperationalInsights/workspaces/tables": 1, "Microsoft.Insights/dataCollectionRules": 1}
			if tc.dce {
				wantTypes["Microsoft.Insights/dataCollectionEndpoints"] = 1
				if dp.DataCollectionEndpointID == "" {
					t.Error("the DCR is not linked to the DCE")
				}
			}
			if diff := cmp.Diff(wantTypes, byType); diff != "" {
				t.Errorf("resources (-want +got):\n%s", diff)
			}
			// The stream declaration is exactly what the encoder sends.
			decl, ok := dp.StreamDeclarations[tc.stream]
			if !ok || len(dp.StreamDeclarations) != 1 {
				t.Fatalf("stream declarations %v, want only %s", dp.StreamDeclarations, tc.stream)
			}
			if diff := cmp.Diff(stripDescriptions(StreamColumns(tc.format)), decl.Columns); diff != "" {
				t.Errorf("stream columns (-encoder +template):\n%s", diff)
			}
			enc := newEncoder(tc.format, testNormalize, MaxCallBytes)
			evs := fixturesFor(t, tc.format)
			rows, parked := enc.rows(evs, nil)
			for _, p := range parked {
				t.Errorf("the encoder parks fixture %s: %s", p.ev.ID, p.reason)
			}
			if len(rows) != len(evs) {
				t.Fatalf("%d rows from %d fixtures", len(rows), len(evs))
			}
			declared := map[string]bool{}
			for _, c := range decl.Columns {
				declared[c.Name] = true
			}
			for i, r := range rows {
				var m map[string]json.RawMessage
				if err := json.Unmarshal(r.data, &m); err != nil {
					t.Fatalf("row %d is not a JSON object: %v", i, err)
				}
				for k := range m {
					if !declared[k] {
						t.Errorf("the encoder sends %q, which the stream does not declare", k)
					}
				}
			}
			if len(dp.DataFlows) != 1 || dp.DataFlows[0].Streams[0] != tc.stream || dp.DataFlows[0].OutputStream != "[concat('Custom-', parameters('tableName'))]" {
				t.Errorf("data flows %+v", dp.DataFlows)
			}
			kql := dp.DataFlows[0].TransformKql
			wantTime := "TimeGenerated = coalesce("
			switch tc.format {
			case FormatCyberArkAudit:
				wantTime = "TimeGenerated = datetime(1970-01-01) + totimespan(timestamp * 1ms)"
			case FormatOktaV2:
				wantTime = "TimeGenerated = todatetime(published)"
				var p struct {
					Type         string
					DefaultValue any
				}
				json.Unmarshal(tpl.Parameters["createTable"], &p)
				if p.Type != "bool" || p.DefaultValue != true {
					t.Errorf("createTable parameter %+v, want a bool defaulting to true", p)
				}
			}
			if !strings.Contains(kql, wantTime) || strings.Contains(kql, "now()") {
				t.Errorf("transform does not take TimeGenerated from the event: %s", kql)
			}
			// Every table column obeys the Log Analytics naming rules,
			// the table has TimeGenerated, and the transform's output
			// columns are table columns.
			cols := map[string]string{}
			for _, c := range tp.Schema.Columns {
				if !ValidColumnName(c.Name) {
					t.Errorf("table column %q breaks the naming rules", c.Name)
				}
				if _, dup := cols[c.Name]; dup {
					t.Errorf("table column %q twice", c.Name)
				}
				cols[c.Name] = c.Type
			}
			if tc.format == FormatOktaV2 {
				if cols["TimeGenerated"] != "datetime" || cols["EventOriginalUid"] != "string" || cols["DomainName"] != "string" {
					t.Errorf("table lacks TimeGenerated/EventOriginalUid/DomainName: %v", cols)
				}
			} else if tc.format == FormatCyberArkAudit {
				if cols["TimeGenerated"] != "datetime" || cols["CyberArkTenantId"] != "string" || cols["uuid"] != "string" || cols["timestamp"] != "int" {
					t.Errorf("table lacks TimeGenerated/CyberArkTenantId/uuid/timestamp: %v", cols)
				}
			} else if cols["TimeGenerated"] != "datetime" || cols["Id"] != "string" || cols["CorrelationId"] != "string" {
				t.Errorf("table lacks TimeGenerated/Id/CorrelationId: %v", cols)
			}
			switch tc.format {
			case FormatCyberArkAudit:
				checkCyberArkAuditTemplate(t, decl.Columns, tp.Schema.Columns, kql)
			case FormatOktaV2:
				checkOktaV2Template(t, decl.Columns, tp.Schema.Columns, kql)
			case FormatPingOneV2:
				if len(cols) != 21 {
					t.Errorf("%d columns, want the connector's 21", len(cols))
				}
				for _, part := range strings.Split(strings.SplitN(kql, "| project ", 2)[1], ",") {
					name := strings.TrimSpace(strings.SplitN(part, "=", 2)[0])
					if _, ok := cols[name]; !ok {
						t.Errorf("transform writes %q, not a table column", name)
					}
				}
			default:
				if diff := cmp.Diff(stripDescriptions(StreamColumns(tc.format)), stripDescriptions(tp.Schema.Columns)); diff != "" {
					t.Errorf("auditrelay table and stream differ (-stream +table):\n%s", diff)
				}
			}
			for _, k := range []string{"endpoint", "dcr_immutable_id", "stream"} {
				if tpl.Outputs[k].Value == "" {
					t.Errorf("output %s missing", k)
				}
			}
			if tpl.Outputs["stream"].Value != tc.stream {
				t.Errorf("stream output %q", tpl.Outputs["stream"].Value)
			}
			wantEndpoint := map[bool]string{true: "logsIngestion.endpoint", false: "endpoints.logsIngestion"}[tc.dce]
			if !strings.Contains(tpl.Outputs["endpoint"].Value, wantEndpoint) || !strings.Contains(tpl.Outputs["dcr_immutable_id"].Value, "immutableId") {
				t.Errorf("outputs %+v", tpl.Outputs)
			}
		})
	}
}

// checkCyberArkAuditTemplate checks the cyberark_audit template against
// the CyberArkAudit solution (version 3.2.0): its stream
// Custom-CyberArk_AuditEvents, its table CyberArk_AuditEvents_CL and its
// transform's mapping, so that the template's table is the one the
// solution's analytics rules query.
func checkCyberArkAuditTemplate(t *testing.T, stream, table []Column, kql string) {
	t.Helper()
	wantStream := "uuid:string tenantId:string timestamp:int username:string applicationCode:string auditCode:string " +
		"auditType:string userId:string action:string source:string actionType:string component:string serviceName:string " +
		"accessMethod:string accountId:string target:string command:string sessionId:string message:string customData:dynamic " +
		"cloudProvider:string cloudWorkspacesAndRoles:dynamic cloudIdentities:string cloudAssets:string safe:string " +
		"accountName:string targetPlatform:string targetAccount:string identityType:string correlationId:string"
	wantTable := "TimeGenerated:datetime CyberArkTenantId:string accountName:string action:string accessMethod:string " +
		"actionType:string applicationCode:string auditCode:string auditType:string correlationId:string cloudAssets:string " +
		"cloudIdentities:string cloudProvider:string cloudWorkspacesAndRoles:string command:string component:string " +
		"customData:string identityType:string message:string target:string timestamp:int targetPlatform:string " +
		"targetAccount:string safe:string sessionId:string serviceName:string source:string userId:string username:string uuid:string"
	flat := func(cols []Column) string {
		var parts []string
		for _, c := range cols {
			parts = append(parts, c.Name+":"+c.Type)
		}
		return strings.Join(parts, " ")
	}
	if got := flat(stream); got != wantStream {
		t.Errorf("stream columns\n got %s\nwant %s", got, wantStream)
	}
	if got := flat(table); got != wantTable {
		t.Errorf("table columns\n got %s\nwant %s", got, wantTable)
	}
	// The transform projects exactly the table's columns, each from the
	// stream column the solution's transform takes it from.
	proj, ok := strings.CutPrefix(kql, "source | project ")
	if !ok {
		t.Fatalf("transform %q is not one projection", kql)
	}
	got := map[string]string{}
	var order []string
	for _, part := range strings.Split(proj, ", ") {
		name, expr, ok := strings.Cut(part, " = ")
		if !ok {
			t.Fatalf("projection %q", part)
		}
		got[name] = expr
		order = append(order, name)
	}
	var tableNames []string
	for _, c := range table {
		tableNames = append(tableNames, c.Name)
	}
	if diff := cmp.Diff(tableNames, order); diff != "" {
		t.Errorf("projected columns (-table +transform):\n%s", diff)
	}
	for name, want := range map[string]string{
		"TimeGenerated":           "datetime(1970-01-01) + totimespan(timestamp * 1ms)",
		"CyberArkTenantId":        "tenantId",
		"cloudWorkspacesAndRoles": "tostring(cloudWorkspacesAndRoles)",
		"customData":              "tostring(customData)",
		"source":                  "['source']",
		"timestamp":               "timestamp",
		"uuid":                    "uuid",
		"username":                "username",
	} {
		if got[name] != want {
			t.Errorf("transform writes %s = %s, want %s", name, got[name], want)
		}
	}
	if _, ok := got["accountId"]; ok {
		t.Error("transform writes accountId, which the solution's table does not have")
	}
}

// checkOktaV2Template checks the okta_v2 template against the Okta Single
// Sign-On solution (version 3.1.11): its stream Custom-OktaSSO_CL, its
// table OktaV2_CL and its transform, so that the template's DCR and table
// are the ones the solution's analytics rules, hunting queries and
// workbook read.
func checkOktaV2Template(t *testing.T, stream, table []Column, kql string) {
	t.Helper()
	wantStream := "uuid:string DomainName:string published:datetime eventType:string version:string severity:string " +
		"legacyEventType:string displayMessage:string actor:dynamic client:dynamic outcome:dynamic target:dynamic " +
		"transaction:dynamic debugContext:dynamic authenticationContext:dynamic securityContext:dynamic request:dynamic"
	wantTable := "ActingAppName:string ActingAppType:string ActorDetailEntry:dynamic ActorDisplayName:string " +
		"ActorSessionId:string ActorUserId:string ActorUserIdType:string ActorUsername:string ActorUsernameType:string " +
		"ActorUserType:string AuthenticationContextAuthenticationProvider:string AuthenticationContextAuthenticationStep:int " +
		"AuthenticationContextCredentialProvider:string AuthenticationContextInterface:string AuthenticationContextIssuerId:string " +
		"AuthenticationContextIssuerType:string DebugData:dynamic DomainName:string DvcAction:string EventMessage:string " +
		"EventOriginalResultDetails:string EventOriginalType:string EventOriginalUid:string EventResult:string " +
		"EventSeverity:string HttpUserAgent:string LegacyEventType:string LogonMethod:string OriginalActorAlternateId:string " +
		"OriginalClientDevice:string OriginalOutcomeResult:string OriginalSeverity:string OriginalTarget:dynamic " +
		"OriginalUserId:string OriginalUserType:string Request:dynamic SecurityContextAsNumber:int SecurityContextAsOrg:string " +
		"SecurityContextDomain:string SecurityContextIsProxy:boolean SrcDeviceType:string SrcDvcId:string SrcDvcOs:string " +
		"SrcGeoCity:string SrcGeoCountry:string SrcGeoLatitude:real SrcGeoLongtitude:real SrcGeoPostalCode:string " +
		"SrcGeoRegion:string SrcIpAddr:string SrcIsp:string SrcZone:string TimeGenerated:datetime TransactionDetail:dynamic " +
		"TransactionId:string TransactionType:string Version:string SrcDvcIdType:string"
	flat := func(cols []Column) string {
		var parts []string
		for _, c := range cols {
			parts = append(parts, c.Name+":"+c.Type)
		}
		return strings.Join(parts, " ")
	}
	if got := flat(stream); got != wantStream {
		t.Errorf("stream columns\n got %s\nwant %s", got, wantStream)
	}
	if got := flat(table); got != wantTable {
		t.Errorf("table columns\n got %s\nwant %s", got, wantTable)
	}
	for _, c := range table {
		if c.Description != "" {
			t.Errorf("table column %s has a description; the solution's have none", c.Name)
		}
	}
	// The transform is the solution's, character for character: the
	// digest of its transformKql (mainTemplate.json of 3.1.11).
	sum := sha256.Sum256([]byte(kql))
	if got := hex.EncodeToString(sum[:]); got != "d030502a88fc7c18c05debd34cf2eabf14f8947d4cf31d35744640080e65464a" || len(kql) != 3655 {
		t.Errorf("transform of %d bytes, sha256 %s: not the solution's", len(kql), got)
	}
	// It projects exactly the table's columns, converting to each
	// column's type, and reads every stream column.
	_, proj, ok := strings.Cut(kql, "| project ")
	if !ok {
		t.Fatalf("transform %q has no projection", kql)
	}
	types := map[string]string{}
	for _, c := range table {
		types[c.Name] = c.Type
	}
	got := map[string]string{}
	for _, part := range splitTopLevel(proj) {
		name, expr, _ := strings.Cut(part, "=")
		name, expr = strings.TrimSpace(name), strings.TrimSpace(expr)
		if expr == "" {
			expr = name
		}
		if _, dup := got[name]; dup {
			t.Errorf("transform writes %s twice", name)
		}
		got[name] = expr
		typ, ok := types[name]
		if !ok {
			t.Errorf("transform writes %q, not a table column", name)
			continue
		}
		for conv, want := range map[string]string{"toint(": "int", "toreal(": "real", "tobool(": "boolean", "todatetime(": "datetime", "tostring(": "string"} {
			if strings.HasPrefix(expr, conv) && typ != want {
				t.Errorf("%s = %s goes into a %s column", name, expr, typ)
			}
		}
	}
	if len(got) != len(table) {
		t.Errorf("transform writes %d columns, the table has %d", len(got), len(table))
	}
	for name, want := range map[string]string{
		"TimeGenerated":     "todatetime(published)",
		"DomainName":        "DomainName",
		"EventOriginalUid":  "uuid",
		"EventOriginalType": "eventType",
		"SrcIpAddr":         "tostring(client.ipAddress)",
		"SrcGeoLongtitude":  "toreal(client.geographicalContext.geolocation.lon)",
		"OriginalTarget":    "target",
		"DebugData":         "debugContext.debugData",
		"Request":           "request",
		"ActorSessionId":    "tostring(authenticationContext.externalSessionId)",
		"EventSeverity":     "tostring(OktaASIMSev[severity])",
	} {
		if got[name] != want {
			t.Errorf("transform writes %s = %s, want %s", name, got[name], want)
		}
	}
	for _, c := range stream {
		if !regexp.MustCompile(`\b` + c.Name + `\b`).MatchString(proj) {
			t.Errorf("transform never reads stream column %s", c.Name)
		}
	}
}

// splitTopLevel splits a KQL projection at the commas outside parentheses,
// brackets and string literals.
func splitTopLevel(s string) []string {
	var parts []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']':
			depth--
		case c == ',' && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

func TestTemplateRejects(t *testing.T) {
	for _, o := range []TemplateOptions{
		{Format: "cef"},
		{Format: FormatAuditRelay, Table: "NoSuffix"},
		{Format: FormatAuditRelay, Table: "1Starts_With_Digit_CL"},
		{Format: FormatAuditRelay, Table: strings.Repeat("A", 43) + "_CL"},
		{Format: FormatAuditRelay, Table: "Has-Dash_CL"},
	} {
		if _, err := Template(o); err == nil {
			t.Errorf("Template(%+v) accepted", o)
		}
	}
}

func TestValidColumnName(t *testing.T) {
	for name, want := range map[string]bool{
		"Id": true, "id": false, "TenantId": false, "Type": false, "Title": false, "UniqueId": false,
		"_ResourceId": false, "_SubscriptionId": false, "_Private": false, "9Lives": false,
		"Has Space": false, strings.Repeat("a", 45): true, strings.Repeat("a", 46): false, "User_Name2": true,
	} {
		if got := ValidColumnName(name); got != want {
			t.Errorf("ValidColumnName(%q) = %v, want %v", name, got, want)
		}
	}
}
