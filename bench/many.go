package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/normalize"
	"github.com/auditrelay/auditrelay/internal/sink/sentinel"
	"github.com/auditrelay/auditrelay/internal/store/bolt"
)

// The parameters of the many scenario that have no flag.
const (
	manyPageSize    = 1000
	manyRate        = 10   // requests/s per licence, the emulator's default
	manyFairness    = 1.25 // the slowest source's catch-up over the fastest's
	manyRSSMiB      = 256
	manyFileRate    = 100_000 // events/s, file sink alone
	manySentinelMin = 60_000  // events/s, file + Sentinel
	manyCPUMicros   = 10.0    // CPU µs per event, file sink alone
	// emulatorEnv holds the JSON emulatorSpec that makes bench an emulator
	// child instead of a harness.
	emulatorEnv = "AUDITRELAY_BENCH_EMULATOR"
	// sentinelSecret and friends are the emulated Sentinel's app.
	sentinelTenant   = "72f988bf-0000-4000-8000-0000000bench"
	sentinelClientID = "3d1e0b5c-0000-4000-8000-0000000bench"
	sentinelSecret   = "bench-azure-secret"
	sentinelDCR      = "dcr-000000000000000000000000000bench"
)

// manyParams are the -many-* flags.
type manyParams struct {
	sources, backlog int
	sentinel         bool
	format           string // the file sink's format; empty: raw
	batch            int    // the file sink's batch_size; 0: its default
}

// manyScenario measures many environments, each on its own licence,
// catching up on their backlogs at once.
func manyScenario(p manyParams) scenario {
	atMost := func(limit float64) func(float64) bool { return func(v float64) bool { return v <= limit } }
	atLeast := func(limit float64) func(float64) bool { return func(v float64) bool { return v >= limit } }
	equal := func(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
	total := p.sources * p.backlog
	format := cmp.Or(p.format, "raw")
	sinks := fmt.Sprintf("file sink (%s, fsync on)", format)
	rateTarget := float64(manyFileRate)
	if p.sentinel {
		sinks += " + sentinel (format auditrelay)"
		rateTarget = manySentinelMin
	}
	figs := []figure{
		{key: "time_s", label: "time until every sink holds all", unit: "s"},
		{key: "events_per_s", label: "aggregate throughput", unit: "events/s", target: fmt.Sprintf("≥ %.0f", rateTarget), met: atLeast(rateTarget)},
		{key: "api_done_s", label: "time until the emulator served every event", unit: "s"},
		{key: "catchup_min_s", label: "per-source catch-up (file), min", unit: "s"},
		{key: "catchup_median_s", label: "per-source catch-up (file), median", unit: "s"},
		{key: "catchup_max_s", label: "per-source catch-up (file), max", unit: "s"},
		{key: "catchup_ratio", label: "slowest / fastest catch-up", unit: "×", target: fmt.Sprintf("≤ %.2f", manyFairness), met: atMost(manyFairness)},
		{key: "cpu_s", label: "auditrelay CPU time", unit: "s"},
		{key: "cpu_s_per_100k", label: "auditrelay CPU per 100k events", unit: "s"},
		{key: "cpu_us_per_event", label: "auditrelay CPU per event", unit: "µs"},
		{key: "emulator_cpu_s", label: "emulator process CPU time", unit: "s"},
		{key: "harness_cpu_s", label: "harness CPU time (tailing the file, sampling)", unit: "s"},
		{key: "cpu_per_emulator_cpu", label: "auditrelay CPU / emulator CPU (the emulator's work is fixed: a yardstick of the machine's speed)", unit: "×"},
		{key: "peak_rss_mib", label: "peak RSS (VmHWM)", unit: "MiB", target: fmt.Sprintf("≤ %d", manyRSSMiB), met: atMost(manyRSSMiB)},
		{key: "anon_peak_mib", label: "anonymous RSS, max sampled", unit: "MiB"},
		{key: "file_peak_mib", label: "file-backed RSS (binary text + store mmap), max sampled", unit: "MiB"},
		{key: "store_mib", label: "store file size, max sampled", unit: "MiB"},
		{key: "segments_mib", label: "spool segment files, max sampled", unit: "MiB"},
		{key: "store_commits", label: "store write transactions", unit: ""},
		{key: "file_batches", label: "file sink batches (one fsync each)", unit: ""},
		{key: "fsyncs_per_s", label: "fsyncs per second (2 per store commit + 1 per file batch, not counting segment syncs)", unit: "/s"},
		{key: "throttled", label: "429s received", unit: "", target: "= 0", met: equal(0)},
		{key: "lines", label: "lines in the file", unit: "", target: fmt.Sprintf("= %d", total), met: equal(float64(total))},
		{key: "distinct_ids", label: "distinct ids in the file", unit: "", target: fmt.Sprintf("= %d", total), met: equal(float64(total))},
	}
	if p.sentinel {
		figs = append(figs,
			figure{key: "sentinel_s", label: "sentinel: time to hold all", unit: "s"},
			figure{key: "sentinel_rows", label: "sentinel rows", unit: "", target: fmt.Sprintf("≥ %d", total), met: atLeast(float64(total))})
	}
	return scenario{
		name: "many",
		description: fmt.Sprintf("%d environments, each on its own licence (emulator and rate_limit %d requests/s each), %d activities each over [now-1h, now-5m), page_size %d, to the %s; the emulator in a process of its own",
			p.sources, manyRate, p.backlog, manyPageSize, sinks),
		timeout: 10 * time.Minute,
		figures: figs,
		run:     func(ctx context.Context, e *runEnv) (map[string]float64, error) { return runMany(ctx, e, p) },
	}
}

// emulatorSpec is what an emulator child serves.
type emulatorSpec struct {
	Sources  int    `json:"sources"`
	Backlog  int    `json:"backlog"`
	Seed     uint64 `json:"seed"`
	Sentinel bool   `json:"sentinel"`
}

// emulatorAddrs is the line an emulator child prints once it serves.
type emulatorAddrs struct {
	PingOne  string `json:"pingone"`
	Sentinel string `json:"sentinel,omitempty"`
}

// emulatorChild runs bench as the emulator process of the many scenario:
// it serves the PingOne emulator holding the backlogs (and the Sentinel
// emulator, counting rows only) on loopback, prints their URLs as one JSON
// line and serves until its standard input closes or it is signalled.
func emulatorChild(spec string) int {
	var sp emulatorSpec
	if err := json.Unmarshal([]byte(spec), &sp); err != nil {
		fmt.Fprintf(os.Stderr, "bench emulator: %s: %v\n", emulatorEnv, err)
		return 2
	}
	emu := emulator.NewPingOne(emulator.PingOneOptions{})
	api, err := serveEmulator(emu)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench emulator: %v\n", err)
		return 1
	}
	gen := emulator.NewGenerator(sp.Seed)
	now := time.Now()
	for i := 1; i <= sp.Sources; i++ {
		env := environment(i, "")
		emu.AddEnvironment(env)
		emu.Backlog(gen, env.ID, api.url, sp.Backlog, now.Add(-time.Hour), now.Add(-5*time.Minute))
	}
	addrs := emulatorAddrs{PingOne: api.url}
	if sp.Sentinel {
		snt := emulator.NewSentinel(emulator.SentinelOptions{CountOnly: true})
		snt.AddApp(emulator.SentinelApp{TenantID: sentinelTenant, ClientID: sentinelClientID, ClientSecret: sentinelSecret})
		var cols []emulator.SentinelColumn
		for _, c := range sentinel.StreamColumns(sentinel.FormatAuditRelay) {
			cols = append(cols, emulator.SentinelColumn{Name: c.Name, Type: c.Type})
		}
		snt.AddStream(sentinelDCR, sentinel.DefaultStream(sentinel.FormatAuditRelay), cols)
		snt.Grant(sentinelDCR, sentinelClientID)
		srv, err := serveEmulator(snt)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench emulator: %v\n", err)
			return 1
		}
		defer srv.Close()
		addrs.Sentinel = srv.url
	}
	defer api.Close()
	debug.FreeOSMemory() // the generator's garbage is not the emulator's working set
	b, _ := json.Marshal(addrs)
	fmt.Printf("%s\n", b)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // the harness closes it, or dies
		stop()
	}()
	<-ctx.Done()
	return 0
}

// emulatorProc is a running emulator child.
type emulatorProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addrs emulatorAddrs
	done  chan struct{}
}

// startEmulator starts bench itself as an emulator child serving sp and
// waits for its addresses.
func startEmulator(ctx context.Context, sp emulatorSpec) (*emulatorProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find bench's own binary for the emulator process: %w", err)
	}
	b, err := json.Marshal(sp)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), emulatorEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the emulator process: %w", err)
	}
	p := &emulatorProc{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	line := make(chan error, 1)
	go func() {
		l, err := bufio.NewReader(stdout).ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(l, &p.addrs)
		}
		line <- err
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(p.done)
	}()
	select {
	case err := <-line:
		if err != nil {
			p.stop()
			return nil, fmt.Errorf("the emulator process did not report its addresses: %w", err)
		}
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
	return p, nil
}

// stop ends the emulator child and waits for it.
func (p *emulatorProc) stop() {
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// getJSON GETs url and decodes its JSON body into v.
func getJSON(ctx context.Context, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// rawMarker ends the envelope of a raw line, which holds the source and
// the id.
var rawMarker = []byte(`,"raw":`)

// lineKey returns the source and the id of a line of the file sink: for a
// raw line from its envelope alone, before the event (the harness shares
// the machine with the daemon), for the other formats through
// normalize.LineKey.
func lineKey(l []byte) (src, id string, err error) {
	if i := bytes.Index(l, rawMarker); i > 0 {
		var k struct{ Source, ID string }
		if err := json.Unmarshal(append(l[:i:i], '}'), &k); err == nil && k.ID != "" {
			return k.Source, k.ID, nil
		}
	}
	src, id, ok := normalize.LineKey(l)
	if !ok {
		return "", "", fmt.Errorf("a line with no source and id: %.200s", l)
	}
	return src, id, nil
}

// sourceMarkers lead the configured source's name in a line of each file
// sink format: raw (the envelope's first key), OCSF, ECS.
var sourceMarkers = [][]byte{[]byte(`{"source":"`), []byte(`"log_source":"`), []byte(`"auditrelay_source":"`)}

// lineSource returns the configured source of a line of the file sink
// without parsing it: the harness counts each source's lines while the
// clock runs, on the machine the daemon uses. manyIDs checks the result
// with a full parse afterwards.
func lineSource(l []byte) (string, bool) {
	for i, m := range sourceMarkers {
		at := 0
		if i == 0 {
			if !bytes.HasPrefix(l, m) {
				continue
			}
		} else if at = bytes.Index(l, m); at < 0 {
			continue
		}
		v := l[at+len(m):]
		if end := bytes.IndexByte(v, '"'); end > 0 {
			return string(v[:end]), true
		}
	}
	return "", false
}

// manyIDs reads the sink file after a run and returns the distinct event
// ids in it. It fails when a line has no source and id or when a source's
// line count differs from perSource, the count taken while the clock ran.
func manyIDs(path string, perSource map[string]int) (map[string]struct{}, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the sink file: %w", err)
	}
	defer f.Close()
	ids := map[string]struct{}{}
	got := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		src, id, err := lineKey(sc.Bytes())
		if err != nil {
			return nil, err
		}
		ids[id] = struct{}{}
		got[src]++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	for src, n := range perSource {
		if got[src] != n {
			return nil, fmt.Errorf("source %s: %d lines counted while the run went, %d in the file", src, n, got[src])
		}
	}
	if len(got) != len(perSource) {
		return nil, fmt.Errorf("%d sources in the file, %d counted while the run went", len(got), len(perSource))
	}
	return ids, nil
}

// metricValue returns the sum of the samples of a metric whose label set
// contains labels, from the daemon's /metrics.
func metricValue(ctx context.Context, addr, name, labels string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name+"{") || !strings.Contains(l, labels) {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", l, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// storeCommits returns how many write transactions a stopped daemon's
// store has committed: bbolt's transaction id counts them.
func storeCommits(dataDir string) (float64, error) {
	db, err := bbolt.Open(filepath.Join(dataDir, bolt.FileName), 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return 0, fmt.Errorf("open the store to count its commits: %w", err)
	}
	defer db.Close()
	tx, err := db.Begin(false)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	return float64(tx.ID()), nil
}

func runMany(ctx context.Context, e *runEnv, p manyParams) (map[string]float64, error) {
	total := p.sources * p.backlog
	emu, err := startEmulator(ctx, emulatorSpec{Sources: p.sources, Backlog: p.backlog, Seed: uint64(e.run), Sentinel: p.sentinel})
	if err != nil {
		return nil, err
	}
	defer emu.stop()
	metrics, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(e.dir, "data")
	sinkPath := filepath.Join(e.dir, "out", "events.ndjson")
	cfg := configSpec{
		dataDir: dataDir, metricsListen: metrics, logLevel: e.logLevel, apiURL: emu.addrs.PingOne,
		sinkPath: sinkPath, maxSize: "16GiB", // no rotation
		fileFormat: p.format, batchSize: p.batch,
	}
	var environ []string
	for i := 1; i <= p.sources; i++ {
		env := environment(i, "")
		cfg.sources = append(cfg.sources, sourceSpec{
			name: fmt.Sprintf("env-%03d", i), envID: env.ID, clientID: env.ClientID, secretVar: secretVar(i),
			lookback: "2h", pageSize: manyPageSize, rateLimit: manyRate, licence: fmt.Sprintf("licence-%03d", i),
		})
		environ = append(environ, secretVar(i)+"="+env.ClientSecret)
	}
	if p.sentinel {
		cfg.extraSinks = append(cfg.extraSinks, fmt.Sprintf("  - name: sentinel\n    sentinel: {endpoint: %q, authority_url: %q, dcr_immutable_id: %q, format: auditrelay, tenant_id: %q, client_id: %q, client_secret: \"${env:BENCH_AZURE_SECRET}\"}\n",
			emu.addrs.Sentinel, emu.addrs.Sentinel, sentinelDCR, sentinelTenant, sentinelClientID))
		environ = append(environ, "BENCH_AZURE_SECRET="+sentinelSecret)
	}
	emuCPU0, err := cpuSeconds(emu.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	selfCPU0, err := cpuSeconds(os.Getpid())
	if err != nil {
		return nil, err
	}

	tl := newTailer(sinkPath)
	defer tl.Close()
	c, err := startChild(ctx, e, cfg, environ)
	if err != nil {
		return nil, err
	}
	defer c.kill()

	perSource := map[string]int{}
	caughtUp := map[string]time.Time{}
	var idErr error
	var peaks memPeaks
	var storeMax, segMax int64
	var apiDone, sentinelDone time.Time
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := tl.poll(func(l []byte) {
			src, ok := lineSource(l)
			if !ok {
				if idErr == nil {
					idErr = fmt.Errorf("a line with no source: %.200s", l)
				}
				return
			}
			perSource[src]++
			if perSource[src] == p.backlog {
				caughtUp[src] = time.Now()
			}
		})
		if err != nil {
			return nil, err
		}
		if idErr != nil {
			return nil, idErr
		}
		if err := c.alive(); err != nil {
			return nil, err
		}
		if err := peaks.sample(c.pid()); err != nil {
			return nil, err
		}
		if fi, err := os.Stat(filepath.Join(dataDir, bolt.FileName)); err == nil {
			storeMax = max(storeMax, fi.Size())
		}
		segMax = max(segMax, dirSize(filepath.Join(dataDir, bolt.SegmentDir)))
		if apiDone.IsZero() {
			var st emulator.Stats
			if err := getJSON(ctx, emu.addrs.PingOne+"/emulator/stats", &st); err != nil {
				return nil, err
			}
			if st.Served >= int64(total) {
				apiDone = time.Now()
			}
		}
		if p.sentinel && sentinelDone.IsZero() {
			var st emulator.SentinelStats
			if err := getJSON(ctx, emu.addrs.Sentinel+"/emulator/stats", &st); err != nil {
				return nil, err
			}
			if st.Rows >= int64(total) {
				sentinelDone = time.Now()
			}
		}
		if n >= int64(total) && (!p.sentinel || !sentinelDone.IsZero()) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d lines in the file: %w", n, total, ctx.Err())
		case <-tick.C:
		}
	}
	end := time.Now()
	hwm, err := processMiB(c.pid(), "VmHWM")
	if err != nil {
		return nil, err
	}
	cpu, err := cpuSeconds(c.pid())
	if err != nil {
		return nil, err
	}
	emuCPU, err := cpuSeconds(emu.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	selfCPU, err := cpuSeconds(os.Getpid())
	if err != nil {
		return nil, err
	}
	batches, err := metricValue(ctx, metrics, "auditrelay_sink_batches_total", `sink="archive"`)
	if err != nil {
		return nil, err
	}
	var st emulator.Stats
	if err := getJSON(ctx, emu.addrs.PingOne+"/emulator/stats", &st); err != nil {
		return nil, err
	}
	var rows float64
	if p.sentinel {
		var sst emulator.SentinelStats
		if err := getJSON(ctx, emu.addrs.Sentinel+"/emulator/stats", &sst); err != nil {
			return nil, err
		}
		rows = float64(sst.Rows)
	}
	if err := c.stop(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	// Off the clock: every line's source and id, parsed in full.
	ids, err := manyIDs(sinkPath, perSource)
	if err != nil {
		return nil, err
	}
	commits := 0.0
	if e.store == nil {
		if commits, err = storeCommits(dataDir); err != nil {
			return nil, err
		}
	} else {
		e.note("store file size and commits are measured for the bolt store only")
	}
	var catch []float64
	for _, at := range caughtUp {
		catch = append(catch, at.Sub(c.started).Seconds())
	}
	if len(catch) != p.sources {
		return nil, fmt.Errorf("%d of %d sources caught up", len(catch), p.sources)
	}
	slices.Sort(catch)
	elapsed := end.Sub(c.started).Seconds()
	out := map[string]float64{
		"time_s":               elapsed,
		"events_per_s":         float64(total) / elapsed,
		"api_done_s":           apiDone.Sub(c.started).Seconds(),
		"catchup_min_s":        catch[0],
		"catchup_median_s":     median(catch),
		"catchup_max_s":        catch[len(catch)-1],
		"catchup_ratio":        catch[len(catch)-1] / catch[0],
		"cpu_s":                cpu,
		"cpu_s_per_100k":       cpu / float64(total) * 100_000,
		"cpu_us_per_event":     cpu / float64(total) * 1e6,
		"emulator_cpu_s":       emuCPU - emuCPU0,
		"harness_cpu_s":        selfCPU - selfCPU0,
		"cpu_per_emulator_cpu": cpu / max(emuCPU-emuCPU0, 1e-9),
		"peak_rss_mib":         hwm,
		"anon_peak_mib":        peaks.anonMiB,
		"file_peak_mib":        peaks.fileMiB,
		"store_mib":            float64(storeMax) / (1 << 20),
		"segments_mib":         float64(segMax) / (1 << 20),
		"store_commits":        commits,
		"file_batches":         batches,
		"fsyncs_per_s":         (2*commits + batches) / elapsed,
		"throttled":            float64(st.Throttled),
		"lines":                float64(tl.lines),
		"distinct_ids":         float64(len(ids)),
	}
	if apiDone.IsZero() {
		out["api_done_s"] = elapsed
	}
	if p.sentinel {
		out["sentinel_s"] = sentinelDone.Sub(c.started).Seconds()
		out["sentinel_rows"] = rows
	}
	return out, nil
}

// checkMany validates the -many-* flags.
func checkMany(p manyParams) error {
	if p.sources < 1 || p.backlog < 1 {
		return errors.New("-many-sources and -many-backlog must be at least 1")
	}
	return nil
}

// dirSize returns the bytes of the files in dir (0 when it cannot be
// read).
func dirSize(dir string) int64 {
	des, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, de := range des {
		if fi, err := de.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}
