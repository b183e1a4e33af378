package pingone

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/source"
)

// The integration tests run the source against internal/emulator over real
// HTTP (or, inside synctest bubbles, over an in-memory network).

const emuEnvID = "3f1c2b7a-0d4e-4b8a-9c61-5e2f7a9b0c11"

// emuTest is an emulator, the server in front of it and the clock both the
// emulator and the source read.
type emuTest struct {
	emu   *emulator.PingOne
	base  string
	clock *fixedClock
	gen   *emulator.Generator
}

// newEmuTest starts an emulator on a loopback server, with one environment
// using auth method, no rate limit, and a clock stopped at testNow. wrap, if
// set, wraps the emulator's handler.
func newEmuTest(t *testing.T, method string, wrap func(http.Handler) http.Handler) *emuTest {
	t.Helper()
	clock := &fixedClock{t: testNow}
	emu := emulator.NewPingOne(emulator.PingOneOptions{RateLimit: -1, Now: clock.Now, Seed: 7})
	emu.AddEnvironment(emulator.Environment{ID: emuEnvID, ClientID: "worker-1", ClientSecret: "pa55+word/=", AuthMethod: method})
	var h http.Handler = emu
	if wrap != nil {
		h = wrap(emu)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &emuTest{emu: emu, base: srv.URL, clock: clock, gen: emulator.NewGenerator(11)}
}

// config returns the source configuration for the emulator's environment.
func (e *emuTest) config(edit func(*Config)) func(*Config) {
	return func(c *Config) {
		c.EnvironmentID = emuEnvID
		c.ClientID = "worker-1"
		c.ClientSecret = secret.New("pa55+word/=")
		if edit != nil {
			edit(c)
		}
	}
}

func (e *emuTest) source(t *testing.T, edit func(*Config)) *Source {
	t.Helper()
	return newTestSource(t, e.base, nil, e.clock.Now, e.config(edit))
}

// backlog adds n generated activities recorded in [from, to).
func (e *emuTest) backlog(n int, from, to time.Time) {
	e.emu.Backlog(e.gen, emuEnvID, e.base, n, from, to)
}

// idsIn returns the ids of the emulator's activities recorded in [from, to).
func (e *emuTest) idsIn(from, to time.Time) []string {
	var out []string
	for _, a := range e.emu.Activities(emuEnvID) {
		if !a.RecordedAt.Before(from) && a.RecordedAt.Before(to) {
			out = append(out, a.ID)
		}
	}
	slices.Sort(out)
	return out
}

// pipelineModel stands in for the store: it drops events whose id it keeps,
// keeps ids until a page's dedup horizon passes them, and counts what it
// delivers.
type pipelineModel struct {
	seen      map[string]time.Time
	delivered map[string]int
	dropped   int
	pages     int
	data      map[string][]byte
}

func newPipelineModel() *pipelineModel {
	return &pipelineModel{seen: map[string]time.Time{}, delivered: map[string]int{}, data: map[string][]byte{}}
}

// store applies a page as the store would, in one step.
func (m *pipelineModel) store(p source.Page) {
	m.pages++
	for _, e := range p.Events {
		if _, dup := m.seen[e.ID]; dup {
			m.dropped++
			continue
		}
		m.seen[e.ID] = e.Time
		m.delivered[e.ID]++
		m.data[e.ID] = e.Data
	}
	if !p.DedupHorizon.IsZero() {
		for id, at := range m.seen {
			if at.Before(p.DedupHorizon) {
				delete(m.seen, id)
			}
		}
	}
}

func (m *pipelineModel) ids() []string {
	out := make([]string, 0, len(m.delivered))
	for id := range m.delivered {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// checkOnce fails the test unless every id of want was delivered exactly
// once and nothing else was.
func (m *pipelineModel) checkOnce(t *testing.T, want []string) {
	t.Helper()
	for id, n := range m.delivered {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
	if diff := cmp.Diff(want, m.ids()); diff != "" {
		t.Errorf("delivered events (-want +got):\n%s", diff)
	}
}

// drain polls from cur until the source has nothing more ready, storing
// every page, and returns the last cursor and page.
func drain(t *testing.T, s *Source, m *pipelineModel, cur source.Cursor) (source.Cursor, source.Page) {
	t.Helper()
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("drain: the source never stops returning More")
		}
		p, err := s.Poll(t.Context(), cur)
		if err != nil {
			t.Fatalf("poll %d: %v", i, err)
		}
		m.store(p)
		cur = p.Next
		if !p.More {
			return cur, p
		}
	}
}

func TestEmulatorTokenAuthMethods(t *testing.T) {
	for _, method := range []string{AuthBasic, AuthPost} {
		for _, configured := range []string{AuthBasic, AuthPost} {
			e := newEmuTest(t, method, nil)
			e.backlog(3, testNow.Add(-time.Hour), testNow.Add(-time.Hour+time.Minute))
			s := e.source(t, func(c *Config) { c.TokenAuthMethod = configured })
			p, err := s.Poll(t.Context(), nil)
			if method == configured {
				if err != nil || len(p.Events) != 3 {
					t.Errorf("application %s, configured %s: %d events, %v", method, configured, len(p.Events), err)
				}
				continue
			}
			var he *delivery.Error
			if !errors.As(err, &he) || he.Class != delivery.Permanent || he.Status != 401 || he.Fix != fixCredentials ||
				!strings.Contains(he.Msg, "invalid_client") {
				t.Errorf("application %s, configured %s: err = %v, want Permanent invalid_client with the fix", method, configured, err)
			}
		}
	}
}

func TestEmulatorPagesThroughBacklog(t *testing.T) {
	e := newEmuTest(t, AuthBasic, nil)
	until := testNow.Add(-3 * time.Hour).Truncate(time.Millisecond)
	to := testNow.Add(-2 * time.Minute).Truncate(time.Millisecond)
	e.backlog(2500, until, to)
	// Outside the window, on both sides: not to be delivered.
	e.backlog(40, until.Add(-3*time.Minute), until.Add(-time.Minute))
	e.backlog(40, to, testNow)
	s := e.source(t, nil)
	m := newPipelineModel()
	cur, last := drain(t, s, m, cursor{Until: until}.encode())

	m.checkOnce(t, e.idsIn(until, to))
	if m.pages != 3 {
		t.Errorf("%d pages, want 3 (2,500 events at 1,000 a page)", m.pages)
	}
	if c := mustDecode(t, cur); c.inWindow() || !c.Until.Equal(to) || !last.Watermark.Equal(to) {
		t.Errorf("final cursor %+v, watermark %v; want until = watermark = %v", c, last.Watermark, to)
	}
	served := e.emu.ServedIDs(emuEnvID)
	if len(served) != 2500 {
		t.Errorf("emulator served %d distinct activities, want the 2,500 of the window", len(served))
	}
	for id, n := range served {
		if n != 1 {
			t.Errorf("emulator served %s %d times, want 1", id, n)
		}
	}
	if got := e.emu.Stats().TokenRequests; got != 1 {
		t.Errorf("%d token requests, want 1", got)
	}
	// The data is the emulator's JSON, byte for byte.
	for _, a := range e.emu.Activities(emuEnvID) {
		if d, ok := m.data[a.ID]; ok && !bytes.Equal(d, a.JSON) {
			t.Fatalf("event %s data differs from what was served:\n got %s\nwant %s", a.ID, d, a.JSON)
		}
	}
}

func TestEmulatorRepeatedPoll(t *testing.T) {
	e := newEmuTest(t, AuthBasic, nil)
	e.backlog(250, testNow.Add(-time.Hour), testNow.Add(-10*time.Minute))
	s := e.source(t, func(c *Config) { c.PageSize = 100 })
	cur := cursor{Until: testNow.Add(-time.Hour).Truncate(time.Millisecond)}.encode()
	for range 3 { // first page, then a mid-window page
		a, err := s.Poll(t.Context(), cur)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Poll(t.Context(), cur)
		if err != nil {
			t.Fatal(err)
		}
		if !samePage(a, b) {
			t.Fatalf("repeated poll differs:\nfirst  %+v\nsecond %+v", a, b)
		}
		if len(a.Events) == 0 {
			t.Fatal("no events")
		}
		cur = a.Next
	}
}

func TestEmulatorLateEventInOverlap(t *testing.T) {
	e := newEmuTest(t, AuthBasic, nil)
	s := e.source(t, nil)
	m := newPipelineModel()
	start := testNow.Add(-30 * time.Minute).Truncate(time.Millisecond)
	e.backlog(50, start, testNow.Add(-3*time.Minute))
	edge := testNow.Add(-2 * time.Minute).Truncate(time.Millisecond) // the first window's to

	// Recorded 40s before the first window's end, but visible only 10s
	// after it was read: within settle_delay + overlap.
	late := e.gen.Activity(emuEnvID, e.base, edge.Add(-40*time.Second))
	late.VisibleAt = testNow.Add(10 * time.Second)
	// One recorded exactly on the edge, visible at once: the next window's.
	onEdge := e.gen.Activity(emuEnvID, e.base, edge)
	// One in the overlap, visible at once: read twice, delivered once.
	inOverlap := e.gen.Activity(emuEnvID, e.base, edge.Add(-20*time.Second))
	e.emu.Add(emuEnvID, late, onEdge, inOverlap)

	cur, _ := drain(t, s, m, cursor{Until: start}.encode())
	if m.delivered[late.ID] != 0 || m.delivered[onEdge.ID] != 0 {
		t.Fatalf("first window delivered the late or the edge event: %v %v", m.delivered[late.ID], m.delivered[onEdge.ID])
	}
	e.clock.Add(30 * time.Second)
	cur, _ = drain(t, s, m, cur)
	if m.delivered[late.ID] != 1 || m.delivered[onEdge.ID] != 1 {
		t.Errorf("late event delivered %d times, edge event %d times; want 1 each", m.delivered[late.ID], m.delivered[onEdge.ID])
	}
	if m.dropped != 1 || m.delivered[inOverlap.ID] != 1 {
		t.Errorf("%d duplicates dropped, want 1: the event in the overlap, read twice", m.dropped)
	}
	m.checkOnce(t, e.idsIn(start, mustDecode(t, cur).Until))
}

func TestEmulatorSameMillisecondBursts(t *testing.T) {
	e := newEmuTest(t, AuthBasic, nil)
	at := testNow.Add(-20 * time.Minute).Truncate(time.Millisecond)
	var acts []emulator.Activity
	for i := range 2300 {
		ms := at
		if i >= 1500 {
			ms = at.Add(time.Millisecond) // a second burst, one millisecond later
		}
		acts = append(acts, e.gen.Activity(emuEnvID, e.base, ms))
	}
	e.emu.Add(emuEnvID, acts...)
	s := e.source(t, func(c *Config) { c.PageSize = 1000 })
	m := newPipelineModel()
	start := at.Add(-time.Hour)
	cur, _ := drain(t, s, m, cursor{Until: start}.encode())
	m.checkOnce(t, e.idsIn(start, mustDecode(t, cur).Until))
	if len(m.delivered) != 2300 || m.pages != 3 {
		t.Errorf("%d events in %d pages, want 2300 in 3", len(m.delivered), m.pages)
	}
}

// faultOnce injects f into the first activities request only.
func faultOnce(emu **emulator.PingOne, f emulator.Faults) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		n := 0
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/activities") {
				n++
				if n == 1 {
					(*emu).SetFaults(f)
					defer (*emu).SetFaults(emulator.Faults{})
				}
			}
			h.ServeHTTP(w, r)
		})
	}
}

func TestEmulatorEarly401(t *testing.T) {
	var emu *emulator.PingOne
	e := newEmuTest(t, AuthBasic, faultOnce(&emu, emulator.Faults{Early401: 1}))
	emu = e.emu
	e.backlog(20, testNow.Add(-time.Hour), testNow.Add(-5*time.Minute))
	s := e.source(t, nil)
	m := newPipelineModel()
	start := testNow.Add(-time.Hour).Truncate(time.Millisecond)
	drain(t, s, m, cursor{Until: start}.encode())
	m.checkOnce(t, e.idsIn(start, testNow))
	if st := e.emu.Stats(); st.TokenRequests != 2 || st.ActivityRequests != 2 || st.Faults != 1 {
		t.Errorf("stats %+v, want 2 tokens, 2 activities requests, 1 fault", st)
	}
}

func TestEmulatorPersistent401(t *testing.T) {
	e := newEmuTest(t, AuthBasic, nil)
	e.emu.SetFaults(emulator.Faults{Early401: 1})
	s := e.source(t, nil)
	_, err := s.Poll(t.Context(), nil)
	var he *delivery.Error
	if !errors.As(err, &he) || he.Class != delivery.Permanent || he.Status != 401 ||
		!strings.Contains(err.Error(), "token rejected by the activities API twice: The request could not be completed. The access token has been revoked.") {
		t.Errorf("err = %v", err)
	}
	if st := e.emu.Stats(); st.TokenRequests != 2 || st.ActivityRequests != 2 {
		t.Errorf("stats %+v, want 2 tokens and 2 requests", st)
	}
}

func TestEmulatorErrorClasses(t *testing.T) {
	// A proxy in front of the emulator that misbehaves in one way each.
	const other = "0a0a0a0a-0000-4000-8000-000000000000"
	tests := []struct {
		name    string
		wrap    func(http.Handler) http.Handler
		api     string // path appended to api_url
		class   delivery.Class
		status  int
		message string
		fix     string
	}{
		{
			name: "403 token of another environment",
			wrap: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					r.URL.Path = strings.Replace(r.URL.Path, "/"+emuEnvID+"/as/token", "/"+other+"/as/token", 1)
					h.ServeHTTP(w, r)
				})
			},
			class: delivery.Permanent, status: 403,
			message: "The request could not be completed. You do not have access to this resource.",
			fix:     fixRole,
		},
		{
			name: "404 wrong API path", api: "/eu",
			class: delivery.Permanent, status: 404, message: "The requested resource was not found.", fix: fixEnvironment,
		},
		{
			name: "400 with details",
			wrap: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					q := r.URL.Query()
					if q.Has("limit") {
						q.Set("limit", "5000")
						r.URL.RawQuery = q.Encode()
					}
					h.ServeHTTP(w, r)
				})
			},
			class: delivery.Permanent, status: 400,
			message: "The request could not be completed. One or more validation errors were in the request.; limit: limit 5000 is out of range (1 to 1000)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmuTest(t, AuthBasic, tt.wrap)
			e.emu.AddEnvironment(emulator.Environment{ID: other, ClientID: "worker-1", ClientSecret: "pa55+word/=", AuthMethod: AuthBasic})
			s := e.source(t, func(c *Config) { c.APIURL = e.base + tt.api })
			_, err := s.Poll(t.Context(), nil)
			var he *delivery.Error
			if !errors.As(err, &he) {
				t.Fatalf("err = %v, want *delivery.Error", err)
			}
			if he.Class != tt.class || he.Status != tt.status || he.Msg != tt.message || he.Fix != tt.fix || he.Op != "pingone: list activities" {
				t.Errorf("got %v %d %q fix %q\nwant %v %d %q fix %q", he.Class, he.Status, he.Msg, he.Fix, tt.class, tt.status, tt.message, tt.fix)
			}
		})
	}
}

func TestEmulatorThrottled(t *testing.T) {
	t.Run("fault", func(t *testing.T) {
		e := newEmuTest(t, AuthBasic, nil)
		e.emu.SetFaults(emulator.Faults{Throttle: 1})
		_, err := e.source(t, nil).Poll(t.Context(), nil)
		if c, ra := delivery.ClassOf(err); c != delivery.Throttled || ra != time.Second {
			t.Errorf("err = %v: class %v retry-after %v, want throttled 1s", err, c, ra)
		}
	})
	t.Run("licence rate", func(t *testing.T) {
		clock := &fixedClock{t: testNow}
		emu := emulator.NewPingOne(emulator.PingOneOptions{RateLimit: 0.5, Burst: 1, Now: clock.Now})
		emu.AddEnvironment(emulator.Environment{ID: emuEnvID, ClientID: "worker-1", ClientSecret: "pa55+word/="})
		srv := httptest.NewServer(emu)
		t.Cleanup(srv.Close)
		e := &emuTest{emu: emu, base: srv.URL, clock: clock}
		s := e.source(t, nil)
		if _, err := s.Poll(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
		_, err := s.Poll(t.Context(), nil)
		if c, ra := delivery.ClassOf(err); c != delivery.Throttled || ra != 2*time.Second || !strings.Contains(fmt.Sprint(err), "HTTP 429") {
			t.Errorf("err = %v: class %v retry-after %v, want throttled 2s", err, c, ra)
		}
	})
}

func TestEmulatorTransientFaults(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault emulator.Faults
		want  string
	}{
		{"truncated", emulator.Faults{Truncate: 1}, "pingone: list activities: reading the page: unexpected EOF"},
		{"server error", emulator.Faults{ServerError: 1}, "pingone: list activities: HTTP 5"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmuTest(t, AuthBasic, nil)
			e.backlog(30, testNow.Add(-time.Hour), testNow.Add(-5*time.Minute))
			s := e.source(t, nil)
			start := cursor{Until: testNow.Add(-time.Hour).Truncate(time.Millisecond)}.encode()
			e.emu.SetFaults(tt.fault)
			_, err := s.Poll(t.Context(), start)
			if c, _ := delivery.ClassOf(err); err == nil || c != delivery.Transient || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v (class %v), want transient %q", err, c, tt.want)
			}
			// The pipeline retries from the same cursor: nothing is lost.
			e.emu.SetFaults(emulator.Faults{})
			m := newPipelineModel()
			drain(t, s, m, start)
			m.checkOnce(t, e.idsIn(testNow.Add(-time.Hour), testNow))
		})
	}
}

func TestEmulatorNextLinkToAnotherHost(t *testing.T) {
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			body := bytes.ReplaceAll(rec.Body.Bytes(), []byte(`"next":{"href":"http://`+r.Host), []byte(`"next":{"href":"https://collector.example`))
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			w.Write(body)
		})
	}
	e := newEmuTest(t, AuthBasic, wrap)
	e.backlog(30, testNow.Add(-time.Hour), testNow.Add(-5*time.Minute))
	s := e.source(t, func(c *Config) { c.PageSize = 10 })
	_, err := s.Poll(t.Context(), cursor{Until: testNow.Add(-time.Hour)}.encode())
	var he *delivery.Error
	if !errors.As(err, &he) || he.Class != delivery.Permanent ||
		!strings.Contains(he.Msg, "next page link leaves the configured API (https://collector.example, want http://127.0.0.1:") {
		t.Errorf("err = %v, want Permanent naming the foreign host", err)
	}
}

func TestEmulatorResumeMidWindow(t *testing.T) {
	e := newEmuTest(t, AuthBasic, nil)
	start := testNow.Add(-2 * time.Hour).Truncate(time.Millisecond)
	e.backlog(350, start, testNow.Add(-5*time.Minute))
	m := newPipelineModel()
	s := e.source(t, func(c *Config) { c.PageSize = 100 })
	p, err := s.Poll(t.Context(), cursor{Until: start}.encode())
	if err != nil {
		t.Fatal(err)
	}
	m.store(p)
	if !mustDecode(t, p.Next).inWindow() {
		t.Fatal("first page did not leave a window in progress")
	}
	// A restart: a new source (no token, no state), some time later.
	e.clock.Add(10 * time.Minute)
	s2 := e.source(t, func(c *Config) { c.PageSize = 100 })
	cur, _ := drain(t, s2, m, p.Next)
	m.checkOnce(t, e.idsIn(start, mustDecode(t, cur).Until))
	if m.pages < 4 {
		t.Errorf("%d pages, want at least 4", m.pages)
	}
	if m.dropped != 0 {
		t.Errorf("%d duplicates: the resume restarted instead of continuing", m.dropped)
	}
}

func TestEmulatorRejectedCursorRestartsWindow(t *testing.T) {
	e := newEmuTest(t, AuthBasic, nil)
	start := testNow.Add(-2 * time.Hour).Truncate(time.Millisecond)
	e.backlog(250, start, testNow.Add(-5*time.Minute))
	m := newPipelineModel()
	s := e.source(t, func(c *Config) { c.PageSize = 100 })
	p, err := s.Poll(t.Context(), cursor{Until: start}.encode())
	if err != nil {
		t.Fatal(err)
	}
	m.store(p)
	c := mustDecode(t, p.Next)
	u, _ := url.Parse(c.Next)
	q := u.Query()
	q.Set("cursor", "ZXhwaXJlZA") // an expired paging cursor
	u.RawQuery = q.Encode()
	c.Next = u.String()

	cur, _ := drain(t, s, m, c.encode())
	m.checkOnce(t, e.idsIn(start, mustDecode(t, cur).Until))
	if m.dropped != 100 {
		t.Errorf("%d duplicates dropped, want the 100 of the restarted first page", m.dropped)
	}
}

// samePage reports whether two pages are equal, event data byte for byte.
func samePage(a, b source.Page) bool {
	if len(a.Events) != len(b.Events) || !bytes.Equal(a.Next, b.Next) || !a.Watermark.Equal(b.Watermark) ||
		!a.DedupHorizon.Equal(b.DedupHorizon) || a.More != b.More || (a.Gap == nil) != (b.Gap == nil) {
		return false
	}
	for i := range a.Events {
		x, y := a.Events[i], b.Events[i]
		if x.ID != y.ID || !x.Time.Equal(y.Time) || x.Source != y.Source || x.Tenant != y.Tenant ||
			x.Provider != y.Provider || !bytes.Equal(x.Data, y.Data) {
			return false
		}
	}
	return true
}

// TestEmulatorUnknownEnvironment checks that a mistyped environment_id,
// which the token endpoint refuses as it refuses a wrong client, is named in
// the fix.
func TestEmulatorUnknownEnvironment(t *testing.T) {
	e := newEmuTest(t, AuthBasic, nil)
	s := e.source(t, func(c *Config) { c.EnvironmentID = "00000000-0000-4000-8000-000000000000" })
	_, err := s.Poll(t.Context(), nil)
	var he *delivery.Error
	if !errors.As(err, &he) || he.Class != delivery.Permanent || he.Status != 401 {
		t.Fatalf("err = %v, want a Permanent 401", err)
	}
	for _, want := range []string{"environment_id", "client_id", "client_secret"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, does not name %s", err, want)
		}
	}
}
