package sentinel

import (
	"crypto/sha1"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/detect"
)

// ARM API versions of the detection resources.
const (
	alertRuleAPIVersion   = "2023-02-01"
	savedSearchAPIVersion = "2020-08-01"
)

// Detection is one analytics rule or hunting query as a template deploys
// it: its query reads the template's table.
type Detection struct {
	// Name is the resource's name in the workspace: the rule's id, or
	// one derived from it and the table when the query was moved to
	// another table.
	Name string
	// Query is the rule's query, reading the template's table.
	Query     string
	Analytic  *detect.Analytic
	Hunting   *detect.Hunting
	FromTable string
}

// Detections returns the analytics rules and hunting queries of c that a
// template of format and table can deploy: those whose query reads the
// format's default table (moved to table), and, for the auditrelay
// format, which carries PingOne activities under the PingOne connector's
// column names, those of the PingOne connector's table, restricted to
// PingOne events.
func Detections(c *detect.Content, format, table string) []Detection {
	var out []Detection
	add := func(id, from, query string, a *detect.Analytic, h *detect.Hunting) {
		q, ok := retarget(query, from, format, table)
		if !ok {
			return
		}
		name := id
		if from != table {
			name = derivedID(id, table)
		}
		out = append(out, Detection{Name: name, Query: q, Analytic: a, Hunting: h, FromTable: from})
	}
	for i := range c.Analytics {
		a := &c.Analytics[i]
		add(a.ID, a.Table, a.Query, a, nil)
	}
	for i := range c.Hunting {
		h := &c.Hunting[i]
		add(h.ID, h.Table, h.Query, nil, h)
	}
	return out
}

// retarget rewrites a query that reads table from so that it reads the
// template's table instead, or reports false when the template's table
// does not hold those rows.
func retarget(query, from, format, table string) (string, bool) {
	switch {
	case from == DefaultTable(format):
		return replaceIdent(query, from, table), true
	case format == FormatAuditRelay && from == DefaultTablePingOneV2:
		return replaceIdent(query, from, "("+table+` | where Provider == "pingone")`), true
	}
	return "", false
}

// replaceIdent replaces every occurrence of the identifier old in query
// that is a whole word (not part of a longer name) by repl.
func replaceIdent(query, old, repl string) string {
	ident := func(b byte) bool {
		return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
	}
	var b strings.Builder
	for {
		i := strings.Index(query, old)
		if i < 0 {
			b.WriteString(query)
			return b.String()
		}
		end := i + len(old)
		whole := (i == 0 || !ident(query[i-1])) && (end == len(query) || !ident(query[end]))
		b.WriteString(query[:i])
		if whole {
			b.WriteString(repl)
		} else {
			b.WriteString(old)
		}
		query = query[end:]
	}
}

// derivedID is a GUID of its own for a rule moved to another table, so
// that the rule deployed for two tables of one workspace is two rules.
func derivedID(id, table string) string {
	h := sha1.Sum([]byte(id + "\x00" + table))
	h[6] = h[6]&0x0f | 0x50 // version 5: name-based, SHA-1
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// isoDuration writes d as an ISO 8601 duration: P1D, PT1H, PT15M.
func isoDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("P%dD", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("PT%dH", d/time.Hour)
	}
	return fmt.Sprintf("PT%dM", d/time.Minute)
}

// armString escapes a literal string for ARM: one that starts with '['
// would be read as an expression.
func armString(s string) string {
	if strings.HasPrefix(s, "[") {
		return "[" + s
	}
	return s
}

// techniques returns the ATT&CK technique ids of ts without
// sub-techniques, once each: the scheduled rule's techniques property
// takes T1234 only.
func techniques(ts []string) []string {
	var out []string
	for _, t := range ts {
		t, _, _ = strings.Cut(t, ".")
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

var triggerOperators = map[string]string{"gt": "GreaterThan", "lt": "LessThan", "eq": "Equal", "ne": "NotEqual"}

// detectionResources returns the ARM resources of the detections: a
// scheduled analytics rule or a hunting query (a saved search) each, after
// the table they read.
func detectionResources(ds []Detection, tableID string) []any {
	type obj = map[string]any
	var out []any
	for _, d := range ds {
		if a := d.Analytic; a != nil {
			props := obj{
				"displayName":           a.Name,
				"description":           armString(strings.TrimSpace(a.Description) + "\n\nTriage: " + strings.TrimSpace(a.Triage)),
				"severity":              a.Severity,
				"enabled":               true,
				"query":                 armString(d.Query),
				"queryFrequency":        isoDuration(a.Frequency),
				"queryPeriod":           isoDuration(a.Period),
				"triggerOperator":       triggerOperators[a.TriggerOperator],
				"triggerThreshold":      a.TriggerThreshold,
				"suppressionDuration":   "PT5H",
				"suppressionEnabled":    false,
				"tactics":               a.Tactics,
				"techniques":            techniques(a.RelevantTechniques),
				"incidentConfiguration": obj{"createIncident": true},
				"eventGroupingSettings": obj{"aggregationKind": "AlertPerResult"},
			}
			if len(a.EntityMappings) > 0 {
				props["entityMappings"] = a.EntityMappings
			}
			out = append(out, obj{
				"type":       "Microsoft.OperationalInsights/workspaces/providers/alertRules",
				"apiVersion": alertRuleAPIVersion,
				"name":       "[concat(parameters('workspaceName'), '/Microsoft.SecurityInsights/', '" + d.Name + "')]",
				"kind":       "Scheduled",
				"dependsOn":  []string{tableID},
				"properties": props,
			})
			continue
		}
		h := d.Hunting
		tags := []obj{
			{"name": "description", "value": armString(strings.TrimSpace(h.Description) + "\n\nTriage: " + strings.TrimSpace(h.Triage))},
			{"name": "tactics", "value": strings.Join(h.Tactics, ",")},
			{"name": "techniques", "value": strings.Join(techniques(h.RelevantTechniques), ",")},
		}
		out = append(out, obj{
			"type":       "Microsoft.OperationalInsights/workspaces/savedSearches",
			"apiVersion": savedSearchAPIVersion,
			"name":       "[concat(parameters('workspaceName'), '/', '" + d.Name + "')]",
			"dependsOn":  []string{tableID},
			"properties": obj{
				"category":    "Hunting Queries",
				"displayName": h.Name,
				"query":       armString(d.Query),
				"version":     2,
				"tags":        tags,
			},
		})
	}
	return out
}
