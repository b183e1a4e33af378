package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/sink/sentinel"
	"github.com/auditrelay/auditrelay/internal/source/cyberark"
	"github.com/auditrelay/auditrelay/internal/source/pingone"
)

// Normalize maps an event of any provider to the canonical event, for
// sinks that write canonical fields. A provider without a normalizer gives
// the envelope only; the raw event is always kept. Data that is not a JSON
// object is an error, whatever the provider.
func Normalize(r event.Raw) (event.Event, error) {
	switch r.Provider {
	case pingone.Provider:
		return pingone.Normalize(r)
	case cyberark.Provider:
		return cyberark.Normalize(r)
	}
	if d := bytes.TrimSpace(r.Data); len(d) == 0 || d[0] != '{' || !json.Valid(d) {
		return event.Event{}, fmt.Errorf("%s event %q: not a JSON object", r.Provider, r.ID)
	}
	return event.Event{Time: r.Time, Provider: r.Provider, Tenant: r.Tenant, Source: r.Source, ID: r.ID,
		Outcome: event.OutcomeUnknown, Raw: r.Data}, nil
}

// buildSentinel fills b with a Sentinel sink and its metrics.
func buildSentinel(b *Sink, c sentinel.Config, log *slog.Logger, dataDir string) {
	s := sentinel.New(c, sentinel.Options{
		HTTPClient: httpx.NewClient(c.RequestTimeout.D()),
		Normalize:  Normalize,
		ParkPath:   ParkPath(dataDir, b.Name),
		Logger:     log.With("sink", b.Name),
	})
	b.Sink, b.Batch, b.Check = s, c.BatchSize, s.Check
	labels := prometheus.Labels{"sink": b.Name}
	counter := func(name, help string, v func(sentinel.Stats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(v(s.Stats())) })
	}
	b.Collectors = []prometheus.Collector{
		counter("auditrelay_sentinel_rows_total", "Rows acknowledged by the Logs Ingestion API.", func(s sentinel.Stats) int64 { return s.Rows }),
		counter("auditrelay_sentinel_calls_total", "Logs Ingestion API calls acknowledged (204).", func(s sentinel.Stats) int64 { return s.Calls }),
		counter("auditrelay_sentinel_bytes_total", "Compressed bytes of acknowledged calls.", func(s sentinel.Stats) int64 { return s.Bytes }),
		counter("auditrelay_sentinel_parked_total", "Events that could not be sent and were skipped; each is logged with its id.", func(s sentinel.Stats) int64 { return s.Parked }),
		counter("auditrelay_sentinel_truncated_total", "Field values cut to the 64 KB limit.", func(s sentinel.Stats) int64 { return s.Truncated }),
		counter("auditrelay_sentinel_splits_total", "Calls split again after a 413 from the service.", func(s sentinel.Stats) int64 { return s.Splits }),
		counter("auditrelay_sentinel_old_events_total", "Events sent more than 2 days after they happened, which Log Analytics may stamp with the ingestion time.", func(s sentinel.Stats) int64 { return s.Old }),
	}
}
