package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/pipeline"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/source/cyberark"
	"github.com/auditrelay/auditrelay/internal/source/entra"
	"github.com/auditrelay/auditrelay/internal/source/okta"
	"github.com/auditrelay/auditrelay/internal/source/pingone"
)

// Source is a built source with what the runner needs to know about it.
type Source struct {
	Name string
	// Provider and Tenant say what the source reads, for status: the
	// provider's name and its tenant (environment id, org or tenant host,
	// directory id).
	Provider, Tenant string
	Source           source.Source
	PollInterval     time.Duration
	// Check proves credentials and reachability with one small call.
	Check func(context.Context) error
	// Describe renders a stored cursor for people.
	Describe func(source.Cursor) (any, error)
	// Bounded builds the same source reading no further than end, sharing
	// its rate limiter, and CursorAt a cursor starting exactly at an
	// instant: what a backfill reads with. Nil for a source that cannot
	// backfill.
	Bounded  func(end time.Time) (source.Source, error)
	CursorAt func(time.Time) (source.Cursor, error)
	// Beyond says where events older than the API's retention are, for a
	// backfill refused because it asks for them.
	Beyond string
}

// BuildSources constructs every configured source. Sources naming the same
// licence share one rate limiter. It does no I/O.
func BuildSources(cfg *config.Config, log *slog.Logger) ([]Source, error) {
	lims := limiters{}
	var out []Source
	for _, sc := range cfg.Sources {
		switch {
		case sc.PingOne != nil:
			pc := *sc.PingOne
			lim := lims.get("pingone|"+pc.Licence, pc.RateLimit)
			s, err := pingone.New(sc.Name, pc, pingone.Options{
				HTTPClient: httpx.NewClient(pc.RequestTimeout.D()),
				Limiter:    lim,
				Logger:     log.With("source", sc.Name),
			})
			if err != nil {
				return nil, fmt.Errorf("source %s: %w", sc.Name, err)
			}
			name := sc.Name
			bounded := func(end time.Time) (source.Source, error) {
				b, err := pingone.New(name, pc, pingone.Options{
					HTTPClient: httpx.NewClient(pc.RequestTimeout.D()),
					Limiter:    lim,
					Logger:     log.With("source", name+pipeline.BackfillSuffix),
					EndAt:      end,
				})
				if err != nil {
					return nil, fmt.Errorf("source %s: %w", name, err)
				}
				return b, nil
			}
			out = append(out, Source{
				Name: sc.Name, Provider: pingone.Provider, Tenant: pc.EnvironmentID,
				Source: s, PollInterval: pc.PollInterval.D(),
				Check:    s.Check,
				Describe: func(c source.Cursor) (any, error) { return s.Describe(c) },
				Bounded:  bounded, CursorAt: s.CursorFrom,
				Beyond: "PingOne's API serves 14 days; older activities are only in an audit restore (activityRestores), which PingOne support prepares and this backfill does not read",
			})
		case sc.CyberArk != nil:
			s, err := buildCyberArk(sc.Name, *sc.CyberArk, log, lims)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		case sc.Okta != nil:
			s, err := buildOkta(sc.Name, *sc.Okta, log, lims)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		case sc.Entra != nil:
			ss, err := buildEntra(sc.Name, *sc.Entra, log, lims)
			if err != nil {
				return nil, err
			}
			out = append(out, ss...)
		default:
			return nil, fmt.Errorf("source %s: no source type", sc.Name)
		}
	}
	return out, nil
}

// buildCyberArk builds a CyberArk source. Sources reading the same audit
// API share one limiter, like PingOne sources of one licence: rate_limit
// applies to the tenant's API, whatever reads it.
func buildCyberArk(name string, c cyberark.Config, log *slog.Logger, lims limiters) (Source, error) {
	key := "cyberark|" + c.AuditURL
	lim := lims.get(key, c.RateLimit)
	build := func(logName string, end time.Time) (*cyberark.Source, error) {
		s, err := cyberark.New(name, c, cyberark.Options{
			HTTPClient: httpx.NewClient(c.RequestTimeout.D()),
			Limiter:    lim,
			Logger:     log.With("source", logName),
			EndAt:      end,
		})
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", name, err)
		}
		return s, nil
	}
	s, err := build(name, time.Time{})
	if err != nil {
		return Source{}, err
	}
	return Source{
		Name: name, Provider: cyberark.Provider, Tenant: host(c.AuditURL),
		Source: s, PollInterval: c.PollInterval.D(),
		Check:    s.Check,
		Describe: func(cur source.Cursor) (any, error) { return s.Describe(cur) },
		Bounded: func(end time.Time) (source.Source, error) {
			return build(name+pipeline.BackfillSuffix, end)
		},
		CursorAt: s.CursorAt,
		Beyond: fmt.Sprintf("the tenant's audit API serves what it keeps (retention: %v here); events it no longer keeps "+
			"cannot be read through the SIEM integration: raise retention only if the tenant keeps them longer", c.Retention),
	}, nil
}

// host returns the host of a URL, or the URL when it has none.
func host(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return raw
}

// buildOkta builds an Okta source. Sources reading one org share one
// limiter: the org's rate limits are per org and per token, whatever reads.
func buildOkta(name string, c okta.Config, log *slog.Logger, lims limiters) (Source, error) {
	key := "okta|" + strings.ToLower(c.OrgURL)
	lim := lims.get(key, c.RateLimit)
	build := func(logName string, end time.Time) (*okta.Source, error) {
		s, err := okta.New(name, c, okta.Options{
			HTTPClient: httpx.NewClient(c.RequestTimeout.D()),
			Limiter:    lim,
			Logger:     log.With("source", logName),
			EndAt:      end,
		})
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", name, err)
		}
		return s, nil
	}
	s, err := build(name, time.Time{})
	if err != nil {
		return Source{}, err
	}
	return Source{
		Name: name, Provider: okta.Provider, Tenant: host(c.OrgURL),
		Source: s, PollInterval: c.PollInterval.D(),
		Check:    s.Check,
		Describe: func(cur source.Cursor) (any, error) { return s.Describe(cur) },
		Bounded: func(end time.Time) (source.Source, error) {
			return build(name+pipeline.BackfillSuffix, end)
		},
		CursorAt: s.CursorFrom,
		Beyond:   "an org keeps its System Log 90 days; older events exist only where the org exported them (a log stream or a SIEM), which this backfill does not read",
	}, nil
}

// buildEntra builds one source per stream of an entra: block, each named
// <name>/<stream> (and logging under that name). Graph limits the reports
// per app and tenant, so every stream of every block with the same app in
// the same tenant shares one limiter.
func buildEntra(name string, c entra.Config, log *slog.Logger, lims limiters) ([]Source, error) {
	key := "entra|" + c.AuthorityURL + "|" + strings.ToLower(c.TenantID) + "|" + c.ClientID
	lim := lims.get(key, c.RateLimit)
	ss, err := entra.New(name, c, entra.Options{HTTPClient: httpx.NewClient(c.RequestTimeout.D()), Limiter: lim, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", name, err)
	}
	beyond := fmt.Sprintf("Graph serves what the tenant keeps (retention: %v here; 7 days on Free, 30 days on P1/P2); older events "+
		"are only in an export the tenant made (diagnostic settings to a storage account, Event Hubs or Log Analytics), which this backfill does not read", c.Retention)
	out := make([]Source, 0, len(ss))
	for _, s := range ss {
		stream := s.Name()
		bounded := func(end time.Time) (source.Source, error) {
			bs, err := entra.New(name, c, entra.Options{HTTPClient: httpx.NewClient(c.RequestTimeout.D()), Limiter: lim, Logger: log, EndAt: end})
			if err != nil {
				return nil, fmt.Errorf("source %s: %w", name, err)
			}
			for _, b := range bs {
				if b.Name() == stream {
					return b, nil
				}
			}
			return nil, fmt.Errorf("source %s: stream %s is no longer configured", name, stream)
		}
		out = append(out, Source{Name: stream, Provider: "entra", Tenant: c.TenantID, Source: s, PollInterval: c.PollInterval.D(), Check: s.Check,
			Describe: func(cur source.Cursor) (any, error) { return s.Describe(cur) },
			Bounded:  bounded, CursorAt: s.CursorAt, Beyond: beyond})
	}
	return out, nil
}

// limiters are the rate limiters of a configuration, one per API budget
// (a PingOne licence, a CyberArk audit URL, an Okta org, an Entra app in a
// tenant), shared by every source that spends it.
type limiters map[string]*rate.Limiter

// get returns the limiter of key, made at rate requests/s (burst 1) by the
// first source that asks: config checks that the others agree on rate.
func (l limiters) get(key string, rps float64) *rate.Limiter {
	lim := l[key]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(rps), 1)
		l[key] = lim
	}
	return lim
}
