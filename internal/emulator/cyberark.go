package emulator

import (
	"bytes"
	crand "crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CyberArk emulates the CyberArk Identity OAuth2 token endpoint and the ISP
// Audit SIEM-integration stream API (createQuery and results). Every tenant
// is reached through its own API key; the token and the API key of a request
// must belong to the same tenant. It is an http.Handler; all its methods are
// safe for concurrent use.
//
// Routes:
//
//	POST /oauth2/token/{appId}          client credentials (Basic or form), scope
//	POST /api/audits/stream/createQuery {"query": {...}} → {"cursorRef": …}
//	POST /api/audits/stream/results     {"cursorRef": …} → {"data": […], "paging": {"cursor": {"cursorRef": …}}}
//	GET  /emulator/stats                CyberArkStats as JSON
//
// What is emulated where the real API is not documented: date bounds are
// whole seconds (dateFrom inclusive, dateTo inclusive of its whole second);
// a cursorRef is base64 JSON holding the query and the position (timestamp,
// uuid) of the last event returned; a cursor expires CursorTTL after it was
// issued and is then answered with 400; an event becomes visible to queries
// at its VisibleAt, so a cursor that already passed its position never
// returns it.
type CyberArk struct {
	opts CyberArkOptions
	mux  *http.ServeMux

	mu      sync.RWMutex
	tenants map[string]*caTenant // by tenant id
	byKey   map[string]string    // API key → tenant id
	byApp   map[string]string    // app id → tenant id

	tokMu  sync.Mutex
	tokens map[string]caToken

	rateMu sync.Mutex
	bucket bucket

	faultMu sync.Mutex
	faults  CyberArkFaults
	rng     *rand.Rand

	tokenRequests, queryRequests, resultsRequests, throttled, faultCount, served, expired atomic.Int64

	wg sync.WaitGroup
}

// CyberArkOptions configure a CyberArk emulator. The zero value is usable.
type CyberArkOptions struct {
	// TokenTTL is the lifetime (expires_in) of issued tokens; default 1h.
	TokenTTL time.Duration
	// CursorTTL is how long a cursorRef is accepted after it was issued;
	// default 15m.
	CursorTTL time.Duration
	// RateLimit is the audit requests per second allowed (token bucket
	// over every tenant); default 10. A negative value disables it.
	RateLimit float64
	// Burst is the bucket size; default max(1, int(RateLimit)).
	Burst int
	// MaxPageSize is the largest pageSize createQuery accepts; default 1000.
	MaxPageSize int
	// Now is the clock of token and cursor expiry, visibility and the rate
	// limit; default time.Now.
	Now func() time.Time
	// Seed seeds fault injection.
	Seed uint64
}

// The OAuth2 scope the audit API requires.
const CyberArkScope = "isp.audit.events:read"

// CyberArkTenant is an ISP tenant with its OAuth2 Server web app, the
// confidential service user allowed to use it, and one SIEM integration.
type CyberArkTenant struct {
	// ID is the tenant id (tenantId of its events).
	ID string
	// AppID is the OAuth2 Server web app's Application ID.
	AppID string
	// ClientID and ClientSecret are the service user's login and password.
	ClientID, ClientSecret string
	// AuthMethod is AuthMethodBasic, AuthMethodPost, or "" for either.
	AuthMethod string
	// APIKey is the SIEM integration's API key.
	APIKey string
}

// CyberArkEvent is one audit event of a tenant.
type CyberArkEvent struct {
	// UUID is the event's uuid.
	UUID string
	// Timestamp is the event time; stored at millisecond precision.
	Timestamp time.Time
	// ApplicationCode is the event's applicationCode, used by filters.
	ApplicationCode string
	// VisibleAt is when queries start returning the event; zero is always.
	VisibleAt time.Time
	// JSON is the event object as served, byte for byte.
	JSON json.RawMessage
}

// CyberArkFaults are the fractions (0..1) of audit requests answered with
// each fault. ServerError, Throttle, Truncate, Early401 and ExpireCursor
// exclude each other.
type CyberArkFaults struct {
	ServerError float64
	Throttle    float64
	// Truncate answers 200 with the full Content-Length and half the body.
	Truncate float64
	// Early401 answers 401 to a valid token and revokes it.
	Early401 float64
	// ExpireCursor answers a results request 400 as if its cursor had
	// expired.
	ExpireCursor float64
}

// CyberArkStats count what a CyberArk emulator has done.
type CyberArkStats struct {
	TokenRequests   int64 `json:"tokenRequests"`
	QueryRequests   int64 `json:"queryRequests"`
	ResultsRequests int64 `json:"resultsRequests"`
	Throttled       int64 `json:"throttled"`
	Faults          int64 `json:"faults"`
	// Served counts events written in complete results answers.
	Served int64 `json:"served"`
	// ExpiredCursors counts results requests refused for an expired cursor
	// (injected or real).
	ExpiredCursors int64 `json:"expiredCursors"`
}

type caTenant struct {
	t        CyberArkTenant
	events   []*caEntry // sorted by (ms, uuid)
	ids      map[string]*caEntry
	servedMu sync.Mutex
	served   map[string]int
}

type caEntry struct {
	ms   int64
	uuid string
	app  string
	vis  int64 // unix nanos; 0 always visible
	ev   CyberArkEvent
}

type caToken struct {
	tenant  string
	expires time.Time
}

// NewCyberArk returns an emulator without tenants.
func NewCyberArk(opts CyberArkOptions) *CyberArk {
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.CursorTTL <= 0 {
		opts.CursorTTL = 15 * time.Minute
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = 10
	}
	if opts.Burst <= 0 {
		opts.Burst = max(1, int(opts.RateLimit))
	}
	if opts.MaxPageSize <= 0 {
		opts.MaxPageSize = 1000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &CyberArk{
		opts:    opts,
		tenants: map[string]*caTenant{},
		byKey:   map[string]string{},
		byApp:   map[string]string{},
		tokens:  map[string]caToken{},
		rng:     rand.New(rand.NewPCG(opts.Seed, 0xc7be_a4c)),
	}
	c.bucket = bucket{tokens: float64(opts.Burst), last: opts.Now()}
	c.mux = http.NewServeMux()
	c.mux.HandleFunc("POST /oauth2/token/{appID}", c.handleToken)
	c.mux.HandleFunc("POST /OAuth2/Token/{appID}", c.handleToken)
	c.mux.HandleFunc("POST /api/audits/stream/createQuery", c.handleCreateQuery)
	c.mux.HandleFunc("POST /api/audits/stream/results", c.handleResults)
	c.mux.HandleFunc("GET /emulator/stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, c.Stats()) })
	c.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeCAError(w, http.StatusNotFound, "NotFound", "The requested resource was not found")
	})
	return c
}

// ServeHTTP serves the emulated APIs.
func (c *CyberArk) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

// AddTenant adds a tenant or replaces its configuration, keeping its events.
// It panics on an empty ID, AppID or APIKey.
func (c *CyberArk) AddTenant(t CyberArkTenant) {
	if t.ID == "" || t.AppID == "" || t.APIKey == "" {
		panic("emulator: AddTenant: ID, AppID and APIKey are required")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.tenant(t.ID)
	st.t = t
	c.byKey[t.APIKey] = t.ID
	c.byApp[strings.ToLower(t.AppID)] = t.ID
}

func (c *CyberArk) tenant(id string) *caTenant {
	st := c.tenants[id]
	if st == nil {
		st = &caTenant{ids: map[string]*caEntry{}, served: map[string]int{}}
		c.tenants[id] = st
	}
	return st
}

// Add stores events of a tenant. An event with the uuid of a stored one
// replaces it. It panics on an event without UUID or with invalid JSON.
func (c *CyberArk) Add(tenantID string, evs ...CyberArkEvent) {
	if len(evs) == 0 {
		return
	}
	es := make([]*caEntry, len(evs))
	for i, e := range evs {
		if e.UUID == "" || !json.Valid(e.JSON) {
			panic("emulator: CyberArk.Add: event without uuid or with invalid JSON")
		}
		e.Timestamp = time.UnixMilli(e.Timestamp.UnixMilli()).UTC()
		var vis int64
		if !e.VisibleAt.IsZero() {
			vis = e.VisibleAt.UnixNano()
		}
		es[i] = &caEntry{ms: e.Timestamp.UnixMilli(), uuid: e.UUID, app: e.ApplicationCode, vis: vis, ev: e}
	}
	cmp := func(a, b *caEntry) int {
		if a.ms != b.ms {
			if a.ms < b.ms {
				return -1
			}
			return 1
		}
		return strings.Compare(a.uuid, b.uuid)
	}
	slices.SortFunc(es, cmp)
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.tenant(tenantID)
	replaced := false
	for _, e := range es {
		if old := st.ids[e.uuid]; old != nil {
			i, _ := slices.BinarySearchFunc(st.events, old, cmp)
			st.events = slices.Delete(st.events, i, i+1)
			replaced = true
		}
		st.ids[e.uuid] = e
	}
	if !replaced && (len(st.events) == 0 || cmp(st.events[len(st.events)-1], es[0]) <= 0) {
		st.events = append(st.events, es...)
		return
	}
	st.events = append(st.events, es...)
	slices.SortFunc(st.events, cmp)
}

// Events returns every event of the tenant, visible or not, sorted by
// timestamp then uuid.
func (c *CyberArk) Events(tenantID string) []CyberArkEvent {
	c.mu.RLock()
	defer c.mu.RUnlock()
	st := c.tenants[tenantID]
	if st == nil {
		return nil
	}
	out := make([]CyberArkEvent, len(st.events))
	for i, e := range st.events {
		out[i] = e.ev
	}
	return out
}

// ServedIDs returns, for each uuid of the tenant ever written in a complete
// results answer, how many times it was.
func (c *CyberArk) ServedIDs(tenantID string) map[string]int {
	c.mu.RLock()
	st := c.tenants[tenantID]
	c.mu.RUnlock()
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

// SetFaults sets the faults injected from now on, clamped to [0, 1].
func (c *CyberArk) SetFaults(f CyberArkFaults) {
	clamp := func(v float64) float64 {
		if math.IsNaN(v) {
			return 0
		}
		return min(max(v, 0), 1)
	}
	f.ServerError, f.Throttle, f.Truncate = clamp(f.ServerError), clamp(f.Throttle), clamp(f.Truncate)
	f.Early401, f.ExpireCursor = clamp(f.Early401), clamp(f.ExpireCursor)
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	c.faults = f
}

// Stats returns the counters.
func (c *CyberArk) Stats() CyberArkStats {
	return CyberArkStats{
		TokenRequests:   c.tokenRequests.Load(),
		QueryRequests:   c.queryRequests.Load(),
		ResultsRequests: c.resultsRequests.Load(),
		Throttled:       c.throttled.Load(),
		Faults:          c.faultCount.Load(),
		Served:          c.served.Load(),
		ExpiredCursors:  c.expired.Load(),
	}
}

// handleToken serves the client credentials grant of the OAuth2 Server app.
func (c *CyberArk) handleToken(w http.ResponseWriter, r *http.Request) {
	c.tokenRequests.Add(1)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "cannot parse the form body")
		return
	}
	c.mu.RLock()
	tid, ok := c.byApp[strings.ToLower(r.PathValue("appID"))]
	var t CyberArkTenant
	if ok {
		t = c.tenants[tid].t
	}
	c.mu.RUnlock()
	if !ok {
		writeOAuthError(w, http.StatusNotFound, "invalid_request", "unknown application")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be client_credentials")
		return
	}
	user, pass, basic := r.BasicAuth()
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	switch {
	case basic && t.AuthMethod != AuthMethodPost:
		id, secret = formUnescape(user), formUnescape(pass)
	case !basic && t.AuthMethod != AuthMethodBasic && id != "":
	default:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if subtle.ConstantTimeCompare([]byte(id), []byte(t.ClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(t.ClientSecret)) != 1 {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	if !slices.Contains(scopes, CyberArkScope) {
		writeOAuthError(w, http.StatusBadRequest, "invalid_scope", "the application does not grant the requested scope")
		return
	}
	tok := crand.Text()
	c.tokMu.Lock()
	now := c.opts.Now()
	for k, v := range c.tokens {
		if !now.Before(v.expires) {
			delete(c.tokens, k)
		}
	}
	c.tokens[tok] = caToken{tenant: t.ID, expires: now.Add(c.opts.TokenTTL)}
	c.tokMu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
		Scope       string `json:"scope"`
	}{tok, "Bearer", int64(c.opts.TokenTTL / time.Second), CyberArkScope})
}

// admit authenticates an audit request, applies the rate limit and draws a
// fault. It returns the tenant, or false once it has answered.
func (c *CyberArk) admit(w http.ResponseWriter, r *http.Request, results bool) (*caTenant, caFault, bool) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	c.tokMu.Lock()
	info, ok := c.tokens[tok]
	if ok && !c.opts.Now().Before(info.expires) {
		delete(c.tokens, tok)
		ok = false
	}
	c.tokMu.Unlock()
	if !strings.EqualFold(scheme, "Bearer") || !ok {
		writeCAError(w, http.StatusUnauthorized, "Unauthorized", "The access token is missing, invalid or expired")
		return nil, 0, false
	}
	c.mu.RLock()
	tid, keyOK := c.byKey[r.Header.Get("x-api-key")]
	st := c.tenants[tid]
	c.mu.RUnlock()
	if !keyOK || tid != info.tenant {
		writeCAError(w, http.StatusForbidden, "Forbidden", "The API key is missing or invalid for this tenant")
		return nil, 0, false
	}
	if wait, ok := c.take(); !ok {
		c.throttled.Add(1)
		w.Header().Set("Retry-After", strconv.FormatInt(max(1, int64(math.Ceil(wait.Seconds()))), 10))
		writeCAError(w, http.StatusTooManyRequests, "TooManyRequests", "Rate limit exceeded")
		return nil, 0, false
	}
	f := c.drawFault(results)
	switch f {
	case caFaultServer:
		c.faultCount.Add(1)
		statuses := [...]int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}
		writeCAError(w, statuses[int(c.rngN(3))], "InternalError", "An internal error occurred")
		return nil, 0, false
	case caFaultThrottle:
		c.faultCount.Add(1)
		w.Header().Set("Retry-After", "1")
		writeCAError(w, http.StatusTooManyRequests, "TooManyRequests", "Rate limit exceeded")
		return nil, 0, false
	case caFault401:
		c.faultCount.Add(1)
		c.tokMu.Lock()
		delete(c.tokens, tok)
		c.tokMu.Unlock()
		writeCAError(w, http.StatusUnauthorized, "Unauthorized", "The access token has been revoked")
		return nil, 0, false
	case caFaultTruncate, caFaultExpire:
		c.faultCount.Add(1)
	}
	return st, f, true
}

func (c *CyberArk) rngN(n uint64) uint64 {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	return c.rng.Uint64N(n)
}

type caFault int

const (
	caFaultNone caFault = iota
	caFaultServer
	caFaultThrottle
	caFault401
	caFaultTruncate
	caFaultExpire
)

func (c *CyberArk) drawFault(results bool) caFault {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	f := c.faults
	if f == (CyberArkFaults{}) {
		return caFaultNone
	}
	u := c.rng.Float64()
	switch {
	case u < f.ServerError:
		return caFaultServer
	case u < f.ServerError+f.Throttle:
		return caFaultThrottle
	case u < f.ServerError+f.Throttle+f.Early401:
		return caFault401
	case u < f.ServerError+f.Throttle+f.Early401+f.Truncate:
		return caFaultTruncate
	case results && u < f.ServerError+f.Throttle+f.Early401+f.Truncate+f.ExpireCursor:
		return caFaultExpire
	}
	return caFaultNone
}

func (c *CyberArk) take() (time.Duration, bool) {
	if c.opts.RateLimit < 0 {
		return 0, true
	}
	now := c.opts.Now()
	c.rateMu.Lock()
	defer c.rateMu.Unlock()
	b := &c.bucket
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(float64(c.opts.Burst), b.tokens+el.Seconds()*c.opts.RateLimit)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / c.opts.RateLimit * float64(time.Second)), false
}

// caQuery is the part of a createQuery body the emulator understands.
type caQuery struct {
	PageSize    *int `json:"pageSize"`
	FilterModel struct {
		Date *struct {
			DateFrom *string `json:"dateFrom"`
			DateTo   *string `json:"dateTo"`
		} `json:"date"`
		ApplicationCode []struct {
			Op     string   `json:"op"`
			Params []string `json:"params"`
		} `json:"applicationCode"`
	} `json:"filterModel"`
	SortModel []struct {
		FieldName string `json:"field_name"`
		Direction string `json:"direction"`
	} `json:"sortModel"`
}

// caCursor is the content of an emulated cursorRef.
type caCursor struct {
	Query   json.RawMessage `json:"query"`
	Tenant  string          `json:"tenant"`
	From    int64           `json:"from"`         // ms, inclusive
	To      int64           `json:"to,omitempty"` // ms, exclusive; 0 open-ended
	Apps    []string        `json:"apps,omitempty"`
	Size    int             `json:"size"`
	PosMs   int64           `json:"posMs"`
	PosUUID string          `json:"posUuid,omitempty"`
	Started bool            `json:"started,omitempty"`
	Expires int64           `json:"expires"` // unix ms
}

func (cc caCursor) encode() string {
	b, _ := json.Marshal(cc) // plain fields always marshal
	return base64.StdEncoding.EncodeToString(b)
}

func decodeCACursor(s string) (caCursor, bool) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return caCursor{}, false
	}
	var cc caCursor
	if json.Unmarshal(b, &cc) != nil || cc.Tenant == "" || cc.Size < 1 {
		return caCursor{}, false
	}
	return cc, true
}

// parseCATime parses a date bound in the formats collectors use, to the
// API's one-second precision.
func parseCATime(v string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02 15:04:05", time.RFC3339Nano, "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, strings.TrimSpace(v)); err == nil {
			return t.UTC().Truncate(time.Second), true
		}
	}
	return time.Time{}, false
}

func (c *CyberArk) handleCreateQuery(w http.ResponseWriter, r *http.Request) {
	c.queryRequests.Add(1)
	st, fault, ok := c.admit(w, r, false)
	if !ok {
		return
	}
	var body struct {
		Query *json.RawMessage `json:"query"`
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || json.Unmarshal(b, &body) != nil || body.Query == nil {
		writeCAError(w, http.StatusBadRequest, "BadRequest", "the body must be a JSON object with a query")
		return
	}
	var q caQuery
	if err := json.Unmarshal(*body.Query, &q); err != nil {
		writeCAError(w, http.StatusBadRequest, "BadRequest", "malformed query: "+err.Error())
		return
	}
	cc := caCursor{Query: *body.Query, Tenant: st.t.ID, Size: 100}
	if q.PageSize != nil {
		cc.Size = *q.PageSize
	}
	if cc.Size < 1 || cc.Size > c.opts.MaxPageSize {
		writeCAError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("pageSize must be between 1 and %d", c.opts.MaxPageSize))
		return
	}
	if d := q.FilterModel.Date; d != nil {
		if d.DateFrom != nil {
			t, ok := parseCATime(*d.DateFrom)
			if !ok {
				writeCAError(w, http.StatusBadRequest, "BadRequest", "dateFrom is not a date")
				return
			}
			cc.From = t.UnixMilli()
		}
		if d.DateTo != nil {
			t, ok := parseCATime(*d.DateTo)
			if !ok {
				writeCAError(w, http.StatusBadRequest, "BadRequest", "dateTo is not a date")
				return
			}
			cc.To = t.Add(time.Second).UnixMilli() // inclusive of its whole second
		}
	}
	for _, a := range q.FilterModel.ApplicationCode {
		if a.Op != "include" {
			writeCAError(w, http.StatusBadRequest, "BadRequest", "applicationCode op must be include")
			return
		}
		cc.Apps = append(cc.Apps, a.Params...)
	}
	for _, s := range q.SortModel {
		if s.FieldName != "timestamp" && s.FieldName != "date" || !strings.EqualFold(s.Direction, "asc") {
			writeCAError(w, http.StatusBadRequest, "BadRequest", "the emulator sorts only by timestamp asc")
			return
		}
	}
	cc.PosMs = cc.From
	cc.Expires = c.opts.Now().Add(c.opts.CursorTTL).UnixMilli()
	c.writeBody(w, st, []byte(`{"cursorRef":`+strconv.Quote(cc.encode())+`}`), nil, fault == caFaultTruncate)
}

func (c *CyberArk) handleResults(w http.ResponseWriter, r *http.Request) {
	c.resultsRequests.Add(1)
	st, fault, ok := c.admit(w, r, true)
	if !ok {
		return
	}
	var body struct {
		CursorRef string `json:"cursorRef"`
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || json.Unmarshal(b, &body) != nil || body.CursorRef == "" {
		writeCAError(w, http.StatusBadRequest, "BadRequest", "the body must be a JSON object with a cursorRef")
		return
	}
	cc, ok := decodeCACursor(body.CursorRef)
	if !ok || cc.Tenant != st.t.ID {
		writeCAError(w, http.StatusBadRequest, "InvalidCursor", "the cursorRef is not valid")
		return
	}
	now := c.opts.Now()
	if fault == caFaultExpire || now.UnixMilli() >= cc.Expires {
		c.expired.Add(1)
		writeCAError(w, http.StatusBadRequest, "InvalidCursor", "the cursorRef has expired")
		return
	}
	nowNs := now.UnixNano()
	c.mu.RLock()
	// The first event after the position: (ms, uuid) > (PosMs, PosUUID)
	// once started, ms >= PosMs before.
	i, _ := slices.BinarySearchFunc(st.events, cc, func(e *caEntry, p caCursor) int {
		switch {
		case e.ms < p.PosMs:
			return -1
		case e.ms > p.PosMs:
			return 1
		case !p.Started:
			return 0
		case e.uuid <= p.PosUUID:
			return -1
		}
		return 1
	})
	var items []*caEntry
	for ; i < len(st.events) && len(items) < cc.Size; i++ {
		e := st.events[i]
		if cc.To != 0 && e.ms >= cc.To {
			break
		}
		if e.vis > nowNs || (len(cc.Apps) > 0 && !slices.Contains(cc.Apps, e.app)) {
			continue
		}
		items = append(items, e)
	}
	c.mu.RUnlock()
	next := cc
	if len(items) > 0 {
		last := items[len(items)-1]
		next.PosMs, next.PosUUID, next.Started = last.ms, last.uuid, true
	}
	next.Expires = now.Add(c.opts.CursorTTL).UnixMilli()
	size := 64
	for _, e := range items {
		size += len(e.ev.JSON) + 1
	}
	var out bytes.Buffer
	out.Grow(size + 512)
	out.WriteString(`{"data":[`)
	for k, e := range items {
		if k > 0 {
			out.WriteByte(',')
		}
		out.Write(e.ev.JSON)
	}
	out.WriteString(`],"paging":{"cursor":{"cursorRef":`)
	out.WriteString(strconv.Quote(next.encode()))
	out.WriteString(`}}}`)
	c.writeBody(w, st, out.Bytes(), items, fault == caFaultTruncate)
}

// writeBody writes a 200 body and counts its events as served, or applies
// a Truncate fault.
func (c *CyberArk) writeBody(w http.ResponseWriter, st *caTenant, body []byte, items []*caEntry, truncate bool) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if truncate {
		_, _ = w.Write(body[:len(body)/2])
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}
	if _, err := w.Write(body); err != nil {
		return
	}
	c.served.Add(int64(len(items)))
	st.servedMu.Lock()
	for _, e := range items {
		st.served[e.uuid]++
	}
	st.servedMu.Unlock()
}

// writeCAError writes an error body with the keys collectors read.
func writeCAError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, struct {
		Code        string `json:"code"`
		Message     string `json:"message"`
		Description string `json:"description"`
	}{code, msg, http.StatusText(status)})
}
