package pingone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/source/window"
)

// Window arithmetic limits.
const (
	// maxWindowAdvance caps how far one window moves the watermark, so that
	// a long catch-up proceeds in bounded windows.
	maxWindowAdvance = 24 * time.Hour
	// retentionMargin keeps queries clear of the edge of the 14 days the
	// activities API serves, so a query is not refused for starting a few
	// moments too early.
	retentionMargin = 5 * time.Minute
	// maxPageBytes bounds the body of one activities page.
	maxPageBytes = 64 << 20
	// checkSpan is the span of the one small query Check makes.
	checkSpan = time.Minute
)

// gapReason is the reason of the Gap reported when a resume is older than
// the API's reach.
const gapReason = "older than the 14 days the activities API serves"

// Options are a Source's collaborators.
type Options struct {
	// HTTPClient makes every request, token and activities. Default:
	// httpx.NewClient(cfg.RequestTimeout).
	HTTPClient *http.Client
	// Limiter paces activities requests. It is shared by every source that
	// reads with the same PingOne licence, since the API's limit is per
	// licence. Required.
	Limiter *rate.Limiter
	// Logger receives the source's logs. The caller attaches the source's
	// name to it under the "source" key (the daemon does). Default: a logger
	// that discards.
	Logger *slog.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// EndAt, when set, bounds what the source reads: no window ends
	// after it (a backfill of a past span; see window.Config.EndAt).
	EndAt time.Time
}

// Source reads the audit activities of one PingOne environment. It is safe
// for concurrent use; it keeps no state between polls but its access token.
type Source struct {
	name    string
	cfg     Config
	http    *http.Client
	limiter *rate.Limiter
	log     *slog.Logger
	now     func() time.Time

	apiBase *url.URL // scheme, host and optional path prefix of api_url
	listURL string   // the activities collection URL, without a query
	maxBody int64
	engine  *window.Engine

	creds  *httpx.ClientCredentials
	tokens *httpx.TokenCache
}

var _ source.Source = (*Source)(nil)

// New returns the source named name. cfg must be defaulted and valid; New
// checks it again and does no I/O.
func New(name string, cfg Config, opts Options) (*Source, error) {
	if name == "" {
		return nil, errors.New("pingone: new source: empty name")
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("pingone: new source %q: invalid config: %w", name, errors.Join(errs...))
	}
	if cfg.APIURL == "" || cfg.AuthURL == "" {
		return nil, fmt.Errorf("pingone: new source %q: api_url and auth_url must be set (call SetDefaults)", name)
	}
	if opts.Limiter == nil {
		return nil, fmt.Errorf("pingone: new source %q: a rate limiter is required", name)
	}
	api, err := url.Parse(apiRoot(cfg.APIURL))
	if err != nil {
		return nil, fmt.Errorf("pingone: new source %q: api_url: %w", name, err)
	}
	s := &Source{
		name:    name,
		cfg:     cfg,
		http:    opts.HTTPClient,
		limiter: opts.Limiter,
		log:     opts.Logger,
		now:     opts.Now,
		apiBase: api,
		maxBody: maxPageBytes,
	}
	if s.http == nil {
		s.http = httpx.NewClient(cfg.RequestTimeout.D())
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.listURL = api.String() + "/v1/environments/" + url.PathEscape(cfg.EnvironmentID) + "/activities"
	auth := httpx.ClientSecretBasic // form-encoded id and secret, as RFC 6749 and x/oauth2 send them
	if cfg.TokenAuthMethod == AuthPost {
		auth = httpx.ClientSecretPost
	}
	s.creds = &httpx.ClientCredentials{
		Op:           opToken,
		TokenURL:     strings.TrimRight(cfg.AuthURL, "/") + "/" + url.PathEscape(cfg.EnvironmentID) + "/as/token",
		Field:        "region/auth_url",
		Auth:         auth,
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret.Reveal(),
		Fixes:        httpx.TokenFixes{Credentials: fixCredentials, Grant: fixGrant, NotFound: fixTokenEnv},
		Message:      tokenMessage,
		HTTP:         s.http,
	}
	// Tokens follow the wall clock, not opts.Now: a fixed clock for
	// windows must not freeze token expiry.
	s.tokens = httpx.NewTokenCache(opToken, s.fetchToken, time.Now)
	s.engine, err = window.New(window.Config{
		Name:            name,
		Provider:        Provider,
		Precision:       time.Millisecond,
		SettleDelay:     cfg.SettleDelay.D(),
		Overlap:         cfg.Overlap.D(),
		Lookback:        cfg.Lookback.D(),
		Retention:       MaxLookback,
		RetentionMargin: retentionMargin,
		GapReason:       gapReason,
		MaxWindow:       maxWindowAdvance,
		OnRefused:       window.RestartWindow,
		PosKey:          window.PosNext,
		CheckPos:        checkLink,
		EndAt:           opts.EndAt,
		Now:             s.now,
		Logger:          s.log,
	}, (*fetcher)(s))
	if err != nil {
		return nil, fmt.Errorf("pingone: new source %q: %w", name, err)
	}
	return s, nil
}

// apiRoot returns api_url without a trailing slash or /v1: the region hosts
// are documented both with and without it.
func apiRoot(apiURL string) string {
	u := strings.TrimRight(apiURL, "/")
	u = strings.TrimSuffix(u, "/v1")
	return strings.TrimRight(u, "/")
}

// Name returns the source's configured name.
func (s *Source) Name() string { return s.name }

// Fingerprint identifies what the source reads:
// "pingone|<environment_id>|<api_url>". A stored cursor with another
// fingerprint is never resumed.
func (s *Source) Fingerprint() string {
	return Provider + "|" + s.cfg.EnvironmentID + "|" + s.apiBase.String()
}

// Poll reads the next page after cur. See the package documentation for the
// windows it walks.
func (s *Source) Poll(ctx context.Context, cur source.Cursor) (source.Page, error) {
	return s.engine.Poll(ctx, cur)
}

// Check verifies the configuration against the API: it gets a token and
// reads at most one activity of the last settled minute. Its errors carry
// the operator's fix.
func (s *Source) Check(ctx context.Context) error {
	to := s.now().UTC().Add(-s.cfg.SettleDelay.D()).Truncate(time.Millisecond)
	if _, err := s.fetch(ctx, s.firstPageURL(to.Add(-checkSpan), to, 1)); err != nil {
		return err
	}
	return nil
}

// firstPageURL returns the URL of the first page of the window [from, to).
func (s *Source) firstPageURL(from, to time.Time, limit int) string {
	q := url.Values{
		"filter": {`recordedAt ge "` + formatTime(from) + `" and recordedAt lt "` + formatTime(to) + `"`},
		"limit":  {strconv.Itoa(limit)},
	}
	// Spaces as %20 rather than '+': both are valid in a query, %20 is the
	// one no server misreads. A literal '+' is already encoded as %2B.
	return s.listURL + "?" + strings.ReplaceAll(q.Encode(), "+", "%20")
}

// onAPIHost reports whether raw is an absolute URL with the scheme and host
// of the configured API.
func (s *Source) onAPIHost(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.User == nil &&
		strings.EqualFold(u.Scheme, s.apiBase.Scheme) && strings.EqualFold(u.Host, s.apiBase.Host)
}

// checkNext resolves a page's next link and checks that it stays on the
// configured API, so that the token is never sent elsewhere.
func (s *Source) checkNext(href string) (string, error) {
	u, err := s.apiBase.Parse(href)
	if err == nil && s.onAPIHost(u.String()) {
		return u.String(), nil
	}
	got := href
	if err == nil {
		got = u.Scheme + "://" + u.Host
	}
	return "", &delivery.Error{
		Class: delivery.Permanent,
		Op:    opList,
		Msg:   fmt.Sprintf("next page link leaves the configured API (%s, want %s://%s)", httpx.OneLine(got, 200), s.apiBase.Scheme, s.apiBase.Host),
		Fix:   "set api_url to the host the API answers from (or fix the proxy that rewrites its links)",
	}
}

// isCursorRejected reports whether err is the API refusing a next-page link
// (an expired or unknown paging cursor).
func isCursorRejected(err error) bool {
	var e *delivery.Error
	return errors.As(err, &e) && e.Op == opList &&
		(e.Status == http.StatusBadRequest || e.Status == http.StatusNotFound)
}

// fetcher is the Source as the window engine's Fetcher.
type fetcher Source

// Open returns the URL of the first page of w: the query is the position.
func (f *fetcher) Open(_ context.Context, w window.Window) (string, error) {
	s := (*Source)(f)
	return s.firstPageURL(w.From, w.To, s.cfg.PageSize), nil
}

// Fetch reads the page of w at the link pos. A stored link that is not on
// the configured API host is never followed, so that the token is never
// sent elsewhere: the window is read again from its first page.
func (f *fetcher) Fetch(ctx context.Context, w window.Window, pos string) (window.Result, error) {
	s := (*Source)(f)
	if !s.onAPIHost(pos) {
		s.log.Warn("pingone: stored next page is not on the configured API host; restarting its window",
			"cursor", "["+formatTime(w.From)+", "+formatTime(w.To)+")")
		pos = s.firstPageURL(w.From, w.To, s.cfg.PageSize)
	}
	p, err := s.fetch(ctx, pos)
	if err != nil {
		return window.Result{}, err
	}
	res := window.Result{Events: make([]event.Raw, 0, len(p.Activities))}
	for _, a := range p.Activities {
		res.Events = append(res.Events, event.Raw{
			Source:   s.name,
			Provider: Provider,
			Tenant:   s.cfg.EnvironmentID,
			ID:       a.ID,
			Time:     a.RecordedAt,
			Data:     a.Data,
		})
	}
	if p.Next != "" {
		if res.Next, err = s.checkNext(p.Next); err != nil {
			return window.Result{}, err
		}
	}
	return res, nil
}

// Refused reports whether err is the API refusing a next-page link (an
// expired or unknown paging cursor): a 400 or 404 of the activities API.
func (f *fetcher) Refused(err error) bool { return isCursorRejected(err) }

// checkLink checks a stored next-page link: an absolute http(s) URL
// without credentials. Whether it is on the API host is checked when it is
// followed (Fetch).
func checkLink(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return errors.New("page is not an absolute http(s) URL")
	}
	return nil
}

// timeLayout is the timestamp format of filters: UTC with millisecond
// precision, the API's own precision.
const timeLayout = "2006-01-02T15:04:05.000Z"

// formatTime formats t as the API expects it.
func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// Describe decodes a stored cursor for display (`auditrelay checkpoint
// show`, `auditrelay status`). A nil cursor (the source never polled)
// gives a zero Info.
func (s *Source) Describe(cur source.Cursor) (window.Info, error) { return s.engine.Describe(cur) }

// CursorAt returns a cursor that resumes reading at t, for `auditrelay
// checkpoint set`: the next window starts at t less the overlap, which
// deduplication absorbs, as after a window that ended at t. It refuses a
// t in the future, or older than the 14 days the activities API serves.
func (s *Source) CursorAt(t time.Time) (source.Cursor, error) {
	now := s.now().UTC()
	t = t.UTC().Truncate(time.Millisecond)
	if t.After(now) {
		return nil, fmt.Errorf("pingone: %s is in the future (now is %s): give an instant that has passed", formatTime(t), formatTime(now))
	}
	if limit := now.Add(-MaxLookback + retentionMargin); t.Before(limit) {
		return nil, fmt.Errorf("pingone: %s is older than the 14 days the activities API serves (the oldest instant it can resume from is %s): give a later instant, or ask PingOne for an audit restore",
			formatTime(t), formatTime(limit.Truncate(time.Millisecond)))
	}
	cur, err := s.engine.CursorUntil(t)
	if err != nil {
		return nil, fmt.Errorf("pingone: cursor at %s: %w", formatTime(t), err)
	}
	return cur, nil
}

// CursorFrom returns a cursor that starts reading exactly at t, with no
// overlap before it, for `auditrelay backfill`: a span read from t does
// not re-read the end of one read before. It refuses what CursorAt
// refuses.
func (s *Source) CursorFrom(t time.Time) (source.Cursor, error) {
	if _, err := s.CursorAt(t); err != nil {
		return nil, err
	}
	cur, err := s.engine.CursorAt(t)
	if err != nil {
		return nil, fmt.Errorf("pingone: cursor from %s: %w", formatTime(t), err)
	}
	return cur, nil
}
