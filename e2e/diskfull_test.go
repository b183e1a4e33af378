package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDiskFull runs the daemon with a file-size limit, so both the store
// and the file sink hit "file too large" while a backlog flows: the log says
// what to do, and after a kill -9 and a restart without the limit every
// event is delivered exactly once. A third sink writes OCSF, whose lines
// (the provider's JSON kept as a string beside the mapped fields) are
// larger than the spool's records: its file reaches the limit before the
// spool's segment does.
func TestDiskFull(t *testing.T) {
	bin := binary(t)
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash for ulimit")
	}
	dir := t.TempDir()
	w := newWorld(t, 1)
	now := time.Now()
	w.emu.Backlog(w.gen, w.envs[0].ID, w.srv.URL, 8000, now.Add(-time.Hour), now.Add(-10*time.Second))
	cfg := w.config(t, dir, fmt.Sprintf("  - name: normalized\n    file: { path: %s, format: ocsf }\n", filepath.Join(dir, "out", "c.ndjson")))
	logPath := filepath.Join(dir, "limited.log")
	lf, _ := os.Create(logPath)
	// 2 MiB per file: the spool and the sinks need several times that
	cmd := exec.Command("bash", "-c", `ulimit -f 2048; exec "$0" run --config "$1"`, bin, cfg)
	cmd.Env = w.environ()
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var logText string
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(logPath)
		logText = string(b)
		if strings.Contains(logText, "file too large") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // keep failing for a while
	cmd.Process.Kill()
	cmd.Wait()
	lf.Close()
	b, _ := os.ReadFile(logPath)
	logText = string(b)
	if !strings.Contains(logText, "file too large") {
		t.Fatalf("the limit was never hit; log:\n%s", tail(logText))
	}
	for _, want := range []string{"cannot store polled events", "file: write"} {
		if !strings.Contains(logText, want) {
			t.Errorf("the log never says %q: that path was not exercised; log:\n%s", want, tail(logText))
		}
	}
	if !strings.Contains(logText, "free disk space") {
		t.Errorf("the errors do not tell the operator what to do; log:\n%s", tail(logText))
	}
	p := start(t, bin, cfg, w.environ(), filepath.Join(dir, "after.log"))
	want := w.want()
	waitAll(t, dir, want, 60*time.Second)
	p.stop(t)
	compare(t, "archive", want, sinkIDs(t, filepath.Join(dir, "out", "a.ndjson")))
	compare(t, "second", want, sinkIDs(t, filepath.Join(dir, "out", "b.ndjson")))
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}
