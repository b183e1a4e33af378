package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"sync"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
)

// emulateSyslog serves a syslog receiver that prints every message it
// gets, parsed: for people building a CEF or LEEF mapping, or checking
// what a syslog sink sends.
func emulateSyslog(ctx context.Context, args []string, env Env) int {
	fs := newFlags("emulate syslog", env)
	listen := fs.String("listen", "127.0.0.1:6514", "`ADDR` to listen on (the syslog sink's address)")
	useTLS := fs.Bool("tls", false, "speak TLS (RFC 5425) with a self-signed certificate, written to a file to give the sink as ca_file")
	maxBytes := fs.Int("max-message-bytes", 8096, "largest message taken, as rsyslog's default; longer ones are skipped and counted")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay emulate: %v\n", err)
		return exitFailure
	}
	var mu sync.Mutex
	n := 0
	opts := emulator.SyslogOptions{MaxMessageBytes: *maxBytes, OnMessage: func(m emulator.SyslogMessage) {
		mu.Lock()
		defer mu.Unlock()
		n++
		fmt.Fprintf(env.Stdout, "#%d %s", n, m.Describe())
	}}
	transport, caNote := "tcp", ""
	if *useTLS {
		host, _, _ := net.SplitHostPort(ln.Addr().String())
		cert, caFile, err := selfSigned(host)
		if err != nil {
			ln.Close()
			fmt.Fprintf(env.Stderr, "auditrelay emulate: %v\n", err)
			return exitFailure
		}
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		transport, caNote = "tls", fmt.Sprintf(", ca_file: %q", caFile)
	}
	emu := emulator.NewSyslog(opts)
	fmt.Fprintf(env.Stdout, "syslog receiver on %s (octet counting or LF framing, RFC 5424; CEF and LEEF split)\n", ln.Addr())
	fmt.Fprintf(env.Stdout, "  syslog: { address: %q, transport: %s%s }\n", ln.Addr().String(), transport, caNote)
	done := make(chan error, 1)
	go func() { done <- emu.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err = <-done:
	}
	emu.Close()
	st := emu.Stats()
	fmt.Fprintf(env.Stdout, "received %d messages on %d connections: %d malformed, %d over %d bytes skipped, %d connections out of sync\n",
		st.Messages, st.Connections, st.Malformed, st.TooLarge, *maxBytes, st.Desync)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay emulate: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// selfSigned makes a self-signed certificate for host, 127.0.0.1 and
// localhost, valid for a week, and writes it as PEM to a new file in the
// temporary directory: the file to give the sink as ca_file.
func selfSigned(host string) (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("syslog certificate: %w", err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "auditrelay emulate syslog"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(7 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else if host != "" && ip == nil {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("syslog certificate: %w", err)
	}
	f, err := os.CreateTemp("", "auditrelay-syslog-ca-*.pem")
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("syslog certificate: %w", err)
	}
	defer f.Close()
	if err := pem.Encode(f, &pem.Block{Type: "CERTIFICATE", Bytes: der}); err != nil {
		return tls.Certificate{}, "", fmt.Errorf("syslog certificate: write %s: %w", f.Name(), err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, f.Name(), nil
}
