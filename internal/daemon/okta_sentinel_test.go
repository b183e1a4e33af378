package daemon

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/sink/sentinel"
	"github.com/auditrelay/auditrelay/internal/source/okta"
	"github.com/auditrelay/auditrelay/internal/units"
)

// TestOktaToSentinel runs the daemon in-process from an Okta emulator into
// a Sentinel emulator whose DCR declares the Okta Single Sign-On
// solution's stream: every event once, each declared column the served
// LogEvent's value, DomainName the org.
func TestOktaToSentinel(t *testing.T) {
	const n, apiToken = 400, "00a-okta-api-token-d43"
	org := emulator.NewOkta(emulator.OktaOptions{RateLimit: -1})
	org.AddAPIToken(apiToken)
	osrv := httptest.NewServer(org)
	defer osrv.Close()
	gen := emulator.NewOktaGenerator(43)
	from := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	served := map[string]map[string]json.RawMessage{}
	for i := range n {
		ev := gen.Event(from.Add(time.Duration(i) * 7 * time.Second))
		var m map[string]json.RawMessage
		if err := json.Unmarshal(ev.JSON, &m); err != nil {
			t.Fatal(err)
		}
		served[ev.UUID] = m
		org.Add(ev)
	}

	const dcr, azTenant, app, azSecret = "dcr-0a1b2c3d4e5f60718293a4b5c6d7e8f9", "tenant-1", "app-1", "azure-secret-value"
	az := emulator.NewSentinel(emulator.SentinelOptions{})
	ssrv := httptest.NewServer(az)
	defer ssrv.Close()
	az.AddApp(emulator.SentinelApp{TenantID: azTenant, ClientID: app, ClientSecret: azSecret})
	var cols []emulator.SentinelColumn
	for _, c := range sentinel.StreamColumns(sentinel.FormatOktaV2) {
		cols = append(cols, emulator.SentinelColumn{Name: c.Name, Type: c.Type})
	}
	az.AddStream(dcr, sentinel.DefaultStreamOktaV2, cols)
	az.Grant(dcr, app)

	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := &config.Config{DataDir: filepath.Join(dir, "data"), MetricsListen: addr, SpoolMaxBytes: 1 << 30}
	oc := &okta.Config{OrgURL: osrv.URL, Auth: okta.AuthAPIToken, APIToken: secret.New(apiToken), PageSize: 100,
		PollInterval: units.Duration(time.Second), Lookback: units.Duration(2 * time.Hour), RateLimit: 20}
	oc.SetDefaults()
	cfg.Sources = []config.Source{{Name: "okta", Okta: oc}}
	sc := &sentinel.Config{Endpoint: ssrv.URL, DCRImmutableID: dcr, Format: sentinel.FormatOktaV2, TenantID: azTenant,
		ClientID: app, ClientSecret: secret.New(azSecret), AuthorityURL: ssrv.URL}
	sc.SetDefaults()
	if errs := sc.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	cfg.Sinks = []config.Sink{{Name: "sentinel", Sources: []string{"okta"}, Sentinel: sc}}

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
	eventually(t, "400 rows in Sentinel", func() bool { return len(az.Rows(dcr, sentinel.DefaultStreamOktaV2)) >= n })
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

	u, _ := url.Parse(osrv.URL)
	domain, _ := json.Marshal(u.Host)
	seen := map[string]bool{}
	for _, r := range az.Rows(dcr, sentinel.DefaultStreamOktaV2) {
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
			if c.Name == "DomainName" {
				w = domain
			}
			if string(w) == "null" {
				w = nil
			}
			if string(w) != string(got) {
				t.Errorf("row %s: %s = %s, want %s", uuid, c.Name, got, w)
			}
		}
		for _, k := range []string{"actor", "client", "outcome", "published", "debugContext"} {
			if len(r.Columns[k]) == 0 {
				t.Errorf("row %s has no %s", uuid, k)
			}
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct rows, want %d", len(seen), n)
	}
}
