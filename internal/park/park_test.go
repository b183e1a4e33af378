package park

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
