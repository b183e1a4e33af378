package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
)

// TestReplayToANewSink: a setup delivers a backlog to its file sinks and
// the spool deletes what they acknowledged; an Elasticsearch sink is then
// added to the configuration. Replaying a past span to it from the spool
// is refused, naming the missing part; from the archive (the file sink's
// rotated output) exactly that span's events reach it, once; a second
// replay is answered 409 and adds no document. The file sinks' offsets do
// not move: the daemon started again sends them nothing more.
func TestReplayToANewSink(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	w := newWorld(t, 1)
	now := time.Now().UTC()
	w.emu.Backlog(w.gen, w.envs[0].ID, w.srv.URL, 2500, now.Add(-2*time.Hour), now.Add(-time.Minute))
	cfg := w.config(t, dir, "")
	environ := append(w.environ(), "ES_API_KEY="+esAPIKey)
	logPath := filepath.Join(dir, "auditrelay.log")
	p := start(t, bin, cfg, environ, logPath)
	want := w.want()
	waitAll(t, dir, want, 2*time.Minute)
	p.stop(t)
	archiveBefore := sinkIDs(t, filepath.Join(dir, "out", "b.ndjson"))

	es := emulator.NewElasticsearch(emulator.ElasticsearchOptions{APIKeys: []string{esAPIKey}, Seed: 7})
	esSrv := httptest.NewServer(es)
	defer esSrv.Close()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, fmt.Sprintf("  - name: elastic\n    elasticsearch: { urls: [%q], api_key: \"${env:ES_API_KEY}\", format: raw, batch_size: 200 }\n", esSrv.URL)...)
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	from, to := now.Add(-90*time.Minute).Truncate(time.Second), now.Add(-30*time.Minute).Truncate(time.Second)
	args := []string{"replay", "--config", cfg, "--sink", "elastic", "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339)}
	if out, code := run(t, bin, environ, args...); code == 0 || !strings.Contains(out, "is missing") || !strings.Contains(out, "--archive") {
		t.Fatalf("replay of a deleted span from the spool = %d, want a refusal naming the missing part:\n%s", code, out)
	}
	if n := len(es.Indices()); n != 0 {
		t.Fatalf("a refused replay wrote to %d indices", n)
	}

	// The span's events, by their provider time.
	inSpan := map[string]bool{}
	eachLine(t, filepath.Join(dir, "out", "b.ndjson"), func(_ string, line []byte) {
		var l struct {
			ID   string
			Time time.Time
		}
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatal(err)
		}
		if !l.Time.Before(from) && l.Time.Before(to) {
			inSpan[l.ID] = true
		}
	})
	if len(inSpan) == 0 || len(inSpan) == len(want) {
		t.Fatalf("%d of %d events in the span: the test proves nothing", len(inSpan), len(want))
	}
	archive := append(args, "--archive", filepath.Join(dir, "out", "b.ndjson"))
	if out, code := run(t, bin, environ, archive...); code != 0 {
		t.Fatalf("replay from the archive = %d:\n%s", code, out)
	}
	got := esIDs(t, es)
	for id := range inSpan {
		if got[id] != 1 {
			t.Errorf("event %s of the span is in Elasticsearch %d times, want once", id, got[id])
			break
		}
	}
	if len(got) != len(inSpan) {
		t.Errorf("Elasticsearch holds %d events, want the span's %d", len(got), len(inSpan))
	}
	out, code := run(t, bin, environ, archive...)
	if code != 0 {
		t.Fatalf("second replay = %d:\n%s", code, out)
	}
	if again := esIDs(t, es); len(again) != len(inSpan) {
		t.Errorf("after a second replay Elasticsearch holds %d events, want still %d", len(again), len(inSpan))
	}
	for id, n := range esIDs(t, es) {
		if n != 1 {
			t.Errorf("event %s has %d documents after the repeat", id, n)
			break
		}
	}

	// The daemon started again sends the file sinks nothing more; the new
	// sink starts at the oldest entry still in the spool.
	p = start(t, bin, cfg, environ, logPath)
	time.Sleep(3 * time.Second)
	p.stop(t)
	if after := sinkIDs(t, filepath.Join(dir, "out", "b.ndjson")); len(after) != len(archiveBefore) || bytes.Count(mustRead(t, filepath.Join(dir, "out", "a.ndjson")), []byte{'\n'}) != len(want) {
		t.Errorf("the file sinks received more after the replays: %d events in b, want %d", len(after), len(archiveBefore))
	}
	t.Logf("%d events delivered; %d in the span replayed to the new sink, a repeat answered 409", len(want), len(inSpan))
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
