// Package httpx is the HTTP plumbing shared by every source and sink: error
// classes, Retry-After parsing, capped jittered backoff, a client with sane
// timeouts, and the guard that allows plain http:// only to loopback.
package httpx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
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

// ClassifyStatus returns the class of an HTTP status code: 429 throttled, 408
// and 5xx transient, any other 4xx permanent, anything else transient.
func ClassifyStatus(status int) Class {
	switch {
	case status == http.StatusTooManyRequests:
		return Throttled
	case status == http.StatusRequestTimeout, status >= 500:
		return Transient
	case status >= 400:
		return Permanent
	}
	return Transient
}

// StatusError builds the classified error for a non-success response.
// msg is the server's message, if it gave one.
func StatusError(op string, resp *http.Response, msg string) *Error {
	e := &Error{Class: ClassifyStatus(resp.StatusCode), Op: op, Status: resp.StatusCode, Msg: msg}
	if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		e.RetryAfter = d
	}
	return e
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
	t, err := http.ParseTime(v)
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

// CheckURL validates an endpoint URL: it must be absolute, https, or plain
// http to a loopback address (the emulators, a local proxy). It never
// includes credentials.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL (want https://host)", raw)
	}
	if u.User != nil {
		return errors.New("URL must not carry credentials; use the credential settings")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("plain http:// is only allowed to loopback addresses, not %q: use https://", u.Hostname())
	}
	return fmt.Errorf("scheme %q is not supported (want https://)", u.Scheme)
}

// IsLoopback reports whether host is "localhost" or a loopback IP address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NewClient returns an HTTP client with a whole-request timeout that refuses
// redirects to plain http on a non-loopback host.
func NewClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	tr.ResponseHeaderTimeout = timeout
	return &http.Client{
		Timeout:   timeout,
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			return CheckURL(req.URL.String())
		},
	}
}

// UserAgent is sent on every request.
const UserAgent = "auditrelay"

// NetworkError classifies a failed request: every network failure is
// transient, and those that a wrong endpoint causes (unknown host, refused
// connection, TLS failure) name the setting to check.
func NetworkError(op string, err error, rawURL, field string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is long and carries nothing the fix needs
	}
	host := rawURL
	if u, perr := url.Parse(rawURL); perr == nil {
		host = u.Host
	}
	e := &Error{Class: Transient, Op: op, Err: err}
	var (
		dnsErr     *net.DNSError
		certErr    *tls.CertificateVerificationError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
		recordErr  tls.RecordHeaderError
		opErr      *net.OpError
	)
	switch {
	case errors.As(err, &dnsErr):
		e.Fix = fmt.Sprintf("cannot resolve %s: check %s", host, field)
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr),
		errors.As(err, &invalidErr), errors.As(err, &recordErr):
		e.Fix = fmt.Sprintf("TLS with %s failed: check %s, and any proxy in between", host, field)
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH):
		e.Fix = fmt.Sprintf("cannot reach %s: check %s and the network path to it", host, field)
	case errors.As(err, &opErr) && opErr.Op == "dial" && !opErr.Timeout():
		e.Fix = fmt.Sprintf("cannot reach %s: check %s and the network path to it", host, field)
	}
	return e
}
