package httpx

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
)

func TestClientCredentialsAuthMethods(t *testing.T) {
	var got *http.Request
	var form url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		got, form = r, r.PostForm
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"tok-1","token_type":"Bearer","expires_in":"3600"}`))
	}))
	defer srv.Close()
	const id, sec = "app id", "s3cr:t&+"
	for _, tc := range []struct {
		auth           string
		user, pass     string
		formID, formSe string
	}{
		{ClientSecretBasic, url.QueryEscape(id), url.QueryEscape(sec), "", ""},
		{"", url.QueryEscape(id), url.QueryEscape(sec), "", ""},
		{ClientSecretBasicRaw, id, sec, "", ""},
		{ClientSecretPost, "", "", id, sec},
	} {
		c := &ClientCredentials{Op: "t: token", TokenURL: srv.URL, Auth: tc.auth, ClientID: id, ClientSecret: sec, Scope: "a b", HTTP: srv.Client()}
		tok, ttl, err := c.Fetch(context.Background())
		if err != nil || tok != "tok-1" || ttl != time.Hour {
			t.Fatalf("%s: Fetch = %q, %v, %v", tc.auth, tok, ttl, err)
		}
		u, p, ok := got.BasicAuth()
		if tc.user != "" && (!ok || u != tc.user || p != tc.pass) {
			t.Errorf("%s: basic %q:%q, want %q:%q", tc.auth, u, p, tc.user, tc.pass)
		}
		if tc.user == "" && ok {
			t.Errorf("%s: a Basic header was sent", tc.auth)
		}
		if form.Get("client_id") != tc.formID || form.Get("client_secret") != tc.formSe || form.Get("grant_type") != "client_credentials" || form.Get("scope") != "a b" {
			t.Errorf("%s: form %v", tc.auth, form)
		}
	}
	n := 0
	c := &ClientCredentials{Op: "t: token", TokenURL: srv.URL, Auth: PrivateKeyJWT, ClientID: id, HTTP: srv.Client(),
		Assertion: func() (string, error) { n++; return "signed-" + string(rune('0'+n)), nil }}
	for want := range []string{"signed-1", "signed-2"} {
		if _, _, err := c.Fetch(context.Background()); err != nil {
			t.Fatal(err)
		}
		if form.Get("client_assertion") != []string{"signed-1", "signed-2"}[want] ||
			form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || form.Get("client_id") != id {
			t.Fatalf("assertion form %v: each request must carry a fresh assertion", form)
		}
	}
	if _, ok := got.Header["Authorization"]; ok {
		t.Error("private_key_jwt sent an Authorization header")
	}
	c.Assertion = func() (string, error) { return "", errors.New("no key") }
	if _, _, err := c.Fetch(context.Background()); !delivery.IsPermanent(err) || !strings.Contains(err.Error(), "no key") {
		t.Errorf("a failing signer gives %v, want a permanent error saying why", err)
	}
}

func TestClientCredentialsRefusals(t *testing.T) {
	fixes := TokenFixes{Credentials: "fix-creds", Scope: "fix-scope", Grant: "fix-grant", NotFound: "fix-url"}
	for _, tc := range []struct {
		status int
		body   string
		header string
		class  delivery.Class
		fix    string
		retry  time.Duration
	}{
		{401, `{"error":"invalid_client","error_description":"bad secret"}`, "", delivery.Permanent, "fix-creds", 0},
		{400, `{"error":"invalid_client"}`, "", delivery.Permanent, "fix-creds", 0},
		{403, `forbidden`, "", delivery.Permanent, "fix-creds", 0},
		{400, `{"error":"invalid_scope","error_description":"The following scopes were not granted: okta.logs.read"}`, "", delivery.Permanent, "fix-scope", 0},
		{400, `{"error":"unauthorized_client"}`, "", delivery.Permanent, "fix-grant", 0},
		{400, `{"error":"unsupported_grant_type"}`, "", delivery.Permanent, "fix-grant", 0},
		{404, `<html>not found</html>`, "", delivery.Permanent, "fix-url", 0},
		{429, `{"error":"slow_down"}`, "7", delivery.Throttled, "", 7 * time.Second},
		{503, `down`, "", delivery.Transient, "", 0},
		{408, ``, "", delivery.Transient, "", 0},
		{200, `{"token_type":"Bearer"}`, "", delivery.Transient, "", 0},
		{200, `not json`, "", delivery.Transient, "", 0},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.header != "" {
				w.Header().Set("Retry-After", tc.header)
			}
			w.WriteHeader(tc.status)
			w.Write([]byte(tc.body))
		}))
		c := &ClientCredentials{Op: "t: token", TokenURL: srv.URL, ClientID: "id", ClientSecret: "secret-v4lue", Fixes: fixes, HTTP: srv.Client()}
		_, _, err := c.Fetch(context.Background())
		srv.Close()
		var e *delivery.Error
		if !errors.As(err, &e) || e.Class != tc.class || e.Fix != tc.fix || e.RetryAfter != tc.retry {
			t.Errorf("%d %s: %#v, want class %v fix %q retry %v", tc.status, tc.body, err, tc.class, tc.fix, tc.retry)
			continue
		}
		if strings.Contains(err.Error(), "secret-v4lue") {
			t.Errorf("%d: the secret is in the error: %v", tc.status, err)
		}
		if tc.status == 401 && !strings.Contains(err.Error(), "invalid_client: bad secret") {
			t.Errorf("the server's message is not quoted: %v", err)
		}
	}
}

func TestClientCredentialsNetworkError(t *testing.T) {
	c := &ClientCredentials{Op: "t: token", TokenURL: "http://127.0.0.1:1/token", Field: "org_url", HTTP: NewClient(time.Second)}
	_, _, err := c.Fetch(context.Background())
	var e *delivery.Error
	if !errors.As(err, &e) || e.Class != delivery.Transient || !strings.Contains(e.Fix, "org_url") {
		t.Fatalf("unreachable token URL: %v, want a transient error naming org_url", err)
	}
}

func TestExpiresIn(t *testing.T) {
	for in, want := range map[string]time.Duration{`3600`: time.Hour, `"60"`: time.Minute, `0`: 0, `-5`: 0, `"x"`: 0, ``: 0, `1e9`: 0, `1.5`: 1500 * time.Millisecond} {
		if got := expiresIn([]byte(in)); got != want {
			t.Errorf("expiresIn(%s) = %v, want %v", in, got, want)
		}
	}
}

func TestOneLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\n b\tc", 10, "a b c"},
		{"abcdef", 3, "abc…"},
		{"aé", 2, "a…"},
		{"", 5, ""},
	} {
		if got := OneLine(tc.in, tc.n); got != tc.want {
			t.Errorf("OneLine(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestClientCredentialsMessage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_request","code":"E1","message":"the provider's words"}`))
	}))
	defer srv.Close()
	c := &ClientCredentials{Op: "t: token", TokenURL: srv.URL, ClientID: "id", ClientSecret: "s", HTTP: srv.Client(),
		Message: func(body []byte) string { return "from the hook: " + OneLine(string(body), 20) }}
	_, _, err := c.Fetch(context.Background())
	var e *delivery.Error
	if !errors.As(err, &e) || e.Class != delivery.Permanent || !strings.HasPrefix(e.Msg, "from the hook: ") {
		t.Fatalf("Fetch = %v, want a permanent error with the hook's message", err)
	}
}
