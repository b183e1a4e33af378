// Package delivery classifies delivery errors once for every source, sink
// and store: permanent (the operator must fix something, and the error says
// what), throttled (wait for the server's Retry-After), transient (retry
// with capped, jittered backoff). It knows no protocol: HTTP statuses are
// mapped to classes in httpx, Kafka and syslog errors in their sinks.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Class says what a caller should do about an error.
type Class int

// The error classes.
const (
	// Transient errors (timeouts, 5xx, truncated bodies) are retried with
	// capped, jittered backoff.
	Transient Class = iota
	// Throttled errors (429) are retried after the server's Retry-After.
	Throttled
	// Permanent errors (bad credentials, 400, 403) stop the runner with an
	// operator-facing message until the configuration is fixed.
	Permanent
)

// String names the class as metrics and logs label it.
func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Throttled:
		return "throttled"
	case Permanent:
		return "permanent"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Error is a classified error. Fix, when set, tells the operator what to do.
type Error struct {
	Class      Class
	Op         string        // what was being done: "pingone: list activities"
	Status     int           // HTTP status, 0 if none
	RetryAfter time.Duration // the server's Retry-After, 0 if none
	Msg        string        // the server's own message, if any
	Fix        string        // the operator's fix, if known
	Err        error         // the underlying error, if any
}

// Error formats the error on one line: what was done, the status, the
// server's message, the cause and, in parentheses, the operator's fix.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Fix != "" {
		b.WriteString(" (")
		b.WriteString(e.Fix)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of err and the delay the server asked for. Errors
// that are not an *Error are transient: an unknown failure is retried, never
// dropped.
func ClassOf(err error) (Class, time.Duration) {
	var e *Error
	if errors.As(err, &e) {
		return e.Class, e.RetryAfter
	}
	return Transient, 0
}

// IsPermanent reports whether err is classified Permanent.
func IsPermanent(err error) bool {
	c, _ := ClassOf(err)
	return c == Permanent
}

// maxRetryAfter bounds how long a server can ask us to wait in one go.
const maxRetryAfter = time.Hour

// ParseRetryAfter parses a Retry-After header value: delay-seconds or an HTTP
// date, relative to now. It reports false for an empty or malformed value. The
// result is never negative and never above one hour.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := parseHTTPDate(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	if d > maxRetryAfter {
		d = maxRetryAfter
	}
	return d, true
}

// Backoff is a capped exponential backoff with equal jitter: retry n waits
// a uniformly random duration in [d/2, d), where d = Base·2^(n-1) capped at
// Max. The lower half keeps a storm of retries from arriving together; the
// floor keeps a retry from coming back at once.
type Backoff struct {
	Base, Max time.Duration
}

// Delay returns the wait before retry number attempt (1-based).
func (b Backoff) Delay(attempt int) time.Duration {
	base, max := b.Base, b.Max
	if base <= 0 {
		base = 500 * time.Millisecond
	}
	if max <= 0 {
		max = time.Minute
	}
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	return half + rand.N(d-half)
}

// Wait returns the delay before retrying after err on the given attempt:
// the server's Retry-After when it sent one, the backoff otherwise.
func (b Backoff) Wait(err error, attempt int) time.Duration {
	if _, ra := ClassOf(err); ra > 0 {
		return ra
	}
	return b.Delay(attempt)
}

// Sleep waits for d or until ctx is done, reporting whether d elapsed.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// parseHTTPDate parses an HTTP date in the three forms RFC 9110 makes a
// recipient accept (IMF-fixdate, RFC 850, asctime).
func parseHTTPDate(v string) (time.Time, error) {
	var err error
	for _, layout := range []string{"Mon, 02 Jan 2006 15:04:05 GMT", "Monday, 02-Jan-06 15:04:05 GMT", "Mon Jan _2 15:04:05 2006"} {
		var t time.Time
		if t, err = time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}
