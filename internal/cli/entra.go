package cli

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
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
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay emulate: %v\n", err)
		return exitFailure
	}
	base := "http://" + ln.Addr().String()
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
