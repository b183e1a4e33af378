// Package storetest is the store contract as a test suite: every
// implementation of store.Store runs it (store/bolt against a temporary
// file, store/postgres against a real PostgreSQL), so both keep the same
// promises to the pipeline.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store"
)

// Harness is one empty store under test and what the suite needs beyond
// the contract to test it.
type Harness struct {
	// Store is a new, empty store.
	Store store.Store
	// PutRaw stores record as the next spool entry, bypassing the
	// encoder, as a damaged disk or a bug could have left it, and returns
	// its position.
	PutRaw func(t *testing.T, record []byte) uint64
	// Reopen closes Store and opens the same state again.
	Reopen func(t *testing.T) store.Store
}

// T0 is the instant the suite's events happen around.
var T0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// Event returns an event of source src with the given id and time.
func Event(src, id string, at time.Time) event.Raw {
	return event.Raw{Source: src, Provider: "pingone", Tenant: "env", ID: id, Time: at,
		Data: fmt.Appendf(nil, `{"id":%q}`, id)}
}

// Run runs the contract against the stores open returns, one per subtest.
func Run(t *testing.T, open func(t *testing.T) Harness) {
	tests := []struct {
		name string
		f    func(t *testing.T, h Harness)
	}{
		{"AppendDedupCursorReadAck", testAppendDedupReadAck},
		{"NewestFirstPage", testNewestFirstPage},
		{"ReadRoutesAndLimits", testReadRoutesAndLimits},
		{"DedupHorizonPrunes", testDedupHorizonPrunes},
		{"FingerprintMismatchAndReset", testFingerprintMismatch},
		{"SetCursorKeepsIDs", testSetCursor},
		{"ReopenKeepsState", testReopenKeepsState},
		{"SinksRegisteredAndDropped", testSinks},
		{"SpoolBound", testSpoolBound},
		{"Gaps", testGaps},
		{"LateEvents", testLateEvents},
		{"Errors", testErrors},
		{"ChangedSignals", testChangedSignals},
		{"CorruptEntryParked", testCorrupt},
		{"Snapshot", testSnapshot},
		{"DeletedThrough", testDeletedThrough},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, open(t)) })
	}
}

func ids(batch []event.Raw) []string {
	out := []string{}
	for _, e := range batch {
		out = append(out, e.ID)
	}
	return out
}

func mustAppend(t *testing.T, s store.Store, name string, p source.Page) store.AppendResult {
	t.Helper()
	res, err := s.Append(name, "fp", p, T0)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// testNewestFirstPage appends pages served newest first, as PingOne
// serves them, with an id repeated inside a page: the events are read in
// page order, the first of a repeated id is the one kept, and the next
// page's overlap is dropped.
func testNewestFirstPage(t *testing.T, h Harness) {
	s := h.Store
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	var evs []event.Raw
	for i := 9; i >= 0; i-- {
		evs = append(evs, Event("s1", fmt.Sprint("e", i), T0.Add(time.Duration(i)*time.Millisecond)))
	}
	again := Event("s1", "e5", T0.Add(5*time.Millisecond))
	again.Data = []byte(`{"id":"e5","second":true}`)
	evs = append(evs[:3], append([]event.Raw{again}, evs[3:]...)...) // e9 e8 e7 e5' e6 e5 ...
	evs[3], evs[5] = evs[5], evs[3]                                  // e9 e8 e7 e5 e6 e5' ...
	res := mustAppend(t, s, "s1", source.Page{Events: evs, Next: source.Cursor("c1")})
	if res.Added != 10 || res.Duplicates != 1 {
		t.Fatalf("append = %+v, want 10 added 1 duplicate", res)
	}
	res = mustAppend(t, s, "s1", source.Page{Events: []event.Raw{Event("s1", "e11", T0.Add(11*time.Millisecond)),
		Event("s1", "e10", T0.Add(10*time.Millisecond)), Event("s1", "e9", T0.Add(9*time.Millisecond))}, Next: source.Cursor("c2")})
	if res.Added != 2 || res.Duplicates != 1 {
		t.Fatalf("second append = %+v, want 2 added 1 duplicate", res)
	}
	batch, _, err := s.Read(0, 100, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"e9", "e8", "e7", "e5", "e6", "e4", "e3", "e2", "e1", "e0", "e11", "e10"}
	if diff := cmp.Diff(want, ids(batch)); diff != "" {
		t.Fatalf("read ids (-want +got) %s", diff)
	}
	if string(batch[3].Data) != `{"id":"e5"}` {
		t.Fatalf("the repeated id kept %s, want its first event", batch[3].Data)
	}
}

func testAppendDedupReadAck(t *testing.T, h Harness) {
	s := h.Store
	if err := s.SetSinks([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	p := source.Page{
		Events: []event.Raw{Event("s1", "1", T0), Event("s1", "2", T0), Event("s1", "1", T0)},
		Next:   source.Cursor("c1"), Watermark: T0,
	}
	res, err := s.Append("s1", "fp", p, T0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 2 || res.Duplicates != 1 || res.Bytes <= 0 {
		t.Fatalf("append = %+v, want 2 added 1 duplicate", res)
	}
	// the overlap re-read repeats 2 and brings 3
	res, err = s.Append("s1", "fp", source.Page{Events: []event.Raw{Event("s1", "2", T0), Event("s1", "3", T0.Add(time.Second))}, Next: source.Cursor("c2")}, T0)
	if err != nil || res.Added != 1 || res.Duplicates != 1 {
		t.Fatalf("second append = %+v, %v", res, err)
	}
	// the same id at another time is another event
	res, err = s.Append("s1", "fp", source.Page{Events: []event.Raw{Event("s1", "3", T0.Add(2*time.Second))}, Next: source.Cursor("c3")}, T0)
	if err != nil || res.Added != 1 {
		t.Fatalf("same id, other time = %+v, %v", res, err)
	}
	cur, fp, err := s.Cursor("s1")
	if err != nil || string(cur) != "c3" || fp != "fp" {
		t.Fatalf("cursor = %q %q %v", cur, fp, err)
	}
	if cur, fp, err := s.Cursor("never"); err != nil || cur != nil || fp != "" {
		t.Fatalf("cursor of an unknown source = %q %q %v", cur, fp, err)
	}
	batch, last, err := s.Read(0, 10, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"1", "2", "3", "3"}, ids(batch)); diff != "" || last != 4 {
		t.Fatalf("read ids (-want +got) %s, last %d", diff, last)
	}
	if diff := cmp.Diff(Event("s1", "3", T0.Add(time.Second)), batch[2]); diff != "" {
		t.Fatalf("record round trip (-want +got):\n%s", diff)
	}
	if s.SpoolCount() != 4 {
		t.Fatalf("spool count %d", s.SpoolCount())
	}
	// a acks everything, b nothing: nothing is deleted
	if err := s.Ack("a", 4, 4, T0); err != nil {
		t.Fatal(err)
	}
	if s.SpoolCount() != 4 {
		t.Fatalf("deleted before every sink acked: count %d", s.SpoolCount())
	}
	if off, err := s.Offset("a"); err != nil || off != 4 {
		t.Fatalf("offset of a = %d, %v", off, err)
	}
	if off, err := s.Offset("b"); err != nil || off != 0 {
		t.Fatalf("offset of b = %d, %v", off, err)
	}
	if err := s.Ack("b", 2, 2, T0); err != nil {
		t.Fatal(err)
	}
	if s.SpoolCount() != 2 {
		t.Fatalf("spool count after acks = %d, want 2", s.SpoolCount())
	}
	if err := s.Ack("b", 1, 0, T0); err == nil {
		t.Fatal("ack behind the stored offset succeeded")
	}
	if off, _ := s.Offset("b"); off != 2 {
		t.Fatalf("refused ack moved the offset to %d", off)
	}
	batch, last, err = s.Read(2, 10, 1<<20, nil)
	if err != nil || len(batch) != 2 || batch[0].ID != "3" || last != 4 {
		t.Fatalf("read after entry 2 = %v, last %d, %v; want events 3 and 3, last 4", ids(batch), last, err)
	}
	if batch, last, err := s.Read(4, 10, 1<<20, nil); err != nil || len(batch) != 0 || last != 4 {
		t.Fatalf("read at the end = %v, last %d, %v", ids(batch), last, err)
	}
	if _, err := s.Offset("nope"); err == nil {
		t.Fatal("offset of an unregistered sink succeeded")
	}
	if err := s.Ack("nope", 1, 1, T0); err == nil {
		t.Fatal("ack of an unregistered sink succeeded")
	}
}

func testReadRoutesAndLimits(t *testing.T, h Harness) {
	s := h.Store
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		src := "x"
		if i%2 == 1 {
			src = "y"
		}
		mustAppend(t, s, src, source.Page{Events: []event.Raw{Event(src, fmt.Sprint(i), T0)}})
	}
	onlyY := func(src string) bool { return src == "y" }
	batch, last, err := s.Read(0, 3, 1<<20, onlyY)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"1", "3", "5"}, ids(batch)); diff != "" || last != 6 {
		t.Fatalf("routed read (-want +got) %s, last %d; want last 6", diff, last)
	}
	// byte limit: at least one event, then stop before exceeding
	batch, last, err = s.Read(0, 100, 1, nil)
	if err != nil || len(batch) != 1 || last != 1 {
		t.Fatalf("byte-limited read = %d events, last %d, %v; want 1, 1", len(batch), last, err)
	}
	// nothing routed: last still moves past skipped entries
	batch, last, err = s.Read(8, 100, 1<<20, func(string) bool { return false })
	if err != nil || len(batch) != 0 || last != 10 {
		t.Fatalf("unrouted read = %d events, last %d, %v; want 0, 10, nil", len(batch), last, err)
	}
	// a long run of unrouted entries is crossed in one read
	for i := range 2500 {
		mustAppend(t, s, "x", source.Page{Events: []event.Raw{Event("x", fmt.Sprint("bulk-", i), T0)}})
	}
	mustAppend(t, s, "y", source.Page{Events: []event.Raw{Event("y", "after-bulk", T0)}})
	batch, last, err = s.Read(10, 5, 1<<20, onlyY)
	if err != nil || len(batch) != 1 || batch[0].ID != "after-bulk" || last != 2511 {
		t.Fatalf("read across unrouted entries = %v, last %d, %v", ids(batch), last, err)
	}
}

func testDedupHorizonPrunes(t *testing.T, h Harness) {
	s := h.Store
	old, recent := T0.Add(-time.Hour), T0
	mustAppend(t, s, "s", source.Page{Events: []event.Raw{Event("s", "old", old), Event("s", "new", recent)}})
	// horizon between them: "old" is forgotten, "new" still deduplicated
	res := mustAppend(t, s, "s", source.Page{Events: []event.Raw{Event("s", "new", recent)}, DedupHorizon: T0.Add(-time.Minute)})
	if res.Duplicates != 1 {
		t.Fatalf("append = %+v", res)
	}
	res = mustAppend(t, s, "s", source.Page{Events: []event.Raw{Event("s", "old", old), Event("s", "new", recent)}})
	if res.Added != 1 || res.Duplicates != 1 {
		t.Fatalf("after prune = %+v, want old re-added and new deduplicated", res)
	}
	// ids are per source
	res, _ = s.Append("other", "fp2", source.Page{Events: []event.Raw{Event("other", "new", recent)}}, T0)
	if res.Added != 1 {
		t.Fatalf("id of another source deduplicated: %+v", res)
	}
	// times before 1970 sort before the horizon too
	ancient := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	mustAppend(t, s, "s", source.Page{Events: []event.Raw{Event("s", "ancient", ancient)}})
	mustAppend(t, s, "s", source.Page{DedupHorizon: T0.Add(-time.Minute)})
	if res := mustAppend(t, s, "s", source.Page{Events: []event.Raw{Event("s", "ancient", ancient)}}); res.Added != 1 {
		t.Fatalf("an id before 1970 outlived the horizon: %+v", res)
	}
}

func testFingerprintMismatch(t *testing.T, h Harness) {
	s := h.Store
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append("s", "pingone|env-a|https://api.pingone.eu", source.Page{Events: []event.Raw{Event("s", "1", T0)}, Next: source.Cursor("x")}, T0); err != nil {
		t.Fatal(err)
	}
	_, err := s.Append("s", "pingone|env-b|https://api.pingone.eu", source.Page{Events: []event.Raw{Event("s", "2", T0)}, Next: source.Cursor("y")}, T0)
	if !errors.Is(err, store.ErrFingerprint) || !strings.Contains(err.Error(), "checkpoint reset --source s") {
		t.Fatalf("err = %v", err)
	}
	if cur, _, _ := s.Cursor("s"); string(cur) != "x" {
		t.Fatalf("cursor moved to %q on a fingerprint mismatch", cur)
	}
	if s.SpoolCount() != 1 {
		t.Fatalf("refused page stored events: spool count %d", s.SpoolCount())
	}
	if ok, err := s.ResetSource("s"); !ok || err != nil {
		t.Fatalf("reset = %v %v", ok, err)
	}
	if cur, fp, err := s.Cursor("s"); cur != nil || fp != "" || err != nil {
		t.Fatalf("cursor after reset = %q %q %v", cur, fp, err)
	}
	if ok, err := s.ResetSource("s"); ok || err != nil {
		t.Fatalf("second reset = %v %v, want false", ok, err)
	}
	// the reset forgot the ids; the spooled event is still delivered
	res, err := s.Append("s", "pingone|env-b|https://api.pingone.eu", source.Page{Events: []event.Raw{Event("s", "1", T0)}, Next: source.Cursor("y")}, T0)
	if err != nil || res.Added != 1 {
		t.Fatalf("append after reset = %+v, %v", res, err)
	}
	if batch, _, err := s.Read(0, 10, 1<<20, nil); err != nil || len(batch) != 2 {
		t.Fatalf("spool after reset = %v, %v", ids(batch), err)
	}
}

func testSetCursor(t *testing.T, h Harness) {
	s := h.Store
	mustAppend(t, s, "s", source.Page{Events: []event.Raw{Event("s", "1", T0)}, Next: source.Cursor("c1"), Watermark: T0})
	w := T0.Add(time.Hour)
	if err := s.SetCursor("s", "fp", source.Cursor("moved"), w); err != nil {
		t.Fatal(err)
	}
	if cur, fp, err := s.Cursor("s"); string(cur) != "moved" || fp != "fp" || err != nil {
		t.Fatalf("cursor = %q %q %v", cur, fp, err)
	}
	if res := mustAppend(t, s, "s", source.Page{Events: []event.Raw{Event("s", "1", T0)}}); res.Duplicates != 1 {
		t.Fatalf("set lost the ids: %+v", res)
	}
	snap, err := s.Snapshot()
	if err != nil || len(snap.Sources) != 1 || !snap.Sources[0].Watermark.Equal(w) || snap.Sources[0].Events != 1 {
		t.Fatalf("snapshot = %+v, %v", snap.Sources, err)
	}
	// a source never seen gets a cursor too
	if err := s.SetCursor("new", "fp", source.Cursor("n"), w); err != nil {
		t.Fatal(err)
	}
	if cur, _, _ := s.Cursor("new"); string(cur) != "n" {
		t.Fatalf("cursor of new = %q", cur)
	}
}

func testReopenKeepsState(t *testing.T, h Harness) {
	s := h.Store
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "s", source.Page{Events: []event.Raw{Event("s", "1", T0), Event("s", "2", T0)}, Next: source.Cursor("c")})
	if err := s.Ack("a", 1, 1, T0); err != nil {
		t.Fatal(err)
	}
	s = h.Reopen(t)
	if s.SpoolCount() != 1 || s.SpoolBytes() <= 0 {
		t.Fatalf("reopened counters = %d events %d bytes", s.SpoolCount(), s.SpoolBytes())
	}
	off, _ := s.Offset("a")
	cur, _, _ := s.Cursor("s")
	if off != 1 || string(cur) != "c" {
		t.Fatalf("offset %d cursor %q", off, cur)
	}
	if res := mustAppend(t, s, "s", source.Page{Events: []event.Raw{Event("s", "2", T0), Event("s", "3", T0)}}); res.Added != 1 || res.Duplicates != 1 {
		t.Fatalf("append after reopen = %+v", res)
	}
	if batch, last, err := s.Read(1, 10, 1<<20, nil); err != nil || cmp.Diff([]string{"2", "3"}, ids(batch)) != "" || last != 3 {
		t.Fatalf("read after reopen = %v, last %d, %v: positions must go on after the reopen", ids(batch), last, err)
	}
}

func testSinks(t *testing.T, h Harness) {
	s := h.Store
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "s", source.Page{Events: []event.Raw{Event("s", "1", T0), Event("s", "2", T0)}})
	if err := s.Ack("a", 1, 1, T0); err != nil {
		t.Fatal(err)
	}
	if s.SpoolCount() != 1 {
		t.Fatalf("count %d", s.SpoolCount())
	}
	// a new sink starts at the oldest entry still in the spool and holds it
	if err := s.SetSinks([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack("a", 2, 1, T0); err != nil {
		t.Fatal(err)
	}
	if s.SpoolCount() != 1 {
		t.Fatalf("new sink b should hold entry 2; count %d", s.SpoolCount())
	}
	off, _ := s.Offset("b")
	if batch, _, err := s.Read(off, 10, 1<<20, nil); err != nil || cmp.Diff([]string{"2"}, ids(batch)) != "" {
		t.Fatalf("new sink reads %v, %v", ids(batch), err)
	}
	// registering again keeps the offsets
	if err := s.SetSinks([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if off, _ := s.Offset("a"); off != 2 {
		t.Fatalf("offset of a after registering again = %d", off)
	}
	// a sink removed from the config no longer holds entries back
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	if s.SpoolCount() != 0 || s.SpoolBytes() != 0 {
		t.Fatalf("dropping sink b should free entry 2; count %d bytes %d", s.SpoolCount(), s.SpoolBytes())
	}
	if _, err := s.Offset("b"); err == nil {
		t.Fatal("dropped sink still has an offset")
	}
	// no sink at all keeps everything
	if err := s.SetSinks(nil); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "s", source.Page{Events: []event.Raw{Event("s", "3", T0)}})
	if s.SpoolCount() != 1 {
		t.Fatalf("count without sinks %d", s.SpoolCount())
	}
}

func testSpoolBound(t *testing.T, h Harness) {
	s := h.Store
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	var total int64
	for p := range 3 {
		var evs []event.Raw
		for i := range 50 {
			evs = append(evs, Event("s", fmt.Sprintf("%d-%d", p, i), T0))
		}
		total += mustAppend(t, s, "s", source.Page{Events: evs}).Bytes
		if s.SpoolBytes() != total || s.SpoolCount() != int64(50*(p+1)) {
			t.Fatalf("after page %d: %d bytes %d events, want %d bytes %d events", p, s.SpoolBytes(), s.SpoolCount(), total, 50*(p+1))
		}
	}
	// duplicates add nothing
	if res := mustAppend(t, s, "s", source.Page{Events: []event.Raw{Event("s", "0-0", T0)}}); res.Bytes != 0 || s.SpoolBytes() != total {
		t.Fatalf("duplicate added %d bytes", res.Bytes)
	}
	batch, last, err := s.Read(0, 75, 1<<20, nil)
	if err != nil || len(batch) != 75 {
		t.Fatal(err)
	}
	if err := s.Ack("a", last, len(batch), T0); err != nil {
		t.Fatal(err)
	}
	if s.SpoolCount() != 75 || s.SpoolBytes() >= total || s.SpoolBytes() <= 0 {
		t.Fatalf("after acking half: %d events %d bytes of %d", s.SpoolCount(), s.SpoolBytes(), total)
	}
	if err := s.Ack("a", 150, 75, T0); err != nil {
		t.Fatal(err)
	}
	if s.SpoolCount() != 0 || s.SpoolBytes() != 0 {
		t.Fatalf("after acking all: %d events %d bytes", s.SpoolCount(), s.SpoolBytes())
	}
	snap, err := s.Snapshot()
	if err != nil || snap.SpoolBytes != 0 || snap.SpoolCount != 0 || snap.LastSeq != 150 {
		t.Fatalf("snapshot = %+v, %v", snap, err)
	}
}

func testGaps(t *testing.T, h Harness) {
	s := h.Store
	for i := range store.MaxGaps + 3 {
		from := T0.Add(time.Duration(i) * time.Hour)
		mustAppend(t, s, "s", source.Page{Next: source.Cursor("c"), Gap: &source.Gap{From: from, To: from.Add(time.Minute), Reason: fmt.Sprint("retention ", i)}})
	}
	snap, err := s.Snapshot()
	if err != nil || len(snap.Sources) != 1 {
		t.Fatal(snap, err)
	}
	gaps := snap.Sources[0].Gaps
	if len(gaps) != store.MaxGaps || gaps[0].Reason != "retention 3" || gaps[len(gaps)-1].Reason != fmt.Sprint("retention ", store.MaxGaps+2) {
		t.Fatalf("gaps = %d, first %+v; want the last %d kept", len(gaps), gaps[0], store.MaxGaps)
	}
	want := store.Gap{From: T0.Add(3 * time.Hour), To: T0.Add(3*time.Hour + time.Minute), Reason: "retention 3", Reported: T0}
	if diff := cmp.Diff(want, gaps[0]); diff != "" {
		t.Fatalf("gap (-want +got):\n%s", diff)
	}
}

// testLateEvents: an event first stored from an overlap re-read behind a
// watermark that an earlier window reached is late, with how far behind it
// was; the first window's overlap and repeats are not.
func testLateEvents(t *testing.T, h Harness) {
	s := h.Store
	w0 := T0
	// The first window starts at the lookback and re-reads the overlap
	// before it: those events were never passed over.
	res := mustAppend(t, s, "s1", source.Page{Events: []event.Raw{Event("s1", "old", w0.Add(-30*time.Second)), Event("s1", "a", w0.Add(time.Second))},
		Next: source.Cursor("c1"), Watermark: w0, LateBefore: w0, DedupHorizon: w0.Add(-time.Minute)})
	if res.Added != 2 || len(res.Late) != 0 {
		t.Fatalf("first window = %+v; want 2 added, none late", res)
	}
	w1 := w0.Add(10 * time.Minute)
	mustAppend(t, s, "s1", source.Page{Next: source.Cursor("c2"), Watermark: w1, DedupHorizon: w0})
	res = mustAppend(t, s, "s1", source.Page{Events: []event.Raw{Event("s1", "a", w0.Add(time.Second)), Event("s1", "late", w1.Add(-40*time.Second)), Event("s1", "new", w1.Add(time.Second))},
		Next: source.Cursor("c3"), Watermark: w1, LateBefore: w1, DedupHorizon: w1.Add(-time.Minute)})
	if res.Added != 2 || res.Duplicates != 1 {
		t.Fatalf("second window = %+v", res)
	}
	if diff := cmp.Diff([]time.Duration{40 * time.Second}, res.Late); diff != "" {
		t.Fatalf("late (-want +got):\n%s", diff)
	}
	snap, err := s.Snapshot()
	if err != nil || len(snap.Sources) != 1 || snap.Sources[0].Late != 1 || !snap.Sources[0].FirstWatermark.Equal(w0) {
		t.Fatalf("source state %+v, %v; want 1 late, first watermark %v", snap.Sources, err, w0)
	}
	// A checkpoint moved by an operator starts a first window again.
	w2 := w1.Add(time.Hour)
	if err := s.SetCursor("s1", "fp", source.Cursor("c4"), w2); err != nil {
		t.Fatal(err)
	}
	res = mustAppend(t, s, "s1", source.Page{Events: []event.Raw{Event("s1", "before-set", w2.Add(-10*time.Second))},
		Next: source.Cursor("c5"), Watermark: w2, LateBefore: w2})
	if res.Added != 1 || len(res.Late) != 0 {
		t.Fatalf("after checkpoint set = %+v; want nothing late", res)
	}
}

func testErrors(t *testing.T, h Harness) {
	s := h.Store
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	at := T0.Add(time.Minute)
	if err := s.RecordSourceError("s", "401 from the token endpoint", at); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordSinkError("a", "503 from the SIEM", at); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordSinkError("nope", "x", at); err == nil {
		t.Fatal("error of an unregistered sink recorded")
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Sources) != 1 || snap.Sources[0].LastError != "401 from the token endpoint" || !snap.Sources[0].LastErrorAt.Equal(at) {
		t.Fatalf("source state = %+v", snap.Sources)
	}
	if len(snap.Sinks) != 1 || snap.Sinks[0].LastError != "503 from the SIEM" || !snap.Sinks[0].LastErrorAt.Equal(at) {
		t.Fatalf("sink state = %+v", snap.Sinks)
	}
	// success clears them
	mustAppend(t, s, "s", source.Page{Events: []event.Raw{Event("s", "1", T0)}})
	if err := s.Ack("a", 1, 1, T0); err != nil {
		t.Fatal(err)
	}
	snap, _ = s.Snapshot()
	if snap.Sources[0].LastError != "" || snap.Sinks[0].LastError != "" {
		t.Fatalf("errors kept after success: %+v %+v", snap.Sources[0], snap.Sinks[0])
	}
}

func testChangedSignals(t *testing.T, h Harness) {
	s := h.Store
	ch := s.Changed()
	select {
	case <-ch:
		t.Fatal("closed before any append")
	default:
	}
	mustAppend(t, s, "s", source.Page{Events: []event.Raw{Event("s", "1", T0)}})
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("not closed after an append")
	}
}

func testCorrupt(t *testing.T, h Harness) {
	s := h.Store
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "s1", source.Page{Events: []event.Raw{Event("s1", "1", T0), Event("s1", "2", T0)}})
	bad := h.PutRaw(t, []byte{9, 1, 2, 3})
	mustAppend(t, s, "s1", source.Page{Events: []event.Raw{Event("s1", "3", T0)}})
	batch, last, err := s.Read(0, 10, 1<<20, nil)
	if err != nil || len(batch) != 2 || last != 2 {
		t.Fatalf("read before the corrupt entry = %d events, last %d, %v; want 2, 2, nil", len(batch), last, err)
	}
	_, last, err = s.Read(2, 10, 1<<20, nil)
	var ce *store.CorruptError
	if !errors.As(err, &ce) || ce.Seq != bad || !bytes.Equal(ce.Record, []byte{9, 1, 2, 3}) || last != 2 {
		t.Fatalf("read at the corrupt entry = last %d, %v; want a CorruptError for entry %d", last, err, bad)
	}
	// an unreadable source cannot be routed away: it is reported even to a
	// reader that takes no source
	if _, _, err := s.Read(2, 10, 1<<20, func(string) bool { return false }); !errors.As(err, &ce) {
		t.Fatalf("unrouted read at the corrupt entry = %v, want a CorruptError", err)
	}
	if err := s.SkipCorrupt("a", ce.Seq, T0); err != nil {
		t.Fatal(err)
	}
	batch, last, err = s.Read(ce.Seq, 10, 1<<20, nil)
	if err != nil || len(batch) != 1 || batch[0].ID != "3" || last != 4 {
		t.Fatalf("read after the skip = %v, last %d, %v", ids(batch), last, err)
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if snap.Sinks[0].Corrupt != 1 || snap.Sinks[0].Offset != bad {
		t.Fatalf("sink state = %+v, want 1 corrupt at offset %d", snap.Sinks[0], bad)
	}
}

func testSnapshot(t *testing.T, h Harness) {
	s := h.Store
	if err := s.SetSinks([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "s1", source.Page{Events: []event.Raw{Event("s1", "1", T0), Event("s1", "2", T0), Event("s1", "1", T0)}, Next: source.Cursor("c1"), Watermark: T0})
	mustAppend(t, s, "s2", source.Page{Events: []event.Raw{Event("s2", "1", T0)}, Next: source.Cursor("c2"), Watermark: T0.Add(time.Minute)})
	if err := s.Ack("a", 3, 3, T0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack("b", 1, 1, T0); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for i := range snap.Sources {
		snap.Sources[i].Owner, snap.Sources[i].LeaseExpires = "", time.Time{}
	}
	for i := range snap.Sinks {
		snap.Sinks[i].Owner, snap.Sinks[i].LeaseExpires = "", time.Time{}
	}
	want := store.Snapshot{
		Sources: []store.SourceState{
			{Name: "s1", Fingerprint: "fp", Watermark: T0, LastPoll: T0, Events: 2, Duplicates: 1, FirstWatermark: T0, Cursor: []byte("c1")},
			{Name: "s2", Fingerprint: "fp", Watermark: T0.Add(time.Minute), LastPoll: T0, Events: 1, FirstWatermark: T0.Add(time.Minute), Cursor: []byte("c2")},
		},
		Sinks: []store.SinkState{
			{Name: "a", Offset: 3, Delivered: 3, LastSend: T0.Add(time.Second)},
			{Name: "b", Offset: 1, Delivered: 1, LastSend: T0, Backlog: 2},
		},
		SpoolBytes: s.SpoolBytes(), SpoolCount: 2, LastSeq: 3,
		DeletedThrough: store.DeletedThrough{"s1": T0},
		Replicas:       snap.Replicas,
	}
	if diff := cmp.Diff(want, snap); diff != "" {
		t.Fatalf("snapshot (-want +got):\n%s", diff)
	}
}

// testDeletedThrough checks the spool's record of what it deleted: per
// source, the latest event time among the entries every sink passed, never
// moved back by a late event deleted after, kept across a reset of the
// source and a reopen.
func testDeletedThrough(t *testing.T, h Harness) {
	s := h.Store
	deleted := func(s store.Store) store.DeletedThrough {
		t.Helper()
		snap, err := s.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		return snap.DeletedThrough
	}
	if d := deleted(s); len(d) != 0 {
		t.Fatalf("a new store deleted %v", d)
	}
	if err := s.SetSinks([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "s1", source.Page{Events: []event.Raw{Event("s1", "1", T0), Event("s1", "2", T0.Add(3*time.Second))}, Next: source.Cursor("c1")})
	mustAppend(t, s, "s2", source.Page{Events: []event.Raw{Event("s2", "1", T0.Add(time.Hour))}, Next: source.Cursor("c1")})
	// a late event of s1, earlier than the ones before it
	mustAppend(t, s, "s1", source.Page{Events: []event.Raw{Event("s1", "late", T0.Add(time.Second)), Event("s1", "3", T0.Add(5*time.Second))}, Next: source.Cursor("c2")})
	// positions: 1 s1@T0, 2 s1@T0+3s, 3 s2@T0+1h, 4 s1@T0+1s (late), 5 s1@T0+5s
	if err := s.Ack("a", 5, 5, T0); err != nil {
		t.Fatal(err)
	}
	if d := deleted(s); len(d) != 0 {
		t.Fatalf("with sink b at 0, deleted = %v, want nothing", d)
	}
	if err := s.Ack("b", 2, 2, T0); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(store.DeletedThrough{"s1": T0.Add(3 * time.Second)}, deleted(s)); diff != "" {
		t.Fatalf("after b passed 2 (-want +got):\n%s", diff)
	}
	if err := s.Ack("b", 4, 2, T0); err != nil {
		t.Fatal(err)
	}
	want := store.DeletedThrough{"s1": T0.Add(3 * time.Second), "s2": T0.Add(time.Hour)}
	if diff := cmp.Diff(want, deleted(s)); diff != "" {
		t.Fatalf("after the late event was deleted (-want +got):\n%s", diff)
	}
	if got := want.Through("s1"); !got.Equal(T0.Add(3 * time.Second)) {
		t.Fatalf("Through(s1) = %v", got)
	}
	if _, err := s.ResetSource("s1"); err != nil {
		t.Fatal(err)
	}
	s = h.Reopen(t)
	if diff := cmp.Diff(want, deleted(s)); diff != "" {
		t.Fatalf("after a reset and a reopen (-want +got):\n%s", diff)
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range snap.Sources {
		if st.Name != "s2" {
			t.Fatalf("snapshot lists source %q; want only s2", st.Name)
		}
	}
	// dropping sink b deletes the last entry through SetSinks
	if err := s.SetSinks([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	want["s1"] = T0.Add(5 * time.Second)
	if diff := cmp.Diff(want, deleted(s)); diff != "" {
		t.Fatalf("after SetSinks deleted the rest (-want +got):\n%s", diff)
	}
}
