// Command bench drives the real auditrelay binary against the in-process
// PingOne emulator and reports performance figures against their targets.
//
// It builds ./cmd/auditrelay with go build into a temporary directory, serves
// the emulator on 127.0.0.1, writes a configuration per run and runs
// `auditrelay run --config FILE` as a child process. Every scenario is run
// -runs times; each figure is reported as min, median and max over the runs,
// with its target and how many runs met it.
//
// Scenarios (-scenario):
//
//	backlog  100,000 activities over the last hour, one environment, 10 requests/s:
//	         time until the file sink holds them all, requests, 429s, peak RSS
//	idle     100 environments on one licence, 10 activities each, poll_interval 30s:
//	         RSS and CPU over 20 s once the first polls are done
//	latency  50 live activities/s, settle_delay 5s, poll_interval 1s: for 60 s,
//	         the time from an activity becoming visible to its line in the file
//	sinks    the backlog to the file sink alone, then to file + Splunk HEC +
//	         Elasticsearch (emulated here) in the same run: the ratio of the times
//	many     20 environments on 20 licences catching up on 50,000 activities each at
//	         once (-many-sources, -many-backlog), to the file sink and, with
//	         -many-sentinel, to Sentinel (format auditrelay) beside it: aggregate
//	         events/s, CPU per event, per-source catch-up, peak RSS, store size,
//	         fsyncs/s. The emulators run in a second bench process, whose CPU is
//	         reported apart
//
// Usage:
//
//	go run ./bench [-scenario backlog|idle|latency|sinks|many|all] [-runs 3] [-json FILE|-] [-bin PATH] [-keep]
//	               [-log-level LEVEL] [-child-env NAME=VALUE]… [-profile DIR [-profile-seconds N]]
//	               [-store bolt|postgres]
//	               [-many-sources 20] [-many-backlog 50000] [-many-sentinel] [-many-format raw|ocsf|ecs] [-many-batch N]
//
// The table goes to stdout, the same results as JSON to -json's file (or,
// with -json -, to stdout instead of the table); progress goes to stderr.
// -profile builds the binary with net/http/pprof through a build overlay
// (the repository is not modified) and saves each run's CPU, heap and allocs
// profiles. -store postgres has every child keep its state in a database
// of its own on a PostgreSQL server: the one $AUDITRELAY_BENCH_POSTGRES_DSN
// names (never printed; its user must be allowed to create databases), or
// else a throwaway cluster bench starts from the PostgreSQL binaries it
// finds (initdb on PATH or in /usr/lib/postgresql/*/bin), listening only
// on a unix socket, with fsync and synchronous_commit on. All traffic
// stays on loopback. The child is killed
// on every exit path, including when bench itself is interrupted.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	if spec := os.Getenv(emulatorEnv); spec != "" {
		os.Exit(emulatorChild(spec))
	}
	scenarioFlag := flag.String("scenario", "all", "scenario to run: backlog, idle, latency, sinks, many or all (comma-separated list allowed)")
	runsFlag := flag.Int("runs", 3, "runs of each scenario")
	jsonFlag := flag.String("json", "", "also write the results as JSON to this file; \"-\" prints them on stdout instead of the table")
	binFlag := flag.String("bin", "", "use this auditrelay binary instead of building ./cmd/auditrelay")
	keepFlag := flag.Bool("keep", false, "keep each run's directory (config, store, sink file, child log)")
	logLevelFlag := flag.String("log-level", "info", "log.level of the child: debug, info, warn or error")
	profileFlag := flag.String("profile", "", "build the binary with net/http/pprof (through a build overlay) and write each run's CPU, heap and allocs profiles into this directory; profiled figures are not representative")
	profileSecondsFlag := flag.Int("profile-seconds", 10, "length of the CPU profile, from the child's start")
	storeFlag := flag.String("store", "bolt", "where the child keeps its state: bolt (in its data_dir) or postgres (a database per child on the server $"+envBenchDSN+" names, else on a throwaway local cluster with fsync on)")
	var many manyParams
	flag.IntVar(&many.sources, "many-sources", 20, "many: environments, each on its own licence")
	flag.IntVar(&many.backlog, "many-backlog", 50_000, "many: activities in each environment's backlog")
	flag.BoolVar(&many.sentinel, "many-sentinel", false, "many: add a Sentinel sink (format auditrelay, emulated) beside the file sink")
	flag.StringVar(&many.format, "many-format", "", "many: the file sink's `format` (raw, ocsf or ecs; default raw)")
	flag.IntVar(&many.batch, "many-batch", 0, "many: the file sink's `batch_size` (default: the sink's own, 1000)")
	var childEnv []string
	flag.Func("child-env", "add `NAME=VALUE` to the child's environment only, e.g. GOMEMLIMIT=30MiB or GODEBUG=gctrace=1 (repeatable)", func(v string) error {
		if name, _, ok := strings.Cut(v, "="); !ok || name == "" {
			return fmt.Errorf("%q is not NAME=VALUE", v)
		}
		childEnv = append(childEnv, v)
		return nil
	})
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./bench [flags]\n\nflags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if *runsFlag < 1 {
		fmt.Fprintln(os.Stderr, "bench: -runs must be at least 1")
		os.Exit(2)
	}
	if err := checkMany(many); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	selected, err := selectScenarios(*scenarioFlag, many)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := options{runs: *runsFlag, bin: *binFlag, keep: *keepFlag, logLevel: *logLevelFlag, progress: os.Stderr,
		profileSeconds: *profileSecondsFlag, childEnv: childEnv, storeKind: *storeFlag}
	if *profileFlag != "" {
		if opts.profileDir, err = filepath.Abs(*profileFlag); err == nil {
			err = os.MkdirAll(opts.profileDir, 0o700)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: -profile: %v\n", err)
			os.Exit(2)
		}
	}
	rep, err := run(ctx, selected, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	if *jsonFlag != "-" {
		printReport(os.Stdout, rep)
	}
	if *jsonFlag != "" {
		if err := writeJSON(*jsonFlag, rep); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
	}
	if rep.Failed > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d run(s) failed; see the errors above\n", rep.Failed)
		os.Exit(1)
	}
}

// writeJSON writes the report as indented JSON to path, or to stdout when
// path is "-".
func writeJSON(path string, rep *report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the results: %w", err)
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
	} else {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		return fmt.Errorf("write the results: %w", err)
	}
	return nil
}

// options are the settings of one invocation.
type options struct {
	runs     int
	bin      string
	keep     bool
	logLevel string
	progress io.Writer
	// profileDir, when set, asks for a profiling build and each run's
	// profiles; profileSeconds is the length of the CPU profiles.
	profileDir     string
	profileSeconds int
	// childEnv is added to every child's environment.
	childEnv []string
	// storeKind is -store: bolt or postgres.
	storeKind string
}

// selectScenarios resolves the -scenario flag.
func selectScenarios(spec string, many manyParams) ([]scenario, error) {
	all := scenarios(many)
	if spec == "all" {
		return all, nil
	}
	var out []scenario
	for name := range strings.SplitSeq(spec, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, s := range all {
			if s.name == name {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown scenario %q (want backlog, idle, latency, sinks, many or all)", name)
		}
	}
	return out, nil
}

// run builds the binary, then runs every selected scenario opts.runs times.
func run(ctx context.Context, selected []scenario, opts options) (*report, error) {
	rep := &report{Started: time.Now().UTC(), Machine: describeMachine(ctx)}
	root, err := os.MkdirTemp("", "auditrelay-bench-")
	if err != nil {
		return nil, fmt.Errorf("create the work directory: %w", err)
	}
	if opts.keep {
		fmt.Fprintf(opts.progress, "bench: keeping run directories under %s\n", root)
	} else {
		defer os.RemoveAll(root)
	}
	bin := opts.bin
	if bin == "" {
		fmt.Fprintf(opts.progress, "bench: building ./cmd/auditrelay\n")
		if bin, err = buildBinary(ctx, root, opts.profileDir != ""); err != nil {
			return nil, err
		}
	} else if bin, err = filepath.Abs(bin); err != nil {
		return nil, fmt.Errorf("-bin: %w", err)
	} else if opts.profileDir != "" {
		fmt.Fprintf(opts.progress, "bench: -profile with -bin: %s must be a profiling build\n", bin)
	}
	rep.Binary = bin
	rep.ChildEnv = opts.childEnv
	st, err := openStore(cmp.Or(opts.storeKind, "bolt"))
	if err != nil {
		return nil, err
	}
	defer st.close()
	rep.Store = st.describe()
	fmt.Fprintf(opts.progress, "bench: store %s\n", rep.Store)
	rep.LoadBefore = loadAverage()
	for _, sc := range selected {
		sr := scenarioReport{Name: sc.name, Description: sc.description}
		for i := 1; i <= opts.runs; i++ {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("interrupted: %w", ctx.Err())
			}
			dir := filepath.Join(root, fmt.Sprintf("%s-%d", sc.name, i))
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("create the run directory: %w", err)
			}
			load := loadAverage()
			fmt.Fprintf(opts.progress, "bench: %s run %d/%d (load %s)\n", sc.name, i, opts.runs, load)
			rctx, cancel := context.WithTimeout(ctx, sc.timeout)
			env := &runEnv{run: i, bin: bin, dir: dir, logLevel: opts.logLevel,
				profileDir: opts.profileDir, profileSeconds: opts.profileSeconds, name: fmt.Sprintf("%s-%d", sc.name, i),
				childEnv: opts.childEnv, store: st}
			start := time.Now()
			vals, err := sc.run(rctx, env)
			cancel()
			env.cleanup()
			rr := runReport{Run: i, Load: load, Seconds: time.Since(start).Seconds(), Values: vals, Notes: env.notes}
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					err = fmt.Errorf("hard timeout of %v: %w", sc.timeout, err)
				}
				rr.Error = err.Error()
				rep.Failed++
				fmt.Fprintf(opts.progress, "bench: %s run %d failed: %v\n", sc.name, i, err)
				if tail := env.logTail(); tail != "" {
					fmt.Fprintf(opts.progress, "bench: last lines of the child's log:\n%s\n", tail)
				}
			} else {
				fmt.Fprintf(opts.progress, "bench: %s run %d: %s\n", sc.name, i, formatValues(sc.figures, vals))
			}
			for _, n := range env.notes {
				fmt.Fprintf(opts.progress, "bench:   note: %s\n", n)
			}
			sr.Runs = append(sr.Runs, rr)
			if !opts.keep {
				if err := os.RemoveAll(dir); err != nil {
					fmt.Fprintf(opts.progress, "bench: remove %s: %v\n", dir, err)
				}
			}
		}
		sr.Figures = aggregate(sc.figures, sr.Runs)
		rep.Scenarios = append(rep.Scenarios, sr)
	}
	rep.LoadAfter = loadAverage()
	rep.Finished = time.Now().UTC()
	return rep, nil
}
