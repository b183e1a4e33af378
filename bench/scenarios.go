package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
)

// scenario is one measured situation.
type scenario struct {
	name, description string
	// timeout bounds one run, setup included.
	timeout time.Duration
	figures []figure
	run     func(ctx context.Context, e *runEnv) (map[string]float64, error)
}

// The parameters of the scenarios, as the targets are stated.
const (
	backlogEvents   = 100_000
	backlogPageSize = 1000
	backlogRate     = 10 // requests/s, the emulator's default and the config's rate_limit
	backlogRSSMiB   = 64

	idleSources   = 100
	idleEventsPer = 10
	idleWait      = 30 * time.Second
	idleWindow    = 20 * time.Second
	idleCycle     = 30 * time.Second // poll_interval: one round of 100 empty polls
	idleRSSMiB    = 100
	idleCPUPct    = 1.0 // "≈ 0": at most 1 % of one core

	latencyRate     = 50 // activities/s
	latencyDuration = 60 * time.Second
	latencySettle   = 5 * time.Second
	latencyPoll     = time.Second
	latencyGrace    = 20 * time.Second // to let the last activities through
	latencyTail     = 10 * time.Millisecond
)

// The targets derived from the parameters.
const (
	// backlogPages is ceil(events / page size), the fewest requests.
	backlogPages = (backlogEvents + backlogPageSize - 1) / backlogPageSize
	// backlogMinTime is the seconds the rate limit alone needs for
	// backlogPages requests.
	backlogMinTime = float64(backlogPages) / backlogRate
	// backlogTimeFactor is the most the backlog may take over that.
	backlogTimeFactor = 1.10
	// backlogTime is 10 % over that.
	backlogTime = backlogTimeFactor * backlogMinTime
	// backlogRequests is 5 % over the page count.
	backlogRequests = 1.05 * backlogPages
	// latencyBound is settle_delay + poll_interval + 1 s.
	latencyBound = latencySettle + latencyPoll + time.Second
)

// scenarios returns every scenario, in the order "all" runs them; many is
// shaped by its flags.
func scenarios(many manyParams) []scenario {
	atMost := func(limit float64) func(float64) bool { return func(v float64) bool { return v <= limit } }
	equal := func(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
	return []scenario{
		{
			name: "backlog",
			description: fmt.Sprintf("%d activities over [now-1h, now-5m) in one environment; emulator and rate_limit %d requests/s, page_size %d, lookback 2h, settle_delay 2m (default)",
				backlogEvents, backlogRate, backlogPageSize),
			timeout: 4 * time.Minute,
			figures: []figure{
				{key: "time_s", label: "time to deliver all", unit: "s", target: fmt.Sprintf("≤ %.0f", backlogTime), met: atMost(backlogTime)},
				{key: "time_ratio", label: "time ÷ the rate limit's minimum", unit: "×", target: fmt.Sprintf("≤ %.2f", backlogTimeFactor), met: atMost(backlogTimeFactor)},
				{key: "events_per_s", label: "throughput", unit: "events/s"},
				{key: "requests", label: "activities requests", unit: "", target: fmt.Sprintf("≤ %.0f", backlogRequests), met: atMost(backlogRequests)},
				{key: "throttled", label: "429s received", unit: "", target: "= 0", met: equal(0)},
				{key: "token_requests", label: "token requests", unit: ""},
				{key: "peak_rss_mib", label: "peak RSS (VmHWM)", unit: "MiB", target: fmt.Sprintf("≤ %d", backlogRSSMiB), met: atMost(backlogRSSMiB)},
				{key: "rss_mib", label: "RSS at the end (VmRSS)", unit: "MiB"},
				{key: "anon_peak_mib", label: "anonymous RSS, max sampled", unit: "MiB"},
				{key: "file_peak_mib", label: "file-backed RSS (binary text + store mmap), max sampled", unit: "MiB"},
				{key: "cpu_s", label: "child CPU time", unit: "s"},
				{key: "lines", label: "lines in the file", unit: "", target: fmt.Sprintf("= %d", backlogEvents), met: equal(backlogEvents)},
				{key: "distinct_ids", label: "distinct ids in the file", unit: "", target: fmt.Sprintf("= %d", backlogEvents), met: equal(backlogEvents)},
				{key: "missing", label: "emulator ids missing", unit: "", target: "= 0", met: equal(0)},
			},
			run: runBacklog,
		},
		{
			name: "idle",
			description: fmt.Sprintf("%d environments on one licence, %d activities each; poll_interval 30s, rate_limit 10 shared; measured over %v after the first polls",
				idleSources, idleEventsPer, idleWindow),
			timeout: 3 * time.Minute,
			figures: []figure{
				{key: "first_polls_s", label: "time until all events delivered", unit: "s"},
				{key: "rss_mib", label: "RSS (VmRSS) at the end", unit: "MiB", target: fmt.Sprintf("≤ %d", idleRSSMiB), met: atMost(idleRSSMiB)},
				{key: "rss_max_mib", label: "RSS max sampled in the window", unit: "MiB"},
				{key: "peak_rss_mib", label: "peak RSS since start (VmHWM)", unit: "MiB"},
				{key: "cpu_s", label: "CPU time in the window", unit: "s"},
				{key: "cpu_pct", label: "CPU, % of one core", unit: "%", target: fmt.Sprintf("≈ 0 (≤ %.0f)", idleCPUPct), met: atMost(idleCPUPct)},
				{key: "window_requests", label: "activities requests in the window", unit: ""},
				{key: "cycle_cpu_pct", label: "CPU over the next 30 s (one poll round), % of one core", unit: "%"},
				{key: "cycle_requests", label: "activities requests in those 30 s", unit: ""},
				{key: "cycle_rss_mib", label: "RSS (VmRSS) after those 30 s", unit: "MiB"},
				{key: "throttled", label: "429s received", unit: "", target: "= 0", met: equal(0)},
			},
			run: runIdle,
		},
		{
			name: "latency",
			description: fmt.Sprintf("live activities at %d/s (visible at once) for %v; settle_delay %v, poll_interval %v, overlap 2s",
				latencyRate, latencyDuration, latencySettle, latencyPoll),
			timeout: 3 * time.Minute,
			figures: []figure{
				{key: "events", label: "events measured", unit: ""},
				{key: "lat_min_s", label: "latency min", unit: "s"},
				{key: "lat_median_s", label: "latency median", unit: "s"},
				{key: "lat_p99_s", label: "latency p99", unit: "s", target: fmt.Sprintf("≤ %.0f", latencyBound.Seconds()), met: atMost(latencyBound.Seconds())},
				{key: "lat_max_s", label: "latency max", unit: "s", target: fmt.Sprintf("≤ %.0f", latencyBound.Seconds()), met: atMost(latencyBound.Seconds())},
				{key: "missing", label: "events not delivered", unit: "", target: "= 0", met: equal(0)},
				{key: "duplicates", label: "duplicate lines", unit: "", target: "= 0", met: equal(0)},
			},
			run: runLatency,
		},
		sinksScenario(),
		manyScenario(many),
	}
}

// envID returns the id of the i-th emulated environment.
func envID(i int) string { return fmt.Sprintf("0b6e7c1a-0000-4000-8000-%012d", i) }

// environment returns the i-th emulated environment, on licence (empty: its
// own).
func environment(i int, licence string) emulator.Environment {
	return emulator.Environment{
		ID: envID(i), Licence: licence,
		ClientID:     fmt.Sprintf("bench-client-%d", i),
		ClientSecret: fmt.Sprintf("bench-secret-%d-c29tZSBzZWNyZXQ", i),
		AuthMethod:   emulator.AuthMethodBasic,
	}
}

// secretVar is the environment variable holding the secret of the i-th
// source.
func secretVar(i int) string { return fmt.Sprintf("BENCH_SECRET_%d", i) }

// waitLines polls the tailer every interval until it has counted want
// lines, and returns when that was seen. It calls each (when not nil) after
// every poll that falls short. It fails when ctx ends or the child exits
// first.
func waitLines(ctx context.Context, c *child, tl *tailer, want int64, interval time.Duration, each func() error) (time.Time, int64, error) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		n, err := tl.poll(nil)
		if err != nil {
			return time.Time{}, n, err
		}
		if n >= want {
			return time.Now(), n, nil
		}
		if err := c.alive(); err != nil {
			return time.Time{}, n, err
		}
		if each != nil {
			if err := each(); err != nil {
				return time.Time{}, n, err
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, n, fmt.Errorf("%d of %d lines in the file: %w", n, want, ctx.Err())
		case <-tick.C:
		}
	}
}

// runBacklog measures how fast a 100,000-activity backlog is delivered.
func runBacklog(ctx context.Context, e *runEnv) (map[string]float64, error) {
	emu := emulator.NewPingOne(emulator.PingOneOptions{}) // 10 requests/s per licence
	api, err := serveEmulator(emu)
	if err != nil {
		return nil, err
	}
	defer api.Close()
	env := environment(1, "")
	emu.AddEnvironment(env)
	now := time.Now()
	emu.Backlog(emulator.NewGenerator(uint64(e.run)), env.ID, api.url, backlogEvents, now.Add(-time.Hour), now.Add(-5*time.Minute))
	debug.FreeOSMemory() // keep the generator's garbage out of the measurement

	metrics, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	sinkPath := filepath.Join(e.dir, "out", "events.ndjson")
	cfg := configSpec{
		dataDir: filepath.Join(e.dir, "data"), metricsListen: metrics, logLevel: e.logLevel, apiURL: api.url,
		sources: []sourceSpec{{
			name: "backlog", envID: env.ID, clientID: env.ClientID, secretVar: secretVar(1),
			lookback: "2h", pageSize: backlogPageSize, rateLimit: backlogRate,
		}},
		sinkPath: sinkPath, batchSize: 1000,
		maxSize: "4GiB", // no rotation: the backlog is about 150 MB of NDJSON
	}
	tl := newTailer(sinkPath)
	defer tl.Close()
	c, err := startChild(ctx, e, cfg, []string{secretVar(1) + "=" + env.ClientSecret})
	if err != nil {
		return nil, err
	}
	defer c.kill()

	var peaks memPeaks
	doneAt, _, err := waitLines(ctx, c, tl, backlogEvents, 50*time.Millisecond, func() error { return peaks.sample(c.pid()) })
	if err != nil {
		return nil, fmt.Errorf("wait for the backlog in the file: %w", err)
	}
	elapsed := doneAt.Sub(c.started).Seconds()
	st := emu.Stats()
	hwm, err := processMiB(c.pid(), "VmHWM")
	if err != nil {
		return nil, fmt.Errorf("peak RSS: %w", err)
	}
	rss, err := processMiB(c.pid(), "VmRSS")
	if err != nil {
		return nil, fmt.Errorf("RSS: %w", err)
	}
	if err := peaks.sample(c.pid()); err != nil {
		return nil, err
	}
	cpu, err := cpuSeconds(c.pid())
	if err != nil {
		return nil, fmt.Errorf("CPU time: %w", err)
	}
	if err := c.stop(ctx, 15*time.Second); err != nil {
		return nil, err
	}

	lines, ids, err := fileIDs(sinkPath)
	if err != nil {
		return nil, err
	}
	missing := 0
	for _, a := range emu.Activities(env.ID) {
		if ids[a.ID] == 0 {
			missing++
		}
	}
	return map[string]float64{
		"time_s":         elapsed,
		"time_ratio":     elapsed / backlogMinTime,
		"events_per_s":   backlogEvents / elapsed,
		"requests":       float64(st.ActivityRequests),
		"throttled":      float64(st.Throttled),
		"token_requests": float64(st.TokenRequests),
		"peak_rss_mib":   hwm,
		"rss_mib":        rss,
		"anon_peak_mib":  peaks.anonMiB,
		"file_peak_mib":  peaks.fileMiB,
		"cpu_s":          cpu,
		"lines":          float64(lines),
		"distinct_ids":   float64(len(ids)),
		"missing":        float64(missing),
	}, nil
}

// runIdle measures what 100 idle sources cost once their first polls are
// done.
func runIdle(ctx context.Context, e *runEnv) (map[string]float64, error) {
	emu := emulator.NewPingOne(emulator.PingOneOptions{})
	api, err := serveEmulator(emu)
	if err != nil {
		return nil, err
	}
	defer api.Close()
	metrics, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	sinkPath := filepath.Join(e.dir, "out", "events.ndjson")
	cfg := configSpec{
		dataDir: filepath.Join(e.dir, "data"), metricsListen: metrics, logLevel: e.logLevel, apiURL: api.url,
		sinkPath: sinkPath,
	}
	var environ []string
	gen := emulator.NewGenerator(uint64(e.run))
	now := time.Now()
	for i := 1; i <= idleSources; i++ {
		env := environment(i, "bench")
		emu.AddEnvironment(env)
		emu.Backlog(gen, env.ID, api.url, idleEventsPer, now.Add(-time.Hour), now.Add(-5*time.Minute))
		cfg.sources = append(cfg.sources, sourceSpec{
			name: fmt.Sprintf("env-%03d", i), envID: env.ID, clientID: env.ClientID, secretVar: secretVar(i),
			pollInterval: "30s", lookback: "2h", rateLimit: 10, licence: "bench",
		})
		environ = append(environ, secretVar(i)+"="+env.ClientSecret)
	}
	const total = idleSources * idleEventsPer
	tl := newTailer(sinkPath)
	defer tl.Close()
	c, err := startChild(ctx, e, cfg, environ)
	if err != nil {
		return nil, err
	}
	defer c.kill()

	wctx, cancel := context.WithDeadline(ctx, c.started.Add(idleWait))
	doneAt, n, err := waitLines(wctx, c, tl, total, 50*time.Millisecond, nil)
	cancel()
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		doneAt = time.Now()
		e.note("only %d of %d events delivered %v after start; measuring anyway", n, total, idleWait)
	default:
		return nil, fmt.Errorf("wait for the first polls: %w", err)
	}
	first := doneAt.Sub(c.started).Seconds()

	// The window the target is about: the first polls are done and no
	// event arrives.
	w, err := measureWindow(ctx, c, emu, idleWindow)
	if err != nil {
		return nil, fmt.Errorf("idle window: %w", err)
	}
	hwm, err := processMiB(c.pid(), "VmHWM")
	if err != nil {
		return nil, fmt.Errorf("peak RSS: %w", err)
	}
	// The next poll_interval: each source polls its (empty) window once.
	cycle, err := measureWindow(ctx, c, emu, idleCycle)
	if err != nil {
		return nil, fmt.Errorf("poll round: %w", err)
	}
	if err := c.stop(ctx, 15*time.Second); err != nil {
		return nil, err
	}
	if n, err := tl.poll(nil); err == nil && n != total {
		e.note("%d lines in the file at the end, want %d", n, total)
	}
	return map[string]float64{
		"first_polls_s":   first,
		"rss_mib":         w.rssEnd,
		"rss_max_mib":     w.rssMax,
		"peak_rss_mib":    hwm,
		"cpu_s":           w.cpu,
		"cpu_pct":         w.cpu / w.seconds * 100,
		"window_requests": float64(w.requests),
		"cycle_cpu_pct":   cycle.cpu / cycle.seconds * 100,
		"cycle_requests":  float64(cycle.requests),
		"cycle_rss_mib":   cycle.rssEnd,
		"throttled":       float64(emu.Stats().Throttled),
	}, nil
}

// window is what a process did over a span of time.
type window struct {
	seconds        float64 // the span's length as measured
	cpu            float64 // CPU seconds used, user plus system
	rssEnd, rssMax float64 // VmRSS at the end and the largest sampled each second, MiB
	requests       int64   // activities requests the emulator received
}

// measureWindow measures the child's CPU, RSS and requests over d.
func measureWindow(ctx context.Context, c *child, emu *emulator.PingOne, d time.Duration) (window, error) {
	var w window
	cpu0, err := cpuSeconds(c.pid())
	if err != nil {
		return w, fmt.Errorf("CPU time: %w", err)
	}
	req0 := emu.Stats().ActivityRequests
	start := time.Now()
	for time.Since(start) < d {
		if err := sleepCtx(ctx, min(time.Second, d-time.Since(start))); err != nil {
			return w, err
		}
		if err := c.alive(); err != nil {
			return w, err
		}
		rss, err := processMiB(c.pid(), "VmRSS")
		if err != nil {
			return w, fmt.Errorf("RSS: %w", err)
		}
		w.rssMax, w.rssEnd = max(w.rssMax, rss), rss
	}
	cpu1, err := cpuSeconds(c.pid())
	if err != nil {
		return w, fmt.Errorf("CPU time: %w", err)
	}
	w.seconds = time.Since(start).Seconds()
	w.cpu = cpu1 - cpu0
	w.requests = emu.Stats().ActivityRequests - req0
	return w, nil
}

// runLatency measures the time from an activity becoming visible to its
// line in the file.
func runLatency(ctx context.Context, e *runEnv) (map[string]float64, error) {
	emu := emulator.NewPingOne(emulator.PingOneOptions{})
	api, err := serveEmulator(emu)
	if err != nil {
		return nil, err
	}
	defer api.Close()
	env := environment(1, "")
	emu.AddEnvironment(env)
	metrics, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	sinkPath := filepath.Join(e.dir, "out", "events.ndjson")
	cfg := configSpec{
		dataDir: filepath.Join(e.dir, "data"), metricsListen: metrics, logLevel: e.logLevel, apiURL: api.url,
		sources: []sourceSpec{{
			name: "live", envID: env.ID, clientID: env.ClientID, secretVar: secretVar(1),
			pollInterval: latencyPoll.String(), settleDelay: latencySettle.String(), overlap: "2s",
			lookback: "1m", pageSize: 1000, rateLimit: 10,
		}},
		sinkPath: sinkPath,
	}
	tl := newTailer(sinkPath)
	defer tl.Close()
	c, err := startChild(ctx, e, cfg, []string{secretVar(1) + "=" + env.ClientSecret})
	if err != nil {
		return nil, err
	}
	defer c.kill()
	if err := waitReady(ctx, c, metrics); err != nil {
		return nil, err
	}
	for emu.Stats().ActivityRequests == 0 { // the token is fetched and the first (empty) window read
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return nil, fmt.Errorf("wait for the first poll: %w", err)
		}
		if err := c.alive(); err != nil {
			return nil, err
		}
	}

	gctx, stopGen := context.WithTimeout(ctx, latencyDuration)
	genDone := make(chan struct{})
	go func() {
		defer close(genDone)
		emu.Run(gctx, emulator.NewGenerator(uint64(e.run)), env.ID, api.url, latencyRate, 0)
	}()
	defer func() { stopGen(); <-genDone }()

	// Each id and when its line was first seen; the time is taken after the
	// read that found it, so a latency is never under-reported.
	seen := map[string]time.Time{}
	var order []string // ids in file order
	dups := 0
	var lineErr error
	var batch []string
	read := func() error {
		batch = batch[:0]
		if _, err := tl.poll(func(l []byte) {
			id, err := lineID(l)
			if err != nil && lineErr == nil {
				lineErr = err
			}
			batch = append(batch, id)
		}); err != nil {
			return err
		}
		at := time.Now()
		for _, id := range batch {
			if _, dup := seen[id]; dup {
				dups++
				continue
			}
			seen[id] = at
			order = append(order, id)
		}
		return lineErr
	}
	tick := time.NewTicker(latencyTail)
	defer tick.Stop()
	var deadline time.Time
	var want map[string]time.Time // VisibleAt by id, once generation has stopped
	for {
		if err := read(); err != nil {
			return nil, err
		}
		if err := c.alive(); err != nil {
			return nil, err
		}
		if want == nil {
			select {
			case <-genDone:
				if ctx.Err() != nil {
					return nil, fmt.Errorf("live traffic: %w", ctx.Err())
				}
				deadline = time.Now().Add(latencyGrace)
				want = map[string]time.Time{}
				for _, a := range emu.Activities(env.ID) {
					want[a.ID] = a.VisibleAt
				}
			default:
			}
		}
		if want != nil && (len(seen) >= len(want) || time.Now().After(deadline)) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("tail the file: %w", ctx.Err())
		case <-tick.C:
		}
	}
	if err := c.stop(ctx, 15*time.Second); err != nil {
		return nil, err
	}

	lat := make([]float64, 0, len(order))
	for _, id := range order {
		vis, ok := want[id]
		if !ok {
			return nil, fmt.Errorf("the file holds id %s, which the emulator never generated", id)
		}
		lat = append(lat, seen[id].Sub(vis).Seconds())
	}
	if len(lat) == 0 {
		return nil, errors.New("no event reached the file")
	}
	slices.Sort(lat)
	return map[string]float64{
		"events":       float64(len(lat)),
		"lat_min_s":    lat[0],
		"lat_median_s": median(lat),
		"lat_p99_s":    percentile(lat, 99),
		"lat_max_s":    lat[len(lat)-1],
		"missing":      float64(len(want) - len(seen)),
		"duplicates":   float64(dups),
	}, nil
}
