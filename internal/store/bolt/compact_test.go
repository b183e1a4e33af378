package bolt

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
)

// spoolBacklog appends pages of padded events and has both sinks deliver
// all but the last keep entries, as after a long outage that healed. It
// returns the position before its first event.
func spoolBacklog(t *testing.T, s *Store, pages, keep int) uint64 {
	t.Helper()
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	base := snap.LastSeq
	pad := strings.Repeat("x", 2000)
	for p := range pages {
		var evs []event.Raw
		for i := range 500 {
			id := fmt.Sprintf("p%03d-%03d", p, i)
			evs = append(evs, event.Raw{Source: "s1", Provider: "pingone", Tenant: "env", ID: id, Time: t0.Add(time.Duration(p) * time.Minute),
				Data: []byte(fmt.Sprintf(`{"id":%q,"pad":%q}`, id, pad))})
		}
		if _, err := s.Append("s1", "fp", source.Page{Events: evs, Next: source.Cursor(fmt.Sprintf("cursor-%d", p)), Watermark: t0}, t0); err != nil {
			t.Fatal(err)
		}
	}
	last := base + uint64(pages*500)
	if err := s.Ack("a", last, 0, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack("b", last-uint64(keep), 0, t0); err != nil {
		t.Fatal(err)
	}
	return base
}

// churnIndex has a source store 6,000 events with long ids, both sinks
// deliver them, and the source is reset: the store file keeps the pages
// its dedup index took, free.
func churnIndex(t *testing.T, s *Store) {
	t.Helper()
	pad := strings.Repeat("i", 500)
	var evs []event.Raw
	for i := range 6000 {
		evs = append(evs, ev("s0", fmt.Sprintf("%s-%05d", pad, i), t0.Add(time.Duration(i)*time.Millisecond)))
	}
	if _, err := s.Append("s0", "fp", source.Page{Events: evs}, t0); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, sink := range []string{"a", "b"} {
		if err := s.Ack(sink, snap.LastSeq, 0, t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ResetSource("s0"); err != nil {
		t.Fatal(err)
	}
}

func TestCompactAtOpenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSync: true, CompactFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetSinks([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	// The spool's data is in segments: what leaves free pages in the
	// store file is a dedup index dropped.
	churnIndex(t, s)
	base := spoolBacklog(t, s, 20, 3) // about 20 MB spooled, 3 entries left
	before, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	fi, _ := os.Stat(filepath.Join(dir, FileName))

	// a crash of an earlier compaction left a partial copy
	if err := os.WriteFile(filepath.Join(dir, FileName+compactSuffix), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{NoSync: true, CompactFree: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Compacted()
	if err != nil {
		t.Fatal(err)
	}
	if res.Before != fi.Size() || res.After <= 0 || res.After > res.Before/4 {
		t.Fatalf("compaction %+v of a %d-byte file: want it at most a quarter of it", res, fi.Size())
	}
	if fi, _ := os.Stat(filepath.Join(dir, FileName)); fi.Size() != res.After {
		t.Fatalf("file is %d bytes, compaction said %d", fi.Size(), res.After)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName+compactSuffix)); !os.IsNotExist(err) {
		t.Fatalf("the compaction copy is still there: %v", err)
	}
	after, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Fatalf("state changed by compaction (-before +after):\n%s", diff)
	}
	// cursor, offsets, remaining entries
	if cur, fp, _ := s.Cursor("s1"); string(cur) != "cursor-19" || fp != "fp" {
		t.Fatalf("cursor = %q %q", cur, fp)
	}
	if off, _ := s.Offset("b"); off != base+9997 {
		t.Fatalf("offset of b = %d, want %d", off, base+9997)
	}
	batch, last, err := s.Read(base+9997, 10, 1<<20, nil)
	if err != nil || len(batch) != 3 || batch[0].ID != "p019-497" || last != base+10000 {
		t.Fatalf("read after compaction = %d events, last %d, %v", len(batch), last, err)
	}
	// every dedup id survived, and the spool sequence goes on
	var evs []event.Raw
	for p := range 20 {
		evs = append(evs, ev("s1", fmt.Sprintf("p%03d-%03d", p, p*7), t0.Add(time.Duration(p)*time.Minute)))
	}
	evs = append(evs, ev("s1", "new", t0))
	r, err := s.Append("s1", "fp", source.Page{Events: evs, Next: source.Cursor("cursor-20")}, t0)
	if err != nil || r.Duplicates != 20 || r.Added != 1 {
		t.Fatalf("append after compaction = %+v, %v; want 20 duplicates, 1 added", r, err)
	}
	batch, last, err = s.Read(base+10000, 10, 1<<20, nil)
	if err != nil || len(batch) != 1 || batch[0].ID != "new" || last != base+10001 {
		t.Fatalf("new entry read as %v at %d, %v; want seq 10001", batch, last, err)
	}
}

func TestNoCompactionWhenLittleIsFree(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.SetSinks([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	spoolBacklog(t, s, 2, 0)
	s.Close()
	s, err := Open(dir, Options{NoSync: true}) // default: 64 MiB free at least
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if res, err := s.Compacted(); res != (CompactResult{}) || err != nil {
		t.Fatalf("compacted %+v, %v with about 2 MB free", res, err)
	}
}

func TestCompactRefusedReadOnly(t *testing.T) {
	dir := t.TempDir()
	open(t, dir).Close()
	s, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Compact(); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("compact of a read-only store = %v", err)
	}
}
