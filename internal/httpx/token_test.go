package httpx

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestTokenCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fetches atomic.Int32
		c := NewTokenCache("test: token", func(ctx context.Context) (string, time.Duration, error) {
			n := fetches.Add(1)
			time.Sleep(100 * time.Millisecond) // a slow token endpoint
			return fmt.Sprintf("tok-%d", n), 10 * time.Minute, nil
		}, nil)
		ctx := context.Background()
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if tok, err := c.Token(ctx); err != nil || tok != "tok-1" {
					t.Errorf("Token = %q, %v", tok, err)
				}
			})
		}
		wg.Wait()
		if fetches.Load() != 1 {
			t.Fatalf("%d fetches for 10 concurrent callers, want 1", fetches.Load())
		}
		// renewed a minute before expiry (a fifth of 10 minutes is more)
		time.Sleep(8*time.Minute + 50*time.Second)
		if tok, _ := c.Token(ctx); tok != "tok-1" {
			t.Fatalf("renewed too early: %s", tok)
		}
		time.Sleep(20 * time.Second)
		if tok, _ := c.Token(ctx); tok != "tok-2" {
			t.Fatalf("not renewed near expiry: %s", tok)
		}
		c.Drop("tok-1") // stale: ignored
		if tok, _ := c.Token(ctx); tok != "tok-2" {
			t.Fatalf("dropping an old token dropped the current one: %s", tok)
		}
		c.Drop("tok-2")
		if tok, _ := c.Token(ctx); tok != "tok-3" {
			t.Fatalf("after Drop: %s", tok)
		}
	})
}

func TestTokenCacheError(t *testing.T) {
	boom := errors.New("boom")
	c := NewTokenCache("test: token", func(context.Context) (string, time.Duration, error) { return "", 0, boom }, nil)
	if _, err := c.Token(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.sem <- struct{}{} // another caller is fetching
	if _, err := c.Token(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: err = %v", err)
	}
}

func TestTokenCacheRenewAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := 0
		c := NewTokenCache("test: token", func(context.Context) (string, time.Duration, error) {
			n++
			return fmt.Sprintf("tok-%d", n), time.Hour, nil
		}, nil).RenewAhead(5 * time.Minute)
		ctx := context.Background()
		c.Token(ctx)
		time.Sleep(54*time.Minute + 50*time.Second)
		if tok, _ := c.Token(ctx); tok != "tok-1" {
			t.Fatalf("renewed more than 5 minutes early: %s", tok)
		}
		time.Sleep(20 * time.Second)
		if tok, _ := c.Token(ctx); tok != "tok-2" {
			t.Fatalf("not renewed 5 minutes before expiry: %s", tok)
		}
	})
}
