package store

import (
	"context"
	"fmt"
	"time"
)

// The kinds of lease a shared store keeps.
const (
	LeaseSource = "source"
	LeaseSink   = "sink"
)

// Leaser is what a store shared by several replicas adds to the contract:
// each source and each sink is run by the one replica holding its lease,
// and the commits of a source's pages (Append, SetCursor, ResetSource) and
// of a sink's offset (Ack, SkipCorrupt) fail with a *LeaseLostError on any
// other replica. A store on one machine has no Leaser: its process owns
// everything.
type Leaser interface {
	// Replica returns this process's replica id.
	Replica() string
	// LeaseTTL returns how long a lease lasts unless renewed.
	LeaseTTL() time.Duration
	// Heartbeat renews this replica's presence and every lease it holds;
	// it returns the live replicas and the leases found lost.
	Heartbeat(ctx context.Context) (live []string, lost []LeaseLostError, err error)
	// Acquire takes the lease on (kind, name) when it is free, expired or
	// already this replica's, fencing every former holder; false means
	// another live replica holds it.
	Acquire(ctx context.Context, kind, name string) (bool, error)
	// Release gives a lease up so that another replica takes it at once.
	Release(ctx context.Context, kind, name string) error
	// Holds reports whether this replica holds the lease, as far as it
	// knows.
	Holds(kind, name string) bool
	// Leave releases every lease and removes this replica, for a clean
	// stop.
	Leave(ctx context.Context) error
}

// Lease is one lease row.
type Lease struct {
	Kind, Name, Owner string
	Epoch             int64
	Expires           time.Time
	// Live is false once Expires has passed (by the database's clock).
	Live bool
}

// LeaseLostError says a replica tried to commit the work of a source or
// sink whose lease it no longer holds. Nothing was committed; the replica
// must drop that work.
type LeaseLostError struct {
	Kind, Name string
	// Replica is the replica that lost it, Owner the one holding it now
	// (empty when unknown), Epoch the epoch Replica held.
	Replica, Owner string
	Epoch          int64
	Reason         string
}

// Error says which lease was lost and why.
func (e *LeaseLostError) Error() string {
	return fmt.Sprintf("lease of %s %s lost by replica %s: %s; its work is dropped here and resumes on the owner from the last commit", e.Kind, e.Name, e.Replica, e.Reason)
}
