package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the pipeline's Prometheus metrics. Create them once per
// process with NewMetrics and share them between runners.
type Metrics struct {
	polls      *prometheus.CounterVec
	eventsIn   *prometheus.CounterVec
	duplicates *prometheus.CounterVec
	late       *prometheus.CounterVec
	lateDepth  *prometheus.HistogramVec
	watermark  *prometheus.GaugeVec
	gaps       *prometheus.CounterVec
	paused     *prometheus.GaugeVec
	retries    *prometheus.CounterVec
	up         *prometheus.GaugeVec
	eventsOut  *prometheus.CounterVec
	batches    *prometheus.CounterVec
	offset     *prometheus.GaugeVec
	corrupt    *prometheus.CounterVec
	leaseOwned *prometheus.GaugeVec
	takeovers  *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditrelay_source_polls_total", Help: "Polls by source and result (ok, error).",
		}, []string{"source", "result"}),
		eventsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditrelay_source_events_total", Help: "Events stored in the spool, after dedup.",
		}, []string{"source"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditrelay_source_duplicates_total", Help: "Events dropped because their id was already stored.",
		}, []string{"source"}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditrelay_source_late_events_total",
			Help: "Events first found by an overlap re-read: they became visible after a window had passed their time (settle_delay was too short for them).",
		}, []string{"source"}),
		lateDepth: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "auditrelay_source_late_event_depth_seconds",
			Help:    "How far behind the watermark each late event was found. Near the source's overlap, events later still may be missed: raise settle_delay or overlap.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200},
		}, []string{"source"}),
		watermark: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "auditrelay_source_watermark_seconds", Help: "Unix time before which every event of the source is stored. Alert on time() minus this.",
		}, []string{"source"}),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditrelay_source_gaps_total", Help: "Spans the provider could no longer serve (older than its retention).",
		}, []string{"source"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "auditrelay_source_paused", Help: "1 while polling is paused because the spool is full.",
		}, []string{"source"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditrelay_retries_total", Help: "Retried failures by runner and error class (transient, throttled, permanent, store).",
		}, []string{"runner", "name", "class"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "auditrelay_runner_up", Help: "0 while a runner is halted on a permanent error that needs the operator.",
		}, []string{"runner", "name"}),
		eventsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditrelay_sink_events_total", Help: "Events acknowledged by the sink.",
		}, []string{"sink"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditrelay_sink_batches_total", Help: "Batches acknowledged by the sink.",
		}, []string{"sink"}),
		offset: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "auditrelay_sink_offset", Help: "Spool sequence number the sink has acknowledged up to.",
		}, []string{"sink"}),
		corrupt: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditrelay_sink_corrupt_total", Help: "Unreadable spool records the sink skipped, each kept in its park file.",
		}, []string{"sink"}),
		leaseOwned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "auditrelay_lease_owned", Help: "1 while this replica holds the lease of the source or sink and runs it (shared store only).",
		}, []string{"kind", "name"}),
		takeovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditrelay_lease_takeovers_total", Help: "Leases this replica took: a source or sink it started running, after another replica left, died or handed it over (shared store only).",
		}, []string{"kind"}),
	}
	reg.MustRegister(m.polls, m.eventsIn, m.duplicates, m.late, m.lateDepth, m.watermark, m.gaps, m.paused,
		m.retries, m.up, m.eventsOut, m.batches, m.offset, m.corrupt, m.leaseOwned, m.takeovers)
	return m
}
