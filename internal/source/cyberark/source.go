package cyberark

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/source"
)

// Provider is the provider name of CyberArk events.
const Provider = "cyberark"

// API paths under audit_url.
const (
	pathQuery   = "/api/audits/stream/createQuery"
	pathResults = "/api/audits/stream/results"
)

const (
	// maxWindowAdvance caps how far one window moves the watermark, so a
	// catch-up proceeds in bounded windows (and a window whose cursor
	// expires before it is read is halved, see Poll).
	maxWindowAdvance = 24 * time.Hour
	// retentionMargin keeps queries clear of the edge of retention.
	retentionMargin = 5 * time.Minute
	// checkSpan is the span of the one small query Check makes.
	checkSpan = time.Minute
	// apiDateLayout is the date format of createQuery's filter: UTC, whole
	// seconds.
	apiDateLayout = "2006-01-02 15:04:05"
)

// Options are a Source's collaborators.
type Options struct {
	// HTTPClient makes every request. Default: httpx.NewClient(cfg.RequestTimeout).
	HTTPClient *http.Client
	// Limiter paces audit API requests. Required.
	Limiter *rate.Limiter
	// Logger receives the source's logs; the caller attaches the source's
	// name. Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// Source reads the ISP audit events of one CyberArk tenant through its SIEM
// integration. It is safe for concurrent use; it keeps no state between
// polls but its access token.
type Source struct {
	name     string
	cfg      Config
	http     *http.Client
	limiter  *rate.Limiter
	log      *slog.Logger
	now      func() time.Time
	tokenURL string

	tokens *httpx.TokenCache
}

var _ source.Source = (*Source)(nil)

// New returns the source named name. cfg must be defaulted and valid; New
// checks it again and does no I/O.
func New(name string, cfg Config, opts Options) (*Source, error) {
	if name == "" {
		return nil, errors.New("cyberark: new source: empty name")
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("cyberark: new source %q: invalid config: %w", name, errors.Join(errs...))
	}
	if opts.Limiter == nil {
		return nil, fmt.Errorf("cyberark: new source %q: a rate limiter is required", name)
	}
	s := &Source{
		name: name, cfg: cfg, http: opts.HTTPClient, limiter: opts.Limiter, log: opts.Logger, now: opts.Now,
		tokenURL: cfg.IdentityURL + "/oauth2/token/" + cfg.AppID,
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
	s.tokens = httpx.NewTokenCache(opToken, func(ctx context.Context) (string, time.Duration, error) {
		tok, ttl, err := s.fetchToken(ctx)
		if err == nil {
			s.log.Debug("cyberark: got access token", "expires_in", ttl)
		}
		return tok, ttl, err
	}, s.now)
	return s, nil
}

// Name returns the source's configured name.
func (s *Source) Name() string { return s.name }

// Fingerprint identifies what the source reads: "cyberark|<audit_url>". A
// stored cursor with another fingerprint is never resumed.
func (s *Source) Fingerprint() string { return Provider + "|" + s.cfg.AuditURL }

// ID returns the dedup key of an event: its tenantId and uuid.
func ID(tenant, uuid string) string { return tenant + "/" + uuid }

// Poll reads one results page: the next page of the window in progress, or
// the first page of a window it opens with createQuery. See the package
// documentation for the windows it walks.
func (s *Source) Poll(ctx context.Context, cur source.Cursor) (source.Page, error) {
	now := s.now().UTC()
	settled := now.Add(-s.cfg.SettleDelay.D()).Truncate(time.Second)
	limit := now.Add(-s.cfg.Retention.D() + retentionMargin).Truncate(time.Second)
	var c cursor
	overlap := s.cfg.Overlap.D()
	if len(cur) == 0 {
		c.Until = later(now.Add(-s.cfg.Lookback.D()).Truncate(time.Second), limit)
		if at, _ := s.cfg.startAt(); !at.IsZero() {
			// Take over exactly where the earlier collector stopped: no
			// overlap before start_at, even if the first window has to
			// wait for it to settle. A start older than retention is
			// reported as a gap by openWindow, like a resume.
			c.Until, c.Exact = at, true
		}
	} else {
		var err error
		if c, err = decodeCursor(cur); err != nil {
			return source.Page{}, &httpx.Error{Class: httpx.Permanent, Op: "cyberark: poll", Err: err,
				Fix: "the stored checkpoint is not one this source can resume: run `auditrelay checkpoint reset --source " + s.name + " --config FILE`, which starts it over from its lookback"}
		}
	}
	if c.Exact {
		overlap = 0
	}
	if c.inWindow() && (c.From.Before(limit) || c.To.After(settled)) {
		s.log.Warn("cyberark: stored window is outside what can be read now (retention or settle_delay changed, or the clock moved); starting a new window from the watermark",
			"cursor", describeWindow(c), "watermark", c.Until)
		c = cursor{Until: c.Until}
	}
	var gap *source.Gap
	fresh := false // c.Ref comes from a createQuery of this poll
	if !c.inWindow() {
		var idle *source.Page
		var err error
		if c, gap, idle, err = s.openWindow(ctx, cur, c, settled, limit, overlap); err != nil {
			return source.Page{}, err
		} else if idle != nil {
			return *idle, nil
		}
		fresh = true
	}

	body, err := s.call(ctx, opResults, pathResults, refBody(c.Ref))
	if err != nil && isCursorRejected(err) && !fresh {
		// The API no longer accepts the cursor (expired, or unknown): run
		// the window again from its start. A window that cannot be read
		// within a cursor's life is halved, so it always makes progress;
		// dedup drops what was already read.
		if half := c.From.Add(c.To.Sub(c.From) / 2).Truncate(time.Second); half.After(c.Until) {
			c.To = half
		}
		s.log.Warn("cyberark: cursor refused; running its window again", "cursor", describeWindow(c), "err", err)
		ref, qerr := s.createQuery(ctx, c.From, c.To, s.cfg.PageSize)
		if qerr != nil {
			return source.Page{}, qerr
		}
		c.Ref = ref
		fresh = true
		body, err = s.call(ctx, opResults, pathResults, refBody(c.Ref))
	}
	if err != nil {
		var e *httpx.Error
		if isCursorRejected(err) && errors.As(err, &e) {
			// A cursor refused right after it was made: the API is
			// misbehaving, which is worth retrying rather than halting on.
			e.Class = httpx.Transient
		}
		return source.Page{}, err
	}
	r, err := decodeResults(body)
	if err != nil {
		return source.Page{}, &httpx.Error{Class: httpx.Transient, Op: opResults, Err: err}
	}
	events := make([]event.Raw, 0, len(r.Events))
	dropped := 0
	for _, e := range r.Events {
		if e.Time.Before(c.From) || !e.Time.Before(c.To) {
			dropped++
			continue
		}
		events = append(events, event.Raw{Source: s.name, Provider: Provider, Tenant: e.Tenant,
			ID: ID(e.Tenant, e.UUID), Time: e.Time, Data: e.Data})
	}
	if dropped > 0 {
		s.log.Debug("cyberark: dropped events outside the window", "cursor", describeWindow(c), "events", dropped)
	}
	out := source.Page{Events: events, DedupHorizon: c.From, Gap: gap}
	switch {
	case len(r.Events) == 0 || r.Next == "":
		done := cursor{Until: c.To}
		out.Next, out.Watermark, out.More = done.encode(), c.To, c.To.Before(settled)
	case r.Next == c.Ref:
		// The same cursor again would return the same page forever.
		s.log.Warn("cyberark: results gave back the cursor it was called with; ending the window", "cursor", describeWindow(c))
		done := cursor{Until: c.To}
		out.Next, out.Watermark, out.More = done.encode(), c.To, c.To.Before(settled)
	default:
		c.Ref = r.Next
		out.Next, out.Watermark, out.More = c.encode(), c.Until, true
	}
	s.log.Debug("cyberark: polled", "cursor", describeWindow(c), "events", len(events), "watermark", out.Watermark, "more", out.More)
	return out, nil
}

// openWindow starts the next window after c's watermark with createQuery
// and returns the cursor holding its cursorRef, for Poll to read its first
// page. When no window can start yet it returns the page to answer instead.
func (s *Source) openWindow(ctx context.Context, cur source.Cursor, c cursor, settled, limit time.Time, overlap time.Duration) (cursor, *source.Gap, *source.Page, error) {
	var gap *source.Gap
	if c.Until.Before(limit) {
		gap = &source.Gap{From: c.Until, To: limit, Reason: fmt.Sprintf("older than retention (%v)", s.cfg.Retention)}
		s.log.Warn("cyberark: events are lost: the watermark is older than the API is trusted to serve (retention)",
			"watermark", c.Until, "resume", limit)
		c.Until = limit
	}
	to := earlier(settled, c.Until.Add(maxWindowAdvance))
	if !to.After(c.Until) {
		next := cur
		if len(cur) == 0 || gap != nil {
			next = c.encode()
		}
		return c, gap, &source.Page{Next: next, Watermark: c.Until, DedupHorizon: later(c.Until.Add(-s.cfg.Overlap.D()), limit), Gap: gap}, nil
	}
	c.From = later(c.Until.Add(-overlap), limit)
	c.To = to
	c.Exact = false
	ref, err := s.createQuery(ctx, c.From, c.To, s.cfg.PageSize)
	if err != nil {
		return c, nil, nil, err
	}
	c.Ref = ref
	s.log.Debug("cyberark: window opened", "cursor", describeWindow(c))
	return c, gap, nil, nil
}

// queryJSON is a createQuery body.
type queryJSON struct {
	Query struct {
		PageSize    int `json:"pageSize"`
		FilterModel struct {
			Date struct {
				DateFrom string `json:"dateFrom"`
				DateTo   string `json:"dateTo"`
			} `json:"date"`
			ApplicationCode []listFilter `json:"applicationCode,omitempty"`
		} `json:"filterModel"`
		SortModel []sortJSON `json:"sortModel"`
	} `json:"query"`
}

type listFilter struct {
	Op     string   `json:"op"`
	Params []string `json:"params"`
}

type sortJSON struct {
	FieldName string `json:"field_name"`
	Direction string `json:"direction"`
}

// queryBody returns the createQuery body of the window [from, to): dateFrom
// is from and dateTo the last whole second before to. The bounds' exact
// semantics are not documented; events outside [from, to) are dropped on
// arrival and the next window's overlap re-reads the boundary seconds.
func (s *Source) queryBody(from, to time.Time, pageSize int) []byte {
	var q queryJSON
	q.Query.PageSize = pageSize
	q.Query.FilterModel.Date.DateFrom = from.UTC().Format(apiDateLayout)
	q.Query.FilterModel.Date.DateTo = to.Add(-time.Second).UTC().Format(apiDateLayout)
	if len(s.cfg.ApplicationCodes) > 0 {
		q.Query.FilterModel.ApplicationCode = []listFilter{{Op: "include", Params: s.cfg.ApplicationCodes}}
	}
	q.Query.SortModel = []sortJSON{{FieldName: "timestamp", Direction: "asc"}}
	b, _ := json.Marshal(q) // strings and ints always marshal
	return b
}

func (s *Source) createQuery(ctx context.Context, from, to time.Time, pageSize int) (string, error) {
	body, err := s.call(ctx, opQuery, pathQuery, s.queryBody(from, to, pageSize))
	if err != nil {
		return "", err
	}
	ref, err := decodeQuery(body)
	if err != nil {
		return "", &httpx.Error{Class: httpx.Transient, Op: opQuery, Err: err}
	}
	return ref, nil
}

func refBody(ref string) []byte {
	b, _ := json.Marshal(struct {
		CursorRef string `json:"cursorRef"`
	}{ref})
	return b
}

// Check verifies the configuration against both APIs: it gets a token,
// creates a query over the last settled minute and reads one page of at most
// one event. Its errors carry the operator's fix.
func (s *Source) Check(ctx context.Context) error {
	to := s.now().UTC().Add(-s.cfg.SettleDelay.D()).Truncate(time.Second)
	ref, err := s.createQuery(ctx, to.Add(-checkSpan), to, 1)
	if err != nil {
		return err
	}
	body, err := s.call(ctx, opResults, pathResults, refBody(ref))
	if err != nil {
		return err
	}
	if _, err := decodeResults(body); err != nil {
		return &httpx.Error{Class: httpx.Transient, Op: opResults, Err: err}
	}
	return nil
}

// isCursorRejected reports whether err is the API refusing a results
// cursor (400 or 404 on results: expired or unknown).
func isCursorRejected(err error) bool {
	var e *httpx.Error
	return errors.As(err, &e) && e.Op == opResults &&
		(e.Status == http.StatusBadRequest || e.Status == http.StatusNotFound)
}

func describeWindow(c cursor) string {
	if !c.inWindow() {
		return "until " + formatCursorTime(c.Until)
	}
	return "[" + formatCursorTime(c.From) + ", " + formatCursorTime(c.To) + ")"
}

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if a.After(b) {
		return b
	}
	return a
}
