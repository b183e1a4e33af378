package park

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
)

func TestKeep(t *testing.T) {
	p := Path(t.TempDir(), "sentinel")
	if !strings.HasSuffix(p, filepath.Join("parked", "sentinel.ndjson")) {
		t.Fatalf("path %s", p)
	}
	f := New(p)
	at := time.Date(2026, 11, 25, 1, 2, 3, 0, time.UTC)
	if err := f.Keep(&event.Raw{Source: "s", Provider: "pingone", Tenant: "t", ID: "a", Time: at, Data: json.RawMessage(`{"id":"a","big":"x"}`)}, "too large: 2 MB"); err != nil {
		t.Fatal(err)
	}
	if err := f.Keep(&event.Raw{Source: "s", ID: "b", Time: at, Data: json.RawMessage("{\n")}, "refused"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines:\n%s", len(lines), b)
	}
	want := `{"source":"s","provider":"pingone","tenant":"t","id":"a","time":"2026-11-25T01:02:03.000Z","raw":{"id":"a","big":"x"},"parked_reason":"too large: 2 MB"}`
	if lines[0] != want {
		t.Errorf("line 1 =\n%s\nwant\n%s", lines[0], want)
	}
	var l struct {
		Source       string `json:"source"`
		ID           string `json:"id"`
		RawText      string `json:"raw_text"`
		ParkedReason string `json:"parked_reason"`
	}
	dec := json.NewDecoder(strings.NewReader(lines[1]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		t.Fatalf("line 2 = %s: %v", lines[1], err)
	}
	if l.Source != "s" || l.ID != "b" || l.RawText != "{\n" || l.ParkedReason != "refused" {
		t.Errorf("line 2 = %s", lines[1])
	}
}

func TestKeepRecord(t *testing.T) {
	p := Path(t.TempDir(), "file")
	if err := New(p).KeepRecord(7, []byte{9, 0, 0xff}, "malformed spool record"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"spool_seq":7,"record":"CQD/","parked_reason":"malformed spool record"}` + "\n"; string(b) != want {
		t.Fatalf("line =\n%s\nwant\n%s", b, want)
	}
}

func TestRotation(t *testing.T) {
	p := Path(t.TempDir(), "sekoia")
	f := New(p)
	f.maxSize, f.maxFiles = 1000, 2
	big := strings.Repeat("x", 300)
	for i := range 12 {
		ev := &event.Raw{Source: "s", ID: fmt.Sprintf("id-%02d", i), Data: json.RawMessage(fmt.Sprintf(`{"pad":%q}`, big))}
		if err := f.Keep(ev, "too large"); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	for _, name := range []string{p + ".2", p + ".1", p} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("missing %s: %v", name, err)
		}
		if len(b) > 1000 {
			t.Errorf("%s is %d bytes, over the limit", name, len(b))
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var k struct{ ID string }
			if err := json.Unmarshal([]byte(l), &k); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			all = append(all, k.ID)
		}
	}
	if _, err := os.Stat(p + ".3"); err == nil {
		t.Error("kept more than 2 rotated files")
	}
	// 2 lines of ~380 bytes per file: 0..5 rotated out, 6..11 kept in order
	if got := strings.Join(all, ","); got != "id-06,id-07,id-08,id-09,id-10,id-11" {
		t.Errorf("ids across files = %s", got)
	}
}

func TestEvent(t *testing.T) {
	ev := &event.Raw{Source: "s", ID: "x", Data: json.RawMessage(`{"id":"x"}`)}
	where, err := Event(nil, "sentinel: park event", ev, "too large")
	if err != nil || where != NotKept {
		t.Errorf("Event without a keeper = %q, %v", where, err)
	}
	p := Path(t.TempDir(), "sentinel")
	where, err = Event(New(p), "sentinel: park event", ev, "too large")
	if err != nil || where != p {
		t.Fatalf("Event = %q, %v; want %q", where, err, p)
	}
	// a file where the parked directory should be
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "parked"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Event(New(Path(dir, "sentinel")), "sentinel: park event", ev, "too large")
	if class, _ := delivery.ClassOf(err); class != delivery.Transient || !strings.Contains(err.Error(), "sentinel: park event x: park:") ||
		!strings.Contains(err.Error(), "free disk space or fix the permissions of "+filepath.Join(dir, "parked")) {
		t.Errorf("Event into an unwritable directory = %v (class %v)", err, class)
	}
}

func TestLines(t *testing.T) {
	ev := &event.Raw{Source: "s", ID: "a", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Data: json.RawMessage(`{"id":"a"}`)}
	if got, want := string(EventLine(ev, "r")), `{"source":"s","provider":"","tenant":"","id":"a","time":"2026-01-02T03:04:05.000Z","raw":{"id":"a"},"parked_reason":"r"}`+"\n"; got != want {
		t.Errorf("EventLine =\n%s\nwant\n%s", got, want)
	}
	if got, want := string(RecordLine(3, []byte{1}, "bad")), `{"spool_seq":3,"record":"AQ==","parked_reason":"bad"}`+"\n"; got != want {
		t.Errorf("RecordLine = %s, want %s", got, want)
	}
}

func TestEntryJSON(t *testing.T) {
	at := time.Date(2026, 12, 2, 14, 0, 0, 5000, time.UTC)
	for _, c := range []struct {
		e    Entry
		want string
	}{
		{Entry{Sink: "a", Line: []byte(`{"spool_seq":1,"parked_reason":"x"}`)}, `{"sink":"a","spool_seq":1,"parked_reason":"x"}`},
		{Entry{Sink: "b", ParkedAt: at, Line: []byte(`{"id":"q"}`)}, `{"sink":"b","parked_at":"2026-12-02T14:00:00.000005Z","id":"q"}`},
		{Entry{Sink: "c", Line: []byte(`{}`)}, `{"sink":"c"}`},
		{Entry{Sink: "d", Line: []byte(`{"source":"s","id":"tor`)}, `{"sink":"d","unreadable_line":"{\"source\":\"s\",\"id\":\"tor"}`},
	} {
		if got := string(c.e.AppendJSON(nil)); got != c.want+"\n" {
			t.Errorf("%+v:\n got %s\nwant %s", c.e, got, c.want)
		}
	}
}

func TestReadFiles(t *testing.T) {
	dir := t.TempDir()
	a := New(Path(dir, "alpha"))
	a.maxSize, a.maxFiles = 200, 5
	for i := range 6 {
		if err := a.Keep(&event.Raw{Source: "s", ID: fmt.Sprintf("a%d", i), Data: json.RawMessage(`{"pad":"` + strings.Repeat("p", 80) + `"}`)}, "r"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(Path(dir, "alpha") + ".2"); err != nil {
		t.Fatalf("the test wants rotated files: %v", err)
	}
	if err := New(Path(dir, "beta")).KeepRecord(9, []byte("x"), "bad"); err != nil {
		t.Fatal(err)
	}
	// a torn last line, as a crash in the middle of a write leaves
	f, err := os.OpenFile(Path(dir, "beta"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"spool_seq":10,"rec`)
	f.Close()
	os.WriteFile(filepath.Join(dir, "parked", "notes.txt"), []byte("x\n"), 0o600)
	// a sink whose name looks like a rotated file
	if err := New(Path(dir, "c.ndjson.1")).KeepRecord(1, []byte("y"), "bad"); err != nil {
		t.Fatal(err)
	}
	list := func(sink string) []string {
		var out []string
		if err := ReadFiles(dir, sink, func(e Entry) error {
			var k struct {
				ID  string `json:"id"`
				Seq int    `json:"spool_seq"`
			}
			json.Unmarshal(e.Line, &k)
			out = append(out, fmt.Sprintf("%s:%s%d", e.Sink, k.ID, k.Seq))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got, want := strings.Join(list(""), ","), "alpha:a00,alpha:a10,alpha:a20,alpha:a30,alpha:a40,alpha:a50,beta:9,beta:0,c.ndjson.1:1"; got != want {
		t.Errorf("all sinks: %s, want %s", got, want)
	}
	if got, want := strings.Join(list("beta"), ","), "beta:9,beta:0"; got != want {
		t.Errorf("beta: %s, want %s", got, want)
	}
	if got := list("gamma"); len(got) != 0 {
		t.Errorf("an unknown sink lists %v", got)
	}
	if err := ReadFiles(t.TempDir(), "", func(Entry) error { return fmt.Errorf("called") }); err != nil {
		t.Errorf("no parked directory: %v", err)
	}
}
