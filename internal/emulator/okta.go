package emulator

import (
	"crypto"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditrelay/auditrelay/internal/jwt"
)

// OktaOptions configure an Okta emulator. The zero value is usable.
type OktaOptions struct {
	// RateLimit is the /api/v1/logs requests allowed per minute (one
	// window of 60 s from its first request, not aligned to the clock);
	// default 120. A negative value disables rate limiting.
	RateLimit int
	// TokenTTL is the lifetime of OAuth access tokens; default 1h (Okta's
	// is fixed at one hour).
	TokenTTL time.Duration
	// Retention is how long events are served; default 90 days.
	Retention time.Duration
	// Now is the clock for visibility, tokens and the rate limit; default
	// time.Now.
	Now func() time.Time
	// Seed seeds fault injection.
	Seed uint64
}

// OktaApp is an OAuth service app that authenticates with private_key_jwt.
type OktaApp struct {
	// ClientID is the app's client id, the assertion's iss and sub.
	ClientID string
	// PublicKey verifies its client assertions (RSA or EC).
	PublicKey crypto.PublicKey
	// KeyID, when set, must be the assertion's kid.
	KeyID string
	// Scopes are the granted scopes; okta.logs.read reads the System Log.
	Scopes []string
	// NoAdminRole makes the logs API answer 403 E0000006 although the
	// scope is granted: the app has no administrator role.
	NoAdminRole bool
}

// OktaEvent is one System Log event.
type OktaEvent struct {
	// UUID is the event's uuid.
	UUID string
	// Published is its published time (millisecond precision).
	Published time.Time
	// Persisted is when the System Log commits it, the order of polling
	// mode and the instant it becomes visible; zero means Published. Add
	// never lets it fall behind what was already served, as commits do not.
	Persisted time.Time
	// JSON is the whole event as served; Add fills a minimal one when
	// empty. It must carry uuid and published matching the fields above.
	JSON json.RawMessage
}

// OktaFaults are the fractions (0..1) of /api/v1/logs requests answered
// with each fault. ServerError, Throttle, Early401, Truncate and
// RefuseLink exclude each other; Slow combines with any of them.
type OktaFaults struct {
	// ServerError answers 500 E0000009 (query timeout).
	ServerError float64
	// Throttle answers 429 E0000047 although the window has room.
	Throttle float64
	// Early401 answers 401 E0000011 to a valid token and revokes it.
	Early401 float64
	// Truncate sends half the body and closes the connection.
	Truncate float64
	// RefuseLink answers 400 E0000001 to a request with an after
	// parameter, as to an expired next link.
	RefuseLink float64
	// Slow delays the answer by SlowDelay.
	Slow      float64
	SlowDelay time.Duration
}

// OktaStats count what an Okta has done.
type OktaStats struct {
	TokenRequests int64 `json:"tokenRequests"`
	LogRequests   int64 `json:"logRequests"`
	Throttled     int64 `json:"throttled"`
	Faults        int64 `json:"faults"`
	Served        int64 `json:"served"`
}

// Okta emulates an Okta org's System Log API (/api/v1/logs) and the org
// authorization server's token endpoint for service apps:
//
//	POST /oauth2/v1/token       client_credentials with a private_key_jwt assertion
//	GET  /api/v1/logs           since, until, after, limit, sortOrder; SSWS or Bearer
//	GET  /emulator/stats        OktaStats as JSON
//
// Polling mode (no until, ascending) orders events by their commit time
// and always answers with a next link, even on an empty page; bounded
// mode (until set) orders by published and gives no next link on the last
// page. Link headers come as separate lines, X-Rate-Limit-* headers on
// every answer, errors in Okta's errorCode shape.
type Okta struct {
	opts OktaOptions
	mux  *http.ServeMux

	mu       sync.RWMutex
	events   []*oktaEntry // by (persisted, seq)
	seq      int64
	served   oktaKey // the highest key served in polling mode
	apps     map[string]OktaApp
	apiToken map[string]bool
	tokens   map[string]oktaToken
	jtis     map[string]time.Time
	servedID map[string]int

	rateMu      sync.Mutex
	windowStart time.Time
	windowUsed  int

	faultMu sync.Mutex
	faults  OktaFaults
	rng     *rand.Rand

	tokenRequests, logRequests, throttled, faultCount, servedCount atomic.Int64
}

type oktaEntry struct {
	key       oktaKey
	uuid      string
	published time.Time
	json      json.RawMessage
}

// oktaKey orders polling mode: commit time in ms, then the order of Add.
type oktaKey struct {
	ms  int64
	seq int64
}

func (a oktaKey) less(b oktaKey) bool { return a.ms < b.ms || a.ms == b.ms && a.seq < b.seq }

// String is the after parameter of a next link: "<ms>_<n>", as Okta's.
func (a oktaKey) String() string {
	return strconv.FormatInt(a.ms, 10) + "_" + strconv.FormatInt(a.seq, 10)
}

func parseOktaKey(s string) (oktaKey, bool) {
	ms, n, ok := strings.Cut(s, "_")
	if !ok {
		return oktaKey{}, false
	}
	a, err1 := strconv.ParseInt(ms, 10, 64)
	b, err2 := strconv.ParseInt(n, 10, 64)
	return oktaKey{a, b}, err1 == nil && err2 == nil && a >= 0 && b >= 0
}

type oktaToken struct {
	clientID string
	expires  time.Time
}

// NewOkta returns an org with no events, apps or API tokens.
func NewOkta(opts OktaOptions) *Okta {
	if opts.RateLimit == 0 {
		opts.RateLimit = 120
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.Retention <= 0 {
		opts.Retention = 90 * 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	o := &Okta{opts: opts, apps: map[string]OktaApp{}, apiToken: map[string]bool{}, tokens: map[string]oktaToken{},
		jtis: map[string]time.Time{}, servedID: map[string]int{}, rng: rand.New(rand.NewPCG(opts.Seed, 0x0c7a))}
	o.mux = http.NewServeMux()
	o.mux.HandleFunc("/oauth2/v1/token", o.handleToken)
	o.mux.HandleFunc("/api/v1/logs", o.handleLogs)
	o.mux.HandleFunc("GET /emulator/stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, o.Stats()) })
	o.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeOktaError(w, http.StatusNotFound, "E0000022", "The endpoint does not support the provided HTTP method")
	})
	return o
}

// ServeHTTP serves the org's API.
func (o *Okta) ServeHTTP(w http.ResponseWriter, r *http.Request) { o.mux.ServeHTTP(w, r) }

// AddAPIToken makes token valid as "Authorization: SSWS <token>".
func (o *Okta) AddAPIToken(token string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.apiToken[token] = true
}

// AddApp registers a service app.
func (o *Okta) AddApp(app OktaApp) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.apps[app.ClientID] = app
}

// Add commits events. An event's commit time never falls behind what
// polling mode has already served, so a client positioned past it still
// sees it, as in a real System Log.
func (o *Okta) Add(events ...OktaEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, ev := range events {
		pub := ev.Published.UTC().Truncate(time.Millisecond)
		per := ev.Persisted
		if per.IsZero() {
			per = pub
		}
		o.seq++
		k := oktaKey{ms: per.UnixMilli(), seq: o.seq}
		if k.less(o.served) {
			k.ms = o.served.ms
		}
		js := ev.JSON
		if len(js) == 0 {
			js = json.RawMessage(fmt.Sprintf(`{"uuid":%q,"published":%q,"eventType":"user.session.start","version":"0","severity":"INFO","displayMessage":"User login to Okta","outcome":{"result":"SUCCESS"}}`,
				ev.UUID, pub.Format("2006-01-02T15:04:05.000Z")))
		}
		e := &oktaEntry{key: k, uuid: ev.UUID, published: pub, json: js}
		i, _ := slices.BinarySearchFunc(o.events, k, func(a *oktaEntry, k oktaKey) int {
			switch {
			case a.key.less(k):
				return -1
			case k.less(a.key):
				return 1
			}
			return 0
		})
		o.events = slices.Insert(o.events, i, e)
	}
}

// ServedIDs returns how many times each uuid was served in a whole answer.
func (o *Okta) ServedIDs() map[string]int {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return maps.Clone(o.servedID)
}

// Events returns the uuids of every event, in commit order.
func (o *Okta) Events() []string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	out := make([]string, len(o.events))
	for i, e := range o.events {
		out[i] = e.uuid
	}
	return out
}

// SetFaults sets the faults injected from now on.
func (o *Okta) SetFaults(f OktaFaults) {
	o.faultMu.Lock()
	defer o.faultMu.Unlock()
	o.faults = f
}

// Stats returns the counters.
func (o *Okta) Stats() OktaStats {
	return OktaStats{TokenRequests: o.tokenRequests.Load(), LogRequests: o.logRequests.Load(),
		Throttled: o.throttled.Load(), Faults: o.faultCount.Load(), Served: o.servedCount.Load()}
}

func writeOktaError(w http.ResponseWriter, status int, code, summary string) {
	writeJSON(w, status, map[string]any{"errorCode": code, "errorSummary": summary, "errorLink": code,
		"errorId": "oae" + strconv.FormatInt(time.Now().UnixNano()%1e12, 36), "errorCauses": []any{}})
}

// handleToken serves the client credentials grant with private_key_jwt.
func (o *Okta) handleToken(w http.ResponseWriter, r *http.Request) {
	o.tokenRequests.Add(1)
	if r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "The token endpoint takes POST.")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "The request body is not a form.")
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "client_credentials" {
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "The grant type is not supported by the authorization server.")
		return
	}
	if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || f.Get("client_assertion") == "" {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed: this app accepts only private_key_jwt.")
		return
	}
	var claims struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Jti string `json:"jti"`
	}
	// The app is known from the unverified claims, then verified.
	parts := strings.Split(f.Get("client_assertion"), ".")
	if len(parts) == 3 {
		if b, err := b64url(parts[1]); err == nil {
			_ = json.Unmarshal(b, &claims)
		}
	}
	o.mu.RLock()
	app, ok := o.apps[claims.Iss]
	o.mu.RUnlock()
	if !ok {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "The client_id is not found.")
		return
	}
	hdr, _, err := jwt.Verify(f.Get("client_assertion"), app.PublicKey)
	now := o.opts.Now()
	aud := "https://" + r.Host + "/oauth2/v1/token"
	if r.TLS == nil {
		aud = "http://" + r.Host + "/oauth2/v1/token"
	}
	switch {
	case err != nil:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "The client_assertion signature is invalid.")
		return
	case app.KeyID != "" && hdr.Kid != app.KeyID:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "The client_assertion kid does not match a key of the client.")
		return
	case claims.Sub != claims.Iss:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "The client_assertion sub must equal iss.")
		return
	case claims.Aud != aud:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "The audience of the client_assertion is invalid. It must be "+aud+".")
		return
	case claims.Exp <= now.Unix():
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "The client_assertion token is expired.")
		return
	case claims.Exp > now.Add(time.Hour+time.Minute).Unix():
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "The client_assertion expiry is more than one hour in the future.")
		return
	}
	scopes := strings.Fields(f.Get("scope"))
	if len(scopes) == 0 {
		writeOAuthError(w, http.StatusBadRequest, "invalid_scope", "The authorization server requires a scope.")
		return
	}
	for _, s := range scopes {
		if !slices.Contains(app.Scopes, s) {
			writeOAuthError(w, http.StatusBadRequest, "invalid_scope", "The following scopes were not granted to the client: "+s)
			return
		}
	}
	o.mu.Lock()
	if claims.Jti != "" {
		if _, used := o.jtis[claims.Jti]; used {
			o.mu.Unlock()
			writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "The client_assertion token has already been used (jti).")
			return
		}
		o.jtis[claims.Jti] = time.Unix(claims.Exp, 0)
	}
	tok := "eyJ" + strings.ReplaceAll(newUUID(), "-", "")
	o.tokens[tok] = oktaToken{clientID: app.ClientID, expires: now.Add(o.opts.TokenTTL)}
	o.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": int(o.opts.TokenTTL.Seconds()),
		"access_token": tok, "scope": strings.Join(scopes, " ")})
}

func b64url(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}

// authorize checks the request's credentials; ok false means an answer was
// written.
func (o *Okta) authorize(w http.ResponseWriter, r *http.Request, early401 bool) bool {
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	o.mu.Lock()
	defer o.mu.Unlock()
	switch scheme {
	case "SSWS":
		for t := range o.apiToken {
			if subtle.ConstantTimeCompare([]byte(t), []byte(cred)) == 1 {
				return true
			}
		}
	case "Bearer":
		t, ok := o.tokens[cred]
		if ok && o.opts.Now().Before(t.expires) {
			if early401 {
				delete(o.tokens, cred)
				break
			}
			app := o.apps[t.clientID]
			if !slices.Contains(app.Scopes, "okta.logs.read") {
				writeOktaError(w, http.StatusForbidden, "E0000006", "You do not have permission to perform the requested action")
				return false
			}
			if app.NoAdminRole {
				writeOktaError(w, http.StatusForbidden, "E0000006", "You do not have permission to perform the requested action")
				return false
			}
			return true
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="http://`+r.Host+`/oauth2/v1/authorize", realm="http://`+r.Host+`", scope="okta.logs.read", error="invalid_token", error_description="The access token is invalid."`)
	writeOktaError(w, http.StatusUnauthorized, "E0000011", "Invalid token provided")
	return false
}

// admitRate takes one request from the minute's window and sets the
// X-Rate-Limit-* headers; false means 429 was written.
func (o *Okta) admitRate(w http.ResponseWriter, spurious bool) bool {
	if o.opts.RateLimit < 0 {
		return true
	}
	now := o.opts.Now()
	o.rateMu.Lock()
	if o.windowStart.IsZero() || now.Sub(o.windowStart) >= time.Minute {
		o.windowStart, o.windowUsed = now, 0
	}
	reset := o.windowStart.Add(time.Minute)
	allowed := o.windowUsed < o.opts.RateLimit && !spurious
	if allowed {
		o.windowUsed++
	}
	remaining := o.opts.RateLimit - o.windowUsed
	o.rateMu.Unlock()
	h := w.Header()
	h.Set("X-Rate-Limit-Limit", strconv.Itoa(o.opts.RateLimit))
	h.Set("X-Rate-Limit-Remaining", strconv.Itoa(max(0, remaining)))
	h.Set("X-Rate-Limit-Reset", strconv.FormatInt((reset.UnixMilli()+999)/1000, 10))
	if !allowed {
		o.throttled.Add(1)
		writeOktaError(w, http.StatusTooManyRequests, "E0000047", "API call exceeded rate limit due to too many requests.")
	}
	return allowed
}

type oktaFault int

const (
	oktaNoFault oktaFault = iota
	oktaServerError
	oktaThrottle
	oktaEarly401
	oktaTruncate
	oktaRefuseLink
)

func (o *Okta) drawFault() (oktaFault, time.Duration) {
	o.faultMu.Lock()
	defer o.faultMu.Unlock()
	f := o.faults
	if f == (OktaFaults{}) {
		return oktaNoFault, 0
	}
	var slow time.Duration
	if f.Slow > 0 && o.rng.Float64() < f.Slow {
		slow = max(f.SlowDelay, time.Nanosecond)
	}
	u := o.rng.Float64()
	for _, c := range []struct {
		p float64
		k oktaFault
	}{{f.ServerError, oktaServerError}, {f.Throttle, oktaThrottle}, {f.Early401, oktaEarly401}, {f.Truncate, oktaTruncate}, {f.RefuseLink, oktaRefuseLink}} {
		if u < c.p {
			return c.k, slow
		}
		u -= c.p
	}
	return oktaNoFault, slow
}

// parseOktaTime parses since and until as Okta does: RFC 3339 with any
// fraction and offset.
func parseOktaTime(v string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, v)
	return t, err == nil
}

func (o *Okta) handleLogs(w http.ResponseWriter, r *http.Request) {
	o.logRequests.Add(1)
	if r.Method != http.MethodGet {
		writeOktaError(w, http.StatusMethodNotAllowed, "E0000022", "The endpoint does not support the provided HTTP method")
		return
	}
	fault, slow := o.drawFault()
	if fault != oktaNoFault {
		o.faultCount.Add(1)
	}
	if slow > 0 {
		o.faultCount.Add(1)
		select {
		case <-time.After(slow):
		case <-r.Context().Done():
			return
		}
	}
	if !o.authorize(w, r, fault == oktaEarly401) {
		return
	}
	if !o.admitRate(w, fault == oktaThrottle) {
		return
	}
	if fault == oktaServerError {
		writeOktaError(w, http.StatusInternalServerError, "E0000009", "Internal Server Error: the query timed out; simplify it or retry")
		return
	}
	q := r.URL.Query()
	now := o.opts.Now()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1000 {
			writeOktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: limit must be between 0 and 1000")
			return
		}
		limit = n
	}
	order := q.Get("sortOrder")
	if order == "" {
		order = "ASCENDING"
	}
	if order != "ASCENDING" && order != "DESCENDING" {
		writeOktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: sortOrder")
		return
	}
	var since, until time.Time
	var after oktaKey
	hasAfter := q.Has("after")
	if hasAfter {
		if q.Has("since") {
			writeOktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: after and since cannot be used together")
			return
		}
		k, ok := parseOktaKey(q.Get("after"))
		if !ok || fault == oktaRefuseLink {
			writeOktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: after is invalid or expired")
			return
		}
		after = k
	}
	if v := q.Get("since"); v != "" {
		t, ok := parseOktaTime(v)
		if !ok {
			writeOktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: since is not a valid ISO 8601 date")
			return
		}
		if t.Before(now.Add(-180 * 24 * time.Hour)) {
			writeOktaError(w, http.StatusBadRequest, "E0000053", "Invalid date. 'since' must be later than 180 days ago.")
			return
		}
		since = t
	} else if !hasAfter {
		since = now.Add(-7 * 24 * time.Hour)
	}
	if v := q.Get("until"); v != "" {
		t, ok := parseOktaTime(v)
		if !ok {
			writeOktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: until is not a valid ISO 8601 date")
			return
		}
		until = t
	}
	polling := until.IsZero() && order == "ASCENDING"
	if !polling && order == "DESCENDING" {
		writeOktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: this emulator serves sortOrder=DESCENDING not at all")
		return
	}
	oldest := now.Add(-o.opts.Retention)
	var page []*oktaEntry
	var next string
	o.mu.RLock()
	if polling {
		// From the position, events committed by now, by commit order.
		if !hasAfter {
			// since is inclusive: every key at or after its millisecond.
			after = oktaKey{ms: ceilMs(since) - 1, seq: math.MaxInt64}
		}
		i := sortSearch(o.events, after)
		last := after
		for ; i < len(o.events) && len(page) < limit; i++ {
			e := o.events[i]
			if e.key.ms > now.UnixMilli() {
				break
			}
			last = e.key
			if e.published.Before(oldest) {
				continue
			}
			page = append(page, e)
		}
		next = o.link(r, url.Values{"after": {last.String()}, "limit": {strconv.Itoa(limit)}, "sortOrder": {"ASCENDING"}})
	} else {
		// Bounded: visible events with since <= published < until, by
		// published; after is the last (published, seq) served.
		var all []*oktaEntry
		for _, e := range o.events {
			if e.key.ms > now.UnixMilli() || e.published.Before(oldest) {
				continue
			}
			if e.published.Before(since) && !hasAfter || !e.published.Before(until) {
				continue
			}
			all = append(all, e)
		}
		slices.SortFunc(all, func(a, b *oktaEntry) int {
			if c := a.published.Compare(b.published); c != 0 {
				return c
			}
			return int(a.key.seq - b.key.seq)
		})
		for _, e := range all {
			k := oktaKey{ms: e.published.UnixMilli(), seq: e.key.seq}
			if hasAfter && !after.less(k) {
				continue
			}
			if len(page) == limit {
				last := page[len(page)-1]
				next = o.link(r, url.Values{"after": {oktaKey{ms: last.published.UnixMilli(), seq: last.key.seq}.String()},
					"limit": {strconv.Itoa(limit)}, "until": {q.Get("until")}, "sortOrder": {"ASCENDING"}})
				break
			}
			page = append(page, e)
		}
	}
	o.mu.RUnlock()

	body := make([]byte, 0, 512*len(page)+2)
	body = append(body, '[')
	for i, e := range page {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, e.json...)
	}
	body = append(body, ']')
	h := w.Header()
	h.Add("Link", "<"+o.link(r, q)+`>; rel="self"`)
	if next != "" {
		h.Add("Link", "<"+next+`>; rel="next"`)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if fault == oktaTruncate {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body[:len(body)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	// Count before writing, so a client that read the page finds it counted.
	o.servedCount.Add(int64(len(page)))
	o.mu.Lock()
	for _, e := range page {
		o.servedID[e.uuid]++
		if polling && o.served.less(e.key) {
			o.served = e.key
		}
	}
	o.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// sortSearch returns the index of the first event after k.
func sortSearch(es []*oktaEntry, k oktaKey) int {
	i, _ := slices.BinarySearchFunc(es, k, func(a *oktaEntry, k oktaKey) int {
		if k.less(a.key) {
			return 1
		}
		return -1
	})
	return i
}

// link returns an absolute URL of /api/v1/logs with query v, on the host
// the request came to.
func (o *Okta) link(r *http.Request, v url.Values) string {
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	return scheme + "://" + r.Host + "/api/v1/logs?" + v.Encode()
}
