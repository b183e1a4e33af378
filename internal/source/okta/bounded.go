package okta

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/source/window"
)

// Bounded queries (since and until set) select events by published time:
// a backfill of a past span reads them in windows, as the window engine
// does for the other providers, rather than following the polling stream,
// which is ordered by when the org stored each event.
const (
	// boundedSettle keeps a bounded window this far behind now: an event
	// may be stored some minutes after its published time.
	boundedSettle = 5 * time.Minute
	// boundedOverlap is re-read before each window; dedup drops it.
	boundedOverlap = time.Minute
	// boundedWindow caps one window.
	boundedWindow = 24 * time.Hour
)

// newBounded returns the window engine of a source bounded by end.
func (s *Source) newBounded(end time.Time) (*window.Engine, error) {
	return window.New(window.Config{
		Name: s.name, Provider: Provider, Precision: time.Millisecond,
		SettleDelay: boundedSettle, Overlap: boundedOverlap, Lookback: s.cfg.Lookback.D(),
		Retention: Retention, RetentionMargin: time.Hour, GapReason: "older than the 90 days an org keeps its System Log",
		MaxWindow: boundedWindow, EndAt: end, OnRefused: window.RestartWindow, PosKey: window.PosNext,
		CheckPos: s.checkLink, Now: s.now, Logger: s.log,
	}, (*boundedFetcher)(s))
}

// CursorFrom returns a cursor that starts a bounded read exactly at t, for
// `auditrelay backfill` (with a source made with Options.EndAt). It
// refuses an instant in the future or older than the org keeps.
func (s *Source) CursorFrom(t time.Time) (source.Cursor, error) {
	e := s.windows
	if e == nil {
		var err error
		if e, err = s.newBounded(time.Time{}); err != nil {
			return nil, fmt.Errorf("okta: cursor from %s: %w", t.UTC().Format(time.RFC3339), err)
		}
	}
	return e.CursorAt(t)
}

// boundedFetcher is the Source as the window engine's Fetcher.
type boundedFetcher Source

// Open returns the first page of w: since its start, until its end (both
// in published time; until is exclusive, as the window's end is).
func (f *boundedFetcher) Open(_ context.Context, w window.Window) (string, error) {
	s := (*Source)(f)
	q := url.Values{
		"since": {w.From.UTC().Format("2006-01-02T15:04:05.000Z")}, "until": {w.To.UTC().Format("2006-01-02T15:04:05.000Z")},
		"sortOrder": {"ASCENDING"}, "limit": {strconv.Itoa(s.cfg.PageSize)},
	}
	return s.cfg.OrgURL + "/api/v1/logs?" + q.Encode(), nil
}

// Fetch reads the page at pos. An empty page ends the window even if the
// org sent a next link with it: a bounded query over a settled span has
// nothing more to give.
func (f *boundedFetcher) Fetch(ctx context.Context, _ window.Window, pos string) (window.Result, error) {
	res, err := (*Source)(f).read(ctx, pos)
	if err == nil && len(res.Events) == 0 {
		res.Next = ""
	}
	return res, err
}

// Refused reports whether err is the org refusing a stored next link.
func (f *boundedFetcher) Refused(err error) bool { return (*fetcher)(f).Refused(err) }
