package daemon

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/sink/sekoia"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/source/cyberark"
)

// buildCyberArk builds a CyberArk source. Sources reading the same audit
// API share one limiter, like PingOne sources of one licence: rate_limit
// applies to the tenant's API, whatever reads it.
func buildCyberArk(name string, c cyberark.Config, log *slog.Logger, limiters map[string]*rate.Limiter) (Source, error) {
	key := "cyberark|" + c.AuditURL
	lim := limiters[key]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(c.RateLimit), 1)
		limiters[key] = lim
	}
	s, err := cyberark.New(name, c, cyberark.Options{
		HTTPClient: httpx.NewClient(c.RequestTimeout.D()),
		Limiter:    lim,
		Logger:     log.With("source", name),
	})
	if err != nil {
		return Source{}, fmt.Errorf("source %s: %w", name, err)
	}
	return Source{
		Name: name, Source: s, PollInterval: c.PollInterval.D(),
		Check:    s.Check,
		Describe: func(cur source.Cursor) (any, error) { return s.Describe(cur) },
	}, nil
}

// ParkPath is where a sink that parks events keeps them: an NDJSON file
// under the data directory.
func ParkPath(dataDir, sink string) string { return park.Path(dataDir, sink) }

// buildSekoia fills b with a Sekoia.io sink and its metrics.
func buildSekoia(b *Sink, c sekoia.Config, log *slog.Logger, dataDir string) error {
	s, err := sekoia.New(c, sekoia.Options{
		HTTPClient: httpx.NewClient(c.RequestTimeout.D()),
		Logger:     log.With("sink", b.Name),
		ParkPath:   ParkPath(dataDir, b.Name),
	})
	if err != nil {
		return fmt.Errorf("sink %s: %w", b.Name, err)
	}
	b.Sink, b.Batch, b.Check = s, c.BatchSize, s.Check
	labels := prometheus.Labels{"sink": b.Name}
	counter := func(name, help string, v func(sekoia.Stats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(v(s.Stats())) })
	}
	b.Collectors = []prometheus.Collector{
		counter("auditrelay_sekoia_events_total", "Events acknowledged by the Sekoia.io intake.", func(s sekoia.Stats) int64 { return s.Sent }),
		counter("auditrelay_sekoia_requests_total", "Batch requests to the intake, failed or not.", func(s sekoia.Stats) int64 { return s.Requests }),
		counter("auditrelay_sekoia_parked_total", "Events the intake cannot take (over 250,000 bytes or refused alone), kept in the park file and logged with their id.", func(s sekoia.Stats) int64 { return s.Parked }),
		counter("auditrelay_sekoia_splits_total", "Batches split in two after a 413 or an event id mismatch.", func(s sekoia.Stats) int64 { return s.Splits }),
	}
	return nil
}
