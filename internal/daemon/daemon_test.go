package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/secret/secrettest"
	"github.com/auditrelay/auditrelay/internal/sink/file"
	"github.com/auditrelay/auditrelay/internal/source/pingone"
	"github.com/auditrelay/auditrelay/internal/units"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue returns the value of the series (name and labels exactly as
// exposed) in a Prometheus text exposition, and whether it is there.
func metricValue(exposition, series string) (string, bool) {
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v, true
		}
	}
	return "", false
}

// checkMetrics reports every series of want whose value is not the one
// given.
func checkMetrics(t *testing.T, exposition string, want map[string]string) {
	t.Helper()
	for series, w := range want {
		if v, ok := metricValue(exposition, series); !ok || v != w {
			t.Errorf("metric %s = %q (present %v), want %s", series, v, ok, w)
		}
	}
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// recent reports whether v, in Unix seconds, is within the last ten
// minutes.
func recent(v string) bool {
	f, err := strconv.ParseFloat(v, 64)
	return err == nil && time.Since(time.Unix(int64(f), 0)) < 10*time.Minute
}

// Distinctive secrets, so that finding one in an output can only mean it
// leaked.
const (
	goodSecret = "good-secret-5f0c9e1a"
	badSecret  = "wrong-secret-83d2b7c4"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMetricsReadinessAndStatus runs the daemon in-process against the
// emulator: one source with good credentials and one with a wrong secret.
func TestMetricsReadinessAndStatus(t *testing.T) {
	emu := emulator.NewPingOne(emulator.PingOneOptions{})
	srv := httptest.NewServer(emu)
	defer srv.Close()
	gen := emulator.NewGenerator(3)
	for i, id := range []string{"env-good", "env-bad"} {
		emu.AddEnvironment(emulator.Environment{ID: id, Licence: "l", ClientID: "c", ClientSecret: goodSecret})
		emu.Backlog(gen, id, srv.URL, 50*(i+1), time.Now().Add(-time.Hour), time.Now().Add(-time.Minute))
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := &config.Config{DataDir: filepath.Join(dir, "data"), MetricsListen: addr, SpoolMaxBytes: 1 << 30}
	for _, s := range []struct{ name, env, secret string }{{"good", "env-good", goodSecret}, {"bad", "env-bad", badSecret}} {
		pc := &pingone.Config{EnvironmentID: s.env, ClientID: "c", ClientSecret: secret.New(s.secret), APIURL: srv.URL, AuthURL: srv.URL,
			SettleDelay: units.Duration(time.Second), PollInterval: units.Duration(200 * time.Millisecond), RateLimit: 10, Licence: "l"}
		pc.SetDefaults()
		cfg.Sources = append(cfg.Sources, config.Source{Name: s.name, PingOne: pc})
	}
	fc := &file.Config{Path: filepath.Join(dir, "out.ndjson")}
	fc.SetDefaults()
	cfg.Sinks = []config.Sink{{Name: "file", Sources: []string{"good", "bad"}, File: fc}}
	var logs syncBuffer
	d, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	base := "http://" + addr
	eventually(t, "healthz", func() bool { c, _ := get(t, base+"/healthz"); return c == 200 })
	eventually(t, "the good source's events in the file", func() bool {
		l, _ := file.ReadLines(fc.Path)
		return len(l) == 50
	})
	var body string
	eventually(t, "readyz to report the halted source", func() bool {
		var code int
		code, body = get(t, base+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "source/bad")
	})
	if !strings.Contains(body, "client_secret") {
		t.Errorf("readyz does not name the fix: %q", body)
	}
	// the file holds the lines a moment before the runner counts the batch
	// acknowledged
	eventually(t, "the batch acknowledged", func() bool {
		_, m := get(t, base+"/metrics")
		v, _ := metricValue(m, `auditrelay_sink_events_total{sink="file"}`)
		return v == "50"
	})
	_, metrics := get(t, base+"/metrics")
	checkMetrics(t, metrics, map[string]string{
		`auditrelay_runner_up{name="bad",runner="source"}`: "0",
		`auditrelay_sink_events_total{sink="file"}`:        "50",
		`auditrelay_build_info{version="test"}`:            "1",
		`auditrelay_spool_events`:                          "0",
	})
	// The good source has read up to about now - settle_delay.
	if v, _ := metricValue(metrics, `auditrelay_source_watermark_seconds{source="good"}`); !recent(v) {
		t.Errorf("watermark of the good source = %q, want a time of the last minutes", v)
	}
	st, err := ReadStatus(ctx, cfg.DataDir)
	if err != nil || !st.Running || len(st.Store.Sources) != 2 || st.Halted["source/bad"] == "" {
		t.Errorf("status from the running daemon = %+v, %v", st, err)
	}
	stJSON, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	code, page := get(t, base+"/")
	if code != http.StatusOK || !strings.Contains(page, "<script>") || strings.Contains(page, "{{") {
		t.Errorf("GET / = %d, want the status page with its script inline:\n%.300s", code, page)
	}
	code, pageJSON := get(t, base+"/status.json")
	var ps Status
	if err := json.Unmarshal([]byte(pageJSON), &ps); err != nil || code != http.StatusOK {
		t.Fatalf("GET /status.json = %d %v:\n%s", code, err, pageJSON)
	}
	checkPageStatus(t, ps, "env-good")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after cancel, want nil", err)
	}
	if !strings.Contains(logs.String(), "source=bad") {
		t.Fatalf("the log does not mention the halted source; the leak check below would prove nothing:\n%s", logs.String())
	}
	for what, out := range map[string]string{"readyz": body, "metrics": metrics, "status": string(stJSON), "log": logs.String(),
		"status page": page, "status.json": pageJSON} {
		for _, s := range append(secrettest.Forms("c", goodSecret), secrettest.Forms("c", badSecret)...) {
			if strings.Contains(out, s) {
				t.Errorf("the secret %q leaked into the %s output", s, what)
			}
		}
	}
	if c, _ := get(t, base+"/healthz"); c == 200 {
		t.Error("metrics server still up after Run returned")
	}
}

// checkPageStatus checks the status the page reads: every configured
// source with its provider and tenant, the halted source with its fix
// apart, the spool's bound, and no cursor.
func checkPageStatus(t *testing.T, ps Status, goodEnv string) {
	t.Helper()
	if !ps.Running || ps.SpoolMaxBytes != 1<<30 || len(ps.Store.Sources) != 2 {
		t.Errorf("status.json: running %v, spool_max_bytes %d, %d sources; want running, 1GiB, 2", ps.Running, ps.SpoolMaxBytes, len(ps.Store.Sources))
	}
	for _, s := range ps.Store.Sources {
		if len(s.Cursor) != 0 {
			t.Errorf("status.json carries the cursor of %s", s.Name)
		}
	}
	if l := ps.Sources["good"]; l.Provider != "pingone" || l.Tenant != goodEnv || len(l.LagHistory) == 0 {
		t.Errorf("status.json sources[good] = %+v, want provider pingone, tenant %s and a lag sample", l, goodEnv)
	}
	if len(ps.Halts) != 1 || ps.Halts[0].Runner != "source/bad" || !strings.Contains(ps.Halts[0].Fix, "client_secret") ||
		strings.Contains(ps.Halts[0].Error, ps.Halts[0].Fix) {
		t.Errorf("status.json halts = %+v, want source/bad with its fix (naming client_secret) apart from the error", ps.Halts)
	}
	if _, ok := ps.Sinks["file"]; !ok {
		t.Errorf("status.json has no live figures of the sink: %+v", ps.Sinks)
	}
}
