package pingone

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/units"
)

// testNow is the fixed clock of the window tests: sub-millisecond on
// purpose, since every window edge is truncated to the millisecond.
var testNow = time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.UTC)

// queryWindow parses the filter of an activities request query.
func queryWindow(t *testing.T, rawQuery string) (from, to time.Time, limit int) {
	t.Helper()
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	m := filterRE.FindStringSubmatch(q.Get("filter"))
	if m == nil {
		t.Fatalf("filter %q does not match", q.Get("filter"))
	}
	limit, _ = strconv.Atoi(q.Get("limit"))
	return ms(m[1]), ms(m[2]), limit
}

func mustDecode(t *testing.T, cur source.Cursor) cursor {
	t.Helper()
	c, err := decodeCursor(cur)
	if err != nil {
		t.Fatalf("decodeCursor(%s): %v", cur, err)
	}
	return c
}

func ids(p source.Page) []string {
	var out []string
	for _, e := range p.Events {
		out = append(out, e.ID)
	}
	slices.Sort(out)
	return out
}

func TestPollFirstWindow(t *testing.T) {
	f := newFakeAPI()
	f.add("in", ms("2026-11-25T10:00:00Z"))
	f.add("overlap-edge", ms("2026-11-24T11:59:00.123Z")) // == from: included
	f.add("too-old", ms("2026-11-24T11:59:00.122Z"))
	f.add("to-edge", ms("2026-11-25T11:58:00.123Z")) // == to: next window's
	srv := serveFake(t, f)
	s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, nil)

	p, err := s.Poll(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	if strings.Contains(reqs[0], "+") || !strings.Contains(reqs[0], "%20") {
		t.Errorf("query %q: want spaces as %%20", reqs[0])
	}
	q, _ := url.ParseQuery(reqs[0])
	if got, want := q.Get("filter"), `recordedAt ge "2026-11-24T11:59:00.123Z" and recordedAt lt "2026-11-25T11:58:00.123Z"`; got != want {
		t.Errorf("filter = %s\nwant     %s", got, want)
	}
	if got := q.Get("limit"); got != "1000" {
		t.Errorf("limit = %s, want 1000", got)
	}
	if diff := cmp.Diff([]string{"in", "overlap-edge"}, ids(p)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	want := cursor{Until: ms("2026-11-25T11:58:00.123Z")}
	if diff := cmp.Diff(want, mustDecode(t, p.Next)); diff != "" {
		t.Errorf("next cursor (-want +got):\n%s", diff)
	}
	if !p.Watermark.Equal(want.Until) || p.More || p.Gap != nil {
		t.Errorf("page: watermark %v more %v gap %v; want %v false nil", p.Watermark, p.More, p.Gap, want.Until)
	}
	if got := p.DedupHorizon; !got.Equal(ms("2026-11-24T11:59:00.123Z")) {
		t.Errorf("DedupHorizon = %v, want the window's from", got)
	}
	for _, e := range p.Events {
		if e.Source != "p1" || e.Provider != "pingone" || e.Tenant != "env-1" {
			t.Errorf("event envelope = %+v", e)
		}
		if e.ID == "in" && (!e.Time.Equal(ms("2026-11-25T10:00:00Z")) || string(e.Data) != string(fakeActivityJSON("in", e.Time))) {
			t.Errorf("event in: time %v data %s", e.Time, e.Data)
		}
	}
}

func TestPollRequestHeaders(t *testing.T) {
	var got http.Header
	f := newFakeAPI()
	f.override = func(w http.ResponseWriter, r *http.Request, n int) bool {
		got = r.Header.Clone()
		return false
	}
	srv := serveFake(t, f)
	s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, nil)
	if _, err := s.Poll(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"Authorization": "Bearer tok-1", "Accept": "application/json", "User-Agent": httpx.UserAgent} {
		if got.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, got.Get(k), want)
		}
	}
}

func TestPollNothingNew(t *testing.T) {
	f := newFakeAPI()
	srv := serveFake(t, f)
	s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, nil)
	for _, until := range []string{"2026-11-25T11:58:00.123Z", "2026-11-25T11:59:00Z"} {
		cur := cursor{Until: ms(until)}.encode()
		p, err := s.Poll(t.Context(), cur)
		if err != nil {
			t.Fatal(err)
		}
		if string(p.Next) != string(cur) || !p.Watermark.Equal(ms(until)) || p.More || len(p.Events) != 0 {
			t.Errorf("until %s: page = %+v, want the cursor unchanged and no events", until, p)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests, want none", n)
	}
	if n := f.tokenCount(); n != 0 {
		t.Errorf("%d token requests, want none", n)
	}
}

func TestPollShortLookbackFirstRun(t *testing.T) {
	// lookback < settle_delay: nothing to read yet, but the first cursor
	// is stored so that the start does not drift with each poll.
	s := newTestSource(t, "http://127.0.0.1:1", nil, func() time.Time { return testNow }, func(c *Config) {
		c.Lookback = units.Duration(time.Minute)
	})
	p, err := s.Poll(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cursor{Until: ms("2026-11-25T11:59:00.123Z")}, mustDecode(t, p.Next)); diff != "" {
		t.Errorf("cursor (-want +got):\n%s", diff)
	}
}

func TestPollCatchUpInBoundedWindows(t *testing.T) {
	f := newFakeAPI()
	srv := serveFake(t, f)
	s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, nil)
	until := ms("2026-11-22T02:00:00Z")
	cur := cursor{Until: until}.encode()
	end := ms("2026-11-25T11:58:00.123Z")
	var windows [][2]time.Time
	for i := 0; ; i++ {
		if i > 10 {
			t.Fatal("catch-up does not end")
		}
		p, err := s.Poll(t.Context(), cur)
		if err != nil {
			t.Fatal(err)
		}
		reqs := f.requests()
		from, to, _ := queryWindow(t, reqs[len(reqs)-1])
		windows = append(windows, [2]time.Time{from, to})
		if !from.Equal(until.Add(-time.Minute)) {
			t.Errorf("window %d from %v, want until-overlap %v", i, from, until.Add(-time.Minute))
		}
		if to.Sub(until) > 24*time.Hour {
			t.Errorf("window %d advances %v, more than 24h", i, to.Sub(until))
		}
		if !p.Watermark.Equal(to) {
			t.Errorf("window %d watermark %v, want %v", i, p.Watermark, to)
		}
		cur, until = p.Next, to
		if !p.More {
			break
		}
	}
	if len(windows) != 4 {
		t.Errorf("%d windows, want 4: %v", len(windows), windows)
	}
	if !until.Equal(end) {
		t.Errorf("caught up to %v, want %v", until, end)
	}
}

func TestPollGapOlderThanRetention(t *testing.T) {
	f := newFakeAPI()
	srv := serveFake(t, f)
	s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, nil)
	old := ms("2026-11-01T00:00:00Z")
	limit := ms("2026-11-11T12:05:00.123Z") // now - 14d + 5m
	p, err := s.Poll(t.Context(), cursor{Until: old}.encode())
	if err != nil {
		t.Fatal(err)
	}
	want := &source.Gap{From: old, To: limit, Reason: "older than the 14 days the activities API serves"}
	if diff := cmp.Diff(want, p.Gap); diff != "" {
		t.Errorf("gap (-want +got):\n%s", diff)
	}
	from, to, _ := queryWindow(t, f.requests()[0])
	if !from.Equal(limit) || !to.Equal(limit.Add(24*time.Hour)) {
		t.Errorf("window [%v, %v), want [%v, +24h)", from, to, limit)
	}
	if !p.More || !p.Watermark.Equal(to) {
		t.Errorf("more %v watermark %v; want true %v", p.More, p.Watermark, to)
	}

	// Within reach, only the overlap is clamped: no gap.
	p, err = s.Poll(t.Context(), cursor{Until: limit.Add(30 * time.Second)}.encode())
	if err != nil {
		t.Fatal(err)
	}
	if p.Gap != nil {
		t.Errorf("gap %+v for a watermark within reach", p.Gap)
	}
	reqs := f.requests()
	if from, _, _ := queryWindow(t, reqs[len(reqs)-1]); !from.Equal(limit) {
		t.Errorf("from %v, want the clamp %v", from, limit)
	}
}

func TestPollFirstRunFullLookback(t *testing.T) {
	f := newFakeAPI()
	srv := serveFake(t, f)
	s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, func(c *Config) {
		c.Lookback = units.Duration(MaxLookback)
	})
	p, err := s.Poll(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Gap != nil {
		t.Errorf("first run reports gap %+v; a full lookback is not a loss", p.Gap)
	}
	if from, _, _ := queryWindow(t, f.requests()[0]); !from.Equal(ms("2026-11-11T12:05:00.123Z")) {
		t.Errorf("from = %v, want now-14d+5m", from)
	}
}

func TestPollPagesRepeatAndResume(t *testing.T) {
	f := newFakeAPI()
	base := ms("2026-11-25T09:00:00Z")
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("a%02d", i)
		f.add(id, base.Add(time.Duration(i%3)*time.Millisecond)) // bursts in the same millisecond
		want = append(want, id)
	}
	srv := serveFake(t, f)
	s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, func(c *Config) { c.PageSize = 10 })
	start := cursor{Until: ms("2026-11-25T08:00:00Z")}.encode()

	p1, err := s.Poll(t.Context(), start)
	if err != nil {
		t.Fatal(err)
	}
	mid := mustDecode(t, p1.Next)
	if !mid.inWindow() || !mid.Until.Equal(ms("2026-11-25T08:00:00Z")) || !p1.More || !p1.Watermark.Equal(mid.Until) {
		t.Fatalf("after page 1: cursor %+v more %v watermark %v", mid, p1.More, p1.Watermark)
	}
	if !strings.HasPrefix(mid.Next, srv.URL) {
		t.Errorf("next %q is not on the server", mid.Next)
	}
	// A repeated poll (the page was not stored) gives the same page.
	again, err := s.Poll(t.Context(), start)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ids(p1), ids(again)); diff != "" || string(again.Next) != string(p1.Next) {
		t.Errorf("repeated poll differs (-first +again):\n%s\nnext %s vs %s", diff, p1.Next, again.Next)
	}
	// Resume from the stored mid-window cursor, with a fresh source (a
	// restart).
	s2 := newTestSource(t, srv.URL, nil, func() time.Time { return testNow.Add(time.Hour) }, func(c *Config) { c.PageSize = 10 })
	got := ids(p1)
	cur := p1.Next
	pages := 1
	for {
		p, err := s2.Poll(t.Context(), cur)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, ids(p)...)
		cur = p.Next
		c := mustDecode(t, cur)
		if !c.inWindow() {
			if !c.Until.Equal(mid.To) || !p.Watermark.Equal(mid.To) {
				t.Errorf("final cursor %+v watermark %v, want until = window to %v", c, p.Watermark, mid.To)
			}
			if !p.More {
				t.Error("window done an hour behind now - settle: More = false, want true (catch up)")
			}
			break
		}
		if !p.More {
			t.Fatal("mid-window page with More = false")
		}
		if !c.From.Equal(mid.From) || !c.To.Equal(mid.To) {
			t.Errorf("window moved mid-way: %+v, want [%v, %v)", c, mid.From, mid.To)
		}
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if pages != 3 {
		t.Errorf("%d pages, want 3", pages)
	}
}

func TestPollDropsEventsOutsideWindow(t *testing.T) {
	f := newFakeAPI()
	f.override = func(w http.ResponseWriter, r *http.Request, n int) bool {
		fmt.Fprintf(w, `{"_embedded":{"activities":[%s,%s,%s]}}`,
			fakeActivityJSON("early", ms("2026-11-25T07:58:59.999Z")),
			fakeActivityJSON("ok", ms("2026-11-25T08:00:00Z")),
			fakeActivityJSON("late", ms("2026-11-25T11:58:00.123Z")))
		return true
	}
	srv := serveFake(t, f)
	s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, nil)
	f.issued = "x"
	p, err := s.Poll(t.Context(), cursor{Until: ms("2026-11-25T08:00:00Z")}.encode())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ok"}, ids(p)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestPollOverlapPicksUpLateEvent(t *testing.T) {
	f := newFakeAPI()
	srv := serveFake(t, f)
	clock := &fixedClock{t: testNow}
	s := newTestSource(t, srv.URL, nil, clock.Now, nil)
	p, err := s.Poll(t.Context(), cursor{Until: ms("2026-11-25T11:50:00Z")}.encode())
	if err != nil {
		t.Fatal(err)
	}
	edge := mustDecode(t, p.Next).Until // 11:58:00.123
	// An event recorded 20s before the watermark shows up only now.
	f.add("late", edge.Add(-20*time.Second))
	clock.Add(30 * time.Second)
	p, err = s.Poll(t.Context(), p.Next)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"late"}, ids(p)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestPollNextLinkOffHost(t *testing.T) {
	for _, href := range []string{"https://evil.example/v1/environments/env-1/activities?cursor=1", "HOST/x", "http://127.0.0.2:1/x", "//other.example/x"} {
		f := newFakeAPI()
		f.override = func(w http.ResponseWriter, r *http.Request, n int) bool {
			if href == "HOST/x" {
				href = "https://" + r.Host + "/x" // same host, other scheme
			}
			fmt.Fprintf(w, `{"_links":{"next":{"href":%q}},"_embedded":{"activities":[]}}`, href)
			return true
		}
		srv := serveFake(t, f)
		s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, nil)
		_, err := s.Poll(t.Context(), nil)
		var he *delivery.Error
		if !errors.As(err, &he) || he.Class != delivery.Permanent || !strings.Contains(err.Error(), "next page link leaves the configured API") {
			t.Errorf("next %q: err = %v, want Permanent leaving the API", href, err)
		}
	}
}

func TestPollRelativeNextLink(t *testing.T) {
	f := newFakeAPI()
	f.override = func(w http.ResponseWriter, r *http.Request, n int) bool {
		fmt.Fprint(w, `{"_links":{"next":{"href":"/v1/environments/env-1/activities?cursor=abc"}},"_embedded":{"activities":[]}}`)
		return true
	}
	srv := serveFake(t, f)
	s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, nil)
	p, err := s.Poll(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mustDecode(t, p.Next).Next, srv.URL+"/v1/environments/env-1/activities?cursor=abc"; got != want {
		t.Errorf("next = %q, want %q", got, want)
	}
}

func TestPollRejectedNextRestartsWindow(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusNotFound} {
		f := newFakeAPI()
		for i := range 5 {
			f.add(fmt.Sprint("e", i), ms("2026-11-25T09:00:00Z").Add(time.Duration(i)*time.Second))
		}
		f.override = func(w http.ResponseWriter, r *http.Request, n int) bool {
			if r.URL.Query().Get("cursor") == "" {
				return false
			}
			w.WriteHeader(status)
			fmt.Fprint(w, `{"code":"INVALID_DATA","message":"The cursor is invalid or expired"}`)
			return true
		}
		srv := serveFake(t, f)
		s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, func(c *Config) { c.PageSize = 2 })
		win := cursor{Until: ms("2026-11-25T08:00:00Z"), From: ms("2026-11-25T07:59:00Z"), To: ms("2026-11-25T11:00:00Z"),
			Next: srv.URL + "/v1/environments/env-1/activities?cursor=2&limit=2"}
		p, err := s.Poll(t.Context(), win.encode())
		if err != nil {
			t.Fatalf("status %d: %v", status, err)
		}
		reqs := f.requests()
		if len(reqs) != 2 {
			t.Fatalf("status %d: %d requests, want 2", status, len(reqs))
		}
		from, to, limit := queryWindow(t, reqs[1])
		if !from.Equal(win.From) || !to.Equal(win.To) || limit != 2 {
			t.Errorf("status %d: restart [%v, %v) limit %d, want the same window", status, from, to, limit)
		}
		if diff := cmp.Diff([]string{"e3", "e4"}, ids(p)); diff != "" {
			t.Errorf("status %d: events (-want +got):\n%s", status, diff)
		}
		if c := mustDecode(t, p.Next); !c.Until.Equal(win.Until) || !c.From.Equal(win.From) || !c.To.Equal(win.To) {
			t.Errorf("status %d: cursor after restart %+v", status, c)
		}
	}
}

func TestPollStoredWindowTooOld(t *testing.T) {
	f := newFakeAPI()
	srv := serveFake(t, f)
	s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, nil)
	win := cursor{Until: ms("2026-11-11T12:10:00Z"), From: ms("2026-11-11T12:00:00Z"), To: ms("2026-11-12T12:00:00Z"),
		Next: srv.URL + "/v1/environments/env-1/activities?cursor=7"}
	p, err := s.Poll(t.Context(), win.encode())
	if err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 1 || strings.Contains(reqs[0], "cursor=") {
		t.Fatalf("requests %q, want one fresh window", reqs)
	}
	from, to, _ := queryWindow(t, reqs[0])
	if !from.Equal(ms("2026-11-11T12:09:00Z")) || !to.Equal(win.Until.Add(24*time.Hour)) {
		t.Errorf("window [%v, %v)", from, to)
	}
	if p.Gap != nil {
		t.Errorf("gap %+v: the watermark is within reach", p.Gap)
	}
}

func TestPollBadCursor(t *testing.T) {
	s := newTestSource(t, "http://127.0.0.1:1", nil, func() time.Time { return testNow }, nil)
	_, err := s.Poll(t.Context(), source.Cursor(`{"v":7}`))
	var he *delivery.Error
	if !errors.As(err, &he) || he.Class != delivery.Permanent || !strings.Contains(he.Fix, "auditrelay checkpoint reset --source p1 --config FILE") {
		t.Errorf("err = %v, want Permanent asking for a reset", err)
	}
}

func TestPollErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		class      delivery.Class
		retryAfter time.Duration
		contains   []string
	}{
		{name: "400", status: 400, body: `{"id":"x","code":"INVALID_DATA","message":"The request could not be completed. One or more validation errors were in the request.","details":[{"code":"INVALID_VALUE","target":"filter","message":"recordedAt must be within the last 14 days"}]}`,
			class: delivery.Permanent, contains: []string{"pingone: list activities: HTTP 400: The request could not be completed. One or more validation errors were in the request.; filter: recordedAt must be within the last 14 days"}},
		{name: "403", status: 403, body: `{"code":"ACCESS_FAILED","message":"The request could not be completed. You do not have access to this resource."}`,
			class: delivery.Permanent, contains: []string{"HTTP 403", "You do not have access", "(grant the worker application a role that can read audit activities, e.g. Environment Admin (or Identity Data Read Only) on this environment)"}},
		{name: "404", status: 404, body: `{"code":"NOT_FOUND","message":"Unable to find environment"}`,
			class: delivery.Permanent, contains: []string{"HTTP 404", "(environment not found: check environment_id and region/api_url)"}},
		{name: "429", status: 429, header: map[string]string{"Retry-After": "7"}, body: `{"code":"REQUEST_LIMITED","message":"Too many requests"}`,
			class: delivery.Throttled, retryAfter: 7 * time.Second, contains: []string{"HTTP 429"}},
		{name: "408", status: 408, class: delivery.Transient, contains: []string{"HTTP 408"}},
		{name: "500", status: 500, body: "<html>oops</html>", class: delivery.Transient, contains: []string{"HTTP 500: <html>oops</html>"}},
		{name: "503", status: 503, class: delivery.Transient},
		{name: "bad json", status: 200, body: `{"_embedded":{"activities":[{"id":"a","recordedAt":"2026-`, class: delivery.Transient, contains: []string{"malformed page"}},
		{name: "no embedded", status: 200, body: `{"_links":{}}`, class: delivery.Transient, contains: []string{"malformed page: no _embedded"}},
		{name: "short body", status: 200, header: map[string]string{"Content-Length": "500"}, body: `{"_embedded":{"activities":[`, class: delivery.Transient, contains: []string{"reading the page", "unexpected EOF"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI()
			f.override = func(w http.ResponseWriter, r *http.Request, n int) bool {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
				return true
			}
			srv := serveFake(t, f)
			s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, nil)
			_, err := s.Poll(t.Context(), nil)
			var he *delivery.Error
			if !errors.As(err, &he) {
				t.Fatalf("err = %v, want *delivery.Error", err)
			}
			if he.Class != tt.class || he.RetryAfter != tt.retryAfter {
				t.Errorf("class %v retry-after %v, want %v %v (%v)", he.Class, he.RetryAfter, tt.class, tt.retryAfter, err)
			}
			for _, c := range tt.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error %q does not contain %q", err, c)
				}
			}
			if len(f.requests()) != 1 {
				t.Errorf("%d requests, want 1", len(f.requests()))
			}
		})
	}
}

func TestPollBodyTooLarge(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		f := newFakeAPI()
		f.override = func(w http.ResponseWriter, r *http.Request, n int) bool {
			body := `{"_embedded":{"activities":[` + strings.Repeat(" ", 2000) + `]}}`
			if !chunked {
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			}
			fmt.Fprint(w, body)
			return true
		}
		srv := serveFake(t, f)
		s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, nil)
		s.maxBody = 1000
		_, err := s.Poll(t.Context(), nil)
		if c, _ := delivery.ClassOf(err); c != delivery.Transient || !strings.Contains(fmt.Sprint(err), "page is larger than") {
			t.Errorf("chunked %v: err = %v, want Transient too large", chunked, err)
		}
	}
}

func TestPoll401RefreshesOnce(t *testing.T) {
	f := newFakeAPI()
	f.override = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 1 {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"code":"INVALID_TOKEN","message":"expired"}`)
			return true
		}
		return false
	}
	srv := serveFake(t, f)
	s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, nil)
	if _, err := s.Poll(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if got := f.tokenCount(); got != 2 {
		t.Errorf("%d tokens, want 2", got)
	}
	if diff := cmp.Diff([]string{"Bearer tok-1", "Bearer tok-2"}, f.auths); diff != "" {
		t.Errorf("authorization (-want +got):\n%s", diff)
	}
}

func TestPoll401Twice(t *testing.T) {
	f := newFakeAPI()
	f.override = func(w http.ResponseWriter, r *http.Request, n int) bool {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"code":"INVALID_TOKEN","message":"The access token is invalid"}`)
		return true
	}
	srv := serveFake(t, f)
	s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, nil)
	_, err := s.Poll(t.Context(), nil)
	var he *delivery.Error
	if !errors.As(err, &he) || he.Class != delivery.Permanent || he.Status != 401 ||
		!strings.Contains(err.Error(), "token rejected by the activities API twice: The access token is invalid") {
		t.Errorf("err = %v", err)
	}
	if got := len(f.requests()); got != 2 {
		t.Errorf("%d requests, want 2", got)
	}
	if got := f.tokenCount(); got != 2 {
		t.Errorf("%d tokens, want 2", got)
	}
}

func TestTokenAuthMethods(t *testing.T) {
	for _, tt := range []struct{ server, client string }{
		{AuthBasic, AuthBasic}, {AuthPost, AuthPost}, {AuthBasic, AuthPost}, {AuthPost, AuthBasic},
	} {
		f := newFakeAPI()
		f.authMethod = tt.server
		f.secret = "s3cret+/:&?" // characters that need encoding either way
		srv := serveFake(t, f)
		s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, func(c *Config) {
			c.TokenAuthMethod = tt.client
			c.ClientSecret = f.clientSecret()
		})
		_, err := s.Poll(t.Context(), nil)
		if tt.server == tt.client {
			if err != nil {
				t.Errorf("%s: %v", tt.client, err)
			}
			continue
		}
		var he *delivery.Error
		if !errors.As(err, &he) || he.Class != delivery.Permanent || he.Op != "pingone: get token" || he.Fix != fixCredentials ||
			!strings.Contains(err.Error(), "invalid_client") {
			t.Errorf("server %s client %s: err = %v, want Permanent invalid_client with the fix", tt.server, tt.client, err)
		}
		// The secret as typed, form-encoded (client_secret_post) and in the
		// Basic header (client_secret_basic, escaped first or not).
		esc := url.QueryEscape(f.secret)
		for _, leak := range []string{f.secret, esc,
			base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(f.clientID) + ":" + esc)),
			base64.StdEncoding.EncodeToString([]byte(f.clientID + ":" + f.secret))} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("error reveals the secret (%q): %v", leak, err)
			}
		}
	}
}

func TestTokenCached(t *testing.T) {
	f := newFakeAPI()
	srv := serveFake(t, f)
	s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, nil)
	cur := cursor{Until: ms("2026-11-25T11:00:00Z")}.encode()
	for range 3 {
		if _, err := s.Poll(t.Context(), cur); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.tokenCount(); got != 1 {
		t.Errorf("%d tokens, want 1", got)
	}
}

func TestTokenErrors(t *testing.T) {
	for _, tt := range []struct {
		name     string
		status   int
		body     string
		class    delivery.Class
		contains string
	}{
		{"500", 500, `upstream error`, delivery.Transient, "HTTP 500"},
		{"429", 429, `{"error":"rate_limited"}`, delivery.Throttled, "HTTP 429"},
		{"404", 404, `{"code":"NOT_FOUND","message":"The requested resource was not found"}`, delivery.Permanent, "(environment not found: check environment_id and region/auth_url)"},
		{"grant", 400, `{"error":"unauthorized_client","error_description":"grant type not allowed"}`, delivery.Permanent, "(enable the Client Credentials grant type on the worker application)"},
		{"401", 401, `{}`, delivery.Permanent, fixCredentials},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := serveFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, nil)
			_, err := s.Poll(t.Context(), nil)
			var he *delivery.Error
			if !errors.As(err, &he) || he.Class != tt.class || he.Op != "pingone: get token" || !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("err = %v (class %v), want %v containing %q", err, he, tt.class, tt.contains)
			}
		})
	}
}

func TestTokenUnreachable(t *testing.T) {
	dnsClient := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "auth.pingone.invalid", IsNotFound: true}}
		},
	}}
	// A port nothing listens on: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	for _, tt := range []struct {
		name   string
		base   string
		client *http.Client
		fix    string
	}{
		{"dns", "http://127.0.0.1:1", dnsClient, "cannot resolve 127.0.0.1:1: check region/auth_url"},
		{"refused", refused, nil, "cannot reach " + strings.TrimPrefix(refused, "http://") + ": check region/auth_url"},
	} {
		s := newTestSource(t, tt.base, tt.client, func() time.Time { return testNow }, nil)
		_, err := s.Poll(t.Context(), nil)
		var he *delivery.Error
		if !errors.As(err, &he) || he.Class != delivery.Transient || !strings.HasPrefix(he.Fix, tt.fix) {
			t.Errorf("%s: err = %v, want Transient with fix %q", tt.name, err, tt.fix)
		}
	}
}

func TestCheck(t *testing.T) {
	f := newFakeAPI()
	f.add("recent", ms("2026-11-25T11:57:30Z"))
	srv := serveFake(t, f)
	s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, nil)
	if err := s.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	from, to, limit := queryWindow(t, f.requests()[0])
	if !from.Equal(ms("2026-11-25T11:57:00.123Z")) || !to.Equal(ms("2026-11-25T11:58:00.123Z")) || limit != 1 {
		t.Errorf("check window [%v, %v) limit %d", from, to, limit)
	}

	f.override = func(w http.ResponseWriter, r *http.Request, n int) bool {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"code":"ACCESS_FAILED","message":"Forbidden"}`)
		return true
	}
	err := s.Check(t.Context())
	if !delivery.IsPermanent(err) || !strings.Contains(err.Error(), fixRole) {
		t.Errorf("Check = %v, want Permanent with the role fix", err)
	}
}

func TestNew(t *testing.T) {
	good := testConfig("https://api.pingone.eu")
	lim := rate.NewLimiter(1, 1)
	if _, err := New("p1", good, Options{}); err == nil || !strings.Contains(err.Error(), "rate limiter is required") {
		t.Errorf("New without limiter: %v", err)
	}
	if _, err := New("", good, Options{Limiter: lim}); err == nil {
		t.Error("New with an empty name: nil error")
	}
	bad := good
	bad.ClientID = ""
	bad.PageSize = 5000
	if _, err := New("p1", bad, Options{Limiter: lim}); err == nil || !strings.Contains(err.Error(), "client_id: required") || !strings.Contains(err.Error(), "page_size") {
		t.Errorf("New with a bad config: %v", err)
	}
	for _, api := range []string{"https://api.pingone.eu", "https://api.pingone.eu/", "https://api.pingone.eu/v1", "https://api.pingone.eu/v1/"} {
		cfg := good
		cfg.APIURL = api
		s, err := New("p1", cfg, Options{Limiter: lim})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.Fingerprint(), "pingone|env-1|https://api.pingone.eu"; got != want {
			t.Errorf("api_url %s: Fingerprint = %q, want %q", api, got, want)
		}
		if got, want := s.firstPageURL(ms("2026-01-01T00:00:00Z"), ms("2026-01-01T00:01:00Z"), 5),
			"https://api.pingone.eu/v1/environments/env-1/activities?filter=recordedAt%20ge%20%222026-01-01T00%3A00%3A00.000Z%22%20and%20recordedAt%20lt%20%222026-01-01T00%3A01%3A00.000Z%22&limit=5"; got != want {
			t.Errorf("firstPageURL = %s\nwant            %s", got, want)
		}
	}
	cfg := good
	cfg.AuthURL = "https://auth.pingone.eu/"
	s, err := New("p1", cfg, Options{Limiter: lim})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.creds.TokenURL, "https://auth.pingone.eu/env-1/as/token"; got != want {
		t.Errorf("token URL = %s, want %s", got, want)
	}
}

func TestConfigValidateURLs(t *testing.T) {
	cfg := testConfig("https://api.pingone.eu")
	cfg.APIURL = "https://api.pingone.eu/?x=1"
	cfg.SettleDelay = units.Duration(48 * time.Hour)
	errs := cfg.Validate()
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"api_url: \"https://api.pingone.eu/?x=1\" must not carry a query or fragment", "settle_delay: 2d is too long"} {
		if !strings.Contains(all, want) {
			t.Errorf("Validate: %s\nwant %q", all, want)
		}
	}
}

func TestPollStoredWindowNotSettled(t *testing.T) {
	f := newFakeAPI()
	srv := serveFake(t, f)
	s := newTestSource(t, srv.URL, nil, func() time.Time { return testNow }, nil)
	// Written by a clock five minutes ahead: its window ends after now - settle.
	win := cursor{Until: ms("2026-11-25T11:50:00Z"), From: ms("2026-11-25T11:49:00Z"), To: ms("2026-11-25T12:03:00Z"),
		Next: srv.URL + "/v1/environments/env-1/activities?cursor=3"}
	if _, err := s.Poll(t.Context(), win.encode()); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 1 || strings.Contains(reqs[0], "cursor=") {
		t.Fatalf("requests %q, want one fresh window", reqs)
	}
	if from, to, _ := queryWindow(t, reqs[0]); !from.Equal(ms("2026-11-25T11:49:00Z")) || !to.Equal(ms("2026-11-25T11:58:00.123Z")) {
		t.Errorf("window [%v, %v), want [watermark - overlap, now - settle)", from, to)
	}
}
