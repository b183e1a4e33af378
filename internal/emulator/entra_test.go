package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/jwt"
)

const (
	entraTenantID = "7c1f0d3a-5b2e-4c6d-9e8f-0a1b2c3d4e5f"
	entraClientID = "3f2e1d0c-b9a8-4765-8432-10fedcba9876"
	entraSecret   = "Qx8Q~graph-secret-value"
)

type entraHarness struct {
	e     *Entra
	srv   *httptest.Server
	clock *fakeClock
}

func newEntraHarness(t *testing.T, opts EntraOptions, premium bool, perms ...string) *entraHarness {
	t.Helper()
	clock := newFakeClock(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	opts.Now = clock.Now
	if opts.RateLimit == 0 {
		opts.RateLimit = -1
	}
	e := NewEntra(opts)
	e.AddTenant(EntraTenant{ID: entraTenantID, Premium: premium})
	if perms == nil {
		perms = []string{EntraAuditLogRead, EntraDirectoryRead}
	}
	e.AddApp(EntraApp{TenantID: entraTenantID, ClientID: entraClientID, ClientSecret: entraSecret, Permissions: perms})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &entraHarness{e: e, srv: srv, clock: clock}
}

type entraAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (h *entraHarness) post(t *testing.T, path string, form url.Values) entraAnswer {
	t.Helper()
	resp, err := http.PostForm(h.srv.URL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return entraAnswer{resp.StatusCode, resp.Header, b}
}

func (h *entraHarness) token(t *testing.T) string {
	t.Helper()
	a := h.post(t, "/"+entraTenantID+"/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {entraClientID},
		"client_secret": {entraSecret}, "scope": {"https://graph.microsoft.com/.default"}})
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if a.status != http.StatusOK || json.Unmarshal(a.body, &tok) != nil || tok.AccessToken == "" || tok.ExpiresIn != 3600 {
		t.Fatalf("token: %d %s", a.status, a.body)
	}
	return tok.AccessToken
}

func (h *entraHarness) get(t *testing.T, target, token string) entraAnswer {
	t.Helper()
	if !strings.HasPrefix(target, "http") {
		target = h.srv.URL + target
	}
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return entraAnswer{resp.StatusCode, resp.Header, b}
}

type entraPage struct {
	Value []struct {
		ID       string `json:"id"`
		Activity string `json:"activityDateTime"`
		Created  string `json:"createdDateTime"`
	} `json:"value"`
	Next string `json:"@odata.nextLink"`
}

func (a entraAnswer) page(t *testing.T) entraPage {
	t.Helper()
	var p entraPage
	if a.status != http.StatusOK || json.Unmarshal(a.body, &p) != nil {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	return p
}

func (a entraAnswer) graphError(t *testing.T) (string, string) {
	t.Helper()
	var e struct {
		Error struct {
			Code       string         `json:"code"`
			Message    string         `json:"message"`
			InnerError map[string]any `json:"innerError"`
		} `json:"error"`
	}
	if json.Unmarshal(a.body, &e) != nil || e.Error.Code == "" || e.Error.InnerError["request-id"] == nil {
		t.Fatalf("status %d body %s is not a Graph error", a.status, a.body)
	}
	return e.Error.Code, e.Error.Message
}

func filterLink(stream, field string, from, to time.Time, top int) string {
	p := map[string]string{"$filter": fmt.Sprintf("%s ge %s and %s le %s", field, from.Format(entraTimeLayout), field, to.Format(entraTimeLayout))}
	if top > 0 {
		p["$top"] = fmt.Sprint(top)
	}
	return entraLink("", stream, p)
}

func addEntra(h *entraHarness, stream, prefix string, n int, from time.Time, step time.Duration) []string {
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%04d", prefix, i)
		ids = append(ids, id)
		h.e.Add(entraTenantID, stream, EntraEvent{ID: id, Time: from.Add(time.Duration(i) * step)})
	}
	return ids
}

func TestEntraPagingNewestFirstWithAbsoluteNextLinks(t *testing.T) {
	h := newEntraHarness(t, EntraOptions{}, true)
	tok := h.token(t)
	now := h.clock.Now()
	want := addEntra(h, EntraDirectoryAudits, "a", 250, now.Add(-2*time.Hour), time.Second+123*time.Microsecond+400*time.Nanosecond)
	a := h.get(t, filterLink(EntraDirectoryAudits, "activityDateTime", now.Add(-3*time.Hour), now, 100), tok)
	var got []string
	var times []string
	for pages := 0; ; pages++ {
		p := a.page(t)
		for _, v := range p.Value {
			got = append(got, v.ID)
			times = append(times, v.Activity)
		}
		if p.Next == "" {
			if pages != 2 {
				t.Fatalf("%d pages of 100 for 250 events", pages+1)
			}
			break
		}
		u, err := url.Parse(p.Next)
		if err != nil || u.Scheme != "http" || u.Host != strings.TrimPrefix(h.srv.URL, "http://") || !u.Query().Has("$skiptoken") {
			t.Fatalf("nextLink %q is not an absolute link with a $skiptoken", p.Next)
		}
		a = h.get(t, p.Next, tok)
	}
	slices.Reverse(want)
	if !slices.Equal(got, want) {
		t.Fatalf("got %d events, want the 250 newest first", len(got))
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$`).MatchString(times[0]) {
		t.Errorf("time %q has not 7 fraction digits", times[0])
	}
	// $orderby asc reverses it; a full last page ends with an empty one.
	p := h.get(t, entraLink("", EntraDirectoryAudits, map[string]string{"$orderby": "activityDateTime asc", "$top": "250"}), tok).page(t)
	if len(p.Value) != 250 || p.Value[0].ID != "a-0000" || p.Next == "" {
		t.Fatalf("asc: %d events from %v, next %q", len(p.Value), p.Value[0].ID, p.Next)
	}
	if p := h.get(t, p.Next, tok).page(t); len(p.Value) != 0 || p.Next != "" {
		t.Fatalf("after a full last page: %d events, next %q; want an empty page without nextLink", len(p.Value), p.Next)
	}
	if n := h.e.Stats().Streams[EntraDirectoryAudits].Served; n != 500 {
		t.Errorf("served %d, want 500", n)
	}
	if ids := h.e.ServedIDs(entraTenantID, EntraDirectoryAudits); len(ids) != 250 || ids["a-0001"] != 2 {
		t.Errorf("served ids %d, a-0001 %d times", len(ids), ids["a-0001"])
	}
}

func TestEntraFilterClosedBoundsOnTheRightField(t *testing.T) {
	h := newEntraHarness(t, EntraOptions{}, true)
	tok := h.token(t)
	now := h.clock.Now()
	base := now.Add(-time.Hour)
	addEntra(h, EntraSignIns, "s", 10, base, time.Minute)
	addEntra(h, EntraProvisioning, "p", 10, base, time.Minute)
	// ge and le include both ends.
	if p := h.get(t, filterLink(EntraSignIns, "createdDateTime", base.Add(2*time.Minute), base.Add(5*time.Minute), 0), tok).page(t); len(p.Value) != 4 {
		t.Fatalf("[2m, 5m] has %d sign-ins, want 4", len(p.Value))
	}
	// gt and lt exclude them, on provisioning.
	f := fmt.Sprintf("activityDateTime gt %s and activityDateTime lt %s", base.Add(2*time.Minute).Format(entraTimeLayout), base.Add(5*time.Minute).Format(entraTimeLayout))
	if p := h.get(t, entraLink("", EntraProvisioning, map[string]string{"$filter": f}), tok).page(t); len(p.Value) != 2 {
		t.Fatalf("(2m, 5m) has %d provisioning events, want 2", len(p.Value))
	}
	for _, tc := range []struct{ stream, filter string }{
		{EntraDirectoryAudits, "createdDateTime ge 2026-11-20T10:00:00Z"},
		{EntraSignIns, "activityDateTime ge 2026-11-20T10:00:00Z"},
		{EntraProvisioning, "activityDateTime ge 2026-11-20T10:00:00Z"},
		{EntraDirectoryAudits, "activityDateTime ge '2026-11-20T10:00:00Z'"},
		{EntraDirectoryAudits, "activityDateTime ge 2026-11-20T10:00:00Z or activityDateTime le 2026-11-20T11:00:00Z"},
	} {
		a := h.get(t, entraLink("", tc.stream, map[string]string{"$filter": tc.filter}), tok)
		if code, msg := a.graphError(t); a.status != http.StatusBadRequest || code != "BadRequest" || !strings.HasPrefix(msg, "Invalid filter clause") {
			t.Errorf("%s $filter=%s: %d %s %q, want 400 Invalid filter clause", tc.stream, tc.filter, a.status, code, msg)
		}
	}
	if a := h.get(t, entraLink("", EntraSignIns, map[string]string{"$top": "1001"}), tok); a.status != http.StatusBadRequest {
		t.Errorf("$top=1001: %d", a.status)
	}
}

func TestEntraTokenEndpoint(t *testing.T) {
	h := newEntraHarness(t, EntraOptions{}, true)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "auditrelay"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	cert, _ := x509.ParseCertificate(der)
	h.e.AddApp(EntraApp{TenantID: entraTenantID, ClientID: "cert-app", Certificate: cert, Permissions: []string{EntraAuditLogRead}})
	tokenPath := "/" + entraTenantID + "/oauth2/v2.0/token"
	assertion := func(x5t, aud string, exp time.Time) string {
		s, err := jwt.SignHeader(key, jwt.Header{X5t: x5t}, map[string]any{"iss": "cert-app", "sub": "cert-app", "aud": aud,
			"exp": exp.Unix(), "nbf": h.clock.Now().Unix(), "jti": newUUID()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := assertion(EntraThumbprint(cert), h.srv.URL+tokenPath, h.clock.Now().Add(5*time.Minute))
	form := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}, "scope": {"https://graph.microsoft.com/.default"}}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	jb := "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	for _, tc := range []struct {
		name   string
		path   string
		form   url.Values
		status int
		code   string
		aadsts string
	}{
		{"secret", tokenPath, form("client_id", entraClientID, "client_secret", entraSecret), 200, "", ""},
		{"certificate", tokenPath, form("client_id", "cert-app", "client_assertion_type", jb, "client_assertion", good), 200, "", ""},
		{"wrong secret", tokenPath, form("client_id", entraClientID, "client_secret", "nope"), 401, "invalid_client", "AADSTS7000215"},
		{"unknown tenant", "/contoso.example/oauth2/v2.0/token", form("client_id", entraClientID, "client_secret", entraSecret), 400, "invalid_request", "AADSTS90002"},
		{"unknown app", tokenPath, form("client_id", "other", "client_secret", entraSecret), 400, "unauthorized_client", "AADSTS700016"},
		{"no credential", tokenPath, form("client_id", entraClientID), 401, "invalid_client", "AADSTS7000218"},
		{"wrong thumbprint", tokenPath, form("client_id", "cert-app", "client_assertion_type", jb, "client_assertion", assertion("AAAA", h.srv.URL+tokenPath, h.clock.Now().Add(time.Minute))), 401, "invalid_client", "AADSTS700027"},
		{"no thumbprint", tokenPath, form("client_id", "cert-app", "client_assertion_type", jb, "client_assertion", assertion("", h.srv.URL+tokenPath, h.clock.Now().Add(time.Minute))), 401, "invalid_client", "AADSTS5002723"},
		{"wrong audience", tokenPath, form("client_id", "cert-app", "client_assertion_type", jb, "client_assertion", assertion(EntraThumbprint(cert), "https://login.microsoftonline.com/x/oauth2/v2.0/token", h.clock.Now().Add(time.Minute))), 401, "invalid_client", "AADSTS700212"},
		{"expired assertion", tokenPath, form("client_id", "cert-app", "client_assertion_type", jb, "client_assertion", assertion(EntraThumbprint(cert), h.srv.URL+tokenPath, h.clock.Now().Add(-time.Minute))), 401, "invalid_client", "AADSTS700024"},
		{"scope without .default", tokenPath, form("client_id", entraClientID, "client_secret", entraSecret, "scope", "https://graph.microsoft.com/AuditLog.Read.All"), 400, "invalid_scope", "AADSTS1002012"},
		{"other resource", tokenPath, form("client_id", entraClientID, "client_secret", entraSecret, "scope", "https://graph.microsoft.us/.default"), 400, "invalid_resource", "AADSTS500011"},
	} {
		a := h.post(t, tc.path, tc.form)
		if a.status != tc.status {
			t.Errorf("%s: status %d %s, want %d", tc.name, a.status, a.body, tc.status)
			continue
		}
		if tc.status == 200 {
			continue
		}
		var e struct {
			Error string `json:"error"`
			Desc  string `json:"error_description"`
			Codes []int  `json:"error_codes"`
			Trace string `json:"trace_id"`
		}
		if json.Unmarshal(a.body, &e) != nil || e.Error != tc.code || !strings.HasPrefix(e.Desc, tc.aadsts+": ") || len(e.Codes) != 1 || e.Trace == "" {
			t.Errorf("%s: %s, want %s %s in the AADSTS shape", tc.name, a.body, tc.code, tc.aadsts)
		}
		if strings.Contains(string(a.body), entraSecret) {
			t.Errorf("%s: the answer quotes the secret", tc.name)
		}
	}
	// Tokens expire.
	tok := h.token(t)
	if a := h.get(t, "/v1.0/auditLogs/directoryAudits", tok); a.status != http.StatusOK {
		t.Fatalf("fresh token: %d %s", a.status, a.body)
	}
	h.clock.Advance(time.Hour)
	if a := h.get(t, "/v1.0/auditLogs/directoryAudits", tok); a.status != http.StatusUnauthorized {
		t.Fatalf("expired token: %d", a.status)
	} else if code, _ := a.graphError(t); code != "InvalidAuthenticationToken" {
		t.Errorf("expired token: %s", code)
	}
}

func TestEntraLicenceAndPermissions(t *testing.T) {
	h := newEntraHarness(t, EntraOptions{}, false, EntraAuditLogRead)
	tok := h.token(t)
	a := h.get(t, "/v1.0/auditLogs/signIns", tok)
	if code, msg := a.graphError(t); a.status != http.StatusForbidden || code != "Authentication_RequestFromNonPremiumTenantOrB2CTenant" || !strings.Contains(msg, "premium license") {
		t.Errorf("sign-ins of a free tenant: %d %s %s", a.status, code, msg)
	}
	a = h.get(t, "/v1.0/auditLogs/directoryAudits", tok)
	if code, msg := a.graphError(t); a.status != http.StatusForbidden || code != "Authorization_RequestDenied" || msg != "Insufficient privileges to complete the operation." {
		t.Errorf("directory audits without Directory.Read.All: %d %s %s", a.status, code, msg)
	}
	if a := h.get(t, "/v1.0/auditLogs/provisioning", tok); a.status != http.StatusOK {
		t.Errorf("provisioning with AuditLog.Read.All: %d %s", a.status, a.body)
	}
}

func TestEntraRetentionMinimumAllowedTime(t *testing.T) {
	h := newEntraHarness(t, EntraOptions{}, false)
	tok := h.token(t)
	now := h.clock.Now()
	a := h.get(t, filterLink(EntraDirectoryAudits, "activityDateTime", now.Add(-8*24*time.Hour), now, 0), tok)
	_, msg := a.graphError(t)
	if a.status != http.StatusBadRequest || !strings.Contains(msg, "Minimum allowed time for activityDateTime is 11/13/2026 12:00:00 AM") {
		t.Fatalf("8 days back in a 7-day tenant: %d %q", a.status, msg)
	}
	if a := h.get(t, filterLink(EntraDirectoryAudits, "activityDateTime", now.Add(-6*24*time.Hour), now, 0), tok); a.status != http.StatusOK {
		t.Fatalf("6 days back: %d %s", a.status, a.body)
	}
}

func TestEntraLateVisibleEventsAndShortPages(t *testing.T) {
	h := newEntraHarness(t, EntraOptions{ShortPages: 0.5, Seed: 3}, true)
	tok := h.token(t)
	now := h.clock.Now()
	h.e.Add(entraTenantID, EntraSignIns, EntraEvent{ID: "late", Time: now.Add(-10 * time.Minute), Visible: now.Add(5 * time.Minute)})
	want := addEntra(h, EntraSignIns, "s", 500, now.Add(-time.Hour), time.Second)
	link := filterLink(EntraSignIns, "createdDateTime", now.Add(-2*time.Hour), now, 50)
	read := func() []string {
		var got []string
		short := 0
		for a := h.get(t, link, tok); ; {
			p := a.page(t)
			for _, v := range p.Value {
				got = append(got, v.ID)
			}
			if p.Next == "" {
				break
			}
			if len(p.Value) < 50 {
				short++
			}
			a = h.get(t, p.Next, tok)
		}
		if short == 0 {
			t.Error("no short page with a nextLink")
		}
		return got
	}
	if got := read(); len(got) != 500 || slices.Contains(got, "late") {
		t.Fatalf("before it is visible: %d events (late included: %v)", len(got), slices.Contains(got, "late"))
	}
	h.clock.Advance(5 * time.Minute)
	if got := read(); len(got) != 501 || !slices.Contains(got, "late") || !slices.Contains(got, want[0]) {
		t.Fatalf("once visible: %d events", len(got))
	}
}

func TestEntraThrottlesPerAppAndTenant(t *testing.T) {
	h := newEntraHarness(t, EntraOptions{RateLimit: 5}, true)
	tok := h.token(t)
	for i := range 5 {
		stream := []string{EntraSignIns, EntraDirectoryAudits}[i%2]
		if a := h.get(t, "/v1.0/auditLogs/"+stream, tok); a.status != http.StatusOK {
			t.Fatalf("request %d: %d", i, a.status)
		}
		h.clock.Advance(time.Second)
	}
	a := h.get(t, "/v1.0/auditLogs/provisioning", tok)
	if code, _ := a.graphError(t); a.status != http.StatusTooManyRequests || code != "TooManyRequests" || a.header.Get("Retry-After") != "5" {
		t.Fatalf("sixth request in 10s: %d %s Retry-After %q, want 429 after 5s", a.status, code, a.header.Get("Retry-After"))
	}
	h.clock.Advance(5 * time.Second)
	if a := h.get(t, "/v1.0/auditLogs/provisioning", tok); a.status != http.StatusOK {
		t.Fatalf("after Retry-After: %d", a.status)
	}
	if s := h.e.Stats().Streams[EntraProvisioning]; s.Throttled != 1 || s.Requests != 2 {
		t.Errorf("provisioning stats %+v", s)
	}
}

func TestEntraRefusedSkipTokens(t *testing.T) {
	h := newEntraHarness(t, EntraOptions{SkipTokenTTL: 10 * time.Minute}, true)
	tok := h.token(t)
	now := h.clock.Now()
	addEntra(h, EntraDirectoryAudits, "a", 30, now.Add(-time.Hour), time.Second)
	p := h.get(t, filterLink(EntraDirectoryAudits, "activityDateTime", now.Add(-2*time.Hour), now, 10), tok).page(t)
	h.e.SetFaults(EntraFaults{RefuseSkipToken: 1})
	a := h.get(t, p.Next, tok)
	if _, msg := a.graphError(t); a.status != http.StatusBadRequest || !strings.Contains(msg, "Skip Token") {
		t.Fatalf("refused skiptoken: %d %s", a.status, msg)
	}
	h.e.SetFaults(EntraFaults{})
	h.clock.Advance(11 * time.Minute)
	if a := h.get(t, p.Next, tok); a.status != http.StatusBadRequest {
		t.Fatalf("expired skiptoken: %d", a.status)
	}
	tampered := strings.Replace(p.Next, "$skiptoken=", "$skiptoken=00", 1)
	if a := h.get(t, tampered, tok); a.status != http.StatusBadRequest {
		t.Fatalf("tampered skiptoken: %d", a.status)
	}
}

func TestEntraFaults(t *testing.T) {
	h := newEntraHarness(t, EntraOptions{Seed: 5}, true)
	tok := h.token(t)
	addEntra(h, EntraDirectoryAudits, "a", 20, h.clock.Now().Add(-time.Hour), time.Second)
	h.e.SetFaults(EntraFaults{ServerError: 1, RetryAfter: 7 * time.Second})
	seen := map[int]bool{}
	for range 3 {
		a := h.get(t, "/v1.0/auditLogs/directoryAudits", tok)
		seen[a.status] = true
		if a.status == http.StatusServiceUnavailable && a.header.Get("Retry-After") != "7" {
			t.Errorf("503 without its Retry-After")
		}
	}
	if !seen[500] || !seen[503] || !seen[504] {
		t.Errorf("server errors %v, want 500, 503 and 504", seen)
	}
	h.e.SetFaults(EntraFaults{Truncate: 1})
	resp, err := http.DefaultClient.Do(func() *http.Request {
		r, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/v1.0/auditLogs/directoryAudits", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}())
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("a truncated answer read whole")
	}
	if h.e.Stats().Streams[EntraDirectoryAudits].Faults != 4 {
		t.Errorf("faults %+v", h.e.Stats().Streams)
	}
}

func TestEntraGeneratorShapes(t *testing.T) {
	g := NewEntraGenerator(entraTenantID, 1)
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	ids := map[string]bool{}
	for _, stream := range []string{EntraDirectoryAudits, EntraSignIns, EntraProvisioning} {
		field := entraResources[stream].field
		for range 200 {
			ev := g.Event(stream, at)
			var m map[string]any
			if err := json.Unmarshal(ev.JSON, &m); err != nil {
				t.Fatalf("%s: %v", stream, err)
			}
			if m["id"] != ev.ID || ids[ev.ID] || m[field] != ev.Time.Format(entraTimeLayout) || ev.Time.Sub(at) >= time.Millisecond {
				t.Fatalf("%s event %s: id, %s %v or time %v wrong", stream, ev.ID, field, m[field], ev.Time)
			}
			ids[ev.ID] = true
			if stream == EntraDirectoryAudits && !regexp.MustCompile(`^[A-Za-z]+_[0-9a-f-]{36}_[A-Z0-9]{5}_\d+$`).MatchString(ev.ID) {
				t.Fatalf("directory audit id %q is not composite", ev.ID)
			}
		}
	}
}
