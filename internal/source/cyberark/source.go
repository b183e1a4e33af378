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

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/source/window"
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
	// EndAt, when set, bounds what the source reads: no window ends
	// after it (a backfill of a past span; see window.Config.EndAt).
	EndAt time.Time
}

// Source reads the ISP audit events of one CyberArk tenant through its SIEM
// integration. It is safe for concurrent use; it keeps no state between
// polls but its access token.
type Source struct {
	name    string
	cfg     Config
	http    *http.Client
	limiter *rate.Limiter
	log     *slog.Logger
	now     func() time.Time
	engine  *window.Engine

	creds  *httpx.ClientCredentials
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
	s := &Source{name: name, cfg: cfg, http: opts.HTTPClient, limiter: opts.Limiter, log: opts.Logger, now: opts.Now}
	if s.http == nil {
		s.http = httpx.NewClient(cfg.RequestTimeout.D())
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	// The credentials go in a Basic header as they are, not form-encoded,
	// as CyberArk's own clients send them, or in the form body.
	auth := httpx.ClientSecretBasicRaw
	if cfg.TokenAuthMethod == AuthPost {
		auth = httpx.ClientSecretPost
	}
	s.creds = &httpx.ClientCredentials{
		Op:           opToken,
		TokenURL:     cfg.IdentityURL + "/oauth2/token/" + cfg.AppID,
		Field:        "identity_url",
		Auth:         auth,
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret.Reveal(),
		Scope:        cfg.Scope,
		Fixes:        httpx.TokenFixes{Credentials: fixCredentials, Scope: fixScope, Grant: fixGrant, NotFound: fixApp},
		Message:      apiMessage,
		HTTP:         s.http,
	}
	s.tokens = httpx.NewTokenCache(opToken, func(ctx context.Context) (string, time.Duration, error) {
		tok, ttl, err := s.creds.Fetch(ctx)
		if err == nil {
			s.log.Debug("cyberark: got access token", "expires_in", ttl)
		}
		return tok, ttl, err
	}, s.now)
	at, err := cfg.startAt()
	if err != nil {
		return nil, fmt.Errorf("cyberark: new source %q: start_at: %w", name, err)
	}
	s.engine, err = window.New(window.Config{
		Name:            name,
		Provider:        Provider,
		Precision:       time.Second,
		SettleDelay:     cfg.SettleDelay.D(),
		Overlap:         cfg.Overlap.D(),
		Lookback:        cfg.Lookback.D(),
		Retention:       cfg.Retention.D(),
		RetentionMargin: retentionMargin,
		GapReason:       fmt.Sprintf("older than retention (%v)", cfg.Retention),
		MaxWindow:       maxWindowAdvance,
		StartAt:         at,
		OnRefused:       window.HalveWindow,
		ServerPositions: true,
		PosKey:          window.PosCursorRef,
		EndAt:           opts.EndAt,
		Now:             s.now,
		Logger:          s.log,
	}, (*fetcher)(s))
	if err != nil {
		return nil, fmt.Errorf("cyberark: new source %q: %w", name, err)
	}
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
	return s.engine.Poll(ctx, cur)
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
		return "", &delivery.Error{Class: delivery.Transient, Op: opQuery, Err: err}
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
		return &delivery.Error{Class: delivery.Transient, Op: opResults, Err: err}
	}
	return nil
}

// isCursorRejected reports whether err is the API refusing a results
// cursor (400 or 404 on results: expired or unknown).
func isCursorRejected(err error) bool {
	var e *delivery.Error
	return errors.As(err, &e) && e.Op == opResults &&
		(e.Status == http.StatusBadRequest || e.Status == http.StatusNotFound)
}

// fetcher is the Source as the window engine's Fetcher.
type fetcher Source

// Open creates the query of w: its cursorRef is the first page's position.
func (f *fetcher) Open(ctx context.Context, w window.Window) (string, error) {
	s := (*Source)(f)
	return s.createQuery(ctx, w.From, w.To, s.cfg.PageSize)
}

// Fetch reads the results page at the cursorRef pos. An empty page ends
// the window, whatever cursor it carries.
func (f *fetcher) Fetch(ctx context.Context, _ window.Window, pos string) (window.Result, error) {
	s := (*Source)(f)
	body, err := s.call(ctx, opResults, pathResults, refBody(pos))
	if err != nil {
		return window.Result{}, err
	}
	r, err := decodeResults(body)
	if err != nil {
		return window.Result{}, &delivery.Error{Class: delivery.Transient, Op: opResults, Err: err}
	}
	res := window.Result{Events: make([]event.Raw, 0, len(r.Events))}
	for _, e := range r.Events {
		res.Events = append(res.Events, event.Raw{Source: s.name, Provider: Provider, Tenant: e.Tenant,
			ID: ID(e.Tenant, e.UUID), Time: e.Time, Data: e.Data})
	}
	if len(r.Events) > 0 {
		res.Next = r.Next
	}
	return res, nil
}

// Refused reports whether err is the API refusing a results cursor.
func (f *fetcher) Refused(err error) bool { return isCursorRejected(err) }

// formatTime formats t as cursors and logs show it: UTC, whole seconds.
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// Describe decodes a stored cursor for display (`auditrelay checkpoint
// show`, `auditrelay status`). A nil cursor gives a zero Info.
func (s *Source) Describe(cur source.Cursor) (window.Info, error) { return s.engine.Describe(cur) }

// CursorAt returns a cursor that resumes reading exactly at t, for
// `auditrelay checkpoint set`: like start_at, the next window starts at t
// (in whole seconds) without overlap. It refuses a t in the future, or
// older than retention.
func (s *Source) CursorAt(t time.Time) (source.Cursor, error) {
	now := s.now().UTC()
	t = t.UTC().Truncate(time.Second)
	if t.After(now) {
		return nil, fmt.Errorf("cyberark: %s is in the future (now is %s): give an instant that has passed", formatTime(t), formatTime(now))
	}
	if limit := now.Add(-s.cfg.Retention.D() + retentionMargin); t.Before(limit) {
		return nil, fmt.Errorf("cyberark: %s is older than retention (%v; the oldest instant it can resume from is %s): give a later instant, or raise retention if the tenant keeps events that long",
			formatTime(t), s.cfg.Retention, formatTime(limit))
	}
	cur, err := s.engine.CursorAt(t)
	if err != nil {
		return nil, fmt.Errorf("cyberark: cursor at %s: %w", formatTime(t), err)
	}
	return cur, nil
}
