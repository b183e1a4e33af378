package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is the base instant of test activities.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testEnv is the environment most tests use.
var testEnv = Environment{ID: "env-a", Licence: "lic", ClientID: "client-a", ClientSecret: "secret-a"}

// harness is a PingOne served over real HTTP.
type harness struct {
	p   *PingOne
	srv *httptest.Server
	c   *http.Client
}

func newHarness(t *testing.T, opts PingOneOptions, envs ...Environment) *harness {
	t.Helper()
	if opts.RateLimit == 0 {
		opts.RateLimit = -1 // most tests are not about the rate limit
	}
	p := NewPingOne(opts)
	for _, e := range envs {
		p.AddEnvironment(e)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return &harness{p: p, srv: srv, c: srv.Client()}
}

// do sends a request and returns the response with its body read.
func (h *harness) do(t *testing.T, method, target, token, contentType, body string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	if !strings.HasPrefix(target, "http") {
		target = h.srv.URL + target
	}
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := h.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, target, err)
	}
	return resp, b
}

// token fetches an access token for env with its own auth method.
func (h *harness) token(t *testing.T, env Environment) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	hdr := http.Header{}
	if env.AuthMethod == AuthMethodPost {
		form.Set("client_id", env.ClientID)
		form.Set("client_secret", env.ClientSecret)
	} else {
		req, _ := http.NewRequest("POST", "/", nil)
		req.SetBasicAuth(url.QueryEscape(env.ClientID), url.QueryEscape(env.ClientSecret))
		hdr.Set("Authorization", req.Header.Get("Authorization"))
	}
	resp, body := h.do(t, "POST", "/"+env.ID+"/as/token", "", "application/x-www-form-urlencoded", form.Encode(), hdr)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: HTTP %d: %s", resp.StatusCode, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token: bad body %s: %v", body, err)
	}
	return tr.AccessToken
}

// page is a decoded activities page.
type page struct {
	Links struct {
		Self *struct{ Href string } `json:"self"`
		Next *struct{ Href string } `json:"next"`
	} `json:"_links"`
	Embedded struct {
		Activities []json.RawMessage `json:"activities"`
	} `json:"_embedded"`
	Count int `json:"count"`
	Size  int `json:"size"`
}

// ids returns the ids of the page's activities, in order.
func (pg page) ids(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, raw := range pg.Embedded.Activities {
		var a struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatalf("activity %s: %v", raw, err)
		}
		out = append(out, a.ID)
	}
	return out
}

// list GETs activities of env with filter and limit (limit 0: absent) and
// requires a 200.
func (h *harness) list(t *testing.T, token, envID, filter string, limit int) page {
	t.Helper()
	q := url.Values{"filter": {filter}}
	if limit != 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	return h.get(t, token, h.srv.URL+"/v1/environments/"+envID+"/activities?"+q.Encode())
}

// get GETs an activities URL and requires a 200.
func (h *harness) get(t *testing.T, token, target string) page {
	t.Helper()
	resp, body := h.do(t, "GET", target, token, "", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d: %s", target, resp.StatusCode, body)
	}
	var pg page
	if err := json.Unmarshal(body, &pg); err != nil {
		t.Fatalf("GET %s: decode %s: %v", target, body, err)
	}
	return pg
}

// apiErr is a decoded PingOne error body.
type apiErr struct {
	ID      string `json:"id"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Code   string `json:"code"`
		Target string `json:"target"`
	} `json:"details"`
}

func decodeAPIErr(t *testing.T, body []byte) apiErr {
	t.Helper()
	var e apiErr
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if len(e.ID) != 36 || e.Message == "" {
		t.Errorf("error body %s: want an id and a message", body)
	}
	return e
}

// window is a filter over [from, to).
func window(from, to time.Time) string {
	return fmt.Sprintf(`recordedAt ge "%s" and recordedAt lt "%s"`, from.UTC().Format(timeFormat), to.UTC().Format(timeFormat))
}

// seq returns n activities recorded step apart from start, with ids
// prefix-0000, prefix-0001, …
func seq(prefix string, n int, start time.Time, step time.Duration) []Activity {
	acts := make([]Activity, n)
	for i := range acts {
		acts[i] = Activity{ID: fmt.Sprintf("%s-%04d", prefix, i), RecordedAt: start.Add(time.Duration(i) * step)}
	}
	return acts
}
