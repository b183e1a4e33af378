package detect_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/auditrelay/auditrelay/internal/detect"
)

const goodRule = `id: 0b0c1d2e-3f40-4152-8364-758697a8b9ca
name: 'Test rule'
description: |
  What fires.
triage: |
  What to do.
severity: Medium
table: T_CL
sigma:
  - some_rule
queryFrequency: 1h
queryPeriod: 1d
triggerOperator: gt
triggerThreshold: 0
tactics:
  - Persistence
relevantTechniques:
  - T1098.003
query: |
  T_CL | take 1
version: 1.0.0
kind: Scheduled
`

func TestLoad(t *testing.T) {
	c, err := detect.Load(fstest.MapFS{"sentinel/analytics/a.yaml": {Data: []byte(goodRule)}})
	if err != nil {
		t.Fatal(err)
	}
	a := c.Analytics[0]
	if a.Frequency.String() != "1h0m0s" || a.Period.String() != "24h0m0s" || a.File != "sentinel/analytics/a.yaml" || a.Sigma[0] != "some_rule" {
		t.Errorf("loaded %+v", a)
	}
}

func TestLoadRejects(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{"severity: Medium", "severity: Critical", "severity"},
		{"  - Persistence", "  - Persistance", "is not a tactic"},
		{"  - T1098.003", "  - 1098", "not an ATT&CK technique"},
		{"queryPeriod: 1d", "queryPeriod: 30m", "shorter than queryFrequency"},
		{"queryPeriod: 1d", "queryPeriod: 30d", "outside Sentinel's"},
		{"table: T_CL", "table: U_CL", "does not read its table"},
		{"triggerOperator: gt", "triggerOperator: '>'", "triggerOperator"},
		{"kind: Scheduled", "kind: NRT", "kind"},
		{"id: 0b0c1d2e-3f40-4152-8364-758697a8b9ca", "id: rule-1", "not a lowercase GUID"},
		{"version: 1.0.0", "versoin: 1.0.0", "field versoin not found"},
		{"sigma:\n  - some_rule\n", "", "sigma: name the Sigma rules"},
	} {
		doc := strings.Replace(goodRule, tc.from, tc.to, 1)
		_, err := detect.Load(fstest.MapFS{"sentinel/analytics/a.yaml": {Data: []byte(doc)}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s → %s: error %v, want %q", tc.from, tc.to, err, tc.want)
		}
	}
	// Two files with one id.
	_, err := detect.Load(fstest.MapFS{"sentinel/analytics/a.yaml": {Data: []byte(goodRule)}, "sentinel/analytics/b.yaml": {Data: []byte(goodRule)}})
	if err == nil || !strings.Contains(err.Error(), "is also") {
		t.Errorf("duplicate ids: %v", err)
	}
	if _, err := detect.Load(fstest.MapFS{}); err == nil {
		t.Error("no rule loaded without error")
	}
}

func FuzzParseCorrelation(f *testing.F) {
	f.Add([]byte("title: x\ncorrelation: {type: event_count, rules: [r], group-by: [u], timespan: 5m, condition: {gte: 3}}"))
	f.Add([]byte("title: x\ncorrelation: {type: temporal_ordered, rules: [a, b], group-by: [u], timespan: 1h}"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := detect.ParseCorrelation(doc)
		if err != nil {
			return
		}
		e, err := detect.NewEngine([]detect.Correlation{c})
		if err != nil {
			return
		}
		f, _ := detect.Flatten([]byte(`{"u":"1"}`))
		for _, r := range c.Rules {
			e.Observe(r, f)
		}
	})
}
