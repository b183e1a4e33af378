package cli

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/secret/secrettest"
	"github.com/auditrelay/auditrelay/internal/sink/sentinel"
)

func TestSentinelTemplate(t *testing.T) {
	out, errs, code := runMain(t, "sentinel", "template", "--format", "auditrelay", "--table", "Acme_CL", "--workspace", "ws", "--dce")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var tpl struct {
		Outputs    map[string]json.RawMessage `json:"outputs"`
		Parameters map[string]struct {
			DefaultValue any `json:"defaultValue"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal([]byte(out), &tpl); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if tpl.Parameters["tableName"].DefaultValue != "Acme_CL" || tpl.Parameters["workspaceName"].DefaultValue != "ws" || tpl.Outputs["dcr_immutable_id"] == nil {
		t.Errorf("template %+v", tpl)
	}
	for _, args := range [][]string{{"sentinel"}, {"sentinel", "template", "--format", "cef"}, {"sentinel", "template", "--table", "bad"}} {
		if _, _, code := runMain(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// TestSentinelTemplateCyberArk: `auditrelay sentinel template --format
// cyberark_audit` prints the CyberArkAudit solution's table, stream and
// transform for a new user.
func TestSentinelTemplateCyberArk(t *testing.T) {
	out, errs, code := runMain(t, "sentinel", "template", "--format", "cyberark_audit", "--workspace", "ws")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var tpl struct {
		Outputs map[string]struct {
			Value string `json:"value"`
		} `json:"outputs"`
		Parameters map[string]struct {
			DefaultValue any `json:"defaultValue"`
		} `json:"parameters"`
		Resources []struct {
			Type       string `json:"type"`
			Properties struct {
				StreamDeclarations map[string]json.RawMessage `json:"streamDeclarations"`
				DataFlows          []struct {
					TransformKql string `json:"transformKql"`
				} `json:"dataFlows"`
			} `json:"properties"`
		} `json:"resources"`
	}
	if err := json.Unmarshal([]byte(out), &tpl); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if tpl.Parameters["tableName"].DefaultValue != "CyberArk_AuditEvents_CL" || tpl.Outputs["stream"].Value != "Custom-CyberArk_AuditEvents" ||
		tpl.Outputs["format"].Value != "cyberark_audit" {
		t.Errorf("table %v, outputs %+v", tpl.Parameters["tableName"].DefaultValue, tpl.Outputs)
	}
	found := false
	for _, r := range tpl.Resources {
		if r.Type != "Microsoft.Insights/dataCollectionRules" {
			continue
		}
		found = true
		if _, ok := r.Properties.StreamDeclarations["Custom-CyberArk_AuditEvents"]; !ok || len(r.Properties.DataFlows) != 1 ||
			!strings.Contains(r.Properties.DataFlows[0].TransformKql, "CyberArkTenantId = tenantId") {
			t.Errorf("DCR %+v", r.Properties)
		}
	}
	if !found {
		t.Error("no DCR in the template")
	}
}

// TestSentinelTemplateOkta: `auditrelay sentinel template --format
// okta_v2` prints the Okta Single Sign-On solution's table, its stream
// Custom-OktaSSO_CL and transform, and the outputs a sink needs.
func TestSentinelTemplateOkta(t *testing.T) {
	out, errs, code := runMain(t, "sentinel", "template", "--format", "okta_v2", "--workspace", "ws")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var tpl struct {
		Outputs map[string]struct {
			Value string `json:"value"`
		} `json:"outputs"`
		Parameters map[string]struct {
			DefaultValue any `json:"defaultValue"`
		} `json:"parameters"`
		Resources []struct {
			Type       string `json:"type"`
			Condition  string `json:"condition"`
			Properties struct {
				Schema struct {
					Columns []sentinel.Column `json:"columns"`
				} `json:"schema"`
				StreamDeclarations map[string]struct {
					Columns []sentinel.Column `json:"columns"`
				} `json:"streamDeclarations"`
				DataFlows []struct {
					TransformKql string `json:"transformKql"`
				} `json:"dataFlows"`
			} `json:"properties"`
		} `json:"resources"`
	}
	if err := json.Unmarshal([]byte(out), &tpl); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if tpl.Parameters["tableName"].DefaultValue != "OktaV2_CL" || tpl.Parameters["createTable"].DefaultValue != true ||
		tpl.Outputs["stream"].Value != "Custom-OktaSSO_CL" || tpl.Outputs["format"].Value != "okta_v2" ||
		!strings.Contains(tpl.Outputs["endpoint"].Value, "logsIngestion") || !strings.Contains(tpl.Outputs["dcr_immutable_id"].Value, "immutableId") {
		t.Errorf("parameters %+v, outputs %+v", tpl.Parameters, tpl.Outputs)
	}
	var dcr, table int
	for _, r := range tpl.Resources {
		switch r.Type {
		case "Microsoft.OperationalInsights/workspaces/tables":
			table++
			if r.Condition != "[parameters('createTable')]" || len(r.Properties.Schema.Columns) != 58 {
				t.Errorf("table: condition %q, %d columns, want the solution's 58", r.Condition, len(r.Properties.Schema.Columns))
			}
		case "Microsoft.Insights/dataCollectionRules":
			dcr++
			decl, ok := r.Properties.StreamDeclarations["Custom-OktaSSO_CL"]
			if !ok || len(decl.Columns) != 17 || decl.Columns[1].Name != "DomainName" || len(r.Properties.DataFlows) != 1 ||
				!strings.Contains(r.Properties.DataFlows[0].TransformKql, "| project TimeGenerated = todatetime(published), DomainName,") {
				t.Errorf("DCR %+v", r.Properties)
			}
		}
	}
	if dcr != 1 || table != 1 {
		t.Errorf("%d DCRs and %d tables, want one of each", dcr, table)
	}
}

// TestCheckSentinel: `auditrelay check` proves a sentinel sink's
// credentials and role, and names the fix when the role is missing.
func TestCheckSentinel(t *testing.T) {
	p1 := emulator.NewPingOne(emulator.PingOneOptions{})
	psrv := httptest.NewServer(p1)
	defer psrv.Close()
	p1.AddEnvironment(emulator.Environment{ID: "env-1", ClientID: "c", ClientSecret: "p1-secret"})
	az := emulator.NewSentinel(emulator.SentinelOptions{})
	asrv := httptest.NewServer(az)
	defer asrv.Close()
	d := setUpSentinel(az)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`data_dir: %s
sources:
  - name: p1
    pingone: {environment_id: env-1, client_id: c, client_secret: p1-secret, api_url: %s, auth_url: %s}
sinks:
  - name: azure
    sentinel:
      endpoint: %s
      authority_url: %s
      dcr_immutable_id: %s
      format: auditrelay
      tenant_id: %s
      client_id: %s
      client_secret: "${env:TEST_AZURE_SECRET}"
`, filepath.Join(dir, "data"), psrv.URL, psrv.URL, asrv.URL, asrv.URL, d.DCR, d.TenantID, d.ClientID)
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_AZURE_SECRET", d.ClientSecret)
	out, errs, code := runMain(t, "check", "--config", path)
	if code != exitOK || !strings.Contains(out, "ok    sink azure") {
		t.Fatalf("check exit %d:\n%s\n%s", code, out, errs)
	}
	outputs := []string{out, errs}
	if st := az.Stats(); st.Accepted != 1 || st.Rows != 0 {
		t.Errorf("check sent %+v, want one empty call", st)
	}
	az.Revoke(d.DCR, d.ClientID)
	out, errs, code = runMain(t, "check", "--config", path)
	if code != exitFailure || !strings.Contains(out, "FAIL  sink azure") || !strings.Contains(out, sentinel.FixForbidden) {
		t.Errorf("check without the role: exit %d:\n%s", code, out)
	}
	outputs = append(outputs, out, errs)
	secrets := append(secrettest.Forms(d.ClientID, d.ClientSecret), secrettest.Forms("c", "p1-secret")...)
	for _, o := range outputs {
		for _, s := range secrets {
			if strings.Contains(o, s) {
				t.Errorf("a secret is in the output as %q:\n%s", s, o)
			}
		}
	}
}

// TestDemoSentinel: the demo's Sentinel sink receives every event once.
func TestDemoSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for seconds")
	}
	dir := filepath.Join(t.TempDir(), "demo")
	out, errs, code := runMain(t, "demo", "--dir", dir, "--duration", "4s", "--environments", "1", "--backlog", "300", "--rate", "5")
	if code != exitOK {
		t.Fatalf("demo exit %d\n%s\n%s", code, out, errs)
	}
	m := regexp.MustCompile(`holds (\d+) PingOne events`).FindStringSubmatch(out)
	s := regexp.MustCompile(`ingested (\d+) rows, (\d+) distinct events`).FindStringSubmatch(out)
	if m == nil || s == nil {
		t.Fatalf("no summaries in:\n%s", out)
	}
	held, rows, distinct := atoi(t, m[1]), atoi(t, s[1]), atoi(t, s[2])
	// The two sinks run independently; at stop either may be a batch ahead.
	if distinct < 250 || rows != distinct || distinct > held+1000 || held > distinct+1000 {
		t.Errorf("file holds %d, Sentinel %d rows (%d distinct):\n%s", held, rows, distinct, out)
	}
}

// TestSentinelTemplateWithDetections: --with-detections adds the
// CyberArk analytics rules and hunting queries, each once, to the
// cyberark_audit template, reading its table; without it there are none.
func TestSentinelTemplateWithDetections(t *testing.T) {
	type template struct {
		Resources []struct {
			Type       string `json:"type"`
			Name       string `json:"name"`
			Properties struct {
				DisplayName string `json:"displayName"`
				Query       string `json:"query"`
			} `json:"properties"`
		} `json:"resources"`
	}
	count := func(args ...string) (rules, hunts map[string]int) {
		t.Helper()
		out, errs, code := runMain(t, append([]string{"sentinel", "template", "--format", "cyberark_audit"}, args...)...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var tpl template
		if err := json.Unmarshal([]byte(out), &tpl); err != nil {
			t.Fatalf("not JSON: %v", err)
		}
		rules, hunts = map[string]int{}, map[string]int{}
		for _, r := range tpl.Resources {
			switch r.Type {
			case "Microsoft.OperationalInsights/workspaces/providers/alertRules":
				rules[r.Properties.DisplayName]++
			case "Microsoft.OperationalInsights/workspaces/savedSearches":
				hunts[r.Properties.DisplayName]++
			default:
				continue
			}
			if !strings.Contains(r.Properties.Query, "CyberArk_AuditEvents_CL") {
				t.Errorf("%s reads another table:\n%s", r.Properties.DisplayName, r.Properties.Query)
			}
		}
		return rules, hunts
	}
	rules, hunts := count("--with-detections")
	for _, want := range []string{"CyberArk - Failed Identity logons followed by a successful one", "CyberArk - Safe owner added or removed"} {
		if rules[want] != 1 {
			t.Errorf("rule %q appears %d times", want, rules[want])
		}
	}
	if len(rules) < 6 || len(hunts) < 3 {
		t.Errorf("%d rules and %d hunting queries: %v %v", len(rules), len(hunts), rules, hunts)
	}
	for name, n := range rules {
		if n != 1 || strings.HasPrefix(name, "PingOne") || strings.HasPrefix(name, "Okta") {
			t.Errorf("rule %q appears %d times", name, n)
		}
	}
	if rules, hunts := count(); len(rules)+len(hunts) != 0 {
		t.Errorf("without --with-detections: %v %v", rules, hunts)
	}
}
