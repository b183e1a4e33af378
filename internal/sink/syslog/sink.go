// Package syslog sends events to a syslog receiver (QRadar, ArcSight,
// rsyslog, syslog-ng, …) as RFC 5424 messages in RFC 6587 octet-counting
// frames, over TLS (RFC 5425, the default) or plain TCP to loopback.
//
// Each event is one message: TIMESTAMP is the event's time, HOSTNAME this
// collector, APP-NAME app_name, PROCID the process id, MSGID the
// provider's action code (PingOne action.type, CyberArk auditCode, Okta
// eventType, Entra activityDisplayName or provisioningAction). In format
// rfc5424 the structured data [auditrelay@32473 id source provider
// tenant] carries the envelope and MSG is the provider's event as compact
// JSON, without a BOM; in formats cef and leef MSG is an ArcSight CEF or a
// QRadar LEEF 2.0 line mapped from the event (docs/sinks/syslog.md). A
// message longer than max_message_bytes is parked, never cut.
//
// Syslog has no acknowledgment. A batch is acknowledged when it has been
// written on a connection, the receiver's TCP stack has acknowledged
// every byte of it (on Linux, where the socket tells), and the connection
// then stays open for confirm_wait: a close or a reset seen by then means
// the receiver may have lost part of the batch, and the whole batch is
// sent again on a new connection (once at once, then by the runner's
// retries). What this cannot see is a receiver that took the bytes and
// lost them after confirm_wait, in its own queues: see
// docs/sinks/syslog.md.
package syslog

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/sink"
)

const (
	opSend    = "syslog: send batch"
	opConnect = "syslog: connect"
	opCheck   = "syslog: check"
	opParkEv  = "syslog: park event"
)

// ShutdownGrace is how long a batch being written may still take once the
// caller's context is done, so that a clean stop does not leave a batch
// half written to be sent again.
const ShutdownGrace = 5 * time.Second

// idleCheck is how long a connection may sit idle before it is checked
// for a close by the receiver before writing to it.
const idleCheck = time.Second

// checkWait is how long Check watches a new connection: long enough for a
// TLS 1.3 receiver to refuse a missing client certificate.
const checkWait = 200 * time.Millisecond

// probeMin is the shortest watch for a close: a read whose deadline has
// passed returns at once without looking at the socket.
const probeMin = time.Millisecond

// Options are a Sink's collaborators.
type Options struct {
	// Logger receives the sink's logs; the caller attaches the sink's name.
	Logger *slog.Logger
	// Park is the file messages too large for the receiver are appended
	// to (fsynced before the batch is acknowledged). Nil: they are logged
	// and counted only.
	Park park.Keeper
	// Dial opens a connection to the receiver, TLS handshake done.
	// Default: TCP to address, then TLS as configured.
	Dial func(ctx context.Context) (net.Conn, error)
	// Hostname is the HOSTNAME of the messages when the config has none.
	// Default: this machine's name.
	Hostname string
	// ProcID is the PROCID of the messages. Default: this process's id.
	ProcID string
}

// Stats count what a Sink has done.
type Stats struct {
	// Sent counts events acknowledged (see the package documentation).
	Sent int64
	// Batches counts batches acknowledged.
	Batches int64
	// Bytes counts the octets of acknowledged batches, frames included.
	Bytes int64
	// Parked counts events parked instead of sent.
	Parked int64
	// Connects counts connections opened (TLS handshake done).
	Connects int64
	// Resent counts batches written again after a write failed or the
	// connection closed before the batch was acknowledged.
	Resent int64
}

// Sink is a syslog sink. Send is meant for one runner at a time.
type Sink struct {
	cfg    Config
	log    *slog.Logger
	keeper park.Keeper
	dial   func(ctx context.Context) (net.Conn, error)
	custom bool // dial came from Options

	mu        sync.Mutex
	enc       *encoder
	conn      net.Conn
	lastWrite time.Time
	parked    map[string]bool // events of the batch in progress parked
	out       []byte
	buf       [512]byte

	sent, batches, bytes, nparked, connects, resent atomic.Int64
}

// New returns a sink for cfg (defaulted and validated). It reads ca_file,
// cert_file and key_file; it opens no connection.
func New(cfg Config, opts Options) (*Sink, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("syslog: invalid config: %w", errors.Join(errs...))
	}
	fac, _ := ParseFacility(cfg.Facility)
	sev, _ := ParseSeverity(cfg.Severity)
	host := cfg.Hostname
	if host == "" {
		host = opts.Hostname
	}
	if host == "" {
		host, _ = os.Hostname()
	}
	procID := opts.ProcID
	if procID == "" {
		procID = strconv.Itoa(os.Getpid())
	}
	s := &Sink{cfg: cfg, log: opts.Logger, keeper: opts.Park, dial: opts.Dial, custom: opts.Dial != nil, parked: map[string]bool{}}
	s.enc = newEncoder(header{format: cfg.Format, facility: fac, severity: sev,
		host: sanitize(host, maxHostname), app: cfg.AppName, procID: sanitize(procID, 128),
		sdID: "auditrelay@" + strconv.Itoa(cfg.EnterpriseID)})
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.dial == nil {
		d, err := Dialer(cfg)
		if err != nil {
			return nil, err
		}
		s.dial = d
	}
	return s, nil
}

// sanitize returns s as RFC 5424 PRINTUSASCII of at most max characters,
// NILVALUE when empty.
func sanitize(s string, max int) string {
	return string(appendMsgIDN(nil, s, max))
}

// Dialer returns the default Options.Dial of cfg: TCP to address with
// keepalives, then for transport tls a handshake verifying the receiver's
// certificate against the system's CAs and ca_file, for server_name or
// the host of address, presenting cert_file when set. It reads the files.
func Dialer(cfg Config) (func(ctx context.Context) (net.Conn, error), error) {
	var tc *tls.Config
	if cfg.Transport == TransportTLS {
		var err error
		if tc, err = tlsConfig(cfg); err != nil {
			return nil, err
		}
	}
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	return func(ctx context.Context) (net.Conn, error) {
		c, err := d.DialContext(ctx, "tcp", cfg.Address)
		if err != nil || tc == nil {
			return c, err
		}
		t := tls.Client(c, tc)
		if err := t.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		return t, nil
	}, nil
}

// tlsConfig builds the client TLS configuration of cfg.
func tlsConfig(cfg Config) (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(cfg.Address)
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ServerName}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("syslog: ca_file: %w (give a readable PEM file of the CA that signed the receiver's certificate)", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("syslog: ca_file: no PEM certificate in %s (give the CA certificate, BEGIN CERTIFICATE)", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("syslog: cert_file, key_file: %w (give a PEM client certificate and its unencrypted PEM key)", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Stats returns the counters.
func (s *Sink) Stats() Stats {
	return Stats{Sent: s.sent.Load(), Batches: s.batches.Load(), Bytes: s.bytes.Load(), Parked: s.nparked.Load(),
		Connects: s.connects.Load(), Resent: s.resent.Load()}
}

func parkKey(ev *event.Raw) string { return ev.Source + "\x00" + ev.ID }

// Send writes batch and returns nil once it is acknowledged (see the
// package documentation); events that cannot be sent are parked. A write
// that fails, or a close seen before the batch is acknowledged, is
// followed at once by one more attempt on a new connection; after that
// the error is transient and the runner retries the whole batch.
func (s *Sink) Send(ctx context.Context, batch []event.Raw) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", opSend, err)
	}
	ctx, stop := sink.Graceful(ctx, ShutdownGrace)
	defer stop()
	n, err := s.encode(batch)
	if err != nil {
		return err
	}
	if n > 0 {
		for attempt := 1; ; attempt++ {
			wrote, err := s.deliver(ctx)
			if err == nil {
				break
			}
			s.drop()
			if !wrote || attempt == 2 || ctx.Err() != nil {
				return err
			}
			s.resent.Add(1)
			s.log.Warn("syslog: connection lost before the batch was acknowledged; sending it again on a new connection",
				"events", n, "err", err)
		}
		s.sent.Add(int64(n))
		s.batches.Add(1)
		s.bytes.Add(int64(len(s.out)))
	}
	clear(s.parked)
	return nil
}

// encode frames the batch into s.out, parking what cannot be sent, and
// returns how many events it holds.
func (s *Sink) encode(batch []event.Raw) (int, error) {
	s.out = s.out[:0]
	n := 0
	max := int(s.cfg.MaxMessageBytes)
	for i := range batch {
		ev := &batch[i]
		if s.parked[parkKey(ev)] {
			continue
		}
		msg, err := s.enc.message(ev)
		if err != nil {
			if perr := s.park(ev, 0, err.Error()); perr != nil {
				return 0, perr
			}
			continue
		}
		if len(msg) > max {
			reason := fmt.Sprintf("message of %d bytes, over max_message_bytes %d (raise it and the receiver's limit, such as rsyslog's maxMessageSize, to send it)", len(msg), max)
			if perr := s.park(ev, len(msg), reason); perr != nil {
				return 0, perr
			}
			continue
		}
		s.out = appendFrame(s.out, msg)
		n++
	}
	return n, nil
}

// deliver writes s.out on the connection, connecting first when there is
// none, and waits for the batch to be acknowledged. wrote reports whether
// writing began: a failure to connect is not worth an immediate retry.
func (s *Sink) deliver(ctx context.Context) (wrote bool, err error) {
	if s.conn != nil && time.Since(s.lastWrite) > idleCheck {
		if err := s.watch(time.Now().Add(probeMin)); err != nil {
			s.log.Debug("syslog: the receiver closed the idle connection; reconnecting", "err", err)
			s.drop()
		}
	}
	if s.conn == nil {
		if err := s.connect(ctx); err != nil {
			return false, err
		}
	}
	deadline := time.Now().Add(s.cfg.WriteTimeout.D())
	c := s.conn
	unhook := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer unhook()
	c.SetWriteDeadline(deadline)
	s.lastWrite = time.Now()
	if _, err := c.Write(s.out); err != nil {
		return true, s.connError(ctx, "write", err)
	}
	if err := s.drain(ctx, deadline); err != nil {
		return true, err
	}
	wait := max(s.cfg.ConfirmWait.D(), probeMin)
	if err := s.watch(time.Now().Add(wait)); err != nil {
		return true, s.connError(ctx, "the receiver closed the connection right after the batch was written, before it was acknowledged", err)
	}
	if err := ctx.Err(); err != nil {
		// The watch was cut short: sending the batch again is the safe side.
		return true, s.connError(ctx, "stopped before the batch was acknowledged", err)
	}
	return true, nil
}

// drain waits until the receiver's TCP stack has acknowledged every byte
// written, where the socket tells (Linux).
func (s *Sink) drain(ctx context.Context, deadline time.Time) error {
	raw := s.conn
	if t, ok := raw.(*tls.Conn); ok {
		raw = t.NetConn()
	}
	gap := 50 * time.Microsecond
	for {
		n, ok := unsent(raw)
		if !ok || n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return &delivery.Error{Class: delivery.Transient, Op: opSend,
				Msg: fmt.Sprintf("the receiver has not taken %d bytes of the batch within write_timeout %v", n, s.cfg.WriteTimeout),
				Fix: "the receiver is overloaded or stalled: check its queue and disk"}
		}
		// Wait by watching: a close or reset leaves the count stuck.
		if err := s.watch(time.Now().Add(gap)); err != nil {
			return s.connError(ctx, "the receiver closed the connection before taking the whole batch", err)
		}
		if ctx.Err() != nil {
			return s.connError(ctx, "stopped before the batch was acknowledged", ctx.Err())
		}
		gap = min(2*gap, 10*time.Millisecond)
	}
}

// watch reads from the connection until deadline and reports a close or
// a reset; a receiver sends nothing, and anything it does send is
// discarded.
func (s *Sink) watch(deadline time.Time) error {
	s.conn.SetReadDeadline(deadline)
	for {
		_, err := s.conn.Read(s.buf[:])
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil
		}
		if err == io.EOF {
			return errors.New("closed by the receiver")
		}
		return err
	}
}

// connect opens a connection within write_timeout.
func (s *Sink) connect(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout.D())
	defer cancel()
	c, err := s.dial(dctx)
	if err != nil {
		if ctx.Err() != nil {
			return &delivery.Error{Class: delivery.Transient, Op: opConnect, Err: ctx.Err()}
		}
		return dialError(s.cfg, err)
	}
	s.conn = c
	s.lastWrite = time.Now()
	s.connects.Add(1)
	s.log.Debug("syslog: connected", "address", s.cfg.Address, "transport", s.cfg.Transport)
	return nil
}

// connError classifies a failure on an open connection: transient, the
// batch is sent again; a TLS alert names its likely fix.
func (s *Sink) connError(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	e := &delivery.Error{Class: delivery.Transient, Op: opSend, Msg: what, Err: err}
	if remoteAlert(err) {
		e.Fix = fixTLSRefused
	}
	return e
}

// remoteAlert reports whether err is a TLS alert the receiver sent.
func remoteAlert(err error) bool {
	var oe *net.OpError
	var alert tls.AlertError
	return errors.As(err, &oe) && oe.Op == "remote error" || errors.As(err, &alert)
}

// fixTLSRefused is the fix of a receiver that ends the TLS session with an
// alert, at the handshake or just after it (TLS 1.3 servers check the
// client certificate then).
const fixTLSRefused = "the receiver refused the TLS session: it may require a client certificate (cert_file and key_file) signed by a CA it trusts, or TLS 1.2 or later"

// dialError classifies a failure to connect. Every one is transient (the
// receiver may come back, a certificate may be renewed); those a setting
// causes name it.
func dialError(cfg Config, err error) error {
	e := &delivery.Error{Class: delivery.Transient, Op: opConnect + " " + cfg.Address, Err: err}
	var (
		dnsErr    *net.DNSError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		recordErr tls.RecordHeaderError
		ne        net.Error
	)
	switch {
	case errors.As(err, &dnsErr):
		e.Fix = "cannot resolve the host: check address"
	case errors.As(err, &unknownCA):
		e.Fix = "the receiver's certificate is not signed by a CA this host trusts: set ca_file to the PEM of the CA that signed it"
	case errors.As(err, &hostErr):
		e.Fix = "the receiver's certificate is not for the host of address: set server_name to a name the certificate carries, or connect by that name"
	case errors.As(err, &invalid):
		e.Fix = "the receiver's certificate is expired or not valid for a server: renew it"
	case errors.As(err, &verify):
		e.Fix = "the receiver's certificate does not verify: check ca_file and server_name"
	case errors.As(err, &recordErr):
		e.Fix = "the receiver does not speak TLS on this port: check the port (6514 is syslog over TLS), or its TLS input"
	case remoteAlert(err), errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		if cfg.Transport == TransportTLS {
			e.Fix = fixTLSRefused
		}
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Fix = "nothing listens at address: check address and that the receiver's TCP or TLS input is on"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		e.Fix = "cannot reach address: check it and the network path (firewall) to it"
	case errors.As(err, &ne) && ne.Timeout():
		e.Fix = "no answer within write_timeout: check address and the firewall between this host and the receiver"
	}
	return e
}

// drop closes the connection, if any.
func (s *Sink) drop() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// park keeps an event the receiver cannot take: appended to the park file
// and fsynced, counted and logged with its id.
func (s *Sink) park(ev *event.Raw, size int, reason string) error {
	kept, err := park.Event(s.keeper, opParkEv, ev, reason)
	if err != nil {
		return err
	}
	s.nparked.Add(1)
	s.parked[parkKey(ev)] = true
	s.log.Warn("syslog: event parked: it cannot be sent as one message", "source", ev.Source, "id", ev.ID, "bytes", size,
		"reason", reason, "file", kept)
	return nil
}

// Check connects to the receiver (TCP and, with tls, the handshake with
// the certificate verified) and keeps the connection for the first batch.
// Whether the receiver stores what it gets shows only when events are
// sent.
func (s *Sink) Check(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop()
	if err := s.connect(ctx); err != nil {
		var de *delivery.Error
		if errors.As(err, &de) {
			de.Op = opCheck + ": " + de.Op
		}
		return err
	}
	if err := s.watch(time.Now().Add(checkWait)); err != nil {
		s.drop()
		e := &delivery.Error{Class: delivery.Transient, Op: opCheck, Msg: "the receiver closed the connection at once", Err: err,
			Fix: "check that address is a syslog input (RFC 5425 TLS for transport tls, octet-counted TCP for tcp)"}
		if remoteAlert(err) {
			e.Fix = fixTLSRefused
		}
		return e
	}
	return nil
}

// Close closes the connection.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop()
	return nil
}
