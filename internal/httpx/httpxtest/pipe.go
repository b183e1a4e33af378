// Package httpxtest serves HTTP handlers over an in-memory network, for
// tests inside a testing/synctest bubble: real sockets are not durably
// blocking, so they would keep the bubble's fake clock from advancing.
package httpxtest

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// pipeNet is an in-memory network where every dial reaches the one server.
type pipeNet struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (p *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *pipeNet) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

func (p *pipeNet) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9} }

func (p *pipeNet) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case p.conns <- server:
		return client, nil
	case <-p.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ServePipe serves h over an in-memory network until the test ends and
// returns its base URL (http://127.0.0.1:9, any host reaches it) and a
// client with the given whole-request timeout. Call it inside the bubble.
func ServePipe(t testing.TB, h http.Handler, timeout time.Duration) (string, *http.Client) {
	t.Helper()
	pn := &pipeNet{conns: make(chan net.Conn), done: make(chan struct{})}
	srv := &http.Server{Handler: h}
	go srv.Serve(pn)
	tr := &http.Transport{DialContext: pn.dial}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
	})
	return "http://127.0.0.1:9", &http.Client{Transport: tr, Timeout: timeout}
}
