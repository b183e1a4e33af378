// Package cli implements auditrelay's commands with the standard flag
// package and one switch over subcommands.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/daemon"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/store"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// Env is the process environment the commands use.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

const usage = `auditrelay moves identity-provider audit logs into SIEMs with no event lost: exactly once into a file sink, at least once (at most one batch repeated per crash) into the others.

Usage:
  auditrelay run --config FILE                 run the daemon
  auditrelay demo [--duration D] [--dir DIR]   run the pipeline offline against built-in emulators
  auditrelay validate --config FILE [--print]  check a configuration; --print shows it with defaults
  auditrelay check --config FILE               prove each source's and sink's credentials and reachability
  auditrelay poll --config FILE --source NAME [--from-lookback]
                                               one poll from the checkpoint (or the lookback), events as
                                               NDJSON on stdout; no checkpoint change
  auditrelay status --config FILE [--json]     watermarks, lag, errors and backlogs (works while running)
  auditrelay checkpoint show --config FILE [--source NAME]
  auditrelay checkpoint reset --config FILE --source NAME
                                               forget a checkpoint: the whole lookback is sent again
  auditrelay checkpoint set --config FILE --source NAME --at TIME
                                               resume a source at an instant (RFC 3339), daemon stopped
  auditrelay backfill --config FILE --source NAME --from TIME --to TIME
                                               read a past span of a source (PingOne: the last 14 days)
                                               through a cursor of its own, deduplicated like live events
  auditrelay replay --config FILE --sink NAME --from TIME --to TIME [--archive PATH]
                                               send a span again to one sink, from the spool (daemon
                                               stopped) or a file sink's output (works while running)
  auditrelay store compact --config FILE       shrink the store file to its live data (daemon stopped)
  auditrelay store parked --config FILE [--sink NAME]
                                               parked events as NDJSON with their sink, from the park
                                               files or the PostgreSQL store (works while running)
  auditrelay store migrate --from DATA_DIR --to DSN
                                               copy the embedded store and its park files into an empty
                                               PostgreSQL store (daemon stopped); or --config FILE
  auditrelay emulate pingone [--listen ADDR]   serve the PingOne emulator
  auditrelay emulate sentinel [--listen ADDR]  serve the Microsoft Sentinel (Entra ID + Logs Ingestion API) emulator
  auditrelay emulate cyberark [--listen ADDR]  serve the CyberArk Identity token endpoint and ISP audit API emulator
  auditrelay emulate sekoia [--listen ADDR]    serve the Sekoia.io HTTP intake emulator
  auditrelay emulate okta [--listen ADDR]      serve the Okta System Log and service app token emulator
  auditrelay emulate entra [--listen ADDR]     serve the Entra ID token endpoint and Microsoft Graph audit logs emulator
  auditrelay emulate splunk [--listen ADDR]    serve the Splunk HTTP Event Collector emulator (channels, ackIds)
  auditrelay emulate elasticsearch [--listen ADDR]
                                               serve the Elasticsearch (or --opensearch) _bulk emulator
  auditrelay emulate syslog [--tls]            receive syslog (TCP or TLS) and print each message parsed
  auditrelay sentinel template --format pingone_v2|auditrelay|cyberark_audit|okta_v2|asim_audit|asim_authentication
                               [--table NAME] [--workspace NAME] [--dce] [--with-detections]
                                               print the ARM template of a Sentinel table, DCR and DCE
  auditrelay normalize --format ocsf|ecs|asim [--provider pingone|cyberark|okta|entra]
                                               convert NDJSON on stdin (the file sink's lines, or bare
                                               provider events) to OCSF, ECS or ASIM on stdout
  auditrelay version                           version, commit, Go version and platform

Exit codes: 0 success, 1 failure, 2 bad usage or configuration.
`

// Main runs the command in args and returns the process exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, rest, env)
	case "demo":
		return cmdDemo(ctx, rest, env)
	case "validate":
		return cmdValidate(rest, env)
	case "check":
		return cmdCheck(ctx, rest, env)
	case "poll":
		return cmdPoll(ctx, rest, env)
	case "status":
		return cmdStatus(ctx, rest, env)
	case "checkpoint":
		return cmdCheckpoint(ctx, rest, env)
	case "store":
		return cmdStore(ctx, rest, env)
	case "backfill":
		return cmdBackfill(ctx, rest, env)
	case "replay":
		return cmdReplay(ctx, rest, env)
	case "emulate":
		return cmdEmulate(ctx, rest, env)
	case "sentinel":
		return cmdSentinel(rest, env)
	case "normalize":
		return cmdNormalize(rest, env)
	case "version", "--version", "-version":
		fmt.Fprintln(env.Stdout, ReadBuild())
		return exitOK
	case "help", "-h", "--help", "-help":
		fmt.Fprint(env.Stdout, usage)
		return exitOK
	}
	fmt.Fprintf(env.Stderr, "auditrelay: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

// Version returns the module version the binary was built from: a release
// tag, a pseudo-version naming the commit, or "devel".
func Version() string {
	return ReadBuild().Version
}

func newFlags(name string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet("auditrelay "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// loadConfig loads --config, printing every problem; ok is false when the
// caller should exit with exitUsage.
func loadConfig(path string, env Env) (*config.Config, bool) {
	return loadConfigWith(config.Load, path, env)
}

// loadConfigWith is loadConfig with the loader of the caller's choice:
// config.LoadWithoutSecrets for commands that only read the store.
func loadConfigWith(load func(string) (*config.Config, error), path string, env Env) (*config.Config, bool) {
	if path == "" {
		fmt.Fprintln(env.Stderr, "auditrelay: --config FILE is required")
		return nil, false
	}
	cfg, err := load(path)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: %s: invalid configuration:\n", path)
		var ce *config.Error
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				fmt.Fprintf(env.Stderr, "  %s\n", p)
			}
		} else {
			fmt.Fprintf(env.Stderr, "  %v\n", err)
		}
		return nil, false
	}
	return cfg, true
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	switch strings.ToLower(cfg.Log.Level) {
	case "debug":
		lvl = slog.LevelDebug
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if strings.ToLower(cfg.Log.Format) == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func cmdRun(ctx context.Context, args []string, env Env) int {
	fs := newFlags("run", env)
	path := fs.String("config", "", "configuration `FILE`")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	cfg, ok := loadConfig(*path, env)
	if !ok {
		return exitUsage
	}
	log := newLogger(cfg, env.Stderr)
	d, err := daemon.New(cfg, daemon.Options{Logger: log, Stdout: env.Stdout, Version: Version()})
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFailure
	}
	if err := d.Run(ctx); err != nil {
		log.Error("cannot run", "err", err)
		return exitFailure
	}
	return exitOK
}

func cmdValidate(args []string, env Env) int {
	fs := newFlags("validate", env)
	path := fs.String("config", "", "configuration `FILE`")
	print := fs.Bool("print", false, "print the effective configuration, secrets redacted")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	cfg, ok := loadConfig(*path, env)
	if !ok {
		return exitUsage
	}
	if *print {
		b, err := cfg.Redacted()
		if err != nil {
			fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
			return exitFailure
		}
		env.Stdout.Write(b)
		return exitOK
	}
	fmt.Fprintf(env.Stdout, "%s: valid (%d sources, %d sinks)\n", *path, len(cfg.Sources), len(cfg.Sinks))
	return exitOK
}

func cmdCheck(ctx context.Context, args []string, env Env) int {
	fs := newFlags("check", env)
	path := fs.String("config", "", "configuration `FILE`")
	timeout := fs.Duration("timeout", 30*time.Second, "time allowed for each check")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	cfg, ok := loadConfig(*path, env)
	if !ok {
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srcs, err := daemon.BuildSources(cfg, log)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
		return exitFailure
	}
	sinks, err := daemon.BuildSinks(cfg, log, env.Stdout)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
		return exitFailure
	}
	failed := 0
	report := func(kind, name string, check func(context.Context) error) {
		cctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		if err := check(cctx); err != nil {
			failed++
			fmt.Fprintf(env.Stdout, "FAIL  %s %s: %v\n", kind, name, err)
			return
		}
		fmt.Fprintf(env.Stdout, "ok    %s %s\n", kind, name)
	}
	for _, s := range srcs {
		report("source", s.Name, s.Check)
	}
	for _, s := range sinks {
		report("sink", s.Name, s.Check)
	}
	if failed > 0 {
		fmt.Fprintf(env.Stdout, "%d check(s) failed\n", failed)
		return exitFailure
	}
	return exitOK
}

func cmdPoll(ctx context.Context, args []string, env Env) int {
	fs := newFlags("poll", env)
	path := fs.String("config", "", "configuration `FILE`")
	name := fs.String("source", "", "source `NAME`")
	fresh := fs.Bool("from-lookback", false, "poll from the source's lookback instead of its stored checkpoint")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	cfg, ok := loadConfig(*path, env)
	if !ok {
		return exitUsage
	}
	srcs, err := daemon.BuildSources(cfg, slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
		return exitFailure
	}
	var src *daemon.Source
	for i := range srcs {
		if srcs[i].Name == *name {
			src = &srcs[i]
		}
	}
	if src == nil {
		fmt.Fprintf(env.Stderr, "auditrelay: --source %q is not configured; configured: %s\n", *name, sourceNames(cfg))
		return exitUsage
	}
	var cur []byte
	if *fresh {
		fmt.Fprintf(env.Stderr, "polling %s from its lookback (--from-lookback: the stored checkpoint is ignored)\n", src.Name)
	} else {
		// The running daemon's status carries the cursor; without a daemon
		// it comes from the store. A store held by a daemon that does not
		// answer is refused, never taken for "no checkpoint".
		st, err := daemon.ReadStatusOf(ctx, cfg)
		if err != nil {
			fmt.Fprintf(env.Stderr, "auditrelay: poll %s: cannot read its checkpoint: %v; or pass --from-lookback to poll from the lookback instead\n", src.Name, err)
			return exitFailure
		}
		var state *store.SourceState
		for i := range st.Store.Sources {
			if st.Store.Sources[i].Name == src.Name {
				state = &st.Store.Sources[i]
			}
		}
		switch {
		case state == nil || len(state.Cursor) == 0:
			fmt.Fprintf(env.Stderr, "polling %s from its lookback: it has no checkpoint yet\n", src.Name)
		case state.Fingerprint != src.Source.Fingerprint():
			fmt.Fprintf(env.Stderr, "auditrelay: poll %s: the stored checkpoint is for %s but the configuration reads %s; pass --from-lookback to poll from the lookback instead\n",
				src.Name, state.Fingerprint, src.Source.Fingerprint())
			return exitFailure
		default:
			cur = state.Cursor
			fmt.Fprintf(env.Stderr, "polling %s from its checkpoint (watermark %s)\n", src.Name, fmtTime(state.Watermark))
		}
	}
	page, err := src.Source.Poll(ctx, cur)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: poll %s: %v\n", src.Name, err)
		return exitFailure
	}
	var b []byte
	for i := range page.Events {
		if b, err = event.AppendLine(b, &page.Events[i]); err != nil {
			fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
			return exitFailure
		}
	}
	env.Stdout.Write(b)
	fmt.Fprintf(env.Stderr, "%d events; watermark %s; more pages: %v (checkpoint unchanged)\n",
		len(page.Events), fmtTime(page.Watermark), page.More)
	return exitOK
}

func sourceNames(cfg *config.Config) string {
	return strings.Join(cfg.SourceNames(), ", ")
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func fmtAge(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Truncate(time.Second).String()
}

// fmtAgo formats how long ago t was, or "never" when it is zero.
func fmtAgo(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmtAge(now, t) + " ago"
}

func cmdStatus(ctx context.Context, args []string, env Env) int {
	fs := newFlags("status", env)
	path := fs.String("config", "", "configuration `FILE`")
	asJSON := fs.Bool("json", false, "print JSON")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	cfg, ok := loadConfigWith(config.LoadWithoutSecrets, *path, env)
	if !ok {
		return exitUsage
	}
	st, err := daemon.ReadStatusOf(ctx, cfg)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
		return exitFailure
	}
	st.Store.Sources = allSources(cfg, st.Store.Sources)
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
		return exitOK
	}
	now := time.Now()
	state := "not running"
	if st.Running {
		state = "running " + st.Version
	}
	fmt.Fprintf(env.Stdout, "daemon: %s; spool: %d events, %d bytes\n", state, st.Store.SpoolCount, st.Store.SpoolBytes)
	// A shared store adds who runs what, and until when.
	shared := cfg.Store.Postgres != nil
	if shared {
		var ids []string
		for _, r := range st.Store.Replicas {
			ids = append(ids, r.ID)
		}
		fmt.Fprintf(env.Stdout, "replicas: %d live (%s)\n", len(ids), strings.Join(ids, ", "))
	}
	fmt.Fprintln(env.Stdout)
	lease := func(owner string, until time.Time) string {
		if !shared {
			return ""
		}
		if owner == "" {
			return "\t-\t-"
		}
		return "\t" + owner + "\t" + fmtTime(until)
	}
	leaseHead := ""
	if shared {
		leaseHead = "\tOWNER\tLEASE EXPIRES"
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tWATERMARK\tLAG\tLAST POLL\tEVENTS\tDUPLICATES\tLAST ERROR"+leaseHead)
	for _, s := range st.Store.Sources {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s%s\n", s.Name, fmtTime(s.Watermark), fmtAge(now, s.Watermark),
			fmtAgo(now, s.LastPoll), s.Events, s.Duplicates, oneLine(s.LastError), lease(s.Owner, s.LeaseExpires))
	}
	tw.Flush()
	fmt.Fprintln(env.Stdout)
	tw = tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SINK\tOFFSET\tBACKLOG\tDELIVERED\tLAST SEND\tLAST ERROR"+leaseHead)
	for _, s := range st.Store.Sinks {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s%s\n", s.Name, s.Offset, s.Backlog, s.Delivered, fmtAgo(now, s.LastSend), oneLine(s.LastError), lease(s.Owner, s.LeaseExpires))
	}
	tw.Flush()
	for _, s := range st.Store.Sources {
		for _, g := range s.Gaps {
			fmt.Fprintf(env.Stdout, "\nGAP %s: %s .. %s: %s (reported %s)", s.Name, fmtTime(g.From), fmtTime(g.To), g.Reason, fmtTime(g.Reported))
		}
	}
	for _, s := range st.Store.Sinks {
		if s.Corrupt > 0 {
			fmt.Fprintf(env.Stdout, "\nCORRUPT %s: %d unreadable spool records skipped, kept in %s", s.Name, s.Corrupt, daemon.ParkedIn(cfg, s.Name))
		}
	}
	if len(st.Halted) > 0 {
		keys := make([]string, 0, len(st.Halted))
		for k := range st.Halted {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintln(env.Stdout, "\nHALTED (needs the operator):")
		for _, k := range keys {
			fmt.Fprintf(env.Stdout, "  %s: %s\n", k, st.Halted[k])
		}
	}
	return exitOK
}

func oneLine(s string) string {
	if s == "" {
		return "-"
	}
	return strings.ReplaceAll(s, "\n", " ")
}
