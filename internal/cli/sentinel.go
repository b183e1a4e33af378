package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/auditrelay/auditrelay/detections"
	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/detect"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/sink/sentinel"
)

// cmdSentinel runs `auditrelay sentinel template`.
func cmdSentinel(args []string, env Env) int {
	const use = "usage: auditrelay sentinel template --format pingone_v2|auditrelay|cyberark_audit|okta_v2|asim_audit|asim_authentication [--table NAME] [--workspace NAME] [--dce] [--with-detections]"
	if len(args) == 0 || args[0] != "template" {
		fmt.Fprintln(env.Stderr, use)
		return exitUsage
	}
	fs := newFlags("sentinel template", env)
	format := fs.String("format", sentinel.FormatPingOneV2, "row `FORMAT`: pingone_v2 (the Sentinel PingOne connector's stream and table), auditrelay (every field, typed), cyberark_audit (the Sentinel CyberArkAudit solution's stream and table) okta_v2 (the Sentinel Okta Single Sign-On solution's stream and table), asim_audit or asim_authentication (ASIM AuditEvent or Authentication rows of every provider)")
	table := fs.String("table", "", "custom table `NAME` ending in _CL (default PingOne_AuditActivitiesV2_CL for pingone_v2, PingOne_AuditActivities_CL for auditrelay, CyberArk_AuditEvents_CL for cyberark_audit, OktaV2_CL for okta_v2, AuditRelayAuditEvent_CL for asim_audit, AuditRelayAuthentication_CL for asim_authentication)")
	workspace := fs.String("workspace", "", "default of the template's workspaceName parameter: the Sentinel Log Analytics workspace `NAME`")
	dce := fs.Bool("dce", false, "also create a data collection endpoint (needed for private link); without it the DCR has its own ingestion endpoint")
	withDetections := fs.Bool("with-detections", false, "also create the Microsoft Sentinel analytics rules and hunting queries of detections/ whose queries read the table (docs/detections.md)")
	if fs.Parse(args[1:]) != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(env.Stderr, use)
		return exitUsage
	}
	o := sentinel.TemplateOptions{Format: *format, Table: *table, Workspace: *workspace, DCE: *dce}
	if *withDetections {
		c, err := detect.Load(detections.FS())
		if err != nil {
			fmt.Fprintf(env.Stderr, "auditrelay sentinel template: the built-in detections: %v\n", err)
			return exitFailure
		}
		o.Detections = &c
	}
	b, err := sentinel.Template(o)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay sentinel template: %v\n", err)
		return exitUsage
	}
	env.Stdout.Write(b)
	return exitOK
}

// demoSentinel is what a sink needs to reach an emulated Sentinel.
type demoSentinel struct {
	TenantID, ClientID, ClientSecret, DCR string
}

// setUpSentinelDCR is the immutable id of the emulated DCR.
const setUpSentinelDCR = "dcr-00000000000000000000000000a2e100"

// setUpSentinel registers an app, a DCR declaring every format's stream and
// the app's role assignment on it.
func setUpSentinel(emu *emulator.Sentinel) demoSentinel {
	d := demoSentinel{
		TenantID:     "72f988bf-0000-4000-8000-00000000a2e1",
		ClientID:     "3d1e0b5c-0000-4000-8000-00000000a2e1",
		ClientSecret: "emulated-azure-secret",
		DCR:          setUpSentinelDCR,
	}
	emu.AddApp(emulator.SentinelApp{TenantID: d.TenantID, ClientID: d.ClientID, ClientSecret: d.ClientSecret})
	for _, f := range sentinel.Formats() {
		var cols []emulator.SentinelColumn
		for _, c := range sentinel.StreamColumns(f) {
			cols = append(cols, emulator.SentinelColumn{Name: c.Name, Type: c.Type})
		}
		emu.AddStream(d.DCR, sentinel.DefaultStream(f), cols)
	}
	emu.Grant(d.DCR, d.ClientID)
	return d
}

// sinkConfig returns a defaulted sentinel block for the emulator at base.
func (d demoSentinel) sinkConfig(base, format string) *sentinel.Config {
	c := &sentinel.Config{Endpoint: base, DCRImmutableID: d.DCR, Format: format, TenantID: d.TenantID,
		ClientID: d.ClientID, ClientSecret: secret.New(d.ClientSecret), AuthorityURL: base}
	c.SetDefaults()
	return c
}

// emulateSentinel runs `auditrelay emulate sentinel`.
func emulateSentinel(ctx context.Context, args []string, env Env) int {
	fs := newFlags("emulate sentinel", env)
	listen := fs.String("listen", "127.0.0.1:9004", "`ADDR` to listen on")
	throttle := fs.Float64("throttle", 0, "fraction of upload calls answered 429")
	unavailable := fs.Float64("unavailable", 0, "fraction of upload calls answered 503")
	retryAfter := fs.Duration("retry-after", time.Second, "Retry-After of injected faults")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	ln, base, ok := listenEmulator(*listen, env)
	if !ok {
		return exitFailure
	}
	emu := emulator.NewSentinel(emulator.SentinelOptions{})
	emu.SetFaults(emulator.SentinelFaults{Throttle: *throttle, ServerError: *unavailable, RetryAfter: *retryAfter})
	d := setUpSentinel(emu)
	fmt.Fprintf(env.Stdout, "Sentinel emulator (Entra ID token endpoint and Logs Ingestion API) on %s; stats at %s/emulator/stats\n", base, base)
	fmt.Fprintf(env.Stdout, "sink configuration (any of the streams; format must match it):\n")
	fmt.Fprintf(env.Stdout, "    sentinel:\n      endpoint: %s\n      authority_url: %s\n      dcr_immutable_id: %s\n      stream: %s   # format: pingone_v2\n      #stream: %s  # format: auditrelay\n      #stream: %s        # format: cyberark_audit\n      #stream: %s                  # format: okta_v2\n      tenant_id: %s\n      client_id: %s\n      client_secret: %s\n",
		base, base, d.DCR, sentinel.DefaultStreamPingOneV2, sentinel.DefaultStreamAuditRelay, sentinel.DefaultStreamCyberArkAudit, sentinel.DefaultStreamOktaV2, d.TenantID, d.ClientID, d.ClientSecret)
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 5 * time.Second}
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

// startDemoSentinel serves an emulated Sentinel on loopback and adds a
// sentinel sink (format auditrelay) taking every source of cfg.
func startDemoSentinel(cfg *config.Config) (*emulator.Sentinel, string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, err
	}
	base := "http://" + ln.Addr().String()
	emu := emulator.NewSentinel(emulator.SentinelOptions{})
	d := setUpSentinel(emu)
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	var names []string
	for _, s := range cfg.Sources {
		names = append(names, s.Name)
	}
	cfg.Sinks = append(cfg.Sinks, config.Sink{Name: "sentinel", Sources: names, Sentinel: d.sinkConfig(base, sentinel.FormatAuditRelay)})
	return emu, base, func() { srv.Close() }, nil
}

// sentinelSummary reports what the emulated Sentinel ingested.
func sentinelSummary(w io.Writer, emu *emulator.Sentinel) {
	rows := emu.Rows(setUpSentinelDCR, sentinel.DefaultStreamAuditRelay)
	ids := map[string]int{}
	for _, r := range rows {
		ids[r.String("EnvironmentId")+"/"+r.String("Id")]++
	}
	st := emu.Stats()
	fmt.Fprintf(w, "Microsoft Sentinel (emulated) ingested %d rows, %d distinct events, in %d calls (%d gzipped); table PingOne_AuditActivities_CL\n",
		len(rows), len(ids), st.Accepted, st.Gzipped)
}
