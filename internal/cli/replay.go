package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/daemon"
)

// cmdReplay sends a span that the spool or a file sink's archive still
// holds to one sink again.
func cmdReplay(ctx context.Context, args []string, env Env) int {
	fs := newFlags("replay", env)
	path := fs.String("config", "", "configuration `FILE`")
	name := fs.String("sink", "", "sink `NAME`")
	from := fs.String("from", "", "start of the span, RFC 3339 (included)")
	to := fs.String("to", "", "end of the span, RFC 3339 (excluded)")
	archive := fs.String("archive", "", "read the file sink output at `PATH` (and PATH.1 …) instead of the spool")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	if *name == "" || *from == "" || *to == "" {
		fmt.Fprintln(env.Stderr, "auditrelay replay: --sink, --from and --to are required")
		return exitUsage
	}
	t1, err1 := time.Parse(time.RFC3339Nano, *from)
	t2, err2 := time.Parse(time.RFC3339Nano, *to)
	if err := errors.Join(err1, err2); err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay replay: --from and --to are RFC 3339 instants (2026-03-01T00:00:00Z): %v\n", err)
		return exitUsage
	}
	cfg, ok := loadConfig(*path, env)
	if !ok {
		return exitUsage
	}
	bar := newProgress(env.Stderr)
	announced := false
	req := daemon.ReplayRequest{Sink: *name, From: t1, To: t2, Archive: *archive}
	plan, err := daemon.Replay(ctx, cfg, req, newLogger(cfg, env.Stderr), func(plan daemon.ReplayPlan, p daemon.ReplayProgress) {
		if !announced {
			announced = true
			fmt.Fprintf(env.Stderr, "replay to %s: %d events of %s in %s, from %s\n", plan.Sink, plan.Events, strings.Join(plan.Sources, ", "), plan.Span, plan.From)
			for _, n := range plan.Notes {
				fmt.Fprintf(env.Stderr, "  (%s)\n", n)
			}
		}
		bar.count("replay "+plan.Sink, p.Sent, p.Total, p.At)
	})
	bar.done()
	switch {
	case errors.Is(err, daemon.ErrReplay):
		fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
		return exitUsage
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(env.Stderr, "replay to %s interrupted: run the same command again (a repeat sends the span again; see docs/operations.md)\n", *name)
		return exitFailure
	case err != nil:
		fmt.Fprintf(env.Stderr, "auditrelay: replay to %s: %v\n", *name, err)
		return exitFailure
	}
	fmt.Fprintf(env.Stderr, "replay to %s done: %d events sent; the sink's offset in the store is unchanged; events it could not take are in %s\n", plan.Sink, plan.Events, plan.ParkedIn)
	return exitOK
}

// count reports that sent of total items are done, the last one of time
// at: a bar with an ETA on a terminal, a plain line every 10 seconds (and
// at the end) otherwise.
func (p *progress) count(label string, sent, total int, at time.Time) {
	now := time.Now()
	if p.start.IsZero() {
		p.start = now
	}
	frac := 1.0
	if total > 0 {
		frac = min(1, float64(sent)/float64(total))
	}
	eta := "-"
	if sent > 0 && frac < 1 {
		eta = (time.Duration(float64(now.Sub(p.start)) * float64(total-sent) / float64(sent))).Round(time.Second).String()
	}
	where := "-"
	if !at.IsZero() {
		where = fmtTime(at)
	}
	if p.tty {
		const width = 30
		n := int(frac * width)
		fmt.Fprintf(p.w, "\r[%s%s] %3.0f%%  %d/%d events  up to %s  ETA %s  ", strings.Repeat("#", n), strings.Repeat(".", width-n),
			100*frac, sent, total, where, eta)
		p.drawn = true
		return
	}
	if now.Sub(p.lastLine) >= 10*time.Second || frac >= 1 {
		p.lastLine = now
		fmt.Fprintf(p.w, "%s: %.0f%%, %d/%d events, up to %s, ETA %s\n", label, 100*frac, sent, total, where, eta)
	}
}
