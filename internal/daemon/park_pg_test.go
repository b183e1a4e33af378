package daemon

import (
	"context"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/sink/syslog"
	"github.com/auditrelay/auditrelay/internal/source/cyberark"
	"github.com/auditrelay/auditrelay/internal/store/postgres"
	"github.com/auditrelay/auditrelay/internal/store/postgres/pgtest"
	"github.com/auditrelay/auditrelay/internal/units"
)

// TestParkedIntoPostgres runs the daemon on a PostgreSQL store with a
// syslog sink whose max_message_bytes no event fits: every event is parked,
// into the store's parked table and not into data_dir, and the parked
// metric counts them.
func TestParkedIntoPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	ca := emulator.NewCyberArk(emulator.CyberArkOptions{})
	csrv := httptest.NewServer(ca)
	defer csrv.Close()
	tenant := ca.StartDemo(context.Background(), 3, 30, time.Hour, 0, 0)
	emu := emulator.NewSyslog(emulator.SyslogOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go emu.Serve(ln)
	defer emu.Close()

	dir := t.TempDir()
	addr := freeAddr(t)
	pc := &postgres.Config{DSN: secret.New(dsn), ReplicaID: "r1"}
	pc.SetDefaults()
	cfg := &config.Config{DataDir: filepath.Join(dir, "data"), MetricsListen: addr, SpoolMaxBytes: 1 << 30, Store: config.Store{Postgres: pc}}
	cc := &cyberark.Config{IdentityURL: csrv.URL, AppID: tenant.AppID, ClientID: tenant.ClientID, ClientSecret: secret.New(tenant.ClientSecret),
		AuditURL: csrv.URL, APIKey: secret.New(tenant.APIKey), SettleDelay: units.Duration(time.Second),
		PollInterval: units.Duration(200 * time.Millisecond), Overlap: units.Duration(5 * time.Second), Lookback: units.Duration(2 * time.Hour), RateLimit: 20}
	cc.SetDefaults()
	cfg.Sources = []config.Source{{Name: "ca", CyberArk: cc}}
	sc := &syslog.Config{Address: ln.Addr().String(), Transport: syslog.TransportTCP, Format: syslog.FormatCEF, MaxMessageBytes: 480}
	sc.SetDefaults()
	cfg.Sinks = []config.Sink{{Name: "arcsight", Sources: []string{"ca"}, Syslog: sc}}

	d, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var parked int
	eventually(t, "30 events parked", func() bool {
		_, metrics := get(t, "http://"+addr+"/metrics")
		v, _ := metricValue(metrics, `auditrelay_syslog_parked_total{sink="arcsight"}`)
		parked, _ = strconv.Atoi(v)
		return parked >= 30
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(context.Background(), *pc, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows := 0
	if err := st.Parked("arcsight", func(e park.Entry) error {
		rows++
		if !strings.Contains(string(e.Line), `"parked_reason":"message of `) {
			t.Errorf("parked line %s", e.Line)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if rows != parked || len(emu.Messages()) != 0 {
		t.Errorf("%d rows in the parked table, %d counted parked, %d messages sent", rows, parked, len(emu.Messages()))
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "parked")); !os.IsNotExist(err) {
		t.Errorf("a park directory in data_dir under store.postgres: %v", err)
	}
}
