package daemon

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/secret/secrettest"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir and
// returns their paths and a pool trusting it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "auditrelay test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestMetricsTLSAndAuth: over HTTPS, /metrics, / and /status.json answer
// only with the configured password or token; /healthz and /readyz answer
// probes without any; no answer carries a credential.
func TestMetricsTLSAndAuth(t *testing.T) {
	const password, token = "pw-7c1f0e2d9a", "tok-51b8e6a3f0"
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	addr := freeAddr(t)
	cfg := &config.Config{DataDir: filepath.Join(dir, "data"), SpoolMaxBytes: 1 << 30, MetricsListen: addr,
		MetricsTLS: &config.MetricsTLS{CertFile: certFile, KeyFile: keyFile},
		MetricsAuth: &config.MetricsAuth{Basic: &config.BasicAuth{Username: "operator", Password: secret.New(password)},
			BearerToken: secret.New(token)}}
	logs := &syncBuffer{}
	d, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	base := "https://" + addr
	var bodies []string
	call := func(path string, set func(*http.Request)) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if set != nil {
			set(req)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		bodies = append(bodies, string(b))
		return resp.StatusCode, resp.Header
	}
	eventually(t, "readyz over HTTPS without credentials", func() bool { c, _ := call("/readyz", nil); return c == http.StatusOK })
	if c, _ := call("/healthz", nil); c != http.StatusOK {
		t.Errorf("/healthz without credentials = %d, want 200 (probes carry none)", c)
	}
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	for _, path := range []string{"/metrics", "/", "/status.json"} {
		for name, tc := range map[string]struct {
			set  func(*http.Request)
			want int
		}{
			"none":              {nil, http.StatusUnauthorized},
			"wrong password":    {basic("operator", password+"x"), http.StatusUnauthorized},
			"wrong user":        {basic("admin", password), http.StatusUnauthorized},
			"wrong token":       {bearer(token[:len(token)-1]), http.StatusUnauthorized},
			"password":          {basic("operator", password), http.StatusOK},
			"token":             {bearer(token), http.StatusOK},
			"password as token": {bearer(password), http.StatusUnauthorized},
		} {
			code, h := call(path, tc.set)
			if code != tc.want {
				t.Errorf("GET %s with %s = %d, want %d", path, name, code, tc.want)
			}
			if code == http.StatusUnauthorized && len(h.Values("WWW-Authenticate")) != 2 {
				t.Errorf("GET %s with %s: WWW-Authenticate %q, want the Basic and Bearer challenges", path, name, h.Values("WWW-Authenticate"))
			}
		}
	}
	// Plain HTTP on the HTTPS port serves nothing.
	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP on the HTTPS listener answered 200: %.100s", b)
		}
	}
	all := strings.Join(bodies, "\n") + logs.String()
	for _, s := range append(append(secrettest.Forms("operator", password), token), secrettest.Forms("", token)...) {
		if strings.Contains(all, s) {
			t.Errorf("the credential %q is in an answer or the log", s)
		}
	}
}

// TestMetricsTLSBadCertificate: a daemon whose metrics_tls files cannot be
// loaded does not start, and says which files.
func TestMetricsTLSBadCertificate(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.crt")
	cfg := &config.Config{DataDir: filepath.Join(dir, "data"), SpoolMaxBytes: 1 << 30, MetricsListen: freeAddr(t),
		MetricsTLS: &config.MetricsTLS{CertFile: missing, KeyFile: missing}}
	d, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "metrics_tls") || !strings.Contains(err.Error(), missing) {
		t.Errorf("Run with an unreadable certificate = %v, want an error naming metrics_tls and the file", err)
	}
}
