package httpx

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// TokenCache holds one bearer token for a client: it fetches a token when
// none is cached or the cached one is due for renewal, lets only one caller
// fetch at a time (the others wait and use its token), and renews a fifth
// of the lifetime early, at most a minute (see RenewAhead), so that no
// request leaves with a token about to lapse.
type TokenCache struct {
	op    string
	fetch func(context.Context) (token string, ttl time.Duration, err error)
	now   func() time.Time
	ahead time.Duration // the most a token is renewed before it lapses
	sem   chan struct{}
	mu    sync.Mutex
	tok   string
	renew time.Time // zero: no lifetime given, used until dropped
}

// NewTokenCache returns a cache that gets tokens with fetch, which returns
// the token and its lifetime (0 when unknown). op prefixes errors; now
// defaults to time.Now.
func NewTokenCache(op string, fetch func(context.Context) (string, time.Duration, error), now func() time.Time) *TokenCache {
	if now == nil {
		now = time.Now
	}
	return &TokenCache{op: op, fetch: fetch, now: now, ahead: time.Minute, sem: make(chan struct{}, 1)}
}

// RenewAhead sets the most a token is renewed before its lifetime ends (a
// fifth of the lifetime, at most d; default one minute) and returns c. It
// is for a client whose server expects more slack, and must be called
// before the cache is used.
func (c *TokenCache) RenewAhead(d time.Duration) *TokenCache {
	c.ahead = d
	return c
}

// Token returns the cached token or fetches a new one. Fetch errors are
// returned as fetch returned them.
func (c *TokenCache) Token(ctx context.Context) (string, error) {
	if tok, ok := c.cached(); ok {
		return tok, nil
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("%s: %w", c.op, ctx.Err())
	}
	defer func() { <-c.sem }()
	if tok, ok := c.cached(); ok {
		return tok, nil // another caller got one meanwhile
	}
	start := c.now()
	tok, ttl, err := c.fetch(ctx)
	if err != nil {
		return "", err
	}
	var renew time.Time
	if ttl > 0 {
		renew = start.Add(ttl - min(c.ahead, ttl/5))
	}
	c.mu.Lock()
	c.tok, c.renew = tok, renew
	c.mu.Unlock()
	return tok, nil
}

func (c *TokenCache) cached() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok == "" || (!c.renew.IsZero() && !c.now().Before(c.renew)) {
		return "", false
	}
	return c.tok, true
}

// Drop forgets tok if it is still the cached token (the server rejected
// it), so that the next Token fetches a new one.
func (c *TokenCache) Drop(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok == tok {
		c.tok, c.renew = "", time.Time{}
	}
}
