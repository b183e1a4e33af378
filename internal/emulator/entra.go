package emulator

import (
	"cmp"
	"crypto/sha1"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
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

// The Microsoft Graph audit log streams an Entra serves, by the last
// segment of their path under /v1.0/auditLogs/.
const (
	// EntraDirectoryAudits are directoryAudit events, filtered on
	// activityDateTime.
	EntraDirectoryAudits = "directoryAudits"
	// EntraSignIns are interactive user signIn events, filtered on
	// createdDateTime; a tenant without Entra ID P1 or P2 is refused them.
	EntraSignIns = "signIns"
	// EntraProvisioning are provisioningObjectSummary events, filtered on
	// activityDateTime.
	EntraProvisioning = "provisioning"
)

// The application permissions the audit log streams need.
const (
	// EntraAuditLogRead is AuditLog.Read.All, needed by every stream.
	EntraAuditLogRead = "AuditLog.Read.All"
	// EntraDirectoryRead is Directory.Read.All, needed by directoryAudits.
	EntraDirectoryRead = "Directory.Read.All"
)

// Limits of the emulated Graph reports API.
const (
	// EntraMaxTop is the largest $top (and the default page size).
	EntraMaxTop = 1000
	// entraFreeRetention and entraPremiumRetention are how long a tenant
	// keeps its audit and sign-in logs without and with Entra ID P1/P2.
	entraFreeRetention    = 7 * 24 * time.Hour
	entraPremiumRetention = 30 * 24 * time.Hour
)

// entraTimeLayout writes Graph's DateTimeOffset values: UTC, 7 fraction
// digits (100 ns ticks).
const entraTimeLayout = "2006-01-02T15:04:05.0000000Z"

// EntraOptions configure an Entra emulator. The zero value is usable.
type EntraOptions struct {
	// TokenTTL is the lifetime of access tokens; default 1h.
	TokenTTL time.Duration
	// GraphResource is the resource whose /.default scope tokens are
	// issued for; default https://graph.microsoft.com.
	GraphResource string
	// RateLimit is the audit log requests allowed per RateWindow for one
	// app in one tenant, all streams together; default 5. A negative
	// value disables throttling.
	RateLimit int
	// RateWindow is the sliding window of RateLimit; default 10s.
	RateWindow time.Duration
	// RetryAfterDate sends Retry-After as an HTTP date instead of seconds.
	RetryAfterDate bool
	// SkipTokenTTL, when set, refuses $skiptokens older than it.
	SkipTokenTTL time.Duration
	// ShortPages is the fraction (0..1) of pages that are not a query's
	// last but are served shorter than $top, some empty, with a nextLink
	// all the same, as Graph does.
	ShortPages float64
	// Now is the clock of visibility, retention, tokens and throttling;
	// default time.Now.
	Now func() time.Time
	// Seed seeds short pages and fault injection.
	Seed uint64
}

// EntraTenant is one directory.
type EntraTenant struct {
	// ID is the tenant id, the first segment of the token endpoint path.
	ID string
	// Premium is an Entra ID P1 or P2 licence, which sign-in logs need.
	Premium bool
	// Retention is how long events are served; default 30 days with
	// Premium, 7 days without.
	Retention time.Duration
}

// EntraApp is an app registration with application permissions.
type EntraApp struct {
	// TenantID is the tenant the app is registered (and consented) in.
	TenantID string
	// ClientID is the app's application (client) id.
	ClientID string
	// ClientSecret, when set, is accepted as client_secret.
	ClientSecret string
	// Certificate, when set, verifies client assertions signed with its
	// key and carrying its thumbprint in x5t.
	Certificate *x509.Certificate
	// Permissions are the application permissions granted with admin
	// consent: EntraAuditLogRead, EntraDirectoryRead.
	Permissions []string
}

// EntraEvent is one audit log event.
type EntraEvent struct {
	// ID is the event's id (composite for directory audits).
	ID string
	// Time is the time the stream filters on (activityDateTime or
	// createdDateTime), kept to 100 ns.
	Time time.Time
	// Visible is when the event starts to appear in query results; zero
	// means at Time.
	Visible time.Time
	// JSON is the whole event as served; Add fills a minimal one when
	// empty. It must carry id and the time field matching the above.
	JSON json.RawMessage
}

// EntraFaults are the fractions (0..1) of audit log requests answered with
// each fault. ServerError, Throttle, Early401, Truncate and
// RefuseSkipToken exclude each other; Slow combines with any of them.
type EntraFaults struct {
	// ServerError answers, in turn, 500 UnknownError, 503
	// serviceNotAvailable with Retry-After, and 504 GatewayTimeout.
	ServerError float64
	// Throttle answers 429 with Retry-After although the budget has room.
	Throttle float64
	// Early401 answers 401 to a valid token that has been used before,
	// and revokes it, as a token revoked before its expiry.
	Early401 float64
	// Truncate sends half the body and closes the connection.
	Truncate float64
	// RefuseSkipToken answers 400 "Invalid Skip Token" to a request with
	// a $skiptoken.
	RefuseSkipToken float64
	// Slow delays the answer by SlowDelay.
	Slow      float64
	SlowDelay time.Duration
	// RetryAfter is the Retry-After of 429 and 503 faults; default 2s.
	RetryAfter time.Duration
}

// EntraStreamStats count what one stream has answered.
type EntraStreamStats struct {
	Requests  int64 `json:"requests"`
	Served    int64 `json:"served"`
	Throttled int64 `json:"throttled"`
	Refused   int64 `json:"refused"`
	Faults    int64 `json:"faults"`
}

// EntraStats count what an Entra has done.
type EntraStats struct {
	TokenRequests int64                       `json:"tokenRequests"`
	Streams       map[string]EntraStreamStats `json:"streams"`
}

// Entra emulates Microsoft Entra ID's token endpoint and the Microsoft
// Graph audit log reports of its tenants:
//
//	POST /{tenant}/oauth2/v2.0/token       client_credentials: client_secret or a certificate client assertion
//	GET  /v1.0/auditLogs/directoryAudits   $filter on activityDateTime: eq, ge, le
//	GET  /v1.0/auditLogs/signIns           $filter on createdDateTime: eq, ge, le, lt
//	GET  /v1.0/auditLogs/provisioning      $filter on activityDateTime: eq, gt, lt
//	GET  /emulator/stats                   EntraStats as JSON
//
// The reports take $top (1 to 1000, default 1000) and $orderby on the
// time field; they answer newest first by default, with an absolute
// @odata.nextLink carrying a $skiptoken while a page is full (and on the
// short pages ShortPages injects). A filter on another field, or with an
// operator the resource does not document, is 400 "Invalid filter
// clause"; a lower bound older than the tenant's retention is 400
// "Minimum allowed time for … is …". Events appear only once Visible.
// Each app is allowed RateLimit requests per RateWindow in a tenant,
// then 429 with Retry-After. Sign-ins of a tenant without Premium are 403
// Authentication_RequestFromNonPremiumTenantOrB2CTenant; an app lacking
// a permission gets 403 Authorization_RequestDenied. Token errors come
// in the AADSTS shape, Graph errors in Graph's error envelope.
type Entra struct {
	opts EntraOptions
	mux  *http.ServeMux

	mu       sync.RWMutex
	tenants  map[string]EntraTenant
	apps     map[string]EntraApp // by client id
	tokens   map[string]entraToken
	logs     map[entraLogKey][]*entraEntry // by (time, id)
	servedID map[entraLogKey]map[string]int

	rateMu sync.Mutex
	rate   map[string][]time.Time // tenant/client → request times in the window

	faultMu sync.Mutex
	faults  EntraFaults
	rng     *rand.Rand
	turn    int

	tokenRequests atomic.Int64
	statMu        sync.Mutex
	stats         map[string]*EntraStreamStats
}

type entraLogKey struct{ tenant, stream string }

type entraEntry struct {
	ns      int64 // Time in Unix ns, a multiple of 100
	id      string
	visible int64
	json    json.RawMessage
}

type entraToken struct {
	tenant, clientID string
	expires          time.Time
	used             bool // it has read a report: Early401 may revoke it
}

// entraResource describes one audit log stream.
type entraResource struct {
	field string          // the time field
	ops   map[string]bool // the documented comparison operators on it
}

var entraResources = map[string]entraResource{
	EntraDirectoryAudits: {"activityDateTime", map[string]bool{"eq": true, "ge": true, "le": true}},
	EntraSignIns:         {"createdDateTime", map[string]bool{"eq": true, "ge": true, "le": true, "lt": true}},
	EntraProvisioning:    {"activityDateTime", map[string]bool{"eq": true, "gt": true, "lt": true}},
}

// NewEntra returns an Entra with no tenants, apps or events.
func NewEntra(opts EntraOptions) *Entra {
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.GraphResource == "" {
		opts.GraphResource = "https://graph.microsoft.com"
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = 5
	}
	if opts.RateWindow <= 0 {
		opts.RateWindow = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Entra{opts: opts, tenants: map[string]EntraTenant{}, apps: map[string]EntraApp{}, tokens: map[string]entraToken{},
		logs: map[entraLogKey][]*entraEntry{}, servedID: map[entraLogKey]map[string]int{}, rate: map[string][]time.Time{},
		rng: rand.New(rand.NewPCG(opts.Seed, 0xe7a)), stats: map[string]*EntraStreamStats{}}
	e.mux = http.NewServeMux()
	e.mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", e.handleToken)
	e.mux.HandleFunc("/v1.0/auditLogs/{stream}", e.handleAuditLogs)
	e.mux.HandleFunc("GET /emulator/stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, e.Stats()) })
	e.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		e.graphError(w, http.StatusNotFound, "Request_UnsupportedQuery", "Unsupported segment type. ODataQuery: "+r.URL.Path)
	})
	return e
}

// ServeHTTP serves the token endpoint and the audit log reports.
func (e *Entra) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.mux.ServeHTTP(w, r) }

// AddTenant adds or replaces a tenant.
func (e *Entra) AddTenant(t EntraTenant) {
	if t.Retention <= 0 {
		t.Retention = entraFreeRetention
		if t.Premium {
			t.Retention = entraPremiumRetention
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tenants[t.ID] = t
}

// AddApp registers an app.
func (e *Entra) AddApp(app EntraApp) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.apps[app.ClientID] = app
}

// Add adds events to a tenant's stream.
func (e *Entra) Add(tenant, stream string, events ...EntraEvent) {
	res, ok := entraResources[stream]
	if !ok {
		panic("emulator: unknown Entra stream " + stream)
	}
	k := entraLogKey{tenant, stream}
	e.mu.Lock()
	defer e.mu.Unlock()
	log := e.logs[k]
	for _, ev := range events {
		t := ev.Time.UTC().Truncate(100 * time.Nanosecond)
		vis := ev.Visible
		if vis.IsZero() || vis.Before(t) {
			vis = t
		}
		js := ev.JSON
		if len(js) == 0 {
			js = json.RawMessage(fmt.Sprintf(`{"id":%q,%q:%q}`, ev.ID, res.field, t.Format(entraTimeLayout)))
		}
		log = append(log, &entraEntry{ns: t.UnixNano(), id: ev.ID, visible: vis.UnixNano(), json: js})
	}
	slices.SortStableFunc(log, func(a, b *entraEntry) int { return compareEntra(a.ns, a.id, b.ns, b.id) })
	e.logs[k] = log
}

func compareEntra(ans int64, aid string, bns int64, bid string) int {
	if c := cmp.Compare(ans, bns); c != 0 {
		return c
	}
	return strings.Compare(aid, bid)
}

// Events returns the ids of a tenant's stream, oldest first.
func (e *Entra) Events(tenant, stream string) []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	log := e.logs[entraLogKey{tenant, stream}]
	out := make([]string, len(log))
	for i, en := range log {
		out[i] = en.id
	}
	return out
}

// ServedIDs returns how many times each id of a tenant's stream was served
// in a whole answer.
func (e *Entra) ServedIDs(tenant, stream string) map[string]int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return maps.Clone(e.servedID[entraLogKey{tenant, stream}])
}

// SetFaults sets the faults injected from now on.
func (e *Entra) SetFaults(f EntraFaults) {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	e.faults = f
}

// Stats returns the counters.
func (e *Entra) Stats() EntraStats {
	e.statMu.Lock()
	defer e.statMu.Unlock()
	s := EntraStats{TokenRequests: e.tokenRequests.Load(), Streams: map[string]EntraStreamStats{}}
	for k, v := range e.stats {
		s.Streams[k] = *v
	}
	return s
}

// count adds to a stream's counters.
func (e *Entra) count(stream string, f func(*EntraStreamStats)) {
	e.statMu.Lock()
	defer e.statMu.Unlock()
	s := e.stats[stream]
	if s == nil {
		s = &EntraStreamStats{}
		e.stats[stream] = s
	}
	f(s)
}

// writeAADError writes a token endpoint error in Entra ID's shape: an
// AADSTS code, a description with trace and correlation ids, error_codes.
func (e *Entra) writeAADError(w http.ResponseWriter, status int, code string, aadsts int, desc string) {
	now := e.opts.Now().UTC()
	trace, corr := newUUID(), newUUID()
	writeJSON(w, status, map[string]any{
		"error": code,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s",
			aadsts, desc, trace, corr, now.Format("2006-01-02 15:04:05Z")),
		"error_codes": []int{aadsts}, "timestamp": now.Format("2006-01-02 15:04:05Z"),
		"trace_id": trace, "correlation_id": corr, "error_uri": "https://login.microsoftonline.com/error?code=" + strconv.Itoa(aadsts),
	})
}

// graphError writes Graph's error envelope.
func (e *Entra) graphError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg,
		"innerError": map[string]any{"date": e.opts.Now().UTC().Format(time.RFC3339), "request-id": newUUID(), "client-request-id": newUUID()}}})
}

// handleToken is the v2.0 token endpoint, client credentials grant.
func (e *Entra) handleToken(w http.ResponseWriter, r *http.Request) {
	e.tokenRequests.Add(1)
	if err := r.ParseForm(); err != nil {
		e.writeAADError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	f := r.PostForm
	tenantID := r.PathValue("tenant")
	switch f.Get("grant_type") {
	case "client_credentials":
	case "":
		e.writeAADError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	default:
		e.writeAADError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '"+f.Get("grant_type")+"'.")
		return
	}
	e.mu.RLock()
	_, tenantKnown := e.tenants[tenantID]
	app, appKnown := e.apps[f.Get("client_id")]
	e.mu.RUnlock()
	if !tenantKnown {
		e.writeAADError(w, http.StatusBadRequest, "invalid_request", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenantID))
		return
	}
	if !appKnown || app.TenantID != tenantID {
		e.writeAADError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", f.Get("client_id"), tenantID))
		return
	}
	secret, assertion := f.Get("client_secret"), f.Get("client_assertion")
	switch {
	case secret != "" && assertion != "":
		e.writeAADError(w, http.StatusBadRequest, "invalid_request", 90015, "Requested query string is too long: send either client_secret or client_assertion, not both.")
		return
	case secret != "":
		if app.ClientSecret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(app.ClientSecret)) != 1 {
			e.writeAADError(w, http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", app.ClientID))
			return
		}
	case assertion != "":
		if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			e.writeAADError(w, http.StatusBadRequest, "invalid_request", 7000219, "'client_assertion_type' must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.")
			return
		}
		if code, msg := e.checkAssertion(r, app, assertion); code != 0 {
			e.writeAADError(w, http.StatusUnauthorized, "invalid_client", code, msg)
			return
		}
	default:
		e.writeAADError(w, http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}
	scope := f.Get("scope")
	res, ok := strings.CutSuffix(scope, "/.default")
	switch {
	case !ok:
		e.writeAADError(w, http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope))
		return
	case strings.TrimRight(res, "/") != e.opts.GraphResource:
		e.writeAADError(w, http.StatusBadRequest, "invalid_resource", 500011, fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", res, tenantID))
		return
	}
	var b [24]byte
	for i := range b {
		b[i] = byte(e.randN(256))
	}
	tok := "eyJ0eXAiOiJKV1QiLCJub25jZSI6." + hex.EncodeToString(b[:])
	e.mu.Lock()
	e.tokens[tok] = entraToken{tenant: tenantID, clientID: app.ClientID, expires: e.opts.Now().Add(e.opts.TokenTTL)}
	e.mu.Unlock()
	ttl := int(e.opts.TokenTTL / time.Second)
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": tok})
}

// checkAssertion verifies a certificate client assertion; a zero code
// means it is good.
func (e *Entra) checkAssertion(r *http.Request, app EntraApp, assertion string) (int, string) {
	parts := strings.Split(assertion, ".")
	var hdr jwt.Header
	if len(parts) == 3 {
		if b, err := base64.RawURLEncoding.DecodeString(parts[0]); err == nil {
			_ = json.Unmarshal(b, &hdr)
		}
	}
	if hdr.X5t == "" {
		return 5002723, "Invalid JWT token. No certificate thumbprint specified in token header."
	}
	if app.Certificate == nil || hdr.X5t != EntraThumbprint(app.Certificate) {
		return 700027, fmt.Sprintf("Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '%s', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'.]", hdr.X5t, app.ClientID)
	}
	if hdr.Alg != "RS256" {
		return 700027, "Client assertion failed signature validation. [Reason - the token must be signed with RS256.]"
	}
	_, body, err := jwt.Verify(assertion, app.Certificate.PublicKey)
	if err != nil {
		return 700027, "Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value.]"
	}
	var c struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Nbf int64  `json:"nbf"`
	}
	_ = json.Unmarshal(body, &c)
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	aud := scheme + "://" + r.Host + r.URL.Path
	now := e.opts.Now().Unix()
	switch {
	case c.Iss != app.ClientID || c.Sub != app.ClientID:
		return 700021, "Client assertion application identifier doesn't match 'client_id' parameter: iss and sub must be the client id."
	case c.Aud != aud:
		return 700212, fmt.Sprintf("The audience claim of the client assertion is invalid: it must be the token endpoint %s.", aud)
	case c.Exp <= now || c.Nbf > now+300:
		return 700024, "Client assertion is not within its valid time range."
	}
	return 0, ""
}

// EntraThumbprint is a certificate's x5t: the base64url SHA-1 of its DER.
func EntraThumbprint(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (e *Entra) randN(n int) int {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	return e.rng.IntN(n)
}

type entraFault int

const (
	entraNoFault entraFault = iota
	entraServerError
	entraThrottle
	entraEarly401
	entraTruncate
	entraRefuseSkipToken
)

func (e *Entra) drawFault() (entraFault, time.Duration, int) {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	f := e.faults
	if f == (EntraFaults{}) {
		return entraNoFault, 0, 0
	}
	var slow time.Duration
	if f.Slow > 0 && e.rng.Float64() < f.Slow {
		slow = max(f.SlowDelay, time.Nanosecond)
	}
	u := e.rng.Float64()
	for _, c := range []struct {
		p float64
		k entraFault
	}{{f.ServerError, entraServerError}, {f.Throttle, entraThrottle}, {f.Early401, entraEarly401}, {f.Truncate, entraTruncate}, {f.RefuseSkipToken, entraRefuseSkipToken}} {
		if u < c.p {
			e.turn++
			return c.k, slow, e.turn
		}
		u -= c.p
	}
	return entraNoFault, slow, 0
}

func (e *Entra) faultRetryAfter() time.Duration {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	if e.faults.RetryAfter > 0 {
		return e.faults.RetryAfter
	}
	return 2 * time.Second
}

// setRetryAfter writes the Retry-After header for d, in seconds or as an
// HTTP date.
func (e *Entra) setRetryAfter(w http.ResponseWriter, d time.Duration) {
	secs := int64((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	if e.opts.RetryAfterDate {
		w.Header().Set("Retry-After", e.opts.Now().Add(time.Duration(secs)*time.Second).UTC().Format(http.TimeFormat))
		return
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
}

// admitRate takes one request from the app's sliding window in the tenant;
// false means 429 was written.
func (e *Entra) admitRate(w http.ResponseWriter, key string, spurious bool) bool {
	if e.opts.RateLimit < 0 && !spurious {
		return true
	}
	now := e.opts.Now()
	var wait time.Duration
	allowed := false
	e.rateMu.Lock()
	times := e.rate[key]
	for len(times) > 0 && now.Sub(times[0]) >= e.opts.RateWindow {
		times = times[1:]
	}
	switch {
	case spurious:
		wait = e.faultRetryAfter()
	case len(times) < e.opts.RateLimit:
		times = append(times, now)
		allowed = true
	default:
		wait = times[0].Add(e.opts.RateWindow).Sub(now)
	}
	e.rate[key] = times
	e.rateMu.Unlock()
	if !allowed {
		e.setRetryAfter(w, wait)
		e.graphError(w, http.StatusTooManyRequests, "TooManyRequests", "Too many requests. Please try again after some time.")
	}
	return allowed
}

// authorize checks the bearer token; ok false means an answer was written.
func (e *Entra) authorize(w http.ResponseWriter, r *http.Request, early401 bool) (entraToken, bool) {
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || auth == "" {
		e.graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty.")
		return entraToken{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	tok, known := e.tokens[auth]
	switch {
	case !known:
		e.graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
		return entraToken{}, false
	case !e.opts.Now().Before(tok.expires):
		delete(e.tokens, auth)
		e.graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
		return entraToken{}, false
	case early401 && tok.used:
		delete(e.tokens, auth)
		e.graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure.")
		return entraToken{}, false
	}
	tok.used = true
	e.tokens[auth] = tok
	return tok, true
}

// entraQuery is the state of one paged query; a $skiptoken carries it.
type entraQuery struct {
	Tenant string `json:"t"`
	Stream string `json:"s"`
	// Lo and Hi bound the time field in ns; LoIn and HiIn say whether
	// the bound is included. HasLo and HasHi say whether there is one.
	Lo, Hi             int64
	HasLo, HasHi       bool
	LoIn, HiIn         bool
	Asc                bool   `json:"a,omitempty"`
	Top                int    `json:"n"`
	LastNs             int64  `json:"lt,omitempty"`
	LastID             string `json:"li,omitempty"`
	HasLast            bool   `json:"h,omitempty"`
	Issued             int64  `json:"i"`
	Filter, OrderBy    string `json:"-"`
	filterErr, topErr  string
	orderErr, tokenErr string
}

func (q *entraQuery) encode() string {
	b, _ := json.Marshal(q) // strings, numbers and bools always marshal
	return hex.EncodeToString(b)
}

// parseQuery reads a request's query options, or the state its
// $skiptoken carries.
func (e *Entra) parseQuery(r *http.Request, tenant, stream string) *entraQuery {
	v := r.URL.Query()
	if st := v.Get("$skiptoken"); v.Has("$skiptoken") {
		q := &entraQuery{}
		b, err := hex.DecodeString(st)
		if err != nil || json.Unmarshal(b, q) != nil || q.Tenant != tenant || q.Stream != stream || q.Top < 1 || q.Top > EntraMaxTop {
			return &entraQuery{tokenErr: "Invalid Skip Token, skip token is null"}
		}
		if e.opts.SkipTokenTTL > 0 && e.opts.Now().Sub(time.Unix(0, q.Issued)) > e.opts.SkipTokenTTL {
			return &entraQuery{tokenErr: "Invalid Skip Token, skip token has expired"}
		}
		return q
	}
	q := &entraQuery{Tenant: tenant, Stream: stream, Top: EntraMaxTop, Issued: e.opts.Now().UnixNano()}
	res := entraResources[stream]
	if t := v.Get("$top"); v.Has("$top") {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > EntraMaxTop {
			q.topErr = fmt.Sprintf("Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", t, EntraMaxTop)
			return q
		}
		q.Top = n
	}
	if ob := strings.TrimSpace(v.Get("$orderby")); ob != "" {
		field, dir, _ := strings.Cut(ob, " ")
		switch {
		case field != res.field:
			q.orderErr = "Invalid orderby clause: ordering is supported on " + res.field + " only."
		case dir == "" || strings.EqualFold(dir, "asc"):
			q.Asc = true
		case strings.EqualFold(dir, "desc"):
		default:
			q.orderErr = "Invalid orderby clause: want asc or desc."
		}
	}
	if f := strings.TrimSpace(v.Get("$filter")); f != "" {
		for _, clause := range splitAnd(f) {
			fs := strings.Fields(clause)
			if len(fs) != 3 || fs[0] != res.field || !res.ops[fs[1]] {
				q.filterErr = "Invalid filter clause"
				return q
			}
			t, err := time.Parse(time.RFC3339Nano, fs[2])
			if err != nil {
				q.filterErr = "Invalid filter clause: The DateTimeOffset text '" + fs[2] + "' should be in format 'yyyy-mm-ddThh:mm:ss('.'s+)?(zz)?' and each field value is within valid range."
				return q
			}
			ns := t.UnixNano()
			switch fs[1] {
			case "eq":
				q.setLo(ns, true)
				q.setHi(ns, true)
			case "ge":
				q.setLo(ns, true)
			case "gt":
				q.setLo(ns, false)
			case "le":
				q.setHi(ns, true)
			case "lt":
				q.setHi(ns, false)
			}
		}
	}
	return q
}

// splitAnd splits a filter at its " and " operators (any case).
func splitAnd(f string) []string {
	var out []string
	for {
		i := strings.Index(strings.ToLower(f), " and ")
		if i < 0 {
			return append(out, f)
		}
		out = append(out, f[:i])
		f = f[i+5:]
	}
}

func (q *entraQuery) setLo(ns int64, in bool) {
	if !q.HasLo || ns > q.Lo || ns == q.Lo && !in {
		q.Lo, q.LoIn, q.HasLo = ns, in, true
	}
}

func (q *entraQuery) setHi(ns int64, in bool) {
	if !q.HasHi || ns < q.Hi || ns == q.Hi && !in {
		q.Hi, q.HiIn, q.HasHi = ns, in, true
	}
}

// matches reports whether an entry is within the query's bounds.
func (q *entraQuery) matches(en *entraEntry) bool {
	if q.HasLo && (en.ns < q.Lo || en.ns == q.Lo && !q.LoIn) {
		return false
	}
	if q.HasHi && (en.ns > q.Hi || en.ns == q.Hi && !q.HiIn) {
		return false
	}
	return true
}

// permissionsFor lists the application permissions a stream needs.
func permissionsFor(stream string) []string {
	if stream == EntraDirectoryAudits {
		return []string{EntraAuditLogRead, EntraDirectoryRead}
	}
	return []string{EntraAuditLogRead}
}

func (e *Entra) handleAuditLogs(w http.ResponseWriter, r *http.Request) {
	stream := r.PathValue("stream")
	res, ok := entraResources[stream]
	if !ok {
		e.graphError(w, http.StatusBadRequest, "BadRequest", "Resource not found for the segment '"+stream+"'.")
		return
	}
	e.count(stream, func(s *EntraStreamStats) { s.Requests++ })
	refuse := func(status int, code, msg string) {
		e.count(stream, func(s *EntraStreamStats) { s.Refused++ })
		e.graphError(w, status, code, msg)
	}
	if r.Method != http.MethodGet {
		refuse(http.StatusMethodNotAllowed, "Request_BadRequest", "The HTTP method is not allowed on this resource.")
		return
	}
	fault, slow, turn := e.drawFault()
	if fault != entraNoFault || slow > 0 {
		e.count(stream, func(s *EntraStreamStats) { s.Faults++ })
	}
	if slow > 0 {
		select {
		case <-time.After(slow):
		case <-r.Context().Done():
			return
		}
	}
	tok, ok := e.authorize(w, r, fault == entraEarly401)
	if !ok {
		e.count(stream, func(s *EntraStreamStats) { s.Refused++ })
		return
	}
	if !e.admitRate(w, tok.tenant+"/"+tok.clientID, fault == entraThrottle) {
		e.count(stream, func(s *EntraStreamStats) { s.Throttled++ })
		return
	}
	e.mu.RLock()
	app, tenant := e.apps[tok.clientID], e.tenants[tok.tenant]
	e.mu.RUnlock()
	for _, p := range permissionsFor(stream) {
		if !slices.Contains(app.Permissions, p) {
			refuse(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
			return
		}
	}
	if stream == EntraSignIns && !tenant.Premium {
		refuse(http.StatusForbidden, "Authentication_RequestFromNonPremiumTenantOrB2CTenant", "Neither tenant is B2C or tenant doesn't have premium license")
		return
	}
	if fault == entraServerError {
		switch turn % 3 {
		case 0:
			e.graphError(w, http.StatusInternalServerError, "UnknownError", "")
		case 1:
			e.setRetryAfter(w, e.faultRetryAfter())
			e.graphError(w, http.StatusServiceUnavailable, "serviceNotAvailable", "The service is temporarily unavailable. Please retry later.")
		default:
			e.graphError(w, http.StatusGatewayTimeout, "GatewayTimeout", "The request timed out.")
		}
		return
	}
	q := e.parseQuery(r, tok.tenant, stream)
	switch {
	case q.tokenErr != "":
		refuse(http.StatusBadRequest, "BadRequest", q.tokenErr)
		return
	case fault == entraRefuseSkipToken && r.URL.Query().Has("$skiptoken"):
		refuse(http.StatusBadRequest, "BadRequest", "Invalid Skip Token, skip token is null")
		return
	case q.topErr != "":
		refuse(http.StatusBadRequest, "BadRequest", q.topErr)
		return
	case q.orderErr != "":
		refuse(http.StatusBadRequest, "BadRequest", q.orderErr)
		return
	case q.filterErr != "":
		refuse(http.StatusBadRequest, "BadRequest", q.filterErr)
		return
	}
	now := e.opts.Now()
	oldest := now.Add(-tenant.Retention).UTC().Truncate(24 * time.Hour)
	if q.HasLo && q.Lo < oldest.UnixNano() {
		refuse(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Invalid filter clause: Minimum allowed time for %s is %s", res.field, oldest.Format("1/2/2006 3:04:05 PM")))
		return
	}
	page, more := e.query(q, now.UnixNano(), now.Add(-tenant.Retention).UnixNano())
	if more && len(page) > 0 {
		e.faultMu.Lock()
		short := e.opts.ShortPages > 0 && e.rng.Float64() < e.opts.ShortPages
		cut := 0
		if short {
			cut = e.rng.IntN(len(page))
		}
		e.faultMu.Unlock()
		if short {
			page = page[:cut]
		}
	}
	body := make([]byte, 0, 1024*len(page)+256)
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	base := scheme + "://" + r.Host + "/v1.0/auditLogs/" + stream
	body = append(body, `{"@odata.context":`...)
	body = appendString(body, scheme+"://"+r.Host+"/v1.0/$metadata#auditLogs/"+stream)
	body = append(body, `,"value":[`...)
	for i, en := range page {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, en.json...)
	}
	body = append(body, ']')
	if more {
		next := *q
		if len(page) > 0 {
			last := page[len(page)-1]
			next.LastNs, next.LastID, next.HasLast = last.ns, last.id, true
		}
		body = append(body, `,"@odata.nextLink":`...)
		body = appendString(body, base+"?$top="+strconv.Itoa(q.Top)+"&$skiptoken="+next.encode())
	}
	body = append(body, '}')
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("request-id", newUUID())
	if fault == entraTruncate {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body[:len(body)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	// Count before writing, so a client that read the page finds it counted.
	e.count(stream, func(s *EntraStreamStats) { s.Served += int64(len(page)) })
	k := entraLogKey{tok.tenant, stream}
	e.mu.Lock()
	ids := e.servedID[k]
	if ids == nil {
		ids = map[string]int{}
		e.servedID[k] = ids
	}
	for _, en := range page {
		ids[en.id]++
	}
	e.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// query returns the next page of q among the events visible at now and
// retained since oldest, and whether a nextLink follows it: while a page
// is full, as Graph does not look ahead.
func (e *Entra) query(q *entraQuery, now, oldest int64) ([]*entraEntry, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	log := e.logs[entraLogKey{q.Tenant, q.Stream}]
	var page []*entraEntry
	take := func(en *entraEntry) bool {
		if en.visible > now || en.ns < oldest || !q.matches(en) {
			return true
		}
		page = append(page, en)
		return len(page) < q.Top
	}
	if q.Asc {
		i := 0
		if q.HasLast {
			i, _ = slices.BinarySearchFunc(log, q, func(en *entraEntry, q *entraQuery) int {
				if compareEntra(en.ns, en.id, q.LastNs, q.LastID) <= 0 {
					return -1
				}
				return 1
			})
		}
		for ; i < len(log) && take(log[i]); i++ {
		}
	} else {
		i := len(log)
		if q.HasLast {
			i, _ = slices.BinarySearchFunc(log, q, func(en *entraEntry, q *entraQuery) int {
				if compareEntra(en.ns, en.id, q.LastNs, q.LastID) < 0 {
					return -1
				}
				return 1
			})
		}
		for i--; i >= 0 && take(log[i]); i-- {
		}
	}
	return page, len(page) == q.Top
}

// entraLink returns the first page URL of a stream for a client: the
// filter as given, url-encoded with %20 for spaces.
func entraLink(base, stream string, params map[string]string) string {
	var b strings.Builder
	b.WriteString(base + "/v1.0/auditLogs/" + stream)
	sep := "?"
	for _, k := range slices.Sorted(maps.Keys(params)) {
		b.WriteString(sep + k + "=" + strings.ReplaceAll(url.QueryEscape(params[k]), "+", "%20"))
		sep = "&"
	}
	return b.String()
}
