// Package sink defines the contract between the pipeline and a destination.
// A sink encodes batches in its wire format and sends them; the pipeline
// advances the sink's offset only after Send returned nil.
package sink

import (
	"context"

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
