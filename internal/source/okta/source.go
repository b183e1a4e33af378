// Package okta reads an Okta org's System Log (/api/v1/logs) in polling
// mode: one query from a past since, then the API's own next link for
// ever. Polling mode orders events by the time Okta committed them, so an
// event committed late is still read, after the ones before it; no settle
// delay is needed and no window edge can skip or repeat an event. The next
// link is the cursor, stored with each page; an empty page means caught up.
// A refused link starts the stream again a little behind the watermark and
// the store's dedup (by uuid) drops what was read twice.
//
// Authentication is an API Services app with private_key_jwt (a client
// assertion signed with the app's key, for an access token with the
// okta.logs.read scope), or an SSWS API token. Requests are paced by a
// token bucket (rate_limit) and by the X-Rate-Limit-* headers of each
// answer: near the end of the minute's budget the source waits for its
// reset, and a 429 waits for it too.
package okta

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

// Provider is the provider name of Okta events.
const Provider = "okta"

// The operations errors are reported under.
const (
	opToken = "okta: get token"
	opLogs  = "okta: read system log"
)

// Options are a Source's collaborators.
type Options struct {
	// HTTPClient makes every request. Default: httpx.NewClient(cfg.RequestTimeout).
	HTTPClient *http.Client
	// Limiter paces System Log requests; sources reading one org share it.
	// Required.
	Limiter *rate.Limiter
	// Logger receives the source's logs; the caller attaches the source's
	// name. Default: discard.
	Logger *slog.Logger
	// Now is the clock of the stream's watermark. Default: time.Now.
	Now func() time.Time
	// EndAt, when set, makes the source read the past up to it in
	// windows of published time through bounded queries, instead of
	// following the polling stream (a backfill; see window.Config.EndAt).
	EndAt time.Time
}

// Source reads one org's System Log. It is safe for concurrent use; it
// keeps no state between polls but its access token and the rate-limit
// pause the last answer asked for.
type Source struct {
	name    string
	cfg     Config
	http    *http.Client
	limiter *rate.Limiter
	log     *slog.Logger
	now     func() time.Time
	org     *url.URL
	stream  *window.Stream
	windows *window.Engine // set when the source is bounded (Options.EndAt)

	creds  *httpx.ClientCredentials
	tokens *httpx.TokenCache

	mu        sync.Mutex
	notBefore time.Time // the rate-limit reset the last answer asked to wait for
}

var _ source.Source = (*Source)(nil)

// New returns the source named name. cfg must be defaulted and valid; New
// checks it again and does no I/O (the private key is read when a token is
// needed, so a rotated key file is picked up).
func New(name string, cfg Config, opts Options) (*Source, error) {
	if name == "" {
		return nil, errors.New("okta: new source: empty name")
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("okta: new source %q: invalid config: %w", name, errors.Join(errs...))
	}
	if opts.Limiter == nil {
		return nil, fmt.Errorf("okta: new source %q: a rate limiter is required", name)
	}
	org, err := url.Parse(cfg.OrgURL)
	if err != nil {
		return nil, fmt.Errorf("okta: new source %q: org_url: %w", name, err)
	}
	s := &Source{name: name, cfg: cfg, http: opts.HTTPClient, limiter: opts.Limiter, log: opts.Logger, now: opts.Now, org: org}
	if s.http == nil {
		s.http = httpx.NewClient(cfg.RequestTimeout.D())
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.Auth == AuthOAuth {
		tokenURL := cfg.OrgURL + "/oauth2/v1/token"
		s.creds = &httpx.ClientCredentials{
			Op: opToken, TokenURL: tokenURL, Field: "org_url", Auth: httpx.PrivateKeyJWT, ClientID: cfg.ClientID,
			Scope: Scope, HTTP: s.http, Assertion: func() (string, error) { return s.assertion(tokenURL) },
			Fixes: httpx.TokenFixes{
				Credentials: "the org refused the app's client assertion: check client_id, that private_key_file holds the private key whose public key is on the app (Client authentication: Public key / Private key), key_id when the app has several keys, and this host's clock",
				Scope:       "grant the okta.logs.read scope to the app (its Okta API Scopes tab; a Super Administrator must grant it)",
				Grant:       "the app must be an API Services app with the Client Credentials grant",
				NotFound:    "check org_url: the org authorization server's token endpoint is org_url/oauth2/v1/token",
			},
		}
		s.tokens = httpx.NewTokenCache(opToken, s.creds.Fetch, time.Now)
	}
	s.stream, err = window.NewStream(window.StreamConfig{
		Name: name, Provider: Provider, Precision: time.Millisecond, Lookback: cfg.Lookback.D(),
		Retention: Retention, RetentionMargin: time.Hour, GapReason: "older than the 90 days an org keeps its System Log",
		Restart: cfg.Restart.D(), DedupWindow: max(cfg.Restart.D(), time.Hour), CheckPos: s.checkLink,
		Now: s.now, Logger: s.log,
	}, (*fetcher)(s))
	if err != nil {
		return nil, fmt.Errorf("okta: new source %q: %w", name, err)
	}
	if !opts.EndAt.IsZero() {
		if s.windows, err = s.newBounded(opts.EndAt); err != nil {
			return nil, fmt.Errorf("okta: new source %q: %w", name, err)
		}
	}
	return s, nil
}

// Name returns the source's configured name.
func (s *Source) Name() string { return s.name }

// Fingerprint identifies what the source reads: "okta|<org host>". A stored
// cursor with another fingerprint is never resumed.
func (s *Source) Fingerprint() string { return Provider + "|" + strings.ToLower(s.org.Host) }

// Poll reads the page at the stored next link (or starts the stream); a
// bounded source reads the next page of its windows.
func (s *Source) Poll(ctx context.Context, cur source.Cursor) (source.Page, error) {
	if s.windows != nil {
		return s.windows.Poll(ctx, cur)
	}
	return s.stream.Poll(ctx, cur)
}

// Describe decodes a stored cursor for display.
func (s *Source) Describe(cur source.Cursor) (window.Info, error) { return s.stream.Describe(cur) }

// CursorAt returns a cursor that starts reading at t, for `auditrelay
// checkpoint set`.
func (s *Source) CursorAt(t time.Time) (source.Cursor, error) { return s.stream.CursorAt(t) }

// Check proves the credentials: a token (for oauth) and one event of the
// last minute.
func (s *Source) Check(ctx context.Context) error {
	since := s.now().UTC().Add(-time.Minute)
	_, err := s.read(ctx, s.startURL(since, 1))
	return err
}

// assertion signs a fresh client assertion for the token endpoint.
func (s *Source) assertion(aud string) (string, error) {
	pemBytes, err := os.ReadFile(s.cfg.PrivateKeyFile)
	if err != nil {
		return "", fmt.Errorf("private_key_file: %w (make it readable by auditrelay's user)", err)
	}
	key, err := jwt.ParsePrivateKey(pemBytes)
	if err != nil {
		return "", fmt.Errorf("private_key_file %s: %w", s.cfg.PrivateKeyFile, err)
	}
	var jti [16]byte
	_, _ = rand.Read(jti[:]) // never fails
	now := time.Now()
	return jwt.Sign(key, s.cfg.KeyID, map[string]any{
		"iss": s.cfg.ClientID, "sub": s.cfg.ClientID, "aud": aud,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": hex.EncodeToString(jti[:]),
	})
}

// startURL is the first page of a polling stream from since.
func (s *Source) startURL(since time.Time, limit int) string {
	q := url.Values{"since": {since.UTC().Format("2006-01-02T15:04:05.000Z")}, "sortOrder": {"ASCENDING"}, "limit": {strconv.Itoa(limit)}}
	return s.cfg.OrgURL + "/api/v1/logs?" + q.Encode()
}

// checkLink checks that a stored or served next link is an absolute URL of
// the org's /api/v1/logs, so the token is never sent elsewhere.
func (s *Source) checkLink(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || !strings.EqualFold(u.Scheme, s.org.Scheme) || !strings.EqualFold(u.Host, s.org.Host) || u.Path != "/api/v1/logs" {
		return fmt.Errorf("%q is not a System Log link of %s", truncate(raw, 200), s.org.Host)
	}
	return nil
}

// fetcher is the Source as the stream engine's StreamFetcher.
type fetcher Source

func (f *fetcher) Start(_ context.Context, since time.Time) (string, error) {
	s := (*Source)(f)
	return s.startURL(since, s.cfg.PageSize), nil
}

func (f *fetcher) Fetch(ctx context.Context, pos string) (window.Result, error) {
	return (*Source)(f).read(ctx, pos)
}

// Refused reports whether err is the org refusing a stored next link: a
// 400 or 404 of the System Log.
func (f *fetcher) Refused(err error) bool {
	var e *delivery.Error
	return errors.As(err, &e) && e.Op == opLogs && (e.Status == http.StatusBadRequest || e.Status == http.StatusNotFound)
}

// truncate returns s cut to at most n bytes for a message.
func truncate(s string, n int) string { return httpx.OneLine(s, n) }
