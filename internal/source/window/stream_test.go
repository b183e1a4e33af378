package window

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store"
)

// log is an in-memory API with a continuation ordered by commit time, like
// Okta's polling mode: positions are "at:<n>" offsets into the commit
// order, a next link comes with every page, even an empty one.
type commitLog struct {
	t        *testing.T
	now      time.Time
	pageSize int
	events   []apiEvent // in commit order; visible is the commit time
	refuse   func(pos string) bool
	starts   []time.Time
}

func (l *commitLog) commit(id string, at, committed time.Time) {
	l.events = append(l.events, apiEvent{id: id, at: at, visible: committed})
}

func (l *commitLog) Start(_ context.Context, since time.Time) (string, error) {
	l.starts = append(l.starts, since)
	for i, e := range l.events {
		if !e.visible.Before(since) {
			return "at:" + strconv.Itoa(i), nil
		}
	}
	return "at:" + strconv.Itoa(len(l.events)), nil
}

func (l *commitLog) Fetch(_ context.Context, pos string) (Result, error) {
	if l.refuse != nil && l.refuse(pos) {
		return Result{}, errRefused
	}
	n, err := strconv.Atoi(strings.TrimPrefix(pos, "at:"))
	if err != nil {
		l.t.Fatalf("Fetch(%q): not a position of this log", pos)
	}
	var r Result
	i := n
	for ; i < len(l.events) && i < n+l.pageSize && !l.events[i].visible.After(l.now); i++ {
		e := l.events[i]
		r.Events = append(r.Events, event.Raw{ID: e.id, Time: e.at})
	}
	r.Next = "at:" + strconv.Itoa(i)
	return r, nil
}

func (l *commitLog) Refused(err error) bool { return errors.Is(err, errRefused) }

func streamConfig(l *commitLog) StreamConfig {
	return StreamConfig{Name: "o", Provider: "test", Precision: time.Millisecond, Lookback: 24 * time.Hour,
		Retention: 90 * 24 * time.Hour, RetentionMargin: 5 * time.Minute, Restart: 10 * time.Minute,
		DedupWindow: time.Hour, Now: func() time.Time { return l.now }}
}

func newStream(t *testing.T, l *commitLog, cfg StreamConfig) *Stream {
	t.Helper()
	s, err := NewStream(cfg, l)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// streamRelay stores pages as the pipeline does, dropping ids it has.
type streamRelay struct {
	t     *testing.T
	s     *Stream
	cur   source.Cursor
	seen  map[string]int
	gaps  []source.Gap
	polls int
}

func (r *streamRelay) poll() source.Page {
	r.t.Helper()
	p, err := r.s.Poll(context.Background(), r.cur)
	if err != nil {
		r.t.Fatalf("Poll: %v", err)
	}
	r.polls++
	for _, ev := range p.Events {
		r.seen[ev.ID]++
	}
	if p.Gap != nil {
		r.gaps = append(r.gaps, *p.Gap)
	}
	r.cur = p.Next
	return p
}

func (r *streamRelay) drain() source.Page {
	r.t.Helper()
	for range 10000 {
		if p := r.poll(); !p.More {
			return p
		}
	}
	r.t.Fatal("still More after 10000 polls")
	return source.Page{}
}

func TestStreamCatchesUpAndWaits(t *testing.T) {
	l := &commitLog{t: t, now: base(), pageSize: 100}
	for i := range 1050 {
		at := base().Add(-20 * time.Hour).Add(time.Duration(i) * time.Minute)
		l.commit(fmt.Sprint("e", i), at, at.Add(time.Second))
	}
	s := newStream(t, l, streamConfig(l))
	r := &streamRelay{t: t, s: s, seen: map[string]int{}}
	last := r.drain()
	if len(r.seen) != 1050 {
		t.Fatalf("delivered %d of 1050", len(r.seen))
	}
	for id, n := range r.seen {
		if n != 1 {
			t.Fatalf("%s read %d times without any restart", id, n)
		}
	}
	if want := base().Add(-24 * time.Hour); len(l.starts) != 1 || !l.starts[0].Equal(want) {
		t.Fatalf("stream started at %v, want once at now - lookback %v", l.starts, want)
	}
	if !last.Watermark.Equal(base()) || len(last.Events) != 0 {
		t.Fatalf("caught-up page %+v, want no events and the watermark at the request's instant", last)
	}
	if want := 12; r.polls != want { // 11 pages of up to 100, then the empty one
		t.Errorf("%d polls, want %d", r.polls, want)
	}
	if !last.DedupHorizon.Equal(base().Add(-time.Hour)) {
		t.Errorf("dedup horizon %v, want watermark - dedup window", last.DedupHorizon)
	}
}

func TestStreamReadsLateCommittedEventsOnce(t *testing.T) {
	l := &commitLog{t: t, now: base(), pageSize: 10}
	s := newStream(t, l, streamConfig(l))
	r := &streamRelay{t: t, s: s, seen: map[string]int{}}
	r.drain()
	// Events committed now with times up to 30 minutes old, in commit
	// order: a window reader that had passed their times would lose them.
	for i := range 25 {
		l.now = l.now.Add(time.Second)
		l.commit(fmt.Sprint("late", i), l.now.Add(-time.Duration(i)*time.Minute), l.now)
	}
	r.drain()
	for i := range 25 {
		if id := fmt.Sprint("late", i); r.seen[id] != 1 {
			t.Errorf("%s read %d times, want once", id, r.seen[id])
		}
	}
}

func TestStreamRestartsFromTheWatermarkWhenRefused(t *testing.T) {
	l := &commitLog{t: t, now: base(), pageSize: 10}
	for i := range 40 {
		at := base().Add(-time.Hour).Add(time.Duration(i) * time.Minute)
		l.commit(fmt.Sprint("e", i), at, at)
	}
	cfg := streamConfig(l)
	s := newStream(t, l, cfg)
	r := &streamRelay{t: t, s: s, seen: map[string]int{}}
	r.poll()
	r.poll()
	info, err := s.Describe(r.cur)
	if err != nil {
		t.Fatal(err)
	}
	l.refuse = func(pos string) bool { return pos == "at:20" }
	r.drain()
	if len(l.starts) != 2 || !l.starts[1].Equal(info.Watermark.Add(-cfg.Restart)) {
		t.Fatalf("starts %v, want a restart at the watermark %v less %v", l.starts, info.Watermark, cfg.Restart)
	}
	if len(r.seen) != 40 {
		t.Fatalf("delivered %d of 40 after a refused link", len(r.seen))
	}
}

func TestStreamRefusedRightAfterStartIsNotRetriedInALoop(t *testing.T) {
	l := &commitLog{t: t, now: base(), pageSize: 10, refuse: func(string) bool { return true }}
	s := newStream(t, l, streamConfig(l))
	if _, err := s.Poll(context.Background(), nil); !errors.Is(err, errRefused) {
		t.Fatalf("Poll = %v, want the refusal of the fresh link", err)
	}
	if len(l.starts) != 1 {
		t.Fatalf("%d starts in one poll, want 1", len(l.starts))
	}
}

func TestStreamOlderThanRetentionIsAGap(t *testing.T) {
	l := &commitLog{t: t, now: base(), pageSize: 10}
	cfg := streamConfig(l)
	s := newStream(t, l, cfg)
	old := s.encode(streamCursor{Watermark: base().Add(-100 * 24 * time.Hour), Pos: "at:0"})
	p, err := s.Poll(context.Background(), old)
	if err != nil {
		t.Fatal(err)
	}
	limit := base().Add(-cfg.Retention + cfg.RetentionMargin)
	if p.Gap == nil || !p.Gap.To.Equal(limit) || !p.Gap.From.Equal(base().Add(-100*24*time.Hour)) {
		t.Fatalf("gap %+v, want up to the retention limit %v", p.Gap, limit)
	}
	if len(l.starts) != 1 || !l.starts[0].Equal(limit) {
		t.Fatalf("starts %v, want one at the retention limit", l.starts)
	}
}

func TestStreamCursorAt(t *testing.T) {
	l := &commitLog{t: t, now: base(), pageSize: 10}
	s := newStream(t, l, streamConfig(l))
	at := base().Add(-3 * time.Hour)
	cur, err := s.CursorAt(at)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Poll(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
	if len(l.starts) != 1 || !l.starts[0].Equal(at) {
		t.Fatalf("starts %v, want exactly %v", l.starts, at)
	}
	if _, err := s.CursorAt(base().Add(time.Minute)); err == nil {
		t.Error("CursorAt accepted the future")
	}
	if _, err := s.CursorAt(base().Add(-91 * 24 * time.Hour)); err == nil {
		t.Error("CursorAt accepted an instant beyond retention")
	}
}

func TestStreamUnreadableCursor(t *testing.T) {
	l := &commitLog{t: t, now: base(), pageSize: 10}
	s := newStream(t, l, streamConfig(l))
	for _, in := range []string{`{}`, `{"v":1}`, `{"v":1,"watermark":"x"}`, `{"v":1,"watermark":"2026-01-01T00:00:00.000Z","next":"a\u0000"}`,
		`{"v":1,"watermark":"2026-01-01T00:00:00.000Z","next":"at:1","since":"2026-01-01T00:00:00.000Z"}`} {
		_, err := s.Poll(context.Background(), source.Cursor(in))
		if class, _ := delivery.ClassOf(err); class != delivery.Permanent {
			t.Errorf("Poll(%s) = %v, want a permanent error", in, err)
		}
	}
}

func FuzzStreamCursor(f *testing.F) {
	f.Add([]byte(`{"v":1,"watermark":"2026-01-01T00:00:00.000Z","next":"https://o/api/v1/logs?after=1_1"}`))
	f.Add([]byte(`{"v":1,"watermark":"2026-01-01T00:00:00.000Z","since":"2026-01-01T00:00:00.000Z"}`))
	l := &commitLog{now: base()}
	s, err := NewStream(streamConfig(l), l)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := s.decode(b)
		if err != nil {
			return
		}
		again, err := s.decode(s.encode(c))
		if err != nil || again != c {
			t.Fatalf("round trip of %+v gave %+v, %v", c, again, err)
		}
	})
}

// TestStreamReadFrom: a stream's pages say where its read began, the start
// of the stream, not its dedup horizon, which reaches an hour further back:
// the state the store keeps from them is where a backfill must stop, and
// one stopping at the dedup horizon would leave an hour unread.
func TestStreamReadFrom(t *testing.T) {
	l := &commitLog{t: t, now: base(), pageSize: 100}
	for i := range 300 {
		at := base().Add(-20 * time.Hour).Add(time.Duration(i) * time.Minute)
		l.commit(fmt.Sprint("e", i), at, at.Add(time.Second))
	}
	r := &streamRelay{t: t, s: newStream(t, l, streamConfig(l)), seen: map[string]int{}}
	start := base().Add(-24 * time.Hour)
	var st store.SourceState
	for range 10 {
		p := r.poll()
		if p.ReadFrom.Before(start) {
			t.Fatalf("a page reads from %v, before the stream's start %v", p.ReadFrom, start)
		}
		st.BeginPage("fp", &p)
		st.EndPage(&p, store.AppendResult{}, base())
		if !p.More {
			break
		}
	}
	if !st.ReadFrom.Equal(start) {
		t.Errorf("the store records reading from %v, want the stream's start %v", st.ReadFrom, start)
	}
	refused := 0
	l.refuse = func(string) bool { refused++; return refused == 1 } // the stored link, once
	wm := st.Watermark
	l.commit("late", wm.Add(-time.Minute), base())
	restarted := r.poll()
	if refused != 2 {
		t.Fatalf("%d fetches, want the refused one and the restart", refused)
	}
	if want := wm.Add(-10 * time.Minute); !restarted.ReadFrom.Equal(want) {
		t.Errorf("after a refused link the stream reads from %v, want the watermark less the restart %v", restarted.ReadFrom, want)
	}
}
