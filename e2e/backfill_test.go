package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/daemon"
	"github.com/auditrelay/auditrelay/internal/store"
)

// backfillState returns the states of the live source and its backfill
// from `auditrelay status --json`.
func backfillState(t *testing.T, bin, cfg string, environ []string) (live, bf store.SourceState, st daemon.Status) {
	t.Helper()
	cmd := exec.Command(bin, "status", "--config", cfg, "--json")
	cmd.Env = environ
	out, err := cmd.Output()
	if err != nil || json.Unmarshal(out, &st) != nil {
		return live, bf, st
	}
	for _, s := range st.Store.Sources {
		switch s.Name {
		case "env-1":
			live = s
		case "env-1@backfill":
			bf = s
		}
	}
	return live, bf, st
}

// TestBackfill: the live source reads the last hour; a backfill of the
// three hours before asks the running daemon, which is killed -9 mid-way;
// the same backfill run again without a daemon resumes and ends it; the
// daemon started again delivers it. Every event the API holds reaches both
// sinks exactly once: the hour the live source had read is not read again,
// and the killed span is not lost. A second backfill of a span read is
// refused.
func TestBackfill(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	w := newWorld(t, 1)
	now := time.Now()
	w.emu.Backlog(w.gen, w.envs[0].ID, w.srv.URL, 6000, now.Add(-3*time.Hour), now.Add(-time.Minute))
	cfg := w.config(t, dir, "")
	b, _ := os.ReadFile(cfg)
	b = bytes.ReplaceAll(b, []byte("lookback: 2h"), []byte("lookback: 1h"))
	b = bytes.ReplaceAll(b, []byte("page_size: 200"), []byte("page_size: 25"))
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	environ := w.environ()
	logPath := filepath.Join(dir, "auditrelay.log")
	p := start(t, bin, cfg, environ, logPath)
	defer func() { p.kill(t) }()

	deadline := time.Now().Add(2 * time.Minute)
	for {
		live, _, st := backfillState(t, bin, cfg, environ)
		if live.Watermark.After(now.Add(-time.Minute)) && len(st.Store.Sinks) == 2 && st.Store.Sinks[0].Backlog == 0 && st.Store.Sinks[1].Backlog == 0 {
			if live.ReadFrom.IsZero() || live.ReadFrom.Before(now.Add(-62*time.Minute)) {
				t.Fatalf("the live source read from %v, want about an hour ago", live.ReadFrom)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live source did not catch up: %+v", live)
		}
		time.Sleep(200 * time.Millisecond)
	}

	from, to := now.Add(-4*time.Hour).UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339)
	args := []string{"backfill", "--config", cfg, "--source", "env-1", "--from", from, "--to", to}
	var out1 bytes.Buffer
	cli := exec.Command(bin, args...)
	cli.Env, cli.Stdout, cli.Stderr = environ, &out1, &out1
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	cliDone := make(chan error, 1)
	go func() { cliDone <- cli.Wait() }()
	var killedAt time.Time
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		_, bf, _ := backfillState(t, bin, cfg, environ)
		if bf.Events > 500 {
			p.kill(t)
			if _, bf, _ = backfillState(t, bin, cfg, environ); bf.Events >= 4000 {
				t.Fatalf("the backfill ended before the daemon was killed (%d events): nothing to resume", bf.Events)
			}
			killedAt = bf.Watermark
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backfill did not progress: %+v\n%s", bf, out1.String())
		}
	}
	select {
	case err := <-cliDone:
		if err == nil || !strings.Contains(out1.String(), "the daemon stopped before the backfill ended") {
			t.Errorf("backfill watching a killed daemon: %v\n%s", err, out1.String())
		}
	case <-time.After(30 * time.Second):
		cli.Process.Kill()
		t.Fatal("backfill did not notice the daemon was killed")
	}
	if !strings.Contains(out1.String(), "the running daemon reads it") || !strings.Contains(out1.String(), "the live source has read from") {
		t.Errorf("backfill did not say who reads it and where it stops:\n%s", out1.String())
	}

	// Without a daemon, the same command resumes it in this process.
	out2, code := run(t, bin, environ, args...)
	if code != 0 || !strings.Contains(out2, "resuming") || !strings.Contains(out2, "done") {
		t.Fatalf("backfill without a daemon (killed at %v) = %d:\n%s", killedAt, code, out2)
	}
	if out3, code := run(t, bin, environ, args...); code != 2 || !strings.Contains(out3, "an earlier backfill of env-1 read") {
		t.Errorf("a second backfill of the same span = %d, want 2 and a refusal naming the span read:\n%s", code, out3)
	}

	p = start(t, bin, cfg, environ, logPath)
	want := w.want()
	waitAll(t, dir, want, 2*time.Minute)
	compare(t, "archive", want, sinkIDs(t, filepath.Join(dir, "out", "a.ndjson")))
	compare(t, "second", want, sinkIDs(t, filepath.Join(dir, "out", "b.ndjson")))
}
