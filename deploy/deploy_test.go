// Package deploy_test checks the files under deploy/ against the tools that
// load them and against the metrics the daemon serves.
package deploy_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/daemon"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/pipeline"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/sink/file"
	"github.com/auditrelay/auditrelay/internal/sink/sekoia"
	"github.com/auditrelay/auditrelay/internal/sink/sentinel"
	"github.com/auditrelay/auditrelay/internal/source/pingone"
	"github.com/auditrelay/auditrelay/internal/units"
)

// needTool returns the path of a tool, or skips the test when it is missing
// outside CI. In CI (CI=true) a missing tool fails the test.
func needTool(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not on PATH and CI=true: %s", name, install)
	}
	t.Skipf("%s is not on PATH; to run this test: %s", name, install)
	return ""
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtool(t *testing.T) {
	promtool := needTool(t, "promtool", "apt-get install prometheus")
	t.Log(run(t, "prometheus", promtool, "check", "rules", "alerts.yaml"))
	t.Log(run(t, "prometheus", promtool, "test", "rules", "alerts_test.yaml"))
}

// alertExprs reads the expression of every rule in alerts.yaml.
func alertExprs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert, Record, Expr string
			}
		}
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out["alert "+r.Alert+r.Record] = r.Expr
		}
	}
	if len(out) == 0 {
		t.Fatal("no rules in prometheus/alerts.yaml")
	}
	return out
}

var (
	quoted    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	braces    = regexp.MustCompile(`\{[^{}]*\}`)
	brackets  = regexp.MustCompile(`\[[^\[\]]*\]`)
	variables = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	// Label lists after these keywords name labels, not metrics.
	labelList = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	ident     = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	keywords  = map[string]bool{"and": true, "or": true, "unless": true, "offset": true, "bool": true,
		"inf": true, "nan": true, "by": true, "without": true, "on": true, "ignoring": true,
		"group_left": true, "group_right": true, "atan2": true, "e": true}
)

// metricNames returns the metric names a PromQL expression selects: every
// identifier left once strings, label matchers, ranges, template variables
// and label lists are removed, that is not a keyword or a function call.
func metricNames(expr string) []string {
	s := quoted.ReplaceAllString(expr, `""`)
	s = variables.ReplaceAllString(s, "")
	for prev := ""; prev != s; {
		prev, s = s, braces.ReplaceAllString(s, " ")
	}
	s = brackets.ReplaceAllString(s, " ")
	s = labelList.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range ident.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if keywords[strings.ToLower(name)] {
			continue
		}
		if loc[0] > 0 && (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.') {
			continue // a duration or number such as 5m or 1e3
		}
		if strings.HasPrefix(strings.TrimLeft(s[loc[1]:], " \t\n"), "(") {
			continue // a function
		}
		out = append(out, name)
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`time() - a_seconds{x="y"} > 1800 and on (job, instance) b > 0`, []string{"a_seconds", "b"}},
		{`sum by (source, le) (rate(c_bucket{le="+Inf"}[5m] offset 1h))`, []string{"c_bucket"}},
		{`increase(d_total{source=~"$source"}[$__rate_interval]) > 1e3`, []string{"d_total"}},
	} {
		if got := metricNames(c.expr); strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("metricNames(%q) = %v, want %v", c.expr, got, c.want)
		}
	}
}

// TestMetricsExist fails when an alert or a dashboard query names a metric
// that auditrelay does not serve.
func TestMetricsExist(t *testing.T) {
	known := servedMetrics(t)
	exprs := alertExprs(t)
	for k, v := range dashboardQueries(t) {
		exprs[k] = v
	}
	for name, expr := range exprs {
		for _, m := range metricNames(expr) {
			if !known[m] {
				t.Errorf("%s uses %s, which auditrelay does not serve", name, m)
			}
		}
	}
}

// dashboardQueries reads the query of every panel target and template
// variable of the Grafana dashboard. A variable's label_values(metric,
// label) is kept as its metric selector.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("grafana/auditrelay.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Inputs []struct{ Name string } `json:"__inputs"`
		Panels []struct {
			Title      string
			Datasource struct{ UID string }
			Targets    []struct{ RefID, Expr string }
		}
		Templating struct {
			List []struct {
				Name  string
				Query struct{ Query string }
			}
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" {
		t.Errorf("dashboard inputs = %+v, want the one datasource input DS_PROMETHEUS", d.Inputs)
	}
	out := map[string]string{}
	for _, p := range d.Panels {
		if p.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("panel %q datasource uid = %q, want ${DS_PROMETHEUS}", p.Title, p.Datasource.UID)
		}
		for _, tg := range p.Targets {
			out["panel "+p.Title+" "+tg.RefID] = tg.Expr
		}
	}
	lv := regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`)
	for _, v := range d.Templating.List {
		m := lv.FindStringSubmatch(v.Query.Query)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(metric, label)", v.Name, v.Query.Query)
			continue
		}
		out["variable "+v.Name] = m[1]
	}
	if len(d.Panels) == 0 {
		t.Fatal("no panels in grafana/auditrelay.json")
	}
	return out
}

// recorder is a Registerer that keeps the collectors registered with it.
type recorder struct{ cs []prometheus.Collector }

func (r *recorder) Register(c prometheus.Collector) error { r.cs = append(r.cs, c); return nil }
func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	r.cs = append(r.cs, cs...)
}
func (r *recorder) Unregister(prometheus.Collector) bool { return false }

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

// servedMetrics returns every series name auditrelay can serve, from two
// sources. A scrape of a running daemon (with a PingOne source and a file,
// a Sentinel and a Sekoia.io sink) gives the metrics that always have a
// value: the spool, build, Go and process gauges and the sinks' own
// counters. Labelled metrics appear in a scrape only once a value is set
// (a gap, a late event, a halted runner), so the pipeline's metrics are
// taken from the descriptors of its collectors instead, which list every
// name whether or not it has a value. Histograms and summaries add their
// _bucket, _sum and _count series.
func servedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	add := func(name, typ string) {
		known[name] = true
		switch typ {
		case "histogram":
			known[name+"_bucket"], known[name+"_sum"], known[name+"_count"] = true, true, true
		case "summary":
			known[name+"_sum"], known[name+"_count"] = true, true
		}
	}
	rec := &recorder{}
	pipeline.NewMetrics(rec)
	for _, c := range rec.cs {
		typ := ""
		switch c.(type) {
		case *prometheus.HistogramVec, prometheus.Histogram:
			typ = "histogram"
		case *prometheus.SummaryVec, prometheus.Summary:
			typ = "summary"
		}
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			m := descName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("no name in descriptor %s", d)
			}
			add(m[1], typ)
		}
	}
	if len(known) < 10 {
		t.Fatalf("only %d pipeline metric names from the descriptors: %v", len(known), known)
	}

	for _, line := range strings.Split(scrape(t), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			add(f[2], f[3])
		}
	}
	for _, want := range []string{"auditrelay_spool_bytes", "auditrelay_sentinel_parked_total", "auditrelay_sekoia_parked_total"} {
		if !known[want] {
			t.Fatalf("the scrape has no %s; the daemon under test lacks a sink or a metric", want)
		}
	}
	return known
}

// scrape runs a daemon against the PingOne emulator until it has polled,
// and returns its /metrics.
func scrape(t *testing.T) string {
	t.Helper()
	const clientSecret = "deploy-secret-7a1e"
	emu := emulator.NewPingOne(emulator.PingOneOptions{})
	srv := httptest.NewServer(emu)
	defer srv.Close()
	emu.AddEnvironment(emulator.Environment{ID: "env", Licence: "l", ClientID: "c", ClientSecret: clientSecret})
	emu.Backlog(emulator.NewGenerator(1), "env", srv.URL, 20, time.Now().Add(-time.Hour), time.Now().Add(-time.Minute))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// Nothing listens on a closed port: the Sentinel and Sekoia.io sinks fail
	// to send, which leaves their counters at 0 but served.
	dead := "http://" + addr + "/nothing"

	dir := t.TempDir()
	cfg := &config.Config{DataDir: filepath.Join(dir, "data"), MetricsListen: addr, SpoolMaxBytes: 1 << 30}
	pc := &pingone.Config{EnvironmentID: "env", ClientID: "c", ClientSecret: secret.New(clientSecret), APIURL: srv.URL, AuthURL: srv.URL,
		SettleDelay: units.Duration(time.Second), PollInterval: units.Duration(200 * time.Millisecond), RateLimit: 10, Licence: "l"}
	pc.SetDefaults()
	cfg.Sources = []config.Source{{Name: "p1", PingOne: pc}}
	fc := &file.Config{Path: filepath.Join(dir, "out.ndjson")}
	fc.SetDefaults()
	sc := &sentinel.Config{Endpoint: dead, DCRImmutableID: "dcr-00000000000000000000000000000000", Format: sentinel.FormatAuditRelay,
		TenantID: "t", ClientID: "c", ClientSecret: secret.New("s"), AuthorityURL: dead}
	sc.SetDefaults()
	kc := &sekoia.Config{IntakeKey: secret.New("k"), URL: dead}
	kc.SetDefaults()
	cfg.Sinks = []config.Sink{{Name: "file", File: fc}, {Name: "sentinel", Sentinel: sc}, {Name: "sekoia", Sekoia: kc}}

	d, err := daemon.New(cfg, daemon.Options{Logger: slog.New(slog.DiscardHandler), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		body, err := get("http://" + addr + "/metrics")
		if err == nil && strings.Contains(body, `auditrelay_source_polls_total{result="ok",source="p1"}`) &&
			strings.Contains(body, `auditrelay_sink_offset{sink="file"}`) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful poll in /metrics after 30s: %v\n%s", err, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
