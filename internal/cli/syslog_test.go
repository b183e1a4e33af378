package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/sink/syslog"
)

// lockedBuffer is a bytes.Buffer safe for a command writing while the
// test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestEmulateSyslog: the receiver prints the sink config to use, then each
// message parsed, a LEEF payload split into its attributes.
func TestEmulateSyslog(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"emulate", "syslog", "--listen", addr, "--tls"}, Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
	}()
	var caFile string
	for deadline := time.Now().Add(10 * time.Second); caFile == "" && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if m := regexp.MustCompile(`ca_file: "([^"]+)"`).FindStringSubmatch(out.String()); m != nil {
			caFile = m[1]
		}
	}
	if caFile == "" {
		cancel()
		t.Fatalf("no ca_file printed:\n%s%s", out.String(), errb.String())
	}
	cfg := syslog.Config{Address: addr, Format: syslog.FormatLEEF, CAFile: caFile}
	cfg.SetDefaults()
	s, err := syslog.New(cfg, syslog.Options{Hostname: "relay-1"})
	if err != nil {
		t.Fatal(err)
	}
	ev := event.Raw{Source: "okta-prod", Provider: "okta", Tenant: "example.okta.com", ID: "u-1", Time: time.Now(),
		Data: json.RawMessage(`{"uuid":"u-1","eventType":"user.session.start","displayMessage":"User login to Okta","actor":{"alternateId":"ana@example.com"}}`)}
	if err := s.Send(context.Background(), []event.Raw{ev}); err != nil {
		t.Fatal(err)
	}
	s.Close(context.Background())
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "#1 ") && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"syslog receiver on " + addr, "transport: tls", "msgid user.session.start", `LEEF 2.0  vendor "Okta"`,
		`usrName = "ana@example.com"`, `eventId = "u-1"`, "received 1 messages on 1 connections: 0 malformed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
