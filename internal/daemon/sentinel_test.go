package daemon

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/sink/sentinel"
	"github.com/auditrelay/auditrelay/internal/source/pingone"
	"github.com/auditrelay/auditrelay/internal/units"
)

// TestSentinelSink runs the daemon in-process from a PingOne emulator into
// a Sentinel emulator in the auditrelay format, with the real normalizer.
func TestSentinelSink(t *testing.T) {
	p1 := emulator.NewPingOne(emulator.PingOneOptions{})
	psrv := httptest.NewServer(p1)
	defer psrv.Close()
	p1.AddEnvironment(emulator.Environment{ID: "env-1", Licence: "l", ClientID: "c", ClientSecret: "p1-secret"})
	p1.Backlog(emulator.NewGenerator(5), "env-1", psrv.URL, 300, time.Now().Add(-time.Hour), time.Now().Add(-time.Minute))

	const dcr, tenant, app, azSecret = "dcr-0a1b2c3d4e5f60718293a4b5c6d7e8f9", "tenant-1", "app-1", "azure-secret-value"
	az := emulator.NewSentinel(emulator.SentinelOptions{})
	ssrv := httptest.NewServer(az)
	defer ssrv.Close()
	az.AddApp(emulator.SentinelApp{TenantID: tenant, ClientID: app, ClientSecret: azSecret})
	var cols []emulator.SentinelColumn
	for _, c := range sentinel.StreamColumns(sentinel.FormatAuditRelay) {
		cols = append(cols, emulator.SentinelColumn{Name: c.Name, Type: c.Type})
	}
	az.AddStream(dcr, sentinel.DefaultStreamAuditRelay, cols)
	az.Grant(dcr, app)

	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := &config.Config{DataDir: filepath.Join(dir, "data"), MetricsListen: addr, SpoolMaxBytes: 1 << 30}
	pc := &pingone.Config{EnvironmentID: "env-1", ClientID: "c", ClientSecret: secret.New("p1-secret"), APIURL: psrv.URL, AuthURL: psrv.URL,
		SettleDelay: units.Duration(time.Second), PollInterval: units.Duration(200 * time.Millisecond), RateLimit: 10, Licence: "l"}
	pc.SetDefaults()
	cfg.Sources = []config.Source{{Name: "p1", PingOne: pc}}
	sc := &sentinel.Config{Endpoint: ssrv.URL, DCRImmutableID: dcr, Format: sentinel.FormatAuditRelay, TenantID: tenant,
		ClientID: app, ClientSecret: secret.New(azSecret), AuthorityURL: ssrv.URL}
	sc.SetDefaults()
	if errs := sc.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	cfg.Sinks = []config.Sink{{Name: "sentinel", Sources: []string{"p1"}, Sentinel: sc}}

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
	eventually(t, "300 rows in Sentinel", func() bool { return len(az.Rows(dcr, sentinel.DefaultStreamAuditRelay)) >= 300 })
	// The emulator keeps the rows before it answers: the sink counts them
	// once the answer is read.
	var metrics string
	eventually(t, "the sink's count", func() bool {
		_, metrics = get(t, "http://"+addr+"/metrics")
		v, _ := metricValue(metrics, `auditrelay_sentinel_rows_total{sink="sentinel"}`)
		return v == "300"
	})
	checkMetrics(t, metrics, map[string]string{`auditrelay_sentinel_parked_total{sink="sentinel"}`: "0"})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rows := az.Rows(dcr, sentinel.DefaultStreamAuditRelay)
	// What each row must hold, read from the served activity itself rather
	// than through the normalizer the sink runs.
	type expect struct {
		action, outcome string
		time            time.Time
	}
	served := map[string]expect{}
	for _, a := range p1.Activities("env-1") {
		var v struct {
			Action struct{ Type string }
			Result struct{ Status string }
		}
		if err := json.Unmarshal(a.JSON, &v); err != nil || v.Action.Type == "" {
			t.Fatalf("served activity %s: %v", a.JSON, err)
		}
		outcome := map[string]string{"SUCCESS": "success", "FAILED": "failure"}[v.Result.Status]
		if outcome == "" {
			t.Fatalf("served activity %s: result status %q", a.ID, v.Result.Status)
		}
		served[a.ID] = expect{v.Action.Type, outcome, a.RecordedAt}
	}
	seen := map[string]bool{}
	for _, r := range rows {
		id := r.String("Id")
		if seen[id] {
			t.Errorf("%s ingested twice", id)
		}
		seen[id] = true
		want, ok := served[id]
		if !ok {
			t.Fatalf("row %s was never served", id)
		}
		if r.String("ActionType") != want.action || r.String("Outcome") != want.outcome ||
			r.String("AuditRelaySource") != "p1" || r.String("EnvironmentId") != "env-1" {
			t.Errorf("row %s: ActionType %q Outcome %q source %q environment %q, want %q %q p1 env-1", id, r.String("ActionType"),
				r.String("Outcome"), r.String("AuditRelaySource"), r.String("EnvironmentId"), want.action, want.outcome)
		}
		var tg time.Time
		if json.Unmarshal(r.Columns["TimeGenerated"], &tg) != nil || !tg.Equal(want.time) {
			t.Errorf("row %s: TimeGenerated %s, want the event time %s", id, r.Columns["TimeGenerated"], want.time)
		}
	}
	if len(seen) != 300 {
		t.Errorf("%d distinct rows, want 300", len(seen))
	}
}

func TestNormalizeByProvider(t *testing.T) {
	ev, err := Normalize(event.Raw{Provider: "pingone", ID: "a", Data: []byte(`{"id":"a","action":{"type":"USER.CREATED"},"result":{"status":"FAILED"}}`)})
	if err != nil || ev.Action != "USER.CREATED" || ev.Outcome != event.OutcomeFailure {
		t.Errorf("pingone: %+v %v", ev, err)
	}
	ev, err = Normalize(event.Raw{Provider: "cyberark", ID: "t/u", Tenant: "t", Data: []byte(`{"uuid":"u","tenantId":"t","action":"cloud.core.login","auditType":"Failure","message":"bad password","userId":"u-1","username":"carol","source":"198.51.100.24"}`)})
	if err != nil || ev.Action != "cloud.core.login" || ev.Outcome != event.OutcomeFailure || ev.Reason != "bad password" ||
		ev.SourceIP != "198.51.100.24" || ev.Actor == nil || ev.Actor.Name != "carol" || ev.Tenant != "t" {
		t.Errorf("cyberark: %+v %v", ev, err)
	}
	if _, err := Normalize(event.Raw{Provider: "cyberark", ID: "t/v", Data: []byte(`"text"`)}); err == nil {
		t.Error("cyberark: data that is not an object normalized")
	}
	ev, err = Normalize(event.Raw{Provider: "other", ID: "b", Tenant: "t", Data: []byte(`{"x":1}`)})
	if err != nil || ev.ID != "b" || ev.Tenant != "t" || ev.Outcome != event.OutcomeUnknown || string(ev.Raw) != `{"x":1}` {
		t.Errorf("unknown provider: %+v %v", ev, err)
	}
}
