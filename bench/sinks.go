package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditrelay/auditrelay/internal/emulator"
)

// The SIEM sinks the "sinks" scenario adds beside the file sink.
const (
	sinksHECToken = "5b1c0000-hec0-4000-8000-0000bench0001"
	sinksRatio    = 1.10 // the most the SIEM sinks may slow the backlog down
)

var sinksESKey = base64.StdEncoding.EncodeToString([]byte("bench:bench-es-key"))

// sinksScenario measures the 100,000-activity backlog delivered to the file
// sink alone, then, in the same run, to the file sink, Splunk HEC (indexer
// acknowledgment) and Elasticsearch at once, each SIEM served by its
// emulator in this process.
func sinksScenario() scenario {
	atMost := func(limit float64) func(float64) bool { return func(v float64) bool { return v <= limit } }
	equal := func(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
	return scenario{
		name: "sinks",
		description: fmt.Sprintf("the backlog scenario's %d activities to the file sink alone, then to file + splunk (ack) + elasticsearch, then to file + kafka (kfake, 3 brokers) + syslog (TCP, rfc5424), then to the file sink alone in format ocsf, side by side in each run",
			backlogEvents),
		timeout: 6 * time.Minute,
		figures: []figure{
			{key: "file_only_s", label: "file sink alone: time to deliver all", unit: "s"},
			{key: "all_sinks_s", label: "file + splunk + elasticsearch: time until all three hold all", unit: "s"},
			{key: "ratio", label: "ratio, all sinks / file alone", unit: "×", target: fmt.Sprintf("≤ %.2f", sinksRatio), met: atMost(sinksRatio)},
			{key: "splunk_s", label: "splunk: time to hold all", unit: "s"},
			{key: "elasticsearch_s", label: "elasticsearch: time to hold all", unit: "s"},
			{key: "peak_rss_mib", label: "peak RSS with splunk + elasticsearch (VmHWM)", unit: "MiB"},
			{key: "cpu_s", label: "child CPU time with splunk + elasticsearch", unit: "s"},
			{key: "ocsf_s", label: "file sink alone in format ocsf: time to deliver all", unit: "s"},
			{key: "ocsf_ratio", label: "ratio, ocsf file / raw file", unit: "×", target: fmt.Sprintf("≤ %.2f", sinksRatio), met: atMost(sinksRatio)},
			{key: "kafka_syslog_s", label: "file + kafka + syslog: time until all three hold all", unit: "s"},
			{key: "kafka_syslog_ratio", label: "ratio, file + kafka + syslog / file alone", unit: "×", target: fmt.Sprintf("≤ %.2f", sinksRatio), met: atMost(sinksRatio)},
			{key: "kafka_s", label: "kafka: time to hold all", unit: "s"},
			{key: "syslog_s", label: "syslog: time to hold all", unit: "s"},
			{key: "missing", label: "ids missing, any sink", unit: "", target: "= 0", met: equal(0)},
			{key: "duplicates", label: "duplicates, any sink", unit: "", target: "= 0", met: equal(0)},
		},
		run: runSinks,
	}
}

func runSinks(ctx context.Context, e *runEnv) (map[string]float64, error) {
	emu := emulator.NewPingOne(emulator.PingOneOptions{})
	api, err := serveEmulator(emu)
	if err != nil {
		return nil, err
	}
	defer api.Close()
	env := environment(1, "")
	emu.AddEnvironment(env)
	now := time.Now()
	emu.Backlog(emulator.NewGenerator(uint64(e.run)), env.ID, api.url, backlogEvents, now.Add(-time.Hour), now.Add(-5*time.Minute))
	debug.FreeOSMemory()
	want := map[string]bool{}
	for _, a := range emu.Activities(env.ID) {
		want[a.ID] = true
	}
	out := map[string]float64{}
	missing, dups := 0, 0

	// The file sink alone.
	alone, err := phaseDir(e, "file-only")
	if err != nil {
		return nil, err
	}
	t, _, _, err := deliverBacklog(ctx, alone, api.url, env, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("file sink alone: %w", err)
	}
	out["file_only_s"] = t
	m, d, err := fileLoss(filepath.Join(alone.dir, "out", "events.ndjson"), want)
	if err != nil {
		return nil, err
	}
	missing, dups = missing+m, dups+d

	// The same backlog to file + splunk + elasticsearch.
	hec := emulator.NewSplunk(emulator.SplunkOptions{AckDelay: 100 * time.Millisecond}, emulator.SplunkToken{Token: sinksHECToken, Ack: true})
	es := emulator.NewElasticsearch(emulator.ElasticsearchOptions{APIKeys: []string{sinksESKey}})
	hecSrv, err := serveEmulator(hec)
	if err != nil {
		return nil, err
	}
	defer hecSrv.Close()
	esSrv, err := serveEmulator(es)
	if err != nil {
		return nil, err
	}
	defer esSrv.Close()
	all, err := phaseDir(e, "all-sinks")
	if err != nil {
		return nil, err
	}
	extra := []string{
		fmt.Sprintf("  - name: splunk\n    splunk: {url: %q, token: \"${env:BENCH_HEC_TOKEN}\", batch_size: 1000}\n", hecSrv.url),
		fmt.Sprintf("  - name: elasticsearch\n    elasticsearch: {urls: [%q], api_key: \"${env:BENCH_ES_KEY}\", batch_size: 1000}\n", esSrv.url),
	}
	var hecAt, esAt time.Time
	watch := func() bool {
		if hecAt.IsZero() && hec.Stats().Indexed >= backlogEvents {
			hecAt = time.Now()
		}
		if esAt.IsZero() && es.Stats().Created >= backlogEvents {
			esAt = time.Now()
		}
		return !hecAt.IsZero() && !esAt.IsZero()
	}
	t, started, use, err := deliverBacklog(ctx, all, api.url, env, extra, watch,
		"BENCH_HEC_TOKEN="+sinksHECToken, "BENCH_ES_KEY="+sinksESKey)
	if err != nil {
		return nil, fmt.Errorf("file + splunk + elasticsearch: %w", err)
	}
	out["all_sinks_s"] = t
	out["ratio"] = t / out["file_only_s"]
	out["splunk_s"] = hecAt.Sub(started).Seconds()
	out["elasticsearch_s"] = esAt.Sub(started).Seconds()
	out["peak_rss_mib"], out["cpu_s"] = use.peakMiB, use.cpuS
	m, d, err = fileLoss(filepath.Join(all.dir, "out", "events.ndjson"), want)
	if err != nil {
		return nil, err
	}
	missing, dups = missing+m, dups+d
	m, d = countLoss(hec.IDs(), want)
	missing, dups = missing+m, dups+d
	esCounts := map[string]int{} // by _id, one per provider event
	for _, ids := range es.IDCounts() {
		for id, n := range ids {
			esCounts[id] += n
		}
	}
	_, d = countLoss(esCounts, nil)
	missing, dups = missing+max(len(want)-len(esCounts), 0), dups+d

	m, d, err = kafkaSyslogPhase(ctx, e, api.url, env, want, out)
	if err != nil {
		return nil, err
	}
	missing, dups = missing+m, dups+d

	// The file sink alone, writing OCSF: the lines carry metadata.uid.
	ocsf, err := phaseDir(e, "ocsf")
	if err != nil {
		return nil, err
	}
	t, _, _, err = deliverBacklogFormat(ctx, ocsf, api.url, env, "ocsf")
	if err != nil {
		return nil, fmt.Errorf("file sink in format ocsf: %w", err)
	}
	out["ocsf_s"], out["ocsf_ratio"] = t, t/out["file_only_s"]
	out["missing"], out["duplicates"] = float64(missing), float64(dups)
	return out, nil
}

// kafkaSyslogPhase delivers the backlog to file + kafka + syslog, fills
// in its figures and returns the ids missing and repeated in any of them.
func kafkaSyslogPhase(ctx context.Context, e *runEnv, apiURL string, env emulator.Environment, want map[string]bool, out map[string]float64) (missing, dups int, err error) {
	const topic = "identity-audit"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(6, topic))
	if err != nil {
		return 0, 0, fmt.Errorf("kfake: %w", err)
	}
	defer cluster.Close()
	var mu sync.Mutex
	kafkaIDs, syslogIDs := map[string]int{}, map[string]int{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return 0, 0, err
	}
	cctx, stop := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for cctx.Err() == nil {
			fs := cl.PollFetches(cctx)
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				for _, h := range r.Headers {
					if h.Key == "auditrelay-id" {
						kafkaIDs[string(h.Value)]++
					}
				}
			})
			mu.Unlock()
		}
	}()
	defer func() { stop(); <-consumed; cl.Close() }()
	rcv := emulator.NewSyslog(emulator.SyslogOptions{OnMessage: func(m emulator.SyslogMessage) {
		if id, ok := m.Param("auditrelay@32473", "id"); ok {
			mu.Lock()
			syslogIDs[id]++
			mu.Unlock()
		}
	}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	go rcv.Serve(ln)
	defer rcv.Close()

	ph, err := phaseDir(e, "kafka-syslog")
	if err != nil {
		return 0, 0, err
	}
	extra := []string{
		fmt.Sprintf("  - name: kafka\n    kafka: {brokers: [%q], topic: %s, tls: {enabled: false}}\n", cluster.ListenAddrs()[0], topic),
		fmt.Sprintf("  - name: syslog\n    syslog: {address: %q, transport: tcp, format: rfc5424}\n", ln.Addr().String()),
	}
	var kafkaAt, syslogAt time.Time
	watch := func() bool {
		mu.Lock()
		k, y := len(kafkaIDs), len(syslogIDs)
		mu.Unlock()
		if kafkaAt.IsZero() && k >= backlogEvents {
			kafkaAt = time.Now()
		}
		if syslogAt.IsZero() && y >= backlogEvents {
			syslogAt = time.Now()
		}
		return !kafkaAt.IsZero() && !syslogAt.IsZero()
	}
	t, started, _, err := deliverBacklog(ctx, ph, apiURL, env, extra, watch)
	if err != nil {
		return 0, 0, fmt.Errorf("file + kafka + syslog: %w", err)
	}
	out["kafka_syslog_s"] = t
	out["kafka_syslog_ratio"] = t / out["file_only_s"]
	out["kafka_s"] = kafkaAt.Sub(started).Seconds()
	out["syslog_s"] = syslogAt.Sub(started).Seconds()
	m, d, err := fileLoss(filepath.Join(ph.dir, "out", "events.ndjson"), want)
	if err != nil {
		return 0, 0, err
	}
	mu.Lock()
	defer mu.Unlock()
	m2, d2 := countLoss(kafkaIDs, want)
	m3, d3 := countLoss(syslogIDs, want)
	return m + m2 + m3, d + d2 + d3, nil
}

// phaseDir returns a copy of e working in a subdirectory of its own.
func phaseDir(e *runEnv, name string) (*runEnv, error) {
	p := *e
	p.dir = filepath.Join(e.dir, name)
	p.name = e.name + "-" + name
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, err
	}
	return &p, nil
}

// childUse is what a child used.
type childUse struct{ peakMiB, cpuS float64 }

// deliverBacklogFormat is deliverBacklog with the file sink alone, writing
// format.
func deliverBacklogFormat(ctx context.Context, e *runEnv, apiURL string, env emulator.Environment, format string) (float64, time.Time, childUse, error) {
	return deliverBacklogSpec(ctx, e, apiURL, env, nil, nil, format)
}

// deliverBacklog runs the child on the backlog source with the file sink
// and extra sinks until the file holds the backlog and done (if not nil)
// reports true, and returns the seconds that took from the child's start,
// and that start.
func deliverBacklog(ctx context.Context, e *runEnv, apiURL string, env emulator.Environment, extra []string, done func() bool, childEnv ...string) (float64, time.Time, childUse, error) {
	return deliverBacklogSpec(ctx, e, apiURL, env, extra, done, "", childEnv...)
}

func deliverBacklogSpec(ctx context.Context, e *runEnv, apiURL string, env emulator.Environment, extra []string, done func() bool, format string, childEnv ...string) (float64, time.Time, childUse, error) {
	var use childUse
	metrics, err := freeLoopbackAddr()
	if err != nil {
		return 0, time.Time{}, use, err
	}
	sinkPath := filepath.Join(e.dir, "out", "events.ndjson")
	cfg := configSpec{
		dataDir: filepath.Join(e.dir, "data"), metricsListen: metrics, logLevel: e.logLevel, apiURL: apiURL,
		sources: []sourceSpec{{
			name: "backlog", envID: env.ID, clientID: env.ClientID, secretVar: secretVar(1),
			lookback: "2h", pageSize: backlogPageSize, rateLimit: backlogRate,
		}},
		sinkPath: sinkPath, batchSize: 1000, maxSize: "4GiB", extraSinks: extra, fileFormat: format,
	}
	tl := newTailer(sinkPath)
	defer tl.Close()
	c, err := startChild(ctx, e, cfg, append([]string{secretVar(1) + "=" + env.ClientSecret}, childEnv...))
	if err != nil {
		return 0, time.Time{}, use, err
	}
	defer c.kill()
	end, _, err := waitLines(ctx, c, tl, backlogEvents, 50*time.Millisecond, nil)
	if err != nil {
		return 0, time.Time{}, use, fmt.Errorf("wait for the backlog in the file: %w", err)
	}
	if done != nil {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for !done() {
			if err := c.alive(); err != nil {
				return 0, time.Time{}, use, err
			}
			select {
			case <-ctx.Done():
				return 0, time.Time{}, use, fmt.Errorf("wait for the other sinks: %w", ctx.Err())
			case <-tick.C:
			}
		}
		end = time.Now()
	}
	if use.peakMiB, err = processMiB(c.pid(), "VmHWM"); err != nil {
		return 0, time.Time{}, use, err
	}
	if use.cpuS, err = cpuSeconds(c.pid()); err != nil {
		return 0, time.Time{}, use, err
	}
	if err := c.stop(ctx, 15*time.Second); err != nil {
		return 0, time.Time{}, use, err
	}
	return end.Sub(c.started).Seconds(), c.started, use, nil
}

// fileLoss counts the wanted ids missing from a file sink's file, and its
// duplicate lines.
func fileLoss(path string, want map[string]bool) (missing, dups int, err error) {
	_, ids, err := fileIDs(path)
	if err != nil {
		return 0, 0, err
	}
	missing, dups = countLoss(ids, want)
	return missing, dups, nil
}

// countLoss counts the ids of want absent from got, and the repeats in got.
func countLoss(got map[string]int, want map[string]bool) (missing, dups int) {
	for id := range want {
		if got[id] == 0 {
			missing++
		}
	}
	for _, n := range got {
		dups += max(n-1, 0)
	}
	return missing, dups
}
