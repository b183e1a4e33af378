package e2e

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/secret/secrettest"
	"github.com/auditrelay/auditrelay/internal/sink/sentinel"
)

const (
	azTenant = "72f988bf-0000-4000-8000-0000000000e2"
	azClient = "3d1e0b5c-0000-4000-8000-0000000000e2"
	azSecret = "e2e-azure-s3cr3t-value"
	azDCR    = "dcr-000000000000000000000000000000e2"
)

// azure is an emulated Microsoft Sentinel with both formats' streams.
type azure struct {
	emu *emulator.Sentinel
	srv *httptest.Server
}

func newAzure(t *testing.T) *azure {
	emu := emulator.NewSentinel(emulator.SentinelOptions{Seed: 11})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	emu.AddApp(emulator.SentinelApp{TenantID: azTenant, ClientID: azClient, ClientSecret: azSecret})
	for _, f := range []string{sentinel.FormatPingOneV2, sentinel.FormatAuditRelay} {
		var cols []emulator.SentinelColumn
		for _, c := range sentinel.StreamColumns(f) {
			cols = append(cols, emulator.SentinelColumn{Name: c.Name, Type: c.Type})
		}
		emu.AddStream(azDCR, stream(f), cols)
	}
	emu.Grant(azDCR, azClient)
	return &azure{emu: emu, srv: srv}
}

func stream(format string) string {
	if format == sentinel.FormatAuditRelay {
		return sentinel.DefaultStreamAuditRelay
	}
	return sentinel.DefaultStreamPingOneV2
}

// sinkYAML is a sentinel sink taking every source.
func (a *azure) sinkYAML(format string, batch int) string {
	return fmt.Sprintf(`  - name: sentinel
    sentinel:
      endpoint: %s
      authority_url: %s
      dcr_immutable_id: %s
      stream: %s
      format: %s
      tenant_id: %s
      client_id: %s
      client_secret: "${env:AZ_SECRET}"
      batch_size: %d
`, a.srv.URL, a.srv.URL, azDCR, stream(format), format, azTenant, azClient, batch)
}

// ids counts the ingested rows by event id.
func (a *azure) ids(format string) map[string]int {
	col := "id"
	if format == sentinel.FormatAuditRelay {
		col = "Id"
	}
	m := map[string]int{}
	for _, r := range a.emu.Rows(azDCR, stream(format)) {
		m[r.String(col)]++
	}
	return m
}

// keys counts the ingested rows of the auditrelay format by event key
// (see eventKey), whatever their provider.
func (a *azure) keys() map[string]int {
	m := map[string]int{}
	for _, r := range a.emu.Rows(azDCR, stream(sentinel.FormatAuditRelay)) {
		m[eventKey(r.String("Provider"), r.String("EnvironmentId"), r.String("Id"))]++
	}
	return m
}

// wantIDs is every activity id the PingOne emulator holds.
func (w *world) wantIDs() map[string]bool {
	all := map[string]bool{}
	for _, e := range w.envs {
		for _, a := range w.emu.Activities(e.ID) {
			all[a.ID] = true
		}
	}
	return all
}

func (a *azure) waitAll(format string, want map[string]bool, timeout time.Duration) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if covers(a.ids(format), want) {
			return
		}
	}
}

// lossAndDuplicates counts wanted ids missing from got, and extra copies.
func lossAndDuplicates(t *testing.T, want map[string]bool, got map[string]int) (missing, dups int) {
	t.Helper()
	for id := range want {
		if got[id] == 0 {
			missing++
		}
	}
	for id, n := range got {
		if !want[id] {
			t.Errorf("Sentinel holds %s, which the API never served", id)
		}
		if n > 1 {
			dups += n - 1
		}
	}
	return missing, dups
}

// TestSentinelKillNineLoop: PingOne to Sentinel (the connector's stream)
// through the real binary, killed with SIGKILL at random moments while
// Sentinel throttles and fails some calls. Nothing is lost, and each kill
// re-sends at most the one batch in flight.
func TestSentinelKillNineLoop(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	w := newWorld(t, 2)
	az := newAzure(t)
	now := time.Now()
	w.emu.Backlog(w.gen, w.envs[0].ID, w.srv.URL, 5000, now.Add(-time.Hour), now.Add(-10*time.Second))
	w.emu.Backlog(w.gen, w.envs[1].ID, w.srv.URL, 2000, now.Add(-30*time.Minute), now.Add(-10*time.Second))
	w.emu.SetFaults(emulator.Faults{ServerError: 0.03, Throttle: 0.02})
	az.emu.SetFaults(emulator.SentinelFaults{Throttle: 0.1, ServerError: 0.1, RetryAfter: time.Second})
	live, stopLive := context.WithCancel(context.Background())
	var gens sync.WaitGroup
	for i, e := range w.envs {
		g := emulator.NewGenerator(uint64(200 + i))
		gens.Go(func() { w.emu.Run(live, g, e.ID, w.srv.URL, 100, 1500*time.Millisecond) })
	}
	const batch = 250
	cfg := w.config(t, dir, az.sinkYAML(sentinel.FormatPingOneV2, batch))
	environ := append(w.environ(), "AZ_SECRET="+azSecret)
	logPath := filepath.Join(dir, "auditrelay.log")
	kills := 8
	if *soak {
		kills = 40
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range kills {
		p := start(t, bin, cfg, environ, logPath)
		time.Sleep(time.Duration(400+rng.IntN(2200)) * time.Millisecond)
		p.kill(t)
	}
	stopLive()
	gens.Wait()
	w.emu.SetFaults(emulator.Faults{})
	az.emu.SetFaults(emulator.SentinelFaults{})
	p := start(t, bin, cfg, environ, logPath)
	want := w.wantIDs()
	az.waitAll(sentinel.FormatPingOneV2, want, 90*time.Second)
	p.stop(t)
	missing, dups := lossAndDuplicates(t, want, az.ids(sentinel.FormatPingOneV2))
	if missing > 0 {
		t.Errorf("%d of %d events missing from Sentinel", missing, len(want))
	}
	if dups > kills*batch {
		t.Errorf("%d duplicates after %d kills: more than one batch (%d) per kill", dups, kills, batch)
	}
	st := az.emu.Stats()
	t.Logf("%d events, %d kills, %d duplicates; Sentinel: %d calls, %d accepted, %d faults, %d token requests",
		len(want), kills, dups, st.Calls, st.Accepted, st.Faults, st.TokenRequests)
	if st.Faults == 0 {
		t.Error("no Sentinel fault was injected")
	}
	if st.TooLarge != 0 || st.Truncated != 0 {
		t.Errorf("the service refused %d calls as too large and truncated %d values", st.TooLarge, st.Truncated)
	}
	assertNoSecrets(t, logPath, w)
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrettest.Forms(azClient, azSecret) {
		if strings.Contains(string(b), s) {
			t.Errorf("the Azure client secret appears in the log as %q", s)
		}
	}
}

// TestSentinelStorms: long 429 and 503 storms, then a full outage, with
// no restart: every event reaches Sentinel exactly once.
func TestSentinelStorms(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	w := newWorld(t, 1)
	az := newAzure(t)
	now := time.Now()
	w.emu.Backlog(w.gen, w.envs[0].ID, w.srv.URL, 4000, now.Add(-time.Hour), now.Add(-10*time.Second))
	az.emu.SetFaults(emulator.SentinelFaults{Throttle: 0.4, ServerError: 0.3, RetryAfter: time.Second})
	cfg := w.config(t, dir, az.sinkYAML(sentinel.FormatAuditRelay, 200))
	environ := append(w.environ(), "AZ_SECRET="+azSecret)
	logPath := filepath.Join(dir, "auditrelay.log")
	p := start(t, bin, cfg, environ, logPath)
	defer p.kill(t)
	time.Sleep(3 * time.Second)
	az.emu.SetFaults(emulator.SentinelFaults{})
	az.emu.SetDown(503)
	time.Sleep(3 * time.Second)
	az.emu.SetDown(0)
	want := w.wantIDs()
	az.waitAll(sentinel.FormatAuditRelay, want, 90*time.Second)
	p.stop(t)
	missing, dups := lossAndDuplicates(t, want, az.ids(sentinel.FormatAuditRelay))
	if missing > 0 || dups > 0 {
		t.Errorf("%d of %d events missing, %d duplicates", missing, len(want), dups)
	}
	st := az.emu.Stats()
	t.Logf("%d events; Sentinel: %d calls, %d accepted, %d faults", len(want), st.Calls, st.Accepted, st.Faults)
	if st.Faults < 5 {
		t.Errorf("only %d faults injected", st.Faults)
	}
}

var sentinelBench = flag.Bool("sentinel-bench", false, "measure the 100,000-event backlog with and without a Sentinel sink (about 2 minutes)")

// TestSentinelBacklogOverhead measures the time until a 100,000-activity
// PingOne backlog (1000 per page, 10 requests/s) is delivered, with a file
// sink only and with a Sentinel sink beside it; run with -sentinel-bench.
// The emulators run in this process and share the machine's cores with
// the binary.
func TestSentinelBacklogOverhead(t *testing.T) {
	if !*sentinelBench {
		t.Skip("run with -sentinel-bench")
	}
	bin := binary(t)
	const events = 100_000
	times, cpus := map[string][]float64{}, map[string][]float64{}
	for run := range 2 {
		for _, variant := range []string{"file", "file+pingone_v2", "file+auditrelay"} {
			dir := t.TempDir()
			w := newWorld(t, 1)
			az := newAzure(t)
			now := time.Now()
			w.emu.Backlog(emulator.NewGenerator(uint64(run+1)), w.envs[0].ID, w.srv.URL, events, now.Add(-time.Hour), now.Add(-5*time.Minute))
			addr := freePort(t)
			e := w.envs[0]
			cfg := fmt.Sprintf(`data_dir: %s
metrics_listen: %s
sources:
  - name: backlog
    pingone: {environment_id: %q, client_id: %q, client_secret: "${env:SECRET_1}", token_auth_method: %s,
              api_url: %s, auth_url: %s, lookback: 2h, page_size: 1000, rate_limit: 10, licence: lic}
sinks:
  - name: file
    file: {path: %s, batch_size: 1000, max_size: 4GiB}
`, filepath.Join(dir, "data"), addr, e.ID, e.ClientID, e.AuthMethod, w.srv.URL, w.srv.URL, filepath.Join(dir, "out.ndjson"))
			sinks := []string{"file"}
			if format, ok := strings.CutPrefix(variant, "file+"); ok {
				cfg += az.sinkYAML(format, 1000)
				sinks = append(sinks, "sentinel")
			}
			path := filepath.Join(dir, "c.yaml")
			os.WriteFile(path, []byte(cfg), 0o600)
			p := start(t, bin, path, append(w.environ(), "AZ_SECRET="+azSecret), filepath.Join(dir, "log"))
			started := time.Now()
			deadline := started.Add(90 * time.Second)
			for {
				done := true
				for _, s := range sinks {
					v, _ := metric(addr, `auditrelay_sink_events_total{sink="`+s+`"}`)
					done = done && v >= events
				}
				if done {
					break
				}
				if time.Now().After(deadline) {
					p.kill(t)
					t.Fatalf("%s: backlog not delivered in 90 s", variant)
				}
				time.Sleep(50 * time.Millisecond)
			}
			el := time.Since(started).Seconds()
			cpu := cpuSeconds(p.cmd.Process.Pid)
			p.stop(t)
			times[variant] = append(times[variant], el)
			cpus[variant] = append(cpus[variant], cpu)
			if variant != "file" {
				format := strings.TrimPrefix(variant, "file+")
				if got := az.ids(format); len(got) != events {
					t.Errorf("%s: Sentinel holds %d distinct events, want %d", variant, len(got), events)
				}
			}
			t.Logf("run %d %-16s %.2f s, binary CPU %.2f s (load %s)", run+1, variant, el, cpu, loadAvg())
		}
	}
	best := func(v []float64) float64 { return min(v[0], v[1]) }
	base := best(times["file"])
	for _, variant := range []string{"file+pingone_v2", "file+auditrelay"} {
		ratio := best(times[variant]) / base
		t.Logf("%s: best %.2f s vs file only %.2f s: %.3f×; binary CPU %.2f s vs %.2f s", variant, best(times[variant]), base, ratio,
			best(cpus[variant]), best(cpus["file"]))
		if ratio > 1.10 {
			t.Errorf("%s takes %.3f× the file-only time, over 1.10×", variant, ratio)
		}
	}
}

// cpuSeconds returns the user+system CPU time of a process, from /proc.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// fields after the command name, which is in parentheses
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	var utime, stime float64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	return (utime + stime) / 100 // USER_HZ
}

// loadAvg is the 1-minute load average, for the log.
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
