package window

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
)

// api is an in-memory audit API queried by window: events become visible
// at their own time plus a delay, pages hold pageSize events in time order,
// and positions are "window|offset" strings it can be told to refuse.
type api struct {
	t        *testing.T
	now      time.Time
	pageSize int
	events   []apiEvent
	closed   bool // windows include their end

	refuse     func(pos string) bool // refuse this stored position
	opened     []Window
	fetched    int
	sameNext   bool // answer every page with the position it was called with
	openFailed error
}

type apiEvent struct {
	id      string
	at      time.Time
	visible time.Time
}

var errRefused = &delivery.Error{Class: delivery.Permanent, Op: "test: page", Status: http.StatusNotFound, Msg: "position expired"}

func (a *api) add(id string, at time.Time, delay time.Duration) {
	a.events = append(a.events, apiEvent{id: id, at: at, visible: at.Add(delay)})
}

func (a *api) Open(_ context.Context, w Window) (string, error) {
	if a.openFailed != nil {
		return "", a.openFailed
	}
	a.opened = append(a.opened, w)
	return a.pos(w, 0), nil
}

func (a *api) pos(w Window, off int) string {
	return w.From.Format(time.RFC3339Nano) + "|" + w.To.Format(time.RFC3339Nano) + "|" + strconv.Itoa(off)
}

func (a *api) Fetch(_ context.Context, w Window, pos string) (Result, error) {
	a.fetched++
	if a.refuse != nil && a.refuse(pos) {
		return Result{}, errRefused
	}
	parts := strings.Split(pos, "|")
	if len(parts) != 3 || parts[0] != w.From.Format(time.RFC3339Nano) || parts[1] != w.To.Format(time.RFC3339Nano) {
		a.t.Fatalf("Fetch(%v, %q): position of another window", w, pos)
	}
	off, _ := strconv.Atoi(parts[2])
	var in []apiEvent
	for _, e := range a.events {
		inside := !e.at.Before(w.From) && (e.at.Before(w.To) || a.closed && e.at.Equal(w.To))
		if inside && !e.visible.After(a.now) {
			in = append(in, e)
		}
	}
	sort.Slice(in, func(i, j int) bool {
		if !in[i].at.Equal(in[j].at) {
			return in[i].at.Before(in[j].at)
		}
		return in[i].id < in[j].id
	})
	var r Result
	for i := off; i < len(in) && i < off+a.pageSize; i++ {
		r.Events = append(r.Events, event.Raw{ID: in[i].id, Time: in[i].at, Provider: "test", Data: []byte(`{}`)})
	}
	switch {
	case a.sameNext:
		r.Next = pos
	case off+a.pageSize < len(in):
		r.Next = a.pos(w, off+a.pageSize)
	}
	return r, nil
}

func (a *api) Refused(err error) bool {
	var e *delivery.Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

func base() time.Time { return time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC) }

func testConfig(a *api) Config {
	return Config{
		Name: "t", Provider: "test", Precision: time.Millisecond,
		SettleDelay: 2 * time.Minute, Overlap: time.Minute, Lookback: 24 * time.Hour,
		Retention: 7 * 24 * time.Hour, RetentionMargin: 5 * time.Minute, MaxWindow: 24 * time.Hour,
		Now: func() time.Time { return a.now },
	}
}

func newEngine(t *testing.T, a *api, cfg Config) *Engine {
	t.Helper()
	e, err := New(cfg, a)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// relay is the pipeline's part: it stores each page's events (dropping ids
// it already has) and cursor, and polls again at once while More, or after
// the poll interval.
type relay struct {
	t     *testing.T
	e     *Engine
	a     *api
	cur   source.Cursor
	seen  map[string]int
	gaps  []source.Gap
	pages []source.Page
}

func newRelay(t *testing.T, e *Engine, a *api) *relay {
	return &relay{t: t, e: e, a: a, seen: map[string]int{}}
}

// poll runs one poll and stores its page.
func (r *relay) poll() source.Page {
	r.t.Helper()
	p, err := r.e.Poll(context.Background(), r.cur)
	if err != nil {
		r.t.Fatalf("Poll: %v", err)
	}
	for _, ev := range p.Events {
		r.seen[ev.ID]++
	}
	if p.Gap != nil {
		r.gaps = append(r.gaps, *p.Gap)
	}
	if len(p.Next) == 0 {
		r.t.Fatalf("Poll returned no cursor")
	}
	r.cur = p.Next
	r.pages = append(r.pages, p)
	return p
}

// drain polls until the source has nothing ready, at most n polls.
func (r *relay) drain(n int) {
	r.t.Helper()
	for range n {
		if p := r.poll(); !p.More {
			return
		}
	}
	r.t.Fatalf("still More after %d polls", n)
}

// run alternates drain and a clock step of interval, until until.
func (r *relay) run(interval time.Duration, until time.Time) {
	r.t.Helper()
	for r.a.now.Before(until) {
		r.drain(10000)
		r.a.now = r.a.now.Add(interval)
	}
	r.drain(10000)
}

func (r *relay) distinct() int { return len(r.seen) }

func TestBacklogCatchUpInBoundedWindows(t *testing.T) {
	a := &api{t: t, now: base(), pageSize: 100}
	// Three days of events, one every 97 s, some sharing a millisecond.
	start := base().Add(-72 * time.Hour)
	n := 0
	for at := start.Add(time.Second); at.Before(base().Add(-5 * time.Minute)); at = at.Add(97 * time.Second) {
		a.add(fmt.Sprint("e", n), at, 0)
		a.add(fmt.Sprint("e", n, "b"), at, 0)
		n += 2
	}
	cfg := testConfig(a)
	cfg.Lookback = 72 * time.Hour
	r := newRelay(t, newEngine(t, a, cfg), a)
	r.drain(10000)
	if r.distinct() != n {
		t.Fatalf("delivered %d distinct events of %d", r.distinct(), n)
	}
	if len(r.gaps) != 0 {
		t.Fatalf("gaps reported within retention: %+v", r.gaps)
	}
	for i, w := range a.opened {
		if w.To.Sub(w.From) > cfg.MaxWindow+cfg.Overlap {
			t.Errorf("window %d %v..%v is longer than max_window + overlap", i, w.From, w.To)
		}
		if w.To.After(a.now.Add(-cfg.SettleDelay)) {
			t.Errorf("window %d ends at %v, after now - settle_delay", i, w.To)
		}
		if i > 0 && !w.From.Equal(a.opened[i-1].To.Add(-cfg.Overlap)) {
			t.Errorf("window %d starts at %v, want the previous end %v minus the overlap", i, w.From, a.opened[i-1].To)
		}
	}
	if got := len(a.opened); got != 3 {
		t.Errorf("opened %d windows for 72h less the settle delay at 24h each, want 3", got)
	}
	last := r.pages[len(r.pages)-1]
	if want := a.now.Add(-cfg.SettleDelay); !last.Watermark.Equal(want) {
		t.Errorf("watermark %v after catching up, want now - settle_delay %v", last.Watermark, want)
	}
}

func TestFirstPollStartsAtLookbackClampedToRetention(t *testing.T) {
	a := &api{t: t, now: base(), pageSize: 10}
	cfg := testConfig(a)
	cfg.Lookback = 30 * 24 * time.Hour // beyond the 7 days retention
	r := newRelay(t, newEngine(t, a, cfg), a)
	r.poll()
	want := base().Add(-cfg.Retention + cfg.RetentionMargin)
	if len(a.opened) != 1 || !a.opened[0].From.Equal(want) {
		t.Fatalf("first window %+v, want it to start at the retention limit %v", a.opened, want)
	}
	if len(r.gaps) != 0 {
		t.Fatalf("a lookback longer than retention is a choice, not a gap: %+v", r.gaps)
	}
}

func TestLateEventsInsideTheOverlapAreRead(t *testing.T) {
	a := &api{t: t, now: base(), pageSize: 50}
	cfg := testConfig(a)
	cfg.Lookback = time.Hour
	r := newRelay(t, newEngine(t, a, cfg), a)
	r.drain(100)
	// From now on events arrive with visibility delays up to settle +
	// overlap; the last one is later than that and can be lost, the
	// others never.
	first := a.now
	var want []string
	for i := range 300 {
		at := first.Add(time.Duration(i) * 7 * time.Second)
		delay := time.Duration(i%4) * 50 * time.Second // 0, 50, 100, 150 s < settle 120 s + overlap 60 s
		id := fmt.Sprint("late", i)
		a.add(id, at, delay)
		want = append(want, id)
	}
	r.run(10*time.Second, first.Add(300*7*time.Second+10*time.Minute))
	for _, id := range want {
		if r.seen[id] == 0 {
			t.Errorf("%s, visible within settle_delay + overlap, was never read", id)
		}
	}
}

func TestEventsOutsideTheWindowAreDropped(t *testing.T) {
	for _, closed := range []bool{false, true} {
		t.Run(fmt.Sprint("closed=", closed), func(t *testing.T) {
			a := &api{t: t, now: base(), pageSize: 10}
			cfg := testConfig(a)
			cfg.Lookback, cfg.Closed = time.Hour, closed
			e := newEngine(t, a, cfg)
			w := Window{From: base().Add(-time.Hour - cfg.Overlap), To: base().Add(-cfg.SettleDelay)}
			// An API that returns everything whatever the window.
			a.add("before", w.From.Add(-time.Millisecond), 0)
			a.add("first", w.From, 0)
			a.add("end", w.To, 0)
			f := &unfiltered{api: a}
			e.f = f
			p, err := e.Poll(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ev := range p.Events {
				got = append(got, ev.ID)
			}
			want := "first"
			if closed {
				want = "first,end"
			}
			if strings.Join(got, ",") != want {
				t.Fatalf("events %v, want %s", got, want)
			}
		})
	}
}

// unfiltered answers every window with all of the API's events.
type unfiltered struct{ *api }

func (u *unfiltered) Fetch(context.Context, Window, string) (Result, error) {
	var r Result
	for _, e := range u.events {
		r.Events = append(r.Events, event.Raw{ID: e.id, Time: e.at})
	}
	return r, nil
}

func TestEveryPageIsCheckpointed(t *testing.T) {
	a := &api{t: t, now: base(), pageSize: 7}
	for i := range 100 {
		a.add(fmt.Sprint("e", i), base().Add(-30*time.Minute).Add(time.Duration(i)*time.Second), 0)
	}
	cfg := testConfig(a)
	cfg.Lookback = time.Hour
	e := newEngine(t, a, cfg)
	r := newRelay(t, e, a)
	// After each page, poll twice from the stored cursor as a restarted
	// process would: the same page comes back, and nothing is skipped.
	for range 100 {
		before := r.cur
		p := r.poll()
		again, err := e.Poll(context.Background(), before)
		if err != nil {
			t.Fatal(err)
		}
		if string(again.Next) != string(p.Next) || len(again.Events) != len(p.Events) {
			t.Fatalf("a repeated poll from the same cursor gave another page: %s vs %s", again.Next, p.Next)
		}
		if !p.More {
			break
		}
	}
	if r.distinct() != 100 {
		t.Fatalf("delivered %d of 100", r.distinct())
	}
	for id, n := range r.seen {
		if n != 1 {
			t.Errorf("%s delivered %d times by the walk itself", id, n)
		}
	}
}

func TestRefusedPosition(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy Refusal
		wantTo func(w Window) time.Time
	}{
		{"restart", RestartWindow, func(w Window) time.Time { return w.To }},
		{"halve", HalveWindow, func(w Window) time.Time { return w.From.Add(w.To.Sub(w.From) / 2) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &api{t: t, now: base(), pageSize: 10}
			for i := range 50 {
				a.add(fmt.Sprint("e", i), base().Add(-50*time.Minute).Add(time.Duration(i)*time.Minute/2), 0)
			}
			cfg := testConfig(a)
			cfg.Lookback, cfg.OnRefused = time.Hour, tc.policy
			e := newEngine(t, a, cfg)
			r := newRelay(t, e, a)
			r.poll()
			r.poll()
			first := a.opened[0]
			// Every stored position of the first window expires.
			a.refuse = func(pos string) bool { return strings.HasSuffix(pos, "|20") }
			p := r.poll()
			if len(a.opened) != 2 {
				t.Fatalf("opened %d windows, want the refused one opened again", len(a.opened))
			}
			if got, want := a.opened[1], (Window{From: first.From, To: tc.wantTo(first)}); got != want {
				t.Fatalf("reopened %v, want %v", got, want)
			}
			if want := base().Add(-cfg.Lookback); !p.Watermark.Equal(want) {
				t.Fatalf("watermark %v after the refusal, want it unmoved at %v", p.Watermark, want)
			}
			a.refuse = nil
			r.run(time.Minute, base().Add(5*time.Minute))
			if r.distinct() != 50 {
				t.Fatalf("delivered %d of 50 after a refused position", r.distinct())
			}
		})
	}
}

func TestRefusalOfAFreshPosition(t *testing.T) {
	for _, server := range []bool{false, true} {
		a := &api{t: t, now: base(), pageSize: 10, refuse: func(string) bool { return true }}
		cfg := testConfig(a)
		cfg.ServerPositions = server
		e := newEngine(t, a, cfg)
		_, err := e.Poll(context.Background(), nil)
		class, _ := delivery.ClassOf(err)
		want := delivery.Permanent
		if server {
			want = delivery.Transient // a cursor refused right after it was made: the API misbehaves
		}
		if class != want {
			t.Errorf("server positions %v: a fresh position refused gives class %v, want %v (%v)", server, class, want, err)
		}
		if a.fetched != 1 {
			t.Errorf("server positions %v: %d fetches, want 1 (no retry loop within a poll)", server, a.fetched)
		}
	}
}

func TestResumeOlderThanRetentionIsAGap(t *testing.T) {
	a := &api{t: t, now: base(), pageSize: 10}
	cfg := testConfig(a)
	cfg.GapReason = "older than the 7 days served"
	e := newEngine(t, a, cfg)
	old := e.codec.encode(cursor{Until: base().Add(-10 * 24 * time.Hour)})
	p, err := e.Poll(context.Background(), old)
	if err != nil {
		t.Fatal(err)
	}
	limit := base().Add(-cfg.Retention + cfg.RetentionMargin)
	if p.Gap == nil || !p.Gap.From.Equal(base().Add(-10*24*time.Hour)) || !p.Gap.To.Equal(limit) || p.Gap.Reason != cfg.GapReason {
		t.Fatalf("gap %+v, want [10 days ago, %v) with the configured reason", p.Gap, limit)
	}
	if !a.opened[0].From.Equal(limit) {
		t.Fatalf("window starts %v, want the retention limit %v", a.opened[0].From, limit)
	}
}

func TestStoredWindowOutsideTheLimitsStartsOver(t *testing.T) {
	a := &api{t: t, now: base(), pageSize: 10}
	cfg := testConfig(a)
	e := newEngine(t, a, cfg)
	until := base().Add(-10 * time.Minute)
	// A window ending after now - settle_delay (a clock that ran ahead).
	ahead := e.codec.encode(cursor{Until: until, From: until.Add(-time.Minute), To: base(), Pos: "x|y|0"})
	if _, err := e.Poll(context.Background(), ahead); err != nil {
		t.Fatal(err)
	}
	if want := (Window{From: until.Add(-cfg.Overlap), To: base().Add(-cfg.SettleDelay)}); len(a.opened) != 1 || a.opened[0] != want {
		t.Fatalf("opened %+v, want a new window %v from the watermark", a.opened, want)
	}
}

func TestIdlePollsKeepTheCursor(t *testing.T) {
	a := &api{t: t, now: base(), pageSize: 10}
	cfg := testConfig(a)
	e := newEngine(t, a, cfg)
	settled := base().Add(-cfg.SettleDelay)
	cur := e.codec.encode(cursor{Until: settled})
	p, err := e.Poll(context.Background(), cur)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Next) != string(cur) || p.More || len(a.opened) != 0 || !p.Watermark.Equal(settled) {
		t.Fatalf("idle poll = %+v, opened %v; want the same cursor, no window, watermark %v", p, a.opened, settled)
	}
	if want := settled.Add(-cfg.Overlap); !p.DedupHorizon.Equal(want) {
		t.Fatalf("dedup horizon %v, want %v (the next window's overlap)", p.DedupHorizon, want)
	}
}

func TestStartAtIsExact(t *testing.T) {
	a := &api{t: t, now: base(), pageSize: 10}
	cfg := testConfig(a)
	cfg.StartAt = base().Add(-3 * time.Hour).Add(123 * time.Microsecond)
	r := newRelay(t, newEngine(t, a, cfg), a)
	r.poll()
	if want := base().Add(-3 * time.Hour); !a.opened[0].From.Equal(want) {
		t.Fatalf("first window starts %v, want start_at %v exactly (truncated to the precision), no overlap", a.opened[0].From, want)
	}
	r.drain(100)
	if len(a.opened) < 1 {
		t.Fatal("no window")
	}
	a.now = a.now.Add(time.Minute)
	r.drain(100)
	if got, want := a.opened[len(a.opened)-1].From, base().Add(-cfg.SettleDelay-cfg.Overlap); !got.Equal(want) {
		t.Fatalf("the window after the first starts %v, want the usual overlap %v", got, want)
	}
}

func TestSamePositionAgainEndsTheWindow(t *testing.T) {
	a := &api{t: t, now: base(), pageSize: 1, sameNext: true}
	a.add("a", base().Add(-10*time.Minute), 0)
	a.add("b", base().Add(-9*time.Minute), 0)
	cfg := testConfig(a)
	cfg.Lookback = time.Hour
	r := newRelay(t, newEngine(t, a, cfg), a)
	p := r.poll()
	if p.More || !p.Watermark.Equal(base().Add(-cfg.SettleDelay)) {
		t.Fatalf("page %+v: a page answering with its own position must end the window", p)
	}
}

func TestOpenErrorsPassThrough(t *testing.T) {
	a := &api{t: t, now: base(), pageSize: 1, openFailed: &delivery.Error{Class: delivery.Throttled, Op: "test", RetryAfter: time.Second}}
	e := newEngine(t, a, testConfig(a))
	_, err := e.Poll(context.Background(), nil)
	if class, ra := delivery.ClassOf(err); class != delivery.Throttled || ra != time.Second {
		t.Fatalf("Poll error %v, want the throttled error of Open", err)
	}
}

func TestUnreadableCursorIsPermanentWithTheFix(t *testing.T) {
	a := &api{t: t, now: base(), pageSize: 1}
	e := newEngine(t, a, testConfig(a))
	_, err := e.Poll(context.Background(), source.Cursor(`{"v":9}`))
	var he *delivery.Error
	if !errors.As(err, &he) || he.Class != delivery.Permanent || !strings.Contains(he.Fix, "auditrelay checkpoint reset --source t") {
		t.Fatalf("Poll error %#v, want a permanent error naming checkpoint reset", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	a := &api{t: t}
	good := testConfig(a)
	for name, mut := range map[string]func(*Config){
		"no provider":     func(c *Config) { c.Provider = "" },
		"zero precision":  func(c *Config) { c.Precision = 0 },
		"tiny max window": func(c *Config) { c.MaxWindow = time.Microsecond },
		"retention":       func(c *Config) { c.Retention = c.RetentionMargin },
		"negative":        func(c *Config) { c.Overlap = -1 },
		"pos key":         func(c *Config) { c.PosKey = "page" },
	} {
		c := good
		mut(&c)
		if _, err := New(c, a); err == nil {
			t.Errorf("%s: New accepted %+v", name, c)
		}
	}
	if _, err := New(good, nil); err == nil {
		t.Error("New accepted no fetcher")
	}
}

func TestCursorAt(t *testing.T) {
	a := &api{t: t, now: base(), pageSize: 10}
	cfg := testConfig(a)
	e := newEngine(t, a, cfg)
	at := base().Add(-2 * time.Hour)
	cur, err := e.CursorAt(at.Add(456 * time.Microsecond))
	if err != nil {
		t.Fatal(err)
	}
	info, err := e.Describe(cur)
	if err != nil || !info.Watermark.Equal(at) || !info.Exact || info.MidWindow {
		t.Fatalf("Describe(CursorAt) = %+v, %v; want watermark %v, exact", info, err, at)
	}
	r := newRelay(t, e, a)
	r.cur = cur
	r.poll()
	if !a.opened[0].From.Equal(at) {
		t.Fatalf("resumed at %v, want %v exactly", a.opened[0].From, at)
	}
	if _, err := e.CursorAt(base().Add(time.Second)); err == nil || !strings.Contains(err.Error(), "future") {
		t.Errorf("CursorAt(future) = %v", err)
	}
	if _, err := e.CursorAt(base().Add(-8 * 24 * time.Hour)); err == nil || !strings.Contains(err.Error(), "older than the API serves") {
		t.Errorf("CursorAt(beyond retention) = %v", err)
	}
}

func TestCursorUntil(t *testing.T) {
	a := &api{t: t, now: base(), pageSize: 10}
	cfg := testConfig(a)
	e := newEngine(t, a, cfg)
	at := base().Add(-2 * time.Hour)
	cur, err := e.CursorUntil(at.Add(456 * time.Microsecond))
	if err != nil {
		t.Fatal(err)
	}
	info, err := e.Describe(cur)
	if err != nil || !info.Watermark.Equal(at) || info.Exact || info.MidWindow {
		t.Fatalf("Describe(CursorUntil) = %+v, %v; want watermark %v, not exact", info, err, at)
	}
	r := newRelay(t, e, a)
	r.cur = cur
	r.poll()
	if want := at.Add(-cfg.Overlap); !a.opened[0].From.Equal(want) {
		t.Fatalf("resumed at %v, want %v (the overlap before the watermark)", a.opened[0].From, want)
	}
	if _, err := e.CursorUntil(base().Add(time.Second)); err == nil || !strings.Contains(err.Error(), "future") {
		t.Errorf("CursorUntil(future) = %v", err)
	}
	if _, err := e.CursorUntil(base().Add(-8 * 24 * time.Hour)); err == nil || !strings.Contains(err.Error(), "older than the API serves") {
		t.Errorf("CursorUntil(beyond retention) = %v", err)
	}
}

// TestLateBefore: a window that re-reads an overlap says where it starts
// behind the watermark; a window starting exactly at it (start_at) has no
// overlap to find late events in.
func TestLateBefore(t *testing.T) {
	a := &api{t: t, now: base(), pageSize: 10}
	cfg := testConfig(a)
	e := newEngine(t, a, cfg)
	until := base().Add(-time.Hour)
	p, err := e.Poll(context.Background(), e.codec.encode(cursor{Until: until}))
	if err != nil {
		t.Fatal(err)
	}
	if !p.LateBefore.Equal(until) {
		t.Fatalf("LateBefore %v, want the watermark %v the window re-reads behind", p.LateBefore, until)
	}
	p, err = e.Poll(context.Background(), e.codec.encode(cursor{Until: until, Exact: true}))
	if err != nil || !p.LateBefore.IsZero() {
		t.Fatalf("an exact window gives LateBefore %v (%v), want none", p.LateBefore, err)
	}
}

// TestEndAtBoundsTheSpan: with StartAt and EndAt the engine reads exactly
// [StartAt, EndAt) in bounded windows, then stays at EndAt with nothing
// more to read, however far the clock moves.
func TestEndAtBoundsTheSpan(t *testing.T) {
	a := &api{t: t, now: base(), pageSize: 7}
	start, end := base().Add(-50*time.Hour), base().Add(-20*time.Hour)
	for i := range 300 {
		a.add(fmt.Sprintf("e%03d", i), base().Add(-60*time.Hour).Add(time.Duration(i)*12*time.Minute), 0)
	}
	cfg := testConfig(a)
	cfg.StartAt, cfg.EndAt, cfg.MaxWindow = start, end, 4*time.Hour
	r := newRelay(t, newEngine(t, a, cfg), a)
	r.drain(1000)
	want := 0
	for _, ev := range a.events {
		if !ev.at.Before(start) && ev.at.Before(end) {
			want++
			if r.seen[ev.id] != 1 {
				t.Errorf("event %s at %v read %d times, want once", ev.id, ev.at, r.seen[ev.id])
			}
		}
	}
	if r.distinct() != want {
		t.Errorf("read %d events, want the %d of [start, end)", r.distinct(), want)
	}
	for _, w := range a.opened {
		if w.To.After(end) || w.To.Sub(w.From) > cfg.MaxWindow+cfg.Overlap {
			t.Errorf("window %v: past EndAt %v or wider than max_window", w, end)
		}
	}
	last := r.pages[len(r.pages)-1]
	if !last.Watermark.Equal(end) || last.More {
		t.Errorf("last page: watermark %v more %v, want %v and no more", last.Watermark, last.More, end)
	}
	opened := len(a.opened)
	a.now = a.now.Add(6 * time.Hour)
	if p := r.poll(); len(p.Events) != 0 || p.More || !p.Watermark.Equal(end) || len(a.opened) != opened {
		t.Errorf("a poll after the end read %d events, more %v, watermark %v, opened %d windows", len(p.Events), p.More, p.Watermark, len(a.opened)-opened)
	}
}
