package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/source/window"
)

// opToken is the operation token errors are reported under.
const opToken = "entra: get token"

// Bounds of what is read from the API.
const (
	maxPageBytes  = 64 << 20
	maxErrorBytes = 64 << 10
	// defaultThrottleWait is the wait after a 429 without Retry-After.
	defaultThrottleWait = 10 * time.Second
)

// Operator fixes.
const (
	fixCredentials = "Entra ID refused the app's credentials: check client_id, and client_secret (the secret's Value, not its Secret ID; secrets expire, see Certificates & secrets), or that certificate_file's certificate is uploaded to the app registration and private_key_file is its key"
	fixPermissions = "grant the app registration the Microsoft Graph application permissions AuditLog.Read.All and Directory.Read.All (API permissions > Add a permission > Microsoft Graph > Application permissions), then Grant admin consent for the tenant"
	fixLicence     = "reading sign-in logs through Graph needs Microsoft Entra ID P1 or P2 in the tenant: license it (sign-ins then take up to 3 days to appear), or remove sign_ins from streams; the other streams are not affected"
	fixFresh401    = "Graph refused a fresh access token: check that the token is for the same cloud as graph_url (cloud), and this host's clock"
	fixFilter      = "Graph refused the query auditrelay builds: check that graph_url reaches Microsoft Graph itself, not a proxy that rewrites queries"
	fixNotFound    = "check graph_url and cloud: the reports are at graph_url/v1.0/auditLogs/…, and v1.0 sign-ins may not be served in national clouds"
	fixRetention   = "the tenant keeps less than retention says: set retention: 7d for a Free tenant"
)

// minTimeError is Graph refusing a window that starts before the oldest
// instant the tenant keeps ("Minimum allowed time for activityDateTime is
// 2/5/2023 12:00:00 AM").
type minTimeError struct {
	err  *delivery.Error
	min  time.Time // the minimum Graph named
	from time.Time // the refused window's start
}

func (e *minTimeError) Error() string { return e.err.Error() }
func (e *minTimeError) Unwrap() error { return e.err }

// minTimeRE finds the instant of a "Minimum allowed time" message.
var minTimeRE = regexp.MustCompile(`(?i)minimum allowed time for \w+ is ([0-9]{1,2}/[0-9]{1,2}/[0-9]{4} [0-9]{1,2}:[0-9]{2}:[0-9]{2} ?[AP]M|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2})?)`)

// parseMinTime returns the instant of a "Minimum allowed time" message.
func parseMinTime(msg string) (time.Time, bool) {
	m := minTimeRE.FindStringSubmatch(msg)
	if m == nil {
		return time.Time{}, false
	}
	for _, layout := range []string{"1/2/2006 3:04:05 PM", "1/2/2006 3:04:05PM", time.RFC3339Nano, "2006-01-02T15:04:05.9999999"} {
		if t, err := time.Parse(layout, strings.ToUpper(m[1])); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// read gets one page: it waits for the limiter and any Retry-After,
// authenticates, and on a 401 gets a fresh token and tries once more.
func (s *Source) read(ctx context.Context, link string) (window.Result, error) {
	for attempt := 1; ; attempt++ {
		if err := s.app.pace(ctx, s); err != nil {
			return window.Result{}, err
		}
		tok, err := s.app.tokens.Token(ctx)
		if err != nil {
			return window.Result{}, err
		}
		res, status, err := s.get(ctx, link, tok)
		if status != http.StatusUnauthorized {
			return res, err
		}
		s.app.tokens.Drop(tok)
		if attempt >= 2 {
			var e *delivery.Error
			if errors.As(err, &e) {
				e.Class, e.Fix = delivery.Permanent, fixFresh401
			}
			return window.Result{}, err
		}
		s.log.Debug("entra: access token refused; getting a new one")
	}
}

// pace waits for the Retry-After the last throttled answer of any stream
// asked for, then for the shared limiter.
func (a *app) pace(ctx context.Context, s *Source) error {
	a.mu.Lock()
	until := a.notBefore
	a.mu.Unlock()
	if d := time.Until(until); d > 0 {
		s.log.Debug("entra: waiting for Graph's Retry-After", "delay", d)
		if !delivery.Sleep(ctx, d) {
			return fmt.Errorf("%s: wait for Retry-After: %w", s.op, ctx.Err())
		}
	}
	if err := a.limiter.Wait(ctx); err != nil {
		return fmt.Errorf("%s: wait for the rate limiter: %w", s.op, err)
	}
	return nil
}

// pause makes every stream of the app wait d before its next request.
func (a *app) pause(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t := time.Now().Add(d); t.After(a.notBefore) {
		a.notBefore = t
	}
}

// get makes one request and decodes its page.
func (s *Source) get(ctx context.Context, link, tok string) (window.Result, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return window.Result{}, 0, &delivery.Error{Class: delivery.Permanent, Op: s.op, Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", httpx.UserAgent)
	resp, err := s.app.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return window.Result{}, 0, fmt.Errorf("%s: %w", s.op, ctx.Err())
		}
		return window.Result{}, 0, httpx.NetworkError(s.op, err, link, "graph_url")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		return window.Result{}, resp.StatusCode, s.refusal(resp, body)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBytes+1))
	if err != nil {
		return window.Result{}, resp.StatusCode, &delivery.Error{Class: delivery.Transient, Op: s.op, Msg: "reading the page", Err: err}
	}
	if len(body) > maxPageBytes {
		return window.Result{}, resp.StatusCode, &delivery.Error{Class: delivery.Transient, Op: s.op,
			Msg: fmt.Sprintf("page larger than %d MiB", maxPageBytes>>20), Fix: "lower page_size"}
	}
	events, next, err := decodePage(body, s.st, s.name, s.app.cfg.TenantID)
	if err != nil {
		return window.Result{}, resp.StatusCode, &delivery.Error{Class: delivery.Transient, Op: s.op, Err: err}
	}
	if next != "" {
		if err := s.checkLink(next); err != nil {
			return window.Result{}, resp.StatusCode, &delivery.Error{Class: delivery.Permanent, Op: s.op,
				Msg: "the nextLink leaves graph_url: " + err.Error(),
				Fix: "set graph_url to the host Graph answers from (a proxy must rewrite @odata.nextLink to itself)"}
		}
	}
	return window.Result{Events: events, Next: next}, resp.StatusCode, nil
}

// refusal classifies a non-200 answer of the reports.
func (s *Source) refusal(resp *http.Response, body []byte) error {
	var ge struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError struct {
				RequestID string `json:"request-id"`
			} `json:"innerError"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &ge) // not every refusal is a Graph error
	code, msg := ge.Error.Code, ge.Error.Message
	text := strings.TrimPrefix(code+": "+msg, ": ")
	if code == "" && msg == "" {
		text = httpx.OneLine(string(body), 300)
	}
	if id := ge.Error.InnerError.RequestID; id != "" {
		text += " (request-id " + httpx.OneLine(id, 64) + ")"
	}
	e := httpx.StatusError(s.op, resp, httpx.OneLine(text, 500))
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		if e.RetryAfter == 0 {
			e.RetryAfter = defaultThrottleWait
		}
		s.app.pause(e.RetryAfter)
	case http.StatusServiceUnavailable:
		if e.RetryAfter > 0 {
			s.app.pause(e.RetryAfter)
		}
	case http.StatusUnauthorized:
		e.Class = delivery.Permanent
	case http.StatusForbidden:
		e.Fix = fixPermissions
		if code == "Authentication_RequestFromNonPremiumTenantOrB2CTenant" {
			e.Fix = fixLicence
		}
	case http.StatusNotFound:
		e.Fix = fixNotFound
	case http.StatusBadRequest:
		if strings.Contains(msg, "Invalid filter clause") {
			e.Fix = fixFilter
		}
	}
	// Graph's status for a start older than retention is not documented:
	// the message is recognised on any refusal.
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && strings.Contains(strings.ToLower(msg), "minimum allowed time") {
		e.Class, e.Fix = delivery.Permanent, fixRetention
		if at, ok := parseMinTime(msg); ok {
			return &minTimeError{err: e, min: at}
		}
	}
	return e
}

// tokenFix adds the fixes of token refusals httpx does not know.
func tokenFix(err error) error {
	var e *delivery.Error
	if !errors.As(err, &e) || e.Fix != "" {
		return err
	}
	switch {
	case strings.Contains(e.Msg, "AADSTS90002"):
		e.Fix = "Entra ID has no such tenant in this cloud: check tenant_id (the Directory (tenant) ID) and cloud"
	case strings.Contains(e.Msg, "AADSTS500011"), strings.Contains(e.Msg, "invalid_resource"):
		e.Fix = "the tenant does not know the Graph resource of this cloud: check cloud"
	}
	return err
}
