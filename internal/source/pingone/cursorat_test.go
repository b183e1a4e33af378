package pingone

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCursorAt: a cursor built at an instant resumes there: every activity
// from it on is read, none older than it less the overlap; a future
// instant or one older than the 14 days the API serves is refused.
func TestCursorAt(t *testing.T) {
	e := newEmuTest(t, "client_secret_basic", nil)
	e.backlog(400, testNow.Add(-time.Hour), testNow.Add(-5*time.Minute))
	s := e.source(t, nil)
	at := testNow.Add(-30 * time.Minute).Truncate(time.Millisecond)
	cur, err := s.CursorAt(at)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Describe(cur)
	if err != nil || !info.Watermark.Equal(at) || info.MidWindow {
		t.Fatalf("Describe(CursorAt) = %+v, %v; want watermark %s between windows", info, err, at)
	}
	seen := map[string]bool{}
	from := at.Add(-s.cfg.Overlap.D())
	for range 1000 {
		p, err := s.Poll(context.Background(), cur)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range p.Events {
			if ev.Time.Before(from) {
				t.Errorf("activity %s at %s is before the instant set less the overlap, %s", ev.ID, ev.Time, from)
			}
			if !ev.Time.Before(at) {
				seen[ev.ID] = true
			}
		}
		cur = p.Next
		if !p.More {
			break
		}
	}
	var got []string
	for id := range seen {
		got = append(got, id)
	}
	slices.Sort(got)
	want := e.idsIn(at, testNow.Add(-s.cfg.SettleDelay.D()))
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("read %d activities from the instant set, want the %d from it on", len(got), len(want))
	}

	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{testNow.Add(time.Millisecond), "is in the future"},
		{testNow.Add(-MaxLookback), "is older than the 14 days the activities API serves"},
	} {
		if _, err := s.CursorAt(tc.at); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CursorAt(%s) = %v, want an error saying %q", tc.at, err, tc.want)
		}
	}
}
