package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/daemon"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/rotate"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/sink/file"
	"github.com/auditrelay/auditrelay/internal/source/pingone"
	"github.com/auditrelay/auditrelay/internal/store"
	"github.com/auditrelay/auditrelay/internal/units"
)

// demoLicence is the emulated licence every demo environment shares.
const demoLicence = "demo"

func cmdDemo(ctx context.Context, args []string, env Env) int {
	fs := newFlags("demo", env)
	dir := fs.String("dir", "auditrelay-demo", "`DIR` for the store and the NDJSON output")
	duration := fs.Duration("duration", 0, "end the live activity after this long, then stop once what the PingOne API served is delivered (up to 20s more; default: run until Ctrl-C)")
	envs := fs.Int("environments", 3, "emulated PingOne environments")
	rate := fs.Float64("rate", 20, "live events/s per environment")
	backlog := fs.Int("backlog", 5000, "events per environment in the last hour, waiting at start")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	if *envs < 1 || *envs > 100 || *rate < 0 || *backlog < 0 {
		fmt.Fprintln(env.Stderr, "auditrelay demo: --environments 1..100, --rate and --backlog not negative")
		return exitUsage
	}
	// The daemon runs until Ctrl-C, or until --duration has passed and
	// what the PingOne API served has been delivered (drained).
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var deadline <-chan time.Time
	if *duration > 0 {
		t := time.NewTimer(*duration)
		defer t.Stop()
		deadline = t.C
	}
	// The emulated API lives in this process only, so every demo starts
	// from a clean store and output, in a directory the demo made.
	if refused, err := prepareDemoDir(*dir); err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay demo: %v\n", err)
		if refused {
			return exitUsage
		}
		return exitFailure
	}
	logFile, err := os.OpenFile(filepath.Join(*dir, "auditrelay.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay demo: %v\n", err)
		return exitFailure
	}
	defer logFile.Close()
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))

	// The emulator: several environments with a backlog and live activity.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay demo: %v\n", err)
		return exitFailure
	}
	base := "http://" + ln.Addr().String()
	emu := emulator.NewPingOne(emulator.PingOneOptions{})
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	emuCtx, stopEmu := context.WithCancel(context.Background())
	defer stopEmu()
	environments := emu.StartDemo(emuCtx, base, emulator.DemoOptions{
		Environments: *envs, Backlog: time.Hour, BacklogPerEnv: *backlog, Rate: *rate, MaxLag: 3 * time.Second, Seed: uint64(time.Now().UnixNano()),
	})

	cfg := demoConfig(*dir, base, environments)
	az, azURL, stopAz, err := startDemoSentinel(cfg)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay demo: %v\n", err)
		return exitFailure
	}
	defer stopAz()
	ca, err := startDemoCyberArk(cfg, *backlog, *rate)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay demo: %v\n", err)
		return exitFailure
	}
	defer ca.stop()
	ok, err := startDemoOkta(cfg, *dir, *backlog, *rate)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay demo: %v\n", err)
		return exitFailure
	}
	defer ok.stop()
	en, err := startDemoEntra(cfg, *backlog, *rate)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay demo: %v\n", err)
		return exitFailure
	}
	defer en.stop()
	siems, err := startDemoSIEMs(cfg)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay demo: %v\n", err)
		return exitFailure
	}
	defer siems.stop()
	d, err := daemon.New(cfg, daemon.Options{Logger: log, Version: Version()})
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay demo: %v\n", err)
		return exitFailure
	}
	out := cfg.Sinks[0].File.Path
	fmt.Fprintf(env.Stdout, "auditrelay demo: %d emulated PingOne environments at %s (%d backlog events each, %.0f live events/s each)\n",
		len(environments), base, *backlog, *rate)
	fmt.Fprintf(env.Stdout, "and an emulated CyberArk tenant at %s read into an emulated Sekoia.io intake at %s\n", ca.caURL, ca.skURL)
	fmt.Fprintf(env.Stdout, "and an emulated Okta org at %s read with a service app (private_key_jwt) into the file\n", ok.url)
	fmt.Fprintf(env.Stdout, "and an emulated Entra ID tenant at %s (directory audits, sign-ins, provisioning) read into the file\n", en.url)
	fmt.Fprintf(env.Stdout, "every source also into an emulated Splunk HEC at %s (indexer acknowledgment) and an emulated Elasticsearch at %s\n", siems.hecURL, siems.esURL)
	fmt.Fprintf(env.Stdout, "writing NDJSON to %s and rows to an emulated Microsoft Sentinel at %s, store in %s, log in %s; Ctrl-C to stop\n\n", out, azURL, cfg.DataDir, logFile.Name())

	runErr := make(chan error, 1)
	go func() { runErr <- d.Run(runCtx) }()
	start := time.Now()
	var last int64
	lastAt := start
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-runErr:
			stopEmu()
			if err != nil {
				fmt.Fprintf(env.Stderr, "\nauditrelay demo: %v\n", err)
				return exitFailure
			}
			rc := demoSummary(env.Stdout, emu, environments, out, time.Since(start))
			sentinelSummary(env.Stdout, az)
			ca.summary(env.Stdout)
			ok.summary(env.Stdout, out)
			en.summary(env.Stdout, out)
			siems.summary(env.Stdout)
			return rc
		case <-deadline:
			// Stop the live PingOne activity and let the sinks deliver
			// what was served, for a summary without events in flight.
			deadline = nil
			stopEmu()
			go func() {
				defer stopRun()
				for end := time.Now().Add(demoDrain); time.Now().Before(end); {
					if snap, err := d.Snapshot(); err == nil && snap.SpoolCount == 0 && demoMissing(emu, environments, out) == 0 {
						return
					}
					if !sleepCtx(runCtx, 250*time.Millisecond) {
						return
					}
				}
			}()
		case now := <-tick.C:
			snap, err := d.Snapshot()
			if err != nil {
				continue
			}
			var polled int64
			for _, s := range snap.Sources {
				polled += int64(s.Events)
			}
			rate := float64(polled-last) / now.Sub(lastAt).Seconds()
			last, lastAt = polled, now
			fmt.Fprintln(env.Stdout, demoProgress(snap, now, rate))
		}
	}
}

// demoProgress formats one line of the demo's live progress: the events
// the sources stored, and their rate; how many each sink delivered (an
// event routed to three sinks is delivered three times); the spool; and
// each source's lag.
func demoProgress(snap store.Snapshot, now time.Time, rate float64) string {
	var polled uint64
	for _, s := range snap.Sources {
		polled += s.Events
	}
	sinks := slices.Clone(snap.Sinks)
	sort.Slice(sinks, func(i, j int) bool { return sinks[i].Name < sinks[j].Name })
	var delivered []string
	for _, s := range sinks {
		delivered = append(delivered, fmt.Sprintf("%s %d", s.Name, s.Delivered))
	}
	srcs := slices.Clone(snap.Sources)
	sort.Slice(srcs, func(i, j int) bool { return srcs[i].Name < srcs[j].Name })
	var lags []string
	for _, s := range srcs {
		lag := "-"
		if !s.Watermark.IsZero() {
			lag = now.Sub(s.Watermark).Round(time.Second).String()
		}
		lags = append(lags, fmt.Sprintf("%s %s", strings.TrimPrefix(s.Name, "demo-"), lag))
	}
	return fmt.Sprintf("%s  polled %7d  %6.0f events/s  delivered: %s  spool %5d  lag: %s",
		now.Format("15:04:05"), polled, rate, strings.Join(delivered, ", "), snap.SpoolCount, strings.Join(lags, ", "))
}

// demoMarker is the file that marks a directory as made by the demo.
const demoMarker = ".auditrelay-demo"

// prepareDemoDir makes dir ready for a demo run. A missing or empty
// directory is created and marked; a marked one has the store, output and
// log of the previous run removed, and nothing else. A directory with
// anything in it and no marker is refused (refused is then true): it may
// hold a real store.
func prepareDemoDir(dir string) (refused bool, err error) {
	marker := filepath.Join(dir, demoMarker)
	if _, err := os.Stat(marker); err == nil {
		for _, p := range append(rotate.Files(filepath.Join(dir, "events.ndjson")), filepath.Join(dir, "data"), filepath.Join(dir, "auditrelay.log")) {
			if err := os.RemoveAll(p); err != nil {
				return false, fmt.Errorf("clear the previous run's %s: %w", p, err)
			}
		}
		return false, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("--dir %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return true, fmt.Errorf("--dir %s is not empty and was not made by auditrelay demo (no %s in it): refusing to clear it; the demo clears its directory at every start, so give it a new or empty one", dir, demoMarker)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return false, fmt.Errorf("--dir %s: %w", dir, err)
	}
	note := "Made by `auditrelay demo`: the next demo run here removes data/, events.ndjson* and auditrelay.log.\n"
	if err := os.WriteFile(marker, []byte(note), 0o640); err != nil {
		return false, fmt.Errorf("--dir %s: mark it as the demo's: %w", dir, err)
	}
	return false, nil
}

func demoConfig(dir, base string, envs []emulator.Environment) *config.Config {
	cfg := &config.Config{
		DataDir:       filepath.Join(dir, "data"),
		SpoolMaxBytes: 1 << 30,
		Log:           config.Log{Level: "info", Format: "text"},
	}
	var names []string
	for i, e := range envs {
		pc := &pingone.Config{
			EnvironmentID:   e.ID,
			ClientID:        e.ClientID,
			ClientSecret:    secret.New(e.ClientSecret),
			TokenAuthMethod: e.AuthMethod,
			APIURL:          base,
			AuthURL:         base,
			PollInterval:    units.Duration(time.Second),
			SettleDelay:     units.Duration(5 * time.Second),
			Overlap:         units.Duration(5 * time.Second),
			Lookback:        units.Duration(2 * time.Hour),
			RateLimit:       10,
			Licence:         demoLicence,
		}
		pc.SetDefaults()
		name := fmt.Sprintf("demo-env-%d", i+1)
		names = append(names, name)
		cfg.Sources = append(cfg.Sources, config.Source{Name: name, PingOne: pc})
	}
	fc := &file.Config{Path: filepath.Join(dir, "events.ndjson")}
	fc.SetDefaults()
	cfg.Sinks = append(cfg.Sinks, config.Sink{Name: "file", Sources: names, File: fc})
	return cfg
}

// demoSummary compares what the emulator served with what the file holds.
// demoDrain bounds how long a timed demo waits, once its time is up, for
// the sinks to deliver what the PingOne API served.
const demoDrain = 20 * time.Second

// demoMissing counts the events the PingOne API served that the file
// does not hold yet (-1 when it cannot be read).
func demoMissing(emu *emulator.PingOne, envs []emulator.Environment, path string) int {
	served, counts, err := demoCounts(emu, envs, path)
	if err != nil {
		return -1
	}
	missing := 0
	for id := range served {
		if counts[id] == 0 {
			missing++
		}
	}
	return missing
}

// demoCounts returns the ids the PingOne API served, and how many times
// the file holds each PingOne event.
func demoCounts(emu *emulator.PingOne, envs []emulator.Environment, path string) (map[string]bool, map[string]int, error) {
	served := map[string]bool{}
	for _, e := range envs {
		for id := range emu.ServedIDs(e.ID) {
			served[id] = true
		}
	}
	counts := map[string]int{}
	for _, p := range rotate.Files(path) {
		lines, err := file.ReadLines(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("cannot read %s: %w", p, err)
		}
		for _, l := range lines {
			if l.Provider == pingone.Provider {
				counts[l.ID]++
			}
		}
	}
	return served, counts, nil
}

func demoSummary(w io.Writer, emu *emulator.PingOne, envs []emulator.Environment, path string, ran time.Duration) int {
	served, counts, err := demoCounts(emu, envs, path)
	if err != nil {
		fmt.Fprintln(w, err)
		return exitFailure
	}
	dups, missing := 0, 0
	for _, n := range counts {
		if n > 1 {
			dups += n - 1
		}
	}
	for id := range served {
		if counts[id] == 0 {
			missing++
		}
	}
	fmt.Fprintf(w, "\nran %s: the PingOne API served %d distinct events; %s holds %d PingOne events, %d duplicates; %d served events not yet written (still settling or in flight at stop)\n",
		ran.Round(time.Second), len(served), path, len(counts), dups, missing)
	fmt.Fprintln(w, "next: `auditrelay emulate pingone` serves the same emulator standalone, so you can run, kill -9 and restart `auditrelay run` against it")
	return exitOK
}

// emulateUsage lists every emulator `auditrelay emulate` serves.
const emulateUsage = `usage: auditrelay emulate KIND [flags]; KIND is one of:
  pingone  [--listen ADDR] [--environments N] [--rate R] [--backlog N] [--token-ttl D]
  cyberark [--listen ADDR] [--rate R] [--backlog N] [--token-ttl D] [--cursor-ttl D] [--max-lag D]
  sentinel [--listen ADDR] [--throttle F] [--unavailable F] [--retry-after D]
  sekoia   [--listen ADDR] [--intake-key KEY]
  okta     [--listen ADDR] [--rate R] [--backlog N] [--max-lag D] [--rate-limit N] [--key-file PATH]
  entra    [--listen ADDR] [--rate R] [--backlog N] [--max-lag D] [--premium=false] [--token-ttl D]
  splunk   [--listen ADDR] [--token T] [--ack=false] [--ack-delay D]
  elasticsearch [--listen ADDR] [--api-key KEY] [--opensearch] [--throttle F] [--unavailable F]
  syslog   [--listen ADDR] [--tls] [--max-message-bytes N]
`

// emulatorKinds names the kinds `auditrelay emulate` serves, in usage order.
const emulatorKinds = "pingone, cyberark, sentinel, sekoia, okta, entra, splunk, elasticsearch, syslog"

func cmdEmulate(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, emulateUsage)
		return exitUsage
	}
	switch args[0] {
	case "pingone":
		return emulatePingOne(ctx, args[1:], env)
	case "cyberark":
		return emulateCyberArk(ctx, args[1:], env)
	case "sentinel":
		return emulateSentinel(ctx, args[1:], env)
	case "sekoia":
		return emulateSekoia(ctx, args[1:], env)
	case "okta":
		return emulateOkta(ctx, args[1:], env)
	case "entra":
		return emulateEntra(ctx, args[1:], env)
	case "splunk":
		return emulateSplunk(ctx, args[1:], env)
	case "elasticsearch":
		return emulateElasticsearch(ctx, args[1:], env)
	case "syslog":
		return emulateSyslog(ctx, args[1:], env)
	}
	fmt.Fprintf(env.Stderr, "auditrelay emulate: unknown emulator %q; one of: %s\n\n%s", args[0], emulatorKinds, emulateUsage)
	return exitUsage
}

func emulatePingOne(ctx context.Context, args []string, env Env) int {
	fs := newFlags("emulate pingone", env)
	listen := fs.String("listen", "127.0.0.1:9001", "`ADDR` to listen on")
	envs := fs.Int("environments", 2, "environments to emulate")
	rate := fs.Float64("rate", 5, "live events/s per environment")
	backlog := fs.Int("backlog", 1000, "events per environment in the last hour")
	ttl := fs.Duration("token-ttl", time.Hour, "lifetime of issued tokens")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	ln, base, ok := listenEmulator(*listen, env)
	if !ok {
		return exitFailure
	}
	emu := emulator.NewPingOne(emulator.PingOneOptions{TokenTTL: *ttl})
	environments := emu.StartDemo(ctx, base, emulator.DemoOptions{
		Environments: *envs, Backlog: time.Hour, BacklogPerEnv: *backlog, Rate: *rate, MaxLag: 3 * time.Second, Seed: 1,
	})
	fmt.Fprintf(env.Stdout, "PingOne emulator on %s (api_url and auth_url); stats at %s/emulator/stats\n", base, base)
	for _, e := range environments {
		fmt.Fprintf(env.Stdout, "  environment_id: %s  client_id: %s  client_secret: %s  token_auth_method: %s  licence: %s\n",
			e.ID, e.ClientID, e.ClientSecret, e.AuthMethod, e.Licence)
	}
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
