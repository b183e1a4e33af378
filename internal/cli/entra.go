package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/rotate"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/sink/file"
	"github.com/auditrelay/auditrelay/internal/source/entra"
	"github.com/auditrelay/auditrelay/internal/units"
)

// Credentials the Entra ID emulator accepts.
const (
	demoEntraTenant = "00000000-0000-4000-8000-00000000e1d0"
	demoEntraClient = "00000000-0000-4000-8000-0000000a0001"
	demoEntraSecret = "emulator-secret"
)

func emulateEntra(ctx context.Context, args []string, env Env) int {
	fs := newFlags("emulate entra", env)
	listen := fs.String("listen", "127.0.0.1:9006", "`ADDR` to listen on (authority_url and graph_url)")
	rate := fs.Float64("rate", 2, "live events/s per stream")
	backlog := fs.Int("backlog", 1000, "events per stream in the last 24 hours")
	lag := fs.Duration("max-lag", 5*time.Minute, "longest delay before a live event becomes visible")
	premium := fs.Bool("premium", true, "the tenant has Entra ID P1/P2 (sign-ins readable, 30-day retention)")
	ttl := fs.Duration("token-ttl", time.Hour, "lifetime of issued tokens")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	ln, base, ok := listenEmulator(*listen, env)
	if !ok {
		return exitFailure
	}
	emu := emulator.NewEntra(emulator.EntraOptions{TokenTTL: *ttl, ShortPages: 0.05})
	emu.AddTenant(emulator.EntraTenant{ID: demoEntraTenant, Premium: *premium})
	emu.AddApp(emulator.EntraApp{TenantID: demoEntraTenant, ClientID: demoEntraClient, ClientSecret: demoEntraSecret,
		Permissions: []string{emulator.EntraAuditLogRead, emulator.EntraDirectoryRead}})
	g := emulator.NewEntraGenerator(demoEntraTenant, 1)
	streams := []string{emulator.EntraDirectoryAudits, emulator.EntraSignIns, emulator.EntraProvisioning}
	now := time.Now()
	for _, st := range streams {
		emu.Backlog(g, demoEntraTenant, st, *backlog, now.Add(-24*time.Hour), now, *lag)
	}
	go emu.Run(ctx, g, demoEntraTenant, streams, *rate, *lag)
	fmt.Fprintf(env.Stdout, "Entra ID + Microsoft Graph emulator on %s (authority_url and graph_url); stats at %s/emulator/stats\n", base, base)
	fmt.Fprintf(env.Stdout, "  tenant_id: %s  client_id: %s  client_secret: %s\n", demoEntraTenant, demoEntraClient, demoEntraSecret)
	return serveUntilDone(ctx, ln, emu, env)
}

// demoEntra is the Entra ID part of the demo: an emulated tenant with a
// backlog and live events of its three streams, read into the file.
type demoEntra struct {
	emu  *emulator.Entra
	url  string
	stop func()
}

// startDemoEntra starts the emulated tenant and adds the source (one per
// stream) to cfg, routed to its first sink (the file).
func startDemoEntra(cfg *config.Config, backlog int, rate float64) (*demoEntra, error) {
	// The demo runs for seconds: settle and overlap are seconds too, and
	// one window of an hour holds the backlog, since Graph's budget (and
	// rate_limit) allow a request every 2 s for the three streams.
	d := &demoEntra{emu: emulator.NewEntra(emulator.EntraOptions{RateLimit: 100, ShortPages: 0.05})}
	d.emu.AddTenant(emulator.EntraTenant{ID: demoEntraTenant, Premium: true})
	d.emu.AddApp(emulator.EntraApp{TenantID: demoEntraTenant, ClientID: demoEntraClient, ClientSecret: demoEntraSecret,
		Permissions: []string{emulator.EntraAuditLogRead, emulator.EntraDirectoryRead}})
	var stopSrv func()
	var err error
	if d.url, stopSrv, err = serveLoopback(d.emu); err != nil {
		return nil, err
	}
	g := emulator.NewEntraGenerator(demoEntraTenant, uint64(time.Now().UnixNano()))
	streams := []string{emulator.EntraDirectoryAudits, emulator.EntraSignIns, emulator.EntraProvisioning}
	now := time.Now()
	for _, st := range streams {
		d.emu.Backlog(g, demoEntraTenant, st, backlog/3, now.Add(-50*time.Minute), now.Add(-3*time.Second), 3*time.Second)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.emu.Run(ctx, g, demoEntraTenant, streams, rate/3, 3*time.Second); close(done) }()
	d.stop = func() {
		cancel()
		<-done
		stopSrv()
	}
	ec := &entra.Config{TenantID: demoEntraTenant, ClientID: demoEntraClient, ClientSecret: secret.New(demoEntraSecret),
		Streams:      []string{entra.StreamDirectoryAudits, entra.StreamSignIns, entra.StreamProvisioning},
		AuthorityURL: d.url, GraphURL: d.url, SettleDelay: units.Duration(5 * time.Second), Overlap: units.Duration(5 * time.Second),
		Lookback: units.Duration(time.Hour), PollInterval: units.Duration(time.Second), RateLimit: 0.5}
	ec.SetDefaults()
	src := config.Source{Name: "demo-entra", Entra: ec}
	cfg.Sources = append(cfg.Sources, src)
	cfg.Sinks[0].Sources = append(cfg.Sinks[0].Sources, src.Names()...)
	return d, nil
}

// summary compares what the emulated tenant served with what the file
// holds.
func (d *demoEntra) summary(w io.Writer, path string) {
	served := map[string]bool{}
	for _, st := range []string{emulator.EntraDirectoryAudits, emulator.EntraSignIns, emulator.EntraProvisioning} {
		for id := range d.emu.ServedIDs(demoEntraTenant, st) {
			served[id] = true
		}
	}
	inFile := map[string]int{}
	for _, p := range rotate.Files(path) {
		lines, _ := file.ReadLines(p)
		for _, l := range lines {
			if strings.HasPrefix(l.Source, "demo-entra/") {
				inFile[l.ID]++
			}
		}
	}
	dups, missing := 0, 0
	for _, n := range inFile {
		dups += n - 1
	}
	for id := range served {
		if inFile[id] == 0 {
			missing++
		}
	}
	fmt.Fprintf(w, "Entra ID: Graph served %d distinct events in 3 streams; %s holds %d of them, %d duplicates; %d served events not yet written\n",
		len(served), path, len(inFile), dups, missing)
}
