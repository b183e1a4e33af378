package daemon

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"

	"github.com/auditrelay/auditrelay/internal/config"
)

// metricsAuth checks the credentials of requests to metrics_listen. It
// keeps digests of the secrets and compares digests in constant time, so
// that neither a credential's content nor its length shows in the time
// an answer takes.
type metricsAuth struct {
	basic       bool
	user, pass  [sha256.Size]byte
	bearer      bool
	token       [sha256.Size]byte
	challenges  []string
	unprotected bool
}

func newMetricsAuth(c *config.MetricsAuth) *metricsAuth {
	if c == nil {
		return &metricsAuth{unprotected: true}
	}
	a := &metricsAuth{}
	if b := c.Basic; b != nil {
		a.basic, a.user, a.pass = true, sha256.Sum256([]byte(b.Username)), sha256.Sum256([]byte(b.Password.Reveal()))
		a.challenges = append(a.challenges, `Basic realm="auditrelay", charset="UTF-8"`)
	}
	if !c.BearerToken.IsZero() {
		a.bearer, a.token = true, sha256.Sum256([]byte(c.BearerToken.Reveal()))
		a.challenges = append(a.challenges, `Bearer realm="auditrelay"`)
	}
	return a
}

// allowed reports whether r carries credentials a accepts.
func (a *metricsAuth) allowed(r *http.Request) bool {
	if a.unprotected {
		return true
	}
	h := r.Header.Get("Authorization")
	if scheme, tok, ok := strings.Cut(h, " "); a.bearer && ok && strings.EqualFold(scheme, "Bearer") {
		got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		return subtle.ConstantTimeCompare(got[:], a.token[:]) == 1
	}
	if user, pass, ok := r.BasicAuth(); a.basic && ok {
		u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
		return subtle.ConstantTimeCompare(u[:], a.user[:])&subtle.ConstantTimeCompare(p[:], a.pass[:]) == 1
	}
	return false
}

// wrap answers 401 to a request without accepted credentials, and passes
// the others to h.
func (a *metricsAuth) wrap(h http.Handler) http.Handler {
	if a.unprotected {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.allowed(r) {
			for _, c := range a.challenges {
				w.Header().Add("WWW-Authenticate", c)
			}
			http.Error(w, "unauthorized: this endpoint needs the credentials of metrics_auth", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// metricsTLSConfig loads the certificate of metrics_tls; nil without one.
func metricsTLSConfig(c *config.MetricsTLS) (*tls.Config, error) {
	if c == nil {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("metrics_tls: load %s and %s: %w (both PEM, readable by the daemon's user, the key matching the certificate)", c.CertFile, c.KeyFile, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}
