package emulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/jwt"
)

type oktaHarness struct {
	o     *Okta
	srv   *httptest.Server
	clock *fakeClock
}

func newOktaHarness(t *testing.T, opts OktaOptions) *oktaHarness {
	t.Helper()
	clock := newFakeClock(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	opts.Now = clock.Now
	o := NewOkta(opts)
	srv := httptest.NewServer(o)
	t.Cleanup(srv.Close)
	o.AddAPIToken("ssws-token-1")
	return &oktaHarness{o: o, srv: srv, clock: clock}
}

type oktaAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (h *oktaHarness) get(t *testing.T, target, auth string) oktaAnswer {
	t.Helper()
	if !strings.HasPrefix(target, "http") {
		target = h.srv.URL + target
	}
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return oktaAnswer{resp.StatusCode, resp.Header, b}
}

// links returns the rel → URL of an answer's Link header lines.
func (a oktaAnswer) links(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range a.header.Values("Link") {
		u, rel, ok := strings.Cut(l, ">; rel=")
		if !ok || !strings.HasPrefix(u, "<") {
			t.Fatalf("malformed Link header %q", l)
		}
		out[strings.Trim(rel, `"`)] = u[1:]
	}
	return out
}

func (a oktaAnswer) uuids(t *testing.T) []string {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var evs []struct {
		UUID string `json:"uuid"`
	}
	if err := json.Unmarshal(a.body, &evs); err != nil {
		t.Fatalf("page is not a JSON array of events: %v: %s", err, a.body)
	}
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.UUID
	}
	return out
}

func (a oktaAnswer) errorCode(t *testing.T) string {
	t.Helper()
	var e struct {
		Code    string `json:"errorCode"`
		Summary string `json:"errorSummary"`
	}
	if err := json.Unmarshal(a.body, &e); err != nil || e.Code == "" || e.Summary == "" {
		t.Fatalf("status %d body %s is not an Okta error", a.status, a.body)
	}
	return e.Code
}

const ssws = "SSWS ssws-token-1"

func addEvents(h *oktaHarness, prefix string, n int, from time.Time, step time.Duration) []string {
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%04d", prefix, i)
		ids = append(ids, id)
		h.o.Add(OktaEvent{UUID: id, Published: from.Add(time.Duration(i) * step)})
	}
	return ids
}

func TestOktaPollingFollowsNextForever(t *testing.T) {
	h := newOktaHarness(t, OktaOptions{})
	now := h.clock.Now()
	want := addEvents(h, "e", 250, now.Add(-2*time.Hour), time.Second)
	since := url.QueryEscape(now.Add(-3 * time.Hour).Format(time.RFC3339))
	a := h.get(t, "/api/v1/logs?sortOrder=ASCENDING&limit=100&since="+since, ssws)
	var got []string
	for range 4 {
		ids := a.uuids(t)
		got = append(got, ids...)
		l := a.links(t)
		if l["self"] == "" || l["next"] == "" {
			t.Fatalf("page of %d: links %v, want self and next in polling mode", len(ids), l)
		}
		if len(a.header.Values("Link")) != 2 {
			t.Fatalf("Link header lines %q, want two separate lines", a.header.Values("Link"))
		}
		a = h.get(t, l["next"], ssws)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("polling returned %d events, want the 250 in commit order", len(got))
	}
	// Caught up: an empty page, still with a next link, which later
	// returns what was committed since.
	if ids := a.uuids(t); len(ids) != 0 {
		t.Fatalf("caught-up page has %d events", len(ids))
	}
	next := a.links(t)["next"]
	if next == "" {
		t.Fatal("an empty polling page has no next link")
	}
	h.clock.Advance(time.Minute)
	more := addEvents(h, "f", 3, h.clock.Now().Add(-time.Second), time.Millisecond)
	if got := h.get(t, next, ssws).uuids(t); strings.Join(got, ",") != strings.Join(more, ",") {
		t.Fatalf("after new commits the stored next link gave %v, want %v", got, more)
	}
}

func TestOktaLateCommitsAppearAfterThePosition(t *testing.T) {
	h := newOktaHarness(t, OktaOptions{})
	now := h.clock.Now()
	addEvents(h, "e", 5, now.Add(-10*time.Minute), time.Second)
	a := h.get(t, "/api/v1/logs?since="+url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339)), ssws)
	if n := len(a.uuids(t)); n != 5 {
		t.Fatalf("%d events, want 5", n)
	}
	next := a.links(t)["next"]
	// Published 20 minutes ago, committed only now: behind every event
	// already served by published time, after them by commit.
	h.clock.Advance(time.Second)
	h.o.Add(OktaEvent{UUID: "late", Published: now.Add(-20 * time.Minute), Persisted: h.clock.Now()})
	// A commit time in the past is moved up to what was served.
	h.o.Add(OktaEvent{UUID: "backdated", Published: now.Add(-30 * time.Minute), Persisted: now.Add(-30 * time.Minute)})
	got := h.get(t, next, ssws).uuids(t)
	slices.Sort(got)
	if strings.Join(got, ",") != "backdated,late" {
		t.Fatalf("next link gave %v, want the late and back-dated commits", got)
	}
	// A not yet committed event is invisible.
	h.o.Add(OktaEvent{UUID: "future", Published: h.clock.Now(), Persisted: h.clock.Now().Add(time.Minute)})
	if got := h.get(t, "/api/v1/logs?since="+url.QueryEscape(now.Add(-time.Minute).Format(time.RFC3339Nano)), ssws).uuids(t); strings.Contains(strings.Join(got, ","), "future") {
		t.Fatalf("an event committed in a minute is already served: %v", got)
	}
}

func TestOktaBoundedPagesEnd(t *testing.T) {
	h := newOktaHarness(t, OktaOptions{})
	now := h.clock.Now()
	want := addEvents(h, "e", 25, now.Add(-time.Hour), time.Minute)
	q := "since=" + url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339)) + "&until=" + url.QueryEscape(now.Add(-50*time.Minute).Format(time.RFC3339)) + "&limit=4"
	a := h.get(t, "/api/v1/logs?"+q, ssws)
	var got []string
	for range 10 {
		got = append(got, a.uuids(t)...)
		next := a.links(t)["next"]
		if next == "" {
			break
		}
		a = h.get(t, next, ssws)
	}
	if strings.Join(got, ",") != strings.Join(want[:10], ",") {
		t.Fatalf("bounded [since, until) gave %v, want the first 10", got)
	}
}

func TestOktaServiceAppToken(t *testing.T) {
	h := newOktaHarness(t, OktaOptions{})
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h.o.AddApp(OktaApp{ClientID: "0oa-app", PublicKey: key.Public(), KeyID: "k1", Scopes: []string{"okta.logs.read"}})
	h.o.AddApp(OktaApp{ClientID: "0oa-norole", PublicKey: key.Public(), Scopes: []string{"okta.logs.read"}, NoAdminRole: true})
	aud := h.srv.URL + "/oauth2/v1/token"
	assertion := func(iss, kid, aud, jti string, exp time.Time) string {
		s, err := jwt.Sign(key, kid, map[string]any{"iss": iss, "sub": iss, "aud": aud, "exp": exp.Unix(), "jti": jti})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	token := func(a, scope string) (int, map[string]any) {
		resp, err := http.PostForm(aud, url.Values{"grant_type": {"client_credentials"}, "scope": {scope},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, m
	}
	exp := h.clock.Now().Add(5 * time.Minute)
	good := assertion("0oa-app", "k1", aud, "j1", exp)
	code, m := token(good, "okta.logs.read")
	if code != 200 || m["token_type"] != "Bearer" || m["expires_in"] != float64(3600) || m["access_token"] == "" {
		t.Fatalf("token answer %d %v", code, m)
	}
	if a := h.get(t, "/api/v1/logs", "Bearer "+m["access_token"].(string)); a.status != 200 {
		t.Fatalf("logs with the access token: %d %s", a.status, a.body)
	}
	for name, tc := range map[string]struct {
		assertion, scope, wantErr, wantIn string
	}{
		"replayed jti":  {good, "okta.logs.read", "invalid_client", "already been used"},
		"wrong aud":     {assertion("0oa-app", "k1", "https://other/oauth2/v1/token", "j2", exp), "okta.logs.read", "invalid_client", "audience"},
		"wrong kid":     {assertion("0oa-app", "k2", aud, "j3", exp), "okta.logs.read", "invalid_client", "kid"},
		"expired":       {assertion("0oa-app", "k1", aud, "j4", h.clock.Now().Add(-time.Second)), "okta.logs.read", "invalid_client", "expired"},
		"too long":      {assertion("0oa-app", "k1", aud, "j5", h.clock.Now().Add(2*time.Hour)), "okta.logs.read", "invalid_client", "one hour"},
		"unknown":       {assertion("0oa-nope", "", aud, "j6", exp), "okta.logs.read", "invalid_client", "not found"},
		"not granted":   {assertion("0oa-app", "k1", aud, "j7", exp), "okta.users.read", "invalid_scope", "okta.users.read"},
		"not an assert": {"a.b.c", "okta.logs.read", "invalid_client", ""},
	} {
		code, m := token(tc.assertion, tc.scope)
		if code == 200 || m["error"] != tc.wantErr || !strings.Contains(fmt.Sprint(m["error_description"]), tc.wantIn) {
			t.Errorf("%s: %d %v, want %s mentioning %q", name, code, m, tc.wantErr, tc.wantIn)
		}
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := jwt.Sign(other, "k1", map[string]any{"iss": "0oa-app", "sub": "0oa-app", "aud": aud, "exp": exp.Unix()})
	if err != nil {
		t.Fatal(err)
	}
	if code, m := token(forged, "okta.logs.read"); code != 401 || !strings.Contains(fmt.Sprint(m["error_description"]), "signature") {
		t.Errorf("an assertion signed by another key: %d %v", code, m)
	}
	code, m = token(assertion("0oa-norole", "", aud, "j8", exp), "okta.logs.read")
	if code != 200 {
		t.Fatalf("token for the app without a role: %d %v", code, m)
	}
	if a := h.get(t, "/api/v1/logs", "Bearer "+m["access_token"].(string)); a.status != 403 || a.errorCode(t) != "E0000006" {
		t.Errorf("an app without an admin role reads logs: %d %s", a.status, a.body)
	}
	h.clock.Advance(time.Hour + time.Second)
	if a := h.get(t, "/api/v1/logs", "Bearer "+m["access_token"].(string)); a.status != 401 || a.errorCode(t) != "E0000011" {
		t.Errorf("an expired access token: %d %s", a.status, a.body)
	}
}

func TestOktaRateLimitHeaders(t *testing.T) {
	h := newOktaHarness(t, OktaOptions{RateLimit: 3})
	reset := h.clock.Now().Add(time.Minute).Unix()
	for i := range 3 {
		a := h.get(t, "/api/v1/logs", ssws)
		if a.status != 200 || a.header.Get("X-Rate-Limit-Limit") != "3" || a.header.Get("X-Rate-Limit-Remaining") != fmt.Sprint(2-i) ||
			a.header.Get("X-Rate-Limit-Reset") != fmt.Sprint(reset) {
			t.Fatalf("request %d: %d %v", i, a.status, a.header)
		}
	}
	a := h.get(t, "/api/v1/logs", ssws)
	if a.status != 429 || a.errorCode(t) != "E0000047" || a.header.Get("X-Rate-Limit-Remaining") != "0" {
		t.Fatalf("4th request in the minute: %d %v %s", a.status, a.header, a.body)
	}
	h.clock.Advance(time.Minute)
	if a := h.get(t, "/api/v1/logs", ssws); a.status != 200 {
		t.Fatalf("after the window: %d", a.status)
	}
}

func TestOktaErrors(t *testing.T) {
	h := newOktaHarness(t, OktaOptions{})
	now := h.clock.Now()
	for name, tc := range map[string]struct {
		target, auth string
		status       int
		code         string
	}{
		"since too old": {"/api/v1/logs?since=" + url.QueryEscape(now.Add(-181*24*time.Hour).Format(time.RFC3339)), ssws, 400, "E0000053"},
		"bad since":     {"/api/v1/logs?since=yesterday", ssws, 400, "E0000001"},
		"bad limit":     {"/api/v1/logs?limit=1001", ssws, 400, "E0000001"},
		"bad after":     {"/api/v1/logs?after=xyz", ssws, 400, "E0000001"},
		"bad token":     {"/api/v1/logs", "SSWS nope", 401, "E0000011"},
		"no auth":       {"/api/v1/logs", "", 401, "E0000011"},
	} {
		a := h.get(t, tc.target, tc.auth)
		if a.status != tc.status || a.errorCode(t) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", name, a.status, a.body, tc.status, tc.code)
		}
	}
	// Events older than retention are not served, even from an old since.
	h.o.Add(OktaEvent{UUID: "old", Published: now.Add(-100 * 24 * time.Hour)})
	h.o.Add(OktaEvent{UUID: "new", Published: now.Add(-time.Hour)})
	if got := h.get(t, "/api/v1/logs?since="+url.QueryEscape(now.Add(-170*24*time.Hour).Format(time.RFC3339)), ssws).uuids(t); strings.Join(got, ",") != "new" {
		t.Errorf("since 170 days ago gave %v, want only the event within 90 days", got)
	}
}

func TestOktaFaults(t *testing.T) {
	h := newOktaHarness(t, OktaOptions{})
	addEvents(h, "e", 10, h.clock.Now().Add(-time.Hour), time.Second)
	next := h.get(t, "/api/v1/logs?limit=5&since="+url.QueryEscape(h.clock.Now().Add(-2*time.Hour).Format(time.RFC3339)), ssws).links(t)["next"]
	h.o.SetFaults(OktaFaults{RefuseLink: 1})
	if a := h.get(t, next, ssws); a.status != 400 || a.errorCode(t) != "E0000001" {
		t.Errorf("refused link: %d %s", a.status, a.body)
	}
	h.o.SetFaults(OktaFaults{ServerError: 1})
	if a := h.get(t, next, ssws); a.status != 500 || a.errorCode(t) != "E0000009" {
		t.Errorf("server error: %d %s", a.status, a.body)
	}
	h.o.SetFaults(OktaFaults{Throttle: 1})
	if a := h.get(t, next, ssws); a.status != 429 || a.errorCode(t) != "E0000047" {
		t.Errorf("throttle: %d %s", a.status, a.body)
	}
	h.o.SetFaults(OktaFaults{Truncate: 1})
	req, _ := http.NewRequest(http.MethodGet, next, nil)
	req.Header.Set("Authorization", ssws)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("a truncated answer read whole")
	}
	served := h.o.Stats().Served
	h.o.SetFaults(OktaFaults{})
	if got := h.get(t, next, ssws).uuids(t); len(got) != 5 {
		t.Errorf("after the faults the link gave %d events, want 5", len(got))
	}
	if s := h.o.Stats(); s.Served != served+5 || s.Faults < 4 {
		t.Errorf("stats %+v: want 5 more served and the 4 faults counted", s)
	}
}

func TestOktaGeneratorEvents(t *testing.T) {
	g := NewOktaGenerator(7)
	at := time.Date(2026, 11, 20, 12, 0, 0, 123456789, time.UTC)
	seen := map[string]bool{}
	for range 200 {
		ev := g.Event(at)
		var m struct {
			UUID      string `json:"uuid"`
			Published string `json:"published"`
			EventType string `json:"eventType"`
			Actor     struct {
				ID string `json:"id"`
			} `json:"actor"`
			Outcome struct {
				Result string `json:"result"`
			} `json:"outcome"`
		}
		if err := json.Unmarshal(ev.JSON, &m); err != nil {
			t.Fatal(err)
		}
		if m.UUID != ev.UUID || m.Published != "2026-11-20T12:00:00.123Z" || !ev.Published.Equal(at.Truncate(time.Millisecond)) ||
			m.EventType == "" || !strings.HasPrefix(m.Actor.ID, "00u") || m.Outcome.Result == "" {
			t.Fatalf("event %s", ev.JSON)
		}
		if seen[ev.UUID] {
			t.Fatalf("uuid %s repeats", ev.UUID)
		}
		seen[ev.UUID] = true
	}
	if a, b := NewOktaGenerator(7).Event(at), NewOktaGenerator(7).Event(at); string(a.JSON) != string(b.JSON) {
		t.Error("the same seed gives different events")
	}
}
