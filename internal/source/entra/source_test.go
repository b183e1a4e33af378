package entra

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/source"
)

const (
	tenantID     = "7c1f0d3a-5b2e-4c6d-9e8f-0a1b2c3d4e5f"
	clientID     = "3f2e1d0c-b9a8-4765-8432-10fedcba9876"
	clientSecret = "Qx8Q~entra-secret-value-9"
)

var allPerms = []string{emulator.EntraAuditLogRead, emulator.EntraDirectoryRead}

type tenant struct {
	emu *emulator.Entra
	url string
	hc  *http.Client
}

// newTenant serves an emulated tenant over real HTTP on loopback.
func newTenant(t *testing.T, opts emulator.EntraOptions, premium bool, perms ...string) *tenant {
	t.Helper()
	if opts.RateLimit == 0 {
		opts.RateLimit = -1
	}
	emu := emulator.NewEntra(opts)
	emu.AddTenant(emulator.EntraTenant{ID: tenantID, Premium: premium})
	if perms == nil {
		perms = allPerms
	}
	emu.AddApp(emulator.EntraApp{TenantID: tenantID, ClientID: clientID, ClientSecret: clientSecret, Permissions: perms})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return &tenant{emu: emu, url: srv.URL, hc: srv.Client()}
}

func testConfig(base string, streams ...string) Config {
	c := Config{TenantID: tenantID, ClientID: clientID, ClientSecret: secret.New(clientSecret), AuthorityURL: base, GraphURL: base, Streams: streams}
	c.SetDefaults()
	return c
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newSources(t testing.TB, cfg Config, hc *http.Client, now func() time.Time) map[string]*Source {
	t.Helper()
	return newSourcesLimited(t, cfg, hc, now, rate.NewLimiter(rate.Inf, 1))
}

func newSourcesLimited(t testing.TB, cfg Config, hc *http.Client, now func() time.Time, lim *rate.Limiter) map[string]*Source {
	t.Helper()
	ss, err := New("entra-test", cfg, Options{HTTPClient: hc, Limiter: lim, Now: now,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*Source{}
	for _, s := range ss {
		out[s.Stream()] = s
	}
	return out
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
	watermark time.Time
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
		r.delivered[ev.ID]++
		if ev.Provider != r.s.st.provider || ev.Source != r.s.Name() || ev.Tenant != tenantID || ev.Time.IsZero() || len(ev.Data) == 0 {
			r.t.Fatalf("event %+v lacks its envelope", ev)
		}
	}
	if p.Gap != nil {
		r.gaps = append(r.gaps, *p.Gap)
	}
	if !p.Watermark.IsZero() {
		r.watermark = p.Watermark
	}
	r.cur = p.Next
	return p, nil
}

// deliveredOnce is the number of distinct ids delivered, and whether the
// store's dedup had to drop any: an id repeated after its first delivery
// is fine (overlap), so only distinct ids count.
func (r *relay) distinct() int { return len(r.delivered) }

// drain polls until caught up, retrying transient and throttled errors as
// the runner does (after their Retry-After when sleep is set).
func (r *relay) drain(sleep bool) {
	r.t.Helper()
	for attempt := 1; attempt < 5000; attempt++ {
		p, err := r.poll()
		if err != nil {
			if delivery.IsPermanent(err) {
				r.t.Fatalf("%s: permanent error: %v", r.s.Name(), err)
			}
			if sleep {
				time.Sleep(delivery.Backoff{Base: time.Second, Max: 30 * time.Second}.Wait(err, 1))
			}
			continue
		}
		if !p.More {
			return
		}
	}
	r.t.Fatalf("%s: not caught up after 5000 polls", r.s.Name())
}

func checkAll(t *testing.T, te *tenant, stream string, r *relay) {
	t.Helper()
	want := te.emu.Events(tenantID, stream)
	if len(want) == 0 {
		t.Fatalf("%s: no events: the test proves nothing", stream)
	}
	for _, id := range want {
		if r.delivered[id] == 0 {
			t.Fatalf("%s: event %s not delivered (%d of %d delivered)", stream, id, r.distinct(), len(want))
		}
	}
	if r.distinct() != len(want) {
		t.Fatalf("%s: delivered %d distinct ids, the tenant has %d", stream, r.distinct(), len(want))
	}
}

var emuStream = map[string]string{StreamDirectoryAudits: emulator.EntraDirectoryAudits, StreamSignIns: emulator.EntraSignIns, StreamProvisioning: emulator.EntraProvisioning}

func TestEntraBacklogIsReadOncePerStream(t *testing.T) {
	te := newTenant(t, emulator.EntraOptions{}, true)
	now := time.Now()
	g := emulator.NewEntraGenerator(tenantID, 1)
	te.emu.Backlog(g, tenantID, emulator.EntraDirectoryAudits, 2500, now.Add(-20*time.Hour), now.Add(-16*time.Minute), 0)
	te.emu.Backlog(g, tenantID, emulator.EntraSignIns, 1800, now.Add(-20*time.Hour), now.Add(-16*time.Minute), 0)
	te.emu.Backlog(g, tenantID, emulator.EntraProvisioning, 300, now.Add(-20*time.Hour), now.Add(-16*time.Minute), 0)
	ss := newSources(t, testConfig(te.url, StreamDirectoryAudits, StreamSignIns, StreamProvisioning), te.hc, nil)
	if len(ss) != 3 || ss[StreamSignIns].Name() != "entra-test/sign_ins" {
		t.Fatalf("sources %v", ss)
	}
	for key, s := range ss {
		r := newRelay(t, s)
		r.drain(false)
		checkAll(t, te, emuStream[key], r)
		// Adjacent windows share their overlap: an event is served at
		// most twice, and the store's dedup drops the second.
		for id, n := range te.emu.ServedIDs(tenantID, emuStream[key]) {
			if n > 2 {
				t.Errorf("%s: event %s served %d times", key, id, n)
			}
		}
		if want := now.Add(-15 * time.Minute); r.watermark.Before(want.Add(-time.Minute)) || r.watermark.After(want.Add(time.Minute)) {
			t.Errorf("%s: watermark %v, want now - settle_delay", key, r.watermark)
		}
		if len(r.gaps) != 0 {
			t.Errorf("%s: gaps %v", key, r.gaps)
		}
		if n := te.emu.Stats().Streams[emuStream[key]].Requests; n > int64(r.polls)+1 {
			t.Errorf("%s: %d requests for %d polls", key, n, r.polls)
		}
	}
	if n := te.emu.Stats().TokenRequests; n != 1 {
		t.Errorf("%d token requests for three streams, want 1 (one shared token)", n)
	}
}

// clock is a manually advanced clock shared by the emulator and the
// sources.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestEntraBurstsLargerThanAPageAndWindowBoundaries(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	te := newTenant(t, emulator.EntraOptions{Now: c.Now, TokenTTL: 1000 * time.Hour}, true)
	cfg := testConfig(te.url, StreamDirectoryAudits, StreamProvisioning)
	cfg.Lookback = 3 * 3600e9
	// The first window is [now - 3h, now - 2h], the next starts at now -
	// 2h30m: events on those instants and a burst of 2,500 at one tick.
	g := emulator.NewEntraGenerator(tenantID, 2)
	for _, stream := range []string{emulator.EntraDirectoryAudits, emulator.EntraProvisioning} {
		var evs []emulator.EntraEvent
		for _, at := range []time.Duration{3 * time.Hour, 2 * time.Hour, 150 * time.Minute, 2*time.Hour + 100, 2*time.Hour - 100} {
			ev := g.Event(stream, c.Now())
			ev.ID, ev.Time, ev.JSON = fmt.Sprintf("edge-%d", at), c.Now().Add(-at), nil
			evs = append(evs, ev)
		}
		for i := range 2500 {
			evs = append(evs, emulator.EntraEvent{ID: fmt.Sprintf("burst-%04d", i), Time: c.Now().Add(-150*time.Minute + 100)})
		}
		te.emu.Add(tenantID, stream, evs...)
	}
	for key, s := range newSources(t, cfg, te.hc, c.Now) {
		r := newRelay(t, s)
		r.drain(false)
		checkAll(t, te, emuStream[key], r)
		if r.polls < 3 {
			t.Errorf("%s: %d polls for 2,505 events at 1,000 a page", key, r.polls)
		}
	}
}

func TestEntraLateEventsWithinSettleAndOverlapAreDelivered(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	te := newTenant(t, emulator.EntraOptions{Now: c.Now, TokenTTL: 1000 * time.Hour}, true)
	cfg := testConfig(te.url, StreamSignIns)
	cfg.Lookback = 3600e9
	s := newSources(t, cfg, te.hc, c.Now)[StreamSignIns]
	r := newRelay(t, s)
	g := emulator.NewEntraGenerator(tenantID, 3)
	lateness := []time.Duration{0, 5 * time.Minute, 20 * time.Minute, 44 * time.Minute}
	tooLate := g.SignIn(c.Now().Add(-time.Minute))
	tooLate.Visible = tooLate.Time.Add(2 * time.Hour)
	te.emu.Add(tenantID, emulator.EntraSignIns, tooLate)
	for m := range 240 {
		ev := g.SignIn(c.Now())
		ev.Visible = ev.Time.Add(lateness[m%len(lateness)])
		te.emu.Add(tenantID, emulator.EntraSignIns, ev)
		r.drain(false)
		c.Advance(time.Minute)
	}
	c.Advance(3 * time.Hour)
	r.drain(false)
	for _, id := range te.emu.Events(tenantID, emulator.EntraSignIns) {
		if id == tooLate.ID {
			if r.delivered[id] != 0 {
				t.Errorf("an event 2h late was delivered: settle_delay + overlap is 45m, the test is wrong")
			}
			continue
		}
		if r.delivered[id] == 0 {
			t.Fatalf("event %s, at most 44 minutes late, was not delivered", id)
		}
	}
	if r.distinct() != 240 {
		t.Fatalf("delivered %d of 240", r.distinct())
	}
}

func TestEntraRefusedSkipTokenRestartsItsWindow(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	te := newTenant(t, emulator.EntraOptions{Now: c.Now, TokenTTL: 1000 * time.Hour}, true)
	te.emu.Backlog(emulator.NewEntraGenerator(tenantID, 4), tenantID, emulator.EntraDirectoryAudits, 1000, c.Now().Add(-50*time.Minute), c.Now().Add(-20*time.Minute), 0)
	cfg := testConfig(te.url, StreamDirectoryAudits)
	cfg.Lookback, cfg.PageSize = 3600e9, 100
	r := newRelay(t, newSources(t, cfg, te.hc, c.Now)[StreamDirectoryAudits])
	for range 3 {
		if _, err := r.poll(); err != nil {
			t.Fatal(err)
		}
	}
	te.emu.SetFaults(emulator.EntraFaults{RefuseSkipToken: 1})
	if _, err := r.poll(); err != nil {
		t.Fatalf("the restart of the window failed: %v", err)
	}
	te.emu.SetFaults(emulator.EntraFaults{})
	r.drain(false)
	checkAll(t, te, emulator.EntraDirectoryAudits, r)
	again := 0
	for _, n := range te.emu.ServedIDs(tenantID, emulator.EntraDirectoryAudits) {
		if n > 1 {
			again++
		}
	}
	if again == 0 || again > 400 {
		t.Errorf("%d events served twice: the restart re-reads the window's first pages, and only those", again)
	}
}

func TestEntraLicenceStopsSignInsOnly(t *testing.T) {
	te := newTenant(t, emulator.EntraOptions{}, false)
	now := time.Now()
	g := emulator.NewEntraGenerator(tenantID, 5)
	for _, st := range []string{emulator.EntraDirectoryAudits, emulator.EntraSignIns, emulator.EntraProvisioning} {
		te.emu.Backlog(g, tenantID, st, 200, now.Add(-5*time.Hour), now.Add(-time.Hour), 0)
	}
	ss := newSources(t, testConfig(te.url, StreamDirectoryAudits, StreamSignIns, StreamProvisioning), te.hc, nil)
	_, err := ss[StreamSignIns].Poll(context.Background(), nil)
	if !delivery.IsPermanent(err) || !strings.Contains(err.Error(), "Authentication_RequestFromNonPremiumTenantOrB2CTenant") ||
		!strings.Contains(err.Error(), "P1 or P2") || !strings.Contains(err.Error(), "remove sign_ins") {
		t.Fatalf("sign-ins of a Free tenant: %v, want a permanent error explaining the licence", err)
	}
	if err := ss[StreamSignIns].Check(context.Background()); !delivery.IsPermanent(err) {
		t.Errorf("Check of sign-ins: %v", err)
	}
	for _, key := range []string{StreamDirectoryAudits, StreamProvisioning} {
		r := newRelay(t, ss[key])
		r.drain(false)
		checkAll(t, te, emuStream[key], r)
	}
}

func TestEntraMissingPermissionsNameTheFix(t *testing.T) {
	te := newTenant(t, emulator.EntraOptions{}, true, emulator.EntraAuditLogRead)
	ss := newSources(t, testConfig(te.url, StreamDirectoryAudits, StreamProvisioning), te.hc, nil)
	err := ss[StreamDirectoryAudits].Check(context.Background())
	for _, want := range []string{"Authorization_RequestDenied", "AuditLog.Read.All", "Directory.Read.All", "Application permissions", "admin consent"} {
		if !delivery.IsPermanent(err) || !strings.Contains(err.Error(), want) {
			t.Fatalf("directory audits without Directory.Read.All: %v, want a permanent error naming %q", err, want)
		}
	}
	if err := ss[StreamProvisioning].Check(context.Background()); err != nil {
		t.Errorf("provisioning with AuditLog.Read.All: %v", err)
	}
}

func TestEntraMinimumAllowedTimeIsAGapNotALoop(t *testing.T) {
	te := newTenant(t, emulator.EntraOptions{}, false) // keeps 7 days
	now := time.Now()
	te.emu.Backlog(emulator.NewEntraGenerator(tenantID, 6), tenantID, emulator.EntraDirectoryAudits, 900, now.Add(-9*24*time.Hour), now.Add(-time.Hour), 0)
	cfg := testConfig(te.url, StreamDirectoryAudits) // retention 30d: wrong for this tenant
	cfg.Lookback = 10 * 24 * 3600e9
	r := newRelay(t, newSources(t, cfg, te.hc, nil)[StreamDirectoryAudits])
	r.drain(false)
	if len(r.gaps) != 1 {
		t.Fatalf("gaps %v, want one", r.gaps)
	}
	gap := r.gaps[0]
	min := now.Add(-7 * 24 * time.Hour).UTC().Truncate(24 * time.Hour)
	if d := gap.From.Sub(now.Add(-10*24*time.Hour - cfg.Overlap.D())); d < -time.Minute || d > time.Minute || !gap.To.Equal(min.Add(pastMinimum)) ||
		!strings.Contains(gap.Reason, "retention: 7d") {
		t.Fatalf("gap %+v, want [now - lookback - overlap, minimum + 10m) telling to set retention: 7d", gap)
	}
	served := 0
	for _, id := range te.emu.Events(tenantID, emulator.EntraDirectoryAudits) {
		if r.delivered[id] > 0 {
			served++
		}
	}
	if served < 600 || served > 800 {
		t.Fatalf("delivered %d of 900 spread over 9 days; want those of the last 7 days or so", served)
	}
	if refused := te.emu.Stats().Streams[emulator.EntraDirectoryAudits].Refused; refused != 1 {
		t.Errorf("%d refused requests, want the one that told the minimum", refused)
	}
}

func TestEntraFaultsNeverLoseAnEvent(t *testing.T) {
	te := newTenant(t, emulator.EntraOptions{Seed: 9, ShortPages: 0.3}, true)
	now := time.Now()
	g := emulator.NewEntraGenerator(tenantID, 7)
	te.emu.Backlog(g, tenantID, emulator.EntraSignIns, 3000, now.Add(-6*time.Hour), now.Add(-46*time.Minute), 30*time.Minute)
	te.emu.SetFaults(emulator.EntraFaults{ServerError: 0.06, Throttle: 0.02, Early401: 0.05, Truncate: 0.1, RefuseSkipToken: 0.05, RetryAfter: time.Millisecond})
	cfg := testConfig(te.url, StreamSignIns)
	cfg.PageSize = 250
	r := newRelay(t, newSources(t, cfg, te.hc, nil)[StreamSignIns])
	r.drain(false)
	checkAll(t, te, emulator.EntraSignIns, r)
	if te.emu.Stats().Streams[emulator.EntraSignIns].Faults == 0 {
		t.Fatal("no fault was injected: the test proves nothing")
	}
}

func writeCertificate(t *testing.T, dir string, separateKey bool) (*x509.Certificate, string, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "auditrelay"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	certFile, keyFile := filepath.Join(dir, "app.pem"), ""
	if separateKey {
		keyFile = filepath.Join(dir, "app.key")
		if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	} else {
		certPEM = append(keyPEM, certPEM...)
	}
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, certFile, keyFile
}

func TestEntraCertificateCredential(t *testing.T) {
	for _, separate := range []bool{false, true} {
		te := newTenant(t, emulator.EntraOptions{}, true)
		cert, certFile, keyFile := writeCertificate(t, t.TempDir(), separate)
		te.emu.AddApp(emulator.EntraApp{TenantID: tenantID, ClientID: "cert-app", Certificate: cert, Permissions: allPerms})
		te.emu.Backlog(emulator.NewEntraGenerator(tenantID, 8), tenantID, emulator.EntraDirectoryAudits, 50, time.Now().Add(-3*time.Hour), time.Now().Add(-time.Hour), 0)
		cfg := testConfig(te.url, StreamDirectoryAudits, StreamSignIns)
		cfg.ClientID, cfg.ClientSecret, cfg.CertificateFile, cfg.PrivateKeyFile = "cert-app", secret.String{}, certFile, keyFile
		ss := newSources(t, cfg, te.hc, nil)
		for _, s := range ss {
			if err := s.Check(context.Background()); err != nil {
				t.Fatalf("separate key %v: Check %s: %v", separate, s.Name(), err)
			}
		}
		r := newRelay(t, ss[StreamDirectoryAudits])
		r.drain(false)
		checkAll(t, te, emulator.EntraDirectoryAudits, r)
		if n := te.emu.Stats().TokenRequests; n != 1 {
			t.Errorf("%d token requests, want 1", n)
		}
	}
}

func TestEntraRefusedCredentials(t *testing.T) {
	other, otherCert, _ := writeCertificate(t, t.TempDir(), false)
	_ = other
	mine, _, _ := writeCertificate(t, t.TempDir(), false)
	for _, tc := range []struct {
		name string
		edit func(*Config)
		fix  string
	}{
		{"wrong secret", func(c *Config) { c.ClientSecret = secret.New("not-the-secret-77") }, "the secret's Value"},
		{"unknown app", func(c *Config) { c.ClientID = "00000000-0000-0000-0000-000000000001" }, "no app with this client_id"},
		{"unknown tenant", func(c *Config) { c.TenantID = "fabrikam.example" }, "check tenant_id"},
		{"certificate not on the app", func(c *Config) {
			c.ClientID, c.ClientSecret, c.CertificateFile = "cert-app", secret.String{}, otherCert
		}, "certificate is uploaded to the app registration"},
		{"missing certificate file", func(c *Config) {
			c.ClientID, c.ClientSecret, c.CertificateFile = "cert-app", secret.String{}, filepath.Join(t.TempDir(), "none.pem")
		}, "certificate_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newTenant(t, emulator.EntraOptions{}, true)
			te.emu.AddApp(emulator.EntraApp{TenantID: tenantID, ClientID: "cert-app", Certificate: mine, Permissions: allPerms})
			cfg := testConfig(te.url, StreamDirectoryAudits)
			tc.edit(&cfg)
			_, err := newSources(t, cfg, te.hc, nil)[StreamDirectoryAudits].Poll(context.Background(), nil)
			if !delivery.IsPermanent(err) || !strings.Contains(err.Error(), tc.fix) {
				t.Fatalf("Poll = %v, want a permanent error with the fix %q", err, tc.fix)
			}
			for _, leak := range []string{clientSecret, "not-the-secret-77", "PRIVATE KEY"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("the error quotes a secret: %v", err)
				}
			}
		})
	}
}

func TestEntraNextLinkMustStayOnGraph(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/token") {
			fmt.Fprint(w, `{"access_token":"tok","expires_in":3599}`)
			return
		}
		fmt.Fprint(w, `{"value":[],"@odata.nextLink":"https://evil.example/v1.0/auditLogs/directoryAudits?$skiptoken=1"}`)
	}))
	defer srv.Close()
	_, err := newSources(t, testConfig(srv.URL, StreamDirectoryAudits), srv.Client(), nil)[StreamDirectoryAudits].Poll(context.Background(), nil)
	if !delivery.IsPermanent(err) || !strings.Contains(err.Error(), "leaves graph_url") {
		t.Fatalf("a nextLink to another host gives %v, want a permanent refusal", err)
	}
}

func TestEntraFirstURLSaysTheClosedWindow(t *testing.T) {
	ss := newSources(t, testConfig("https://graph.microsoft.com", StreamDirectoryAudits, StreamSignIns, StreamProvisioning), nil, nil)
	w := struct{ from, to time.Time }{time.Date(2026, 11, 20, 10, 0, 0, 1234500, time.UTC), time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC)}
	for key, want := range map[string]string{
		StreamDirectoryAudits: "https://graph.microsoft.com/v1.0/auditLogs/directoryAudits?$top=1000&$filter=activityDateTime%20ge%202026-11-20T10%3A00%3A00.0012345Z%20and%20activityDateTime%20le%202026-11-20T11%3A00%3A00.0000000Z",
		StreamSignIns:         "https://graph.microsoft.com/v1.0/auditLogs/signIns?$top=1000&$filter=createdDateTime%20ge%202026-11-20T10%3A00%3A00.0012345Z%20and%20createdDateTime%20le%202026-11-20T11%3A00%3A00.0000000Z",
		StreamProvisioning:    "https://graph.microsoft.com/v1.0/auditLogs/provisioning?$top=1000&$filter=activityDateTime%20gt%202026-11-20T10%3A00%3A00.0012344Z%20and%20activityDateTime%20lt%202026-11-20T11%3A00%3A00.0000001Z",
	} {
		s := ss[key]
		got, _ := (*fetcher)(s).Open(context.Background(), windowOf(w.from, w.to))
		if got != want {
			t.Errorf("%s:\n got %s\nwant %s", key, got, want)
		}
		if err := s.checkLink(got); err != nil {
			t.Errorf("%s: its own first page fails checkLink: %v", key, err)
		}
	}
}

func TestEntraParseMinTime(t *testing.T) {
	for msg, want := range map[string]time.Time{
		"Invalid filter clause: Minimum allowed time for activityDateTime is 2/5/2023 12:00:00 AM": time.Date(2023, 2, 5, 0, 0, 0, 0, time.UTC),
		"minimum allowed time for createdDateTime is 11/13/2026 3:04:05 PM.":                       time.Date(2026, 11, 13, 15, 4, 5, 0, time.UTC),
		"Minimum allowed time for activityDateTime is 2026-11-13T00:00:00Z":                        time.Date(2026, 11, 13, 0, 0, 0, 0, time.UTC),
	} {
		if got, ok := parseMinTime(msg); !ok || !got.Equal(want) {
			t.Errorf("parseMinTime(%q) = %v %v, want %v", msg, got, ok, want)
		}
	}
	if _, ok := parseMinTime("Invalid filter clause"); ok {
		t.Error("a message without a minimum parsed")
	}
}
