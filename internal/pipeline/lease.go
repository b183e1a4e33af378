package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"time"

	"github.com/auditrelay/auditrelay/internal/store"
)

// Work is one source or sink runner a Coordinator runs while this replica
// holds its lease.
type Work struct {
	// Kind is store.LeaseSource or store.LeaseSink; Name the runner's.
	Kind, Name string
	// Run runs until ctx is done (nil) or it cannot go on: a
	// *store.LeaseLostError drops the work here, any other error stops
	// the replica.
	Run func(ctx context.Context) error
}

// Coordinator shares the work between the replicas of a shared store. Each
// replica heartbeats; from the live replicas every one computes the same
// balanced assignment (assign), takes the leases of its own share when
// they are free or expired, starts their runners, and stops and releases
// what is now another's. A replica that dies stops renewing: within a
// lease TTL its leases expire, its row leaves the live list, and the
// others take its share.
type Coordinator struct {
	Leaser store.Leaser
	Work   []Work
	// Discover, when set, lists at every heartbeat the work that comes
	// and goes with the store's content (backfills recorded there). It is
	// shared out on its own, so that it never moves the runners of Work;
	// a discovered runner that ends without error is done: its lease is
	// released, and Discover no longer lists it.
	Discover func(ctx context.Context) ([]Work, error)
	// Interval between heartbeats; 0 means a fifth of the lease TTL.
	Interval time.Duration
	Logger   *slog.Logger
	Metrics  *Metrics
}

type workKey struct{ kind, name string }

type running struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// exit is how a runner ended.
type exit struct {
	key        workKey
	err        error
	discovered bool // listed by Discover
}

// Run coordinates until ctx is done, then stops every runner and leaves:
// its leases are released so that the other replicas take them at once.
// It returns the first error of a runner that is not a lost lease.
func (c *Coordinator) Run(ctx context.Context) error {
	interval := c.Interval
	if interval <= 0 {
		interval = c.Leaser.LeaseTTL() / 5
	}
	runs := map[workKey]*running{}
	// Discovered runners come and go: room for many ends between ticks.
	exits := make(chan exit, len(c.Work)+64)
	defer func() {
		for _, r := range runs {
			r.cancel()
		}
		for _, r := range runs {
			<-r.done
		}
		lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Leaser.Leave(lctx); err != nil {
			c.Logger.Warn("could not hand the leases over on stop; the other replicas take them when they expire", "err", err)
		}
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	failing := 0
	for {
		if err := c.tick(ctx, runs, exits); err != nil {
			failing++
			if failing == 1 || failing%10 == 0 {
				c.Logger.Warn("store heartbeat failed; the runners go on while their leases last", "err", err, "attempt", failing)
			}
		} else if failing > 0 {
			c.Logger.Info("store heartbeat recovered", "attempts", failing)
			failing = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case e := <-exits:
			if err := c.ended(ctx, runs, e); err != nil {
				return err
			}
			if e.err == nil && e.discovered && ctx.Err() == nil {
				if err := c.Leaser.Release(ctx, e.key.kind, e.key.name); err != nil {
					c.Logger.Warn("could not release the lease of finished work; it expires with this replica", e.key.kind, e.key.name, "err", err)
				}
			}
		case <-tick.C:
		}
	}
}

// ended handles the end of a runner.
func (c *Coordinator) ended(ctx context.Context, runs map[workKey]*running, e exit) error {
	delete(runs, e.key)
	c.Metrics.leaseOwned.WithLabelValues(e.key.kind, e.key.name).Set(0)
	var lost *store.LeaseLostError
	switch {
	case ctx.Err() != nil:
		return nil
	case errors.As(e.err, &lost):
		c.Logger.Warn("lease lost: work dropped on this replica", e.key.kind, e.key.name, "err", e.err)
		return nil
	case e.err != nil:
		return fmt.Errorf("%s %s: %w", e.key.kind, e.key.name, e.err)
	}
	return nil
}

// tick heartbeats, then starts and stops runners to match this replica's
// share.
func (c *Coordinator) tick(ctx context.Context, runs map[workKey]*running, exits chan exit) error {
	live, lost, err := c.Leaser.Heartbeat(ctx)
	if err != nil {
		return err
	}
	for _, l := range lost {
		k := workKey{l.Kind, l.Name}
		if r, ok := runs[k]; ok {
			c.Logger.Warn("lease lost while this replica could not renew it: stopping its work here", l.Kind, l.Name)
			r.cancel()
		}
	}
	me := c.Leaser.Replica()
	if !slices.Contains(live, me) {
		live = append(live, me)
	}
	owner := assign(live, c.Work)
	work := c.Work
	discovered := map[workKey]bool{}
	if c.Discover != nil {
		more, err := c.Discover(ctx)
		if err != nil {
			return fmt.Errorf("list the store's work: %w", err)
		}
		more = slices.DeleteFunc(more, func(w Work) bool {
			_, dup := owner[workKey{w.Kind, w.Name}] // Work's wins
			return dup
		})
		for k, r := range assign(live, more) {
			owner[k] = r
			discovered[k] = true
		}
		work = append(slices.Clip(work), more...)
		// A discovered runner that runs here but is no longer listed
		// (finished, or its backfill reset) stops.
		for k := range runs {
			if _, ok := owner[k]; !ok {
				if err := c.stop(ctx, runs, k, exits); err != nil {
					return err
				}
			}
		}
	}
	for _, w := range work {
		k := workKey{w.Kind, w.Name}
		r, isRunning := runs[k]
		switch mine := owner[k] == me; {
		case mine && !isRunning:
			took, err := c.Leaser.Acquire(ctx, w.Kind, w.Name)
			if err != nil {
				return err
			}
			if !took {
				continue // its former owner still holds it: next tick
			}
			c.Metrics.takeovers.WithLabelValues(w.Kind).Inc()
			c.Metrics.leaseOwned.WithLabelValues(w.Kind, w.Name).Set(1)
			c.Logger.Info("lease taken: running it here", w.Kind, w.Name, "replica", me)
			rctx, cancel := context.WithCancel(ctx)
			r = &running{cancel: cancel, done: make(chan struct{})}
			runs[k] = r
			found := discovered[k]
			go func() {
				defer close(r.done)
				err := w.Run(rctx)
				exits <- exit{k, err, found}
			}()
		case !mine && isRunning:
			// Another live replica's share now: hand it over.
			if err := c.stop(ctx, runs, k, exits); err != nil {
				return err
			}
			c.Logger.Info("lease handed over", w.Kind, w.Name, "to", owner[k])
		case !mine && c.Leaser.Holds(w.Kind, w.Name):
			if err := c.Leaser.Release(ctx, w.Kind, w.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// stop stops the runner k running here and releases its lease.
func (c *Coordinator) stop(ctx context.Context, runs map[workKey]*running, k workKey, exits chan exit) error {
	r := runs[k]
	r.cancel()
	<-r.done
	delete(runs, k)
	c.drainExit(k, exits)
	c.Metrics.leaseOwned.WithLabelValues(k.kind, k.name).Set(0)
	return c.Leaser.Release(ctx, k.kind, k.name)
}

// drainExit takes the exit of the runner k, just stopped, off exits.
func (c *Coordinator) drainExit(k workKey, exits chan exit) {
	var keep []exit
	for {
		select {
		case e := <-exits:
			if e.key == k {
				for _, x := range keep {
					exits <- x
				}
				return
			}
			keep = append(keep, e)
		default:
			for _, x := range keep {
				exits <- x
			}
			return
		}
	}
}

// assign shares the work between the live replicas, the same way on every
// replica: sources and sinks separately, each replica getting either
// ⌊N/R⌋ or ⌈N/R⌉ of each (the first N mod R replicas by id get one more).
// Each runner goes to the replica that ranks highest for it by rendezvous
// hashing among those with room left, taking the runners in hash order, so
// a replica joining or leaving moves few runners.
func assign(live []string, work []Work) map[workKey]string {
	reps := slices.Clone(live)
	slices.Sort(reps)
	reps = slices.Compact(reps)
	out := make(map[workKey]string, len(work))
	if len(reps) == 0 {
		return out
	}
	for _, kind := range []string{store.LeaseSource, store.LeaseSink} {
		var keys []workKey
		for _, w := range work {
			if w.Kind == kind {
				keys = append(keys, workKey{w.Kind, w.Name})
			}
		}
		slices.SortFunc(keys, func(a, b workKey) int {
			return cmp.Or(cmp.Compare(hash64("", a), hash64("", b)), cmp.Compare(a.name, b.name))
		})
		room := make(map[string]int, len(reps))
		for i, r := range reps {
			room[r] = len(keys) / len(reps)
			if i < len(keys)%len(reps) {
				room[r]++
			}
		}
		for _, k := range keys {
			best, bestScore := "", uint64(0)
			for _, r := range reps {
				if room[r] == 0 {
					continue
				}
				if s := hash64(r, k); best == "" || s > bestScore {
					best, bestScore = r, s
				}
			}
			room[best]--
			out[k] = best
		}
	}
	return out
}

func hash64(replica string, k workKey) uint64 {
	h := fnv.New64a()
	h.Write([]byte(replica))
	h.Write([]byte{0})
	h.Write([]byte(k.kind))
	h.Write([]byte{0})
	h.Write([]byte(k.name))
	return mix(h.Sum64())
}

// mix spreads the bits of an FNV hash (splitmix64's finalizer): FNV alone
// ranks similar names too alike.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
