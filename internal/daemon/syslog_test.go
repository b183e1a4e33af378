package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/sink/syslog"
)

// TestBuildSyslog: a syslog: block builds a sink that checks, sends, and
// counts into its auditrelay_syslog_* metrics.
func TestBuildSyslog(t *testing.T) {
	emu := emulator.NewSyslog(emulator.SyslogOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go emu.Serve(ln)
	defer emu.Close()
	sc := syslog.Config{Address: ln.Addr().String(), Transport: syslog.TransportTCP, Format: syslog.FormatCEF}
	sc.SetDefaults()
	cfg := &config.Config{DataDir: t.TempDir(), Sinks: []config.Sink{{Name: "arcsight", Syslog: &sc}}}
	sinks, err := BuildSinks(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := sinks[0]
	defer b.Sink.Close(context.Background())
	if b.Batch != 2000 {
		t.Errorf("batch %d, want the default 2000", b.Batch)
	}
	if err := b.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	ev := event.Raw{Source: "okta", Provider: "okta", Tenant: "example.okta.com", ID: "u-1", Time: time.Now(),
		Data: json.RawMessage(`{"uuid":"u-1","eventType":"user.session.start"}`)}
	if err := b.Sink.Send(t.Context(), []event.Raw{ev}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(b.Collectors...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()[0].GetCounter().GetValue()
	}
	for name, want := range map[string]float64{"auditrelay_syslog_events_total": 1, "auditrelay_syslog_batches_total": 1,
		"auditrelay_syslog_connects_total": 1, "auditrelay_syslog_parked_total": 0, "auditrelay_syslog_resent_batches_total": 0} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if got["auditrelay_syslog_bytes_total"] == 0 {
		t.Error("auditrelay_syslog_bytes_total is 0")
	}
	// an event that is not JSON is parked, and status counts it
	big := ev
	big.ID, big.Data = "u-2", json.RawMessage(`{"uuid":"u-2 `+strings.Repeat("x", 90)) // an unterminated string
	if err := b.Sink.Send(t.Context(), []event.Raw{big}); err != nil {
		t.Fatal(err)
	}
	if b.Parked == nil || b.Parked() != 1 {
		t.Errorf("status counts no parked event for the syslog sink")
	}
	if line, err := os.ReadFile(ParkPath(cfg.DataDir, "arcsight")); err != nil || !strings.Contains(string(line), `"id":"u-2"`) {
		t.Errorf("park file: %q, %v", line, err)
	}
}
