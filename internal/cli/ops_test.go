package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/daemon"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store/bolt"
)

// opsConfig writes a configuration with a PingOne source "p1" and a
// CyberArk source "ca1" reading api (a loopback base URL), both into a file
// sink, and returns its path and data directory. With names, only those
// sources are configured.
func opsConfig(t *testing.T, api string, names ...string) (cfgPath, dataDir string) {
	t.Helper()
	if len(names) == 0 {
		names = []string{"p1", "ca1"}
	}
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte(opsSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir = filepath.Join(dir, "data")
	blocks := map[string]string{
		"p1": `  - name: p1
    pingone:
      environment_id: ` + opsEnvironment + `
      client_id: client-1
      client_secret: "${file:%[2]s}"
      api_url: %[3]s
      auth_url: %[3]s
      poll_interval: 200ms
      settle_delay: 2s
      overlap: 2s
      lookback: 2h
`,
		"ca1": `  - name: ca1
    cyberark:
      identity_url: %[3]s
      app_id: auditrelay
      client_id: svc@example.com
      client_secret: "${file:%[2]s}"
      audit_url: %[3]s
      api_key: "${file:%[2]s}"
      lookback: 2h
`,
	}
	cfg := "data_dir: %[1]s\nsources:\n"
	for _, n := range names {
		cfg += blocks[n]
	}
	cfg += "sinks:\n  - name: archive\n    sources: [" + strings.Join(names, ", ") + "]\n    file: { path: %[4]s }\n"
	cfg = fmt.Sprintf(cfg, dataDir, secret, api, filepath.Join(dir, "out", "a.ndjson"))
	cfgPath = filepath.Join(dir, "auditrelay.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dataDir
}

// The credentials opsConfig writes.
const (
	opsSecret      = "s3cr3t-value-ops"
	opsEnvironment = "0b6e7c1a-0000-4000-8000-000000000001"
)

// TestCheckpointUnknownSource: a source name that is not configured is a
// usage error naming the configured ones, never "nothing to do".
func TestCheckpointUnknownSource(t *testing.T) {
	cfg, _ := opsConfig(t, "http://127.0.0.1:1")
	for _, verb := range []string{"show", "reset"} {
		out, errs, code := runMain(t, "checkpoint", verb, "--config", cfg, "--source", "nope")
		if code != exitUsage {
			t.Errorf("checkpoint %s --source nope: exit %d, want %d; stdout %q", verb, code, exitUsage, out)
		}
		if want := `--source "nope" is not configured; configured: p1, ca1`; !strings.Contains(errs, want) {
			t.Errorf("checkpoint %s --source nope: stderr lacks %q:\n%s", verb, want, errs)
		}
	}
}

// openStore opens the store of dataDir for a test to prepare, and closes
// it at cleanup unless the test closes it first.
func openStore(t *testing.T, dataDir string) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(dataDir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// line returns the first line of out whose fields start with fields, or
// "" when none does.
func line(out string, fields ...string) string {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= len(fields) && slices.Equal(f[:len(fields)], fields) {
			return l
		}
	}
	return ""
}

// TestStatusNever: a sink that never sent shows "never", not "- ago".
func TestStatusNever(t *testing.T) {
	cfg, dataDir := opsConfig(t, "http://127.0.0.1:1")
	st := openStore(t, dataDir)
	if err := st.SetSinks([]string{"archive"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	out, errs, code := runMain(t, "status", "--config", cfg)
	if code != exitOK {
		t.Fatalf("status: exit %d: %s", code, errs)
	}
	if l := line(out, "archive"); !slices.Equal(strings.Fields(l), []string{"archive", "0", "0", "0", "never", "-"}) {
		t.Errorf("sink row %q, want archive 0 0 0 never -; output:\n%s", l, out)
	}
	if strings.Contains(out, "- ago") {
		t.Errorf("status shows \"- ago\":\n%s", out)
	}
}

// pingOneWorld serves a PingOne emulator with opsConfig's environment,
// holding n events of the last hour.
func pingOneWorld(t *testing.T, n int) string {
	t.Helper()
	emu := emulator.NewPingOne(emulator.PingOneOptions{})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	emu.AddEnvironment(emulator.Environment{ID: opsEnvironment, Licence: "lic", ClientID: "client-1", ClientSecret: opsSecret, AuthMethod: "client_secret_basic"})
	now := time.Now()
	emu.Backlog(emulator.NewGenerator(5), opsEnvironment, srv.URL, n, now.Add(-time.Hour), now.Add(-time.Minute))
	return srv.URL
}

// runDaemon runs the daemon of cfgPath in this process until the test
// ends, once the store holds want events.
func runDaemon(t *testing.T, cfgPath string, want int64) {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(cfg, daemon.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		snap, err := d.Snapshot()
		if err == nil && len(snap.Sources) > 0 && snap.Sources[0].Events >= uint64(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not store %d events: %+v, %v", want, snap, err)
		}
	}
}

// TestPollWhileDaemonRuns: poll resumes from the running daemon's
// checkpoint (read over its status socket), not from the lookback;
// --from-lookback is the way to ignore it.
func TestPollWhileDaemonRuns(t *testing.T) {
	api := pingOneWorld(t, 40)
	cfg, _ := opsConfig(t, api, "p1")
	runDaemon(t, cfg, 40)

	out, errs, code := runMain(t, "poll", "--config", cfg, "--source", "p1")
	if code != exitOK {
		t.Fatalf("poll: exit %d: %s", code, errs)
	}
	if n := strings.Count(out, "\n"); n != 0 {
		t.Errorf("poll from the daemon's checkpoint printed %d events, want 0 (all 40 are behind it)", n)
	}
	if !strings.Contains(errs, "polling p1 from its checkpoint (watermark ") {
		t.Errorf("poll does not say it starts from the checkpoint:\n%s", errs)
	}

	out, errs, code = runMain(t, "poll", "--config", cfg, "--source", "p1", "--from-lookback")
	if code != exitOK {
		t.Fatalf("poll --from-lookback: exit %d: %s", code, errs)
	}
	if n := strings.Count(out, "\n"); n != 40 {
		t.Errorf("poll --from-lookback printed %d events, want the 40 of the lookback", n)
	}
	if !strings.Contains(errs, "from its lookback (--from-lookback") {
		t.Errorf("poll --from-lookback does not say where it starts:\n%s", errs)
	}
}

// TestPollLockedStore: a store held by a process that does not answer on
// the status socket is refused with the way out, never read as "no
// checkpoint".
func TestPollLockedStore(t *testing.T) {
	cfg, dataDir := opsConfig(t, "http://127.0.0.1:1", "p1")
	st := openStore(t, dataDir)
	defer st.Close()
	out, errs, code := runMain(t, "poll", "--config", cfg, "--source", "p1")
	if code != exitFailure || out != "" {
		t.Errorf("poll of a held store: exit %d, stdout %q; want exit %d and no events", code, out, exitFailure)
	}
	for _, want := range []string{"cannot read its checkpoint", "already running with pid", "--from-lookback"} {
		if !strings.Contains(errs, want) {
			t.Errorf("poll of a held store: stderr lacks %q:\n%s", want, errs)
		}
	}
}

// storeCheckpoint stores cur as the checkpoint of source name, with the
// fingerprint the configuration at cfgPath gives it.
func storeCheckpoint(t *testing.T, cfgPath, dataDir, name string, cur []byte, watermark time.Time) {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	srcs, err := daemon.BuildSources(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	fp := ""
	for _, s := range srcs {
		if s.Name == name {
			fp = s.Source.Fingerprint()
		}
	}
	st := openStore(t, dataDir)
	defer st.Close()
	if _, err := st.Append(name, fp, source.Page{Next: cur, Watermark: watermark}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := st.SetSinks([]string{"archive"}); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointShowKeys: checkpoint show lists every configured source
// with documented keys and no zero values; one without a checkpoint says
// where it starts.
func TestCheckpointShowKeys(t *testing.T) {
	cfg, dataDir := opsConfig(t, "http://127.0.0.1:1")
	storeCheckpoint(t, cfg, dataDir, "p1", []byte(`{"v":1,"until":"2026-11-25T10:58:00.000Z"}`), time.Date(2026, 11, 25, 10, 58, 0, 0, time.UTC))
	out, errs, code := runMain(t, "checkpoint", "show", "--config", cfg)
	if code != exitOK {
		t.Fatalf("checkpoint show: exit %d: %s", code, errs)
	}
	want := `[
  {
    "source": "p1",
    "fingerprint": "pingone|` + opsEnvironment + `|http://127.0.0.1:1",
    "watermark": "2026-11-25T10:58:00Z",
    "cursor": {
      "watermark": "2026-11-25T10:58:00Z"
    }
  },
  {
    "source": "ca1",
    "cursor": "none: starts from its lookback"
  }
]
`
	if out != want {
		t.Errorf("checkpoint show =\n%s\nwant\n%s", out, want)
	}
	out, _, code = runMain(t, "checkpoint", "show", "--config", cfg, "--source", "ca1")
	if code != exitOK || !strings.Contains(out, `"cursor": "none: starts from its lookback"`) || strings.Contains(out, `"p1"`) {
		t.Errorf("checkpoint show --source ca1: exit %d:\n%s", code, out)
	}
}

// TestStatusListsEverySource: a source the store does not know (never
// polled, or reset) still has its row.
func TestStatusListsEverySource(t *testing.T) {
	cfg, dataDir := opsConfig(t, "http://127.0.0.1:1")
	storeCheckpoint(t, cfg, dataDir, "p1", []byte(`{"v":1,"until":"2026-11-25T10:58:00.000Z"}`), time.Date(2026, 11, 25, 10, 58, 0, 0, time.UTC))
	out, errs, code := runMain(t, "status", "--config", cfg)
	if code != exitOK {
		t.Fatalf("status: exit %d: %s", code, errs)
	}
	if l := line(out, "ca1"); !slices.Equal(strings.Fields(l), []string{"ca1", "-", "-", "never", "0", "0", "-"}) {
		t.Errorf("row of the source without a checkpoint = %q, want ca1 - - never 0 0 -; output:\n%s", l, out)
	}
	if l := line(out, "p1", "2026-11-25T10:58:00Z"); l == "" {
		t.Errorf("no row for p1:\n%s", out)
	}
}

// TestCheckpointSet: set moves a source's checkpoint to an instant, which
// show then reports; an instant in the future, beyond retention or not RFC
// 3339 is refused with exit 2, and a store in use with exit 1.
func TestCheckpointSet(t *testing.T) {
	cfg, dataDir := opsConfig(t, "http://127.0.0.1:1")
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	for _, name := range []string{"p1", "ca1"} {
		out, errs, code := runMain(t, "checkpoint", "set", "--config", cfg, "--source", name, "--at", at.Format(time.RFC3339))
		if code != exitOK {
			t.Fatalf("checkpoint set %s: exit %d: %s", name, code, errs)
		}
		if want := "source " + name + " set: at the next run it reads from " + at.Format(time.RFC3339); !strings.HasPrefix(out, want) {
			t.Errorf("checkpoint set %s said %q, want it to start with %q", name, out, want)
		}
	}
	out, errs, code := runMain(t, "checkpoint", "show", "--config", cfg)
	if code != exitOK {
		t.Fatalf("checkpoint show: exit %d: %s", code, errs)
	}
	var shown []struct {
		Source, Fingerprint string
		Watermark           time.Time
		Cursor              struct {
			Watermark time.Time
			Exact     bool
		}
	}
	if err := json.Unmarshal([]byte(out), &shown); err != nil || len(shown) != 2 {
		t.Fatalf("checkpoint show: %v:\n%s", err, out)
	}
	for i, want := range []struct {
		source, fingerprint string
		exact               bool
	}{{"p1", "pingone|" + opsEnvironment + "|http://127.0.0.1:1", false}, {"ca1", "cyberark|http://127.0.0.1:1", true}} {
		s := shown[i]
		if s.Source != want.source || s.Fingerprint != want.fingerprint || !s.Watermark.Equal(at) || !s.Cursor.Watermark.Equal(at) || s.Cursor.Exact != want.exact {
			t.Errorf("after set, checkpoint show has %+v; want source %s, fingerprint %s, watermark %s, exact %v", s, want.source, want.fingerprint, at, want.exact)
		}
	}

	for _, tc := range []struct {
		name, at, want string
	}{
		{"p1", time.Now().Add(time.Hour).Format(time.RFC3339), "is in the future"},
		{"p1", time.Now().Add(-15 * 24 * time.Hour).Format(time.RFC3339), "is older than the 14 days the activities API serves"},
		{"ca1", time.Now().Add(-8 * 24 * time.Hour).Format(time.RFC3339), "is older than retention"},
		{"p1", "yesterday", "is not an RFC 3339 time"},
		{"p1", "", "needs --at TIME"},
	} {
		out, errs, code := runMain(t, "checkpoint", "set", "--config", cfg, "--source", tc.name, "--at", tc.at)
		if code != exitUsage || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("checkpoint set %s --at %q: exit %d, stdout %q, stderr %q; want exit %d saying %q", tc.name, tc.at, code, out, errs, exitUsage, tc.want)
		}
	}
	if _, errs, code := runMain(t, "checkpoint", "set", "--config", cfg, "--at", at.Format(time.RFC3339)); code != exitUsage || !strings.Contains(errs, "needs --source NAME; configured: p1, ca1") {
		t.Errorf("checkpoint set without --source: exit %d: %s", code, errs)
	}

	st := openStore(t, dataDir)
	defer st.Close()
	if _, errs, code := runMain(t, "checkpoint", "set", "--config", cfg, "--source", "p1", "--at", at.Format(time.RFC3339)); code != exitFailure || !strings.Contains(errs, "already running with pid") {
		t.Errorf("checkpoint set of a store in use: exit %d: %s", code, errs)
	}
}

// TestCheckpointResetSaysItResends: reset warns that the lookback is sent
// again and names the way to avoid it.
func TestCheckpointResetSaysItResends(t *testing.T) {
	cfg, dataDir := opsConfig(t, "http://127.0.0.1:1")
	storeCheckpoint(t, cfg, dataDir, "p1", []byte(`{"v":1,"until":"2026-11-25T10:58:00.000Z"}`), time.Date(2026, 11, 25, 10, 58, 0, 0, time.UTC))
	out, errs, code := runMain(t, "checkpoint", "reset", "--config", cfg, "--source", "p1")
	if code != exitOK {
		t.Fatalf("checkpoint reset: exit %d: %s", code, errs)
	}
	for _, want := range []string{"reads its whole lookback (2h) again, and every sink receives those events again", "auditrelay checkpoint set --source p1 --at TIME"} {
		if !strings.Contains(out, want) {
			t.Errorf("checkpoint reset said %q; want it to say %q", out, want)
		}
	}
}
