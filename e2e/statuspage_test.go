package e2e

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/daemon"
	"github.com/auditrelay/auditrelay/internal/secret/secrettest"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the status page's screenshot to docs/status-page.png")

// chromium returns Debian's chromium, skipping the test without it
// (failing under CI=true, where .ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed: .ci/run installs it (apt-get install chromium)")
	}
	t.Skip("chromium is not installed: apt-get install chromium to run the status page's browser test")
	return ""
}

// headless runs chromium headless with a fresh profile and no network of
// its own besides the page's, and returns its standard output.
func headless(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	profile := t.TempDir()
	all := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir=" + profile}, args...)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, all...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("chromium %v did not finish within 2 minutes\n%s", args, stderr.String())
	}
	return stdout.Bytes()
}

// rowCells returns the text of the cells of the table row with attribute
// attr="name" in a dumped DOM, by their data-field.
func rowCells(t *testing.T, dom, attr, name string) map[string]string {
	t.Helper()
	row := regexp.MustCompile(`(?s)<tr ` + attr + `="` + regexp.QuoteMeta(name) + `"[^>]*>(.*?)</tr>`).FindStringSubmatch(dom)
	if row == nil {
		t.Fatalf("the page shows no row %s=%q", attr, name)
	}
	cells := map[string]string{}
	for _, m := range regexp.MustCompile(`(?s)<td[^>]*? data-field="([a-z_]+)"[^>]*>(.*?)</td>`).FindAllStringSubmatch(row[1], -1) {
		cells[m[1]] = html.UnescapeString(m[2])
	}
	return cells
}

// TestStatusPage loads the status page of the running daemon in headless
// Chromium and checks what it renders against `auditrelay status --json`:
// a source that caught up, a source halted on a wrong secret (shown at the
// top with its fix), both sinks and the spool; no secret is on the page.
func TestStatusPage(t *testing.T) {
	bin := binary(t)
	browser := chromium(t)
	dir := t.TempDir()
	w := newWorld(t, 2)
	now := time.Now()
	w.emu.Backlog(w.gen, w.envs[0].ID, w.srv.URL, 400, now.Add(-time.Hour), now.Add(-time.Minute))
	addr := freePort(t)
	cfg := w.config(t, dir, "")
	b, _ := os.ReadFile(cfg)
	// Caught up, a source waits an hour for its next poll: the state the
	// page and the command read stays still.
	b = bytes.ReplaceAll(b, []byte("poll_interval: 200ms"), []byte("poll_interval: 1h"))
	b = append([]byte(fmt.Sprintf("metrics_listen: %s\n", addr)), b...)
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	const wrong = "wrong-secret-9d1e44a0"
	environ := append(w.environ(), "SECRET_2="+wrong) // the later value wins
	p := start(t, bin, cfg, environ, filepath.Join(dir, "auditrelay.log"))
	defer p.kill(t)

	var st daemon.Status
	deadline := time.Now().Add(time.Minute)
	for {
		cmd := exec.Command(bin, "status", "--config", cfg, "--json")
		cmd.Env = environ
		out, err := cmd.Output()
		st = daemon.Status{}
		if err == nil && json.Unmarshal(out, &st) == nil && st.Running && len(st.Halts) == 1 &&
			len(st.Store.Sinks) == 2 && st.Store.Sinks[0].Delivered == 400 && st.Store.Sinks[1].Delivered == 400 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not deliver the backlog and halt the bad source within a minute: %+v (%v)", st, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	url := "http://" + addr + "/"
	dom := string(headless(t, browser, "--virtual-time-budget=4000", "--dump-dom", url))
	if !strings.Contains(dom, `data-rendered="1"`) {
		t.Fatalf("the page's script did not render the status:\n%s", dom)
	}
	src := st.Store.Sources[0]
	cells := rowCells(t, dom, "data-source", src.Name)
	want := map[string]string{
		"provider":   "pingone",
		"tenant":     w.envs[0].ID,
		"watermark":  src.Watermark.UTC().Truncate(time.Second).Format(time.RFC3339),
		"events":     strconv.FormatUint(src.Events, 10),
		"duplicates": strconv.FormatUint(src.Duplicates, 10),
		"gaps":       "none",
		"last_error": "-",
	}
	for k, v := range want {
		if cells[k] != v {
			t.Errorf("source %s: the page shows %s %q, status --json says %q", src.Name, k, cells[k], v)
		}
	}
	if !strings.Contains(cells["lag_history"], "<polyline") {
		t.Errorf("source %s: no lag sparkline: %q", src.Name, cells["lag_history"])
	}
	for _, s := range st.Store.Sinks {
		cells := rowCells(t, dom, "data-sink", s.Name)
		for k, v := range map[string]string{"backlog": strconv.FormatUint(s.Backlog, 10), "offset": strconv.FormatUint(s.Offset, 10),
			"delivered": strconv.FormatUint(s.Delivered, 10), "parked": "0", "last_error": "-"} {
			if cells[k] != v {
				t.Errorf("sink %s: the page shows %s %q, status --json says %q", s.Name, k, cells[k], v)
			}
		}
	}
	halt := regexp.MustCompile(`(?s)<li data-runner="source/env-2">(.*?)</li>`).FindStringSubmatch(dom)
	if halt == nil {
		t.Fatalf("the page does not show the halted source at the top:\n%s", dom)
	}
	text := html.UnescapeString(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(halt[1], " "))
	if h := st.Halts[0]; h.Fix == "" || !strings.Contains(text, "Source env-2 is halted") || !strings.Contains(text, "Fix: "+h.Fix) {
		t.Errorf("the halted source reads %q; want it named with its fix %q", text, h.Fix)
	}
	if i, j := strings.Index(dom, `id="halts"`), strings.Index(dom, `id="sources"`); i < 0 || i > j {
		t.Error("the halted runners are not shown above the sources")
	}
	spool := regexp.MustCompile(`id="spool-text" data-bytes="(\d+)" data-max="(\d+)"`).FindStringSubmatch(dom)
	if spool == nil || spool[1] != strconv.FormatInt(st.Store.SpoolBytes, 10) || spool[2] != strconv.FormatInt(st.SpoolMaxBytes, 10) {
		t.Errorf("spool on the page %v, status --json says %d of %d bytes", spool, st.Store.SpoolBytes, st.SpoolMaxBytes)
	}
	for i, e := range w.envs {
		secrets := append(secrettest.Forms(e.ClientID, e.ClientSecret), secrettest.Forms(e.ClientID, wrong)...)
		for _, s := range secrets {
			if strings.Contains(dom, s) {
				t.Errorf("the secret of env-%d (%q) is on the page", i+1, s)
			}
		}
	}

	shot := filepath.Join(t.TempDir(), "status-page.png")
	headless(t, browser, "--virtual-time-budget=4000", "--hide-scrollbars", "--window-size=1280,900", "--screenshot="+shot, url)
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("no screenshot: %v", err)
	}
	if *updateScreenshot {
		if err := os.WriteFile(filepath.Join("..", "docs", "status-page.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
