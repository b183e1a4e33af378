// Package sink defines the contract between the pipeline and a destination.
// A sink encodes batches in its wire format and sends them; the pipeline
// advances the sink's offset only after Send returned nil.
package sink

import (
	"context"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
)

// Sink is one configured destination.
type Sink interface {
	// Send delivers batch and returns nil only once the destination has
	// durably accepted every event in it. Errors are classified with
	// delivery.Error; an unclassified error is treated as transient.
	Send(ctx context.Context, batch []event.Raw) error
	// Close releases the sink's resources.
	Close(ctx context.Context) error
}

// Rereader is a sink that recognizes, when it starts again, the last
// events it wrote before, and does not write them twice: the file sink
// reads back its last lines. Rereads returns how many events it
// recognizes. The sink runner may then send a batch while the one before
// it is still being acknowledged, since after a crash it sends both again.
type Rereader interface {
	Rereads() int
}

// Graceful returns a context for sending a batch that outlives ctx by
// grace: once ctx is done, the send in progress has grace to finish (and be
// acknowledged) before it is cancelled, so that a clean stop sends nothing
// twice. Call stop when the send is over.
func Graceful(ctx context.Context, grace time.Duration) (sendCtx context.Context, stop func()) {
	sendCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	unhook := context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-sendCtx.Done():
		}
	})
	return sendCtx, func() {
		unhook()
		cancel()
	}
}
