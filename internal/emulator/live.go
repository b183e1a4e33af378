package emulator

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Backlog adds n activities of g recorded at millisecond instants spread at
// random over [from, to), all visible now.
func (p *PingOne) Backlog(g *Generator, envID, apiBase string, n int, from, to time.Time) {
	if n <= 0 {
		return
	}
	lo := ceilMs(from)
	span := ceilMs(to) - lo
	offs := make([]int64, n)
	if span > 0 {
		for i := range offs {
			offs[i] = g.rng.Int64N(span)
		}
	}
	slices.Sort(offs)
	now := p.opts.Now()
	acts := make([]Activity, n)
	for i, off := range offs {
		a := g.Activity(envID, apiBase, time.UnixMilli(lo+off))
		if a.VisibleAt.After(now) {
			a.VisibleAt = now
		}
		acts[i] = a
	}
	p.Add(envID, acts...)
}

// ceilMs returns t in Unix milliseconds, rounded up.
func ceilMs(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return ms
}

// Run adds live activities of g until ctx is done: about rate activities per
// second with exponential gaps (a Poisson process), each recorded at its
// arrival instant and visible after a random lag in [0, maxLag]. About one
// arrival in 500 is a burst of 5 to 50 activities recorded in the same
// millisecond. It uses the PingOne's clock for timestamps and real (or
// synctest) timers for waiting. A rate <= 0 adds nothing.
func (p *PingOne) Run(ctx context.Context, g *Generator, envID, apiBase string, rate float64, maxLag time.Duration) {
	if rate <= 0 {
		<-ctx.Done()
		return
	}
	const maxBatch = 10_000 // bounds one Add when far behind
	gap := func() time.Duration { return time.Duration(g.rng.ExpFloat64() / rate * float64(time.Second)) }
	next := p.opts.Now().Add(gap())
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if wait := next.Sub(p.opts.Now()); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		now := p.opts.Now()
		var batch []Activity
		for !next.After(now) && len(batch) < maxBatch {
			n := 1
			if g.chance(0.002) {
				n = 5 + g.rng.IntN(46)
			}
			for range n {
				a := g.Activity(envID, apiBase, next)
				if maxLag > 0 {
					a.VisibleAt = a.RecordedAt.Add(time.Duration(g.rng.Int64N(int64(maxLag) + 1)))
				}
				batch = append(batch, a)
			}
			next = next.Add(gap())
		}
		p.Add(envID, batch...)
	}
}

// DemoOptions shape the traffic of StartDemo.
type DemoOptions struct {
	// Environments is how many environments to create; at least 1.
	Environments int
	// Backlog is how far back the history of each environment goes; zero
	// means no history.
	Backlog time.Duration
	// BacklogPerEnv is how many activities each history holds.
	BacklogPerEnv int
	// Rate is the live activities per second of each environment; zero
	// means none.
	Rate float64
	// MaxLag is the longest visibility lag of live activities.
	MaxLag time.Duration
	// Seed makes environment ids and activities reproducible.
	Seed uint64
}

// StartDemo adds o.Environments environments with fixed, printable
// credentials: ids are UUIDs derived from o.Seed, client N (from 1) is
// "demo-client-N" with secret "demo-secret-N" (client_secret_basic), and all
// share the licence "demo". Each gets a history of o.BacklogPerEnv
// activities over the last o.Backlog and live traffic at o.Rate until ctx is
// done (Wait waits for it to stop). It returns the environments.
func (p *PingOne) StartDemo(ctx context.Context, apiBase string, o DemoOptions) []Environment {
	ids := rand.New(rand.NewPCG(o.Seed, 0xde70))
	now := p.opts.Now()
	envs := make([]Environment, max(1, o.Environments))
	for i := range envs {
		var b [16]byte
		for j := range b {
			b[j] = byte(ids.Uint32())
		}
		env := Environment{
			ID:           formatUUID(b),
			Licence:      "demo",
			ClientID:     fmt.Sprintf("demo-client-%d", i+1),
			ClientSecret: fmt.Sprintf("demo-secret-%d", i+1),
			AuthMethod:   AuthMethodBasic,
		}
		envs[i] = env
		p.AddEnvironment(env)
		g := NewGenerator(o.Seed ^ uint64(i+1)*0x9e37_79b9_7f4a_7c15)
		if o.Backlog > 0 && o.BacklogPerEnv > 0 {
			p.Backlog(g, env.ID, apiBase, o.BacklogPerEnv, now.Add(-o.Backlog), now)
		}
		if o.Rate > 0 {
			p.wg.Go(func() { p.Run(ctx, g, env.ID, apiBase, o.Rate, o.MaxLag) })
		}
	}
	return envs
}

// Wait blocks until the live generators started by StartDemo have returned,
// which they do once their context is done.
func (p *PingOne) Wait() { p.wg.Wait() }
