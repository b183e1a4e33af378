package emulator

import (
	"bytes"
	crand "crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/auditrelay/auditrelay/internal/jsonscan"
	"github.com/klauspost/compress/gzip"
)

// Sentinel limits, as the Logs Ingestion API documents them.
const (
	// SentinelMaxCallBytes is the most one call may carry, compressed and
	// uncompressed ("1 MB", read as 1,000,000 bytes).
	SentinelMaxCallBytes = 1_000_000
	// SentinelMaxFieldBytes is the longest field value stored; longer
	// values are truncated.
	SentinelMaxFieldBytes = 64 << 10
)

// SentinelOptions configure a Sentinel emulator. The zero value is usable.
type SentinelOptions struct {
	// TokenTTL is the lifetime of issued tokens; default 1h.
	TokenTTL time.Duration
	// Audience is the token audience the ingestion endpoint accepts;
	// default https://monitor.azure.com.
	Audience string
	// MaxCallBytes defaults to SentinelMaxCallBytes.
	MaxCallBytes int
	// MaxFieldBytes defaults to SentinelMaxFieldBytes.
	MaxFieldBytes int
	// Now defaults to time.Now.
	Now func() time.Time
	// Seed seeds fault injection.
	Seed uint64
	// CountOnly counts the accepted rows without keeping them (Rows
	// returns none) or checking that the body is valid JSON: for
	// benchmarks, whose millions of rows would only cost the emulator
	// memory and CPU.
	CountOnly bool
}

// SentinelApp is an Entra ID app registration that can get tokens.
type SentinelApp struct {
	TenantID, ClientID, ClientSecret string
	// FederatedToken, when set, is accepted as client_assertion (workload
	// identity federation) instead of the secret.
	FederatedToken string
}

// SentinelColumn is a column of a stream declaration.
type SentinelColumn struct {
	Name, Type string
}

// SentinelRow is one ingested row: the declared columns that were sent,
// as JSON values after the service's truncation.
type SentinelRow struct {
	DCR, Stream string
	// RequestID is the call's x-ms-client-request-id.
	RequestID string
	Columns   map[string]json.RawMessage
}

// String returns the row's string column name, "" when it is absent or
// not a string.
func (r SentinelRow) String(name string) string {
	var s string
	json.Unmarshal(r.Columns[name], &s)
	return s
}

// SentinelFaults are the fractions (0..1) of upload calls answered with a
// fault instead of being ingested.
type SentinelFaults struct {
	// Throttle answers 429 with Retry-After: RetryAfter.
	Throttle float64
	// ServerError answers 503 with Retry-After: RetryAfter.
	ServerError float64
	// RetryAfter is the Retry-After of faults; default 1s.
	RetryAfter time.Duration
}

// SentinelStats count what a Sentinel has done.
type SentinelStats struct {
	TokenRequests int64 `json:"tokenRequests"`
	Calls         int64 `json:"calls"`
	Accepted      int64 `json:"accepted"`
	Rows          int64 `json:"rows"`
	TooLarge      int64 `json:"tooLarge"`
	Forbidden     int64 `json:"forbidden"`
	NotFound      int64 `json:"notFound"`
	Faults        int64 `json:"faults"`
	Truncated     int64 `json:"truncated"`
	Gzipped       int64 `json:"gzipped"`
}

// Sentinel emulates the Microsoft Entra ID token endpoint and the Azure
// Monitor Logs Ingestion API: client credentials tokens for the monitor
// audience, data collection rules with declared streams, role assignments
// (Monitoring Metrics Publisher), the 1 MB call limit (413), the 64 KB field
// limit (truncation), gzip bodies, and injectable 429/503 faults. Every
// ingested row is recorded. It is an http.Handler; all its methods are
// safe for concurrent use.
type Sentinel struct {
	opts SentinelOptions
	mux  *http.ServeMux

	mu      sync.Mutex
	apps    map[string]SentinelApp // by client id
	streams map[string][]SentinelColumn
	grants  map[string]bool // dcr + "\x00" + client id
	tokens  map[string]sentinelToken
	rows    []SentinelRow
	pending []pendingCall

	identity, identityHeader string
	faults                   SentinelFaults
	down                     int // status answered to every call while set
	rng                      *rand.Rand

	tokenRequests, calls, accepted, rowCount, tooLarge, forbidden, notFound, faultCount, truncated, gzipped atomic.Int64

	bufs  sync.Pool // of *bytes.Buffer, for the bodies of count-only calls
	gzips sync.Pool // of *gzip.Reader
}

type sentinelToken struct {
	clientID, audience string
	expires            time.Time
}

// NewSentinel returns an emulator with no apps and no rules.
func NewSentinel(opts SentinelOptions) *Sentinel {
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.Audience == "" {
		opts.Audience = "https://monitor.azure.com"
	}
	if opts.MaxCallBytes <= 0 {
		opts.MaxCallBytes = SentinelMaxCallBytes
	}
	if opts.MaxFieldBytes <= 0 {
		opts.MaxFieldBytes = SentinelMaxFieldBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Sentinel{
		opts:    opts,
		apps:    map[string]SentinelApp{},
		streams: map[string][]SentinelColumn{},
		grants:  map[string]bool{},
		tokens:  map[string]sentinelToken{},
		rng:     rand.New(rand.NewPCG(opts.Seed, 0xa2e1)),
	}
	s.bufs.New = func() any { return new(bytes.Buffer) }
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.handleToken)
	s.mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.handleDiscovery)
	s.mux.HandleFunc("GET /msi/token", s.handleManagedIdentity)
	s.mux.HandleFunc("POST /dataCollectionRules/{dcr}/streams/{stream}", s.handleUpload)
	s.mux.HandleFunc("GET /emulator/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.Stats())
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		azureError(w, http.StatusNotFound, "NotFound", "The requested resource was not found.")
	})
	return s
}

// ServeHTTP serves the token endpoint and the ingestion API.
func (s *Sentinel) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// AddApp registers an app that can get tokens.
func (s *Sentinel) AddApp(app SentinelApp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[app.ClientID] = app
}

// AddStream declares a stream of a data collection rule.
func (s *Sentinel) AddStream(dcr, stream string, columns []SentinelColumn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streams[dcr+"\x00"+stream] = append([]SentinelColumn(nil), columns...)
}

// Grant gives an app Monitoring Metrics Publisher on a rule.
func (s *Sentinel) Grant(dcr, clientID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants[dcr+"\x00"+clientID] = true
}

// Revoke removes an app's role assignment on a rule.
func (s *Sentinel) Revoke(dcr, clientID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.grants, dcr+"\x00"+clientID)
}

// SetManagedIdentity makes the emulator the managed identity endpoint of an
// App Service host (IDENTITY_ENDPOINT = base + "/msi/token", IDENTITY_HEADER
// = header) whose identity has clientID. Grant it like an app.
func (s *Sentinel) SetManagedIdentity(clientID, header string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.identity, s.identityHeader = clientID, header
}

// SetFaults sets the fault fractions of upload calls.
func (s *Sentinel) SetFaults(f SentinelFaults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// SetDown answers every upload call with status (503 or 429, with
// Retry-After) until SetDown(0).
func (s *Sentinel) SetDown(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = status
}

// Rows returns the rows ingested into a stream, in order.
func (s *Sentinel) Rows(dcr, stream string) []SentinelRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flush()
	var out []SentinelRow
	for _, r := range s.rows {
		if r.DCR == dcr && r.Stream == stream {
			out = append(out, r)
		}
	}
	return out
}

// Stats returns the counters.
func (s *Sentinel) Stats() SentinelStats {
	s.mu.Lock()
	s.flush()
	s.mu.Unlock()
	return SentinelStats{
		TokenRequests: s.tokenRequests.Load(), Calls: s.calls.Load(), Accepted: s.accepted.Load(),
		Rows: s.rowCount.Load(), TooLarge: s.tooLarge.Load(), Forbidden: s.forbidden.Load(),
		NotFound: s.notFound.Load(), Faults: s.faultCount.Load(), Truncated: s.truncated.Load(), Gzipped: s.gzipped.Load(),
	}
}

// handleToken is the v2.0 token endpoint, client credentials grant only.
func (s *Sentinel) handleToken(w http.ResponseWriter, r *http.Request) {
	s.tokenRequests.Add(1)
	if err := r.ParseForm(); err != nil {
		entraError(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'grant_type'.")
		return
	}
	tenant := r.PathValue("tenant")
	if r.PostForm.Get("grant_type") != "client_credentials" {
		entraError(w, http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	assertion := r.PostForm.Get("client_assertion")
	if u, p, ok := r.BasicAuth(); ok {
		id, secret = u, p
	}
	s.mu.Lock()
	app, known := s.apps[id]
	tenantKnown := false
	for _, a := range s.apps {
		tenantKnown = tenantKnown || a.TenantID == tenant
	}
	s.mu.Unlock()
	if !tenantKnown {
		entraError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("AADSTS90002: Tenant '%s' not found.", tenant))
		return
	}
	if !known || app.TenantID != tenant {
		entraError(w, http.StatusBadRequest, "unauthorized_client", fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory '%s'.", id, tenant))
		return
	}
	switch {
	case assertion != "":
		if app.FederatedToken == "" || r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" ||
			subtle.ConstantTimeCompare([]byte(assertion), []byte(app.FederatedToken)) != 1 {
			entraError(w, http.StatusUnauthorized, "invalid_client", "AADSTS700213: No matching federated identity record found for presented assertion.")
			return
		}
	case subtle.ConstantTimeCompare([]byte(secret), []byte(app.ClientSecret)) != 1 || app.ClientSecret == "":
		entraError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
		return
	}
	// MSAL adds the OpenID Connect scopes; the resource scope is the other.
	scope := ""
	for _, sc := range strings.Fields(r.PostForm.Get("scope")) {
		switch sc {
		case "openid", "offline_access", "profile":
		default:
			scope = sc
		}
	}
	aud, ok := strings.CutSuffix(scope, "/.default")
	aud = strings.TrimSuffix(aud, "/")
	if !ok || !strings.HasPrefix(aud, "https://monitor.azure.") {
		entraError(w, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("AADSTS70011: The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", scope))
		return
	}
	var b [24]byte
	crand.Read(b[:])
	tok := "eyJ0eXAiOiJKV1Qi." + hex.EncodeToString(b[:])
	s.mu.Lock()
	s.tokens[tok] = sentinelToken{clientID: id, audience: aud, expires: s.opts.Now().Add(s.opts.TokenTTL)}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	ttl := int(s.opts.TokenTTL / time.Second)
	json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": tok})
}

// handleDiscovery serves the tenant's OpenID configuration, which the
// Azure SDK reads before its first token request.
func (s *Sentinel) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	base := "http://" + r.Host
	if r.TLS != nil {
		base = "https://" + r.Host
	}
	tenant := r.PathValue("tenant")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"token_endpoint":         base + "/" + tenant + "/oauth2/v2.0/token",
		"authorization_endpoint": base + "/" + tenant + "/oauth2/v2.0/authorize",
		"issuer":                 base + "/" + tenant + "/v2.0",
	})
}

// handleManagedIdentity is the App Service managed identity endpoint.
func (s *Sentinel) handleManagedIdentity(w http.ResponseWriter, r *http.Request) {
	s.tokenRequests.Add(1)
	s.mu.Lock()
	id, header := s.identity, s.identityHeader
	s.mu.Unlock()
	q := r.URL.Query()
	switch {
	case id == "" || header == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get("X-IDENTITY-HEADER")), []byte(header)) != 1:
		w.WriteHeader(http.StatusUnauthorized)
		return
	case q.Get("api-version") != "2019-08-01":
		http.Error(w, "unsupported api-version", http.StatusBadRequest)
		return
	case q.Get("client_id") != "" && q.Get("client_id") != id:
		http.Error(w, "no such user-assigned identity", http.StatusBadRequest)
		return
	}
	aud := strings.TrimSuffix(q.Get("resource"), "/")
	if !strings.HasPrefix(aud, "https://monitor.azure.") {
		http.Error(w, "resource is not Azure Monitor", http.StatusBadRequest)
		return
	}
	var b [24]byte
	crand.Read(b[:])
	tok := "eyJ0eXAiOiJKV1Qi.mi." + hex.EncodeToString(b[:])
	exp := s.opts.Now().Add(s.opts.TokenTTL)
	s.mu.Lock()
	s.tokens[tok] = sentinelToken{clientID: id, audience: aud, expires: exp}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "resource": aud,
		"expires_on": strconv.FormatInt(exp.Unix(), 10), "client_id": id})
}

func entraError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": code, "error_description": desc, "error_codes": []int{}})
}

func azureError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// handleUpload is the Logs Ingestion API.
func (s *Sentinel) handleUpload(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	if v := r.URL.Query().Get("api-version"); v != "2023-01-01" {
		azureError(w, http.StatusBadRequest, "InvalidApiVersion", fmt.Sprintf("The api-version '%s' is not supported.", v))
		return
	}
	dcr, stream := r.PathValue("dcr"), r.PathValue("stream")
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	tok, known := s.tokens[auth]
	s.mu.Unlock()
	switch {
	case !ok || !known:
		azureError(w, http.StatusUnauthorized, "InvalidToken", "The provided access token is invalid.")
		return
	case !s.opts.Now().Before(tok.expires):
		azureError(w, http.StatusUnauthorized, "TokenExpired", "The provided access token has expired.")
		return
	case tok.audience != s.opts.Audience:
		azureError(w, http.StatusUnauthorized, "InvalidAudience", fmt.Sprintf("The token audience %s is not %s.", tok.audience, s.opts.Audience))
		return
	}
	s.mu.Lock()
	cols, streamKnown := s.streams[dcr+"\x00"+stream]
	ruleKnown := false
	for k := range s.streams {
		ruleKnown = ruleKnown || strings.HasPrefix(k, dcr+"\x00")
	}
	granted := s.grants[dcr+"\x00"+tok.clientID]
	down := s.down
	f := s.faults
	var fault int
	if down == 0 {
		switch x := s.rng.Float64(); {
		case x < f.Throttle:
			fault = http.StatusTooManyRequests
		case x < f.Throttle+f.ServerError:
			fault = http.StatusServiceUnavailable
		}
	}
	s.mu.Unlock()
	if !ruleKnown {
		s.notFound.Add(1)
		azureError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("Data collection rule with immutable Id '%s' not found.", dcr))
		return
	}
	if !granted {
		s.forbidden.Add(1)
		azureError(w, http.StatusForbidden, "OperationFailed", "The authentication token provided does not have access to ingest data for the data collection rule with immutable Id '"+dcr+"'.")
		return
	}
	if !streamKnown {
		s.notFound.Add(1)
		azureError(w, http.StatusNotFound, "InvalidStream", fmt.Sprintf("Stream '%s' is not declared by the data collection rule '%s'.", stream, dcr))
		return
	}
	if down != 0 || fault != 0 {
		st := down
		if st == 0 {
			st = fault
		}
		s.faultCount.Add(1)
		ra := f.RetryAfter
		if ra <= 0 {
			ra = time.Second
		}
		w.Header().Set("Retry-After", strconv.Itoa(int((ra+time.Second-1)/time.Second)))
		azureError(w, st, "ServiceUnavailable", "Injected fault.")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		azureError(w, http.StatusUnsupportedMediaType, "UnsupportedMediaType", fmt.Sprintf("Content-Type %q is not application/json.", ct))
		return
	}
	limit := s.opts.MaxCallBytes
	// A count-only emulator keeps no row, so the bodies' buffers are
	// reused: a benchmark measures the sender, not this.
	var wireBuf, bodyBuf *bytes.Buffer
	if s.opts.CountOnly {
		wireBuf, bodyBuf = s.bufs.Get().(*bytes.Buffer), s.bufs.Get().(*bytes.Buffer)
		defer s.bufs.Put(wireBuf)
		defer s.bufs.Put(bodyBuf)
	}
	wire, err := readLimited(r.Body, limit, wireBuf)
	if err != nil {
		azureError(w, http.StatusBadRequest, "InvalidPayload", "Cannot read the body: "+err.Error())
		return
	}
	if len(wire) > limit {
		s.tooLarge.Add(1)
		azureError(w, http.StatusRequestEntityTooLarge, "ContentLengthLimitExceeded", fmt.Sprintf("Maximum allowed content length: %d bytes.", limit))
		return
	}
	body := wire
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "":
	case "gzip":
		s.gzipped.Add(1)
		zr, _ := s.gzips.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		defer s.gzips.Put(zr)
		if err := zr.Reset(bytes.NewReader(wire)); err != nil {
			azureError(w, http.StatusBadRequest, "InvalidContentEncoding", "The body is not gzip.")
			return
		}
		body, err = readLimited(zr, limit, bodyBuf)
		if err != nil {
			azureError(w, http.StatusBadRequest, "InvalidContentEncoding", "The body is not valid gzip: "+err.Error())
			return
		}
		if len(body) > limit {
			s.tooLarge.Add(1)
			azureError(w, http.StatusRequestEntityTooLarge, "ContentLengthLimitExceeded", fmt.Sprintf("Maximum allowed content length: %d bytes (uncompressed).", limit))
			return
		}
	default:
		azureError(w, http.StatusBadRequest, "InvalidContentEncoding", fmt.Sprintf("Content-Encoding %q is not supported.", enc))
		return
	}
	var rows [][]byte
	if s.opts.CountOnly {
		rows, ok = splitElements(body)
	} else {
		rows, ok = splitArray(body)
	}
	if !ok {
		azureError(w, http.StatusBadRequest, "InvalidPayload", "The body is not a JSON array of objects.")
		return
	}
	// Rows are decoded when they are read (Rows, Stats), which keeps the
	// emulator's share of a benchmark's CPU small.
	if !s.opts.CountOnly {
		call := pendingCall{dcr: dcr, stream: stream, requestID: r.Header.Get("x-ms-client-request-id"), cols: cols, rows: rows}
		s.mu.Lock()
		s.pending = append(s.pending, call)
		s.mu.Unlock()
	}
	s.accepted.Add(1)
	s.rowCount.Add(int64(len(rows)))
	w.WriteHeader(http.StatusNoContent)
}

// pendingCall is an accepted call whose rows are not decoded yet.
type pendingCall struct {
	dcr, stream, requestID string
	cols                   []SentinelColumn
	rows                   [][]byte
}

// flush decodes the pending calls' rows into s.rows, keeping the declared
// columns and truncating long values. The caller holds s.mu.
func (s *Sentinel) flush() {
	for _, c := range s.pending {
		for _, raw := range c.rows {
			var in map[string]json.RawMessage
			json.Unmarshal(raw, &in) // valid: checked by splitArray
			row := SentinelRow{DCR: c.dcr, Stream: c.stream, RequestID: c.requestID, Columns: map[string]json.RawMessage{}}
			for _, col := range c.cols {
				v, ok := in[col.Name]
				if !ok || string(v) == "null" {
					continue
				}
				row.Columns[col.Name] = s.truncate(v)
			}
			s.rows = append(s.rows, row)
		}
	}
	s.pending = nil
}

// readLimited reads r, up to one byte past limit, into buf (reset first)
// or, when buf is nil, into a new slice.
func readLimited(r io.Reader, limit int, buf *bytes.Buffer) ([]byte, error) {
	lr := io.LimitReader(r, int64(limit)+1)
	if buf == nil {
		return io.ReadAll(lr)
	}
	buf.Reset()
	_, err := buf.ReadFrom(lr)
	return buf.Bytes(), err
}

// splitArray returns the elements of a JSON array of objects, or false
// when body is not one.
func splitArray(body []byte) ([][]byte, bool) {
	if !json.Valid(body) {
		return nil, false
	}
	return splitElements(body)
}

// splitElements is splitArray without checking that body is valid JSON:
// for CountOnly, whose benchmarks measure the sender, not the emulator.
func splitElements(body []byte) ([][]byte, bool) {
	body = bytes.Trim(body, " \t\r\n") // JSON white space only
	if len(body) < 2 || body[0] != '[' || body[len(body)-1] != ']' {
		return nil, false
	}
	end := len(body) - 1 // the closing bracket
	var out [][]byte
	for i := jsonscan.SkipSpace(body, 1); i < end; {
		if body[i] != '{' {
			return nil, false // a scalar or array element
		}
		e := jsonscan.SkipValue(body, i)
		if e > end {
			return nil, false
		}
		out = append(out, body[i:e])
		if i = jsonscan.SkipSpace(body, e); i < end {
			if body[i] != ',' {
				return nil, false
			}
			i = jsonscan.SkipSpace(body, i+1)
		}
	}
	return out, true
}

// truncate cuts a value over the field limit, as the service does.
func (s *Sentinel) truncate(v json.RawMessage) json.RawMessage {
	n := s.opts.MaxFieldBytes
	if len(v) <= n {
		return v // a JSON text is never shorter than the value it holds
	}
	var str string
	if v[0] == '"' && json.Unmarshal(v, &str) == nil {
		if len(str) <= n {
			return v
		}
		s.truncated.Add(1)
		b, _ := json.Marshal(cutUTF8(str, n))
		return b
	}
	if len(v) <= n {
		return v
	}
	s.truncated.Add(1)
	b, _ := json.Marshal(cutUTF8(string(v), n))
	return b
}

func cutUTF8(s string, n int) string {
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
