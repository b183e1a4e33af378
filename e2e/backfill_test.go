package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/daemon"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/store"
	"github.com/auditrelay/auditrelay/internal/store/postgres/pgtest"
)

// backfillState returns the states of the live source env-1 and its
// backfill from `auditrelay status --json`.
func backfillState(t *testing.T, bin, cfg string, environ []string) (live, bf store.SourceState, st daemon.Status) {
	return backfillStateOf(t, bin, cfg, environ, "env-1")
}

// backfillStateOf returns the states of the live source name and its
// backfill from `auditrelay status --json`.
func backfillStateOf(t *testing.T, bin, cfg string, environ []string, name string) (live, bf store.SourceState, st daemon.Status) {
	t.Helper()
	cmd := exec.Command(bin, "status", "--config", cfg, "--json")
	cmd.Env = environ
	out, err := cmd.Output()
	if err != nil || json.Unmarshal(out, &st) != nil {
		return live, bf, st
	}
	for _, s := range st.Store.Sources {
		switch s.Name {
		case name:
			live = s
		case name + "@backfill":
			bf = s
		}
	}
	return live, bf, st
}

// waitCaughtUp waits until the live source name has a watermark after
// since and every sink has delivered all it was given, failing with p's
// log (and p killed) when it does not within two minutes or p exits.
func waitCaughtUp(t *testing.T, bin, cfg string, environ []string, name string, since time.Time, p *proc) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		live, _, st := backfillStateOf(t, bin, cfg, environ, name)
		done := live.Watermark.After(since) && len(st.Store.Sinks) > 0
		for _, s := range st.Store.Sinks {
			done = done && s.Backlog == 0
		}
		if done {
			return
		}
		if time.Now().After(deadline) || p.exited() {
			if !p.exited() {
				p.kill(t)
			}
			b, _ := os.ReadFile(p.log)
			t.Fatalf("source %s did not catch up: %+v\n%s", name, live, b)
		}
	}
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

// TestBackfillCyberArk: a CyberArk source reads the last hour; a backfill
// of the four hours before, asked of the running daemon, reads the rest of
// what the tenant holds, the hour already read excepted; the file and
// Sekoia.io sinks end with every event exactly once.
func TestBackfillCyberArk(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	w := newCAWorld(t, time.Hour)
	now := time.Now()
	w.ca.Backlog(w.gen, w.tenant.ID, 3000, now.Add(-3*time.Hour), now.Add(-time.Minute))
	cfg := w.config(t, dir)
	b, _ := os.ReadFile(cfg)
	b = bytes.ReplaceAll(b, []byte("lookback: 2h"), []byte("lookback: 1h"))
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	environ := caEnviron()
	p := start(t, bin, cfg, environ, filepath.Join(dir, "auditrelay.log"))
	defer func() { p.kill(t) }()
	waitCaughtUp(t, bin, cfg, environ, "cyberark-prod", now.Add(-time.Minute), p)
	before := len(caFileIDs(t, filepath.Join(dir, "out", "a.ndjson")))
	if want := len(w.want()); before == 0 || before >= want {
		t.Fatalf("the live source read %d of %d events: want the last hour only", before, want)
	}
	from, to := now.Add(-4*time.Hour).UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339)
	out, code := run(t, bin, environ, "backfill", "--config", cfg, "--source", "cyberark-prod", "--from", from, "--to", to)
	if code != 0 || !strings.Contains(out, "the running daemon reads it") || !strings.Contains(out, "backfill of cyberark-prod done") {
		t.Fatalf("backfill = %d:\n%s", code, out)
	}
	want := w.want()
	file := filepath.Join(dir, "out", "a.ndjson")
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if covers(caFileIDs(t, file), want) && covers(w.sekoiaIDs(t), want) {
			break
		}
	}
	compare(t, "archive", want, caFileIDs(t, file))
	compare(t, "sekoia-cyberark", want, w.sekoiaIDs(t))
	// Older than the tenant keeps: refused, saying where such events are.
	old := now.Add(-30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	if out, code := run(t, bin, environ, "backfill", "--config", cfg, "--source", "cyberark-prod", "--from", old, "--to", from); code != 2 || !strings.Contains(out, "retention") {
		t.Errorf("a backfill past retention = %d, want 2 and the reason:\n%s", code, out)
	}
	t.Logf("live source read %d events; the backfill brought the file sink to %d", before, len(want))
}

// TestBackfillEntra: an Entra ID sign-ins stream reads the last hour; with
// the daemon stopped, a backfill of the four hours before reads the rest into the
// spool in its own process; the daemon started again delivers it: every
// event exactly once.
func TestBackfillEntra(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	emu := emulator.NewEntra(emulator.EntraOptions{RateLimit: 50, RateWindow: 10 * time.Second, Seed: 9})
	emu.AddTenant(emulator.EntraTenant{ID: entraTenant, Premium: true})
	emu.AddApp(emulator.EntraApp{TenantID: entraTenant, ClientID: entraClient, ClientSecret: entraSecret,
		Permissions: []string{emulator.EntraAuditLogRead, emulator.EntraDirectoryRead}})
	srv := httptest.NewServer(emu)
	defer srv.Close()
	now := time.Now()
	emu.Backlog(emulator.NewEntraGenerator(entraTenant, 43), entraTenant, emulator.EntraSignIns, 1200, now.Add(-3*time.Hour), now.Add(-time.Minute), 0)
	cfg := filepath.Join(dir, "auditrelay.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `data_dir: %s
sources:
  - name: entra-contoso
    entra:
      tenant_id: %s
      client_id: %s
      client_secret: "${env:ENTRA_CLIENT_SECRET}"
      streams: [sign_ins]
      authority_url: %s
      graph_url: %s
      settle_delay: 2s
      overlap: 3s
      lookback: 1h
      page_size: 500
      poll_interval: 1s
      rate_limit: 0.5
sinks:
  - name: archive
    file: { path: %s, batch_size: 400 }
`, filepath.Join(dir, "data"), entraTenant, entraClient, srv.URL, srv.URL, filepath.Join(dir, "out", "a.ndjson")), 0o600); err != nil {
		t.Fatal(err)
	}
	environ := append(os.Environ(), "ENTRA_CLIENT_SECRET="+entraSecret)
	const name = "entra-contoso/sign_ins"
	logPath := filepath.Join(dir, "auditrelay.log")
	p := start(t, bin, cfg, environ, logPath)
	waitCaughtUp(t, bin, cfg, environ, name, now.Add(-time.Minute), p)
	p.stop(t)
	file := filepath.Join(dir, "out", "a.ndjson")
	before := len(entraFileIDs(t, file))
	from, to := now.Add(-4*time.Hour).UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339)
	out, code := run(t, bin, environ, "backfill", "--config", cfg, "--source", name, "--from", from, "--to", to)
	if code != 0 || !strings.Contains(out, "no daemon runs") || !strings.Contains(out, "backfill of "+name+" done") {
		t.Fatalf("backfill = %d:\n%s", code, out)
	}
	p = start(t, bin, cfg, environ, logPath)
	want := map[string]bool{}
	for _, id := range emu.Events(entraTenant, emulator.EntraSignIns) {
		want["sign_ins/"+id] = true
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && !covers(entraFileIDs(t, file), want); {
		time.Sleep(250 * time.Millisecond)
	}
	p.stop(t)
	compare(t, "archive", want, entraFileIDs(t, file))
	if before == 0 || before >= len(want) {
		t.Errorf("the live source read %d of %d events: want the last hour only", before, len(want))
	}
	t.Logf("live source read %d events; after the backfill the file holds %d", before, len(want))
}

// TestBackfillOkta: an Okta source follows the System Log's polling
// stream from an hour back; a backfill of the four hours before, asked of
// the running daemon, reads them through bounded queries in windows of
// published time: every event exactly once.
func TestBackfillOkta(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	w := newOktaWorld(t, emulator.OktaOptions{RateLimit: 600, TokenTTL: time.Hour})
	now := time.Now()
	w.emu.Backlog(w.gen, 2000, now.Add(-3*time.Hour), now.Add(-time.Minute), time.Second)
	cfg := filepath.Join(dir, "auditrelay.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `data_dir: %s
sources:
  - name: okta-prod
    okta:
      org_url: %s
      auth: oauth
      client_id: 0oa-auditrelay
      private_key_file: %s
      key_id: k1
      page_size: 300
      poll_interval: 1s
      lookback: 1h
      rate_limit: 20
sinks:
  - name: archive
    file: { path: %s, batch_size: 400 }
`, filepath.Join(dir, "data"), w.srv.URL, w.keyFile, filepath.Join(dir, "out", "a.ndjson")), 0o600); err != nil {
		t.Fatal(err)
	}
	environ := os.Environ()
	p := start(t, bin, cfg, environ, filepath.Join(dir, "auditrelay.log"))
	defer func() { p.kill(t) }()
	waitCaughtUp(t, bin, cfg, environ, "okta-prod", now.Add(-time.Minute), p)
	file := filepath.Join(dir, "out", "a.ndjson")
	before := len(oktaFileIDs(t, file))
	from, to := now.Add(-4*time.Hour).UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339)
	out, code := run(t, bin, environ, "backfill", "--config", cfg, "--source", "okta-prod", "--from", from, "--to", to)
	if code != 0 || !strings.Contains(out, "backfill of okta-prod done") {
		t.Fatalf("backfill = %d:\n%s", code, out)
	}
	want := w.want()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && !covers(oktaFileIDs(t, file), want); {
		time.Sleep(250 * time.Millisecond)
	}
	compare(t, "archive", want, oktaFileIDs(t, file))
	if t.Failed() {
		b, _ := os.ReadFile(filepath.Join(dir, "auditrelay.log"))
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "backfill") || strings.Contains(l, "gap") || strings.Contains(l, "window") {
				t.Log(l)
			}
		}
		t.Log(out)
	}
	if before == 0 || before >= len(want) {
		t.Errorf("the live source read %d of %d events: want the last hour only", before, len(want))
	}
	old := now.Add(-100 * 24 * time.Hour).UTC().Format(time.RFC3339)
	if out, code := run(t, bin, environ, "backfill", "--config", cfg, "--source", "okta-prod", "--from", old, "--to", from); code != 2 || !strings.Contains(out, "90 days") {
		t.Errorf("a backfill past retention = %d, want 2 and the reason:\n%s", code, out)
	}
	t.Logf("live source read %d events; after the backfill the file holds %d", before, len(want))
}

// TestBackfillReplicas: two replicas share a PostgreSQL store; a backfill
// recorded there by the command runs on the replica that takes its lease,
// which is killed with SIGKILL mid-way: the other takes the backfill over
// within a lease and ends it, the command watching the store reports it
// done, and both sinks hold every event (duplicates only within the batch
// a killed replica's sink had in flight).
func TestBackfillReplicas(t *testing.T) {
	bin := binary(t)
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	w := newWorld(t, 1)
	now := time.Now()
	w.emu.Backlog(w.gen, w.envs[0].ID, w.srv.URL, 6000, now.Add(-3*time.Hour), now.Add(-time.Minute))
	cfgs := replicaConfigs(t, w, dir, 2)
	for _, c := range cfgs {
		b, _ := os.ReadFile(c)
		b = bytes.ReplaceAll(b, []byte("lookback: 2h"), []byte("lookback: 1h"))
		b = bytes.ReplaceAll(b, []byte("page_size: 200"), []byte("page_size: 25"))
		if err := os.WriteFile(c, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	environ := append(w.environ(), "AUDITRELAY_POSTGRES_DSN="+dsn)
	procs := make([]*proc, 2)
	logs := []string{filepath.Join(dir, "r0.log"), filepath.Join(dir, "r1.log")}
	for i := range procs {
		procs[i] = start(t, bin, cfgs[i], environ, logs[i])
	}
	defer func() {
		for _, p := range procs {
			p.kill(t)
		}
	}()
	waitCaughtUp(t, bin, cfgs[0], environ, "env-1", now.Add(-time.Minute), procs[0])
	from, to := now.Add(-4*time.Hour).UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339)
	var out bytes.Buffer
	cli := exec.Command(bin, "backfill", "--config", cfgs[0], "--source", "env-1", "--from", from, "--to", to)
	cli.Env, cli.Stdout, cli.Stderr = environ, &out, &out
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	cliDone := make(chan error, 1)
	go func() { cliDone <- cli.Wait() }()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if _, bf, _ := backfillState(t, bin, cfgs[0], environ); bf.Events > 500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backfill did not progress:\n%s", out.String())
		}
	}
	owner, _ := waitOwner(t, dsn, "source", "env-1@backfill", "", 10*time.Second)
	var i int
	fmt.Sscanf(owner, "r%d", &i)
	procs[i].kill(t)
	next, took := waitOwner(t, dsn, "source", "env-1@backfill", owner, 30*time.Second)
	t.Logf("the backfill moved from the killed %s to %s in %v", owner, next, took.Round(10*time.Millisecond))
	if bound := haLeaseTTL + haLeaseTTL/5 + time.Second; took > bound {
		t.Errorf("the backfill was owned again %v after the kill; want within %v", took, bound)
	}
	procs[i] = start(t, bin, cfgs[i], environ, logs[i])
	select {
	case err := <-cliDone:
		if err != nil || !strings.Contains(out.String(), "backfill of env-1 done") || !strings.Contains(out.String(), "PostgreSQL store") {
			t.Errorf("backfill = %v:\n%s", err, out.String())
		}
	case <-time.After(2 * time.Minute):
		cli.Process.Kill()
		t.Fatalf("the backfill did not end:\n%s", out.String())
	}
	want := w.want()
	waitAll(t, dir, want, 2*time.Minute)
	for _, sink := range []struct {
		path  string
		batch int
	}{{"a.ndjson", 300}, {"b.ndjson", 1000}} {
		missing, dups := lossAndDuplicates(t, want, sinkIDs(t, filepath.Join(dir, "out", sink.path)))
		if missing > 0 || dups > sink.batch {
			t.Errorf("sink %s: %d of %d events missing, %d duplicates (at most %d: one batch)", sink.path, missing, len(want), dups, sink.batch)
		}
	}
	if out, code := run(t, bin, environ, "backfill", "--config", cfgs[1], "--source", "env-1", "--from", from, "--to", to); code != 2 || !strings.Contains(out, "an earlier backfill of env-1 read") {
		t.Errorf("a second backfill of the same span = %d, want 2 and a refusal:\n%s", code, out)
	}
}
