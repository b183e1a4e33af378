package cyberark

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
)

// TestCursorAt: a cursor built at an instant resumes exactly there: every
// event from that second on is read, none before it; a future instant or
// one older than retention is refused.
func TestCursorAt(t *testing.T) {
	h := newHarness(t, emulator.CyberArkOptions{}, AuthBasic)
	h.emu.Backlog(h.gen, tenantID, 400, testNow.Add(-time.Hour), testNow.Add(-5*time.Minute))
	s := h.source(t, nil)
	at := testNow.Add(-30*time.Minute + 500*time.Millisecond)
	cur, err := s.CursorAt(at)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Describe(cur)
	if err != nil || !info.Watermark.Equal(at.Truncate(time.Second)) || !info.Exact || info.MidWindow {
		t.Fatalf("Describe(CursorAt) = %+v, %v; want watermark %s, exact", info, err, at.Truncate(time.Second))
	}
	m := newModel()
	drain(t, s, m, cur)
	var got []string
	for id, at2 := range m.seen {
		if at2.Before(at.Truncate(time.Second)) {
			t.Errorf("event %s at %s is before the instant set, %s", id, at2, at.Truncate(time.Second))
		}
		got = append(got, id)
	}
	slices.Sort(got)
	var want []string
	for _, e := range h.emu.Events(tenantID) {
		if !e.Timestamp.Before(at.Truncate(time.Second)) && e.Timestamp.Before(testNow.Add(-2*time.Minute)) {
			want = append(want, ID(tenantID, e.UUID))
		}
	}
	slices.Sort(want)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("read %d events from the instant set, want the %d from it on", len(got), len(want))
	}

	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{testNow.Add(time.Second), "is in the future"},
		{testNow.Add(-7 * 24 * time.Hour), "is older than retention ("},
	} {
		if _, err := s.CursorAt(tc.at); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CursorAt(%s) = %v, want an error saying %q", tc.at, err, tc.want)
		}
	}
}
