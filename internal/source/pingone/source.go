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

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/time/rate"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/source"
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
	oauth   *clientcredentials.Config
	maxBody int64

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
	style := oauth2.AuthStyleInHeader
	if cfg.TokenAuthMethod == AuthPost {
		style = oauth2.AuthStyleInParams
	}
	s.oauth = &clientcredentials.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret.Reveal(),
		TokenURL:     strings.TrimRight(cfg.AuthURL, "/") + "/" + url.PathEscape(cfg.EnvironmentID) + "/as/token",
		AuthStyle:    style,
	}
	// Tokens follow the wall clock, not opts.Now: a fixed clock for
	// windows must not freeze token expiry.
	s.tokens = httpx.NewTokenCache(opToken, s.fetchToken, time.Now)
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
	now := s.now().UTC()
	limit := now.Add(-MaxLookback + retentionMargin).Truncate(time.Millisecond)
	var c cursor
	if len(cur) == 0 {
		c.Until = now.Add(-s.cfg.Lookback.D()).Truncate(time.Millisecond)
		// A lookback of the full 14 days is a choice, not a loss: start at
		// the oldest instant the API serves without reporting a gap.
		c.Until = later(c.Until, limit)
	} else {
		var err error
		if c, err = decodeCursor(cur); err != nil {
			return source.Page{}, &httpx.Error{
				Class: httpx.Permanent, Op: "pingone: poll", Err: err,
				Fix: "the stored checkpoint is not one this source can resume: run `auditrelay checkpoint reset --source " + s.name + " --config FILE`, which starts it over from its lookback",
			}
		}
	}
	if c.inWindow() && c.From.Before(limit) {
		s.log.Warn("pingone: stored window starts too long ago to resume; starting a new window from the watermark",
			"cursor", describeWindow(c), "watermark", c.Until)
		c = cursor{Until: c.Until}
	}
	settled := now.Add(-s.cfg.SettleDelay.D()).Truncate(time.Millisecond)
	if c.inWindow() && c.To.After(settled) {
		// Written by a clock ahead of this one (or with a shorter settle
		// delay): finishing it would read unsettled time.
		s.log.Warn("pingone: stored window ends after now - settle_delay; starting a new window from the watermark",
			"cursor", describeWindow(c), "watermark", c.Until)
		c = cursor{Until: c.Until}
	}
	if c.inWindow() && !s.onAPIHost(c.Next) {
		s.log.Warn("pingone: stored next page is not on the configured API host; restarting its window",
			"cursor", describeWindow(c))
		c.Next = s.firstPageURL(c.From, c.To, s.cfg.PageSize)
	}

	var gap *source.Gap
	first := !c.inWindow()
	if first {
		if c.Until.Before(limit) {
			gap = &source.Gap{From: c.Until, To: limit, Reason: gapReason}
			s.log.Warn("pingone: events are lost: the watermark is older than the activities API serves",
				"watermark", c.Until, "resume", limit)
			c.Until = limit
		}
		to := earlier(settled, c.Until.Add(maxWindowAdvance))
		if !to.After(c.Until) {
			next := cur
			if len(cur) == 0 || gap != nil {
				next = c.encode()
			}
			return source.Page{
				Next:         next,
				Watermark:    c.Until,
				DedupHorizon: later(c.Until.Add(-s.cfg.Overlap.D()), limit),
				Gap:          gap,
			}, nil
		}
		c.From = later(c.Until.Add(-s.cfg.Overlap.D()), limit)
		c.To = to
		c.Next = s.firstPageURL(c.From, c.To, s.cfg.PageSize)
	}

	p, err := s.fetch(ctx, c.Next)
	if err != nil && !first && isCursorRejected(err) {
		s.log.Warn("pingone: next page refused; restarting the window from its first page",
			"cursor", describeWindow(c), "err", err)
		p, err = s.fetch(ctx, s.firstPageURL(c.From, c.To, s.cfg.PageSize))
	}
	if err != nil {
		return source.Page{}, err
	}

	events := make([]event.Raw, 0, len(p.Activities))
	dropped := 0
	for _, a := range p.Activities {
		if a.RecordedAt.Before(c.From) || !a.RecordedAt.Before(c.To) {
			dropped++
			continue
		}
		events = append(events, event.Raw{
			Source:   s.name,
			Provider: Provider,
			Tenant:   s.cfg.EnvironmentID,
			ID:       a.ID,
			Time:     a.RecordedAt,
			Data:     a.Data,
		})
	}
	if dropped > 0 {
		s.log.Debug("pingone: dropped events outside the window", "cursor", describeWindow(c), "events", dropped)
	}

	out := source.Page{Events: events, DedupHorizon: c.From, Gap: gap}
	if p.Next != "" {
		next, err := s.checkNext(p.Next)
		if err != nil {
			return source.Page{}, err
		}
		c.Next = next
		out.Next, out.Watermark, out.More = c.encode(), c.Until, true
	} else {
		done := cursor{Until: c.To}
		out.Next, out.Watermark, out.More = done.encode(), c.To, c.To.Before(settled)
	}
	s.log.Debug("pingone: polled", "cursor", describeWindow(c), "events", len(events),
		"watermark", out.Watermark, "more", out.More)
	return out, nil
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
	return "", &httpx.Error{
		Class: httpx.Permanent,
		Op:    opList,
		Msg:   fmt.Sprintf("next page link leaves the configured API (%s, want %s://%s)", truncate(got, 200), s.apiBase.Scheme, s.apiBase.Host),
		Fix:   "set api_url to the host the API answers from (or fix the proxy that rewrites its links)",
	}
}

// isCursorRejected reports whether err is the API refusing a next-page link
// (an expired or unknown paging cursor).
func isCursorRejected(err error) bool {
	var e *httpx.Error
	return errors.As(err, &e) && e.Op == opList &&
		(e.Status == http.StatusBadRequest || e.Status == http.StatusNotFound)
}

// describeWindow formats the window of c for logs.
func describeWindow(c cursor) string {
	if c.From.IsZero() {
		return "until " + formatTime(c.Until)
	}
	return "[" + formatTime(c.From) + ", " + formatTime(c.To) + ")"
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

// earlier returns the earlier of a and b.
func earlier(a, b time.Time) time.Time {
	if a.After(b) {
		return b
	}
	return a
}
