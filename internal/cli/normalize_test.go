package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/event"
)

// runNormalize runs `auditrelay normalize args` with stdin.
func runNormalize(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), append([]string{"normalize"}, args...), Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
	return out.String(), errb.String(), code
}

// fileSinkLines returns n PingOne events as the file sink writes them.
func fileSinkLines(t *testing.T, n int) (string, []event.Raw) {
	t.Helper()
	g := emulator.NewGenerator(9)
	var b []byte
	var evs []event.Raw
	for i := range n {
		a := g.Activity("env-1", "https://api.pingone.eu", time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC))
		r := event.Raw{Source: "p1", Provider: "pingone", Tenant: "env-1", ID: a.ID, Time: a.RecordedAt, Data: a.JSON}
		evs = append(evs, r)
		var err error
		if b, err = event.AppendLine(b, &r); err != nil {
			t.Fatal(err)
		}
	}
	return string(b), evs
}

func TestNormalizeFileSinkLines(t *testing.T) {
	in, evs := fileSinkLines(t, 20)
	for _, tt := range []struct{ format, idKey string }{{"ocsf", "metadata"}, {"ecs", "event"}, {"asim", ""}} {
		out, errs, code := runNormalize(t, in, "--format", tt.format)
		if code != 0 || errs != "" {
			t.Fatalf("%s: exit %d, stderr %q", tt.format, code, errs)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != len(evs) {
			t.Fatalf("%s: %d lines out, %d in", tt.format, len(lines), len(evs))
		}
		for i, l := range lines {
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%s line %d: %v", tt.format, i+1, err)
			}
			if !strings.Contains(l, evs[i].ID) {
				t.Errorf("%s line %d does not carry event %s", tt.format, i+1, evs[i].ID)
			}
		}
	}
}

func TestNormalizeBareEvents(t *testing.T) {
	g := emulator.NewEntraGenerator("tenant-1", 3)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in := string(g.SignIn(at).JSON) + "\n" + string(g.DirectoryAudit(at).JSON) + "\n\n" + string(g.Provisioning(at).JSON) + "\n"
	out, errs, code := runNormalize(t, in, "--format", "ocsf", "--provider", "entra")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	var classes []string
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var ev struct {
			Metadata struct {
				LogName string `json:"log_name"`
			}
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatal(err)
		}
		classes = append(classes, ev.Metadata.LogName)
	}
	if got := strings.Join(classes, ","); got != "signIns,directoryAudits,provisioning" {
		t.Errorf("streams %s", got)
	}
}

// TestNormalizeBadLines checks that each unreadable line is reported with
// its number, the others are still converted, and the run exits 1.
func TestNormalizeBadLines(t *testing.T) {
	in, _ := fileSinkLines(t, 3)
	lines := strings.Split(strings.TrimSuffix(in, "\n"), "\n")
	bad := lines[0] + "\nnot json\n" + lines[1] + "\n{\"id\":\"x\",\"raw\":{}}\n" + lines[2] + "\n"
	out, errs, code := runNormalize(t, bad, "--format", "ecs")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if n := strings.Count(out, "\n"); n != 3 {
		t.Errorf("%d lines converted, want 3:\n%s", n, out)
	}
	for _, want := range []string{"line 2:", "line 4:", `no "provider"`, "2 line(s) could not be converted"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	_, errs, code = runNormalize(t, "[1]\n", "--format", "ocsf", "--provider", "cyberark")
	if code != 1 || !strings.Contains(errs, "line 1:") || !strings.Contains(errs, "not a JSON object") {
		t.Errorf("bare array: exit %d, stderr %q", code, errs)
	}
}

func TestNormalizeUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"--format", "raw"}, {"--format", "xml"}, {"--format", "ocsf", "--provider", "github"}, {"--format", "ocsf", "extra"}} {
		if _, _, code := runNormalize(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
