package pipeline

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
)

// rereadingSink is a memSink that says it recognizes its last limit
// events after a restart. At each send it checks, against the store, that
// the events sent and not acknowledged stay within that.
type rereadingSink struct {
	memSink
	limit  int
	r      *rig
	sent   int
	maxOut int
}

func (s *rereadingSink) Rereads() int { return s.limit }

func (s *rereadingSink) Send(ctx context.Context, batch []event.Raw) error {
	snap, err := s.r.st.Snapshot()
	if err != nil {
		return err
	}
	acked := int(snap.Sinks[0].Delivered)
	s.sent += len(batch)
	if out := s.sent - acked; out > s.maxOut {
		s.maxOut = out
	}
	return s.memSink.Send(ctx, batch)
}

// TestAcknowledgedInBackground: a sink that rereads its last events gets
// every event once, in order, with acknowledgements coalesced behind its
// sends but never more events out than it rereads, and everything
// acknowledged when the runner stops.
func TestAcknowledgedInBackground(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "mem")
		at := time.Now().Add(-time.Hour)
		var pages []source.Page
		for p := range 40 {
			var evs []event.Raw
			for i := range 50 {
				evs = append(evs, clockEvent(fmt.Sprintf("e%d", 50*p+i), at))
			}
			pages = append(pages, source.Page{Events: evs, Next: source.Cursor(fmt.Sprint(p + 1)), Watermark: at})
		}
		snk := &rereadingSink{limit: 300, r: r}
		sr := r.sink("mem", nil)
		sr.Sink = snk
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { r.source(&pagesSource{pages: pages}, 0).Run(ctx) })
		wg.Go(func() { sr.Run(ctx) })
		time.Sleep(10 * time.Second)
		cancel()
		wg.Wait()
		checkExactlyOnce(t, "mem", snk.got(), 2000)
		if snk.maxOut > snk.limit {
			t.Errorf("%d events were out unacknowledged, over the %d the sink rereads", snk.maxOut, snk.limit)
		}
		snap, err := r.st.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if s := snap.Sinks[0]; s.Offset != 2000 || s.Delivered != 2000 || snap.SpoolCount != 0 {
			t.Errorf("after the stop: %+v, spool %d; want every event acknowledged", s, snap.SpoolCount)
		}
	})
}
