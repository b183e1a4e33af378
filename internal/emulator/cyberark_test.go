package emulator

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

var caTestTenant = CyberArkTenant{ID: "tenant-1", AppID: "auditrelay", ClientID: "svc@cyberark.cloud.1", ClientSecret: "s3cret", APIKey: "key-1"}

type caHarness struct {
	c     *CyberArk
	srv   *httptest.Server
	clock *fakeClock
}

func newCAHarness(t *testing.T, opts CyberArkOptions) *caHarness {
	t.Helper()
	clock := newFakeClock(t0)
	opts.Now = clock.Now
	if opts.RateLimit == 0 {
		opts.RateLimit = -1
	}
	c := NewCyberArk(opts)
	c.AddTenant(caTestTenant)
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return &caHarness{c: c, srv: srv, clock: clock}
}

func (h *caHarness) token(t *testing.T, basic bool, scope string) (int, string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	if !basic {
		form.Set("client_id", caTestTenant.ClientID)
		form.Set("client_secret", caTestTenant.ClientSecret)
	}
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/oauth2/token/auditrelay", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(caTestTenant.ClientID), caTestTenant.ClientSecret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	return resp.StatusCode, tok.AccessToken
}

func (h *caHarness) post(t *testing.T, path, tok, key, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("x-api-key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

type caResults struct {
	Data   []map[string]any `json:"data"`
	Paging struct {
		Cursor struct {
			CursorRef string `json:"cursorRef"`
		} `json:"cursor"`
	} `json:"paging"`
}

func (h *caHarness) drain(t *testing.T, tok, query string) ([]string, string) {
	t.Helper()
	resp, b := h.post(t, "/api/audits/stream/createQuery", tok, "key-1", query)
	if resp.StatusCode != 200 {
		t.Fatalf("createQuery: %d %s", resp.StatusCode, b)
	}
	var q struct{ CursorRef string }
	json.Unmarshal(b, &q)
	ref := q.CursorRef
	var ids []string
	for range 1000 {
		resp, b := h.post(t, "/api/audits/stream/results", tok, "key-1", `{"cursorRef":"`+ref+`"}`)
		if resp.StatusCode != 200 {
			t.Fatalf("results: %d %s", resp.StatusCode, b)
		}
		var r caResults
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.Paging.Cursor.CursorRef == "" {
			t.Fatal("no cursorRef in results")
		}
		ref = r.Paging.Cursor.CursorRef
		if len(r.Data) == 0 {
			return ids, ref
		}
		for _, e := range r.Data {
			ids = append(ids, e["uuid"].(string))
		}
	}
	t.Fatal("results never ended")
	return nil, ""
}

func TestCyberArkToken(t *testing.T) {
	h := newCAHarness(t, CyberArkOptions{})
	if code, tok := h.token(t, true, CyberArkScope); code != 200 || tok == "" {
		t.Errorf("basic: %d %q", code, tok)
	}
	if code, tok := h.token(t, false, CyberArkScope); code != 200 || tok == "" {
		t.Errorf("post: %d %q", code, tok)
	}
	if code, _ := h.token(t, true, "openid"); code != 400 {
		t.Errorf("wrong scope: %d, want 400", code)
	}
	_, tok := h.token(t, true, CyberArkScope)
	if resp, _ := h.post(t, "/api/audits/stream/createQuery", tok, "wrong", `{"query":{}}`); resp.StatusCode != 403 {
		t.Errorf("wrong api key: %d, want 403", resp.StatusCode)
	}
	h.clock.Advance(2 * time.Hour)
	if resp, _ := h.post(t, "/api/audits/stream/createQuery", tok, "key-1", `{"query":{}}`); resp.StatusCode != 401 {
		t.Errorf("expired token: %d, want 401", resp.StatusCode)
	}
}

func TestCyberArkPagingBurstAndVisibility(t *testing.T) {
	h := newCAHarness(t, CyberArkOptions{})
	g := NewCyberArkGenerator(1)
	burst := h.c.Burst(g, "tenant-1", 2500, t0, time.Time{})
	late := g.Event("tenant-1", t0.Add(300*time.Millisecond))
	late.VisibleAt = t0.Add(time.Minute)
	h.c.Add("tenant-1", late)
	h.c.Backlog(g, "tenant-1", 100, t0.Add(2*time.Second), t0.Add(5*time.Second))
	_, tok := h.token(t, true, CyberArkScope)
	q := `{"query":{"pageSize":500,"filterModel":{"date":{"dateFrom":"2025-03-01 12:00:00","dateTo":"2025-03-01 12:00:00"}},"sortModel":[{"field_name":"timestamp","direction":"asc"}]}}`
	ids, _ := h.drain(t, tok, q)
	if len(ids) != len(burst) {
		t.Fatalf("got %d events, want the %d of the burst (the late one not yet visible)", len(ids), len(burst))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("event %s served twice", id)
		}
		seen[id] = true
	}
	h.clock.Advance(time.Minute)
	ids, _ = h.drain(t, tok, q)
	if len(ids) != len(burst)+1 {
		t.Errorf("after the lag: %d events, want %d", len(ids), len(burst)+1)
	}
}

func TestCyberArkCursorExpiryAndFaults(t *testing.T) {
	h := newCAHarness(t, CyberArkOptions{CursorTTL: time.Minute})
	h.c.Backlog(NewCyberArkGenerator(2), "tenant-1", 10, t0, t0.Add(time.Second))
	_, tok := h.token(t, true, CyberArkScope)
	resp, b := h.post(t, "/api/audits/stream/createQuery", tok, "key-1", `{"query":{"pageSize":5}}`)
	var q struct{ CursorRef string }
	if err := json.Unmarshal(b, &q); resp.StatusCode != 200 || err != nil || q.CursorRef == "" {
		t.Fatalf("createQuery: %d %s", resp.StatusCode, b)
	}
	h.clock.Advance(2 * time.Minute)
	resp, b = h.post(t, "/api/audits/stream/results", tok, "key-1", `{"cursorRef":"`+q.CursorRef+`"}`)
	if resp.StatusCode != 400 || !strings.Contains(string(b), "expired") {
		t.Errorf("expired cursor: %d %s", resp.StatusCode, b)
	}
	h.c.SetFaults(CyberArkFaults{Throttle: 1})
	resp, _ = h.post(t, "/api/audits/stream/createQuery", tok, "key-1", `{"query":{}}`)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("throttle: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	h.c.SetFaults(CyberArkFaults{Truncate: 1})
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/api/audits/stream/createQuery", strings.NewReader(`{"query":{}}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("x-api-key", "key-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("truncate: %v, want a 200 whose body ends early", err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncate: HTTP %d, read error %v; want 200 and an unexpected EOF", resp.StatusCode, err)
	}
	if s := h.c.Stats(); s.Faults != 2 || s.ExpiredCursors != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestCyberArkGeneratorFields(t *testing.T) {
	g := NewCyberArkGenerator(3)
	keys := []string{"uuid", "tenantId", "timestamp", "username", "applicationCode", "auditCode", "auditType", "action", "userId",
		"source", "actionType", "component", "serviceName", "accessMethod", "accountId", "target", "command", "sessionId", "message",
		"customData", "cloudProvider", "cloudWorkspacesAndRoles", "cloudIdentities", "cloudAssets", "safe", "accountName",
		"targetPlatform", "targetAccount", "identityType"}
	var nulls, empties, pam, idp int
	for range 500 {
		e := g.Event("t", t0)
		var m map[string]json.RawMessage
		if err := json.Unmarshal(e.JSON, &m); err != nil {
			t.Fatalf("invalid JSON: %v: %s", err, e.JSON)
		}
		for _, k := range keys {
			v, ok := m[k]
			if !ok {
				t.Fatalf("key %s missing: %s", k, e.JSON)
			}
			switch string(v) {
			case "null":
				nulls++
			case `""`:
				empties++
			}
		}
		if string(m["timestamp"]) != "1740830400000" {
			t.Fatalf("timestamp %s", m["timestamp"])
		}
		switch e.ApplicationCode {
		case "PAM":
			pam++
		case "IDP":
			idp++
		}
	}
	if nulls == 0 || empties == 0 || pam == 0 || idp == 0 {
		t.Errorf("nulls %d, empties %d, PAM %d, IDP %d: want all > 0", nulls, empties, pam, idp)
	}
}
