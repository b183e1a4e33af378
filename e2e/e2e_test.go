// Package e2e drives the real auditrelay binary against the emulators and
// checks the end-to-end invariants: every event the API served reaches every
// sink exactly once, across kill -9, API faults and sink restarts.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/secret/secrettest"
)

var soak = flag.Bool("soak", false, "run the long kill -9 soak (minutes)")

// buildBinary compiles auditrelay once per test binary run.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "auditrelay-e2e-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "auditrelay")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/auditrelay")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // the static binary the README documents
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// world is an emulator with environments on one licence, served over HTTP.
type world struct {
	emu  *emulator.PingOne
	srv  *httptest.Server
	envs []emulator.Environment
	gen  *emulator.Generator
	// moreSources is YAML appended to the sources of config: sources of
	// other providers beside the PingOne environments.
	moreSources string
}

func newWorld(t *testing.T, n int) *world {
	emu := emulator.NewPingOne(emulator.PingOneOptions{TokenTTL: 20 * time.Second})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	w := &world{emu: emu, srv: srv, gen: emulator.NewGenerator(7)}
	for i := range n {
		e := emulator.Environment{
			ID: fmt.Sprintf("0b6e7c1a-0000-4000-8000-%012d", i+1), Licence: "lic",
			ClientID: fmt.Sprintf("client-%d", i+1), ClientSecret: fmt.Sprintf("s3cr3t-value-%d", i+1),
			AuthMethod: []string{"client_secret_basic", "client_secret_post"}[i%2],
		}
		emu.AddEnvironment(e)
		w.envs = append(w.envs, e)
	}
	return w
}

func (w *world) config(t *testing.T, dir string, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: %s\nlog: {level: debug}\nsources:\n", filepath.Join(dir, "data"))
	for i, e := range w.envs {
		fmt.Fprintf(&b, `  - name: env-%d
    pingone:
      environment_id: %q
      client_id: %q
      client_secret: "${env:SECRET_%d}"
      token_auth_method: %s
      api_url: %s
      auth_url: %s
      poll_interval: 200ms
      settle_delay: 2s
      overlap: 2s
      lookback: 2h
      page_size: 200
      rate_limit: 10
      licence: lic
`, i+1, e.ID, e.ClientID, i+1, e.AuthMethod, w.srv.URL, w.srv.URL)
	}
	b.WriteString(w.moreSources)
	fmt.Fprintf(&b, `sinks:
  - name: archive
    file: { path: %s, batch_size: 300 }
  - name: second
    file: { path: %s, batch_size: 1000, max_size: 2MiB, max_files: 100 }
%s`, filepath.Join(dir, "out", "a.ndjson"), filepath.Join(dir, "out", "b.ndjson"), extra)
	path := filepath.Join(dir, "auditrelay.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (w *world) environ() []string {
	env := os.Environ()
	for i, e := range w.envs {
		env = append(env, fmt.Sprintf("SECRET_%d=%s", i+1, e.ClientSecret))
	}
	return env
}

// proc is a running auditrelay.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, set before done is closed
	// log and logAt are its log file and that file's size at its start.
	log   string
	logAt int64
}

func start(t *testing.T, bin, cfg string, environ []string, logPath string) *proc {
	t.Helper()
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", cfg)
	cmd.Env = environ
	cmd.Stdout, cmd.Stderr = lf, lf
	var at int64
	if fi, err := lf.Stat(); err == nil {
		at = fi.Size()
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), log: logPath, logAt: at}
	go func() { p.err = cmd.Wait(); lf.Close(); close(p.done) }()
	return p
}

func (p *proc) kill(t *testing.T) {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logged reports whether the process has written to its log: main then
// handles SIGTERM (before, the Go runtime dies of it).
func (p *proc) logged() bool {
	fi, err := os.Stat(p.log)
	return err == nil && fi.Size() > p.logAt
}

// stop sends SIGTERM, once the process handles it, and expects a clean
// exit 0.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !p.logged() && time.Now().Before(deadline); {
		select {
		case <-p.done:
			t.Fatalf("auditrelay exited before it was stopped: %v", p.err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("auditrelay did not exit 0 on SIGTERM: %v", p.err)
		}
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		t.Fatal("auditrelay did not stop within 30s of SIGTERM")
	}
}

// eachLine calls f with every line of a file sink's files (rotated ones
// included), and the file it comes from.
func eachLine(t *testing.T, path string, f func(file string, line []byte)) {
	t.Helper()
	files, _ := filepath.Glob(path + "*")
	for _, name := range files {
		fh, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			f(name, sc.Bytes())
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// sinkIDs counts the ids in a file sink's files, by tenant.
func sinkIDs(t *testing.T, path string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	eachLine(t, path, func(f string, line []byte) {
		var l struct {
			Tenant, ID string
			Raw        struct {
				ID string `json:"id"`
			} `json:"raw"`
		}
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatalf("%s: malformed line %q: %v", f, string(line), err)
		}
		if l.Raw.ID != l.ID {
			t.Fatalf("%s: envelope id %q but raw id %q", f, l.ID, l.Raw.ID)
		}
		counts[l.Tenant+"/"+l.ID]++
	})
	return counts
}

// eventKey names an event across providers as the worlds' want does:
// tenant/id for PingOne, and CyberArk's id, which already starts with its
// tenant.
func eventKey(provider, tenant, id string) string {
	if provider == "cyberark" {
		return id
	}
	return tenant + "/" + id
}

// fileKeys counts the events in a file sink's files by eventKey, whatever
// their provider.
func fileKeys(t *testing.T, path string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	eachLine(t, path, func(f string, line []byte) {
		var l struct{ Provider, Tenant, ID string }
		if err := json.Unmarshal(line, &l); err != nil || l.ID == "" {
			t.Fatalf("%s: malformed line %q: %v", f, string(line), err)
		}
		counts[eventKey(l.Provider, l.Tenant, l.ID)]++
	})
	return counts
}

func (w *world) want() map[string]bool {
	all := map[string]bool{}
	for _, e := range w.envs {
		for _, a := range w.emu.Activities(e.ID) {
			all[e.ID+"/"+a.ID] = true
		}
	}
	return all
}

// compare reports loss and duplicates of one sink.
func compare(t *testing.T, name string, want map[string]bool, got map[string]int) {
	t.Helper()
	missing, dups, extra := 0, 0, 0
	var examples []string
	for id := range want {
		if got[id] == 0 {
			missing++
			if len(examples) < 5 {
				examples = append(examples, id)
			}
		}
	}
	for id, n := range got {
		if n > 1 {
			dups += n - 1
		}
		if !want[id] {
			extra++
		}
	}
	if missing > 0 || dups > 0 || extra > 0 {
		t.Errorf("sink %s: %d of %d events missing (e.g. %v), %d duplicates, %d unknown ids", name, missing, len(want), examples, dups, extra)
	}
}

// waitAll waits until both sinks hold every wanted event.
func waitAll(t *testing.T, dir string, want map[string]bool, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		a, b := sinkIDs(t, filepath.Join(dir, "out", "a.ndjson")), sinkIDs(t, filepath.Join(dir, "out", "b.ndjson"))
		if covers(a, want) && covers(b, want) {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func covers(got map[string]int, want map[string]bool) bool {
	for id := range want {
		if got[id] == 0 {
			return false
		}
	}
	return true
}

// TestKillNineLoop is the crown jewel: the binary is killed with SIGKILL at
// random moments while the API serves a backlog, live events that arrive
// late, same-millisecond bursts and faults; afterwards each sink holds every
// event exactly once.
func TestKillNineLoop(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	w := newWorld(t, 2)
	now := time.Now()
	w.emu.Backlog(w.gen, w.envs[0].ID, w.srv.URL, 6000, now.Add(-time.Hour), now.Add(-10*time.Second))
	w.emu.Backlog(w.gen, w.envs[1].ID, w.srv.URL, 1500, now.Add(-30*time.Minute), now.Add(-10*time.Second))
	// thousands of events in one millisecond, straddling page boundaries
	burstAt := now.Add(-20 * time.Minute).Truncate(time.Millisecond)
	for i := range 1200 {
		a := w.gen.Activity(w.envs[0].ID, w.srv.URL, burstAt)
		_ = i
		w.emu.Add(w.envs[0].ID, a)
	}
	w.emu.SetFaults(emulator.Faults{ServerError: 0.05, Truncate: 0.03, Early401: 0.02, Throttle: 0.02, Slow: 0.02, SlowDelay: 300 * time.Millisecond})
	live, stopLive := context.WithCancel(context.Background())
	var gens sync.WaitGroup
	for i, e := range w.envs {
		g := emulator.NewGenerator(uint64(100 + i))
		gens.Go(func() { w.emu.Run(live, g, e.ID, w.srv.URL, 150, 1500*time.Millisecond) })
	}
	cfg := w.config(t, dir, "")
	logPath := filepath.Join(dir, "auditrelay.log")
	kills := 8
	if *soak {
		kills = 60
	}
	rng := rand.New(rand.NewPCG(1, 2))
	// Each restart changes the file sinks' batch_size: the batch a kill
	// left unacknowledged is sent again in smaller or larger batches.
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{300, 40, 1000, 7, 450}
	withSizes := func(a, b int) {
		s := strings.Replace(string(text), "batch_size: 300", fmt.Sprintf("batch_size: %d", a), 1)
		s = strings.Replace(s, "batch_size: 1000", fmt.Sprintf("batch_size: %d", b), 1)
		if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for i := range kills {
		withSizes(sizes[i%len(sizes)], sizes[(i+2)%len(sizes)])
		p := start(t, bin, cfg, w.environ(), logPath)
		time.Sleep(time.Duration(300+rng.IntN(2200)) * time.Millisecond)
		p.kill(t)
	}
	stopLive()
	gens.Wait()
	w.emu.SetFaults(emulator.Faults{})
	withSizes(300, 1000)
	p := start(t, bin, cfg, w.environ(), logPath)
	want := w.want()
	waitAll(t, dir, want, 90*time.Second)
	p.stop(t)
	compare(t, "archive", want, sinkIDs(t, filepath.Join(dir, "out", "a.ndjson")))
	compare(t, "second", want, sinkIDs(t, filepath.Join(dir, "out", "b.ndjson")))
	st := w.emu.Stats()
	t.Logf("%d events, %d kills; emulator: %d activities requests, %d throttled, %d faults, %d token requests",
		len(want), kills, st.ActivityRequests, st.Throttled, st.Faults, st.TokenRequests)
	if st.Faults == 0 {
		t.Error("no fault was injected; the test proves less than it claims")
	}
	assertNoSecrets(t, logPath, w)
}

func assertNoSecrets(t *testing.T, logPath string, w *world) {
	t.Helper()
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range w.envs {
		for _, s := range secrettest.Forms(e.ClientID, e.ClientSecret) {
			if strings.Contains(string(b), s) {
				t.Errorf("client secret of %s appears in the log as %q", e.ID, s)
			}
		}
	}
}
