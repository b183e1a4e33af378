package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/pipeline"
	"github.com/auditrelay/auditrelay/internal/sink/file"
	"github.com/auditrelay/auditrelay/internal/store"
	"github.com/auditrelay/auditrelay/internal/store/bolt"
)

// ReplaySuffix makes the name a replay builds its sink under, NAME@replay:
// its park file and any state the sink keeps (Splunk's HEC channel) are
// its own, never the daemon's.
const ReplaySuffix = "@replay"

// ReplayRequest asks to send the events of [From, To) that the spool, or
// the file sink archive at Archive, holds to one configured sink again.
type ReplayRequest struct {
	Sink     string
	From, To time.Time
	// Archive is the path of a file sink's output (its rotated files
	// Archive.1 … are read too); empty reads the spool.
	Archive string
}

// ReplayPlan is what a replay covers, per source the sink routes.
type ReplayPlan struct {
	Sink string
	Span pipeline.Span
	// From says where the events come from: the spool's path, or the
	// archive's files.
	From string
	// Sources are the sources the sink routes, sorted.
	Sources []string
	// Notes say what the replay cannot send that no sink ever had (events
	// before a source started reading).
	Notes []string
	// Events is the number of events the replay sends.
	Events int
	// ParkedIn is where the replayed sink keeps what it parks.
	ParkedIn string
}

// ReplayProgress is how far a replay is.
type ReplayProgress struct {
	Sent, Total int
	// At is the event time of the last event sent.
	At time.Time
	// Retries counts the failed sends so far.
	Retries int
}

// ErrReplay is the error of a replay that cannot be done as asked; its
// message says what is missing and what to ask instead.
var ErrReplay = errors.New("replay refused")

// Replay sends the events of req's span, of the sources the sink routes,
// to the sink again, through the sink's own implementation (batches,
// retries, parking) built under the sink's name with ReplaySuffix. It
// never moves the sink's offset. It refuses (ErrReplay) a span the spool
// or the archive cannot fully cover, naming each source's missing part,
// before it sends anything. Reading the spool needs the bbolt store, so
// the daemon must be stopped; an archive is read without the store, while
// the daemon runs. progress, when not nil, is called after the plan is
// made and after every batch.
func Replay(ctx context.Context, cfg *config.Config, req ReplayRequest, log *slog.Logger, progress func(ReplayPlan, ReplayProgress)) (ReplayPlan, error) {
	var sc *config.Sink
	for i := range cfg.Sinks {
		if cfg.Sinks[i].Name == req.Sink {
			sc = &cfg.Sinks[i]
		}
	}
	var names []string
	for _, s := range cfg.Sinks {
		names = append(names, s.Name)
	}
	switch {
	case sc == nil:
		return ReplayPlan{}, fmt.Errorf("%w: --sink %q is not configured; configured: %s", ErrReplay, req.Sink, strings.Join(names, ", "))
	case !req.From.Before(req.To):
		return ReplayPlan{}, fmt.Errorf("%w: --from %s is not before --to %s", ErrReplay, fmtT(req.From), fmtT(req.To))
	}
	plan := ReplayPlan{Sink: sc.Name, Span: pipeline.Span{From: req.From.UTC(), To: req.To.UTC()}, Sources: slices.Sorted(slices.Values(sc.Sources))}
	plan.ParkedIn = park.Path(cfg.DataDir, sc.Name+ReplaySuffix)
	routes := map[string]bool{}
	for _, s := range sc.Sources {
		routes[s] = true
	}
	in := func(ev *event.Raw) bool {
		return routes[ev.Source] && !ev.Time.Before(plan.Span.From) && ev.Time.Before(plan.Span.To)
	}
	var scan func(fn func(event.Raw) error) error
	if req.Archive != "" {
		files, err := file.ArchiveFiles(req.Archive)
		if err != nil {
			return plan, fmt.Errorf("%w: %v", ErrReplay, err)
		}
		plan.From = strings.Join(files, ", ")
		scan = func(fn func(event.Raw) error) error { return file.ScanArchive(files, fn) }
		if err := planArchive(&plan, scan, in); err != nil {
			return plan, err
		}
	} else {
		if cfg.Store.Postgres != nil {
			return plan, fmt.Errorf("%w: replay from the spool reads the data_dir store; with store.postgres, pass --archive with the file sink's output", ErrReplay)
		}
		st, err := bolt.Open(cfg.DataDir, bolt.Options{ReadOnly: true})
		if errors.Is(err, bolt.ErrLocked) {
			return plan, fmt.Errorf("%w: the daemon holds the store (%v): stop it for the replay and start it again after, or pass --archive with the file sink's output, which replay reads while the daemon runs", ErrReplay, err)
		}
		if err != nil {
			return plan, err
		}
		defer st.Close()
		plan.From = st.Path()
		if err := planSpool(&plan, st); err != nil {
			return plan, err
		}
		scan = func(fn func(event.Raw) error) error { return scanSpool(st, fn) }
		if err := scan(func(ev event.Raw) error {
			if in(&ev) {
				plan.Events++
			}
			return nil
		}); err != nil {
			return plan, err
		}
	}
	return plan, sendReplay(ctx, cfg, *sc, plan, scan, in, log, progress)
}

// planSpool refuses the span unless, for every source the sink routes, it
// starts after the last event time the spool deleted.
func planSpool(plan *ReplayPlan, st store.Store) error {
	snap, err := st.Snapshot()
	if err != nil {
		return err
	}
	states := map[string]store.SourceState{}
	for _, s := range snap.Sources {
		states[s.Name] = s
	}
	var missing []string
	for _, src := range plan.Sources {
		through := snap.DeletedThrough.Through(src)
		if !through.IsZero() && !plan.Span.From.After(through) {
			end := through
			if plan.Span.To.Before(end) {
				end = plan.Span.To
			}
			missing = append(missing, fmt.Sprintf("source %s: the spool holds its events after %s; %s–%s is missing", src, fmtT(through), fmtT(plan.Span.From), fmtT(end)))
			continue
		}
		readFrom := states[src].ReadFrom
		if b, ok := states[pipeline.BackfillName(src)]; ok && !b.ReadFrom.IsZero() && (readFrom.IsZero() || b.ReadFrom.Before(readFrom)) {
			readFrom = b.ReadFrom
		}
		if !readFrom.IsZero() && plan.Span.From.Before(readFrom) {
			plan.Notes = append(plan.Notes, fmt.Sprintf("source %s started reading at %s: its events before were never collected (auditrelay backfill reads them)", src, fmtT(readFrom)))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s; pass --archive with the file sink's output for that span", ErrReplay, strings.Join(missing, "; "))
	}
	return nil
}

// planArchive counts the archive's events in the span and refuses the span
// unless, for every source the sink routes, the archive holds events from
// its start to its end. An archive cannot tell a span where a source had no
// events from one it lost (rotated away, or written before the sink
// existed), so it covers only from its first to its last event of each
// source (times are kept to the millisecond).
func planArchive(plan *ReplayPlan, scan func(fn func(event.Raw) error) error, in func(*event.Raw) bool) error {
	type bounds struct{ first, last time.Time }
	held := map[string]*bounds{}
	if err := scan(func(ev event.Raw) error {
		b := held[ev.Source]
		if b == nil {
			b = &bounds{ev.Time, ev.Time}
			held[ev.Source] = b
		}
		if ev.Time.Before(b.first) {
			b.first = ev.Time
		}
		if ev.Time.After(b.last) {
			b.last = ev.Time
		}
		if in(&ev) {
			plan.Events++
		}
		return nil
	}); err != nil {
		return fmt.Errorf("%w: %v; nothing was sent", ErrReplay, err)
	}
	var missing []string
	for _, src := range plan.Sources {
		b := held[src]
		if b == nil {
			missing = append(missing, fmt.Sprintf("source %s: the archive holds none of its events", src))
			continue
		}
		// Times are written to the millisecond: the last line's event
		// happened before its time plus one.
		end := b.last.Add(time.Millisecond)
		var parts []string
		if plan.Span.From.Before(b.first) {
			parts = append(parts, fmtT(plan.Span.From)+"–"+fmtT(minTime(b.first, plan.Span.To)))
		}
		if plan.Span.To.After(end) {
			parts = append(parts, fmtT(maxTime(end, plan.Span.From))+"–"+fmtT(plan.Span.To))
		}
		if len(parts) > 0 {
			missing = append(missing, fmt.Sprintf("source %s: the archive holds its events from %s to %s; %s is missing (an archive cannot tell a quiet span from a lost one)", src, fmtT(b.first), fmtT(b.last), strings.Join(parts, " and ")))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s; replay the rest from the spool (without --archive) or ask for a span the archive holds", ErrReplay, strings.Join(missing, "; "))
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// scanSpool calls fn with every event in the spool, in position order.
func scanSpool(st store.Store, fn func(event.Raw) error) error {
	var after uint64
	for {
		batch, last, err := st.Read(after, pipeline.DefaultBatchSize, pipeline.DefaultBatchBytes, nil)
		if ce := (*store.CorruptError)(nil); errors.As(err, &ce) {
			// The sinks' runners park it; replay cannot send it either.
			after = ce.Seq
			continue
		}
		if err != nil {
			return err
		}
		if last == after {
			return nil
		}
		for _, ev := range batch {
			if err := fn(ev); err != nil {
				return err
			}
		}
		after = last
	}
}

// sendReplay builds the sink under its replay name and sends it the
// events scan yields that in accepts, in batches of the sink's size.
func sendReplay(ctx context.Context, cfg *config.Config, sc config.Sink, plan ReplayPlan, scan func(fn func(event.Raw) error) error,
	in func(*event.Raw) bool, log *slog.Logger, progress func(ReplayPlan, ReplayProgress)) error {
	rc := *cfg
	rc.Store.Postgres = nil // parked events go to the replay's own park file
	sc.Name += ReplaySuffix
	rc.Sinks = []config.Sink{sc}
	built, err := BuildSinks(&rc, log, io.Discard)
	if err != nil {
		return err
	}
	b := built[0]
	defer b.Sink.Close(context.WithoutCancel(ctx))
	size := b.Batch
	if size <= 0 {
		size = pipeline.DefaultBatchSize
	}
	maxBytes := b.BatchBytes
	if maxBytes <= 0 {
		maxBytes = pipeline.DefaultBatchBytes
	}
	var p ReplayProgress
	p.Total = plan.Events
	report := func() {
		if progress != nil {
			progress(plan, p)
		}
	}
	report()
	backoff := delivery.Backoff{}
	var batch []event.Raw
	bytes := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := pipeline.SendRetrying(ctx, b.Sink, batch, func(err error, attempt int) (time.Duration, bool) {
			p.Retries++
			if class, _ := delivery.ClassOf(err); class == delivery.Permanent {
				return 0, false
			}
			d := backoff.Wait(err, attempt)
			log.Warn("replay send failed; retrying", "sink", sc.Name, "err", err, "attempt", attempt, "delay", d)
			return d, true
		})
		if err != nil {
			return fmt.Errorf("replay to %s stopped after %d of %d events: %w", plan.Sink, p.Sent, p.Total, err)
		}
		p.Sent += len(batch)
		p.At = batch[len(batch)-1].Time
		batch, bytes = nil, 0 // a new slice: the sink may still hold the one it was sent
		report()
		return nil
	}
	if err := scan(func(ev event.Raw) error {
		if !in(&ev) {
			return nil
		}
		if len(batch) > 0 && bytes+len(ev.Data) > maxBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		batch = append(batch, ev)
		bytes += len(ev.Data)
		if len(batch) >= size {
			return flush()
		}
		return nil
	}); err != nil {
		return err
	}
	return flush()
}
