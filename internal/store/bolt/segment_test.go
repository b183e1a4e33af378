package bolt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store"
)

// padded returns n events of src with ids prefix-0 ... whose data is about
// 1 KB each.
func padded(src, prefix string, n int) []event.Raw {
	evs := page(src, prefix, n)
	pad := strings.Repeat("x", 1000)
	for i := range evs {
		evs[i].Data = []byte(fmt.Sprintf(`{"id":%q,"pad":%q}`, evs[i].ID, pad))
	}
	return evs
}

// segmentFiles returns the names of the segment files in dir.
func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	return spoolFiles(t, dir, ".seg")
}

// spoolFiles returns the names of the files in dir's segment directory
// that end with ext, in order.
func spoolFiles(t *testing.T, dir, ext string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(dir, SegmentDir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ext) {
			out = append(out, de.Name())
		}
	}
	return out
}

// readAll reads every event after 0 in batches of 1000 and returns their
// ids.
func readAll(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	after := uint64(0)
	for {
		batch, last, err := s.Read(after, 1000, 64<<20, nil)
		if err != nil {
			t.Fatalf("read after %d: %v", after, err)
		}
		if last == after {
			return out
		}
		out = append(out, ids(batch)...)
		after = last
	}
}

// TestSegmentEntries checks that a page's events go to the current
// segment with a reference in the spool bucket, and read back in order,
// also after the store is opened again.
func TestSegmentEntries(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, prefix := range []string{"p", "q", "r"} {
		evs := padded("s", prefix, 100)
		want = append(want, ids(evs)...)
		if res, err := s.Append("s", "fp", source.Page{Events: evs}, t0); err != nil || res.Added != 100 {
			t.Fatalf("append %s = %+v, %v", prefix, res, err)
		}
	}
	var refs int
	var cur uint64
	var end int64
	s.db.View(func(tx *bbolt.Tx) error {
		cur, end = getSegment(tx.Bucket(bMeta).Get(kSegment))
		return tx.Bucket(bSpool).ForEach(func(k, v []byte) error {
			if r, err := parseRef(v); err == nil && r.count == 100 && r.source == "s" && len(v) < 64 {
				refs++
			}
			return nil
		})
	})
	if refs != 3 {
		t.Fatalf("%d reference entries of 100 events, want 3", refs)
	}
	fi, err := os.Stat(filepath.Join(dir, SegmentDir, segmentName(cur)))
	if err != nil || fi.Size() != end || end < 300_000 {
		t.Fatalf("segment %d: %v, %v; the store committed %d bytes", cur, fi, err, end)
	}
	if got := readAll(t, s); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("read %d events, want the 300 appended in order", len(got))
	}
	s.Close()
	s = open(t, dir)
	if got := readAll(t, s); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after reopening: read %d events, want the 300 appended in order", len(got))
	}
	if s.SpoolCount() != 300 {
		t.Fatalf("spool count %d, want 300", s.SpoolCount())
	}
}

// TestSegmentRotation checks that a full segment gives way to a new one,
// and that a segment is removed once every sink passed every entry in it,
// not before.
func TestSegmentRotation(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	s.seg.max = 64 << 10
	if err := s.SetSinks([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := s.Append("s", "fp", source.Page{Events: padded("s", fmt.Sprint("p", i), 100)}, t0); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(segmentFiles(t, dir)); n != 10 {
		t.Fatalf("%d segment files after 10 pages of 100 KB with segments of 64 KiB, want 10", n)
	}
	// a is through, b is in the fourth page: the first three go.
	if err := s.Ack("a", 1000, 1000, t0); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentFiles(t, dir)); n != 10 {
		t.Fatalf("%d segment files with sink b at 0, want all 10", n)
	}
	if err := s.Ack("b", 350, 350, t0); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, dir); len(got) != 7 || got[0] != segmentName(4) {
		t.Fatalf("segment files %v, want the 7 from %s", got, segmentName(4))
	}
	if got := spoolFiles(t, dir, spareExt); fmt.Sprint(got) != fmt.Sprint([]string{spareName(1), spareName(2)}) {
		t.Fatalf("spare files %v, want the first two released segments kept, the third removed", got)
	}
	batch, last, err := s.Read(350, 100, 64<<20, nil)
	if err != nil || last != 450 || batch[0].ID != "p3-50" {
		t.Fatalf("read after 350 = %d events, last %d, %v", len(batch), last, err)
	}
	if err := s.Ack("b", 1000, 650, t0); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, dir); len(got) != 1 || got[0] != segmentName(10) {
		t.Fatalf("segment files %v with the spool empty, want the current one only", got)
	}
	if s.SpoolCount() != 0 || s.SpoolBytes() != 0 {
		t.Fatalf("spool holds %d events, %d bytes; want none", s.SpoolCount(), s.SpoolBytes())
	}
	s.Close()
	s = open(t, dir)
	if _, err := s.Append("s", "fp", source.Page{Events: padded("s", "after", 10)}, t0); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s); len(got) != 10 || got[0] != "after-0" {
		t.Fatalf("after reopening read %v, want the 10 new events", got)
	}
}

// TestSegmentCrashTail checks what Open does after a crash between
// writing a transaction's data and committing it: the bytes no entry
// refers to are cut off the current segment, a segment created for a
// transaction that never committed is removed, and writing goes on.
func TestSegmentCrashTail(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append("s", "fp", source.Page{Events: padded("s", "p", 50)}, t0); err != nil {
		t.Fatal(err)
	}
	cur, end := s.seg.cur, s.seg.end
	s.Close()
	path := filepath.Join(dir, SegmentDir, segmentName(cur))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte(strings.Repeat("torn", 1000)))
	f.Close()
	if err := os.WriteFile(filepath.Join(dir, SegmentDir, segmentName(cur+1)), []byte("never committed"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	if fi, err := os.Stat(path); err != nil || fi.Size() != end {
		t.Fatalf("segment after reopening: %v, %v; want %d bytes", fi, err, end)
	}
	if got := segmentFiles(t, dir); len(got) != 1 {
		t.Fatalf("segment files %v, want the uncommitted one removed", got)
	}
	if _, err := s.Append("s", "fp", source.Page{Events: padded("s", "q", 50)}, t0); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, s)
	if len(got) != 100 || got[0] != "p-0" || got[50] != "q-0" || got[99] != "q-49" {
		t.Fatalf("read %d events (%v ...), want p-0..p-49 then q-0..q-49", len(got), got[:min(3, len(got))])
	}
}

// TestSegmentDamage checks that an entry whose batch no longer matches its
// checksum, or whose segment is gone, reads as unreadable at its last
// position with what can be kept of it, and that skipping it reaches the
// next entry.
func TestSegmentDamage(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	s.seg.max = 32 << 10
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"p", "q", "r"} {
		if _, err := s.Append("s", "fp", source.Page{Events: padded("s", prefix, 40)}, t0); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// A bad sector in the first page's batch, and the second's segment
	// removed by hand.
	first := filepath.Join(dir, SegmentDir, segmentName(1))
	b, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(first, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, SegmentDir, segmentName(2))); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	_, _, err = s.Read(0, 100, 64<<20, nil)
	var ce *store.CorruptError
	if !errors.As(err, &ce) || ce.Seq != 40 || !strings.Contains(err.Error(), "checksum mismatch") || len(ce.Record) < 40_000 {
		t.Fatalf("read of the damaged batch = %v, want a corrupt entry at 40 keeping the batch's bytes", err)
	}
	if err := s.SkipCorrupt("a", ce.Seq, t0); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Read(40, 100, 64<<20, nil)
	if !errors.As(err, &ce) || ce.Seq != 80 || !strings.Contains(err.Error(), "missing") || ce.Record[0] != refVersion {
		t.Fatalf("read of the missing segment = %v, want a corrupt entry at 80 keeping its reference", err)
	}
	if err := s.SkipCorrupt("a", ce.Seq, t0); err != nil {
		t.Fatal(err)
	}
	batch, last, err := s.Read(80, 100, 64<<20, nil)
	if err != nil || last != 120 || batch[0].ID != "r-0" {
		t.Fatalf("read after the damaged entries = %d events, last %d, %v", len(batch), last, err)
	}
	if err := s.Ack("a", 120, 40, t0); err != nil {
		t.Fatal(err)
	}
	if s.SpoolCount() != 0 || s.SpoolBytes() != 0 {
		t.Fatalf("spool holds %d events, %d bytes after every entry passed; want none", s.SpoolCount(), s.SpoolBytes())
	}
}

// TestUpgradeFormat3 checks that inline entries of format 3 read before
// the new entries in segments, and that segments are kept until the
// inline entries before them are gone.
func TestUpgradeFormat3(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	var w store.BatchWriter
	w.Reset(nil)
	for _, e := range page("s", "old", 3) {
		w.Add(&e)
	}
	s.db.Update(func(tx *bbolt.Tx) error {
		spool, m := tx.Bucket(bSpool), tx.Bucket(bMeta)
		spool.SetSequence(3)
		spool.Put(putU64(nil, 3), w.Entry())
		m.Put(kFormat, []byte("3"))
		m.Delete(kSegment)
		return addCounters(m, 3, 3)
	})
	s.Close()
	s = open(t, dir)
	s.seg.max = 1
	var format string
	s.db.View(func(tx *bbolt.Tx) error { format = string(tx.Bucket(bMeta).Get(kFormat)); return nil })
	if format != "4" {
		t.Fatalf("format after the upgrade %q, want 4", format)
	}
	for _, prefix := range []string{"new", "newer"} {
		if _, err := s.Append("s", "fp", source.Page{Events: page("s", prefix, 2)}, t0); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(readAll(t, s)); got != "[old-0 old-1 old-2 new-0 new-1 newer-0 newer-1]" {
		t.Fatalf("read %s", got)
	}
	if err := s.Ack("a", 2, 2, t0); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentFiles(t, dir)); n != 2 {
		t.Fatalf("%d segment files with an inline entry first, want 2", n)
	}
	if err := s.Ack("a", 5, 3, t0); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, dir); len(got) != 1 || got[0] != segmentName(2) {
		t.Fatalf("segment files %v, want the second only", got)
	}
	if got := fmt.Sprint(readAll(t, s)); got != "[newer-0 newer-1]" {
		t.Fatalf("read %s after the ack", got)
	}
}

// FuzzParseRef checks that any bytes parse as a reference or fail
// cleanly, and that a parsed reference encodes back to the same bytes.
func FuzzParseRef(f *testing.F) {
	f.Add(appendRef(nil, &ref{seg: 1, off: 9, length: 1200, count: 3, bytes: 1100, latest: -5, crc: 0xdeadbeef, source: "env-1"}))
	f.Add([]byte{refVersion})
	f.Add([]byte{refVersion, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRef(b)
		if err != nil {
			if entryCount(b) < 1 {
				t.Fatalf("entry count of unreadable %x below 1", b)
			}
			return
		}
		if r.count == 0 {
			t.Fatalf("parsed a reference of no events from %x", b)
		}
		if back := appendRef(nil, &r); string(back) != string(b) && len(back) > len(b) {
			t.Fatalf("reference %x encodes back as the longer %x", b, back)
		}
	})
}

// TestSegmentReadsShareBatches checks that reads ending inside an entry
// and the reads after them return each event's data whole, from the batch
// kept after the first read as from the file.
func TestSegmentReadsShareBatches(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.SetSinks([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	evs := padded("s", "p", 100)
	if _, err := s.Append("s", "fp", source.Page{Events: evs}, t0); err != nil {
		t.Fatal(err)
	}
	for _, maxBytes := range []int{30_000, 1 << 20} {
		var got []event.Raw
		for after := uint64(0); after < 100; {
			batch, last, err := s.Read(after, 1000, maxBytes, nil)
			if err != nil || last == after {
				t.Fatalf("read after %d: last %d, %v", after, last, err)
			}
			got = append(got, batch...)
			after = last
		}
		for i := range evs {
			if got[i].ID != evs[i].ID || string(got[i].Data) != string(evs[i].Data) || cap(got[i].Data) != len(got[i].Data) {
				t.Fatalf("batches of %d bytes: event %d is %s %q (cap %d), want %s %q", maxBytes, i, got[i].ID, got[i].Data, cap(got[i].Data), evs[i].ID, evs[i].Data)
			}
		}
	}
}

// TestSegmentReadErrorIsRetried checks that an I/O error reading a
// segment is an error to retry, not an unreadable entry to skip, and that
// the entry reads once the error is gone.
func TestSegmentReadErrorIsRetried(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	s.seg.max = 1
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"p", "q"} {
		if _, err := s.Append("s", "fp", source.Page{Events: padded("s", prefix, 10)}, t0); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = open(t, dir)
	// The first segment, read afresh, is a directory for a while: reading
	// it fails with an I/O error (EISDIR).
	first := filepath.Join(dir, SegmentDir, segmentName(1))
	if err := os.Rename(first, first+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(first, 0o700); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Read(0, 100, 64<<20, nil)
	var ce *store.CorruptError
	if err == nil || errors.As(err, &ce) || errors.Is(err, store.ErrRecord) || !strings.Contains(err.Error(), "check the disk") {
		t.Fatalf("read with the segment failing = %v, want an I/O error to retry", err)
	}
	if err := os.Remove(first); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(first+".away", first); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(readAll(t, s)); !strings.HasPrefix(got, "[p-0 p-1") || !strings.HasSuffix(got, "q-8 q-9]") {
		t.Fatalf("read once the segment is back: %s", got)
	}
}

// TestSegmentReferenceTooLong checks that a reference whose length
// reaches past its segment's end (a damaged bit) reads as unreadable
// without allocating that length.
func TestSegmentReferenceTooLong(t *testing.T) {
	s := open(t, t.TempDir())
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append("s", "fp", source.Page{Events: padded("s", "p", 3)}, t0); err != nil {
		t.Fatal(err)
	}
	seq := putRaw(t, s, appendRef(nil, &ref{seg: 1, off: 0, length: 1 << 39, count: 1, bytes: 10, source: "s"}))
	_, _, err := s.Read(3, 100, 64<<20, nil)
	var ce *store.CorruptError
	if !errors.As(err, &ce) || ce.Seq != seq || !strings.Contains(err.Error(), "reaches past its end") {
		t.Fatalf("read of the damaged reference = %v, want an unreadable entry at %d", err, seq)
	}
}

// TestSegmentSpares checks that released segments are written over by the
// next rotations: the spool directory stays at the spool plus the spares
// however many segments go through it, the reused files' stale bytes are
// never read, and a crash after a spare became the current segment loses
// nothing: Open cuts it to its committed end.
func TestSegmentSpares(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	s.seg.max = 64 << 10
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	var acked uint64
	for round := range 6 {
		// Three pages of 100 KB (three segments), then an ack of all but
		// the last: its segment stays, the others are released.
		for i := range 3 {
			if _, err := s.Append("s", "fp", source.Page{Events: padded("s", fmt.Sprint("r", round, "p", i), 100)}, t0); err != nil {
				t.Fatal(err)
			}
		}
		total := uint64(300 * (round + 1))
		batch, last, err := s.Read(acked, 1000, 64<<20, nil)
		if err != nil || last != total || uint64(len(batch)) != total-acked || batch[len(batch)-300].ID != fmt.Sprint("r", round, "p0-0") || batch[len(batch)-1].ID != fmt.Sprint("r", round, "p2-99") {
			t.Fatalf("round %d: read %d events up to %d, %v", round, len(batch), last, err)
		}
		if err := s.Ack("a", total-100, int(total-100-acked), t0); err != nil {
			t.Fatal(err)
		}
		acked = total - 100
		if segs, spares := segmentFiles(t, dir), spoolFiles(t, dir, spareExt); len(segs) != 1 || len(spares) != segmentSpares {
			t.Fatalf("round %d: segments %v, spares %v; want 1 and %d", round, segs, spares, segmentSpares)
		}
	}
	// A small page starts a segment in a spare of a larger size: its
	// stale tail is past the committed end, which a crash leaves as it is.
	if _, err := s.Append("s", "fp", source.Page{Events: padded("s", "small", 10)}, t0); err != nil {
		t.Fatal(err)
	}
	cur, end := s.seg.cur, s.seg.end
	path := filepath.Join(dir, SegmentDir, segmentName(cur))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() <= end {
		t.Fatalf("current segment of %d bytes, committed %d: not a larger spare written over", fi.Size(), end)
	}
	// Left with the spares and no Close, as kill -9 would.
	s.db.Close()
	s.seg.close()
	s = open(t, dir)
	if fi, err := os.Stat(path); err != nil || fi.Size() != end {
		t.Fatalf("current segment after reopening: %v, %v; want its committed %d bytes", fi, err, end)
	}
	if got := spoolFiles(t, dir, spareExt); len(got) != segmentSpares-1 {
		t.Fatalf("spares after reopening %v, want the %d not reused kept", got, segmentSpares-1)
	}
	// A crash after a rotation took the last spare and wrote into it, but
	// before the transaction referring to it committed: Open removes it as
	// it removes any segment after the committed one.
	spare := spoolFiles(t, dir, spareExt)[0]
	next := filepath.Join(dir, SegmentDir, segmentName(cur+1))
	if err := os.Rename(filepath.Join(dir, SegmentDir, spare), next); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(next, []byte(strings.Repeat("never committed", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.db.Close()
	s.seg.close()
	s = open(t, dir)
	if _, err := os.Stat(next); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the uncommitted segment in a spare after reopening: %v, want it removed", err)
	}
	if _, err := s.Append("s", "fp", source.Page{Events: padded("s", "last", 100)}, t0); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, s)
	want := append(ids(padded("s", "r5p2", 100)), ids(padded("s", "small", 10))...)
	want = append(want, ids(padded("s", "last", 100))...)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after reopening read %d events (%.40v...), want the 200 not acknowledged", len(got), got)
	}
}

// TestSegmentSparesAtOpen checks that Open keeps at most segmentSpares
// spares, removes the others, and leaves files that are not its own alone.
func TestSegmentSparesAtOpen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	s.Close()
	for _, name := range []string{spareName(7), spareName(8), spareName(9), "notes.spare"} {
		if err := os.WriteFile(filepath.Join(dir, SegmentDir, name), []byte("stale"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s = open(t, dir)
	if got := spoolFiles(t, dir, spareExt); len(got) != segmentSpares+1 || got[len(got)-1] != "notes.spare" {
		t.Fatalf("spare files after Open %v, want %d of ours and notes.spare", got, segmentSpares)
	}
	s.seg.max = 1
	for i := range 4 {
		if _, err := s.Append("s", "fp", source.Page{Events: padded("s", fmt.Sprint("p", i), 3)}, t0); err != nil {
			t.Fatal(err)
		}
	}
	if got := spoolFiles(t, dir, spareExt); len(got) != 1 || got[0] != "notes.spare" {
		t.Fatalf("spare files after 4 rotations %v, want ours reused", got)
	}
	if got := readAll(t, s); len(got) != 12 {
		t.Fatalf("read %d events, want 12", len(got))
	}
}
