package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/pipeline"
	"github.com/auditrelay/auditrelay/internal/store"
	"github.com/auditrelay/auditrelay/internal/store/postgres"
)

// BackfillRequest asks to read [From, To) of a configured source again,
// through a cursor of its own.
type BackfillRequest struct {
	Source string    `json:"source"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
}

// BackfillPlan is what a backfill reads: the span asked for, cut where
// the live source began reading (its events from there on are already
// read), and whether it resumes one recorded before.
type BackfillPlan struct {
	Source string        `json:"source"`
	Runner string        `json:"runner"`
	Span   pipeline.Span `json:"span"`
	// Cut says why the span ends before the one asked for; empty when it
	// does not.
	Cut     string `json:"cut,omitempty"`
	Resumed bool   `json:"resumed,omitempty"`
}

// ErrBackfill is the error of a backfill request that cannot be done as
// asked; its message says why and what to ask instead.
var ErrBackfill = errors.New("backfill refused")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBackfill, fmt.Sprintf(format, args...))
}

// planBackfill checks req against the store and records it there: the
// backfill's cursor, under the source's backfill name, starts exactly at
// the span's start. A request for the span of a backfill still in
// progress resumes it.
func (d *Daemon) planBackfill(st store.Store, req BackfillRequest, now time.Time) (BackfillPlan, error) {
	src := d.source(req.Source)
	switch {
	case src == nil:
		return BackfillPlan{}, refuse("source %q is not configured; configured: %v", req.Source, d.cfg.SourceNames())
	case src.Bounded == nil || src.CursorAt == nil:
		return BackfillPlan{}, refuse("source %s is a %s source, which cannot be backfilled", src.Name, src.Provider)
	case !req.From.Before(req.To):
		return BackfillPlan{}, refuse("--from %s is not before --to %s", fmtT(req.From), fmtT(req.To))
	case req.To.After(now):
		return BackfillPlan{}, refuse("--to %s is in the future", fmtT(req.To))
	}
	snap, err := st.Snapshot()
	if err != nil {
		return BackfillPlan{}, err
	}
	runner := pipeline.BackfillName(src.Name)
	var live, prev *store.SourceState
	for i := range snap.Sources {
		switch snap.Sources[i].Name {
		case src.Name:
			live = &snap.Sources[i]
		case runner:
			prev = &snap.Sources[i]
		}
	}
	if live == nil || live.Watermark.IsZero() {
		return BackfillPlan{}, refuse("source %s has not polled yet: run the daemon until it has (`auditrelay status` shows a watermark), so that the backfill stops where the live source starts reading", src.Name)
	}
	if live.ReadFrom.IsZero() {
		return BackfillPlan{}, refuse("the store does not record where source %s started reading (it was written by an earlier auditrelay), so a backfill could send its events twice", src.Name)
	}
	plan := BackfillPlan{Source: src.Name, Runner: runner, Span: pipeline.Span{From: req.From.UTC(), To: req.To.UTC()}}
	if !plan.Span.To.Before(live.ReadFrom) {
		plan.Span.To = live.ReadFrom
		plan.Cut = fmt.Sprintf("the live source has read from %s on: the backfill stops there", fmtT(live.ReadFrom))
	}
	if !plan.Span.From.Before(plan.Span.To) {
		return BackfillPlan{}, refuse("source %s has read everything from %s on, which covers the span asked for", src.Name, fmtT(live.ReadFrom))
	}
	var done []pipeline.Span
	if prev != nil && len(prev.Cursor) > 0 {
		c, err := pipeline.DecodeBackfill(prev.Cursor)
		if err != nil {
			return BackfillPlan{}, fmt.Errorf("backfill %s: the stored backfill is unreadable: %w (stop auditrelay and run `auditrelay checkpoint reset --source %s --config FILE`)", src.Name, err, runner)
		}
		if !c.Finished {
			if c.Span == plan.Span {
				plan.Resumed = true
				return plan, nil
			}
			return BackfillPlan{}, refuse("a backfill of %s %s is in progress (%s read): wait for it to end, or ask for that same span to follow it", src.Name, c.Span, fmtT(prev.Watermark))
		}
		done = c.Done
	}
	for _, s := range done {
		if s.Overlaps(plan.Span) {
			return BackfillPlan{}, refuse("an earlier backfill of %s read %s: ask for a span that does not overlap it (end at --to %s, or start at --from %s)", src.Name, s, fmtT(s.From), fmtT(s.To))
		}
	}
	inner, err := src.CursorAt(plan.Span.From)
	if err != nil {
		return BackfillPlan{}, refuse("%v. %s", err, src.Beyond)
	}
	c := pipeline.BackfillCursor{Span: plan.Span, Done: done, Inner: inner}
	if err := st.SetCursor(runner, src.Source.Fingerprint(), c.Encode(), plan.Span.From); err != nil {
		return BackfillPlan{}, fmt.Errorf("backfill %s: record it: %w", src.Name, err)
	}
	return plan, nil
}

func fmtT(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// backfillRunner returns the runner of a planned backfill.
func (d *Daemon) backfillRunner(st store.Store, plan BackfillPlan) (*pipeline.SourceRunner, error) {
	src := d.source(plan.Source)
	if src == nil || src.Bounded == nil {
		return nil, fmt.Errorf("backfill %s: the source is not configured for it", plan.Source)
	}
	inner, err := src.Bounded(plan.Span.To)
	if err != nil {
		return nil, err
	}
	return &pipeline.SourceRunner{Name: plan.Runner, Source: pipeline.BackfillSource{Name: plan.Source, Inner: inner}, Store: st,
		PollInterval: src.PollInterval, SpoolMax: int64(d.cfg.SpoolMaxBytes), Until: plan.Span.To,
		Backoff: d.backoff(), Logger: d.log, Metrics: d.metrics, Health: d.health}, nil
}

// startBackfill runs a planned backfill in the background of a running
// daemon, once per source at a time.
func (d *Daemon) startBackfill(plan BackfillPlan) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.runCtx == nil || d.store == nil {
		return errors.New("backfill: the daemon is not running")
	}
	if d.backfills[plan.Runner] {
		return nil // already running: it reads the same span
	}
	r, err := d.backfillRunner(d.store, plan)
	if err != nil {
		return err
	}
	d.backfills[plan.Runner] = true
	ctx := d.runCtx
	d.runWG.Go(func() {
		d.log.Info("backfill started", "source", plan.Source, "from", plan.Span.From, "to", plan.Span.To, "resumed", plan.Resumed)
		if err := r.Run(ctx); err != nil {
			d.log.Error("backfill stopped; it resumes at the next start", "source", plan.Source, "err", err)
		} else if ctx.Err() == nil {
			d.log.Info("backfill done", "source", plan.Source, "from", plan.Span.From, "to", plan.Span.To)
		}
		d.mu.Lock()
		delete(d.backfills, plan.Runner)
		d.mu.Unlock()
	})
	return nil
}

// storedBackfill is an unfinished backfill the store holds.
type storedBackfill struct {
	source, runner string
	span           pipeline.Span
}

// storedBackfills lists the unfinished backfills in st of the sources
// configured as they were when the backfill was recorded; with warn, it
// logs the others, which are not resumed.
func (d *Daemon) storedBackfills(st store.Store, warn bool) ([]storedBackfill, error) {
	snap, err := st.Snapshot()
	if err != nil {
		return nil, err
	}
	var out []storedBackfill
	for _, s := range snap.Sources {
		name, ok := pipeline.BackfillOf(s.Name)
		if !ok || len(s.Cursor) == 0 {
			continue
		}
		c, err := pipeline.DecodeBackfill(s.Cursor)
		if err != nil || c.Finished {
			continue
		}
		if src := d.source(name); src == nil || src.Bounded == nil || s.Fingerprint != src.Source.Fingerprint() {
			if warn {
				d.log.Warn("a stored backfill is not resumed: its source is no longer configured as it was", "source", name, "span", c.Span.String())
			}
			continue
		}
		out = append(out, storedBackfill{source: name, runner: s.Name, span: c.Span})
	}
	return out, nil
}

// resumeBackfills starts every backfill of a configured source that the
// store holds unfinished.
func (d *Daemon) resumeBackfills(st store.Store) {
	bfs, err := d.storedBackfills(st, true)
	if err != nil {
		d.log.Warn("cannot read the store for backfills to resume", "err", err)
		return
	}
	for _, b := range bfs {
		if err := d.startBackfill(BackfillPlan{Source: b.source, Runner: b.runner, Span: b.span, Resumed: true}); err != nil {
			d.log.Warn("cannot resume backfill", "source", b.source, "err", err)
		}
	}
}

// serveBackfill takes a BackfillRequest on the status socket, records it
// and starts it; it answers the plan, or 409 with the reason.
func (d *Daemon) serveBackfill(w http.ResponseWriter, r *http.Request) {
	var req BackfillRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		http.Error(w, "backfill: malformed request: "+err.Error(), http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	st := d.store
	d.mu.Unlock()
	if st == nil {
		http.Error(w, "backfill: the store is not open", http.StatusServiceUnavailable)
		return
	}
	if _, shared := st.(store.Leaser); shared {
		// Only a lease may run it: the replicas find it in the store.
		http.Error(w, "backfill: the store is shared: `auditrelay backfill` records it in the database, where the replicas find it", http.StatusConflict)
		return
	}
	d.bfMu.Lock()
	plan, err := d.planBackfill(st, req, time.Now())
	if err == nil {
		err = d.startBackfill(plan)
	}
	d.bfMu.Unlock()
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrBackfill) {
			code = http.StatusConflict
		}
		http.Error(w, err.Error(), code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(plan)
}

// Backfill runs a backfill without a daemon: it opens the store (which a
// running daemon would hold), records req and reads the span into the
// spool, to be delivered by the sinks at the daemon's next start. progress
// is called with the plan and the backfill's state about every second
// until it returns. A killed backfill resumes from its cursor, run again or by the
// daemon.
func (d *Daemon) Backfill(ctx context.Context, req BackfillRequest, progress func(BackfillPlan, store.SourceState)) (BackfillPlan, error) {
	st, _, err := d.openStore(ctx)
	if err != nil {
		return BackfillPlan{}, err
	}
	defer st.Close()
	plan, err := d.planIn(st, req)
	if err != nil {
		return plan, err
	}
	r, err := d.backfillRunner(st, plan)
	if err != nil {
		return plan, err
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	report := func() {
		if snap, err := st.Snapshot(); err == nil {
			for _, s := range snap.Sources {
				if s.Name == plan.Runner {
					progress(plan, s)
				}
			}
		}
	}
	for {
		select {
		case err := <-done:
			report()
			if err == nil && ctx.Err() != nil {
				err = ctx.Err()
			}
			return plan, err
		case <-tick.C:
			report()
		}
	}
}

// SharedBackfill records req in the shared PostgreSQL store, where the
// replicas find it at their next heartbeat: the one that takes the lease
// of its runner reads it, and another resumes it if that one dies. It
// calls progress with the backfill's state about every second and returns
// once the span is read, or with ctx's error when ctx is done first (the
// replicas go on with it).
func (d *Daemon) SharedBackfill(ctx context.Context, req BackfillRequest, progress func(BackfillPlan, store.SourceState)) (BackfillPlan, error) {
	pg := d.cfg.Store.Postgres
	if pg == nil {
		return BackfillPlan{}, errors.New("backfill: the store is not shared")
	}
	st, err := postgres.Open(ctx, *pg, postgres.Options{Logger: d.log})
	if err != nil {
		return BackfillPlan{}, err
	}
	defer st.Close()
	plan, err := d.planIn(st, req)
	if err != nil {
		return plan, err
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		snap, err := st.Snapshot()
		if err != nil {
			d.log.Warn("cannot read the store for the backfill's progress; retrying", "err", err)
		}
		for _, s := range snap.Sources {
			if s.Name != plan.Runner {
				continue
			}
			progress(plan, s)
			if c, err := pipeline.DecodeBackfill(s.Cursor); err == nil && c.Finished {
				return plan, nil
			}
		}
		select {
		case <-ctx.Done():
			return plan, ctx.Err()
		case <-tick.C:
		}
	}
}

// backfillRetry is how long a replica waits, after a backfill stopped on
// an error, before it hands the backfill back to be tried again.
const backfillRetry = 30 * time.Second

// discoverBackfills lists, for the coordinator, the unfinished backfills
// in a shared store: each runs on the replica that holds its lease.
func (d *Daemon) discoverBackfills(st store.Store) func(context.Context) ([]pipeline.Work, error) {
	runners := map[string]*pipeline.SourceRunner{} // by runner name and span, built once
	warned := false
	return func(ctx context.Context) ([]pipeline.Work, error) {
		bfs, err := d.storedBackfills(st, !warned)
		if err != nil {
			return nil, err
		}
		warned = true
		var work []pipeline.Work
		for _, b := range bfs {
			key := b.runner + "|" + b.span.String()
			r := runners[key]
			if r == nil {
				if r, err = d.backfillRunner(st, BackfillPlan{Source: b.source, Runner: b.runner, Span: b.span, Resumed: true}); err != nil {
					d.log.Warn("cannot run a stored backfill", "source", b.source, "err", err)
					continue
				}
				runners[key] = r
			}
			name, plan := b.source, b.span
			work = append(work, pipeline.Work{Kind: store.LeaseSource, Name: b.runner, Run: func(ctx context.Context) error {
				d.log.Info("backfill started", "source", name, "from", plan.From, "to", plan.To)
				err := r.Run(ctx)
				var lost *store.LeaseLostError
				switch {
				case err == nil && ctx.Err() == nil:
					d.log.Info("backfill done", "source", name, "from", plan.From, "to", plan.To)
				case errors.As(err, &lost) || ctx.Err() != nil:
					return err
				case err != nil:
					d.log.Error("backfill stopped; handing it back to be tried again", "source", name, "err", err, "retry_in", backfillRetry)
					delivery.Sleep(ctx, backfillRetry)
				}
				return nil
			}})
		}
		return work, nil
	}
}

// planIn checks the checkpoints of st, then plans req there.
func (d *Daemon) planIn(st store.Store, req BackfillRequest) (BackfillPlan, error) {
	if err := d.verifyCheckpoints(st); err != nil {
		return BackfillPlan{}, err
	}
	return d.planBackfill(st, req, time.Now())
}

// source returns the configured source named name, or nil.
func (d *Daemon) source(name string) *Source {
	for i := range d.sources {
		if d.sources[i].Name == name {
			return &d.sources[i]
		}
	}
	return nil
}
