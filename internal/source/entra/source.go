// Package entra reads the Microsoft Entra ID audit logs of one tenant
// through Microsoft Graph (/v1.0/auditLogs/directoryAudits, signIns and
// provisioning). Each log is a stream with its own cursor, dedup set and
// metrics, so New returns one source.Source per stream, named
// <name>/<stream>; they share the app's access token and one rate limiter,
// since Graph limits the reports to 5 requests per 10 s per app and
// tenant, whatever the stream.
//
// Each stream walks closed windows [from, to] of its own time field
// (activityDateTime, or createdDateTime for sign-ins) at Graph's 100 ns
// precision, with the window engine: to stays settle_delay behind now
// (default 15m), each window re-reads overlap (default 30m) behind the
// watermark, and the store's dedup by id drops what adjacent windows
// share, so an event up to settle_delay + overlap late is still
// delivered. Windows are at most an hour long. Pages follow
// @odata.nextLink verbatim, pinned to graph_url's host, and only a page
// without one ends a window: short and empty pages come mid-window. Each
// page's events and its nextLink are checkpointed together; a stored
// nextLink Graph refuses reads its window again from the first page.
//
// A tenant without Entra ID P1/P2 is refused sign-ins: that stream alone
// fails, with the explanation. A start older than what the tenant keeps
// ("Minimum allowed time") is reported as a gap and reading moves past it.
// Authentication is the client credentials grant with a client secret or
// a certificate (an RS256 client assertion with the x5t thumbprint).
package entra

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/jwt"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/source/window"
)

// The provider names of the events, one per stream: each stream has its
// own event shape.
const (
	ProviderDirectoryAudits = "entra_directory_audits"
	ProviderSignIns         = "entra_sign_ins"
	ProviderProvisioning    = "entra_provisioning"
)

// Window arithmetic.
const (
	// precision is Graph's: 7 fraction digits.
	precision = 100 * time.Nanosecond
	// maxWindow caps how far one window moves the watermark.
	maxWindow = time.Hour
	// retentionMargin keeps queries this far inside retention.
	retentionMargin = time.Hour
	// pastMinimum is how far past Graph's "Minimum allowed time" reading
	// resumes, so that the next query is not refused again a moment later.
	pastMinimum = 10 * time.Minute
)

// stream describes one audit log.
type stream struct {
	key      string // the streams key
	path     string // the segment under /v1.0/auditLogs/
	field    string // the time field it filters on
	provider string
	// exclusive: the documented operators are gt and lt, so a closed
	// window is asked as (from - 100ns, to + 100ns).
	exclusive bool
}

var streams = map[string]stream{
	StreamDirectoryAudits: {StreamDirectoryAudits, "directoryAudits", "activityDateTime", ProviderDirectoryAudits, false},
	StreamSignIns:         {StreamSignIns, "signIns", "createdDateTime", ProviderSignIns, false},
	StreamProvisioning:    {StreamProvisioning, "provisioning", "activityDateTime", ProviderProvisioning, true},
}

// Options are the sources' collaborators.
type Options struct {
	// HTTPClient makes every request. Default: httpx.NewClient(cfg.RequestTimeout).
	HTTPClient *http.Client
	// Limiter paces the Graph requests of every stream; sources of one app
	// in one tenant share it. Required.
	Limiter *rate.Limiter
	// Logger receives the sources' logs; each source adds its name under
	// the "source" key. Default: discard.
	Logger *slog.Logger
	// Now is the clock of windows. Default: time.Now.
	Now func() time.Time
	// EndAt, when set, bounds what every stream reads: no window ends
	// after it (a backfill of a past span; see window.Config.EndAt).
	EndAt time.Time
}

// app is what the streams of one New share: the token and the pacing.
type app struct {
	cfg     Config
	http    *http.Client
	limiter *rate.Limiter
	tokens  *httpx.TokenCache
	graph   *url.URL

	mu        sync.Mutex
	notBefore time.Time // the Retry-After the last throttled answer asked for
}

// Source reads one stream of one tenant. It is safe for concurrent use; it
// keeps no state between polls but the shared access token and the
// Retry-After pause.
type Source struct {
	name    string
	st      stream
	app     *app
	engine  *window.Engine
	listURL string
	op      string
	log     *slog.Logger
	now     func() time.Time
}

var _ source.Source = (*Source)(nil)

// New returns one source per configured stream, named name/<stream>, in
// the order of cfg.Streams. cfg must be defaulted and valid; New checks it
// again and does no I/O (the secret or certificate is used when a token is
// needed, so a rotated certificate file is picked up).
func New(name string, cfg Config, opts Options) ([]*Source, error) {
	if name == "" {
		return nil, errors.New("entra: new source: empty name")
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("entra: new source %q: invalid config: %w", name, errors.Join(errs...))
	}
	if opts.Limiter == nil {
		return nil, fmt.Errorf("entra: new source %q: a rate limiter is required", name)
	}
	graph, err := url.Parse(cfg.GraphURL)
	if err != nil {
		return nil, fmt.Errorf("entra: new source %q: graph_url: %w", name, err)
	}
	a := &app{cfg: cfg, http: opts.HTTPClient, limiter: opts.Limiter, graph: graph}
	if a.http == nil {
		a.http = httpx.NewClient(cfg.RequestTimeout.D())
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	tokenURL := cfg.AuthorityURL + "/" + url.PathEscape(cfg.TenantID) + "/oauth2/v2.0/token"
	creds := &httpx.ClientCredentials{
		Op: opToken, TokenURL: tokenURL, Field: "authority_url", Auth: httpx.ClientSecretPost, ClientID: cfg.ClientID,
		ClientSecret: cfg.ClientSecret.Reveal(), Scope: clouds[cfg.Cloud].graph + "/.default", HTTP: a.http,
		Fixes: httpx.TokenFixes{
			Credentials: fixCredentials,
			Scope:       "the scope is the cloud's Graph root + /.default: check cloud (tokens do not cross clouds)",
			Grant:       "Entra ID has no app with this client_id in tenant_id: check both, and cloud (an app registration lives in one cloud)",
			NotFound:    "check authority_url: the token endpoint is authority_url/<tenant_id>/oauth2/v2.0/token",
		},
	}
	if cfg.CertificateFile != "" {
		creds.Auth, creds.ClientSecret = httpx.PrivateKeyJWT, ""
		creds.Assertion = func() (string, error) { return assertion(cfg, tokenURL) }
	}
	// Tokens follow the wall clock, not opts.Now: a test clock for
	// windows must not freeze token expiry.
	a.tokens = httpx.NewTokenCache(opToken, func(ctx context.Context) (string, time.Duration, error) {
		tok, ttl, err := creds.Fetch(ctx)
		return tok, ttl, tokenFix(err)
	}, time.Now)

	out := make([]*Source, 0, len(cfg.Streams))
	for _, key := range cfg.Streams {
		st := streams[key]
		sname := name + "/" + key
		s := &Source{name: sname, st: st, app: a, op: "entra: read " + key, log: log.With("source", sname), now: now,
			listURL: cfg.GraphURL + "/v1.0/auditLogs/" + st.path}
		s.engine, err = window.New(window.Config{
			Name: sname, Provider: st.provider, Precision: precision,
			SettleDelay: cfg.SettleDelay.D(), Overlap: cfg.Overlap.D(), Lookback: cfg.Lookback.D(),
			Retention: cfg.Retention.D(), RetentionMargin: retentionMargin,
			GapReason: fmt.Sprintf("older than the %v the tenant keeps (retention)", cfg.Retention),
			MaxWindow: maxWindow, Closed: true, OnRefused: window.RestartWindow, PosKey: window.PosNext,
			CheckPos: s.checkLink, EndAt: opts.EndAt, Now: now, Logger: s.log,
		}, (*fetcher)(s))
		if err != nil {
			return nil, fmt.Errorf("entra: new source %q: %w", sname, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// Name returns the source's name, <name>/<stream>.
func (s *Source) Name() string { return s.name }

// Stream returns the stream's key in streams, such as sign_ins.
func (s *Source) Stream() string { return s.st.key }

// Fingerprint identifies what the source reads:
// "entra|<tenant_id>|<graph host>|<stream>". A stored cursor with another
// fingerprint is never resumed.
func (s *Source) Fingerprint() string {
	return "entra|" + strings.ToLower(s.app.cfg.TenantID) + "|" + strings.ToLower(s.app.graph.Host) + "|" + s.st.key
}

// Poll reads the next page of the stream. A start older than the tenant
// keeps is reported as a gap, and the next poll starts past it.
func (s *Source) Poll(ctx context.Context, cur source.Cursor) (source.Page, error) {
	p, err := s.engine.Poll(ctx, cur)
	var mt *minTimeError
	if errors.As(err, &mt) {
		return s.pastRetention(cur, mt)
	}
	return p, err
}

// pastRetention answers Graph's "Minimum allowed time": the span from the
// refused start to just past the minimum is a gap, and the cursor moves
// there, so the query is never repeated.
func (s *Source) pastRetention(cur source.Cursor, mt *minTimeError) (source.Page, error) {
	resume := mt.min.Add(pastMinimum).Truncate(precision)
	if !resume.After(mt.from) {
		mt.err.Fix = "Graph refused a start it says it serves: check this host's clock"
		return source.Page{}, mt
	}
	info, _ := s.engine.Describe(cur) // the engine has just decoded it
	if info.Watermark.After(resume) {
		resume = info.Watermark
	}
	next, err := s.engine.CursorAt(resume)
	if err != nil {
		return source.Page{}, &delivery.Error{Class: delivery.Permanent, Op: s.op, Msg: "move past the tenant's retention", Err: err,
			Fix: "set retention to what the tenant keeps (7d for Free, 30d for P1/P2) and check this host's clock"}
	}
	from := mt.from
	if wm := info.Watermark; wm.After(from) && wm.Before(resume) {
		from = wm
	}
	reason := fmt.Sprintf("older than the tenant keeps its %s (Graph's minimum allowed time is %s): if it is a Free tenant, set retention: 7d",
		s.st.path, mt.min.Format(time.RFC3339))
	s.log.Warn("entra: events are lost: the start is older than the tenant keeps; moving past it",
		"from", from, "resume", resume, "err", mt)
	return source.Page{Next: next, Watermark: resume, DedupHorizon: resume, More: true,
		Gap: &source.Gap{From: from, To: resume, Reason: reason}}, nil
}

// Describe decodes a stored cursor for display.
func (s *Source) Describe(cur source.Cursor) (window.Info, error) { return s.engine.Describe(cur) }

// CursorAt returns a cursor that starts reading exactly at t, for
// `auditrelay checkpoint set` and `auditrelay backfill`. It refuses an
// instant in the future or older than retention.
func (s *Source) CursorAt(t time.Time) (source.Cursor, error) { return s.engine.CursorAt(t) }

// Check proves the credentials, the permissions and, for sign-ins, the
// licence: a token and one event of the last hour.
func (s *Source) Check(ctx context.Context) error {
	now := s.now().UTC().Truncate(precision)
	_, err := s.read(ctx, s.firstURL(window.Window{From: now.Add(-time.Hour), To: now}, 1))
	return err
}

// firstURL is the first page of window w: the closed window as the
// stream's documented operators say it, $top events a page.
func (s *Source) firstURL(w window.Window, top int) string {
	lo, hi, from, to := "ge", "le", w.From, w.To
	if s.st.exclusive {
		lo, hi, from, to = "gt", "lt", from.Add(-precision), to.Add(precision)
	}
	f := s.st.field + " " + lo + " " + from.UTC().Format(timeLayout) + " and " + s.st.field + " " + hi + " " + to.UTC().Format(timeLayout)
	return s.listURL + "?$top=" + strconv.Itoa(top) + "&$filter=" + strings.ReplaceAll(url.QueryEscape(f), "+", "%20")
}

// timeLayout writes Graph's DateTimeOffset literals: UTC, 7 fraction digits.
const timeLayout = "2006-01-02T15:04:05.0000000Z"

// checkLink checks that a stored or served nextLink is an absolute URL of
// this stream on graph_url's host, so the token is never sent elsewhere.
func (s *Source) checkLink(raw string) error {
	g := s.app.graph
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.User != nil || u.Fragment != "" || !strings.EqualFold(u.Scheme, g.Scheme) ||
		!strings.EqualFold(u.Host, g.Host) || u.Path != g.Path+"/v1.0/auditLogs/"+s.st.path ||
		strings.ContainsFunc(raw, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
		return fmt.Errorf("%q is not a %s link of %s", httpx.OneLine(raw, 200), s.st.path, g.Host)
	}
	return nil
}

// fetcher is the Source as the window engine's Fetcher.
type fetcher Source

func (f *fetcher) Open(_ context.Context, w window.Window) (string, error) {
	s := (*Source)(f)
	return s.firstURL(w, s.app.cfg.PageSize), nil
}

func (f *fetcher) Fetch(ctx context.Context, w window.Window, pos string) (window.Result, error) {
	res, err := (*Source)(f).read(ctx, pos)
	var mt *minTimeError
	if errors.As(err, &mt) {
		mt.from = w.From
	}
	return res, err
}

// Refused reports whether err is Graph refusing a stored nextLink: a 400
// or 404 of the reports other than retention's "Minimum allowed time"
// ("Invalid Skip Token", an expired $skiptoken). The engine asks only of
// stored links; a refusal of a window's first page stays permanent.
func (f *fetcher) Refused(err error) bool {
	var mt *minTimeError
	var e *delivery.Error
	return !errors.As(err, &mt) && errors.As(err, &e) && e.Op == f.op &&
		(e.Status == http.StatusBadRequest || e.Status == http.StatusNotFound)
}

// assertion signs a fresh client assertion for the token endpoint with
// the app's certificate key: RS256, the certificate's x5t.
func assertion(cfg Config, aud string) (string, error) {
	cert, key, err := loadCertificate(cfg.CertificateFile, cfg.PrivateKeyFile)
	if err != nil {
		return "", err
	}
	sum := sha1.Sum(cert.Raw)
	var jti [16]byte
	_, _ = rand.Read(jti[:]) // never fails
	now := time.Now()
	return jwt.SignHeader(key, jwt.Header{X5t: base64.RawURLEncoding.EncodeToString(sum[:])}, map[string]any{
		"iss": cfg.ClientID, "sub": cfg.ClientID, "aud": aud, "jti": hex.EncodeToString(jti[:]),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	})
}

// loadCertificate reads the first certificate of certFile and its RSA
// private key, from keyFile when set, else from certFile. Its errors never
// quote the key.
func loadCertificate(certFile, keyFile string) (*x509.Certificate, *rsa.PrivateKey, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate_file: %w (make it readable by auditrelay's user)", err)
	}
	var cert *x509.Certificate
	for rest := certPEM; cert == nil; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, nil, fmt.Errorf("certificate_file %s: no PEM CERTIFICATE block (convert a .pfx with `openssl pkcs12 -in app.pfx -nodes -out app.pem`)", certFile)
		}
		if b.Type == "CERTIFICATE" {
			if cert, err = x509.ParseCertificate(b.Bytes); err != nil {
				return nil, nil, fmt.Errorf("certificate_file %s: the certificate does not parse: %w", certFile, err)
			}
		}
	}
	keyPEM, field := certPEM, "certificate_file"
	if keyFile != "" {
		if keyPEM, err = os.ReadFile(keyFile); err != nil {
			return nil, nil, fmt.Errorf("private_key_file: %w (make it readable by auditrelay's user)", err)
		}
		field = "private_key_file"
	}
	signer, err := jwt.ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", field, err)
	}
	key, ok := signer.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%s: the key is not RSA; Entra ID certificate credentials are RSA", field)
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(key.Public()) {
		return nil, nil, fmt.Errorf("%s: the private key is not the certificate's", field)
	}
	return cert, key, nil
}
