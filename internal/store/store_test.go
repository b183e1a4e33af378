package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func open(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ev(src, id string, at time.Time) event.Raw {
	return event.Raw{Source: src, Provider: "pingone", Tenant: "env", ID: id, Time: at,
		Data: []byte(fmt.Sprintf(`{"id":%q}`, id))}
}

func TestAppendDedupReadAck(t *testing.T) {
	s := open(t, t.TempDir())
	if err := s.SetSinks([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	p := source.Page{
		Events: []event.Raw{ev("s1", "1", t0), ev("s1", "2", t0), ev("s1", "1", t0)},
		Next:   source.Cursor("c1"), Watermark: t0,
	}
	res, err := s.Append("s1", "fp", p, t0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 2 || res.Duplicates != 1 {
		t.Fatalf("append = %+v, want 2 added 1 duplicate", res)
	}
	// the overlap re-read repeats 2 and brings 3
	res, err = s.Append("s1", "fp", source.Page{Events: []event.Raw{ev("s1", "2", t0), ev("s1", "3", t0.Add(time.Second))}, Next: source.Cursor("c2")}, t0)
	if err != nil || res.Added != 1 || res.Duplicates != 1 {
		t.Fatalf("second append = %+v, %v", res, err)
	}
	cur, fp, err := s.Cursor("s1")
	if err != nil || string(cur) != "c2" || fp != "fp" {
		t.Fatalf("cursor = %q %q %v", cur, fp, err)
	}
	batch, last, err := s.Read(0, 10, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range batch {
		ids = append(ids, e.ID)
	}
	if diff := cmp.Diff([]string{"1", "2", "3"}, ids); diff != "" || last != 3 {
		t.Fatalf("read ids (-want +got) %s, last %d", diff, last)
	}
	if diff := cmp.Diff(ev("s1", "3", t0.Add(time.Second)), batch[2]); diff != "" {
		t.Fatalf("record round trip (-want +got):\n%s", diff)
	}
	if s.SpoolCount() != 3 {
		t.Fatalf("spool count %d", s.SpoolCount())
	}
	// a acks everything, b nothing: nothing is deleted
	if err := s.Ack("a", 3, 3, t0); err != nil {
		t.Fatal(err)
	}
	if s.SpoolCount() != 3 {
		t.Fatalf("deleted before every sink acked: count %d", s.SpoolCount())
	}
	if err := s.Ack("b", 2, 2, t0); err != nil {
		t.Fatal(err)
	}
	if s.SpoolCount() != 1 {
		t.Fatalf("spool count after acks = %d, want 1", s.SpoolCount())
	}
	if err := s.Ack("b", 1, 0, t0); err == nil {
		t.Fatal("ack behind the stored offset succeeded")
	}
	batch, last, err = s.Read(2, 10, 1<<20, nil)
	if err != nil || len(batch) != 1 || batch[0].ID != "3" || last != 3 {
		t.Fatalf("read after entry 2 = %v, last %d, %v; want event 3, last 3", batch, last, err)
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if snap.Sources[0].Events != 3 || snap.Sources[0].Duplicates != 2 || snap.Sinks[1].Backlog != 1 || snap.Sinks[0].Delivered != 3 {
		t.Fatalf("snapshot = %+v", snap)
	}
}

func TestReadRoutesAndLimits(t *testing.T) {
	s := open(t, t.TempDir())
	var evs []event.Raw
	for i := range 10 {
		src := "x"
		if i%2 == 1 {
			src = "y"
		}
		evs = append(evs, ev(src, fmt.Sprint(i), t0))
	}
	// two sources in one page is not how the pipeline calls it, but the store must not care
	if _, err := s.Append("x", "fp", source.Page{Events: evs}, t0); err != nil {
		t.Fatal(err)
	}
	onlyY := func(src string) bool { return src == "y" }
	batch, last, err := s.Read(0, 3, 1<<20, onlyY)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) != 3 || batch[0].ID != "1" || batch[2].ID != "5" || last != 6 {
		t.Fatalf("routed read = %v, last seq %d; want events 1, 3 and 5, last 6", batch, last)
	}
	// byte limit: at least one event, then stop before exceeding
	batch, _, err = s.Read(0, 100, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) != 1 {
		t.Fatalf("byte-limited read returned %d events, want 1", len(batch))
	}
	// nothing routed: last still moves past skipped entries
	batch, last, err = s.Read(8, 100, 1<<20, func(string) bool { return false })
	if err != nil || len(batch) != 0 || last != 10 {
		t.Fatalf("unrouted read = %d events, last %d, %v; want 0, 10, nil", len(batch), last, err)
	}
}

func TestDedupHorizonPrunes(t *testing.T) {
	s := open(t, t.TempDir())
	old, recent := t0.Add(-time.Hour), t0
	if _, err := s.Append("s", "fp", source.Page{Events: []event.Raw{ev("s", "old", old), ev("s", "new", recent)}}, t0); err != nil {
		t.Fatal(err)
	}
	// horizon between them: "old" is forgotten, "new" still deduplicated
	res, err := s.Append("s", "fp", source.Page{Events: []event.Raw{ev("s", "new", recent)}, DedupHorizon: t0.Add(-time.Minute)}, t0)
	if err != nil || res.Duplicates != 1 {
		t.Fatalf("append = %+v %v", res, err)
	}
	res, _ = s.Append("s", "fp", source.Page{Events: []event.Raw{ev("s", "old", old), ev("s", "new", recent)}}, t0)
	if res.Added != 1 || res.Duplicates != 1 {
		t.Fatalf("after prune = %+v, want old re-added and new deduplicated", res)
	}
	// ids are per source
	res, _ = s.Append("other", "fp2", source.Page{Events: []event.Raw{ev("other", "new", recent)}}, t0)
	if res.Added != 1 {
		t.Fatalf("id of another source deduplicated: %+v", res)
	}
}

func TestFingerprintMismatch(t *testing.T) {
	s := open(t, t.TempDir())
	if _, err := s.Append("s", "pingone|env-a|https://api.pingone.eu", source.Page{Next: source.Cursor("x")}, t0); err != nil {
		t.Fatal(err)
	}
	_, err := s.Append("s", "pingone|env-b|https://api.pingone.eu", source.Page{Next: source.Cursor("y")}, t0)
	if !errors.Is(err, ErrFingerprint) || !strings.Contains(err.Error(), "checkpoint reset --source s") {
		t.Fatalf("err = %v", err)
	}
	cur, _, _ := s.Cursor("s")
	if string(cur) != "x" {
		t.Fatalf("cursor moved to %q on a fingerprint mismatch", cur)
	}
	if ok, err := s.ResetSource("s"); !ok || err != nil {
		t.Fatalf("reset = %v %v", ok, err)
	}
	if _, err := s.Append("s", "pingone|env-b|https://api.pingone.eu", source.Page{Next: source.Cursor("y")}, t0); err != nil {
		t.Fatalf("append after reset: %v", err)
	}
}

func TestReopenKeepsState(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.SetSinks([]string{"a"})
	s.Append("s", "fp", source.Page{Events: []event.Raw{ev("s", "1", t0), ev("s", "2", t0)}, Next: source.Cursor("c")}, t0)
	s.Ack("a", 1, 1, t0)
	s.Close()
	s = open(t, dir)
	if s.SpoolCount() != 1 || s.SpoolBytes() <= 0 {
		t.Fatalf("reopened counters = %d events %d bytes", s.SpoolCount(), s.SpoolBytes())
	}
	off, _ := s.Offset("a")
	cur, _, _ := s.Cursor("s")
	if off != 1 || string(cur) != "c" {
		t.Fatalf("offset %d cursor %q", off, cur)
	}
	// a sink removed from the config no longer holds entries back
	s.SetSinks([]string{"a", "b"})
	s.Ack("a", 2, 1, t0)
	if s.SpoolCount() != 1 {
		t.Fatalf("new sink b should hold entry 2; count %d", s.SpoolCount())
	}
	s.SetSinks([]string{"a"})
	if s.SpoolCount() != 0 {
		t.Fatalf("dropping sink b should free entry 2; count %d", s.SpoolCount())
	}
}

func TestOpenErrors(t *testing.T) {
	t.Run("locked", func(t *testing.T) {
		dir := t.TempDir()
		open(t, dir)
		_, err := Open(dir, Options{})
		want := fmt.Sprintf("already running with pid %d", os.Getpid())
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
	})
	t.Run("not writable", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o600)
		_, err := Open(filepath.Join(f, "data"), Options{})
		if err == nil || !strings.Contains(err.Error(), "choose another data_dir") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("newer version", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kFormat, []byte("7")) })
		s.Close()
		_, err := Open(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), "written by a newer auditrelay (store format 7") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, FileName), bytes.Repeat([]byte("garbage!"), 4096), 0o600)
		_, err := Open(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), "move it aside") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("read-only missing", func(t *testing.T) {
		_, err := Open(t.TempDir(), Options{ReadOnly: true})
		if err == nil || !strings.Contains(err.Error(), "no store at") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestChangedSignals(t *testing.T) {
	s := open(t, t.TempDir())
	ch := s.Changed()
	select {
	case <-ch:
		t.Fatal("closed before any append")
	default:
	}
	s.Append("s", "fp", source.Page{Events: []event.Raw{ev("s", "1", t0)}}, t0)
	select {
	case <-ch:
	default:
		t.Fatal("not closed after an append")
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(nil, &event.Raw{Source: "s", Provider: "p", Tenant: "t", ID: "i", Time: t0, Data: []byte("{}")}))
	f.Add([]byte{1, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		again := encodeRecord(nil, &r)
		r2, err := decodeRecord(again)
		if err != nil || !cmp.Equal(r, r2) {
			t.Fatalf("round trip changed the record: %v", err)
		}
	})
}

func TestUpgradeFormat1(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	s.Close()
	// a format-1 store: ids keyed by id, and the time index with nil values
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		tx.Bucket(bMeta).Put(kFormat, []byte("1"))
		sb, _ := tx.Bucket(bSources).CreateBucket([]byte("s"))
		ids, _ := sb.CreateBucket(bIDs)
		bt, _ := sb.CreateBucket(bIDTime)
		ids.Put([]byte("old-1"), putU64(nil, uint64(t0.UnixNano())))
		return bt.Put(appendTimeKey(nil, t0.UnixNano(), "old-1"), nil)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	res, err := s.Append("s", "fp", source.Page{Events: []event.Raw{ev("s", "old-1", t0), ev("s", "new", t0)}}, t0)
	if err != nil || res.Added != 1 || res.Duplicates != 1 {
		t.Fatalf("append after upgrade = %+v, %v; want the format-1 id still deduplicated", res, err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(kFormat); string(v) != "2" {
			t.Errorf("format = %q after upgrade", v)
		}
		if tx.Bucket(bSources).Bucket([]byte("s")).Bucket(bIDs) != nil {
			t.Error("format-1 ids bucket still there")
		}
		return nil
	})
}

// putRaw stores record as the next spool entry, as a damaged disk or a bug
// could have left it, and returns its sequence number.
func putRaw(t *testing.T, s *Store, record []byte) uint64 {
	t.Helper()
	var seq uint64
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bSpool)
		var err error
		if seq, err = b.NextSequence(); err != nil {
			return err
		}
		if err := b.Put(putU64(nil, seq), record); err != nil {
			return err
		}
		return addCounters(tx.Bucket(bMeta), int64(len(record)), 1)
	}); err != nil {
		t.Fatal(err)
	}
	s.freed(-int64(len(record)), -1)
	return seq
}

func TestReadStopsAtCorruptEntry(t *testing.T) {
	s := open(t, t.TempDir())
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append("s1", "fp", source.Page{Events: []event.Raw{ev("s1", "1", t0), ev("s1", "2", t0)}}, t0); err != nil {
		t.Fatal(err)
	}
	bad := putRaw(t, s, []byte{9, 1, 2, 3})
	if _, err := s.Append("s1", "fp", source.Page{Events: []event.Raw{ev("s1", "3", t0)}}, t0); err != nil {
		t.Fatal(err)
	}
	batch, last, err := s.Read(0, 10, 1<<20, nil)
	if err != nil || len(batch) != 2 || last != 2 {
		t.Fatalf("read before the corrupt entry = %d events, last %d, %v; want 2, 2, nil", len(batch), last, err)
	}
	_, last, err = s.Read(2, 10, 1<<20, nil)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Seq != bad || !bytes.Equal(ce.Record, []byte{9, 1, 2, 3}) || last != 2 {
		t.Fatalf("read at the corrupt entry = last %d, %v; want a CorruptError for entry %d", last, err, bad)
	}
	// an unreadable source cannot be routed away: it is reported even to a
	// reader that takes no source
	if _, _, err := s.Read(2, 10, 1<<20, func(string) bool { return false }); !errors.As(err, &ce) {
		t.Fatalf("unrouted read at the corrupt entry = %v, want a CorruptError", err)
	}
	if err := s.SkipCorrupt("a", ce.Seq, t0); err != nil {
		t.Fatal(err)
	}
	batch, last, err = s.Read(ce.Seq, 10, 1<<20, nil)
	if err != nil || len(batch) != 1 || batch[0].ID != "3" || last != 4 {
		t.Fatalf("read after the skip = %v, last %d, %v", batch, last, err)
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if snap.Sinks[0].Corrupt != 1 || snap.Sinks[0].Offset != bad {
		t.Fatalf("sink state = %+v, want 1 corrupt at offset %d", snap.Sinks[0], bad)
	}
}
