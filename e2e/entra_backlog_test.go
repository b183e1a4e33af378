package e2e

import (
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
)

var entraBacklog = flag.Bool("entra-backlog", false, "measure the Entra ID backlog (20k events) against its targets")

// TestEntraBacklog measures the binary draining 20,000 directory audits
// from the Graph emulator at rate_limit 0.45 and page_size 1000 (Graph's 5
// requests per 10 s): the time and the requests must stay within 10 % and
// 5 % of what the rate and page size allow, and the peak RSS under 64 MiB.
// Run with -entra-backlog on a quiet machine.
func TestEntraBacklog(t *testing.T) {
	if !*entraBacklog {
		t.Skip("run with -entra-backlog")
	}
	const events, pageSize, rateLimit = 20_000, 1000, 0.45
	bin := binary(t)
	dir := t.TempDir()
	emu := emulator.NewEntra(emulator.EntraOptions{RateLimit: 5, RateWindow: 10 * time.Second})
	emu.AddTenant(emulator.EntraTenant{ID: entraTenant, Premium: true})
	emu.AddApp(emulator.EntraApp{TenantID: entraTenant, ClientID: entraClient, ClientSecret: entraSecret,
		Permissions: []string{emulator.EntraAuditLogRead, emulator.EntraDirectoryRead}})
	srv := httptest.NewServer(emu)
	defer srv.Close()
	now := time.Now()
	emu.Backlog(emulator.NewEntraGenerator(entraTenant, 51), entraTenant, emulator.EntraDirectoryAudits, events, now.Add(-50*time.Minute), now.Add(-20*time.Minute), 0)
	out := filepath.Join(dir, "out.ndjson")
	cfg := fmt.Sprintf(`data_dir: %s
sources:
  - name: entra-contoso
    entra:
      tenant_id: %s
      client_id: %s
      client_secret: "${env:ENTRA_CLIENT_SECRET}"
      streams: [directory_audits]
      authority_url: %s
      graph_url: %s
      lookback: 1h
      page_size: %d
      rate_limit: %v
sinks:
  - name: archive
    file: { path: %s, max_size: 1GiB }
`, filepath.Join(dir, "data"), entraTenant, entraClient, srv.URL, srv.URL, pageSize, rateLimit, out)
	cfgPath := filepath.Join(dir, "auditrelay.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	lines := &lineCounter{path: out}
	started := time.Now()
	p := start(t, bin, cfgPath, append(os.Environ(), "ENTRA_CLIENT_SECRET="+entraSecret), filepath.Join(dir, "auditrelay.log"))
	var elapsed time.Duration
	var st emulator.EntraStats
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if lines.count() >= events {
			elapsed = time.Since(started)
			st = emu.Stats()
			break
		}
	}
	peak := vmHWM(t, p.cmd.Process.Pid)
	p.stop(t)
	got := entraFileIDs(t, out)
	if len(got) != events {
		t.Fatalf("%d distinct events in the file, want %d", len(got), events)
	}
	requests := st.Streams[emulator.EntraDirectoryAudits].Requests
	// The fewest requests: one per full page, and the window's last page
	// (which has no nextLink) is one of them.
	minRequests := int64((events + pageSize - 1) / pageSize)
	minTime := time.Duration(float64(minRequests) / rateLimit * float64(time.Second))
	t.Logf("delivered %d events in %v (minimum %v, ×%.3f); %d requests (minimum %d, ×%.3f); %d throttled; %d token requests; peak RSS %.1f MiB",
		events, elapsed.Round(10*time.Millisecond), minTime, elapsed.Seconds()/minTime.Seconds(), requests, minRequests,
		float64(requests)/float64(minRequests), st.Streams[emulator.EntraDirectoryAudits].Throttled, st.TokenRequests, peak)
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
