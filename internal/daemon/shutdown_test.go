package daemon

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
)

// closer is a sink whose Close ends when release is closed, whatever its
// context says: a destination stuck on a dead network or disk.
type closer struct {
	release chan struct{}
	closed  chan struct{}
}

func (c *closer) Send(context.Context, []event.Raw) error { return nil }

func (c *closer) Close(context.Context) error {
	<-c.release
	close(c.closed)
	return nil
}

func TestCloseSinksGivesUpAtTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stuck := &closer{release: make(chan struct{}), closed: make(chan struct{})}
		quick := &closer{release: make(chan struct{}), closed: make(chan struct{})}
		close(quick.release)
		var logs syncBuffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		ctx, cancel := context.WithTimeout(context.Background(), sinkCloseTimeout)
		defer cancel()
		start := time.Now()
		closeSinks(ctx, []Sink{{Name: "stuck", Sink: stuck}, {Name: "quick", Sink: quick}}, log)
		if took := time.Since(start); took != sinkCloseTimeout {
			t.Errorf("closeSinks returned after %v, want the %v deadline", took, sinkCloseTimeout)
		}
		select {
		case <-quick.closed:
		default:
			t.Error("the sink that could close was not closed")
		}
		if out := logs.String(); !strings.Contains(out, "sinks=stuck ") || strings.Contains(out, "quick") {
			t.Errorf("the log does not name exactly the stuck sink:\n%s", out)
		}
		close(stuck.release)
		<-stuck.closed
	})
}

func TestCloseSinksReturnsWhenAllClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &closer{release: make(chan struct{}), closed: make(chan struct{})}
		close(a.release)
		var logs syncBuffer
		start := time.Now()
		closeSinks(context.Background(), []Sink{{Name: "a", Sink: a}}, slog.New(slog.NewTextHandler(&logs, nil)))
		if took := time.Since(start); took != 0 {
			t.Errorf("closeSinks took %v with every sink closed at once", took)
		}
		if logs.String() != "" {
			t.Errorf("unexpected log: %s", logs.String())
		}
	})
}
