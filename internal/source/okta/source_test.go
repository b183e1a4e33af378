package okta

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/httpx/httpxtest"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/source"
)

const apiToken = "00a-api-token-5f1c"

type org struct {
	emu *emulator.Okta
	url string
	hc  *http.Client
}

// newOrg serves an emulated org over real HTTP on loopback.
func newOrg(t *testing.T, opts emulator.OktaOptions) *org {
	t.Helper()
	if opts.RateLimit == 0 {
		opts.RateLimit = -1
	}
	emu := emulator.NewOkta(opts)
	emu.AddAPIToken(apiToken)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return &org{emu: emu, url: srv.URL, hc: srv.Client()}
}

func tokenConfig(orgURL string) Config {
	c := Config{OrgURL: orgURL, Auth: AuthAPIToken, APIToken: secret.New(apiToken)}
	c.SetDefaults()
	return c
}

func newSource(t *testing.T, cfg Config, hc *http.Client) *Source {
	t.Helper()
	s, err := New("okta-test", cfg, Options{HTTPClient: hc, Limiter: rate.NewLimiter(rate.Inf, 1),
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// relay polls as the pipeline does: it keeps each page's cursor, drops ids
// it already has (the store's dedup) and counts what it delivers.
type relay struct {
	t         *testing.T
	s         *Source
	cur       source.Cursor
	delivered map[string]int
	gaps      []source.Gap
	polls     int
}

func newRelay(t *testing.T, s *Source) *relay {
	return &relay{t: t, s: s, delivered: map[string]int{}}
}

func (r *relay) poll() (source.Page, error) {
	p, err := r.s.Poll(context.Background(), r.cur)
	if err != nil {
		return p, err
	}
	r.polls++
	for _, ev := range p.Events {
		if r.delivered[ev.ID] == 0 {
			r.delivered[ev.ID]++
		}
		if ev.Provider != Provider || ev.Source != "okta-test" || ev.Tenant == "" || ev.Time.IsZero() || len(ev.Data) == 0 {
			r.t.Fatalf("event %+v lacks its envelope", ev)
		}
	}
	if p.Gap != nil {
		r.gaps = append(r.gaps, *p.Gap)
	}
	r.cur = p.Next
	return p, nil
}

// drain polls until caught up, retrying transient errors as the runner does.
func (r *relay) drain() {
	r.t.Helper()
	for range 1000 {
		p, err := r.poll()
		if err != nil {
			if delivery.IsPermanent(err) {
				r.t.Fatalf("permanent error: %v", err)
			}
			continue
		}
		if !p.More {
			return
		}
	}
	r.t.Fatal("not caught up after 1000 polls")
}

func TestBacklogIsReadOnceInCommitOrder(t *testing.T) {
	o := newOrg(t, emulator.OktaOptions{})
	now := time.Now()
	g := emulator.NewOktaGenerator(1)
	o.emu.Backlog(g, 2500, now.Add(-20*time.Hour), now.Add(-11*time.Minute), 10*time.Minute) // all committed by now
	cfg := tokenConfig(o.url)
	s := newSource(t, cfg, o.hc)
	r := newRelay(t, s)
	r.drain()
	want := o.emu.Events()
	if len(r.delivered) != len(want) {
		t.Fatalf("delivered %d of %d events", len(r.delivered), len(want))
	}
	for _, id := range want {
		if r.delivered[id] != 1 {
			t.Fatalf("event %s delivered %d times", id, r.delivered[id])
		}
	}
	for id, n := range o.emu.ServedIDs() {
		if n != 1 {
			t.Errorf("event %s served %d times: the source re-read without cause", id, n)
		}
	}
	if r.polls != 4 { // 1000 + 1000 + 500, then the empty caught-up page
		t.Errorf("%d polls for 2500 events at page_size 1000, want 4", r.polls)
	}
	// New events, some committed long after they were published, come
	// through the stored next link.
	late := g.Event(now.Add(-3 * time.Hour))
	late.Persisted = time.Now()
	o.emu.Add(late, g.Event(time.Now()))
	r.drain()
	if r.delivered[late.UUID] != 1 || len(r.delivered) != len(want)+2 {
		t.Fatalf("after two new commits delivered %d (the late one %d times), want %d", len(r.delivered), r.delivered[late.UUID], len(want)+2)
	}
}

func writeKey(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "okta.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return k, path
}

func oauthConfig(orgURL, keyFile string) Config {
	c := Config{OrgURL: orgURL, Auth: AuthOAuth, ClientID: "0oa-service", PrivateKeyFile: keyFile, KeyID: "kid-1"}
	c.SetDefaults()
	return c
}

func TestServiceAppWithPrivateKeyJWT(t *testing.T) {
	o := newOrg(t, emulator.OktaOptions{})
	k, keyFile := writeKey(t)
	o.emu.AddApp(emulator.OktaApp{ClientID: "0oa-service", PublicKey: k.Public(), KeyID: "kid-1", Scopes: []string{Scope}})
	o.emu.Backlog(emulator.NewOktaGenerator(2), 30, time.Now().Add(-time.Hour), time.Now(), 0)
	s := newSource(t, oauthConfig(o.url, keyFile), o.hc)
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	r := newRelay(t, s)
	r.drain()
	if len(r.delivered) != 30 {
		t.Fatalf("delivered %d of 30", len(r.delivered))
	}
	if n := o.emu.Stats().TokenRequests; n != 1 {
		t.Errorf("%d token requests for one source, want 1 (the token is cached)", n)
	}
}

func TestRefusals(t *testing.T) {
	k, keyFile := writeKey(t)
	other, otherFile := writeKey(t)
	_ = other
	for _, tc := range []struct {
		name string
		app  *emulator.OktaApp
		cfg  func(orgURL string) Config
		fix  string
	}{
		{"revoked api token", nil, func(u string) Config { c := tokenConfig(u); c.APIToken = secret.New("revoked-token-77"); return c }, "create a new one"},
		{"no scope", &emulator.OktaApp{ClientID: "0oa-service", PublicKey: k.Public(), KeyID: "kid-1"},
			func(u string) Config { return oauthConfig(u, keyFile) }, "okta.logs.read scope"},
		{"no admin role", &emulator.OktaApp{ClientID: "0oa-service", PublicKey: k.Public(), KeyID: "kid-1", Scopes: []string{Scope}, NoAdminRole: true},
			func(u string) Config { return oauthConfig(u, keyFile) }, "Read-Only Administrator"},
		{"other key", &emulator.OktaApp{ClientID: "0oa-service", PublicKey: k.Public(), KeyID: "kid-1", Scopes: []string{Scope}},
			func(u string) Config { return oauthConfig(u, otherFile) }, "private_key_file holds the private key"},
		{"unknown client", &emulator.OktaApp{ClientID: "0oa-service", PublicKey: k.Public(), Scopes: []string{Scope}},
			func(u string) Config { c := oauthConfig(u, keyFile); c.ClientID = "0oa-nope"; return c }, "check client_id"},
		{"missing key file", &emulator.OktaApp{ClientID: "0oa-service", PublicKey: k.Public(), Scopes: []string{Scope}},
			func(u string) Config { return oauthConfig(u, filepath.Join(t.TempDir(), "none.pem")) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOrg(t, emulator.OktaOptions{})
			if tc.app != nil {
				o.emu.AddApp(*tc.app)
			}
			s := newSource(t, tc.cfg(o.url), o.hc)
			_, err := s.Poll(context.Background(), nil)
			var e *delivery.Error
			if !errors.As(err, &e) || e.Class != delivery.Permanent || !strings.Contains(err.Error(), tc.fix) {
				t.Fatalf("Poll = %v, want a permanent error with the fix %q", err, tc.fix)
			}
			for _, leak := range []string{apiToken, "revoked-token-77", "PRIVATE KEY"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("the error quotes a secret: %v", err)
				}
			}
			if tc.name == "missing key file" && !strings.Contains(err.Error(), "private_key_file") {
				t.Errorf("a missing key file is not named: %v", err)
			}
		})
	}
}

func TestRefusedLinkRestartsBehindTheWatermark(t *testing.T) {
	o := newOrg(t, emulator.OktaOptions{})
	now := time.Now()
	o.emu.Backlog(emulator.NewOktaGenerator(3), 1500, now.Add(-2*time.Hour), now.Add(-time.Minute), 0)
	cfg := tokenConfig(o.url)
	cfg.PageSize = 200
	s := newSource(t, cfg, o.hc)
	r := newRelay(t, s)
	for range 3 {
		if _, err := r.poll(); err != nil {
			t.Fatal(err)
		}
	}
	// Every stored link is refused: the poll starts again from since =
	// watermark - restart_overlap, which needs no link.
	o.emu.SetFaults(emulator.OktaFaults{RefuseLink: 1})
	if _, err := r.poll(); err != nil {
		t.Fatalf("the restart from the watermark failed: %v", err)
	}
	o.emu.SetFaults(emulator.OktaFaults{})
	r.drain()
	if len(r.delivered) != 1500 {
		t.Fatalf("delivered %d of 1500 after a refused link", len(r.delivered))
	}
	again := 0
	for _, n := range o.emu.ServedIDs() {
		if n > 1 {
			again++
		}
	}
	if again == 0 || again > 600 {
		t.Errorf("%d events served twice: the restart re-reads the overlap, and only that", again)
	}
}

func TestFaultsNeverLoseOrRepeat(t *testing.T) {
	o := newOrg(t, emulator.OktaOptions{Seed: 9})
	now := time.Now()
	o.emu.Backlog(emulator.NewOktaGenerator(4), 3000, now.Add(-6*time.Hour), now.Add(-31*time.Minute), 30*time.Minute)
	o.emu.SetFaults(emulator.OktaFaults{ServerError: 0.1, Throttle: 0.05, Early401: 0.05, Truncate: 0.1})
	cfg := tokenConfig(o.url)
	cfg.PageSize = 250
	s := newSource(t, cfg, o.hc)
	r := newRelay(t, s)
	r.drain()
	if len(r.delivered) != 3000 {
		t.Fatalf("delivered %d of 3000 under faults", len(r.delivered))
	}
	if o.emu.Stats().Faults == 0 {
		t.Fatal("no fault was injected: the test proves nothing")
	}
}

func TestRateLimitHeadersPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		emu := emulator.NewOkta(emulator.OktaOptions{RateLimit: 5})
		emu.AddAPIToken(apiToken)
		emu.Backlog(emulator.NewOktaGenerator(5), 100, time.Now().Add(-time.Hour), time.Now(), 0)
		base, hc := httpxtest.ServePipe(t, emu, time.Minute)
		cfg := tokenConfig(base)
		cfg.PageSize = 10
		s := newSource(t, cfg, hc)
		r := newRelay(t, s)
		start := time.Now()
		r.drain()
		if len(r.delivered) != 100 {
			t.Fatalf("delivered %d of 100", len(r.delivered))
		}
		if th := emu.Stats().Throttled; th != 0 {
			t.Errorf("%d requests throttled: the source should pause on X-Rate-Limit-Remaining before the 429", th)
		}
		// 11 requests at 5 a minute, the last 2 of each minute left unspent.
		if took := time.Since(start); took < 3*time.Minute || took > 5*time.Minute {
			t.Errorf("11 requests took %v, want 3 to 5 minutes at 5 a minute", took)
		}
	})
}

func TestThrottledWaitsForTheReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		emu := emulator.NewOkta(emulator.OktaOptions{RateLimit: 100})
		emu.AddAPIToken(apiToken)
		emu.SetFaults(emulator.OktaFaults{Throttle: 1})
		base, hc := httpxtest.ServePipe(t, emu, time.Minute)
		s := newSource(t, tokenConfig(base), hc)
		_, err := s.Poll(context.Background(), nil)
		class, wait := delivery.ClassOf(err)
		if class != delivery.Throttled || wait < 55*time.Second || wait > 61*time.Second {
			t.Fatalf("a 429 gives %v (%v, wait %v), want throttled until the minute's reset", err, class, wait)
		}
	})
}

func TestNextLinkMustStayOnTheOrg(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Link", `<https://evil.example/api/v1/logs?after=1_1>; rel="next"`)
		fmt.Fprint(w, `[]`)
	}))
	defer srv.Close()
	s := newSource(t, tokenConfig(srv.URL), srv.Client())
	_, err := s.Poll(context.Background(), nil)
	if !delivery.IsPermanent(err) || !strings.Contains(err.Error(), "leaves the org") {
		t.Fatalf("a next link to another host gives %v, want a permanent refusal", err)
	}
}

func TestNextLinkParsing(t *testing.T) {
	s := newSource(t, tokenConfig("https://example.okta.com"), nil)
	for _, tc := range []struct {
		lines []string
		want  string
	}{
		{[]string{`<https://example.okta.com/api/v1/logs?after=1_2>; rel="self"`, `<https://example.okta.com/api/v1/logs?after=3_4&limit=1000>; rel="next"`}, "https://example.okta.com/api/v1/logs?after=3_4&limit=1000"},
		{[]string{`<https://example.okta.com/api/v1/logs?a=1,2>; rel="self", </api/v1/logs?after=5_6>; rel=next`}, "https://example.okta.com/api/v1/logs?after=5_6"},
		{[]string{`<https://example.okta.com/api/v1/logs?after=1_2>; rel="self"`}, ""},
		{nil, ""},
	} {
		h := http.Header{}
		for _, l := range tc.lines {
			h.Add("Link", l)
		}
		got, err := s.nextLink(h)
		if err != nil || got != tc.want {
			t.Errorf("nextLink(%q) = %q, %v; want %q", tc.lines, got, err, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.OrgURL = "" }, "org_url: required"},
		{func(c *Config) { c.OrgURL = "http://example.okta.com" }, "org_url"},
		{func(c *Config) { c.OrgURL = "https://example-admin.okta.com" }, "admin console"},
		{func(c *Config) { c.OrgURL = "https://example.okta.com/api/v1/logs" }, "org's URL only"},
		{func(c *Config) { c.Auth = "ssws" }, "auth: \"ssws\" is not supported"},
		{func(c *Config) { c.APIToken = secret.String{} }, "api_token: required"},
		{func(c *Config) { c.ClientID = "0oa" }, "api_token does not use client_id"},
		{func(c *Config) { c.PageSize = 1001 }, "page_size"},
		{func(c *Config) { c.Lookback = 0; c.SetDefaults(); c.Lookback *= 100 }, "lookback"},
		{func(c *Config) { c.RateLimit = 50 }, "rate_limit"},
	} {
		c := tokenConfig("https://example.okta.com")
		tc.edit(&c)
		var got []string
		for _, e := range c.Validate() {
			got = append(got, e.Error())
		}
		if !strings.Contains(strings.Join(got, "\n"), tc.want) {
			t.Errorf("Validate = %q, want %q", got, tc.want)
		}
	}
	c := oauthConfig("https://example.okta.com", "")
	c.ClientID = ""
	var got []string
	for _, e := range c.Validate() {
		got = append(got, e.Error())
	}
	if j := strings.Join(got, "\n"); !strings.Contains(j, "client_id: required") || !strings.Contains(j, "private_key_file: required") {
		t.Errorf("oauth without client_id and key: %q", got)
	}
	good := tokenConfig("https://example.okta.com")
	if errs := good.Validate(); len(errs) != 0 {
		t.Errorf("a good config: %v", errs)
	}
}

func testLimiter() *rate.Limiter { return rate.NewLimiter(rate.Inf, 1) }
