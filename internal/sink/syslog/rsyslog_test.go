package syslog

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/units"
)

// rsyslog is a real rsyslogd run by a test as a foreground process with
// its own configuration, work directory and pid file, listening on
// loopback with plain TCP (imptcp) and TLS (imtcp with the ossl driver),
// writing what it gets to out.log, one message per line.
type rsyslog struct {
	bin, dir, conf string
	tcp, tls       string // addresses
	cmd            *exec.Cmd
	exited         chan struct{}
}

// needRsyslogd returns the rsyslogd binary; without one the test is
// skipped, or fails when CI=true.
func needRsyslogd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/rsyslogd")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("rsyslogd not found, and CI=true: .ci/run installs rsyslog and rsyslog-openssl")
		}
		t.Skip("rsyslogd not found: apt-get install rsyslog rsyslog-openssl to run the tests against a real rsyslog")
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newRsyslog writes a configuration for p's certificate and starts
// rsyslogd.
func newRsyslog(t *testing.T, p *testPKI) *rsyslog {
	t.Helper()
	r := &rsyslog{bin: needRsyslogd(t), dir: t.TempDir(), tcp: freePort(t), tls: freePort(t)}
	_, tcpPort, _ := net.SplitHostPort(r.tcp)
	_, tlsPort, _ := net.SplitHostPort(r.tls)
	r.conf = filepath.Join(r.dir, "rsyslog.conf")
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="8096"
  defaultNetstreamDriverCAFile=%q defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q)
module(load="imptcp")
module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
template(name="line" type="string" string="%%msgid%% %%structured-data%% %%msg%%\n")
ruleset(name="out" queue.type="Direct") {
  action(type="omfile" file=%q template="line" flushOnTXEnd="on" asyncWriting="off")
}
input(type="imptcp" address="127.0.0.1" port=%q ruleset="out")
input(type="imtcp" address="127.0.0.1" port=%q ruleset="out")
`, r.dir, p.caFile, p.certFile, p.keyFile, filepath.Join(r.dir, "out.log"), tcpPort, tlsPort)
	if err := os.WriteFile(r.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(r.bin, "-N1", "-f", r.conf).CombinedOutput(); err != nil {
		t.Fatalf("rsyslogd -N1: %v\n%s", err, out)
	}
	r.start(t)
	t.Cleanup(func() {
		r.kill(t)
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(r.dir, "rsyslogd.log"))
			t.Logf("rsyslogd's output:\n%s", b)
		}
	})
	return r
}

// start runs rsyslogd in the foreground and waits for both ports.
func (r *rsyslog) start(t *testing.T) {
	t.Helper()
	pid := filepath.Join(r.dir, "rsyslogd.pid")
	os.Remove(pid)
	r.cmd = exec.Command(r.bin, "-n", "-f", r.conf, "-i", pid)
	logf, err := os.OpenFile(filepath.Join(r.dir, "rsyslogd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) {
		c.Wait()
		close(done)
	}(r.cmd, r.exited)
	for _, addr := range []string{r.tcp, r.tls} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("rsyslogd does not listen on %s: %v", addr, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// kill sends SIGKILL and waits for the process to end.
func (r *rsyslog) kill(t *testing.T) {
	t.Helper()
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.exited
	r.cmd = nil
}

var sdID = regexp.MustCompile(`\[auditrelay@32473 id="((?:[^"\\]|\\.)*)"`)

// received reads out.log: the count of each event id, and the lines.
func (r *rsyslog) received(t *testing.T) (map[string]int, []string) {
	t.Helper()
	f, err := os.Open(filepath.Join(r.dir, "out.log"))
	if os.IsNotExist(err) {
		return map[string]int{}, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids := map[string]int{}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		if m := sdID.FindStringSubmatch(line); m != nil {
			ids[strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\]`, `]`).Replace(m[1])]++
		}
	}
	return ids, lines
}

// waitReceived waits until out.log holds n lines.
func (r *rsyslog) waitReceived(t *testing.T, n int) (map[string]int, []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ids, lines := r.received(t)
		if len(lines) >= n || time.Now().After(deadline) {
			return ids, lines
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// trickyBatch is n events; some have a line break, quotes and a raw
// U+2028 in the tenant (hence raw in the structured data) and in the JSON.
func trickyBatch(prefix string, n int) []event.Raw {
	out := batchOf(prefix, n)
	for i := range out {
		if i%5 == 0 {
			out[i].Tenant = "env \"one\"\nsecond line\u2028] \\"
			out[i].Data = json.RawMessage(`{"id":"` + out[i].ID + `","action":{"type":"USER.UPDATED","description":"raw ` + "\u2028" + ` separator, \"quotes\" and \\n"}}`)
		}
	}
	return out
}

// TestRsyslog: over TLS and plain TCP into a real rsyslog, every event is
// stored once, one line each: octet counting keeps messages with line
// breaks, quotes and U+2028 whole. A message over max_message_bytes is
// parked; one just under it arrives whole.
func TestRsyslog(t *testing.T) {
	p := newPKI(t)
	r := newRsyslog(t, p)
	for _, tc := range []struct {
		name string
		cfg  func(*Config)
	}{
		{"tls", func(c *Config) { c.Address, c.Transport, c.CAFile = r.tls, TransportTLS, p.caFile }},
		{"tcp", func(c *Config) { c.Address, c.Transport = r.tcp, TransportTCP }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, lines0 := r.received(t)
			pf := park.New(filepath.Join(t.TempDir(), "parked.ndjson"))
			s, _ := newSink(t, tc.cfg, Options{Park: pf})
			batch := trickyBatch(tc.name, 500)
			near := `{"id":"` + tc.name + `-near","pad":"` + strings.Repeat("n", 7800) + `"}`
			over := `{"id":"` + tc.name + `-over","pad":"` + strings.Repeat("o", 8200) + `"}`
			batch = append(batch,
				event.Raw{Source: "s", Provider: "pingone", Tenant: "t", ID: tc.name + "-near", Time: time.Now(), Data: json.RawMessage(near)},
				event.Raw{Source: "s", Provider: "pingone", Tenant: "t", ID: tc.name + "-over", Time: time.Now(), Data: json.RawMessage(over)})
			for i := 0; i < len(batch); i += 100 {
				if err := s.Send(t.Context(), batch[i:min(i+100, len(batch))]); err != nil {
					t.Fatal(err)
				}
			}
			ids, lines := r.waitReceived(t, len(lines0)+len(batch)-1)
			if got := len(lines) - len(lines0); got != len(batch)-1 {
				t.Errorf("rsyslog stored %d lines, want %d: one per message", got, len(batch)-1)
			}
			for _, ev := range batch {
				want := 1
				if ev.ID == tc.name+"-over" {
					want = 0
				}
				if n := ids[ev.ID] - before[ev.ID]; n != want {
					t.Errorf("%s stored %d times, want %d", ev.ID, n, want)
				}
			}
			for _, l := range lines[len(lines0):] {
				if strings.Contains(l, tc.name+"-near") && !strings.Contains(l, strings.Repeat("n", 7800)+`"}`) {
					t.Errorf("the message just under the limit was cut: %d bytes", len(l))
				}
				if strings.Contains(l, "second line") && !strings.Contains(l, "env \\\"one\\\"#012second line\u2028\\] \\\\") {
					t.Errorf("a message with a line break and U+2028 came out as %q", l)
				}
			}
			if st := s.Stats(); st.Parked != 1 || st.Sent != int64(len(batch)-1) {
				t.Errorf("stats %+v", st)
			}
			if b, _ := os.ReadFile(pf.Path()); !strings.Contains(string(b), tc.name+"-over") {
				t.Errorf("park file lacks the message over the limit:\n%.300s", b)
			}
		})
	}
}

// TestRsyslogKilled: rsyslogd is killed with SIGKILL and restarted while
// batches flow, as a runner sends them (the same batch again after an
// error). With confirm_wait longer than rsyslogd takes to store a batch,
// nothing is lost; the duplicates (batches in flight at a kill) are
// counted.
func TestRsyslogKilled(t *testing.T) {
	p := newPKI(t)
	r := newRsyslog(t, p)
	s, _ := newSink(t, func(c *Config) {
		c.Address, c.Transport, c.CAFile = r.tls, TransportTLS, p.caFile
		c.WriteTimeout = units.Duration(5 * time.Second)
		// Longer than rsyslogd takes to store a batch here, even under
		// the race detector: a kill within it is seen and the batch sent
		// again. With the default 10ms a kill can land while rsyslogd
		// still holds a batch it has read, and that part is lost.
		w := units.Duration(300 * time.Millisecond)
		c.ConfirmWait = &w
	}, Options{})
	const total, size = 8000, 250
	all := trickyBatch("k", total)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		errs := 0
		for i := 0; i < total; {
			if err := s.Send(ctx, all[i:min(i+size, total)]); err != nil {
				if ctx.Err() != nil {
					done <- err
					return
				}
				errs++
				time.Sleep(20 * time.Millisecond)
				continue
			}
			i += size
		}
		done <- nil
	}()
	rng := rand.New(rand.NewPCG(5, 12))
	kills := 0
	for range 4 {
		time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
		select {
		case err := <-done:
			done <- err
		default:
		}
		r.kill(t)
		kills++
		time.Sleep(time.Duration(50+rng.IntN(200)) * time.Millisecond)
		r.start(t)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the sink did not finish")
	}
	ids, lines := r.waitReceived(t, total)
	lost, dups := 0, 0
	for _, ev := range all {
		switch n := ids[ev.ID]; {
		case n == 0:
			lost++
		case n > 1:
			dups += n - 1
		}
	}
	st := s.Stats()
	t.Logf("%d kills: %d events, %d lines stored, %d duplicates, %d batches sent again, %d connections", kills, total, len(lines), dups, st.Resent, st.Connects)
	if lost != 0 {
		t.Errorf("%d events lost", lost)
	}
	if st.Sent != total {
		t.Errorf("sink acknowledged %d events, want %d", st.Sent, total)
	}
	if len(ids) != total {
		t.Errorf("%d distinct ids stored, want %d", len(ids), total)
	}
}
