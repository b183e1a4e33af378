package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/sink/file"
	"github.com/auditrelay/auditrelay/internal/source"
)

// replayT0 is when the replay tests' events happen, one a minute.
var replayT0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// replayWorld writes a configuration with source p1 and two file sinks,
// archive and fresh, and a store whose spool held ten events of p1 (e0 at
// replayT0, e1 a minute later, …), of which both sinks acknowledged the
// first three: the spool deleted them.
func replayWorld(t *testing.T) (cfgPath, dir string) {
	t.Helper()
	dir = t.TempDir()
	cfg := fmt.Sprintf(`data_dir: %[1]s/data
sources:
  - name: p1
    pingone: { environment_id: %[2]s, client_id: client-1, client_secret: s, api_url: "http://127.0.0.1:1", auth_url: "http://127.0.0.1:1" }
sinks:
  - name: archive
    sources: [p1]
    file: { path: %[1]s/archive.ndjson }
  - name: fresh
    sources: [p1]
    file: { path: %[1]s/fresh.ndjson }
`, dir, opsEnvironment)
	cfgPath = filepath.Join(dir, "auditrelay.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, filepath.Join(dir, "data"))
	defer st.Close()
	if err := st.SetSinks([]string{"archive", "fresh"}); err != nil {
		t.Fatal(err)
	}
	var evs []event.Raw
	for i := range 10 {
		evs = append(evs, replayEvent(i))
	}
	if _, err := st.Append("p1", "fp", source.Page{Events: evs, Next: source.Cursor("c"), Watermark: replayT0.Add(10 * time.Minute)}, replayT0); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"archive", "fresh"} {
		if err := st.Ack(s, 3, 3, replayT0); err != nil {
			t.Fatal(err)
		}
	}
	return cfgPath, dir
}

func replayEvent(i int) event.Raw {
	id := fmt.Sprintf("e%d", i)
	return event.Raw{Source: "p1", Provider: "pingone", Tenant: opsEnvironment, ID: id, Time: replayT0.Add(time.Duration(i) * time.Minute),
		Data: []byte(fmt.Sprintf(`{"id":%q}`, id))}
}

func lineIDs(t *testing.T, path string) []string {
	t.Helper()
	lines, err := file.ReadLines(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range lines {
		ids = append(ids, l.ID)
	}
	return ids
}

func at(min int) string { return replayT0.Add(time.Duration(min) * time.Minute).Format(time.RFC3339) }

// TestReplaySpool: a span the spool holds goes to the sink exactly once
// per replay, the sink's offset stays; a span partly deleted is refused
// with the source and the missing part, and nothing is sent.
func TestReplaySpool(t *testing.T) {
	cfg, dir := replayWorld(t)
	out := filepath.Join(dir, "fresh.ndjson")
	_, errs, code := runMain(t, "replay", "--config", cfg, "--sink", "fresh", "--from", at(3), "--to", at(7))
	if code != exitOK {
		t.Fatalf("replay: exit %d: %s", code, errs)
	}
	if got, want := lineIDs(t, out), []string{"e3", "e4", "e5", "e6"}; !slices.Equal(got, want) {
		t.Fatalf("fresh holds %v, want %v", got, want)
	}
	if !strings.Contains(errs, "replay to fresh: 4 events of p1") || !strings.Contains(errs, "replay to fresh done: 4 events sent") {
		t.Errorf("replay output:\n%s", errs)
	}
	st := openStore(t, filepath.Join(dir, "data"))
	off, err := st.Offset("fresh")
	st.Close()
	if err != nil || off != 3 {
		t.Fatalf("offset of fresh = %d, %v; want 3, unchanged", off, err)
	}

	_, errs, code = runMain(t, "replay", "--config", cfg, "--sink", "fresh", "--from", at(1), "--to", at(5))
	if code != exitUsage {
		t.Fatalf("replay of a deleted span: exit %d, want %d: %s", code, exitUsage, errs)
	}
	want := "source p1: the spool holds its events after 2026-11-29T10:02:00Z; 2026-11-29T10:01:00Z–2026-11-29T10:02:00Z is missing; pass --archive with the file sink's output for that span"
	if !strings.Contains(errs, want) {
		t.Errorf("refusal:\n%s\nwant it to say:\n%s", errs, want)
	}
	if got := lineIDs(t, out); len(got) != 4 {
		t.Errorf("a refused replay sent something: fresh holds %v", got)
	}
}

// TestReplayArchive: an archive in rotated files is read oldest first; a
// span beyond it is refused; a last line cut short is an error naming it,
// before anything is sent.
func TestReplayArchive(t *testing.T) {
	cfg, dir := replayWorld(t)
	arch := filepath.Join(dir, "archive.ndjson")
	write := func(path string, from, to int, tail string) {
		var b []byte
		for i := from; i < to; i++ {
			ev := replayEvent(i)
			var err error
			if b, err = event.AppendLine(b, &ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(path, append(b, tail...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(arch+".2", 0, 3, "")
	write(arch+".1", 3, 6, "")
	write(arch, 6, 10, "")
	out := filepath.Join(dir, "fresh.ndjson")
	_, errs, code := runMain(t, "replay", "--config", cfg, "--sink", "fresh", "--from", at(1), "--to", at(8), "--archive", arch)
	if code != exitOK {
		t.Fatalf("replay: exit %d: %s", code, errs)
	}
	if got, want := lineIDs(t, out), []string{"e1", "e2", "e3", "e4", "e5", "e6", "e7"}; !slices.Equal(got, want) {
		t.Fatalf("fresh holds %v, want %v", got, want)
	}

	_, errs, code = runMain(t, "replay", "--config", cfg, "--sink", "fresh", "--from", at(5), "--to", at(12), "--archive", arch)
	if code != exitUsage || !strings.Contains(errs, "source p1: the archive holds its events from 2026-11-29T10:00:00Z to 2026-11-29T10:09:00Z; 2026-11-29T10:09:00.001Z–2026-11-29T10:12:00Z is missing") {
		t.Fatalf("replay beyond the archive: exit %d: %s", code, errs)
	}

	write(arch, 6, 10, `{"source":"p1","provider":"pingone","id":"e10","ti`)
	_, errs, code = runMain(t, "replay", "--config", cfg, "--sink", "fresh", "--from", at(0), "--to", at(3), "--archive", arch)
	if code != exitUsage || !strings.Contains(errs, arch+":5: the last line is cut short") || !strings.Contains(errs, "nothing was sent") {
		t.Fatalf("replay of a cut archive: exit %d: %s", code, errs)
	}
	if got := lineIDs(t, out); len(got) != 7 {
		t.Errorf("a refused replay sent something: fresh holds %v", got)
	}
}
