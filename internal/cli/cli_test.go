package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

func runMain(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
	return out.String(), errb.String(), code
}

// atoi is strconv.Atoi for a number a test took from a command's output.
func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUsageAndVersion(t *testing.T) {
	if _, errs, code := runMain(t); code != exitUsage || !strings.Contains(errs, "Usage:") {
		t.Errorf("no args: code %d, stderr %q", code, errs)
	}
	if _, errs, code := runMain(t, "frobnicate"); code != exitUsage || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: code %d, stderr %q", code, errs)
	}
	if out, _, code := runMain(t, "version"); code != exitOK || !strings.HasPrefix(out, "auditrelay ") {
		t.Errorf("version: code %d, out %q", code, out)
	}
	if _, errs, code := runMain(t, "run"); code != exitUsage || !strings.Contains(errs, "--config FILE is required") {
		t.Errorf("run without config: code %d, stderr %q", code, errs)
	}
	if _, errs, code := runMain(t, "validate", "--config", filepath.Join(t.TempDir(), "missing.yaml")); code != exitUsage || !strings.Contains(errs, "missing.yaml") {
		t.Errorf("missing config: code %d, stderr %q", code, errs)
	}
}

// TestDemo runs the quick-start command briefly: the emulated API's backlog
// reaches the file with no duplicate; a second run starts clean.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for seconds")
	}
	dir := filepath.Join(t.TempDir(), "demo")
	args := []string{"demo", "--dir", dir, "--duration", "4s", "--environments", "2", "--backlog", "400", "--rate", "10"}
	out, errs, code := runMain(t, args...)
	if code != exitOK {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	re := regexp.MustCompile(`PingOne API served (\d+) distinct events; \S+ holds (\d+) PingOne events, (\d+) duplicates`)
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in:\n%s", out)
	}
	served, held := atoi(t, m[1]), atoi(t, m[2])
	if served < 700 || held != served || m[3] != "0" {
		t.Fatalf("served %d, held %d, duplicates %s:\n%s", served, held, m[3], out)
	}
	ok := regexp.MustCompile(`Okta: the org served (\d+) distinct events; \S+ holds (\d+) of its events, (\d+) duplicates`).FindStringSubmatch(out)
	if ok == nil || atoi(t, ok[1]) < 300 || ok[3] != "0" || atoi(t, ok[2]) < atoi(t, ok[1])-50 {
		t.Errorf("the Okta org's events did not reach the file once each: %v\n%s", ok, out)
	}
	en := regexp.MustCompile(`Entra ID: Graph served (\d+) distinct events in 3 streams; \S+ holds (\d+) of them, (\d+) duplicates`).FindStringSubmatch(out)
	if en == nil || atoi(t, en[1]) < 100 || en[3] != "0" || atoi(t, en[2]) < atoi(t, en[1])-100 {
		t.Errorf("the Entra tenant's events did not reach the file once each: %v\n%s", en, out)
	}
	hec := regexp.MustCompile(`Splunk \(emulated\) indexed (\d+) events into index identity, (\d+) duplicates`).FindStringSubmatch(out)
	if hec == nil || atoi(t, hec[1]) == 0 || hec[2] != "0" {
		t.Errorf("the events did not reach Splunk once each: %v\n%s", hec, out)
	}
	es := regexp.MustCompile(`Elasticsearch \(emulated\) holds (\d+) documents, (\d+) duplicates .* in \[(.*)\]`).FindStringSubmatch(out)
	if es == nil || atoi(t, es[1]) == 0 || es[2] != "0" || !strings.Contains(es[3], "logs-ping_one.audit-default") || !strings.Contains(es[3], "logs-okta.system-default") {
		t.Errorf("the events did not reach Elasticsearch once each, in the integrations' data streams: %v\n%s", es, out)
	}
	if !regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d  polled +\d+ +\d+ events/s  delivered: elasticsearch \d+, file \d+, sekoia \d+, sentinel \d+, splunk \d+  spool +\d+  lag: `).MatchString(out) {
		t.Errorf("no live progress with per-sink deliveries in:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "auditrelay.db")); err != nil {
		t.Errorf("no store: %v", err)
	}
	// a second run starts over against its new emulator
	out, errs, code = runMain(t, args...)
	if code != exitOK {
		t.Fatalf("second demo exit %d\n%s\n%s", code, out, errs)
	}
	m2 := re.FindStringSubmatch(out)
	if m2 == nil || m2[3] != "0" || m2[2] == "0" {
		t.Fatalf("second run summary:\n%s", out)
	}
	if held2 := atoi(t, m2[2]); held2 > held+held/2 {
		t.Fatalf("second run holds %d events; the first run's output was not cleared (%d)", held2, held)
	}
}

func TestBuildString(t *testing.T) {
	for _, c := range []struct {
		bi   *debug.BuildInfo
		want string
	}{
		{nil, "auditrelay devel (commit unknown, " + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")"},
		{&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
			{Key: "vcs.revision", Value: "3f1c0d6e9a2b4c5d6e7f8091a2b3c4d5e6f7e9a2"},
			{Key: "vcs.time", Value: "2026-11-20T10:00:00Z"}, {Key: "vcs.modified", Value: "false"}}},
			"auditrelay v1.4.0 (commit 3f1c0d6e9a2b4c5d6e7f8091a2b3c4d5e6f7e9a2, 2026-11-20T10:00:00Z, go1.26.8, linux/arm64)"},
		{&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "windows"}, {Key: "GOARCH", Value: "amd64"},
			{Key: "vcs.revision", Value: "3f1c0d6e"}, {Key: "vcs.modified", Value: "true"}}},
			"auditrelay devel (commit 3f1c0d6e with local changes, go1.26.8, windows/amd64)"},
	} {
		if got := buildFrom(c.bi, c.bi != nil).String(); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}
