package emulator

import (
	"bytes"
	crand "crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// PingOneOptions configure a PingOne emulator. The zero value is usable.
type PingOneOptions struct {
	// TokenTTL is the lifetime (expires_in) of issued access tokens; default 1h.
	TokenTTL time.Duration
	// RateLimit is the activities requests per second allowed per licence
	// (a token bucket shared by the licence's environments); default 10,
	// PingOne's audit rate. A negative value disables rate limiting.
	RateLimit float64
	// Burst is the bucket size; default max(1, int(RateLimit)).
	Burst int
	// Now is the clock for token expiry, visibility and rate limiting;
	// default time.Now.
	Now func() time.Time
	// Seed seeds fault injection: the same seed and the same sequence of
	// requests inject the same faults.
	Seed uint64
}

// The token endpoint client authentication methods of an Environment.
const (
	AuthMethodBasic = "client_secret_basic"
	AuthMethodPost  = "client_secret_post"
)

// Environment is a PingOne environment with the one worker application whose
// credentials can obtain tokens for it.
type Environment struct {
	// ID is the environment id, the first path segment of every URL.
	ID string
	// Licence names the licence whose rate limit the environment shares;
	// empty means the environment has a licence of its own.
	Licence string
	// ClientID and ClientSecret are the worker application's credentials.
	ClientID, ClientSecret string
	// AuthMethod is AuthMethodBasic (the default when empty) or
	// AuthMethodPost: the only way the token endpoint accepts the credentials.
	AuthMethod string
}

// Activity is one audit activity of an environment.
type Activity struct {
	// ID is the activity id, unique within an environment.
	ID string
	// RecordedAt is the recordedAt the filter applies to; Add stores it at
	// millisecond precision, in UTC.
	RecordedAt time.Time
	// VisibleAt is when the activity starts being returned by queries
	// (eventual consistency); the zero time means always.
	VisibleAt time.Time
	// JSON is the whole activity object as served, byte for byte; it
	// contains id and recordedAt matching the fields above. Add fills a
	// minimal object when it is empty.
	JSON json.RawMessage
}

// Faults are the fractions (0..1) of activities requests answered with each
// kind of fault. ServerError, Throttle, Early401 and Truncate exclude each
// other; Slow combines with any of them.
type Faults struct {
	// ServerError answers 500, 502 or 503 with a PingOne-style error body.
	ServerError float64
	// Slow delays the answer by SlowDelay.
	Slow float64
	// SlowDelay is how long a Slow answer waits (or until the client
	// gives up).
	SlowDelay time.Duration
	// Truncate answers 200 with the Content-Length of the full body, sends
	// half of it and closes the connection.
	Truncate float64
	// Early401 answers 401 to a valid, unexpired token and revokes the
	// token, as an administrator could: the client must fetch a new one.
	Early401 float64
	// Throttle answers 429 REQUEST_LIMITED with Retry-After although the
	// licence is under its rate.
	Throttle float64
}

// Stats count what a PingOne has done since it was created.
type Stats struct {
	// TokenRequests counts requests to the token endpoint, failed or not.
	TokenRequests int64 `json:"tokenRequests"`
	// ActivityRequests counts requests to the activities endpoints.
	ActivityRequests int64 `json:"activityRequests"`
	// Throttled counts 429 answers of the licence rate limit (not faults).
	Throttled int64 `json:"throttled"`
	// Faults counts injected faults (a slow answer that is also faulted
	// otherwise counts twice).
	Faults int64 `json:"faults"`
	// Served counts activities in responses sent whole (not truncated by
	// a fault), repeats included.
	Served int64 `json:"served"`
}

// PingOne emulates the PingOne token endpoint and audit activities API. It is
// an http.Handler; all its methods are safe for concurrent use.
type PingOne struct {
	opts PingOneOptions
	mux  *http.ServeMux

	mu   sync.RWMutex
	envs map[string]*envState

	tokMu   sync.Mutex
	tokens  map[string]tokenInfo
	sweepAt int

	rateMu  sync.Mutex
	buckets map[string]*bucket

	faultMu sync.Mutex
	faults  Faults
	rng     *rand.Rand

	tokenRequests, activityRequests, throttled, faultCount, served atomic.Int64

	// pages holds the buffers pages are built in, reused once written:
	// a fresh megabyte for every page was most of the emulator's cost.
	pages sync.Pool // of *bytes.Buffer

	wg sync.WaitGroup // generators started by StartDemo
}

// tokenInfo is an issued access token.
type tokenInfo struct {
	envID   string
	expires time.Time
}

// bucket is a licence's token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// NewPingOne returns an emulator without environments.
func NewPingOne(opts PingOneOptions) *PingOne {
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = 10
	}
	if opts.Burst <= 0 {
		opts.Burst = max(1, int(opts.RateLimit))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &PingOne{
		opts:    opts,
		envs:    map[string]*envState{},
		tokens:  map[string]tokenInfo{},
		sweepAt: 64,
		buckets: map[string]*bucket{},
		rng:     rand.New(rand.NewPCG(opts.Seed, 0x5eed_fa17)),
	}
	p.mux = http.NewServeMux()
	p.mux.HandleFunc("/{envID}/as/token", p.handleToken)
	p.mux.HandleFunc("/v1/environments/{envID}/activities", p.handleActivities)
	p.mux.HandleFunc("/v1/environments/{envID}/activities/{id}", p.handleActivity)
	p.mux.HandleFunc("GET /emulator/stats", p.handleStats)
	p.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource was not found.")
	})
	return p
}

// ServeHTTP serves the PingOne API. A Truncate fault aborts the handler with
// http.ErrAbortHandler, which an http.Server turns into a closed connection.
func (p *PingOne) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mux.ServeHTTP(w, r)
}

// AddEnvironment adds an environment, or replaces its configuration keeping
// its activities. It panics on an empty ID or an unknown AuthMethod.
func (p *PingOne) AddEnvironment(env Environment) {
	if env.ID == "" {
		panic("emulator: AddEnvironment: empty environment ID")
	}
	switch env.AuthMethod {
	case "":
		env.AuthMethod = AuthMethodBasic
	case AuthMethodBasic, AuthMethodPost:
	default:
		panic(fmt.Sprintf("emulator: AddEnvironment: unknown AuthMethod %q", env.AuthMethod))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.state(env.ID)
	st.env = env
	st.configured = true
}

// state returns the environment's state, creating it; p.mu must be held for
// writing.
func (p *PingOne) state(envID string) *envState {
	st := p.envs[envID]
	if st == nil {
		st = newEnvState()
		p.envs[envID] = st
	}
	return st
}

// Add stores activities of an environment (which need not have been added
// yet). An activity with the id of a stored one replaces it. It panics on an
// activity without ID or with invalid JSON. Inserting k activities into n
// costs O(k log k + log n) when they are newer than all stored ones (the
// live case), O(k·n) for a few older ones and O(n + k) for a large batch.
func (p *PingOne) Add(envID string, acts ...Activity) {
	if len(acts) == 0 {
		return
	}
	es := make([]*entry, len(acts))
	for i, a := range acts {
		es[i] = newEntry(a)
	}
	now := nanos(p.opts.Now())
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state(envID).add(es, now)
}

// Activities returns every activity added to the environment, visible or
// not, sorted by RecordedAt then ID.
func (p *PingOne) Activities(envID string) []Activity {
	p.mu.RLock()
	defer p.mu.RUnlock()
	st := p.envs[envID]
	if st == nil {
		return nil
	}
	out := make([]Activity, len(st.acts))
	for i, e := range st.acts {
		out[i] = e.act
	}
	return out
}

// ServedIDs returns, for each activity id of the environment ever written in
// a complete response, how many times it was.
func (p *PingOne) ServedIDs(envID string) map[string]int {
	p.mu.RLock()
	st := p.envs[envID]
	p.mu.RUnlock()
	out := map[string]int{}
	if st == nil {
		return out
	}
	st.servedMu.Lock()
	defer st.servedMu.Unlock()
	for id, n := range st.served {
		out[id] = n
	}
	return out
}

// SetFaults sets the faults injected from now on; fractions are clamped to
// [0, 1]. The zero Faults injects none.
func (p *PingOne) SetFaults(f Faults) {
	clamp := func(v float64) float64 {
		if math.IsNaN(v) {
			return 0
		}
		return min(max(v, 0), 1)
	}
	f.ServerError, f.Slow, f.Truncate = clamp(f.ServerError), clamp(f.Slow), clamp(f.Truncate)
	f.Early401, f.Throttle = clamp(f.Early401), clamp(f.Throttle)
	p.faultMu.Lock()
	defer p.faultMu.Unlock()
	p.faults = f
}

// Stats returns the counters.
func (p *PingOne) Stats() Stats {
	return Stats{
		TokenRequests:    p.tokenRequests.Load(),
		ActivityRequests: p.activityRequests.Load(),
		Throttled:        p.throttled.Load(),
		Faults:           p.faultCount.Load(),
		Served:           p.served.Load(),
	}
}

// environment returns the configured environment with the given id.
func (p *PingOne) environment(envID string) (*envState, Environment, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	st := p.envs[envID]
	if st == nil || !st.configured {
		return nil, Environment{}, false
	}
	return st, st.env, true
}

// handleToken serves POST /{envId}/as/token (client credentials grant).
func (p *PingOne) handleToken(w http.ResponseWriter, r *http.Request) {
	p.tokenRequests.Add(1)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "the token endpoint accepts only POST")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "cannot parse the form body: "+err.Error())
		return
	}
	_, env, ok := p.environment(r.PathValue("envID"))
	if !ok {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Request denied: unknown environment or client")
		return
	}
	if msg := authenticateClient(env, r); msg != "" {
		if env.AuthMethod == AuthMethodBasic {
			w.Header().Set("WWW-Authenticate", `Basic realm="PingOne"`)
		}
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", msg)
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q is not supported by this application (want client_credentials)", gt))
		return
	}
	tok := crand.Text()
	now := p.opts.Now()
	p.tokMu.Lock()
	if len(p.tokens) >= p.sweepAt {
		for t, info := range p.tokens {
			if !now.Before(info.expires) {
				delete(p.tokens, t)
			}
		}
		p.sweepAt = 2*len(p.tokens) + 64
	}
	p.tokens[tok] = tokenInfo{envID: env.ID, expires: now.Add(p.opts.TokenTTL)}
	p.tokMu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}{tok, "Bearer", int64(p.opts.TokenTTL / time.Second)})
}

// authenticateClient checks the client credentials of a token request the
// way the environment's application accepts them; it returns why they are
// refused, or "".
func authenticateClient(env Environment, r *http.Request) string {
	_, formID := r.PostForm["client_id"]
	_, formSecret := r.PostForm["client_secret"]
	var id, secret string
	switch env.AuthMethod {
	case AuthMethodPost:
		if r.Header.Get("Authorization") != "" {
			return "Request denied: the application uses client_secret_post; send client_id and client_secret in the form body, without an Authorization header"
		}
		if !formID || !formSecret {
			return "Request denied: the application uses client_secret_post; client_id and client_secret are required in the form body"
		}
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	default:
		user, pass, ok := r.BasicAuth()
		if !ok {
			return "Request denied: the application uses client_secret_basic; send the credentials in an Authorization: Basic header"
		}
		if formID || formSecret {
			return "Request denied: the application uses client_secret_basic; client_id and client_secret must not also be in the form body"
		}
		id, secret = formUnescape(user), formUnescape(pass)
	}
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(env.ClientID)) == 1
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(env.ClientSecret)) == 1
	if !idOK || !secretOK {
		return "Request denied: wrong client credentials"
	}
	return ""
}

// formUnescape undoes the form encoding RFC 6749 §2.3.1 applies to Basic
// credentials, leaving a value that is not form-encoded as it is.
func formUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// admit runs the checks every activities request goes through: bearer token,
// environment, rate limit, injected faults. When it returns false the answer
// has been written. truncate reports a Truncate fault the caller must apply.
func (p *PingOne) admit(w http.ResponseWriter, r *http.Request) (st *envState, truncate, ok bool) {
	p.activityRequests.Add(1)
	envID := r.PathValue("envID")
	tok, info, valid := p.bearer(r)
	if !valid {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeAPIError(w, http.StatusUnauthorized, "INVALID_TOKEN", "The request could not be completed. The access token is missing, invalid or expired.")
		return nil, false, false
	}
	st, env, found := p.environment(envID)
	if !found {
		writeAPIError(w, http.StatusNotFound, "NOT_FOUND", "Unable to find environment with ID: "+envID)
		return nil, false, false
	}
	if info.envID != envID {
		writeAPIError(w, http.StatusForbidden, "ACCESS_FAILED", "The request could not be completed. You do not have access to this resource.")
		return nil, false, false
	}
	licence := env.Licence
	if licence == "" {
		licence = "environment:" + env.ID
	}
	if wait, allowed := p.take(licence); !allowed {
		p.throttled.Add(1)
		writeThrottled(w, wait)
		return nil, false, false
	}
	kind, status, slow := p.drawFault()
	if slow > 0 {
		p.faultCount.Add(1)
		t := time.NewTimer(slow)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return nil, false, false
		}
	}
	switch kind {
	case faultServerError:
		p.faultCount.Add(1)
		code, msg := "UNEXPECTED_ERROR", "An unexpected error occurred."
		switch status {
		case http.StatusBadGateway:
			code, msg = "REQUEST_FAILED", "The request could not be completed: bad gateway."
		case http.StatusServiceUnavailable:
			code, msg = "SERVICE_UNAVAILABLE", "The service is temporarily unavailable."
		}
		writeAPIError(w, status, code, msg)
		return nil, false, false
	case faultThrottle:
		p.faultCount.Add(1)
		writeThrottled(w, time.Second)
		return nil, false, false
	case faultEarly401:
		p.faultCount.Add(1)
		p.tokMu.Lock()
		delete(p.tokens, tok)
		p.tokMu.Unlock()
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeAPIError(w, http.StatusUnauthorized, "INVALID_TOKEN", "The request could not be completed. The access token has been revoked.")
		return nil, false, false
	case faultTruncate:
		p.faultCount.Add(1)
		truncate = true
	}
	return st, truncate, true
}

// bearer returns the request's access token if it is valid now.
func (p *PingOne) bearer(r *http.Request) (string, tokenInfo, bool) {
	scheme, tok, found := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !found || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", tokenInfo{}, false
	}
	now := p.opts.Now()
	p.tokMu.Lock()
	defer p.tokMu.Unlock()
	info, ok := p.tokens[tok]
	if !ok {
		return "", tokenInfo{}, false
	}
	if !now.Before(info.expires) {
		delete(p.tokens, tok)
		return "", tokenInfo{}, false
	}
	return tok, info, true
}

// take takes one request from the licence's bucket, or returns how long
// until one is available.
func (p *PingOne) take(licence string) (time.Duration, bool) {
	if p.opts.RateLimit < 0 {
		return 0, true
	}
	now := p.opts.Now()
	burst, rate := float64(p.opts.Burst), p.opts.RateLimit
	p.rateMu.Lock()
	defer p.rateMu.Unlock()
	b := p.buckets[licence]
	if b == nil {
		b = &bucket{tokens: burst, last: now}
		p.buckets[licence] = b
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(burst, b.tokens+elapsed.Seconds()*rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / rate * float64(time.Second)), false
}

// faultKind is the injected fault of one request.
type faultKind int

const (
	faultNone faultKind = iota
	faultServerError
	faultThrottle
	faultEarly401
	faultTruncate
)

// drawFault picks the fault of one request, its status for server errors,
// and its delay for slow answers.
func (p *PingOne) drawFault() (kind faultKind, status int, slow time.Duration) {
	p.faultMu.Lock()
	defer p.faultMu.Unlock()
	f := p.faults
	if f == (Faults{}) {
		return faultNone, 0, 0
	}
	if f.Slow > 0 && p.rng.Float64() < f.Slow {
		slow = max(f.SlowDelay, time.Nanosecond)
	}
	u := p.rng.Float64()
	switch {
	case u < f.ServerError:
		statuses := [...]int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}
		return faultServerError, statuses[p.rng.IntN(len(statuses))], slow
	case u < f.ServerError+f.Throttle:
		return faultThrottle, 0, slow
	case u < f.ServerError+f.Throttle+f.Early401:
		return faultEarly401, 0, slow
	case u < f.ServerError+f.Throttle+f.Early401+f.Truncate:
		return faultTruncate, 0, slow
	}
	return faultNone, 0, slow
}

// Bounds and default of the activities page size.
const (
	minLimit     = 1
	maxLimit     = 1000
	defaultLimit = 100
)

// listParams are the parameters of an activities query, from the URL or a
// POST body.
type listParams struct {
	filter   string
	limit    int
	limitSet bool
	cursor   string
}

// readParams reads the query parameters, overridden by the JSON body of a
// POST.
func readParams(r *http.Request) (listParams, *apiError) {
	q := r.URL.Query()
	lp := listParams{filter: q.Get("filter"), cursor: q.Get("cursor")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return lp, limitError(fmt.Sprintf("limit %q is not an integer", s))
		}
		lp.limit, lp.limitSet = n, true
	}
	if r.Method != http.MethodPost {
		return lp, nil
	}
	var body struct {
		Filter *string `json:"filter"`
		Limit  *int    `json:"limit"`
		Cursor *string `json:"cursor"`
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return lp, invalidData("body", "INVALID_VALUE", "cannot read the request body: "+err.Error())
	}
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &body); err != nil {
			return lp, invalidData("body", "INVALID_VALUE", "the request body is not a valid JSON object: "+err.Error())
		}
	}
	if body.Filter != nil {
		lp.filter = *body.Filter
	}
	if body.Limit != nil {
		lp.limit, lp.limitSet = *body.Limit, true
	}
	if body.Cursor != nil {
		lp.cursor = *body.Cursor
	}
	return lp, nil
}

// handleActivities serves GET and POST /v1/environments/{envId}/activities.
func (p *PingOne) handleActivities(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeAPIError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "The request method is not supported for this resource.")
		return
	}
	st, truncate, ok := p.admit(w, r)
	if !ok {
		return
	}
	envID := r.PathValue("envID")
	lp, perr := readParams(r)
	if perr != nil {
		perr.write(w, http.StatusBadRequest)
		return
	}
	var after *cursor
	if lp.cursor != "" {
		c, err := decodeCursor(lp.cursor)
		if err != nil || c.Env != envID {
			invalidData("cursor", "INVALID_VALUE", "the cursor is not valid for this request").write(w, http.StatusBadRequest)
			return
		}
		if lp.filter != "" && lp.filter != c.Filter {
			invalidData("filter", "INVALID_VALUE", "the filter differs from the one the cursor was issued for").write(w, http.StatusBadRequest)
			return
		}
		lp.filter = c.Filter
		if !lp.limitSet {
			lp.limit, lp.limitSet = c.Limit, true
		}
		after = &c
	}
	if !lp.limitSet {
		lp.limit = defaultLimit
	}
	if lp.limit < minLimit || lp.limit > maxLimit {
		limitError(fmt.Sprintf("limit %d is out of range", lp.limit)).write(w, http.StatusBadRequest)
		return
	}
	if strings.TrimSpace(lp.filter) == "" {
		invalidData("filter", "INVALID_FILTER", "A filter with a recordedAt range is required.").write(w, http.StatusBadRequest)
		return
	}
	f, err := parseFilter(lp.filter)
	if err != nil {
		invalidData("filter", "INVALID_FILTER", "Invalid filter: "+err.Error()).write(w, http.StatusBadRequest)
		return
	}

	now := nanos(p.opts.Now())
	p.mu.RLock()
	res := st.query(f, lp.limit, after, now)
	p.mu.RUnlock()

	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	base := scheme + "://" + r.Host + "/v1/environments/" + url.PathEscape(envID) + "/activities"
	q := url.Values{"filter": {lp.filter}, "limit": {strconv.Itoa(lp.limit)}}
	if lp.cursor != "" {
		q.Set("cursor", lp.cursor)
	}
	size := 512 + 2*len(base) + 4*len(lp.filter) + 2*len(lp.cursor)
	for _, e := range res.items {
		size += len(e.act.JSON) + 1
	}
	b, _ := p.pages.Get().(*bytes.Buffer)
	if b == nil {
		b = new(bytes.Buffer)
	}
	defer p.pages.Put(b) // written out before the handler returns
	b.Reset()
	b.Grow(size)
	b.WriteString(`{"_links":{"self":{"href":`)
	writeJSONString(b, base+"?"+q.Encode())
	b.WriteString(`}`)
	if res.more {
		last := res.items[len(res.items)-1]
		q.Set("cursor", cursor{Env: envID, Filter: lp.filter, Limit: lp.limit, Ms: last.ms, ID: last.id}.encode())
		b.WriteString(`,"next":{"href":`)
		writeJSONString(b, base+"?"+q.Encode())
		b.WriteString(`}`)
	}
	b.WriteString(`},"_embedded":{"activities":[`)
	for i, e := range res.items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(e.act.JSON)
	}
	fmt.Fprintf(b, `]},"count":%d,"size":%d}`, res.count, len(res.items))
	p.writeActivities(w, st, b.Bytes(), res.items, truncate)
}

// handleActivity serves GET /v1/environments/{envId}/activities/{id}.
func (p *PingOne) handleActivity(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeAPIError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "The request method is not supported for this resource.")
		return
	}
	st, truncate, ok := p.admit(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	now := nanos(p.opts.Now())
	p.mu.RLock()
	e := st.lookup(id)
	p.mu.RUnlock()
	if e == nil || e.vis > now {
		writeAPIError(w, http.StatusNotFound, "NOT_FOUND", "Unable to find activity with ID: "+id)
		return
	}
	p.writeActivities(w, st, e.act.JSON, []*entry{e}, truncate)
}

// writeActivities counts items as served and writes a 200 body holding
// them, or applies a Truncate fault (not counted).
func (p *PingOne) writeActivities(w http.ResponseWriter, st *envState, body []byte, items []*entry, truncate bool) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if truncate {
		_, _ = w.Write(body[:len(body)/2])
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler) // the server closes the connection mid-body
	}
	// Count before writing: a client that has read the body must find
	// its events counted. A write that fails still counts: the client
	// reads the same cursor again.
	p.served.Add(int64(len(items)))
	st.servedMu.Lock()
	for _, e := range items {
		st.served[e.id]++
	}
	st.servedMu.Unlock()
	_, _ = w.Write(body)
}

// handleStats serves GET /emulator/stats.
func (p *PingOne) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, p.Stats())
}

// apiError is PingOne's error body.
type apiError struct {
	ID      string        `json:"id"`
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Details []errorDetail `json:"details,omitempty"`
}

// errorDetail is one entry of an error body's details.
type errorDetail struct {
	Code       string         `json:"code"`
	Target     string         `json:"target,omitempty"`
	Message    string         `json:"message"`
	InnerError map[string]any `json:"innerError,omitempty"`
}

// invalidData returns a 400 INVALID_DATA error with one detail.
func invalidData(target, code, msg string) *apiError {
	return &apiError{
		Code:    "INVALID_DATA",
		Message: "The request could not be completed. One or more validation errors were in the request.",
		Details: []errorDetail{{Code: code, Target: target, Message: msg}},
	}
}

// limitError returns the error of a bad limit.
func limitError(msg string) *apiError {
	e := invalidData("limit", "OUT_OF_RANGE", msg+" (1 to 1000)")
	e.Details[0].InnerError = map[string]any{"rangeMinimumValue": minLimit, "rangeMaximumValue": maxLimit}
	return e
}

// write writes the error with a fresh id.
func (e *apiError) write(w http.ResponseWriter, status int) {
	e.ID = newUUID()
	writeJSON(w, status, e)
}

// writeAPIError writes a PingOne error body without details.
func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	(&apiError{Code: code, Message: msg}).write(w, status)
}

// writeThrottled writes 429 REQUEST_LIMITED with Retry-After in whole
// seconds, at least 1.
func writeThrottled(w http.ResponseWriter, wait time.Duration) {
	secs := max(1, int64(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	writeAPIError(w, http.StatusTooManyRequests, "REQUEST_LIMITED", "The request could not be completed. Too many requests; retry later.")
}

// writeOAuthError writes an RFC 6749 error body.
func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, desc})
}

// writeJSON writes v as a JSON body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, fmt.Sprintf("emulator: encode response: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeJSONString appends s as a JSON string.
func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // a string always encodes
	b.Write(enc)
}

// newUUID returns a random version 4 UUID.
func newUUID() string {
	var b [16]byte
	_, _ = crand.Read(b[:]) // never fails
	return formatUUID(b)
}

// formatUUID formats 16 bytes as a version 4, RFC 4122 variant UUID.
func formatUUID(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}
