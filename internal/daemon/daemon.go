// Package daemon builds auditrelay from its configuration — one switch per
// source and sink kind, no registry — and runs it: the store, the pipeline's
// runners, the metrics and health endpoints and the status socket.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/pipeline"
	"github.com/auditrelay/auditrelay/internal/store"
)

// Options are the daemon's process-level dependencies.
type Options struct {
	Logger *slog.Logger
	// Stdout receives the stdout sink's events.
	Stdout io.Writer
	// Version is reported in metrics and status.
	Version string
}

// Daemon is a configured, runnable auditrelay.
type Daemon struct {
	cfg     *config.Config
	log     *slog.Logger
	version string
	sources []Source
	sinks   []Sink
	reg     *prometheus.Registry
	metrics *pipeline.Metrics
	health  *pipeline.Health
	samples *sampler

	mu    sync.Mutex
	store store.Store
	ready bool
	// runCtx and runWG run the backfills a running daemon starts;
	// backfills holds the names of those running.
	runCtx    context.Context
	runWG     sync.WaitGroup
	backfills map[string]bool
	// bfMu serializes backfill requests: each is checked against the
	// store and recorded before the next.
	bfMu sync.Mutex
}

// backoff is the retry backoff of every runner.
func (d *Daemon) backoff() delivery.Backoff {
	return delivery.Backoff{Base: time.Second, Max: time.Minute}
}

// New builds a daemon from a loaded configuration. It does no I/O.
func New(cfg *config.Config, opts Options) (*Daemon, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srcs, err := BuildSources(cfg, log)
	if err != nil {
		return nil, err
	}
	sinks, err := BuildSinks(cfg, log, opts.Stdout)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, s := range sinks {
		reg.MustRegister(s.Collectors...)
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "auditrelay_build_info", Help: "Always 1; the version label says which auditrelay runs.",
		ConstLabels: prometheus.Labels{"version": opts.Version},
	}, func() float64 { return 1 }))
	d := &Daemon{cfg: cfg, log: log, version: opts.Version, sources: srcs, sinks: sinks, reg: reg,
		metrics: pipeline.NewMetrics(reg), health: pipeline.NewHealth(), samples: newSampler(), backfills: map[string]bool{}}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "auditrelay_spool_bytes", Help: "Bytes of events in the spool.",
	}, func() float64 { return float64(d.spool(func(s store.Store) int64 { return s.SpoolBytes() })) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "auditrelay_spool_events", Help: "Events in the spool, not yet acknowledged by every sink.",
	}, func() float64 { return float64(d.spool(func(s store.Store) int64 { return s.SpoolCount() })) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "auditrelay_spool_max_bytes", Help: "The spool's size bound (spool_max_bytes).",
	}, func() float64 { return float64(cfg.SpoolMaxBytes) }))
	return d, nil
}

func (d *Daemon) spool(f func(store.Store) int64) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.store == nil {
		return 0
	}
	return f(d.store)
}

// Snapshot returns the store's state while the daemon runs.
func (d *Daemon) Snapshot() (store.Snapshot, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.store == nil {
		return store.Snapshot{}, errors.New("store is not open")
	}
	return d.store.Snapshot()
}

// Run opens the store and runs every source and sink until ctx is done,
// then stops polling, abandons sends in flight without acknowledging them,
// closes the store and returns nil. It returns an error when it cannot
// start: a store it cannot trust, a checkpoint of another environment, a
// metrics address it cannot listen on.
func (d *Daemon) Run(ctx context.Context) error {
	st, where, err := d.openStore(ctx)
	if err != nil {
		return err
	}
	defer func() {
		d.mu.Lock()
		d.store, d.ready = nil, false
		d.mu.Unlock()
		if err := st.Close(); err != nil {
			d.log.Error("close store", "err", err)
		}
	}()
	defer bindKeepers(d.sinks, st)()
	if err := d.verifyCheckpoints(st); err != nil {
		return err
	}
	names := make([]string, len(d.sinks))
	for i, s := range d.sinks {
		names[i] = s.Name
	}
	if err := st.SetSinks(names); err != nil {
		return err
	}
	d.mu.Lock()
	d.store = st
	d.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var servers []*http.Server
	if d.cfg.MetricsListen != "" {
		srv, err := d.serveMetrics(d.cfg.MetricsListen)
		if err != nil {
			return err
		}
		servers = append(servers, srv)
	}
	if srv, err := d.serveStatus(); err != nil {
		d.log.Warn("status socket unavailable; `auditrelay status` cannot read a running daemon", "err", err)
	} else {
		servers = append(servers, srv)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), serverShutdownTimeout)
		defer scancel()
		for _, s := range servers {
			if err := s.Shutdown(sctx); err != nil {
				d.log.Warn("stop server: connections still open at the deadline were closed", "err", err)
				s.Close()
			}
		}
	}()

	var wg sync.WaitGroup
	wg.Go(func() { d.sample(ctx) })
	errc := make(chan error, len(d.sources)+len(d.sinks)+1)
	backoff := d.backoff()
	leaser, shared := st.(store.Leaser)
	var work []pipeline.Work
	// Sources wait for live sinks once the spool holds a quarter of its
	// bound, or DefaultFlowHigh if that is less.
	flow := pipeline.NewFlow(min(int64(pipeline.DefaultFlowHigh), int64(d.cfg.SpoolMaxBytes)/4))
	for _, s := range d.sinks {
		r := &pipeline.SinkRunner{Name: s.Name, Sink: s.Sink, Store: st, Routes: s.Routes, BatchSize: s.Batch, BatchBytes: s.BatchBytes,
			Backoff: backoff, Logger: d.log, Metrics: d.metrics, Health: d.health,
			Park: s.Park, Flow: flow}
		if shared {
			r.Owned = func() bool { return leaser.Holds(store.LeaseSink, s.Name) }
		}
		work = append(work, pipeline.Work{Kind: store.LeaseSink, Name: s.Name, Run: func(ctx context.Context) error {
			if shared {
				// Another replica may write the sink before this one
				// runs it again: closed, a sink reopens its files (and
				// reads their tails again) at its next send.
				defer func() {
					cctx, ccancel := context.WithTimeout(context.Background(), sinkCloseTimeout)
					defer ccancel()
					if err := s.Sink.Close(cctx); err != nil {
						d.log.Warn("close sink", "sink", s.Name, "err", err)
					}
				}()
			}
			if err := r.Run(ctx); err != nil {
				return fmt.Errorf("sink %s: %w", s.Name, err)
			}
			return nil
		}})
	}
	for _, s := range d.sources {
		r := &pipeline.SourceRunner{Name: s.Name, Source: s.Source, Store: st, PollInterval: s.PollInterval,
			SpoolMax: int64(d.cfg.SpoolMaxBytes), Backoff: backoff, Logger: d.log, Metrics: d.metrics, Health: d.health, Flow: flow}
		work = append(work, pipeline.Work{Kind: store.LeaseSource, Name: s.Name, Run: r.Run})
	}
	if shared {
		// Each runner runs on the replica holding its lease.
		c := &pipeline.Coordinator{Leaser: leaser, Work: work, Discover: d.discoverBackfills(st), Logger: d.log, Metrics: d.metrics}
		wg.Go(func() {
			if err := c.Run(ctx); err != nil {
				errc <- err
				cancel()
			}
		})
	} else {
		for _, w := range work {
			wg.Go(func() {
				if err := w.Run(ctx); err != nil {
					errc <- err
					cancel()
				}
			})
		}
	}
	d.mu.Lock()
	d.ready = true
	d.runCtx = ctx
	d.mu.Unlock()
	if !shared {
		d.resumeBackfills(st)
	}
	d.log.Info("auditrelay running", "version", d.version, "sources", len(d.sources), "sinks", len(d.sinks), "store", where)
	<-ctx.Done()
	d.log.Info("stopping: polling stopped, abandoning unacknowledged sends")
	wg.Wait()
	d.mu.Lock()
	d.runCtx = nil
	d.mu.Unlock()
	d.runWG.Wait()
	cctx, ccancel := context.WithTimeout(context.Background(), sinkCloseTimeout)
	closeSinks(cctx, d.sinks, d.log)
	ccancel()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	d.log.Info("stopped cleanly")
	return nil
}

// How long a stopping daemon waits for its sinks to close and its servers
// to finish the requests in flight.
const (
	sinkCloseTimeout      = 10 * time.Second
	serverShutdownTimeout = 2 * time.Second
)

// closeSinks closes every sink at once and waits until each has closed or
// ctx is done, so that a sink stuck on a dead network or disk cannot hold
// the process past its shutdown deadline. Nothing is lost by giving up: an
// unclosed sink's unacknowledged events are still in the spool.
func closeSinks(ctx context.Context, sinks []Sink, log *slog.Logger) {
	done := make(chan string, len(sinks))
	for _, s := range sinks {
		go func() {
			if err := s.Sink.Close(ctx); err != nil {
				log.Warn("close sink", "sink", s.Name, "err", err)
			}
			done <- s.Name
		}()
	}
	open := map[string]bool{}
	for _, s := range sinks {
		open[s.Name] = true
	}
	for len(open) > 0 {
		select {
		case name := <-done:
			delete(open, name)
		case <-ctx.Done():
			names := make([]string, 0, len(open))
			for n := range open {
				names = append(names, n)
			}
			sort.Strings(names)
			log.Error("sinks did not close before the shutdown deadline; their unacknowledged events stay in the spool and are sent at the next start",
				"sinks", strings.Join(names, ","), "err", ctx.Err())
			return
		}
	}
}

// serve runs srv on ln until it is shut down, and logs the reason when it
// stops serving for any other.
func (d *Daemon) serve(what string, srv *http.Server, ln net.Listener) {
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error(what+" stopped serving", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

func (d *Daemon) verifyCheckpoints(st store.Store) error {
	var errs []error
	for _, s := range d.sources {
		_, fp, err := st.Cursor(s.Name)
		if err != nil {
			return err
		}
		if want := s.Source.Fingerprint(); fp != "" && fp != want {
			errs = append(errs, fmt.Errorf("source %s: the stored checkpoint is for %s but the configuration now reads %s: refusing to resume from it; if the change is intended run `auditrelay checkpoint reset --source %s --config FILE`, which starts that source over from its lookback",
				s.Name, fp, want, s.Name))
		}
	}
	return errors.Join(errs...)
}

// serveMetrics serves /metrics, the status page and /status.json (behind
// metrics_auth when it is set) and the probes /healthz and /readyz (never
// behind it), over HTTPS when metrics_tls is set.
func (d *Daemon) serveMetrics(addr string) (*http.Server, error) {
	tlsCfg, err := metricsTLSConfig(d.cfg.MetricsTLS)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen %s: %w", addr, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	auth := newMetricsAuth(d.cfg.MetricsAuth)
	mux := http.NewServeMux()
	mux.Handle("/metrics", auth.wrap(promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{Registry: d.reg})))
	mux.Handle("/{$}", auth.wrap(newStatusPage()))
	mux.Handle("GET /status.json", auth.wrap(http.HandlerFunc(d.serveStatusJSON)))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		ready := d.ready
		d.mu.Unlock()
		failed := d.health.Failed()
		if !ready || len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			if !ready {
				io.WriteString(w, "starting\n")
			}
			keys := make([]string, 0, len(failed))
			for k := range failed {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "%s: %s\n", k, failed[k])
			}
			return
		}
		io.WriteString(w, "ready\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	d.serve("metrics server", srv, ln)
	d.log.Info("serving metrics", "addr", ln.Addr().String(), "tls", tlsCfg != nil, "auth", d.cfg.MetricsAuth != nil)
	return srv, nil
}
