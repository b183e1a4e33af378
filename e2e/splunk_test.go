package e2e

import (
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/sink/splunk"
)

const splunkToken = "5b1c0000-hec0-4000-8000-e2e0token0001"

// TestSplunkKillNineLoop: PingOne into Splunk HEC with indexer
// acknowledgment through the real binary, killed with SIGKILL at random
// moments while acks take a second and HEC answers 503s. Every event is
// indexed; repeats come only from batches in flight at a kill (at most one
// batch each), and carry auditrelay_id so a search can drop them. The HEC
// channel survives the restarts.
func TestSplunkKillNineLoop(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	w := newWorld(t, 2)
	hec := emulator.NewSplunk(emulator.SplunkOptions{AckDelay: time.Second, Seed: 3}, emulator.SplunkToken{Token: splunkToken, Ack: true})
	srv := httptest.NewServer(hec)
	t.Cleanup(srv.Close)
	now := time.Now()
	w.emu.Backlog(w.gen, w.envs[0].ID, w.srv.URL, 4000, now.Add(-time.Hour), now.Add(-10*time.Second))
	w.emu.Backlog(w.gen, w.envs[1].ID, w.srv.URL, 1500, now.Add(-30*time.Minute), now.Add(-10*time.Second))
	hec.SetFaults(emulator.SplunkFaults{Busy: 0.1})
	const batch = 300
	cfg := w.config(t, dir, fmt.Sprintf(`  - name: splunk
    splunk: { url: %q, token: "${env:SPLUNK_HEC_TOKEN}", index: identity, batch_size: %d, ack_timeout: 30s }
`, srv.URL, batch))
	environ := append(w.environ(), "SPLUNK_HEC_TOKEN="+splunkToken)
	logPath := filepath.Join(dir, "auditrelay.log")
	rng := mrand.New(mrand.NewPCG(9, 10))
	kills := 6
	var channel string
	for i := range kills {
		p := start(t, bin, cfg, environ, logPath)
		time.Sleep(time.Duration(800+rng.IntN(2200)) * time.Millisecond)
		p.kill(t)
		b, _ := os.ReadFile(filepath.Join(dir, "data", "splunk", "splunk", "channel"))
		if i == 0 {
			channel = string(b)
		} else if channel != "" && string(b) != channel {
			t.Errorf("the HEC channel changed across a restart: %q then %q", channel, b)
		}
	}
	hec.SetFaults(emulator.SplunkFaults{})
	p := start(t, bin, cfg, environ, logPath)
	want := map[string]bool{}
	for _, e := range w.envs {
		for _, a := range w.emu.Activities(e.ID) {
			want[a.ID] = true
		}
	}
	got := func() map[string]int { return hec.IDs() }
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if covers(got(), want) {
			break
		}
	}
	p.stop(t)
	ids := got()
	missing, dups := 0, 0
	for id := range want {
		if ids[id] == 0 {
			missing++
		}
	}
	for _, n := range ids {
		dups += n - 1
	}
	if missing > 0 || dups > kills*batch {
		t.Errorf("splunk: %d of %d events missing, %d repeats (at most %d: one batch per kill)", missing, len(want), dups, kills*batch)
	}
	for _, e := range hec.Events() {
		if e.Index != "identity" || e.Sourcetype != "pingone:audit" || e.ID() == "" {
			t.Fatalf("event indexed as %s/%s with id %q", e.Index, e.Sourcetype, e.ID())
		}
	}
	t.Logf("%d events, %d kills, %d repeats; HEC: %+v", len(want), kills, dups, hec.Stats())
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), splunkToken) {
		t.Error("the HEC token appears in the log")
	}
}

// TestSplunkKillBetweenSendAndAck: the binary is killed while HEC holds
// its requests unacknowledged (acks take 6 s); the next run polls the
// recorded ackIds instead of sending again, so each event is indexed once.
func TestSplunkKillBetweenSendAndAck(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	w := newWorld(t, 1)
	hec := emulator.NewSplunk(emulator.SplunkOptions{AckDelay: 6 * time.Second}, emulator.SplunkToken{Token: splunkToken, Ack: true})
	srv := httptest.NewServer(hec)
	t.Cleanup(srv.Close)
	now := time.Now()
	w.emu.Backlog(w.gen, w.envs[0].ID, w.srv.URL, 1000, now.Add(-time.Hour), now.Add(-10*time.Second))
	addr := freePort(t)
	cfg := w.config(t, dir, fmt.Sprintf(`  - name: splunk
    splunk: { url: %q, token: "${env:SPLUNK_HEC_TOKEN}", batch_size: 2000 }
`, srv.URL))
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append([]byte(fmt.Sprintf("metrics_listen: %s\n", addr)), b...), 0o600)
	environ := append(w.environ(), "SPLUNK_HEC_TOKEN="+splunkToken)
	logPath := filepath.Join(dir, "auditrelay.log")
	p := start(t, bin, cfg, environ, logPath)
	// wait for the whole backlog to be sent, its ack still false
	for deadline := time.Now().Add(30 * time.Second); len(hec.IDs()) < 1000; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			p.kill(t)
			t.Fatalf("HEC holds %d of 1000 events after 30s", len(hec.IDs()))
		}
	}
	if st := hec.Stats(); st.AcksTrue >= st.Requests {
		t.Fatalf("every ack turned true before the kill: %+v", st)
	}
	// HEC answers a request before the sink records its ackId: a kill in
	// between sends the request again, by design. Kill once the last
	// request is recorded, which is the case this test is about.
	last := uint64(hec.Stats().Requests - 1)
	pendingPath := splunk.PendingPath(filepath.Join(dir, "data", "splunk", "splunk"))
	for deadline := time.Now().Add(10 * time.Second); !recordsAck(pendingPath, last); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			p.kill(t)
			t.Fatalf("%s does not record ackId %d after 10s", pendingPath, last)
		}
	}
	p.kill(t)
	sent := hec.Stats().Requests
	p = start(t, bin, cfg, environ, logPath)
	want := bare(w.want())
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && !covers(hec.IDs(), want); time.Sleep(250 * time.Millisecond) {
	}
	// the sink acknowledged the batch from the recorded ackIds
	var resumed float64
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && resumed == 0; time.Sleep(250 * time.Millisecond) {
		resumed, _ = metric(addr, `auditrelay_splunk_resumed_acks_total{sink="splunk"}`)
	}
	p.stop(t)
	compare(t, "splunk", want, hec.IDs())
	if resumed == 0 {
		t.Error("auditrelay_splunk_resumed_acks_total = 0, want the unacknowledged events of the killed run")
	}
	t.Logf("%v events acknowledged from the killed run's record; HEC %+v", resumed, hec.Stats())
	if st := hec.Stats(); st.Requests != sent {
		t.Errorf("the restarted run sent %d requests again: %+v", st.Requests-sent, st)
	}
}

// recordsAck reports whether the Splunk sink's pending file at path
// records ackId id.
func recordsAck(path string, id uint64) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var f struct {
		Requests []struct {
			AckID uint64 `json:"ack_id"`
		} `json:"requests"`
	}
	if json.Unmarshal(b, &f) != nil {
		return false
	}
	for _, r := range f.Requests {
		if r.AckID == id {
			return true
		}
	}
	return false
}
