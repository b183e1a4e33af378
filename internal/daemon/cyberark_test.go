package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/secret/secrettest"
	"github.com/auditrelay/auditrelay/internal/sink/sekoia"
	"github.com/auditrelay/auditrelay/internal/source/cyberark"
	"github.com/auditrelay/auditrelay/internal/units"
)

// TestCyberArkToSekoia runs the daemon in-process from a CyberArk emulator
// into a Sekoia emulator: every event once, compacted, and the parked
// metric at zero.
func TestCyberArkToSekoia(t *testing.T) {
	ca := emulator.NewCyberArk(emulator.CyberArkOptions{})
	csrv := httptest.NewServer(ca)
	defer csrv.Close()
	tenant := ca.StartDemo(context.Background(), 3, 400, time.Hour, 0, 0)
	const key = "sekoia-intake-key-1"
	sk := emulator.NewSekoia(emulator.SekoiaOptions{}, key)
	ssrv := httptest.NewServer(sk)
	defer ssrv.Close()

	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := &config.Config{DataDir: filepath.Join(dir, "data"), MetricsListen: addr, SpoolMaxBytes: 1 << 30}
	cc := &cyberark.Config{IdentityURL: csrv.URL, AppID: tenant.AppID, ClientID: tenant.ClientID, ClientSecret: secret.New(tenant.ClientSecret),
		AuditURL: csrv.URL, APIKey: secret.New(tenant.APIKey), SettleDelay: units.Duration(time.Second),
		PollInterval: units.Duration(200 * time.Millisecond), Overlap: units.Duration(5 * time.Second), Lookback: units.Duration(2 * time.Hour), RateLimit: 20}
	cc.SetDefaults()
	cfg.Sources = []config.Source{{Name: "ca", CyberArk: cc}}
	sc := &sekoia.Config{IntakeKey: secret.New(key), URL: ssrv.URL}
	sc.SetDefaults()
	cfg.Sinks = []config.Sink{{Name: "sekoia", Sources: []string{"ca"}, Sekoia: sc}}

	srcs, err := BuildSources(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sinks, err := BuildSinks(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srcs[0].Check(context.Background()); err != nil {
		t.Fatalf("source check: %v", err)
	}
	if err := sinks[0].Check(context.Background()); err != nil {
		t.Fatalf("sink check: %v", err)
	}
	var logs bytes.Buffer
	d, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	eventually(t, "400 messages in Sekoia", func() bool { return len(sk.Messages(key)) >= 400 })
	// The intake records a batch before it answers: the sink counts it
	// once the answer is read.
	var metrics string
	eventually(t, "the sink's count", func() bool {
		_, metrics = get(t, "http://"+addr+"/metrics")
		v, _ := metricValue(metrics, `auditrelay_sekoia_events_total{sink="sekoia"}`)
		return v == "400"
	})
	checkMetrics(t, metrics, map[string]string{`auditrelay_sekoia_parked_total{sink="sekoia"}`: "0"})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, e := range ca.Events(tenant.ID) {
		want[e.UUID] = string(e.JSON)
	}
	seen := map[string]bool{}
	for _, m := range sk.Messages(key) {
		var ev struct{ UUID string }
		json.Unmarshal([]byte(m), &ev)
		if seen[ev.UUID] {
			t.Errorf("%s delivered twice", ev.UUID)
		}
		seen[ev.UUID] = true
		if want[ev.UUID] != m {
			t.Errorf("message %s is not the served event", ev.UUID)
		}
	}
	if len(seen) != 400 || len(sk.Flagged()) != 0 {
		t.Errorf("%d distinct messages, %d flagged", len(seen), len(sk.Flagged()))
	}
	for _, s := range append(secrettest.Forms(tenant.ClientID, tenant.ClientSecret), key, tenant.APIKey) {
		if strings.Contains(logs.String(), s) || strings.Contains(metrics, s) {
			t.Errorf("a secret (%q) shows in the logs or metrics", s)
		}
	}
}
