package bolt

import (
	"errors"
	"fmt"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store"
)

// page returns n events of src with ids prefix-0 ... prefix-(n-1).
func page(src, prefix string, n int) []event.Raw {
	evs := make([]event.Raw, n)
	for i := range evs {
		evs[i] = ev(src, fmt.Sprintf("%s-%d", prefix, i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	return evs
}

// ids returns the ids of evs.
func ids(evs []event.Raw) []string {
	out := make([]string, len(evs))
	for i := range evs {
		out[i] = evs[i].ID
	}
	return out
}

// TestBatchEntries checks that a page is one spool entry holding one
// position per event, read across entries and from the middle of one,
// that an entry goes only once every sink passed its last event, and that
// one-event entries of format 2 read beside them.
func TestBatchEntries(t *testing.T) {
	s := open(t, t.TempDir())
	if err := s.SetSinks([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	legacy := putRaw(t, s, store.AppendRecord(nil, new(ev("s", "legacy", t0.Add(-time.Hour)))))
	if legacy != 1 {
		t.Fatalf("legacy entry at %d", legacy)
	}
	for i, prefix := range []string{"p", "q"} {
		res, err := s.Append("s", "fp", source.Page{Events: page("s", prefix, 5)}, t0)
		if err != nil || res.Added != 5 {
			t.Fatalf("append %d = %+v, %v", i, res, err)
		}
	}
	entries := 0
	s.db.View(func(tx *bbolt.Tx) error { entries = tx.Bucket(bSpool).Stats().KeyN; return nil })
	if entries != 3 {
		t.Fatalf("%d spool entries, want 3 (one legacy, two pages)", entries)
	}
	if s.SpoolCount() != 11 {
		t.Fatalf("spool count %d, want 11", s.SpoolCount())
	}
	batch, last, err := s.Read(0, 3, 1<<20, nil)
	if err != nil || last != 3 || fmt.Sprint(ids(batch)) != "[legacy p-0 p-1]" {
		t.Fatalf("read from 0 = %v, last %d, %v", ids(batch), last, err)
	}
	batch, last, err = s.Read(3, 100, 1<<20, nil)
	if err != nil || last != 11 || fmt.Sprint(ids(batch)) != "[p-2 p-3 p-4 q-0 q-1 q-2 q-3 q-4]" {
		t.Fatalf("read from 3 = %v, last %d, %v", ids(batch), last, err)
	}
	if batch, last, _ = s.Read(9, 100, 1<<20, nil); last != 11 || fmt.Sprint(ids(batch)) != "[q-3 q-4]" {
		t.Fatalf("read from 9 = %v, last %d", ids(batch), last)
	}
	// A sink added now starts after what every sink passed.
	if err := s.SetSinks([]string{"a", "b", "c"}); err != nil {
		t.Fatal(err)
	}
	if off, _ := s.Offset("c"); off != 0 {
		t.Fatalf("new sink c at %d before any ack, want 0", off)
	}
	if err := s.SetSinks([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	// b passes into the first page only: the legacy entry goes, the page
	// stays, but the spool counts only what b has not passed.
	if err := s.Ack("a", 11, 11, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack("b", 4, 4, t0); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if snap.SpoolCount != 7 || snap.Sinks[1].Name != "b" || snap.Sinks[1].Backlog != 7 || snap.Sinks[0].Backlog != 0 {
		t.Fatalf("after acks: spool count %d, backlogs %+v", snap.SpoolCount, snap.Sinks)
	}
	if batch, last, _ = s.Read(4, 100, 1<<20, nil); last != 11 || len(batch) != 7 || batch[0].ID != "p-3" {
		t.Fatalf("read from 4 after the legacy entry went = %v, last %d", ids(batch), last)
	}
	if err := s.SetSinks([]string{"a", "b", "c"}); err != nil {
		t.Fatal(err)
	}
	if off, _ := s.Offset("c"); off != 4 {
		t.Fatalf("new sink c at %d, want 4: where every sink has passed", off)
	}
	if err := s.SetSinks([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack("b", 6, 2, t0); err != nil {
		t.Fatal(err)
	}
	entries = 0
	s.db.View(func(tx *bbolt.Tx) error { entries = tx.Bucket(bSpool).Stats().KeyN; return nil })
	if s.SpoolCount() != 5 || entries != 1 {
		t.Fatalf("spool count %d, %d entries after both passed the first page, want 5 in 1", s.SpoolCount(), entries)
	}
	if snap, _ := s.Snapshot(); !snap.DeletedThrough.Through("s").Equal(t0.Add(4 * time.Millisecond)) {
		t.Fatalf("deleted through %v, want the first page's latest event", snap.DeletedThrough)
	}
	// maxBytes ends a batch inside an entry, but never before its first event.
	if batch, last, _ = s.Read(6, 100, 1, nil); last != 7 || len(batch) != 1 || batch[0].ID != "q-0" {
		t.Fatalf("read with maxBytes 1 = %v, last %d", ids(batch), last)
	}
	// An unrouted entry is passed whole.
	if batch, last, _ = s.Read(6, 100, 1<<20, func(string) bool { return false }); last != 11 || len(batch) != 0 {
		t.Fatalf("unrouted read = %v, last %d", ids(batch), last)
	}
}

// TestBatchCorrupt checks the two ways a batch entry can be damaged: an
// unreadable record inside it is reported at its own position and skipped
// alone, an unreadable framing at the entry's last position and skipped
// whole.
func TestBatchCorrupt(t *testing.T) {
	s := open(t, t.TempDir())
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	var w store.BatchWriter
	w.Reset(nil)
	evs := page("s", "p", 3)
	w.Add(&evs[0])
	w.Add(&evs[1])
	w.Add(&evs[2])
	entry := w.Entry()
	// Damage the second record's version byte: the framing still holds.
	second := len(entry) - len(store.AppendRecord(nil, &evs[2])) - 4 - len(store.AppendRecord(nil, &evs[1]))
	entry[second] = 9
	putEntry(t, s, entry, 3, len(entry)-14) // the records' sizes: less 2 of header, 4 of framing each
	batch, last, err := s.Read(0, 100, 1<<20, nil)
	if err != nil || last != 1 || fmt.Sprint(ids(batch)) != "[p-0]" {
		t.Fatalf("read = %v, last %d, %v; want the batch to end before the bad record", ids(batch), last, err)
	}
	var ce *store.CorruptError
	if _, _, err = s.Read(1, 100, 1<<20, nil); !errors.As(err, &ce) || ce.Seq != 2 {
		t.Fatalf("read at the bad record = %v, want a CorruptError at 2", err)
	}
	if err := s.SkipCorrupt("a", ce.Seq, t0); err != nil {
		t.Fatal(err)
	}
	if batch, last, err = s.Read(2, 100, 1<<20, nil); err != nil || last != 3 || fmt.Sprint(ids(batch)) != "[p-2]" {
		t.Fatalf("read after the skip = %v, last %d, %v", ids(batch), last, err)
	}
	// A batch cut short: the whole entry is one unreadable span.
	putEntry(t, s, w.Entry()[:20], 3, 20)
	if _, _, err = s.Read(3, 100, 1<<20, nil); !errors.As(err, &ce) || ce.Seq != 6 {
		t.Fatalf("read at the cut batch = %v, want a CorruptError at its last position 6", err)
	}
	if err := s.SkipCorrupt("a", ce.Seq, t0); err != nil {
		t.Fatal(err)
	}
	if s.SpoolCount() != 0 || s.SpoolBytes() != 0 {
		t.Fatalf("spool count %d, %d bytes once both entries were passed", s.SpoolCount(), s.SpoolBytes())
	}
}

// putEntry stores entry as the next spool entry, holding n positions and
// counted as size bytes.
func putEntry(t *testing.T, s *Store, entry []byte, n uint64, size int) {
	t.Helper()
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bSpool)
		last := b.Sequence() + n
		b.SetSequence(last)
		if err := b.Put(putU64(nil, last), entry); err != nil {
			return err
		}
		return addCounters(tx.Bucket(bMeta), int64(size), int64(n))
	}); err != nil {
		t.Fatal(err)
	}
	s.freed(-int64(size), -int64(n))
}

// TestUpgradeFormat2 opens a format-2 store, whose entries every sink had
// passed are gone and which records no passed position, and checks that
// the counters and a new sink's start carry on from it.
func TestUpgradeFormat2(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	var rec []byte
	for _, id := range []string{"1", "2", "3"} {
		rec = store.AppendRecord(nil, new(ev("s", id, t0)))
		putRaw(t, s, rec)
	}
	s.db.Update(func(tx *bbolt.Tx) error {
		spool, m := tx.Bucket(bSpool), tx.Bucket(bMeta)
		spool.Delete(putU64(nil, 1))
		spool.Delete(putU64(nil, 2))
		tx.Bucket(bSinks).Bucket([]byte("a")).Put(kOffset, putU64(nil, 2))
		m.Delete(kPassed)
		m.Put(kFormat, []byte("2"))
		return addCounters(m, -2*int64(len(rec)), -2)
	})
	s.Close()
	s = open(t, dir)
	if s.SpoolCount() != 1 || s.SpoolBytes() != int64(len(rec)) {
		t.Fatalf("after the upgrade: %d events, %d bytes; want 1, %d", s.SpoolCount(), s.SpoolBytes(), len(rec))
	}
	if err := s.SetSinks([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if off, _ := s.Offset("b"); off != 2 {
		t.Fatalf("new sink at %d, want 2", off)
	}
	batch, last, err := s.Read(2, 10, 1<<20, nil)
	if err != nil || last != 3 || fmt.Sprint(ids(batch)) != "[3]" {
		t.Fatalf("read = %v, last %d, %v", ids(batch), last, err)
	}
	for _, sink := range []string{"a", "b"} {
		if err := s.Ack(sink, 3, 1, t0); err != nil {
			t.Fatal(err)
		}
	}
	if s.SpoolCount() != 0 || s.SpoolBytes() != 0 {
		t.Fatalf("after the acks: %d events, %d bytes", s.SpoolCount(), s.SpoolBytes())
	}
}
