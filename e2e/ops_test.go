package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/secret/secrettest"
)

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func metric(addr, name string) (float64, bool) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` ([0-9.e+-]+)$`).FindSubmatch(b)
	if m == nil {
		return 0, false
	}
	var v float64
	fmt.Sscan(string(m[1]), &v)
	return v, true
}

// TestSinkOutageAndFullSpool: one sink cannot write for a while (its
// directory is a file); the other keeps delivering until the spool reaches
// its bound, then polling pauses; when the sink heals, everything reaches
// both sinks exactly once.
func TestSinkOutageAndFullSpool(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	w := newWorld(t, 1)
	now := time.Now()
	w.emu.Backlog(w.gen, w.envs[0].ID, w.srv.URL, 5000, now.Add(-time.Hour), now.Add(-10*time.Second))
	addr := freePort(t)
	cfg := w.config(t, dir, "")
	// sink "second" writes under a path whose parent is a regular file
	blocked := filepath.Join(dir, "out", "blocked")
	b, _ := os.ReadFile(cfg)
	b = bytes.Replace(b, []byte(filepath.Join(dir, "out", "b.ndjson")), []byte(filepath.Join(blocked, "b.ndjson")), 1)
	b = append([]byte(fmt.Sprintf("spool_max_bytes: 1MiB\nmetrics_listen: %s\n", addr)), b...)
	os.WriteFile(cfg, b, 0o600)
	os.MkdirAll(filepath.Join(dir, "out"), 0o700)
	os.WriteFile(blocked, []byte("not a directory"), 0o600)

	logPath := filepath.Join(dir, "auditrelay.log")
	p := start(t, bin, cfg, w.environ(), logPath)
	defer p.kill(t)
	// polling pauses at the bound
	deadline := time.Now().Add(30 * time.Second)
	paused := false
	for time.Now().Before(deadline) && !paused {
		v, ok := metric(addr, `auditrelay_source_paused{source="env-1"}`)
		paused = ok && v == 1
		time.Sleep(100 * time.Millisecond)
	}
	if !paused {
		t.Fatal("polling did not pause with the spool at its bound")
	}
	spool, _ := metric(addr, "auditrelay_spool_bytes")
	if spool < 1<<20 || spool > 4<<20 {
		t.Errorf("spool holds %.0f bytes; want just over the 1MiB bound", spool)
	}
	got := sinkIDs(t, filepath.Join(dir, "out", "a.ndjson"))
	if len(got) == 0 || len(got) >= 5000 {
		t.Errorf("healthy sink holds %d events during the outage; want some but not all (the spool bound stops polling)", len(got))
	}
	if up, _ := metric(addr, `auditrelay_runner_up{name="second",runner="sink"}`); up != 1 {
		t.Errorf("a transient sink outage marked the runner down")
	}
	// heal the sink
	os.Remove(blocked)
	want := w.want()
	deadline = time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if covers(sinkIDs(t, filepath.Join(dir, "out", "a.ndjson")), want) && covers(sinkIDs(t, filepath.Join(blocked, "b.ndjson")), want) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	p.stop(t)
	compare(t, "archive", want, sinkIDs(t, filepath.Join(dir, "out", "a.ndjson")))
	compare(t, "second", want, sinkIDs(t, filepath.Join(blocked, "b.ndjson")))
	logb, _ := os.ReadFile(logPath)
	if !strings.Contains(string(logb), "spool full: polling paused") {
		t.Error("the log does not say polling paused")
	}
}

func run(t *testing.T, bin string, environ []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = environ
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// TestOperatorCommands runs validate, check, status, checkpoint and run
// with known secrets; no output may contain a secret, and each failure
// names its fix with the documented exit code.
func TestOperatorCommands(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	w := newWorld(t, 2)
	now := time.Now()
	for _, e := range w.envs {
		w.emu.Backlog(w.gen, e.ID, w.srv.URL, 300, now.Add(-time.Hour), now.Add(-time.Minute))
	}
	cfg := w.config(t, dir, "")
	env := w.environ()
	var outputs []string
	// expect runs a command and matches its output against want, a
	// regular expression in multi-line mode: anchor it to a whole line or
	// field, so that a negated message ("not running") cannot pass for the
	// affirmative one ("running").
	expect := func(wantCode int, want string, args ...string) string {
		t.Helper()
		out, code := run(t, bin, env, args...)
		outputs = append(outputs, out)
		if code != wantCode || !regexp.MustCompile("(?m)"+want).MatchString(out) {
			t.Errorf("auditrelay %s: exit %d, want %d with %q; output:\n%s", strings.Join(args, " "), code, wantCode, want, out)
		}
		return out
	}
	expect(0, `: valid \(2 sources, 2 sinks\)$`, "validate", "--config", cfg)
	expect(0, `^\s+client_secret: '\[redacted\]'$`, "validate", "--config", cfg, "--print")
	expect(0, `^ok    source env-2$`, "check", "--config", cfg)
	expect(0, `^\{"source":"env-1","provider":"pingone",`, "poll", "--config", cfg, "--source", "env-1")
	expect(0, `^daemon: not running; spool: `, "status", "--config", cfg)

	// run until both environments are delivered, then status while running
	logPath := filepath.Join(dir, "run.log")
	p := start(t, bin, cfg, env, logPath)
	want := w.want()
	waitAll(t, dir, want, 30*time.Second)
	expect(0, `^daemon: running \S+; spool: `, "status", "--config", cfg)
	expect(0, `^    "source": "env-1",$`, "checkpoint", "show", "--config", cfg)
	expect(1, `already running with pid \d+`, "run", "--config", cfg)
	p.stop(t)
	compare(t, "archive", want, sinkIDs(t, filepath.Join(dir, "out", "a.ndjson")))
	logb, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(logb))

	// a wrong secret: check fails with the fix, exit 1
	bad := append(append([]string{}, env...), "SECRET_1=wrong-secret-value-xyz")
	out, code := run(t, bin, bad, "check", "--config", cfg)
	outputs = append(outputs, out)
	if code != 1 || !strings.Contains(out, "FAIL  source env-1") || !strings.Contains(out, "client_secret") {
		t.Errorf("check with a wrong secret: exit %d, output:\n%s", code, out)
	}
	for _, s := range secrettest.Forms(w.envs[0].ClientID, "wrong-secret-value-xyz") {
		if strings.Contains(out, s) {
			t.Errorf("check printed the wrong secret as %q", s)
		}
	}

	// the same source name now points at another environment: refused
	moved, _ := os.ReadFile(cfg)
	moved = bytes.Replace(moved, []byte(fmt.Sprintf("environment_id: %q\n      client_id: %q", w.envs[0].ID, w.envs[0].ClientID)),
		[]byte(fmt.Sprintf("environment_id: %q\n      client_id: %q", w.envs[1].ID, w.envs[0].ClientID)), 1)
	movedCfg := filepath.Join(dir, "moved.yaml")
	os.WriteFile(movedCfg, moved, 0o600)
	expect(1, `checkpoint reset --source env-1 --config FILE`, "run", "--config", movedCfg)
	expect(0, `^source env-1 reset: `, "checkpoint", "reset", "--config", movedCfg, "--source", "env-1")

	// an invalid configuration: exit 2, every problem with its path
	badCfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badCfg, []byte("data_dir: x\nsources:\n  - name: a\n    pingone: {environment_id: e, client_id: c, client_secret: \"${env:NOPE_UNSET}\", api_url: \"http://example.com\", lookback: 15d}\nsinks:\n  - name: s\n    sources: [b]\n    stdout: {}\n"), 0o600)
	out = expect(2, "NOPE_UNSET", "run", "--config", badCfg)
	for _, want := range []string{"sources[0].pingone.api_url", "sources[0].pingone.lookback", "sinks[0].sources[0]"} {
		if !strings.Contains(out, want) {
			t.Errorf("invalid config output lacks %q:\n%s", want, out)
		}
	}
	expect(2, "NOPE_UNSET", "validate", "--config", badCfg)

	for _, o := range outputs {
		for _, e := range w.envs {
			for _, s := range secrettest.Forms(e.ClientID, e.ClientSecret) {
				if strings.Contains(o, s) {
					t.Errorf("the client secret of %s appears in output as %q:\n%s", e.ID, s, o)
				}
			}
		}
	}
}
