package pingone

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/auditrelay/auditrelay/internal/httpx/httpxtest"
	"github.com/auditrelay/auditrelay/internal/secret"
)

// fakeAPI is a small stand-in for the PingOne token endpoint and activities
// API, for unit tests that need to see or script each request. The
// integration tests use internal/emulator instead.
type fakeAPI struct {
	env        string
	clientID   string
	secret     string
	authMethod string // AuthBasic or AuthPost
	ttl        int    // expires_in of tokens

	mu       sync.Mutex
	acts     []fakeAct
	tokens   int
	lists    []string // the query of each activities request
	auths    []string // the Authorization header of each activities request
	issued   string   // the last token issued
	override func(w http.ResponseWriter, r *http.Request, n int) bool
}

type fakeAct struct {
	id string
	at time.Time
}

func newFakeAPI() *fakeAPI {
	return &fakeAPI{env: "env-1", clientID: "client-1", secret: "s3cret", authMethod: AuthBasic, ttl: 3600}
}

func (f *fakeAPI) clientSecret() secret.String { return secret.New(f.secret) }

func (f *fakeAPI) add(id string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acts = append(f.acts, fakeAct{id, at})
}

func (f *fakeAPI) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lists)
}

func (f *fakeAPI) tokenCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens
}

var filterRE = regexp.MustCompile(`^recordedAt ge "([^"]+)" and recordedAt lt "([^"]+)"$`)

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/"+f.env+"/as/token":
		f.token(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/environments/"+f.env+"/activities":
		f.list(w, r)
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"code":"NOT_FOUND","message":"The requested resource was not found"}`)
	}
}

func (f *fakeAPI) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Has("scope") {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_request"}`)
		return
	}
	var id, sec string
	basicID, basicSecret, basic := r.BasicAuth()
	switch {
	case f.authMethod == AuthBasic && basic && !r.PostForm.Has("client_secret"):
		id, _ = url.QueryUnescape(basicID)
		sec, _ = url.QueryUnescape(basicSecret)
	case f.authMethod == AuthPost && !basic:
		id, sec = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != f.clientID || sec != f.secret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client","error_description":"Request denied: Unsupported authentication method"}`)
		return
	}
	f.mu.Lock()
	f.tokens++
	f.issued = "tok-" + strconv.Itoa(f.tokens)
	tok := f.issued
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":%d}`, tok, f.ttl)
}

func (f *fakeAPI) list(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.lists = append(f.lists, r.URL.RawQuery)
	f.auths = append(f.auths, r.Header.Get("Authorization"))
	n := len(f.lists)
	override := f.override
	issued := f.issued
	f.mu.Unlock()
	if override != nil && override(w, r, n) {
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+issued {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"code":"INVALID_TOKEN","message":"The request could not be completed. The access token is invalid."}`)
		return
	}
	q := r.URL.Query()
	m := filterRE.FindStringSubmatch(q.Get("filter"))
	if m == nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"code":"INVALID_FILTER","message":"bad filter %q"}`, q.Get("filter"))
		return
	}
	from, to := ms(m[1]), ms(m[2])
	limit, _ := strconv.Atoi(q.Get("limit"))
	offset, _ := strconv.Atoi(q.Get("cursor"))
	f.mu.Lock()
	var in []fakeAct
	for _, a := range f.acts {
		if !a.at.Before(from) && a.at.Before(to) {
			in = append(in, a)
		}
	}
	f.mu.Unlock()
	slices.SortStableFunc(in, func(a, b fakeAct) int { return b.at.Compare(a.at) }) // newest first
	end := min(offset+limit, len(in))
	var acts []json.RawMessage
	for _, a := range in[min(offset, len(in)):end] {
		acts = append(acts, fakeActivityJSON(a.id, a.at))
	}
	body := map[string]any{"_embedded": map[string]any{"activities": append([]json.RawMessage{}, acts...)}}
	links := map[string]any{"self": map[string]string{"href": "http://" + r.Host + r.URL.RequestURI()}}
	if end < len(in) {
		q.Set("cursor", strconv.Itoa(end))
		links["next"] = map[string]string{"href": "http://" + r.Host + r.URL.Path + "?" + q.Encode()}
	}
	body["_links"] = links
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

func fakeActivityJSON(id string, at time.Time) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"id":%q,"recordedAt":%q,"action":{"type":"USER.UPDATED"},"result":{"status":"SUCCESS"}}`, id, formatTime(at)))
}

// testConfig returns a defaulted, valid config for base (an API and auth
// URL in one, as the fake and the emulator serve both).
func testConfig(base string) Config {
	cfg := Config{
		EnvironmentID: "env-1",
		ClientID:      "client-1",
		ClientSecret:  secret.New("s3cret"),
		APIURL:        base,
		AuthURL:       base,
	}
	cfg.SetDefaults()
	return cfg
}

// fixedClock returns a clock stopped at t and a way to move it.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fixedClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testLogger logs to t at debug level.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("source", "p1")
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// newTestSource builds a source against base with an unlimited limiter.
func newTestSource(t testing.TB, base string, client *http.Client, now func() time.Time, edit func(*Config)) *Source {
	t.Helper()
	cfg := testConfig(base)
	if edit != nil {
		edit(&cfg)
	}
	s, err := New("p1", cfg, Options{HTTPClient: client, Limiter: rate.NewLimiter(rate.Inf, 1), Logger: testLogger(t), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// serveFake starts f on a real loopback server.
func serveFake(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// servePipe serves h over an in-memory network and returns its base URL
// and a client that reaches it. Call it inside the synctest bubble.
func servePipe(t testing.TB, h http.Handler, timeout time.Duration) (string, *http.Client) {
	return httpxtest.ServePipe(t, h, timeout)
}
