package daemon

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/sink/sentinel"
	"github.com/auditrelay/auditrelay/internal/source/cyberark"
	"github.com/auditrelay/auditrelay/internal/units"
)

// TestCyberArkToSentinel runs the daemon in-process from a CyberArk
// emulator into a Sentinel emulator whose DCR declares the CyberArkAudit
// solution's stream: every event once, each declared column the served
// event's value, timestamp the event time in epoch milliseconds.
func TestCyberArkToSentinel(t *testing.T) {
	ca := emulator.NewCyberArk(emulator.CyberArkOptions{})
	csrv := httptest.NewServer(ca)
	defer csrv.Close()
	tenant := ca.StartDemo(context.Background(), 3, 400, time.Hour, 0, 0)

	const dcr, azTenant, app, azSecret = "dcr-0a1b2c3d4e5f60718293a4b5c6d7e8f9", "tenant-1", "app-1", "azure-secret-value"
	az := emulator.NewSentinel(emulator.SentinelOptions{})
	ssrv := httptest.NewServer(az)
	defer ssrv.Close()
	az.AddApp(emulator.SentinelApp{TenantID: azTenant, ClientID: app, ClientSecret: azSecret})
	var cols []emulator.SentinelColumn
	for _, c := range sentinel.StreamColumns(sentinel.FormatCyberArkAudit) {
		cols = append(cols, emulator.SentinelColumn{Name: c.Name, Type: c.Type})
	}
	az.AddStream(dcr, sentinel.DefaultStreamCyberArkAudit, cols)
	az.Grant(dcr, app)

	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := &config.Config{DataDir: filepath.Join(dir, "data"), MetricsListen: addr, SpoolMaxBytes: 1 << 30}
	cc := &cyberark.Config{IdentityURL: csrv.URL, AppID: tenant.AppID, ClientID: tenant.ClientID, ClientSecret: secret.New(tenant.ClientSecret),
		AuditURL: csrv.URL, APIKey: secret.New(tenant.APIKey), SettleDelay: units.Duration(time.Second),
		PollInterval: units.Duration(200 * time.Millisecond), Overlap: units.Duration(5 * time.Second), Lookback: units.Duration(2 * time.Hour), RateLimit: 20}
	cc.SetDefaults()
	cfg.Sources = []config.Source{{Name: "ca", CyberArk: cc}}
	sc := &sentinel.Config{Endpoint: ssrv.URL, DCRImmutableID: dcr, Format: sentinel.FormatCyberArkAudit, TenantID: azTenant,
		ClientID: app, ClientSecret: secret.New(azSecret), AuthorityURL: ssrv.URL}
	sc.SetDefaults()
	if errs := sc.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	cfg.Sinks = []config.Sink{{Name: "sentinel", Sources: []string{"ca"}, Sentinel: sc}}

	sinks, err := BuildSinks(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sinks[0].Check(context.Background()); err != nil {
		t.Fatalf("check: %v", err)
	}
	d, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	eventually(t, "400 rows in Sentinel", func() bool { return len(az.Rows(dcr, sentinel.DefaultStreamCyberArkAudit)) >= 400 })
	var metrics string
	eventually(t, "the sink's count", func() bool {
		_, metrics = get(t, "http://"+addr+"/metrics")
		v, _ := metricValue(metrics, `auditrelay_sentinel_rows_total{sink="sentinel"}`)
		return v == "400"
	})
	checkMetrics(t, metrics, map[string]string{`auditrelay_sentinel_parked_total{sink="sentinel"}`: "0"})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	served := map[string]map[string]json.RawMessage{}
	for _, e := range ca.Events(tenant.ID) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(e.JSON, &m); err != nil {
			t.Fatal(err)
		}
		m["timestamp"] = json.RawMessage(strconv.FormatInt(e.Timestamp.UnixMilli(), 10))
		served[e.UUID] = m
	}
	seen := map[string]bool{}
	for _, r := range az.Rows(dcr, sentinel.DefaultStreamCyberArkAudit) {
		uuid := r.String("uuid")
		if seen[uuid] {
			t.Errorf("%s ingested twice", uuid)
		}
		seen[uuid] = true
		want, ok := served[uuid]
		if !ok {
			t.Fatalf("row %s was never served", uuid)
		}
		for _, c := range cols {
			w, got := want[c.Name], r.Columns[c.Name]
			if string(w) == "null" {
				w = nil
			}
			if string(w) != string(got) {
				t.Errorf("row %s: %s = %s, want %s", uuid, c.Name, got, w)
			}
		}
	}
	if len(seen) != 400 {
		t.Errorf("%d distinct rows, want 400", len(seen))
	}
}
