package syslog

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/units"
)

type receiver struct {
	emu  *emulator.Syslog
	addr string
}

// newReceiver serves the emulator's receiver on a loopback port, with TLS
// when tc is set.
func newReceiver(t *testing.T, tc *tls.Config) *receiver {
	t.Helper()
	emu := emulator.NewSyslog(emulator.SyslogOptions{TLS: tc})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go emu.Serve(ln)
	t.Cleanup(emu.Close)
	return &receiver{emu: emu, addr: ln.Addr().String()}
}

// waitFor waits until the receiver has n messages.
func (r *receiver) waitFor(t *testing.T, n int) []emulator.SyslogMessage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(r.emu.Messages()) < n && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	return r.emu.Messages()
}

func newSink(t *testing.T, mod func(*Config), opts Options) (*Sink, *bytes.Buffer) {
	t.Helper()
	cfg := Config{Transport: TransportTCP, Hostname: "relay-1"}
	if mod != nil {
		mod(&cfg)
	}
	cfg.SetDefaults()
	logs := &bytes.Buffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s, logs
}

// countIDs counts the messages of each SD id.
func countIDs(t *testing.T, msgs []emulator.SyslogMessage) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range msgs {
		if m.Err != nil {
			t.Fatalf("malformed message: %v\n%q", m.Err, m.Raw)
		}
		id, _ := m.Param("auditrelay@32473", "id")
		out[id]++
	}
	return out
}

func checkOnce(t *testing.T, got map[string]int, want []event.Raw, skip map[string]bool) {
	t.Helper()
	for _, ev := range want {
		if skip[ev.ID] {
			if got[ev.ID] != 0 {
				t.Errorf("%s received %d times, want parked", ev.ID, got[ev.ID])
			}
			continue
		}
		if got[ev.ID] != 1 {
			t.Errorf("%s received %d times, want 1", ev.ID, got[ev.ID])
		}
	}
}

// TestSendTCP: a batch arrives whole, each event once, its MSG the event.
func TestSendTCP(t *testing.T) {
	r := newReceiver(t, nil)
	s, _ := newSink(t, func(c *Config) { c.Address = r.addr }, Options{ProcID: "7"})
	batch := batchOf("ev", 300)
	if err := s.Send(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	msgs := r.waitFor(t, len(batch))
	checkOnce(t, countIDs(t, msgs), batch, nil)
	m := msgs[0]
	if m.MsgID != "USER.UPDATED" || m.Hostname != "relay-1" || m.ProcID != "7" || m.Facility != 20 || m.Severity != 6 || m.Framing != "octet-counting" {
		t.Errorf("first message %+v", m)
	}
	if !json.Valid(m.Msg) || !bytes.Contains(m.Msg, []byte(`"id":"ev-00000"`)) {
		t.Errorf("MSG %s", m.Msg)
	}
	if st := s.Stats(); st.Sent != 300 || st.Batches != 1 || st.Connects != 1 || st.Resent != 0 || st.Bytes == 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestSendTLS: over TLS with ca_file, and with a client certificate to a
// receiver that requires one; a receiver whose CA is not trusted gives a
// transient error naming ca_file.
func TestSendTLS(t *testing.T) {
	p := newPKI(t)
	r := newReceiver(t, &tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.pool})
	s, _ := newSink(t, func(c *Config) {
		c.Address, c.Transport, c.CAFile, c.CertFile, c.KeyFile = r.addr, TransportTLS, p.caFile, p.clientCert, p.clientKey
	}, Options{})
	if err := s.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	batch := batchOf("tls", 50)
	if err := s.Send(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	checkOnce(t, countIDs(t, r.waitFor(t, 50)), batch, nil)
	if st := s.Stats(); st.Connects != 1 {
		t.Errorf("%d connections, want the one Check opened", st.Connects)
	}

	noCA, _ := newSink(t, func(c *Config) { c.Address, c.Transport = r.addr, TransportTLS }, Options{})
	err := noCA.Send(t.Context(), batch)
	var de *delivery.Error
	if !errors.As(err, &de) || de.Class != delivery.Transient || !strings.Contains(de.Fix, "ca_file") {
		t.Errorf("untrusted CA: %v", err)
	}
	noCert, _ := newSink(t, func(c *Config) { c.Address, c.Transport, c.CAFile = r.addr, TransportTLS, p.caFile }, Options{})
	if err := noCert.Check(t.Context()); err == nil {
		t.Errorf("a receiver requiring a client certificate took none")
	} else if !strings.Contains(err.Error(), "cert_file") {
		t.Errorf("without a client certificate: %v, want the fix to name cert_file", err)
	}
}

// TestParkOversize: a message over max_message_bytes is parked with its
// reason, once even when the batch is sent again; the rest arrive.
func TestParkOversize(t *testing.T) {
	r := newReceiver(t, nil)
	pf := park.New(filepath.Join(t.TempDir(), "parked.ndjson"))
	s, logs := newSink(t, func(c *Config) { c.Address, c.MaxMessageBytes = r.addr, 1024 }, Options{Park: pf})
	batch := batchOf("ev", 10)
	batch[4].Data = json.RawMessage(`{"id":"ev-00004","action":{"type":"BIG","description":"` + strings.Repeat("x", 2000) + `"}}`)
	batch[6].Data = json.RawMessage(`{"id":`)
	if err := s.Send(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	checkOnce(t, countIDs(t, r.waitFor(t, 8)), batch, map[string]bool{"ev-00004": true, "ev-00006": true})
	b, err := os.ReadFile(pf.Path())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "over max_message_bytes 1024") || !strings.Contains(lines[1], "not JSON") {
		t.Errorf("park file:\n%s", b)
	}
	if st := s.Stats(); st.Parked != 2 || st.Sent != 8 {
		t.Errorf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), "event parked") {
		t.Errorf("no log of the parked events:\n%s", logs)
	}
}

// TestReceiverRestart: the receiver drops the connection between
// batches; the next batch, written into the dead connection, is seen
// lost and sent again on a new one. Every event arrives once.
func TestReceiverRestart(t *testing.T) {
	r := newReceiver(t, nil)
	s, logs := newSink(t, func(c *Config) { c.Address = r.addr }, Options{})
	first, second := batchOf("a", 100), batchOf("b", 100)
	if err := s.Send(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, 100)
	r.emu.CloseConnections()
	time.Sleep(20 * time.Millisecond) // the close reaches the sink's socket
	if err := s.Send(t.Context(), second); err != nil {
		t.Fatal(err)
	}
	got := countIDs(t, r.waitFor(t, 200))
	checkOnce(t, got, append(first, second...), nil)
	if st := s.Stats(); st.Resent != 1 || st.Connects != 2 {
		t.Errorf("stats %+v, want one batch sent again on a second connection", st)
	}
	if !strings.Contains(logs.String(), "sending it again") {
		t.Errorf("no warning of the re-send:\n%s", logs)
	}
}

// TestNoReceiver: nothing listens: a transient error saying so, and no
// immediate second attempt.
func TestNoReceiver(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	s, _ := newSink(t, func(c *Config) { c.Address = addr }, Options{})
	err := s.Send(t.Context(), batchOf("x", 3))
	var de *delivery.Error
	if !errors.As(err, &de) || de.Class != delivery.Transient || !strings.Contains(de.Fix, "nothing listens") {
		t.Fatalf("err = %v", err)
	}
	if st := s.Stats(); st.Resent != 0 || st.Sent != 0 {
		t.Errorf("stats %+v", st)
	}
}

// pipeDial dials receivers on net.Pipe, for synctest: each reads one
// batch of n bytes; the first closes closeAfter later (never when 0), the
// others when the sink does.
func pipeDial(n int, closeAfter time.Duration, got *atomic.Int64) func(context.Context) (net.Conn, error) {
	conns := 0
	return func(ctx context.Context) (net.Conn, error) {
		client, server := net.Pipe()
		conns++
		first := conns == 1
		go func() {
			defer server.Close()
			buf := make([]byte, n)
			read := 0
			for read < n {
				k, err := server.Read(buf[read:])
				if err != nil {
					return
				}
				read += k
			}
			got.Add(int64(read))
			if first && closeAfter > 0 {
				time.Sleep(closeAfter)
				return
			}
			server.Read(buf) // until the sink closes
		}()
		return client, nil
	}
}

// TestConfirmWait: a receiver that closes within confirm_wait of taking
// a batch may have lost it: the batch is sent again. One that closes
// later does not count against the batch.
func TestConfirmWait(t *testing.T) {
	for _, tc := range []struct {
		name       string
		closeAfter time.Duration
		resent     int64
	}{{"close within confirm_wait", 50 * time.Millisecond, 1}, {"close after confirm_wait", 300 * time.Millisecond, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				batch := batchOf("p", 5)
				var probe Sink
				probe.cfg = Config{MaxMessageBytes: 1 << 20}
				probe.enc = newEncoder(header{format: FormatRFC5424, facility: 20, severity: 6, host: "relay-1", app: "auditrelay", procID: "1", sdID: "auditrelay@32473"})
				probe.parked = map[string]bool{}
				if _, err := probe.encode(batch); err != nil {
					t.Fatal(err)
				}
				var got atomic.Int64
				s, _ := newSink(t, func(c *Config) {
					c.Address = "127.0.0.1:514"
					d := units.Duration(100 * time.Millisecond)
					c.ConfirmWait = &d
				}, Options{Dial: pipeDial(len(probe.out), tc.closeAfter, &got), ProcID: "1"})
				start := time.Now()
				if err := s.Send(t.Context(), batch); err != nil {
					t.Fatal(err)
				}
				if d := time.Since(start); d < 100*time.Millisecond {
					t.Errorf("acknowledged after %v, before confirm_wait", d)
				}
				if st := s.Stats(); st.Resent != tc.resent || st.Sent != 5 {
					t.Errorf("stats %+v, want %d re-sent", st, tc.resent)
				}
				if want := (tc.resent + 1) * int64(len(probe.out)); got.Load() != want {
					t.Errorf("receiver got %d bytes, want %d", got.Load(), want)
				}
				s.Close(t.Context())
				time.Sleep(tc.closeAfter) // the first receiver's close
				synctest.Wait()
			})
		})
	}
}
