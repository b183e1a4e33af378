package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
)

const (
	entraTenant = "00000000-0000-4000-8000-00000000e1d0"
	entraClient = "00000000-0000-4000-8000-0000000a0001"
	entraSecret = "entra-client-s3cret-value"
)

// entraStreams maps the emulator's streams to the source's stream keys.
var entraStreams = map[string]string{
	emulator.EntraDirectoryAudits: "directory_audits",
	emulator.EntraSignIns:         "sign_ins",
	emulator.EntraProvisioning:    "provisioning",
}

// entraFileIDs counts "<stream>/<id>" in a file sink's files, checking each
// line's envelope against its raw event.
func entraFileIDs(t *testing.T, path string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	eachLine(t, path, func(f string, line []byte) {
		var l struct {
			Source, ID string
			Raw        struct {
				ID string `json:"id"`
			} `json:"raw"`
		}
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatalf("%s: malformed line: %v", f, err)
		}
		stream, ok := strings.CutPrefix(l.Source, "entra-contoso/")
		if !ok || l.ID != l.Raw.ID {
			t.Fatalf("%s: envelope %s/%s does not match the raw event %s", f, l.Source, l.ID, l.Raw.ID)
		}
		counts[stream+"/"+l.ID]++
	})
	return counts
}

// TestEntraKillNineLoop kills the binary with SIGKILL at random moments
// while Graph serves three streams: a backlog, a burst larger than a page
// at one instant, live events visible up to 2 s late (within settle_delay
// + overlap), short pages, throttling and faults (5xx, truncated pages,
// revoked tokens, refused skiptokens). Afterwards the file holds every
// event of every stream exactly once, each under its stream's source.
func TestEntraKillNineLoop(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	emu := emulator.NewEntra(emulator.EntraOptions{RateLimit: 50, RateWindow: 10 * time.Second, ShortPages: 0.1, TokenTTL: 20 * time.Second, Seed: 7})
	emu.AddTenant(emulator.EntraTenant{ID: entraTenant, Premium: true})
	emu.AddApp(emulator.EntraApp{TenantID: entraTenant, ClientID: entraClient, ClientSecret: entraSecret,
		Permissions: []string{emulator.EntraAuditLogRead, emulator.EntraDirectoryRead}})
	srv := httptest.NewServer(emu)
	defer srv.Close()
	g := emulator.NewEntraGenerator(entraTenant, 41)
	now := time.Now()
	for st := range entraStreams {
		emu.Backlog(g, entraTenant, st, 1500, now.Add(-50*time.Minute), now.Add(-time.Minute), 0)
	}
	burst := make([]emulator.EntraEvent, 1200)
	at := now.Add(-20 * time.Minute)
	for i := range burst {
		burst[i] = g.Event(emulator.EntraSignIns, at)
		burst[i].Time = at
	}
	emu.Add(entraTenant, emulator.EntraSignIns, burst...)
	emu.SetFaults(emulator.EntraFaults{ServerError: 0.1, Truncate: 0.1, Throttle: 0.05, Early401: 0.05, RefuseSkipToken: 0.15, RetryAfter: time.Second})
	live, stopLive := context.WithCancel(context.Background())
	var gens sync.WaitGroup
	streams := []string{emulator.EntraDirectoryAudits, emulator.EntraSignIns, emulator.EntraProvisioning}
	gens.Go(func() {
		emu.Run(live, emulator.NewEntraGenerator(entraTenant, 42), entraTenant, streams, 10, 2*time.Second)
	})

	cfg := fmt.Sprintf(`data_dir: %s
log: {level: debug}
sources:
  - name: entra-contoso
    entra:
      tenant_id: %s
      client_id: %s
      client_secret: "${env:ENTRA_CLIENT_SECRET}"
      streams: [directory_audits, sign_ins, provisioning]
      authority_url: %s
      graph_url: %s
      settle_delay: 2s
      overlap: 3s
      lookback: 1h
      page_size: 500
      poll_interval: 1s
      rate_limit: 0.5
sinks:
  - name: archive
    sources: [entra-contoso]
    file: { path: %s, batch_size: 400 }
`, filepath.Join(dir, "data"), entraTenant, entraClient, srv.URL, srv.URL, filepath.Join(dir, "out", "a.ndjson"))
	cfgPath := filepath.Join(dir, "auditrelay.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	environ := append(os.Environ(), "ENTRA_CLIENT_SECRET="+entraSecret)
	logPath := filepath.Join(dir, "auditrelay.log")
	kills := 6
	if *soak {
		kills = 40
	}
	rng := mrand.New(mrand.NewPCG(7, 8))
	for range kills {
		p := start(t, bin, cfgPath, environ, logPath)
		time.Sleep(time.Duration(1000+rng.IntN(3000)) * time.Millisecond)
		p.kill(t)
	}
	stopLive()
	gens.Wait()
	emu.SetFaults(emulator.EntraFaults{})
	p := start(t, bin, cfgPath, environ, logPath)
	want := map[string]bool{}
	for st, key := range entraStreams {
		for _, id := range emu.Events(entraTenant, st) {
			want[key+"/"+id] = true
		}
	}
	file := filepath.Join(dir, "out", "a.ndjson")
	for deadline := time.Now().Add(4 * time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if covers(entraFileIDs(t, file), want) {
			break
		}
	}
	p.stop(t)
	compare(t, "archive", want, entraFileIDs(t, file))
	st := emu.Stats()
	t.Logf("%d events in 3 streams, %d kills; Graph: %+v", len(want), kills, st)
	faults := 0
	for _, s := range st.Streams {
		faults += int(s.Faults)
	}
	if faults == 0 {
		t.Error("no fault was injected; the test proves less than it claims")
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "entra-contoso/sign_ins") || strings.Contains(string(b), entraSecret) {
		t.Error("the log does not name the stream's source, or it quotes the secret")
	}
}
