package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/daemon"
	"github.com/auditrelay/auditrelay/internal/pipeline"
	"github.com/auditrelay/auditrelay/internal/store"
)

// cmdBackfill reads a past span of a source through a cursor of its own:
// the running daemon runs it (a bbolt store has one writer, the daemon),
// or, with no daemon running, this command does and the daemon's sinks
// deliver it at their next start.
func cmdBackfill(ctx context.Context, args []string, env Env) int {
	fs := newFlags("backfill", env)
	path := fs.String("config", "", "configuration `FILE`")
	name := fs.String("source", "", "source `NAME`")
	from := fs.String("from", "", "start of the span, RFC 3339 (included)")
	to := fs.String("to", "", "end of the span, RFC 3339 (excluded)")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	if *name == "" || *from == "" || *to == "" {
		fmt.Fprintln(env.Stderr, "auditrelay backfill: --source, --from and --to are required")
		return exitUsage
	}
	t1, err1 := time.Parse(time.RFC3339Nano, *from)
	t2, err2 := time.Parse(time.RFC3339Nano, *to)
	if err := errors.Join(err1, err2); err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay backfill: --from and --to are RFC 3339 instants (2026-03-01T00:00:00Z): %v\n", err)
		return exitUsage
	}
	cfg, ok := loadConfig(*path, env)
	if !ok {
		return exitUsage
	}
	if !configured(cfg, *name) {
		fmt.Fprintf(env.Stderr, "auditrelay backfill: --source %q is not configured; configured: %s\n", *name, sourceNames(cfg))
		return exitUsage
	}
	req := daemon.BackfillRequest{Source: *name, From: t1, To: t2}
	bar := newProgress(env.Stderr)
	if cfg.Store.Postgres != nil {
		return backfillHere(ctx, cfg, req, bar, env, true)
	}

	plan, running, err := daemon.RequestBackfill(ctx, cfg.DataDir, req)
	if running {
		if err != nil {
			fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
			return exitUsage
		}
		announce(env.Stderr, plan, "the running daemon reads it while it polls")
		for {
			st, err := daemon.ReadStatus(ctx, cfg.DataDir)
			if err != nil || !st.Running {
				bar.done()
				fmt.Fprintf(env.Stderr, "auditrelay: the daemon stopped before the backfill ended; it resumes when the daemon starts again, or when this command runs again without it\n")
				return exitFailure
			}
			if s, ok := findSource(st.Store.Sources, plan.Runner); ok {
				bar.show(plan.Span, s)
				if finished(s) {
					bar.done()
					fmt.Fprintf(env.Stderr, "backfill of %s done: %d events stored (%d already there); the sinks deliver them\n", plan.Source, s.Events, s.Duplicates)
					return exitOK
				}
			}
			if !sleepCtx(ctx, time.Second) {
				bar.done()
				fmt.Fprintln(env.Stderr, "stopped watching; the daemon goes on with the backfill (`auditrelay status` shows it)")
				return exitOK
			}
		}
	}

	return backfillHere(ctx, cfg, req, bar, env, false)
}

// backfillHere runs a backfill from this command, with no daemon's socket
// to ask: it reads the span into the data_dir store itself, or, with a
// shared store, records it there for the replicas to read and watches it.
func backfillHere(ctx context.Context, cfg *config.Config, req daemon.BackfillRequest, bar *progress, env Env, shared bool) int {
	d, err := daemon.New(cfg, daemon.Options{Logger: newLogger(cfg, env.Stderr), Stdout: io.Discard, Version: Version()})
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
		return exitFailure
	}
	run, how, deliver := d.Backfill, "no daemon runs: this command reads it into the spool; the sinks deliver it when the daemon starts", "the sinks deliver them when the daemon starts"
	if shared {
		run, how, deliver = d.SharedBackfill, "recorded in the PostgreSQL store: the replica that takes its lease reads it, within a heartbeat, while it polls", "the sinks deliver them"
	}
	var last store.SourceState
	plan, err := run(ctx, req, func(plan daemon.BackfillPlan, s store.SourceState) {
		if last.Name == "" {
			announce(env.Stderr, plan, how)
		}
		last = s
		bar.show(plan.Span, s)
	})
	bar.done()
	switch {
	case errors.Is(err, daemon.ErrBackfill):
		fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
		return exitUsage
	case errors.Is(err, context.Canceled) && shared:
		fmt.Fprintln(env.Stderr, "stopped watching; the replicas go on with the backfill (`auditrelay status` shows it)")
		return exitOK
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(env.Stderr, "backfill of %s interrupted at %s: run the same command again, or start the daemon, to resume it\n", plan.Source, fmtTime(last.Watermark))
		return exitFailure
	case err != nil:
		fmt.Fprintf(env.Stderr, "auditrelay: backfill %s: %v\n", req.Source, err)
		return exitFailure
	}
	fmt.Fprintf(env.Stderr, "backfill of %s done: %d events stored (%d already there); %s\n", plan.Source, last.Events, last.Duplicates, deliver)
	return exitOK
}

func announce(w io.Writer, plan daemon.BackfillPlan, how string) {
	verb := "reading"
	if plan.Resumed {
		verb = "resuming"
	}
	fmt.Fprintf(w, "backfill of %s: %s %s; %s\n", plan.Source, verb, plan.Span, how)
	if plan.Cut != "" {
		fmt.Fprintf(w, "  (%s)\n", plan.Cut)
	}
}

func findSource(ss []store.SourceState, name string) (store.SourceState, bool) {
	for _, s := range ss {
		if s.Name == name {
			return s, true
		}
	}
	return store.SourceState{}, false
}

// finished reports whether a backfill's stored cursor says its span is
// read.
func finished(s store.SourceState) bool {
	c, err := pipeline.DecodeBackfill(s.Cursor)
	return err == nil && c.Finished
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// progress shows how far a backfill is: a bar redrawn in place with an
// ETA on a terminal, a plain line every 10 seconds otherwise.
type progress struct {
	w        io.Writer
	tty      bool
	start    time.Time
	startAt  time.Time // the watermark when watching began
	lastLine time.Time
	drawn    bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// show reports the state s of the backfill of span.
func (p *progress) show(span pipeline.Span, s store.SourceState) {
	now := time.Now()
	wm := s.Watermark
	if wm.Before(span.From) {
		wm = span.From
	}
	if p.start.IsZero() {
		p.start, p.startAt = now, wm
	}
	total := span.To.Sub(span.From)
	frac := min(1, float64(wm.Sub(span.From))/float64(total))
	eta := "-"
	if read := wm.Sub(p.startAt); read > 0 && frac < 1 {
		elapsed := now.Sub(p.start)
		eta = (time.Duration(float64(elapsed) * float64(span.To.Sub(wm)) / float64(read))).Round(time.Second).String()
	}
	if p.tty {
		const width = 30
		n := int(frac * width)
		fmt.Fprintf(p.w, "\r[%s%s] %3.0f%%  read up to %s  %d events  ETA %s  ", strings.Repeat("#", n), strings.Repeat(".", width-n),
			100*frac, fmtTime(wm), s.Events, eta)
		p.drawn = true
		return
	}
	if now.Sub(p.lastLine) >= 10*time.Second || frac >= 1 {
		p.lastLine = now
		fmt.Fprintf(p.w, "backfill %s: %.0f%%, read up to %s, %d events, ETA %s\n", s.Name, 100*frac, fmtTime(wm), s.Events, eta)
	}
}

// done ends the bar's line.
func (p *progress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
