package normalize

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
)

// The ASIM columns the rows may hold, with the values allowed where the
// schemas enumerate them (Azure-Sentinel ASimTester.csv and the AuditEvent
// and Authentication schema pages).
var (
	asimCommon = []string{"TimeGenerated", "EventCount", "EventStartTime", "EventEndTime", "EventType", "EventResult",
		"EventResultDetails", "EventOriginalResultDetails", "EventSeverity", "EventProduct", "EventVendor", "EventSchema",
		"EventSchemaVersion", "EventOriginalType", "EventOriginalUid", "EventMessage", "Dvc", "DvcId", "DvcIdType",
		"ActorUsername", "ActorUserId", "ActorUserIdType", "ActorUserType", "ActingAppName", "ActingAppId",
		"TargetAppName", "TargetAppId", "TargetAppType", "SrcIpAddr", "SrcGeoCity", "SrcGeoCountry", "HttpUserAgent", "AdditionalFields"}
	asimMandatory = []string{"TimeGenerated", "EventCount", "EventStartTime", "EventEndTime", "EventType", "EventResult",
		"EventSeverity", "EventProduct", "EventVendor", "EventSchema", "EventSchemaVersion", "Dvc"}
	asimAuditOnly = []string{"Operation", "Object", "ObjectId", "ObjectType", "NewValue"}
	asimAuthOnly  = []string{"TargetUsername", "TargetUserId", "TargetUserIdType", "TargetUserType", "TargetSessionId",
		"TargetHostname", "LogonMethod", "LogonProtocol"}
	asimValues = map[string][]string{
		"EventResult":        {"Success", "Partial", "Failure", "NA"},
		"EventSeverity":      {"Informational", "Low", "Medium", "High"},
		"ObjectType":         {"Directory Service Object", "Cloud Resource", "Policy Rule", "Configuration Atom", "Other"},
		"ActorUserType":      {"Regular", "Machine", "Admin", "System", "Application", "Service Principal", "Service", "Anonymous", "Guest", "Other"},
		"TargetUserType":     {"Regular", "Machine", "Admin", "System", "Application", "Service Principal", "Service", "Anonymous", "Guest", "Other"},
		"ActorUserIdType":    {"SID", "UID", "AADID", "OktaId", "AWSId", "PUID", "SalesforceId", "Other"},
		"TargetUserIdType":   {"SID", "UID", "AADID", "OktaId", "AWSId", "PUID", "SalesforceId", "Other"},
		"DvcIdType":          {"MDEid", "AzureResourceId", "MD4IoTid", "VMConnectionId", "AwsVpcId", "VectraId", "Other"},
		"TargetAppType":      {"Process", "Service", "Resource", "URL", "SaaS application", "CloudService", "Other"},
		"LogonMethod":        {"Username & password", "PKI", "Multi factor authentication"},
		"EventResultDetails": nil, // by schema, below
	}
	asimAuthResultDetails = []string{"No such user or password", "Incorrect password", "Account expired", "Password expired",
		"User locked", "User disabled", "Logon violates policy", "Session expired", "MFA not satisfied", "Other"}
)

// checkASIM returns the problems of one ASIM row.
func checkASIM(row []byte) []string {
	var m map[string]any
	if err := json.Unmarshal(row, &m); err != nil {
		return []string{"not JSON: " + err.Error()}
	}
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	schema, _ := m["EventSchema"].(string)
	allowed := slices.Clone(asimCommon)
	switch schema {
	case ASIMAuthentication:
		allowed = append(allowed, asimAuthOnly...)
		if t := m["EventType"]; t != "Logon" && t != "Logoff" {
			add("EventType %v: want Logon or Logoff", t)
		}
		if d, ok := m["EventResultDetails"].(string); ok && !slices.Contains(asimAuthResultDetails, d) {
			add("EventResultDetails %q is not a value of the Authentication schema", d)
		}
	case ASIMAuditEvent:
		allowed = append(allowed, asimAuditOnly...)
		for _, k := range []string{"Operation", "ObjectType"} {
			if _, ok := m[k]; !ok {
				add("%s: required by AuditEvent", k)
			}
		}
		if t, _ := m["EventType"].(string); !slices.Contains([]string{"Set", "Read", "Create", "Delete", "Execute", "Install", "Clear", "Enable", "Disable", "Other"}, t) {
			add("EventType %q is not an AuditEvent type", t)
		}
	default:
		add("EventSchema %q", schema)
	}
	for _, k := range asimMandatory {
		if _, ok := m[k]; !ok {
			add("%s: mandatory", k)
		}
	}
	for k, v := range m {
		if !slices.Contains(allowed, k) {
			add("%s: not a column of %s", k, schema)
			continue
		}
		if vals := asimValues[k]; vals != nil {
			if s, _ := v.(string); !slices.Contains(vals, s) {
				add("%s %v: want one of %v", k, v, vals)
			}
		}
		if strings.HasSuffix(k, "Time") || k == "TimeGenerated" {
			if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(v)); err != nil {
				add("%s %v: not a time", k, v)
			}
		}
	}
	if _, ok := m["AdditionalFields"].(map[string]any); !ok {
		add("AdditionalFields: not the provider event")
	}
	return errs
}

func TestASIMEmulated(t *testing.T) {
	for _, p := range Providers() {
		t.Run(p, func(t *testing.T) {
			schemas := map[string]int{}
			var b []byte
			for _, r := range emulated(t, p, 1000, 1) {
				var err error
				if b, err = ASIM(r, b[:0]); err != nil {
					t.Fatal(err)
				}
				if errs := checkASIM(b); len(errs) > 0 {
					t.Fatalf("event %s: %s\n%s", r.ID, strings.Join(errs, "; "), b)
				}
				s, err := ASIMSchema(r)
				if err != nil || !strings.Contains(string(b), `"EventSchema":"`+s+`"`) {
					t.Fatalf("ASIMSchema %q %v disagrees with the row", s, err)
				}
				schemas[s]++
			}
			wantAuth := p != ProviderEntraDirectoryAudits && p != ProviderEntraProvisioning
			if wantAuth != (schemas[ASIMAuthentication] > 0) || (p != ProviderEntraSignIns) != (schemas[ASIMAuditEvent] > 0) {
				t.Errorf("rows per schema %v", schemas)
			}
		})
	}
}

// TestASIMCyberArkAsTheSentinelParser pins the columns the Sentinel
// ASimAuthenticationCyberArkAudit parser derives from the same events.
func TestASIMCyberArkAsTheSentinelParser(t *testing.T) {
	for _, tt := range []struct{ data, want string }{
		{`{"uuid":"1","tenantId":"t","timestamp":1767225600000,"username":"ann@x.example","userId":"u1","auditCode":"IDP2005","auditType":"Info","identityType":"HUMAN","source":"198.51.100.2","customData":{"authentication_method":"MultiAuth","geoip_country_name":"France"}}`,
			`"EventType":"Logon","EventSchema":"Authentication","EventSchemaVersion":"0.1.4","EventResult":"Success","EventSeverity":"Informational","EventVendor":"CyberArk","EventProduct":"Audit","EventOriginalType":"IDP2005","EventOriginalUid":"1","Dvc":"Audit","DvcId":"t","DvcIdType":"Other","TargetUsername":"ann@x.example","TargetUserId":"u1","TargetUserIdType":"Other","TargetUserType":"Regular","LogonMethod":"Multi factor authentication","SrcIpAddr":"198.51.100.2","SrcGeoCountry":"France"`},
		{`{"uuid":"2","timestamp":1767225600000,"username":"svc","auditCode":"IDP2007","auditType":"Info","identityType":"NON_HUMAN","customData":{"nested_items":[{"name":"failure_reason","value":"User locked"}]}}`,
			`"EventResult":"Failure","EventResultDetails":"User locked","EventOriginalResultDetails":"User locked"`},
		{`{"uuid":"3","timestamp":1767225600000,"username":"bo","auditCode":"IDP2006","auditType":"Info","identityType":"NON_HUMAN"}`,
			`"EventType":"Logoff"`},
		{`{"uuid":"4","timestamp":1767225600000,"username":"bo","auditCode":"PAM00300","auditType":"Info","target":"srv1","sessionId":"s1"}`,
			`"TargetSessionId":"s1","TargetHostname":"srv1","LogonProtocol":"RemoteInteractive"`},
	} {
		b, err := ASIM(event.Raw{Provider: ProviderCyberArk, Tenant: "t", Data: []byte(tt.data)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if errs := checkASIM(b); len(errs) > 0 {
			t.Errorf("%s", errs)
		}
		for _, part := range strings.Split(tt.want, `,"`) {
			if !strings.HasPrefix(part, `"`) {
				part = `"` + part
			}
			if !strings.Contains(string(b), part) {
				t.Errorf("row lacks %s:\n%s", part, b)
			}
		}
	}
}

func TestASIMGolden(t *testing.T) {
	for name, r := range goldenInputs(t) {
		b, err := ASIM(r, nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if errs := checkASIM(b); len(errs) > 0 {
			t.Errorf("%s: %s\n%s", name, strings.Join(errs, "; "), b)
		}
		golden(t, name+".asim.json", b)
	}
}

// FuzzASIM feeds arbitrary JSON to every ASIM normalizer.
func FuzzASIM(f *testing.F) {
	for i, p := range Providers() {
		for _, r := range emulated(f, p, 3, uint64(i)) {
			f.Add(uint8(i), string(r.Data))
		}
	}
	provs := Providers()
	f.Fuzz(func(t *testing.T, pi uint8, data string) {
		b, err := ASIM(event.Raw{Provider: provs[int(pi)%len(provs)], ID: "x", Data: []byte(data)}, nil)
		if err != nil {
			return
		}
		if !json.Valid(b) || slices.Contains(b, '\n') {
			t.Fatalf("output is not one line of JSON: %s", b)
		}
	})
}

// TestASIMColumnsCoverRows checks that ASIMColumns lists every column the
// rows write, and that ASIMOf splits events between the two schemas.
func TestASIMColumnsCoverRows(t *testing.T) {
	for _, p := range Providers() {
		for _, r := range emulated(t, p, 300, 2) {
			schema, err := ASIMSchema(r)
			if err != nil {
				t.Fatal(err)
			}
			cols := map[string]bool{}
			for _, c := range ASIMColumns(schema) {
				cols[c[0]] = true
			}
			b, ok, err := ASIMOf(schema, r, nil)
			if err != nil || !ok {
				t.Fatalf("ASIMOf(%s): %v %v", schema, ok, err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			for k := range m {
				if !cols[k] {
					t.Errorf("%s row has column %s, not in ASIMColumns", schema, k)
				}
			}
			other := ASIMAuditEvent
			if schema == ASIMAuditEvent {
				other = ASIMAuthentication
			}
			if b, ok, err := ASIMOf(other, r, nil); ok || err != nil || len(b) != 0 {
				t.Errorf("ASIMOf(%s) of a %s event: %v %v %q", other, schema, ok, err, b)
			}
		}
	}
}
