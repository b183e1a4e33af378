package sentinel

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/auditrelay/auditrelay/detections"
	"github.com/auditrelay/auditrelay/internal/detect"
	"github.com/auditrelay/auditrelay/internal/detect/kqltest"
)

// detectionTemplate is what the test reads of a template's resources.
type detectionTemplate struct {
	Resources []struct {
		Type       string   `json:"type"`
		Name       string   `json:"name"`
		Kind       string   `json:"kind"`
		DependsOn  []string `json:"dependsOn"`
		Properties struct {
			DisplayName     string   `json:"displayName"`
			Query           string   `json:"query"`
			QueryFrequency  string   `json:"queryFrequency"`
			QueryPeriod     string   `json:"queryPeriod"`
			TriggerOperator string   `json:"triggerOperator"`
			Severity        string   `json:"severity"`
			Tactics         []string `json:"tactics"`
			Techniques      []string `json:"techniques"`
			Category        string   `json:"category"`
			DataFlows       []struct {
				TransformKql string `json:"transformKql"`
			} `json:"dataFlows"`
		} `json:"properties"`
	} `json:"resources"`
}

func loadContent(t *testing.T) *detect.Content {
	t.Helper()
	c, err := detect.Load(detections.FS())
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// TestTemplateWithDetections checks each format's template with the
// detections: valid JSON, every rule for its table once and no other,
// each as the resource Sentinel expects; and every KQL text of every
// template (transformations, rules, hunting queries) parses with no
// diagnostic in Microsoft's Kusto parser, against the table's columns.
func TestTemplateWithDetections(t *testing.T) {
	content := loadContent(t)
	tables := map[string][]kqltest.Column{}
	var queries []kqltest.Query
	seenRule := map[string]int{}
	duration := regexp.MustCompile(`^P(T[0-9]+[HM]|[0-9]+D)$`)
	for _, format := range Formats() {
		for _, table := range []string{DefaultTable(format), "Acme_" + strings.ReplaceAll(format, "_", "") + "_CL"} {
			for _, withDetections := range []bool{false, true} {
				o := TemplateOptions{Format: format, Table: table, Workspace: "ws"}
				if withDetections {
					o.Detections = content
				}
				b, err := Template(o)
				if err != nil {
					t.Fatal(err)
				}
				if !json.Valid(b) {
					t.Fatalf("%s %s: not JSON", format, table)
				}
				var tpl detectionTemplate
				if err := json.Unmarshal(b, &tpl); err != nil {
					t.Fatal(err)
				}
				var cols []kqltest.Column
				for _, c := range TableColumns(format) {
					cols = append(cols, kqltest.Column{c.Name, c.Type})
				}
				tables[table] = cols
				var stream []kqltest.Column
				for _, c := range StreamColumns(format) {
					stream = append(stream, kqltest.Column{c.Name, c.Type})
				}
				where := fmt.Sprintf("%s/%s/detections=%v", format, table, withDetections)
				names := map[string]int{}
				rules, hunts := 0, 0
				for i, r := range tpl.Resources {
					p := r.Properties
					switch r.Type {
					case "Microsoft.Insights/dataCollectionRules":
						for _, f := range p.DataFlows {
							queries = append(queries, kqltest.Query{Name: where + "/transformKql", Text: f.TransformKql, Source: stream})
						}
						continue
					case "Microsoft.OperationalInsights/workspaces/providers/alertRules":
						rules++
						if r.Kind != "Scheduled" || !duration.MatchString(p.QueryFrequency) || !duration.MatchString(p.QueryPeriod) ||
							p.TriggerOperator == "" || p.Severity == "" || len(p.Tactics) == 0 || len(p.Techniques) == 0 {
							t.Errorf("%s: resource %d: %+v", where, i, r)
						}
						for _, tech := range p.Techniques {
							if strings.Contains(tech, ".") {
								t.Errorf("%s: %s: technique %s: a scheduled rule takes no sub-technique", where, p.DisplayName, tech)
							}
						}
						seenRule[p.DisplayName]++
					case "Microsoft.OperationalInsights/workspaces/savedSearches":
						hunts++
						if p.Category != "Hunting Queries" {
							t.Errorf("%s: %s: category %q", where, p.DisplayName, p.Category)
						}
					default:
						continue
					}
					names[r.Name]++
					if len(r.DependsOn) != 1 || !strings.Contains(r.DependsOn[0], "workspaces/tables") {
						t.Errorf("%s: %s does not depend on the table: %v", where, p.DisplayName, r.DependsOn)
					}
					if !strings.Contains(p.Query, table) || strings.HasPrefix(p.Query, "[") {
						t.Errorf("%s: %s: the query does not read %s:\n%s", where, p.DisplayName, table, p.Query)
					}
					queries = append(queries, kqltest.Query{Name: where + "/" + p.DisplayName, Text: p.Query})
				}
				for n, c := range names {
					if c != 1 {
						t.Errorf("%s: resource %s appears %d times", where, n, c)
					}
				}
				// Exactly the rules whose table this template holds.
				wantRules, wantHunts := 0, 0
				for _, a := range content.Analytics {
					if a.Table == DefaultTable(format) || format == FormatAuditRelay && a.Table == DefaultTablePingOneV2 {
						wantRules++
					}
				}
				for _, h := range content.Hunting {
					if h.Table == DefaultTable(format) || format == FormatAuditRelay && h.Table == DefaultTablePingOneV2 {
						wantHunts++
					}
				}
				if !withDetections {
					wantRules, wantHunts = 0, 0
				}
				if rules != wantRules || hunts != wantHunts {
					t.Errorf("%s: %d rules and %d hunting queries, want %d and %d", where, rules, hunts, wantRules, wantHunts)
				}
			}
		}
	}
	// Every analytics rule is in some template.
	for _, a := range content.Analytics {
		if seenRule[a.Name] == 0 {
			t.Errorf("%s is in no template", a.Name)
		}
	}
	kqltest.New(t).Check(t, tables, queries)
}

func TestReplaceIdent(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"T_CL | where x", "N | where x"},
		{"let a = materialize(T_CL | take 1); T_CL", "let a = materialize(N | take 1); N"},
		{"T_CLX | union XT_CL, T_CL", "T_CLX | union XT_CL, N"},
	} {
		if got := replaceIdent(tc.in, "T_CL", "N"); got != tc.want {
			t.Errorf("replaceIdent(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDerivedID(t *testing.T) {
	a, b := derivedID("de043d19-212f-49d5-9525-ead8c3b2d0f1", "A_CL"), derivedID("de043d19-212f-49d5-9525-ead8c3b2d0f1", "B_CL")
	guid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if a == b || !guid.MatchString(a) || !guid.MatchString(b) {
		t.Errorf("derived ids %s and %s", a, b)
	}
	if derivedID("x", "A_CL") != derivedID("x", "A_CL") {
		t.Error("derivedID is not deterministic")
	}
}

func TestISODuration(t *testing.T) {
	for d, want := range map[string]string{"15m": "PT15M", "1h": "PT1H", "2h": "PT2H", "1d": "P1D", "14d": "P14D", "90m": "PT90M"} {
		v, err := detect.ParseTimespan(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := isoDuration(v); got != want {
			t.Errorf("%s: %s, want %s", d, got, want)
		}
	}
}
