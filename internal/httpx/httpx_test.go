package httpx

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/auditrelay/auditrelay/internal/delivery"
)

func TestClassifyStatus(t *testing.T) {
	for status, want := range map[int]delivery.Class{
		400: delivery.Permanent, 401: delivery.Permanent, 403: delivery.Permanent, 404: delivery.Permanent,
		408: delivery.Transient, 429: delivery.Throttled, 500: delivery.Transient, 502: delivery.Transient, 503: delivery.Transient, 504: delivery.Transient,
	} {
		if got := ClassifyStatus(status); got != want {
			t.Errorf("ClassifyStatus(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	good := []string{"https://api.pingone.eu", "http://127.0.0.1:9001", "http://localhost:8080/x", "http://[::1]:1"}
	bad := []string{"http://api.pingone.eu", "ftp://x", "api.pingone.eu", "https://user:pw@host", "http://10.0.0.1"}
	for _, u := range good {
		if err := CheckURL(u); err != nil {
			t.Errorf("CheckURL(%q) = %v", u, err)
		}
	}
	for _, u := range bad {
		if err := CheckURL(u); err == nil {
			t.Errorf("CheckURL(%q) = nil, want error", u)
		}
	}
}

func TestNetworkError(t *testing.T) {
	// a port nothing listens on: connection refused
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = http.Get("http://" + addr + "/x")
	e := NetworkError("test: get", err, "http://"+addr+"/x", "api_url")
	var he *delivery.Error
	if !errors.As(e, &he) || he.Class != delivery.Transient || !strings.Contains(he.Fix, "cannot reach "+addr+": check api_url") {
		t.Fatalf("refused: %v", e)
	}
	dns := &net.DNSError{Err: "no such host", Name: "api.pingone.invalid", IsNotFound: true}
	e = NetworkError("test: get", &url.Error{Op: "Get", URL: "https://api.pingone.invalid/v1", Err: dns}, "https://api.pingone.invalid/v1", "region/api_url")
	if !errors.As(e, &he) || he.Fix != "cannot resolve api.pingone.invalid: check region/api_url" {
		t.Fatalf("dns: %v", e)
	}
	if strings.Contains(e.Error(), "/v1") {
		t.Errorf("the URL is repeated in the message: %v", e)
	}
}
