package e2e

import (
	"bytes"
	"context"
	"encoding/json"
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
)

// caWorld is a CyberArk tenant and a Sekoia.io intake, emulated over HTTP.
type caWorld struct {
	ca     *emulator.CyberArk
	caSrv  *httptest.Server
	tenant emulator.CyberArkTenant
	gen    *emulator.CyberArkGenerator
	sk     *emulator.Sekoia
	skSrv  *httptest.Server
}

const (
	caSecret  = "ca-client-s3cret-value"
	caAPIKey  = "ca-siem-api-key-value"
	intakeKey = "sekoia-intake-key-value"
)

func newCAWorld(t *testing.T, cursorTTL time.Duration) *caWorld {
	w := &caWorld{gen: emulator.NewCyberArkGenerator(9)}
	w.ca = emulator.NewCyberArk(emulator.CyberArkOptions{TokenTTL: 20 * time.Second, CursorTTL: cursorTTL, RateLimit: 50, Burst: 50})
	w.tenant = emulator.CyberArkTenant{ID: "c0ffee00-1111-4222-8333-444455556666", AppID: "auditrelay",
		ClientID: "svc-audit@cyberark.cloud.12345", ClientSecret: caSecret, APIKey: caAPIKey}
	w.ca.AddTenant(w.tenant)
	w.caSrv = httptest.NewServer(w.ca)
	t.Cleanup(w.caSrv.Close)
	w.sk = emulator.NewSekoia(emulator.SekoiaOptions{}, intakeKey)
	w.skSrv = httptest.NewServer(w.sk)
	t.Cleanup(w.skSrv.Close)
	return w
}

// sourceYAML is the CyberArk source, as an item of sources.
func (w *caWorld) sourceYAML() string {
	return fmt.Sprintf(`  - name: cyberark-prod
    cyberark:
      identity_url: %s
      app_id: auditrelay
      client_id: svc-audit@cyberark.cloud.12345
      client_secret: "${env:CYBERARK_CLIENT_SECRET}"
      token_auth_method: client_secret_post
      audit_url: %s
      api_key: "${env:CYBERARK_AUDIT_API_KEY}"
      page_size: 300
      poll_interval: 200ms
      settle_delay: 2s
      overlap: 3s
      lookback: 2h
      rate_limit: 40
`, w.caSrv.URL, w.caSrv.URL)
}

func (w *caWorld) config(t *testing.T, dir string) string {
	cfg := fmt.Sprintf(`data_dir: %s
log: {level: debug}
sources:
%ssinks:
  - name: archive
    file: { path: %s, batch_size: 500 }
  - name: sekoia-cyberark
    sources: [cyberark-prod]
    sekoia:
      intake_key: "${env:SEKOIA_INTAKE_KEY}"
      url: %s
      batch_size: 400
`, filepath.Join(dir, "data"), w.sourceYAML(), filepath.Join(dir, "out", "a.ndjson"), w.skSrv.URL)
	path := filepath.Join(dir, "auditrelay.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func caEnviron() []string {
	return append(os.Environ(), caSecrets()...)
}

// caSecrets are the variables holding the secrets of caWorld's configuration.
func caSecrets() []string {
	return []string{"CYBERARK_CLIENT_SECRET=" + caSecret, "CYBERARK_AUDIT_API_KEY=" + caAPIKey, "SEKOIA_INTAKE_KEY=" + intakeKey}
}

// want lists tenantId/uuid of every event of the tenant.
func (w *caWorld) want() map[string]bool {
	all := map[string]bool{}
	for _, e := range w.ca.Events(w.tenant.ID) {
		all[w.tenant.ID+"/"+e.UUID] = true
	}
	return all
}

// caFileIDs counts the ids in the file sink, checking each line's raw event
// against its envelope.
func caFileIDs(t *testing.T, path string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	eachLine(t, path, func(f string, line []byte) {
		var l struct {
			Provider, Tenant, ID string
			Raw                  struct{ UUID, TenantID string } `json:"raw"`
		}
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatalf("%s: malformed line: %v", f, err)
		}
		if l.Provider != "cyberark" || l.ID != l.Raw.TenantID+"/"+l.Raw.UUID || l.Tenant != l.Raw.TenantID {
			t.Fatalf("%s: envelope %s/%s/%s does not match the raw event %s/%s", f, l.Provider, l.Tenant, l.ID, l.Raw.TenantID, l.Raw.UUID)
		}
		counts[l.ID]++
	})
	return counts
}

// sekoiaIDs counts the ids of the messages the intake accepted.
func (w *caWorld) sekoiaIDs(t *testing.T) map[string]int {
	counts := map[string]int{}
	for _, m := range w.sk.Messages(intakeKey) {
		var e struct{ UUID, TenantID string }
		if err := json.Unmarshal([]byte(m), &e); err != nil {
			t.Fatalf("message is not JSON: %v", err)
		}
		counts[e.TenantID+"/"+e.UUID]++
	}
	return counts
}

// TestCyberArkKillNineLoop kills the binary with SIGKILL at random moments
// while the CyberArk API serves a backlog, bursts of thousands of events in
// one second (one on a second boundary), live events that become visible
// late, an event too large for Sekoia, faults on both APIs and cursors that
// expire; afterwards the file holds every event exactly once, and Sekoia
// every event but the parked one, with duplicates only from kills between
// an intake's acknowledgement and the offset commit.
func TestCyberArkKillNineLoop(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	w := newCAWorld(t, 4*time.Second)
	now := time.Now()
	w.ca.Backlog(w.gen, w.tenant.ID, 6000, now.Add(-time.Hour), now.Add(-10*time.Second))
	w.ca.Burst(w.gen, w.tenant.ID, 3000, now.Add(-30*time.Minute), time.Time{})
	w.ca.Burst(w.gen, w.tenant.ID, 1500, now.Add(-30*time.Minute+time.Second), time.Time{})
	big := w.gen.Event(w.tenant.ID, now.Add(-20*time.Minute))
	big.JSON = []byte(strings.Replace(string(big.JSON), `"customData":{`, `"customData":{"blob":"`+strings.Repeat("A", 300_000)+`",`, 1))
	w.ca.Add(w.tenant.ID, big)
	bigID := w.tenant.ID + "/" + big.UUID

	w.ca.SetFaults(emulator.CyberArkFaults{ServerError: 0.04, Truncate: 0.03, Throttle: 0.03, Early401: 0.02, ExpireCursor: 0.06})
	w.sk.SetFaults(emulator.SekoiaFaults{ServerError: 0.05, Throttle: 0.03})
	live, stopLive := context.WithCancel(context.Background())
	var gens sync.WaitGroup
	gens.Go(func() { w.ca.Run(live, emulator.NewCyberArkGenerator(11), w.tenant.ID, 150, 3*time.Second) })

	cfg := w.config(t, dir)
	logPath := filepath.Join(dir, "auditrelay.log")
	kills := 8
	if *soak {
		kills = 60
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range kills {
		p := start(t, bin, cfg, caEnviron(), logPath)
		time.Sleep(time.Duration(300+rng.IntN(2200)) * time.Millisecond)
		p.kill(t)
	}
	stopLive()
	gens.Wait()
	w.ca.SetFaults(emulator.CyberArkFaults{})
	w.sk.SetFaults(emulator.SekoiaFaults{})
	p := start(t, bin, cfg, caEnviron(), logPath)
	want := w.want()
	wantSekoia := map[string]bool{}
	for id := range want {
		if id != bigID {
			wantSekoia[id] = true
		}
	}
	file := filepath.Join(dir, "out", "a.ndjson")
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if covers(caFileIDs(t, file), want) && covers(w.sekoiaIDs(t), wantSekoia) {
			break
		}
	}
	p.stop(t)
	compare(t, "archive", want, caFileIDs(t, file))
	got := w.sekoiaIDs(t)
	dups := 0
	for id, n := range got {
		if n > 1 {
			dups += n - 1
		}
		if !wantSekoia[id] {
			t.Errorf("sekoia: unexpected id %s", id)
		}
	}
	for id := range wantSekoia {
		if got[id] == 0 {
			t.Errorf("sekoia: %s missing", id)
			break
		}
	}
	if dups > kills*400 {
		t.Errorf("sekoia: %d duplicates, more than one batch per kill", dups)
	}
	if f := w.sk.Flagged(); len(f) > 0 {
		t.Errorf("sekoia: %d messages the parser would reject", len(f))
	}
	parked, err := os.ReadFile(filepath.Join(dir, "data", "parked", "sekoia-cyberark.ndjson"))
	if err != nil || !strings.Contains(string(parked), big.UUID) {
		t.Errorf("the oversized event is not in the park file: %v", err)
	}
	st := w.ca.Stats()
	t.Logf("%d events, %d kills, %d sekoia duplicates; CyberArk: %d queries, %d results, %d faults, %d expired cursors, %d tokens",
		len(want), kills, dups, st.QueryRequests, st.ResultsRequests, st.Faults, st.ExpiredCursors, st.TokenRequests)
	if st.Faults == 0 || st.ExpiredCursors == 0 {
		t.Error("no fault or no cursor expiry was exercised; the test proves less than it claims")
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(secrettest.Forms(w.tenant.ClientID, caSecret), caAPIKey, intakeKey) {
		if strings.Contains(string(b), s) {
			t.Errorf("a secret appears in the log as %q", s)
		}
	}
}

// TestCyberArkToSekoiaNoDuplicates stops and restarts the binary cleanly
// (SIGTERM) while events arrive late: Sekoia gets every event exactly once.
func TestCyberArkToSekoiaNoDuplicates(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	w := newCAWorld(t, time.Minute)
	now := time.Now()
	w.ca.Backlog(w.gen, w.tenant.ID, 3000, now.Add(-time.Hour), now)
	// Visible 4s after its second: after settle_delay (2s), within the overlap (3s).
	w.ca.Burst(w.gen, w.tenant.ID, 2000, now.Add(-3*time.Second), now.Add(time.Second))
	cfg := w.config(t, dir)
	logPath := filepath.Join(dir, "auditrelay.log")
	live, stopLive := context.WithCancel(context.Background())
	var gens sync.WaitGroup
	gens.Go(func() { w.ca.Run(live, emulator.NewCyberArkGenerator(12), w.tenant.ID, 100, 4*time.Second) })
	for range 3 {
		p := start(t, bin, cfg, caEnviron(), logPath)
		time.Sleep(1500 * time.Millisecond)
		p.stop(t)
	}
	stopLive()
	gens.Wait()
	p := start(t, bin, cfg, caEnviron(), logPath)
	want := w.want()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if covers(w.sekoiaIDs(t), want) {
			break
		}
	}
	p.stop(t)
	compare(t, "sekoia", want, w.sekoiaIDs(t))
	compare(t, "archive", want, caFileIDs(t, filepath.Join(dir, "out", "a.ndjson")))
}

var caBacklog = flag.Bool("cyberark-backlog", false, "measure the CyberArk backlog (100k events) against its targets")

// TestCyberArkBacklog measures the binary draining 100,000 events from the
// CyberArk emulator at rate_limit 10 and page_size 1000: the time and the
// requests must stay within 10 % and 5 % of what the rate and page size
// allow, and the peak RSS under 64 MiB. Run with -cyberark-backlog on a
// quiet machine.
func TestCyberArkBacklog(t *testing.T) {
	if !*caBacklog {
		t.Skip("run with -cyberark-backlog")
	}
	const events, pageSize, rateLimit = 100_000, 1000, 10
	bin := binary(t)
	dir := t.TempDir()
	w := &caWorld{gen: emulator.NewCyberArkGenerator(21)}
	w.ca = emulator.NewCyberArk(emulator.CyberArkOptions{RateLimit: rateLimit})
	w.tenant = emulator.CyberArkTenant{ID: "c0ffee00-1111-4222-8333-444455556666", AppID: "auditrelay",
		ClientID: "svc-audit@cyberark.cloud.12345", ClientSecret: caSecret, APIKey: caAPIKey}
	w.ca.AddTenant(w.tenant)
	w.caSrv = httptest.NewServer(w.ca)
	defer w.caSrv.Close()
	now := time.Now()
	w.ca.Backlog(w.gen, w.tenant.ID, events, now.Add(-time.Hour), now.Add(-5*time.Minute))
	out := filepath.Join(dir, "out.ndjson")
	cfg := fmt.Sprintf(`data_dir: %s
sources:
  - name: cyberark-prod
    cyberark:
      identity_url: %s
      app_id: auditrelay
      client_id: svc-audit@cyberark.cloud.12345
      client_secret: "${env:CYBERARK_CLIENT_SECRET}"
      audit_url: %s
      api_key: "${env:CYBERARK_AUDIT_API_KEY}"
      page_size: %d
      rate_limit: %d
      lookback: 2h
      poll_interval: 1s
sinks:
  - name: archive
    file: { path: %s, max_size: 1GiB }
`, filepath.Join(dir, "data"), w.caSrv.URL, w.caSrv.URL, pageSize, rateLimit, out)
	cfgPath := filepath.Join(dir, "auditrelay.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	lines := &lineCounter{path: out}
	started := time.Now()
	p := start(t, bin, cfgPath, caEnviron(), filepath.Join(dir, "auditrelay.log"))
	var elapsed time.Duration
	var st emulator.CyberArkStats
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if lines.count() >= events {
			elapsed = time.Since(started)
			st = w.ca.Stats()
			break
		}
	}
	peak := vmHWM(t, p.cmd.Process.Pid)
	p.stop(t)
	got := caFileIDs(t, out)
	if len(got) != events {
		t.Fatalf("%d distinct events in the file, want %d", len(got), events)
	}
	requests := st.QueryRequests + st.ResultsRequests
	// The fewest requests: one createQuery, one results call per full page
	// and the empty page that ends the window.
	minRequests := 1 + (events+pageSize-1)/pageSize + 1
	minTime := time.Duration(float64(minRequests) / rateLimit * float64(time.Second))
	t.Logf("delivered %d events in %v (minimum %v, ×%.3f); %d requests (minimum %d, ×%.3f); %d throttled; %d token requests; peak RSS %.1f MiB",
		events, elapsed.Round(10*time.Millisecond), minTime, elapsed.Seconds()/minTime.Seconds(), requests, minRequests,
		float64(requests)/float64(minRequests), st.Throttled, st.TokenRequests, peak)
	if elapsed == 0 || elapsed.Seconds() > 1.10*minTime.Seconds() {
		t.Errorf("time %v over 1.10 × %v", elapsed, minTime)
	}
	if float64(requests) > 1.05*float64(minRequests) {
		t.Errorf("%d requests over 1.05 × %d", requests, minRequests)
	}
	if peak > 64 {
		t.Errorf("peak RSS %.1f MiB over 64 MiB", peak)
	}
}

// countLines counts the lines of a file sink's files, rotated ones included.
func countLines(t *testing.T, path string) int {
	files, _ := filepath.Glob(path + "*")
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil {
			n += strings.Count(string(b), "\n")
		}
	}
	return n
}

// lineCounter counts the lines of a growing file, reading only what was
// appended since its last call: a measurement that polls it often must not
// load the machine it measures. It follows no rotation, so the sink it
// watches gets a max_size above what the measurement writes.
type lineCounter struct {
	path  string
	off   int64
	lines int
	buf   []byte
}

func (c *lineCounter) count() int {
	f, err := os.Open(c.path)
	if err != nil {
		return c.lines
	}
	defer f.Close()
	if c.buf == nil {
		c.buf = make([]byte, 1<<20)
	}
	for {
		n, err := f.ReadAt(c.buf, c.off)
		c.lines += bytes.Count(c.buf[:n], []byte{'\n'})
		c.off += int64(n)
		if err != nil || n == 0 {
			return c.lines
		}
	}
}

// vmHWM returns the peak resident set of a process, in MiB.
func vmHWM(t *testing.T, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb float64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb / 1024
		}
	}
	t.Fatal("no VmHWM")
	return 0
}
