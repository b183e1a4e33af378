// Package httpx is the HTTP plumbing shared by every source and sink: the
// delivery class of each HTTP status, a client with sane timeouts, the
// guard that allows plain http:// only to loopback, network errors that
// name the setting to check, and OAuth 2.0 client credentials tokens.
package httpx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
)

// ClassifyStatus returns the class of an HTTP status code: 429 throttled, 408
// and 5xx transient, any other 4xx permanent, anything else transient.
func ClassifyStatus(status int) delivery.Class {
	switch {
	case status == http.StatusTooManyRequests:
		return delivery.Throttled
	case status == http.StatusRequestTimeout, status >= 500:
		return delivery.Transient
	case status >= 400:
		return delivery.Permanent
	}
	return delivery.Transient
}

// StatusError builds the classified error for a non-success response.
// msg is the server's message, if it gave one.
func StatusError(op string, resp *http.Response, msg string) *delivery.Error {
	e := &delivery.Error{Class: ClassifyStatus(resp.StatusCode), Op: op, Status: resp.StatusCode, Msg: msg}
	if d, ok := delivery.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		e.RetryAfter = d
	}
	return e
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
	e := &delivery.Error{Class: delivery.Transient, Op: op, Err: err}
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
