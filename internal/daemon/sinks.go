package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/sink"
	"github.com/auditrelay/auditrelay/internal/sink/elasticsearch"
	"github.com/auditrelay/auditrelay/internal/sink/file"
	"github.com/auditrelay/auditrelay/internal/sink/kafka"
	"github.com/auditrelay/auditrelay/internal/sink/sekoia"
	"github.com/auditrelay/auditrelay/internal/sink/sentinel"
	"github.com/auditrelay/auditrelay/internal/sink/splunk"
	"github.com/auditrelay/auditrelay/internal/sink/stdout"
	"github.com/auditrelay/auditrelay/internal/sink/syslog"
)

// Sink is a built sink.
type Sink struct {
	Name   string
	Sink   sink.Sink
	Routes map[string]bool
	Batch  int
	// BatchBytes bounds a batch's spool records; 0: the pipeline's default.
	BatchBytes int
	Check      func(context.Context) error
	// Park keeps the events the sink can never take and the spool records
	// that cannot be decoded, for both the sink and its runner: a park
	// file (shared, so that they rotate it together), or the PostgreSQL
	// store's parked table.
	Park park.Keeper
	// Collectors are the sink's own metrics, registered by New.
	Collectors []prometheus.Collector
	// Parked counts the events the sink parked since the process
	// started; nil for a sink that parks none.
	Parked func() int64
}

// BuildSinks constructs every configured sink. It does no I/O.
func BuildSinks(cfg *config.Config, log *slog.Logger, stdoutW io.Writer) ([]Sink, error) {
	var out []Sink
	for _, sc := range cfg.Sinks {
		routes := map[string]bool{}
		for _, s := range sc.Sources {
			routes[s] = true
		}
		b := Sink{Name: sc.Name, Routes: routes, Park: keeperFor(cfg, sc.Name)}
		switch {
		case sc.File != nil:
			fc := *sc.File
			b.Sink = file.New(fc, log.With("sink", sc.Name))
			b.Batch = fc.BatchSize
			b.Check = func(context.Context) error { return checkWritableDir(filepath.Dir(fc.Path)) }
		case sc.Sentinel != nil:
			buildSentinel(&b, *sc.Sentinel, log)
		case sc.Sekoia != nil:
			if err := buildSekoia(&b, *sc.Sekoia, log); err != nil {
				return nil, err
			}
		case sc.Splunk != nil:
			if err := buildSplunk(&b, *sc.Splunk, cfg.DataDir, log); err != nil {
				return nil, err
			}
		case sc.Elasticsearch != nil:
			if err := buildElasticsearch(&b, *sc.Elasticsearch, cfg.Providers(&sc), log); err != nil {
				return nil, err
			}
		case sc.Syslog != nil:
			if err := buildSyslog(&b, *sc.Syslog, log); err != nil {
				return nil, err
			}
		case sc.Kafka != nil:
			if err := buildKafka(&b, *sc.Kafka, log); err != nil {
				return nil, err
			}
		case sc.Stdout != nil:
			if stdoutW == nil {
				stdoutW = os.Stdout
			}
			b.Sink = stdout.New(*sc.Stdout, stdoutW)
			b.Check = func(context.Context) error { return nil }
		default:
			return nil, fmt.Errorf("sink %s: no sink type", sc.Name)
		}
		out = append(out, b)
	}
	return out, nil
}

func checkWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("file: create %s: %w (make it writable or change file.path)", dir, err)
	}
	f, err := os.CreateTemp(dir, ".auditrelay-check-*")
	if err != nil {
		return fmt.Errorf("file: %s is not writable: %w (make it writable or change file.path)", dir, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// buildSentinel fills b with a Sentinel sink and its metrics.
func buildSentinel(b *Sink, c sentinel.Config, log *slog.Logger) {
	s := sentinel.New(c, sentinel.Options{
		HTTPClient: httpx.NewClient(c.RequestTimeout.D()),
		Normalize:  Normalize,
		Park:       b.Park,
		Logger:     log.With("sink", b.Name),
	})
	b.Sink, b.Batch, b.Check = s, c.BatchSize, s.Check
	counter := statCounter(b.Name, s.Stats)
	b.Parked = func() int64 { return s.Stats().Parked }
	b.Collectors = []prometheus.Collector{
		counter("auditrelay_sentinel_rows_total", "Rows acknowledged by the Logs Ingestion API.", func(s sentinel.Stats) int64 { return s.Rows }),
		counter("auditrelay_sentinel_calls_total", "Logs Ingestion API calls acknowledged (204).", func(s sentinel.Stats) int64 { return s.Calls }),
		counter("auditrelay_sentinel_bytes_total", "Compressed bytes of acknowledged calls.", func(s sentinel.Stats) int64 { return s.Bytes }),
		counter("auditrelay_sentinel_filtered_total", "Events an ASIM format left to the other ASIM format (asim_audit, asim_authentication).", func(s sentinel.Stats) int64 { return s.Filtered }),
		counter("auditrelay_sentinel_parked_total", "Events that could not be sent and were skipped; each is logged with its id.", func(s sentinel.Stats) int64 { return s.Parked }),
		counter("auditrelay_sentinel_truncated_total", "Field values cut to the 64 KB limit.", func(s sentinel.Stats) int64 { return s.Truncated }),
		counter("auditrelay_sentinel_splits_total", "Calls split again after a 413 from the service.", func(s sentinel.Stats) int64 { return s.Splits }),
		counter("auditrelay_sentinel_old_events_total", "Events sent more than 2 days after they happened, which Log Analytics may stamp with the ingestion time.", func(s sentinel.Stats) int64 { return s.Old }),
	}
}

// ParkPath is where a sink that parks events keeps them: an NDJSON file
// under the data directory.
func ParkPath(dataDir, sink string) string { return park.Path(dataDir, sink) }

// buildSekoia fills b with a Sekoia.io sink and its metrics.
func buildSekoia(b *Sink, c sekoia.Config, log *slog.Logger) error {
	s, err := sekoia.New(c, sekoia.Options{
		HTTPClient: httpx.NewClient(c.RequestTimeout.D()),
		Logger:     log.With("sink", b.Name),
		Park:       b.Park,
	})
	if err != nil {
		return fmt.Errorf("sink %s: %w", b.Name, err)
	}
	b.Sink, b.Batch, b.Check = s, c.BatchSize, s.Check
	counter := statCounter(b.Name, s.Stats)
	b.Parked = func() int64 { return s.Stats().Parked }
	b.Collectors = []prometheus.Collector{
		counter("auditrelay_sekoia_events_total", "Events acknowledged by the Sekoia.io intake.", func(s sekoia.Stats) int64 { return s.Sent }),
		counter("auditrelay_sekoia_requests_total", "Batch requests to the intake, failed or not.", func(s sekoia.Stats) int64 { return s.Requests }),
		counter("auditrelay_sekoia_parked_total", "Events the intake cannot take (over 250,000 bytes or refused alone), kept in the park file and logged with their id.", func(s sekoia.Stats) int64 { return s.Parked }),
		counter("auditrelay_sekoia_splits_total", "Batches split in two after a 413 or an event id mismatch.", func(s sekoia.Stats) int64 { return s.Splits }),
	}
	return nil
}

// buildSplunk fills b with a Splunk HEC sink and its metrics. The sink
// keeps its HEC channel in data_dir/splunk/<sink>, so that a restart polls
// the acknowledgments of the same channel.
func buildSplunk(b *Sink, c splunk.Config, dataDir string, log *slog.Logger) error {
	hc, err := splunk.NewHTTPClient(c)
	if err != nil {
		return fmt.Errorf("sink %s: %w", b.Name, err)
	}
	s, err := splunk.New(c, splunk.Options{
		HTTPClient: hc,
		Logger:     log.With("sink", b.Name),
		Park:       b.Park,
		StateDir:   filepath.Join(dataDir, "splunk", b.Name),
	})
	if err != nil {
		return fmt.Errorf("sink %s: %w", b.Name, err)
	}
	b.Sink, b.Check = s, s.Check
	b.Batch, b.BatchBytes = c.BatchSize*splunk.RequestsPerBatch, int(c.MaxRequestBytes)*splunk.RequestsPerBatch
	counter := statCounter(b.Name, s.Stats)
	b.Parked = func() int64 { return s.Stats().Parked }
	b.Collectors = []prometheus.Collector{
		counter("auditrelay_splunk_events_total", "Events acknowledged by HEC (ack true, or code 0 without ack).", func(s splunk.Stats) int64 { return s.Sent }),
		counter("auditrelay_splunk_requests_total", "Event requests to HEC, failed or not.", func(s splunk.Stats) int64 { return s.Requests }),
		counter("auditrelay_splunk_ack_polls_total", "Requests to /services/collector/ack.", func(s splunk.Stats) int64 { return s.AckPolls }),
		counter("auditrelay_splunk_ack_timeouts_total", "Requests sent again because their ackId stayed false for ack_timeout.", func(s splunk.Stats) int64 { return s.AckTimeouts }),
		counter("auditrelay_splunk_parked_total", "Events HEC refused or cannot take, kept in the park file.", func(s splunk.Stats) int64 { return s.Parked }),
		counter("auditrelay_splunk_splits_total", "Requests split after a 413 or an unlocated refusal.", func(s splunk.Stats) int64 { return s.Splits }),
		counter("auditrelay_splunk_resumed_acks_total", "Events of an earlier run acknowledged by their recorded ackId, not sent again.", func(s splunk.Stats) int64 { return s.ResumedAcks }),
	}
	return nil
}

// buildElasticsearch fills b with an Elasticsearch or OpenSearch sink and
// its metrics; providers name the targets Check proves.
func buildElasticsearch(b *Sink, c elasticsearch.Config, providers []string, log *slog.Logger) error {
	hc, err := elasticsearch.NewHTTPClient(c)
	if err != nil {
		return fmt.Errorf("sink %s: %w", b.Name, err)
	}
	s, err := elasticsearch.New(c, elasticsearch.Options{
		HTTPClient: hc,
		Logger:     log.With("sink", b.Name),
		Park:       b.Park,
		Providers:  providers,
	})
	if err != nil {
		return fmt.Errorf("sink %s: %w", b.Name, err)
	}
	b.Sink, b.Batch, b.Check = s, c.BatchSize, s.Check
	counter := statCounter(b.Name, s.Stats)
	b.Parked = func() int64 { return s.Stats().Parked }
	b.Collectors = []prometheus.Collector{
		counter("auditrelay_elasticsearch_events_total", "Documents created (item 201).", func(s elasticsearch.Stats) int64 { return s.Sent }),
		counter("auditrelay_elasticsearch_duplicates_total", "Documents answered 409: already held from an earlier send, counted delivered.", func(s elasticsearch.Stats) int64 { return s.Duplicates }),
		counter("auditrelay_elasticsearch_parked_total", "Events refused by the cluster (mapping errors) or not encodable, kept in the park file.", func(s elasticsearch.Stats) int64 { return s.Parked }),
		counter("auditrelay_elasticsearch_retried_items_total", "Bulk items answered 429 or 5xx, sent again.", func(s elasticsearch.Stats) int64 { return s.Retried }),
		counter("auditrelay_elasticsearch_requests_total", "_bulk requests, failed or not.", func(s elasticsearch.Stats) int64 { return s.Requests }),
		counter("auditrelay_elasticsearch_splits_total", "_bulk requests split in two after a 413.", func(s elasticsearch.Stats) int64 { return s.Splits }),
		counter("auditrelay_elasticsearch_failovers_total", "Requests moved to the next of urls after a connection failure or 5xx.", func(s elasticsearch.Stats) int64 { return s.Failovers }),
	}
	return nil
}

// buildSyslog fills b with a syslog sink and its metrics. It reads the
// sink's ca_file, cert_file and key_file; it opens no connection.
func buildSyslog(b *Sink, c syslog.Config, log *slog.Logger) error {
	s, err := syslog.New(c, syslog.Options{Logger: log.With("sink", b.Name), Park: b.Park})
	if err != nil {
		return fmt.Errorf("sink %s: %w", b.Name, err)
	}
	b.Sink, b.Batch, b.Check = s, c.BatchSize, s.Check
	counter := statCounter(b.Name, s.Stats)
	b.Parked = func() int64 { return s.Stats().Parked }
	b.Collectors = []prometheus.Collector{
		counter("auditrelay_syslog_events_total", "Events acknowledged: written, taken by the receiver's TCP stack and followed by confirm_wait without a close.", func(s syslog.Stats) int64 { return s.Sent }),
		counter("auditrelay_syslog_batches_total", "Batches acknowledged.", func(s syslog.Stats) int64 { return s.Batches }),
		counter("auditrelay_syslog_bytes_total", "Octets of acknowledged batches, frames included.", func(s syslog.Stats) int64 { return s.Bytes }),
		counter("auditrelay_syslog_parked_total", "Events kept in the park file instead of sent: over max_message_bytes, or not JSON.", func(s syslog.Stats) int64 { return s.Parked }),
		counter("auditrelay_syslog_connects_total", "Connections opened to the receiver (TLS handshake done).", func(s syslog.Stats) int64 { return s.Connects }),
		counter("auditrelay_syslog_resent_batches_total", "Batches written again on a new connection after a write failed or the receiver closed before they were acknowledged.", func(s syslog.Stats) int64 { return s.Resent }),
	}
	return nil
}

// buildKafka fills b with a Kafka sink and its metrics. It reads the TLS
// files; the client connects on the first send or check.
func buildKafka(b *Sink, c kafka.Config, log *slog.Logger) error {
	s, err := kafka.New(c, kafka.Options{Logger: log.With("sink", b.Name), Park: b.Park})
	if err != nil {
		return fmt.Errorf("sink %s: %w", b.Name, err)
	}
	b.Sink, b.Batch, b.Check = s, c.BatchSize, s.Check
	counter := statCounter(b.Name, s.Stats)
	b.Parked = func() int64 { return s.Stats().Parked }
	b.Collectors = []prometheus.Collector{
		counter("auditrelay_kafka_events_total", "Records acknowledged by the brokers (acks=all).", func(s kafka.Stats) int64 { return s.Sent }),
		counter("auditrelay_kafka_parked_total", "Events the brokers cannot take (too large or invalid), kept in the park file.", func(s kafka.Stats) int64 { return s.Parked }),
		counter("auditrelay_kafka_retried_total", "Records a send left unacknowledged, sent again or waited for again by the next attempt.", func(s kafka.Stats) int64 { return s.Retried }),
		counter("auditrelay_kafka_errors_total", "Sends that returned an error (transient or permanent).", func(s kafka.Stats) int64 { return s.Errors }),
	}
	return nil
}

// statCounter returns a maker of counters, each reading one field of a
// sink's Stats when scraped and labelled with the sink's name.
func statCounter[S any](sink string, stats func() S) func(name, help string, v func(S) int64) prometheus.Collector {
	labels := prometheus.Labels{"sink": sink}
	return func(name, help string, v func(S) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(v(stats())) })
	}
}
