package e2e

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
)

var sinkOutage = flag.Duration("sink-outage", 20*time.Second, "how long TestSIEMOutage keeps the Splunk and Elasticsearch endpoints down (10m for the full soak)")

var esAPIKey = base64.StdEncoding.EncodeToString([]byte("e2e-key:e2e-secret-0001"))

// esIDs returns how many documents each provider event id has in the
// emulator, over every index, read from each document's message (format
// integration) or raw.id (format raw).
func esIDs(t *testing.T, es *emulator.Elasticsearch) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, ix := range es.Indices() {
		for _, d := range es.Docs(ix) {
			var doc struct {
				Message string `json:"message"`
				Raw     struct {
					ID string `json:"id"`
				} `json:"raw"`
			}
			if err := json.Unmarshal(d.Source, &doc); err != nil {
				t.Fatalf("document %s in %s: %v", d.ID, ix, err)
			}
			id := doc.Raw.ID
			if doc.Message != "" {
				var ev struct {
					ID string `json:"id"`
				}
				if err := json.Unmarshal([]byte(doc.Message), &ev); err != nil {
					t.Fatalf("document %s in %s: message is not the event: %v", d.ID, ix, err)
				}
				id = ev.ID
			}
			out[id]++
		}
	}
	return out
}

// bare drops the tenant from the tenant/id keys of want: the SIEM
// emulators are read back by provider id.
func bare(want map[string]bool) map[string]bool {
	out := make(map[string]bool, len(want))
	for k := range want {
		out[k[strings.IndexByte(k, '/')+1:]] = true
	}
	return out
}

// TestElasticsearchKillNineLoop: PingOne into Elasticsearch through the
// real binary, killed with SIGKILL at random moments while the cluster
// answers item 429s and 503s. Every event is indexed exactly once: a batch
// sent again after a kill is answered 409 on its stable _id.
func TestElasticsearchKillNineLoop(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	w := newWorld(t, 2)
	es := emulator.NewElasticsearch(emulator.ElasticsearchOptions{APIKeys: []string{esAPIKey}, Seed: 5})
	srv := httptest.NewServer(es)
	t.Cleanup(srv.Close)
	now := time.Now()
	w.emu.Backlog(w.gen, w.envs[0].ID, w.srv.URL, 4000, now.Add(-time.Hour), now.Add(-10*time.Second))
	w.emu.Backlog(w.gen, w.envs[1].ID, w.srv.URL, 1500, now.Add(-30*time.Minute), now.Add(-10*time.Second))
	es.SetFaults(emulator.ElasticsearchFaults{ThrottleItems: 0.05, ServerError: 0.1})
	cfg := w.config(t, dir, fmt.Sprintf(`  - name: elastic
    elasticsearch: { urls: [%q], api_key: "${env:ES_API_KEY}", batch_size: 300 }
`, srv.URL))
	environ := append(w.environ(), "ES_API_KEY="+esAPIKey)
	logPath := filepath.Join(dir, "auditrelay.log")
	rng := mrand.New(mrand.NewPCG(11, 12))
	kills := 6
	for range kills {
		p := start(t, bin, cfg, environ, logPath)
		time.Sleep(time.Duration(800+rng.IntN(2200)) * time.Millisecond)
		p.kill(t)
	}
	es.SetFaults(emulator.ElasticsearchFaults{})
	p := start(t, bin, cfg, environ, logPath)
	want := bare(w.want())
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if covers(esIDs(t, es), want) {
			break
		}
	}
	p.stop(t)
	got := esIDs(t, es)
	compare(t, "elastic", want, got)
	if ixs := es.Indices(); len(ixs) != 1 || ixs[0] != "logs-ping_one.audit-default" {
		t.Errorf("indexed into %v, want the PingOne integration's data stream only", ixs)
	}
	st := es.Stats()
	if st.Conflicts == 0 {
		t.Logf("no 409 seen: no batch was in flight at a kill")
	}
	t.Logf("%d events, %d kills; cluster: %+v", len(want), kills, st)
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), esAPIKey) || strings.Contains(string(b), "e2e-secret-0001") {
		t.Error("the API key appears in the log")
	}
}

// outageServer serves h on a fixed loopback address that can go away
// (connections refused) and come back, as a SIEM endpoint does in an
// outage.
type outageServer struct {
	h    http.Handler
	addr string

	mu  sync.Mutex
	srv *httptest.Server
}

func newOutageServer(t *testing.T, h http.Handler) *outageServer {
	o := &outageServer{h: h}
	o.up(t)
	o.addr = o.srv.Listener.Addr().String()
	t.Cleanup(func() { o.down() })
	return o
}

func (o *outageServer) url() string { return "http://" + o.addr }

// up listens again on the same address.
func (o *outageServer) up(t *testing.T) {
	t.Helper()
	addr := o.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after Close
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(o.h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	o.mu.Lock()
	o.srv = srv
	o.mu.Unlock()
}

// down closes the listener and every connection: requests are refused.
func (o *outageServer) down() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.srv != nil {
		o.srv.CloseClientConnections()
		o.srv.Close()
		o.srv = nil
	}
}

// TestSIEMOutage: Splunk HEC and Elasticsearch both go away (connections
// refused) for -sink-outage while PingOne events keep arriving, and the
// file sink keeps delivering meanwhile. When they come back, every event
// reaches each of them: none lost, and none twice in Elasticsearch (its
// _id is stable) nor in Splunk (no batch was acknowledged twice).
func TestSIEMOutage(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	w := newWorld(t, 1)
	hec := emulator.NewSplunk(emulator.SplunkOptions{AckDelay: 200 * time.Millisecond}, emulator.SplunkToken{Token: splunkToken, Ack: true})
	es := emulator.NewElasticsearch(emulator.ElasticsearchOptions{APIKeys: []string{esAPIKey}})
	hecSrv, esSrv := newOutageServer(t, hec), newOutageServer(t, es)
	now := time.Now()
	w.emu.Backlog(w.gen, w.envs[0].ID, w.srv.URL, 2000, now.Add(-time.Hour), now.Add(-10*time.Second))
	addr := freePort(t)
	cfg := w.config(t, dir, fmt.Sprintf(`  - name: splunk
    splunk: { url: %q, token: "${env:SPLUNK_HEC_TOKEN}", batch_size: 500 }
  - name: elastic
    elasticsearch: { urls: [%q], api_key: "${env:ES_API_KEY}", batch_size: 500 }
`, hecSrv.url(), esSrv.url()))
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append([]byte(fmt.Sprintf("metrics_listen: %s\n", addr)), b...), 0o600)
	environ := append(w.environ(), "SPLUNK_HEC_TOKEN="+splunkToken, "ES_API_KEY="+esAPIKey)
	logPath := filepath.Join(dir, "auditrelay.log")

	hecSrv.down()
	esSrv.down()
	p := start(t, bin, cfg, environ, logPath)
	defer p.kill(t)
	outageEnd := time.Now().Add(*sinkOutage)
	// events keep arriving during the outage
	for i := 0; time.Now().Before(outageEnd); i++ {
		t0 := time.Now()
		w.emu.Backlog(w.gen, w.envs[0].ID, w.srv.URL, 50, t0.Add(-time.Second), t0)
		time.Sleep(min(time.Second, time.Until(outageEnd)))
	}
	want := w.want()
	// the file sink is not held back by the dead SIEMs
	waitAll(t, dir, want, 60*time.Second)
	for _, sink := range []string{"splunk", "elastic"} {
		if v, ok := metric(addr, fmt.Sprintf(`auditrelay_runner_up{name=%q,runner="sink"}`, sink)); !ok || v != 1 {
			t.Errorf("sink %s: the outage marked its runner down (%v, %v); it must keep retrying", sink, v, ok)
		}
		if v, _ := metric(addr, fmt.Sprintf(`auditrelay_retries_total{class="transient",name=%q,runner="sink"}`, sink)); v == 0 {
			t.Errorf("sink %s: no transient retry counted during the outage", sink)
		}
		if v, _ := metric(addr, fmt.Sprintf(`auditrelay_sink_events_total{sink=%q}`, sink)); v != 0 {
			t.Errorf("sink %s: %v events acknowledged while its endpoint was down", sink, v)
		}
	}
	hecSrv.up(t)
	esSrv.up(t)
	want = bare(want)
	for deadline := time.Now().Add(120 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if covers(hec.IDs(), want) && covers(esIDs(t, es), want) {
			break
		}
	}
	p.stop(t)
	compare(t, "splunk", want, hec.IDs())
	compare(t, "elastic", want, esIDs(t, es))
	t.Logf("%d events over a %v outage; HEC %+v; cluster %+v", len(want), *sinkOutage, hec.Stats(), es.Stats())
}
