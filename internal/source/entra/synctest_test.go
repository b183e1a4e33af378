package entra

import (
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/httpx/httpxtest"
)

// drainAll polls every stream in turn until all are caught up, sleeping
// after errors as the runner does: the server's Retry-After, else backoff.
func drainAll(t *testing.T, rs []*relay) {
	t.Helper()
	done := make([]bool, len(rs))
	for range 20000 {
		left := 0
		for i, r := range rs {
			if done[i] {
				continue
			}
			left++
			p, err := r.poll()
			switch {
			case err != nil && delivery.IsPermanent(err):
				t.Fatalf("%s: permanent error: %v", r.s.Name(), err)
			case err != nil:
				time.Sleep(delivery.Backoff{Base: time.Second, Max: 30 * time.Second}.Wait(err, 1))
			case !p.More:
				done[i] = true
			}
		}
		if left == 0 {
			return
		}
	}
	t.Fatal("not caught up after 20000 rounds")
}

func TestEntraThrottlingIsHonouredWithNoLostEvent(t *testing.T) {
	for _, dates := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			emu := emulator.NewEntra(emulator.EntraOptions{RetryAfterDate: dates})
			emu.AddTenant(emulator.EntraTenant{ID: tenantID, Premium: true})
			emu.AddApp(emulator.EntraApp{TenantID: tenantID, ClientID: clientID, ClientSecret: clientSecret, Permissions: allPerms})
			now := time.Now()
			g := emulator.NewEntraGenerator(tenantID, 11)
			for _, st := range []string{emulator.EntraDirectoryAudits, emulator.EntraSignIns, emulator.EntraProvisioning} {
				emu.Backlog(g, tenantID, st, 600, now.Add(-6*time.Hour), now.Add(-20*time.Minute), 0)
			}
			base, hc := httpxtest.ServePipe(t, emu, time.Minute)
			cfg := testConfig(base, StreamDirectoryAudits, StreamSignIns, StreamProvisioning)
			cfg.PageSize, cfg.Lookback = 100, 7*3600e9
			// No pacing: three streams at full speed meet Graph's 5
			// requests per 10 s at once.
			ss := newSourcesLimited(t, cfg, hc, nil, rate.NewLimiter(rate.Inf, 1))
			var rs []*relay
			for _, s := range ss {
				rs = append(rs, newRelay(t, s))
			}
			start := time.Now()
			drainAll(t, rs)
			stats := emu.Stats()
			var requests, throttled int64
			for _, r := range rs {
				checkAll(t, &tenant{emu: emu}, emuStream[r.s.Stream()], r)
				s := stats.Streams[emuStream[r.s.Stream()]]
				requests, throttled = requests+s.Requests, throttled+s.Throttled
			}
			if throttled == 0 {
				t.Fatal("no request was throttled: the test proves nothing")
			}
			// After a 429 every stream waits for its Retry-After: most
			// requests go through, and the pace is Graph's.
			if throttled*3 > requests {
				t.Errorf("%d of %d requests throttled: Retry-After is not honoured", throttled, requests)
			}
			if took, min := time.Since(start), time.Duration(requests-throttled-5)*2*time.Second; took < min {
				t.Errorf("%d admitted requests in %v, faster than 5 per 10 s", requests-throttled, took)
			}
		})
	}
}

func TestEntraDefaultRateLimitIsNeverThrottled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		emu := emulator.NewEntra(emulator.EntraOptions{})
		emu.AddTenant(emulator.EntraTenant{ID: tenantID, Premium: true})
		emu.AddApp(emulator.EntraApp{TenantID: tenantID, ClientID: clientID, ClientSecret: clientSecret, Permissions: allPerms})
		now := time.Now()
		g := emulator.NewEntraGenerator(tenantID, 12)
		for _, st := range []string{emulator.EntraDirectoryAudits, emulator.EntraSignIns} {
			emu.Backlog(g, tenantID, st, 300, now.Add(-3*time.Hour), now.Add(-20*time.Minute), 0)
		}
		base, hc := httpxtest.ServePipe(t, emu, time.Minute)
		cfg := testConfig(base)
		cfg.PageSize, cfg.Lookback = 100, 4*3600e9
		ss := newSourcesLimited(t, cfg, hc, nil, rate.NewLimiter(rate.Limit(cfg.RateLimit), 1))
		rs := []*relay{newRelay(t, ss[StreamDirectoryAudits]), newRelay(t, ss[StreamSignIns])}
		drainAll(t, rs)
		for _, r := range rs {
			checkAll(t, &tenant{emu: emu}, emuStream[r.s.Stream()], r)
			if s := emu.Stats().Streams[emuStream[r.s.Stream()]]; s.Throttled != 0 {
				t.Errorf("%s: %d throttled at rate_limit %v shared by the streams", r.s.Name(), s.Throttled, cfg.RateLimit)
			}
		}
	})
}
