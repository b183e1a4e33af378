package delivery

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"3", 3 * time.Second, true},
		{" 12 ", 12 * time.Second, true},
		{"-1", 0, false},
		{"abc", 0, false},
		{"99999999", time.Hour, true},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{now.Add(-30 * time.Second).Format(http.TimeFormat), 0, true},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), time.Hour, true},
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "1", "Wed, 21 Oct 2015 07:28:00 GMT", "-5", "1e9"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s, now)
		if d < 0 || d > time.Hour {
			t.Fatalf("ParseRetryAfter(%q) = %v out of range", s, d)
		}
		if !ok && d != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v with ok=false", s, d)
		}
	})
}

func TestClassOfWrapped(t *testing.T) {
	e := &Error{Class: Throttled, Op: "x", RetryAfter: 2 * time.Second}
	c, ra := ClassOf(fmt.Errorf("wrap: %w", e))
	if c != Throttled || ra != 2*time.Second {
		t.Fatalf("got %v %v", c, ra)
	}
	if c, _ := ClassOf(errors.New("plain")); c != Transient {
		t.Fatalf("plain error class = %v", c)
	}
	if !IsPermanent(&Error{Class: Permanent}) {
		t.Fatal("IsPermanent false")
	}
}

func TestBackoffBounds(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second}
	for attempt := 1; attempt < 30; attempt++ {
		for range 50 {
			d := b.Delay(attempt)
			want := 100 * time.Millisecond << min(attempt-1, 5)
			if want > 2*time.Second {
				want = 2 * time.Second
			}
			if d < want/2 || d >= want {
				t.Fatalf("attempt %d: delay %v outside [%v, %v)", attempt, d, want/2, want)
			}
		}
	}
	// At the smallest steps the bound is exact: [1ns, 2ns) holds only 1ns,
	// and a delay of d itself would be outside the documented range.
	tiny := Backoff{Base: 2, Max: 2}
	for range 200 {
		if d := tiny.Delay(1); d != 1 {
			t.Fatalf("Delay with d = 2ns returned %v, want 1ns (range [d/2, d))", d)
		}
	}
	// The jitter spreads over the whole range, not only its top.
	var low, high int
	for range 1000 {
		switch d := b.Delay(1); {
		case d < 75*time.Millisecond:
			low++
		default:
			high++
		}
	}
	if low < 300 || high < 300 {
		t.Fatalf("delays not spread over [50ms, 100ms): %d below 75ms, %d above", low, high)
	}
	if got := b.Wait(&Error{Class: Throttled, RetryAfter: 7 * time.Second}, 1); got != 7*time.Second {
		t.Fatalf("Wait honoured %v, want 7s", got)
	}
}
