package pingone

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/units"
)

// TestSimulatedRunNoGapNoDuplicate runs the source for 20 simulated minutes
// against live emulated traffic whose activities become visible up to a
// 45s late, with every kind of fault injected, pages lost before they are
// stored (a crash between poll and store) and process restarts. What the
// modelled pipeline delivers must be exactly the activities recorded before
// the final watermark, each once.
func TestSimulatedRunNoGapNoDuplicate(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	synctest.Test(t, func(t *testing.T) {
		const (
			settle   = 20 * time.Second
			overlap  = 40 * time.Second
			interval = 5 * time.Second
			maxLag   = 45 * time.Second // beyond settle: only the overlap catches the latest
			runFor   = 20 * time.Minute
		)
		emu := emulator.NewPingOne(emulator.PingOneOptions{TokenTTL: 10 * time.Minute, RateLimit: 10, Seed: 3})
		emu.AddEnvironment(emulator.Environment{ID: emuEnvID, ClientID: "worker-1", ClientSecret: "pa55+word/=", Licence: "l1"})
		base, client := servePipe(t, emu, 20*time.Second)
		start := time.Now()
		g := emulator.NewGenerator(5)
		emu.Backlog(g, emuEnvID, base, 1500, start.Add(-3*time.Hour), start)

		ctx, stopTraffic := context.WithCancel(t.Context())
		trafficDone := make(chan struct{})
		go func() {
			defer close(trafficDone)
			emu.Run(ctx, g, emuEnvID, base, 3, maxLag)
		}()
		emu.SetFaults(emulator.Faults{ServerError: 0.04, Truncate: 0.04, Throttle: 0.04, Early401: 0.04, Slow: 0.05, SlowDelay: 30 * time.Second})

		cfg := testConfig(base)
		cfg.EnvironmentID, cfg.ClientID, cfg.ClientSecret = emuEnvID, "worker-1", secret.New("pa55+word/=")
		cfg.SettleDelay, cfg.Overlap, cfg.PageSize = units.Duration(settle), units.Duration(overlap), 200
		lim := rate.NewLimiter(3, 1)
		newSource := func() *Source {
			s, err := New("sim", cfg, Options{HTTPClient: client, Limiter: lim})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}

		rng := rand.New(rand.NewPCG(1, 2))
		m := newPipelineModel()
		first := start.Add(-2 * time.Hour).Truncate(time.Millisecond)
		cur := cursor{Until: first}.encode()
		s := newSource()
		var lost, restarts, retries, halts int
		step := func() (more bool) {
			p, err := s.Poll(t.Context(), cur)
			if err != nil {
				retries++
				var he *delivery.Error
				switch c, ra := delivery.ClassOf(err); {
				case c == delivery.Permanent && errors.As(err, &he) && he.Status == 401:
					halts++ // two early 401s in a row: the runner halts, then retries
					time.Sleep(5 * time.Minute)
				case c == delivery.Permanent:
					t.Fatalf("permanent error: %v", err)
				case ra > 0:
					time.Sleep(ra)
				default:
					time.Sleep(time.Second)
				}
				return true
			}
			if rng.Float64() < 0.08 {
				lost++ // crashed before the store committed: poll again from cur
				if rng.Float64() < 0.5 {
					restarts++
					s = newSource()
				}
				return true
			}
			m.store(p)
			cur = p.Next
			return p.More
		}
		for time.Since(start) < runFor {
			if !step() {
				time.Sleep(interval)
			}
		}
		stopTraffic()
		<-trafficDone
		emu.SetFaults(emulator.Faults{})
		stopped := time.Now()
		// Let the last activities settle and become visible, then catch up.
		time.Sleep(maxLag + settle)
		for step() {
		}
		end := mustDecode(t, cur).Until
		if end.Before(stopped) {
			t.Fatalf("final watermark %v is before the traffic stopped (%v)", end, stopped)
		}
		// The first window re-reads the overlap before the first watermark.
		m.checkOnce(t, (&emuTest{emu: emu}).idsIn(first.Add(-overlap), end))

		st := emu.Stats()
		t.Logf("%d events delivered in %d pages, %d re-reads dropped; %d pages lost, %d restarts, %d retries, %d halts; emulator %+v",
			len(m.delivered), m.pages, m.dropped, lost, restarts, retries, halts, st)
		if len(m.delivered) < 3000 || m.dropped == 0 || lost == 0 || restarts == 0 || st.Faults == 0 || st.TokenRequests < 3 {
			t.Errorf("the simulation did not exercise what it should: %d events, %d dropped, %d lost, %d restarts, %+v",
				len(m.delivered), m.dropped, lost, restarts, st)
		}
		late := 0
		for _, a := range emu.Activities(emuEnvID) {
			if a.VisibleAt.Sub(a.RecordedAt) > settle && m.delivered[a.ID] == 1 {
				late++
			}
		}
		if late == 0 {
			t.Error("no activity visible later than settle_delay was delivered: the overlap was not exercised")
		}
	})
}
