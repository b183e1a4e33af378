package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/sink/sekoia"
	"github.com/auditrelay/auditrelay/internal/source/cyberark"
	"github.com/auditrelay/auditrelay/internal/units"
)

// demoIntakeKey is the intake key of the demo's emulated Sekoia.io intake.
const demoIntakeKey = "demo-intake-key"

// serveLoopback serves h on a free loopback port until stop is called.
func serveLoopback(h http.Handler) (base string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// demoCyberArk is the CyberArk part of the demo: an emulated tenant with a
// backlog and live traffic, read by a cyberark source that feeds a sekoia
// sink to an emulated intake.
type demoCyberArk struct {
	emu    *emulator.CyberArk
	tenant emulator.CyberArkTenant
	intake *emulator.Sekoia
	caURL  string
	skURL  string
	stop   func()
}

// startDemoCyberArk starts the emulators and adds the source and the
// Sekoia sink to cfg.
func startDemoCyberArk(cfg *config.Config, backlog int, rate float64) (*demoCyberArk, error) {
	d := &demoCyberArk{emu: emulator.NewCyberArk(emulator.CyberArkOptions{RateLimit: 20}),
		intake: emulator.NewSekoia(emulator.SekoiaOptions{}, demoIntakeKey)}
	var stopCA, stopSK func()
	var err error
	if d.caURL, stopCA, err = serveLoopback(d.emu); err != nil {
		return nil, err
	}
	if d.skURL, stopSK, err = serveLoopback(d.intake); err != nil {
		stopCA()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.tenant = d.emu.StartDemo(ctx, uint64(time.Now().UnixNano()), backlog, time.Hour, rate, 3*time.Second)
	d.stop = func() {
		cancel()
		d.emu.Wait()
		stopCA()
		stopSK()
	}
	cc := demoCyberArkConfig(d.caURL, d.tenant)
	cfg.Sources = append(cfg.Sources, config.Source{Name: "demo-cyberark", CyberArk: cc})
	sc := &sekoia.Config{IntakeKey: secret.New(demoIntakeKey), URL: d.skURL}
	sc.SetDefaults()
	cfg.Sinks = append(cfg.Sinks, config.Sink{Name: "sekoia", Sources: []string{"demo-cyberark"}, Sekoia: sc})
	return d, nil
}

// demoCyberArkConfig is the source configuration of an emulated tenant.
func demoCyberArkConfig(base string, t emulator.CyberArkTenant) *cyberark.Config {
	cc := &cyberark.Config{
		IdentityURL: base, AppID: t.AppID, ClientID: t.ClientID, ClientSecret: secret.New(t.ClientSecret),
		AuditURL: base, APIKey: secret.New(t.APIKey),
		PollInterval: units.Duration(time.Second), SettleDelay: units.Duration(5 * time.Second),
		Overlap: units.Duration(5 * time.Second), Lookback: units.Duration(2 * time.Hour), RateLimit: 10,
	}
	cc.SetDefaults()
	return cc
}

// summary compares what the CyberArk emulator served with what the intake
// accepted.
func (d *demoCyberArk) summary(w io.Writer) {
	served := d.emu.ServedIDs(d.tenant.ID)
	msgs := d.intake.Messages(demoIntakeKey)
	fmt.Fprintf(w, "CyberArk: the API served %d distinct events; the emulated Sekoia.io intake accepted %d messages, %d of them flagged as unparsable\n",
		len(served), len(msgs), len(d.intake.Flagged()))
}

func emulateCyberArk(ctx context.Context, args []string, env Env) int {
	fs := newFlags("emulate cyberark", env)
	listen := fs.String("listen", "127.0.0.1:9002", "`ADDR` to listen on (identity_url and audit_url)")
	rate := fs.Float64("rate", 5, "live events/s")
	backlog := fs.Int("backlog", 1000, "events in the last hour")
	ttl := fs.Duration("token-ttl", time.Hour, "lifetime of issued tokens")
	cursorTTL := fs.Duration("cursor-ttl", 15*time.Minute, "lifetime of a cursorRef")
	lag := fs.Duration("max-lag", 3*time.Second, "longest delay before a live event becomes visible")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	ln, base, ok := listenEmulator(*listen, env)
	if !ok {
		return exitFailure
	}
	emu := emulator.NewCyberArk(emulator.CyberArkOptions{TokenTTL: *ttl, CursorTTL: *cursorTTL})
	t := emu.StartDemo(ctx, 1, *backlog, time.Hour, *rate, *lag)
	fmt.Fprintf(env.Stdout, "CyberArk emulator on %s (identity_url and audit_url); stats at %s/emulator/stats\n", base, base)
	fmt.Fprintf(env.Stdout, "  app_id: %s  client_id: %s  client_secret: %s  api_key: %s  (tenantId %s)\n",
		t.AppID, t.ClientID, t.ClientSecret, t.APIKey, t.ID)
	return serveUntilDone(ctx, ln, emu, env)
}

func emulateSekoia(ctx context.Context, args []string, env Env) int {
	fs := newFlags("emulate sekoia", env)
	listen := fs.String("listen", "127.0.0.1:9003", "`ADDR` to listen on (the sekoia sink's url)")
	key := fs.String("intake-key", demoIntakeKey, "the intake key accepted")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	ln, base, ok := listenEmulator(*listen, env)
	if !ok {
		return exitFailure
	}
	emu := emulator.NewSekoia(emulator.SekoiaOptions{}, *key)
	fmt.Fprintf(env.Stdout, "Sekoia.io intake emulator on %s (url); intake_key: %s; stats at %s/emulator/stats\n", base, *key, base)
	rc := serveUntilDone(ctx, ln, emu, env)
	fmt.Fprintf(env.Stdout, "accepted %d messages, %d flagged as unparsable\n", len(emu.Messages(*key)), len(emu.Flagged()))
	return rc
}

// listenEmulator listens on addr for an emulator and returns the listener
// and its base URL; ok is false when it could not, and the error is written.
func listenEmulator(addr string, env Env) (ln net.Listener, base string, ok bool) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay emulate: %v\n", err)
		return nil, "", false
	}
	return ln, "http://" + ln.Addr().String(), true
}

// serveUntilDone serves h on ln until ctx is done.
func serveUntilDone(ctx context.Context, ln net.Listener, h http.Handler, env Env) int {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(env.Stderr, "auditrelay emulate: %v\n", err)
		return exitFailure
	}
	return exitOK
}
