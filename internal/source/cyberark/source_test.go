package cyberark

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/units"
)

// The tests run the source against internal/emulator over real HTTP.

var testNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

const tenantID = "43de6333-65f1-4626-aeec-2cff238e61ca"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type harness struct {
	emu   *emulator.CyberArk
	base  string
	clock *clock
	gen   *emulator.CyberArkGenerator
}

func newHarness(t *testing.T, opts emulator.CyberArkOptions, method string) *harness {
	t.Helper()
	clk := &clock{t: testNow}
	opts.Now = clk.Now
	if opts.RateLimit == 0 {
		opts.RateLimit = -1
	}
	emu := emulator.NewCyberArk(opts)
	emu.AddTenant(emulator.CyberArkTenant{ID: tenantID, AppID: "auditrelay", ClientID: "svc-audit@cyberark.cloud.12345",
		ClientSecret: "pa55:word/=", AuthMethod: method, APIKey: "api-key-1"})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return &harness{emu: emu, base: srv.URL, clock: clk, gen: emulator.NewCyberArkGenerator(5)}
}

func (h *harness) config(edit func(*Config)) Config {
	c := Config{
		IdentityURL: h.base, AppID: "auditrelay", ClientID: "svc-audit@cyberark.cloud.12345",
		ClientSecret: secret.New("pa55:word/="), AuditURL: h.base, APIKey: secret.New("api-key-1"),
		SettleDelay: units.Duration(2 * time.Minute), Overlap: units.Duration(2 * time.Minute),
		Lookback: units.Duration(time.Hour), PageSize: 500,
	}
	if edit != nil {
		edit(&c)
	}
	c.SetDefaults()
	return c
}

func (h *harness) source(t testing.TB, edit func(*Config)) *Source {
	t.Helper()
	s, err := New("ca", h.config(edit), Options{Limiter: rate.NewLimiter(rate.Inf, 1), Now: h.clock.Now,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// model stands in for the store: it drops ids it keeps, forgets them past
// a page's dedup horizon, and counts deliveries.
type model struct {
	seen      map[string]time.Time
	delivered map[string]int
	data      map[string]string
}

func newModel() *model {
	return &model{seen: map[string]time.Time{}, delivered: map[string]int{}, data: map[string]string{}}
}

func (m *model) store(p source.Page) {
	for _, e := range p.Events {
		if _, dup := m.seen[e.ID]; dup {
			continue
		}
		m.seen[e.ID] = e.Time
		m.delivered[e.ID]++
		m.data[e.ID] = string(e.Data)
	}
	if !p.DedupHorizon.IsZero() {
		for id, at := range m.seen {
			if at.Before(p.DedupHorizon) {
				delete(m.seen, id)
			}
		}
	}
}

// drain polls until a page says nothing more is ready.
func drain(t *testing.T, s *Source, m *model, cur source.Cursor) source.Cursor {
	t.Helper()
	for range 100_000 {
		p, err := s.Poll(context.Background(), cur)
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		m.store(p)
		cur = p.Next
		if !p.More {
			return cur
		}
	}
	t.Fatal("never caught up")
	return nil
}

// want lists the ids of the emulator's events with timestamp before until.
func (h *harness) want(until time.Time) []string {
	var out []string
	for _, e := range h.emu.Events(tenantID) {
		if e.Timestamp.Before(until) {
			out = append(out, ID(tenantID, e.UUID))
		}
	}
	slices.Sort(out)
	return out
}

func checkOnce(t *testing.T, m *model, want []string) {
	t.Helper()
	var got []string
	for id, n := range m.delivered {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
		got = append(got, id)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		missing, extra := 0, 0
		for _, id := range want {
			if m.delivered[id] == 0 {
				missing++
			}
		}
		extra = len(got) - (len(want) - missing)
		t.Fatalf("delivered %d events, want %d (missing %d, unexpected %d)", len(got), len(want), missing, extra)
	}
}

func TestTokenAuthMethods(t *testing.T) {
	for _, method := range []string{AuthBasic, AuthPost} {
		t.Run(method, func(t *testing.T) {
			h := newHarness(t, emulator.CyberArkOptions{}, method)
			h.emu.Backlog(h.gen, tenantID, 50, testNow.Add(-30*time.Minute), testNow.Add(-10*time.Minute))
			s := h.source(t, func(c *Config) { c.TokenAuthMethod = method })
			m := newModel()
			drain(t, s, m, nil)
			checkOnce(t, m, h.want(testNow))
			if n := h.emu.Stats().TokenRequests; n != 1 {
				t.Errorf("token requests = %d, want 1 (cached)", n)
			}
		})
	}
}

func TestBacklogBurstsAndBoundaries(t *testing.T) {
	h := newHarness(t, emulator.CyberArkOptions{}, "")
	h.emu.Backlog(h.gen, tenantID, 3000, testNow.Add(-time.Hour), testNow.Add(-3*time.Minute))
	// Bursts of thousands in one second, on a window's boundary second
	// (now - settle_delay) and inside the lookback.
	boundary := testNow.Add(-2 * time.Minute).Truncate(time.Second)
	h.emu.Burst(h.gen, tenantID, 4000, boundary.Add(-time.Second), time.Time{})
	h.emu.Burst(h.gen, tenantID, 2500, boundary, time.Time{})
	h.emu.Burst(h.gen, tenantID, 3000, testNow.Add(-40*time.Minute), time.Time{})
	s := h.source(t, nil)
	m := newModel()
	cur := drain(t, s, m, nil)
	checkOnce(t, m, h.want(boundary))
	// The burst at the boundary second arrives with the next window.
	h.clock.Add(time.Minute)
	drain(t, s, m, cur)
	checkOnce(t, m, h.want(testNow.Add(-time.Minute)))
	for id, data := range m.data {
		if !strings.Contains(data, strings.SplitN(id, "/", 2)[1]) {
			t.Fatalf("event %s data does not hold its uuid", id)
		}
	}
}

func TestLateEventsInOverlap(t *testing.T) {
	h := newHarness(t, emulator.CyberArkOptions{}, "")
	s := h.source(t, func(c *Config) { c.SettleDelay = units.Duration(30 * time.Second) })
	m := newModel()
	cur := drain(t, s, m, nil)
	// An event of 40s ago that becomes visible only in 60s: after the
	// window holding its second was read, within the next overlap.
	late := h.gen.Event(tenantID, testNow.Add(-40*time.Second))
	late.VisibleAt = testNow.Add(60 * time.Second)
	h.emu.Add(tenantID, late)
	h.emu.Burst(h.gen, tenantID, 1000, testNow.Add(-40*time.Second), time.Time{})
	h.clock.Add(30 * time.Second)
	cur = drain(t, s, m, cur)
	if m.delivered[ID(tenantID, late.UUID)] != 0 {
		t.Fatal("late event delivered before it was visible")
	}
	h.clock.Add(40 * time.Second)
	drain(t, s, m, cur)
	checkOnce(t, m, h.want(testNow))
}

func TestCursorExpiryRerunsWindow(t *testing.T) {
	h := newHarness(t, emulator.CyberArkOptions{CursorTTL: time.Minute}, "")
	h.emu.Backlog(h.gen, tenantID, 2000, testNow.Add(-50*time.Minute), testNow.Add(-5*time.Minute))
	s := h.source(t, nil)
	m := newModel()
	var cur source.Cursor
	for range 3 { // open the window, read two pages
		p, err := s.Poll(context.Background(), cur)
		if err != nil {
			t.Fatal(err)
		}
		m.store(p)
		cur = p.Next
	}
	h.clock.Add(5 * time.Minute) // the stored cursorRef expires
	drain(t, s, m, cur)
	if h.emu.Stats().ExpiredCursors == 0 {
		t.Fatal("the cursor never expired: the test proves nothing")
	}
	checkOnce(t, m, h.want(testNow.Add(3*time.Minute)))
}

func TestResumeFromEveryCursor(t *testing.T) {
	h := newHarness(t, emulator.CyberArkOptions{}, "")
	h.emu.Backlog(h.gen, tenantID, 1200, testNow.Add(-50*time.Minute), testNow.Add(-5*time.Minute))
	s := h.source(t, func(c *Config) { c.PageSize = 100 })
	m := newModel()
	var cur source.Cursor
	for i := 0; ; i++ {
		p, err := s.Poll(context.Background(), cur)
		if err != nil {
			t.Fatal(err)
		}
		// A crash before storing: the same poll again gives the same page.
		if i%3 == 0 {
			q, err := s.Poll(context.Background(), cur)
			if err != nil {
				t.Fatal(err)
			}
			if string(q.Next) != string(p.Next) || q.More != p.More || !slices.Equal(pageIDs(q), pageIDs(p)) {
				t.Fatalf("poll %d repeated: %d events %v, next %s; first %d events %v, next %s",
					i, len(q.Events), pageIDs(q), q.Next, len(p.Events), pageIDs(p), p.Next)
			}
		}
		m.store(p)
		cur = p.Next
		if !p.More {
			break
		}
	}
	checkOnce(t, m, h.want(testNow))
}

func pageIDs(p source.Page) []string {
	var ids []string
	for _, e := range p.Events {
		ids = append(ids, e.ID)
	}
	return ids
}

func TestErrors(t *testing.T) {
	h := newHarness(t, emulator.CyberArkOptions{}, AuthBasic)
	cases := []struct {
		name  string
		edit  func(*Config)
		class delivery.Class
		fix   string
	}{
		{"bad secret", func(c *Config) { c.ClientSecret = secret.New("wrong-secret-6c1e07") }, delivery.Permanent, fixCredentials},
		{"post to a basic app", func(c *Config) { c.TokenAuthMethod = AuthPost }, delivery.Permanent, fixCredentials},
		{"unknown app", func(c *Config) { c.AppID = "nope" }, delivery.Permanent, fixApp},
		{"scope", func(c *Config) { c.Scope = "openid" }, delivery.Permanent, fixScope},
		{"api key", func(c *Config) { c.APIKey = secret.New("other-key-93fa5d") }, delivery.Permanent, fixAPIKey},
		{"audit url", func(c *Config) { c.AuditURL = h.base + "/wrong" }, delivery.Permanent, fixAuditURL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := h.source(t, tc.edit)
			_, err := s.Poll(context.Background(), nil)
			var e *delivery.Error
			if !errors.As(err, &e) || e.Class != tc.class || e.Fix != tc.fix {
				t.Fatalf("err = %v, want %v with fix %q", err, tc.class, tc.fix)
			}
			// The secrets this case sent, in every form they took on the
			// wire: as typed, form-encoded, and in the Basic header.
			cfg := h.config(tc.edit)
			sec := cfg.ClientSecret.Reveal()
			for _, leak := range []string{sec, url.QueryEscape(sec), base64.StdEncoding.EncodeToString([]byte(cfg.ClientID + ":" + sec)), cfg.APIKey.Reveal()} {
				if strings.Contains(err.Error(), leak) {
					t.Fatalf("error reveals a secret (%q): %v", leak, err)
				}
			}
			if err := s.Check(context.Background()); err == nil {
				t.Fatal("Check passed with a broken configuration")
			}
		})
	}
	if err := h.source(t, nil).Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

func TestTransientFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		f     emulator.CyberArkFaults
		class delivery.Class
	}{
		{"429", emulator.CyberArkFaults{Throttle: 1}, delivery.Throttled},
		{"5xx", emulator.CyberArkFaults{ServerError: 1}, delivery.Transient},
		{"truncated", emulator.CyberArkFaults{Truncate: 1}, delivery.Transient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, emulator.CyberArkOptions{}, "")
			h.emu.SetFaults(tc.f)
			_, err := h.source(t, nil).Poll(context.Background(), nil)
			c, ra := delivery.ClassOf(err)
			if err == nil || c != tc.class {
				t.Fatalf("err = %v (%v), want %v", err, c, tc.class)
			}
			if tc.class == delivery.Throttled && ra != time.Second {
				t.Errorf("Retry-After = %v, want 1s", ra)
			}
		})
	}
}

func TestEarly401RefreshesOnce(t *testing.T) {
	h := newHarness(t, emulator.CyberArkOptions{}, "")
	s := h.source(t, nil)
	m := newModel()
	cur := drain(t, s, m, nil)
	h.emu.Backlog(h.gen, tenantID, 10, testNow.Add(-2*time.Minute), testNow.Add(-time.Minute))
	h.clock.Add(2 * time.Minute)
	h.emu.SetFaults(emulator.CyberArkFaults{Early401: 1})
	_, err := s.Poll(context.Background(), cur)
	var e *delivery.Error
	if !errors.As(err, &e) || e.Class != delivery.Permanent || e.Fix != fixTwice401 {
		t.Fatalf("err = %v, want permanent after two 401s", err)
	}
	if n := h.emu.Stats().TokenRequests; n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}
}

func TestGapWhenOlderThanRetention(t *testing.T) {
	h := newHarness(t, emulator.CyberArkOptions{}, "")
	s := h.source(t, func(c *Config) { c.Retention = units.Duration(24 * time.Hour) })
	old := cursor{Until: testNow.Add(-72 * time.Hour)}.encode()
	p, err := s.Poll(context.Background(), old)
	if err != nil {
		t.Fatal(err)
	}
	if p.Gap == nil || !p.Gap.From.Equal(testNow.Add(-72*time.Hour)) || !p.Gap.To.Equal(testNow.Add(-24*time.Hour+retentionMargin)) {
		t.Fatalf("gap = %+v", p.Gap)
	}
}

// TestSimulation runs the source against live traffic with late events,
// bursts, faults, cursor expiry and crashes (polls whose page is lost), and
// checks that every event is delivered exactly once.
func TestSimulation(t *testing.T) {
	h := newHarness(t, emulator.CyberArkOptions{CursorTTL: 90 * time.Second}, "")
	h.emu.Backlog(h.gen, tenantID, 2000, testNow.Add(-2*time.Hour), testNow)
	s := h.source(t, func(c *Config) {
		c.PageSize = 200
		c.SettleDelay = units.Duration(30 * time.Second)
		c.Overlap = units.Duration(60 * time.Second)
		c.Lookback = units.Duration(3 * time.Hour)
	})
	h.emu.SetFaults(emulator.CyberArkFaults{ServerError: 0.05, Throttle: 0.05, Truncate: 0.05, ExpireCursor: 0.03})
	rng := rand.New(rand.NewPCG(1, 2))
	m := newModel()
	var cur source.Cursor
	for step := range 3000 {
		// Live traffic: a few events a second, visible within 50s; a burst
		// now and then.
		now := h.clock.Now()
		for range rng.IntN(5) {
			e := h.gen.Event(tenantID, now.Add(-time.Duration(rng.IntN(1000))*time.Millisecond))
			e.VisibleAt = now.Add(time.Duration(rng.IntN(50)) * time.Second)
			h.emu.Add(tenantID, e)
		}
		if step%500 == 250 {
			h.emu.Burst(h.gen, tenantID, 1500, now, now.Add(20*time.Second))
		}
		p, err := s.Poll(context.Background(), cur)
		switch {
		case err != nil:
			if delivery.IsPermanent(err) {
				t.Fatalf("permanent error: %v", err)
			}
		case rng.IntN(10) == 0:
			// crash: the page is never stored
		default:
			m.store(p)
			cur = p.Next
		}
		h.clock.Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
	}
	h.emu.SetFaults(emulator.CyberArkFaults{})
	h.clock.Add(2 * time.Minute)
	drain(t, s, m, cur)
	checkOnce(t, m, h.want(h.clock.Now().Add(-30*time.Second).Truncate(time.Second)))
	if st := h.emu.Stats(); st.Faults == 0 || st.ExpiredCursors == 0 {
		t.Fatalf("stats %+v: faults were not exercised", st)
	}
}

func TestQueryBody(t *testing.T) {
	h := newHarness(t, emulator.CyberArkOptions{}, "")
	s := h.source(t, func(c *Config) { c.ApplicationCodes = []string{"IDP", "PAM"} })
	got := string(s.queryBody(testNow.Add(-time.Hour), testNow, 500))
	want := `{"query":{"pageSize":500,"filterModel":{"date":{"dateFrom":"2026-03-10 11:00:00","dateTo":"2026-03-10 11:59:59"},` +
		`"applicationCode":[{"op":"include","params":["IDP","PAM"]}]},"sortModel":[{"field_name":"timestamp","direction":"asc"}]}}`
	if got != want {
		t.Errorf("query body\n got %s\nwant %s", got, want)
	}
}

func TestApplicationCodesFilter(t *testing.T) {
	h := newHarness(t, emulator.CyberArkOptions{}, "")
	h.emu.Backlog(h.gen, tenantID, 400, testNow.Add(-30*time.Minute), testNow.Add(-5*time.Minute))
	s := h.source(t, func(c *Config) { c.ApplicationCodes = []string{"PAM"} })
	m := newModel()
	drain(t, s, m, nil)
	var want []string
	for _, e := range h.emu.Events(tenantID) {
		if e.ApplicationCode == "PAM" {
			want = append(want, ID(tenantID, e.UUID))
		}
	}
	slices.Sort(want)
	if len(want) == 0 || len(want) == 400 {
		t.Fatalf("%d PAM events of 400: the test proves nothing", len(want))
	}
	checkOnce(t, m, want)
}

var _ http.Handler = (*emulator.CyberArk)(nil)

func TestStartAt(t *testing.T) {
	h := newHarness(t, emulator.CyberArkOptions{}, "")
	h.emu.Backlog(h.gen, tenantID, 500, testNow.Add(-90*time.Minute), testNow.Add(-5*time.Minute))
	start := testNow.Add(-40 * time.Minute).Add(300 * time.Millisecond)
	s := h.source(t, func(c *Config) { c.StartAt = start.Format(time.RFC3339Nano) })
	m := newModel()
	drain(t, s, m, nil)
	var want []string
	for _, e := range h.emu.Events(tenantID) {
		if !e.Timestamp.Before(start.Truncate(time.Second)) {
			want = append(want, ID(tenantID, e.UUID))
		}
	}
	slices.Sort(want)
	checkOnce(t, m, want)
	if c := h.config(func(c *Config) { c.StartAt = "yesterday" }); len(c.Validate()) != 1 {
		t.Error("a bad start_at is accepted")
	}
}

// TestStartAtNotSettled starts at an instant newer than now - settle_delay:
// the source waits for it to settle and still reads nothing before it.
func TestStartAtNotSettled(t *testing.T) {
	h := newHarness(t, emulator.CyberArkOptions{}, "")
	h.emu.Backlog(h.gen, tenantID, 300, testNow.Add(-10*time.Minute), testNow)
	start := testNow.Add(-30 * time.Second)
	s := h.source(t, func(c *Config) { c.StartAt = start.Format(time.RFC3339) })
	m := newModel()
	cur := drain(t, s, m, nil)
	if len(m.delivered) != 0 {
		t.Fatalf("%d events delivered before start_at settled", len(m.delivered))
	}
	h.clock.Add(5 * time.Minute)
	drain(t, s, m, cur)
	var want []string
	for _, e := range h.emu.Events(tenantID) {
		if !e.Timestamp.Before(start) {
			want = append(want, ID(tenantID, e.UUID))
		}
	}
	slices.Sort(want)
	checkOnce(t, m, want)
}
