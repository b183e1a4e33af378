package pingone

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"golang.org/x/time/rate"
)

// newBubbleSource builds a source on the bubble's clock against h, served
// over an in-memory network.
func newBubbleSource(t *testing.T, h http.Handler, lim *rate.Limiter, timeout time.Duration) *Source {
	t.Helper()
	base, client := servePipe(t, h, timeout)
	cfg := testConfig(base)
	s, err := New("p1", cfg, Options{HTTPClient: client, Limiter: lim, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeAPI()
		f.ttl = 3600
		s := newBubbleSource(t, f, rate.NewLimiter(rate.Inf, 1), time.Minute)
		poll := func() {
			t.Helper()
			if _, err := s.Poll(t.Context(), nil); err != nil {
				t.Fatal(err)
			}
		}
		poll()
		time.Sleep(58 * time.Minute) // within the token's life, before the renewal margin
		poll()
		if got := f.tokenCount(); got != 1 {
			t.Errorf("after 58 minutes: %d tokens, want 1", got)
		}
		time.Sleep(time.Minute + time.Second) // within a minute of expiry: renew
		poll()
		if got := f.tokenCount(); got != 2 {
			t.Errorf("after 59 minutes: %d tokens, want 2", got)
		}
		if got := f.auths[len(f.auths)-1]; got != "Bearer tok-2" {
			t.Errorf("last request used %q, want the new token", got)
		}
	})
}

func TestLimiterPacesActivityRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeAPI()
		lim := rate.NewLimiter(2, 1) // 2 requests/s
		s := newBubbleSource(t, f, lim, time.Minute)
		start := time.Now()
		for range 5 {
			if _, err := s.Poll(t.Context(), nil); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := time.Since(start), 2*time.Second; got < want {
			t.Errorf("5 requests at 2/s took %v, want at least %v", got, want)
		}
		if got := len(f.requests()); got != 5 {
			t.Errorf("%d requests, want 5", got)
		}
		// The token request is not paced: only one limiter token per poll.
		if got := f.tokenCount(); got != 1 {
			t.Errorf("%d token requests, want 1", got)
		}
	})
}

func TestLimiterSharedAcrossSources(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := rate.NewLimiter(1, 1)
		a := newBubbleSource(t, newFakeAPI(), lim, time.Minute)
		b := newBubbleSource(t, newFakeAPI(), lim, time.Minute)
		start := time.Now()
		for range 3 {
			for _, s := range []*Source{a, b} {
				if _, err := s.Poll(t.Context(), nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got, want := time.Since(start), 5*time.Second; got < want {
			t.Errorf("6 requests at a shared 1/s took %v, want at least %v", got, want)
		}
	})
}

func TestPollRequestTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeAPI()
		f.override = func(w http.ResponseWriter, r *http.Request, n int) bool {
			select {
			case <-time.After(5 * time.Minute):
			case <-r.Context().Done():
			}
			return true
		}
		s := newBubbleSource(t, f, rate.NewLimiter(rate.Inf, 1), time.Minute)
		start := time.Now()
		_, err := s.Poll(t.Context(), nil)
		var he *delivery.Error
		if !errors.As(err, &he) || he.Class != delivery.Transient || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want Transient deadline exceeded", err)
		}
		if got := time.Since(start); got != time.Minute {
			t.Errorf("gave up after %v, want the 1m request timeout", got)
		}
	})
}

func TestPollCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeAPI()
		lim := rate.NewLimiter(rate.Every(time.Hour), 1)
		lim.Allow() // the next request waits an hour
		s := newBubbleSource(t, f, lim, time.Minute)
		ctx, stop := context.WithTimeout(t.Context(), 10*time.Second)
		defer stop()
		_, err := s.Poll(ctx, nil)
		if err == nil || delivery.IsPermanent(err) {
			t.Errorf("err = %v, want a non-permanent error", err)
		}
		if got := len(f.requests()); got != 0 {
			t.Errorf("%d requests despite the limiter", got)
		}
	})
}
