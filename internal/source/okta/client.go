package okta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/source/window"
)

// Bounds of what is read from the API.
const (
	maxPageBytes  = 64 << 20
	maxErrorBytes = 64 << 10
	// The wait asked for by a rate-limit reset is kept within these bounds
	// (the window is one minute).
	minResetWait = time.Second
	maxResetWait = 2 * time.Minute
	// lowRemaining is where the source stops and waits for the reset
	// rather than spend the last requests of the minute.
	lowRemaining = 2
)

// Operator fixes of the System Log's refusals.
const (
	fixScopeRole = "grant the app the okta.logs.read scope (Okta API Scopes tab) and an administrator role that can read the System Log, e.g. Read-Only Administrator (Admin roles tab)"
	fixTokenRole = "the API token's administrator cannot read the System Log: create the token as an administrator with a role that can, e.g. Read-Only Administrator"
	fixAPIToken  = "the API token is invalid, revoked or expired (Okta expires tokens unused for 30 days): create a new one under Security > API > Tokens and update api_token"
	fixFresh401  = "the org refused a fresh access token: check that the app is active and granted okta.logs.read, and this host's clock"
	fixOrgURL    = "check org_url: the System Log is at org_url/api/v1/logs"
)

// read gets one System Log page: it waits for the limiter and any rate
// limit reset, authenticates, and on a 401 gets a fresh token and tries
// once more.
func (s *Source) read(ctx context.Context, link string) (window.Result, error) {
	for attempt := 1; ; attempt++ {
		if err := s.pace(ctx); err != nil {
			return window.Result{}, err
		}
		auth, tok, err := s.authorization(ctx)
		if err != nil {
			return window.Result{}, err
		}
		res, status, err := s.get(ctx, link, auth)
		if status != http.StatusUnauthorized {
			return res, err
		}
		if s.tokens == nil {
			return window.Result{}, withFix(err, delivery.Permanent, fixAPIToken)
		}
		s.tokens.Drop(tok)
		if attempt >= 2 {
			return window.Result{}, withFix(err, delivery.Permanent, fixFresh401)
		}
		s.log.Debug("okta: access token refused; getting a new one")
	}
}

// withFix sets the class and fix of an *delivery.Error.
func withFix(err error, class delivery.Class, fix string) error {
	var e *delivery.Error
	if errors.As(err, &e) {
		e.Class, e.Fix = class, fix
	}
	return err
}

// pace waits for the shared limiter and for the reset the last answer's
// rate-limit headers asked for.
func (s *Source) pace(ctx context.Context) error {
	s.mu.Lock()
	until := s.notBefore
	s.mu.Unlock()
	if d := time.Until(until); d > 0 {
		s.log.Debug("okta: waiting for the rate limit reset", "delay", d)
		if !delivery.Sleep(ctx, d) {
			return fmt.Errorf("%s: wait for the rate limit reset: %w", opLogs, ctx.Err())
		}
	}
	if err := s.limiter.Wait(ctx); err != nil {
		return fmt.Errorf("%s: wait for the rate limiter: %w", opLogs, err)
	}
	return nil
}

// authorization returns the Authorization header, and the access token it
// carries (empty for an API token).
func (s *Source) authorization(ctx context.Context) (string, string, error) {
	if s.tokens == nil {
		return "SSWS " + s.cfg.APIToken.Reveal(), "", nil
	}
	tok, err := s.tokens.Token(ctx)
	if err != nil {
		return "", "", err
	}
	return "Bearer " + tok, tok, nil
}

// get makes one request and decodes its page.
func (s *Source) get(ctx context.Context, link, auth string) (window.Result, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return window.Result{}, 0, &delivery.Error{Class: delivery.Permanent, Op: opLogs, Err: err}
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", httpx.UserAgent)
	resp, err := s.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return window.Result{}, 0, fmt.Errorf("%s: %w", opLogs, ctx.Err())
		}
		return window.Result{}, 0, httpx.NetworkError(opLogs, err, link, "org_url")
	}
	defer resp.Body.Close()
	reset := s.noteRateLimit(resp.Header)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		return window.Result{}, resp.StatusCode, s.refusal(resp, body, reset)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBytes+1))
	if err != nil {
		return window.Result{}, resp.StatusCode, &delivery.Error{Class: delivery.Transient, Op: opLogs, Msg: "reading the page", Err: err}
	}
	if len(body) > maxPageBytes {
		return window.Result{}, resp.StatusCode, &delivery.Error{Class: delivery.Transient, Op: opLogs,
			Msg: fmt.Sprintf("page larger than %d MiB", maxPageBytes>>20), Fix: "lower page_size"}
	}
	events, err := decodePage(body, s.name, s.org.Host)
	if err != nil {
		return window.Result{}, resp.StatusCode, &delivery.Error{Class: delivery.Transient, Op: opLogs, Err: err}
	}
	next, err := s.nextLink(resp.Header)
	if err != nil {
		return window.Result{}, resp.StatusCode, err
	}
	return window.Result{Events: events, Next: next}, resp.StatusCode, nil
}

// noteRateLimit reads the X-Rate-Limit-* headers: when the minute's budget
// is nearly spent, the next request waits for its reset. It returns the
// wait until the reset, zero when the headers did not say.
func (s *Source) noteRateLimit(h http.Header) time.Duration {
	reset, err := strconv.ParseInt(h.Get("X-Rate-Limit-Reset"), 10, 64)
	if err != nil || reset <= 0 {
		return 0
	}
	wait := min(max(time.Until(time.Unix(reset, 0)), minResetWait), maxResetWait)
	remaining, err := strconv.Atoi(h.Get("X-Rate-Limit-Remaining"))
	if err == nil && remaining <= lowRemaining {
		s.mu.Lock()
		s.notBefore = time.Now().Add(wait)
		s.mu.Unlock()
		s.log.Debug("okta: rate limit nearly spent; pausing until its reset", "remaining", remaining, "delay", wait)
	}
	return wait
}

// refusal classifies a non-200 answer of the System Log.
func (s *Source) refusal(resp *http.Response, body []byte, reset time.Duration) error {
	var oe struct {
		Code    string `json:"errorCode"`
		Summary string `json:"errorSummary"`
		Causes  []struct {
			Summary string `json:"errorSummary"`
		} `json:"errorCauses"`
	}
	_ = json.Unmarshal(body, &oe) // not every refusal is an Okta error object
	msg := oe.Summary
	if oe.Code != "" {
		msg = oe.Code + ": " + msg
	}
	for _, c := range oe.Causes {
		msg += "; " + c.Summary
	}
	if msg == "" {
		msg = httpx.OneLine(string(body), 300)
	}
	e := httpx.StatusError(opLogs, resp, truncate(msg, 500))
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		if e.RetryAfter == 0 {
			e.RetryAfter = max(reset, minResetWait)
		}
	case http.StatusUnauthorized:
		e.Class = delivery.Permanent
	case http.StatusForbidden:
		e.Fix = fixScopeRole
		if s.tokens == nil {
			e.Fix = fixTokenRole
		}
	case http.StatusNotFound:
		e.Fix = fixOrgURL
	case http.StatusBadRequest:
		if oe.Code == "E0000053" {
			e.Fix = "the query starts more than 180 days ago: lower lookback, or run `auditrelay checkpoint set` to a later instant"
		}
	}
	return e
}

// nextLink returns the rel="next" link of an answer, checked to stay on
// the org. Each link comes as its own Link header line, but a server may
// also join them with commas.
func (s *Source) nextLink(h http.Header) (string, error) {
	for _, line := range h.Values("Link") {
		for _, part := range splitLinks(line) {
			target, params, ok := strings.Cut(part, ";")
			target = strings.TrimSpace(target)
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			if !hasRel(params, "next") {
				continue
			}
			u, err := s.org.Parse(target[1 : len(target)-1])
			if err != nil {
				return "", &delivery.Error{Class: delivery.Transient, Op: opLogs, Msg: "the next link does not parse"}
			}
			if err := s.checkLink(u.String()); err != nil {
				return "", &delivery.Error{Class: delivery.Permanent, Op: opLogs, Msg: "the next link leaves the org: " + err.Error(),
					Fix: "set org_url to the host the API answers from (a custom domain is served on its own host), or fix the proxy that rewrites links"}
			}
			return u.String(), nil
		}
	}
	return "", nil
}

// splitLinks splits a Link header value at the commas between links (a
// comma inside <…> belongs to the URL).
func splitLinks(v string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range v {
		switch r {
		case '<':
			depth++
		case '>':
			depth = max(0, depth-1)
		case ',':
			if depth == 0 {
				out = append(out, v[start:i])
				start = i + 1
			}
		}
	}
	return append(out, v[start:])
}

// hasRel reports whether link parameters carry rel=want (quoted or not,
// possibly among several space-separated relations).
func hasRel(params, want string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
			continue
		}
		for _, r := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
			if strings.EqualFold(r, want) {
				return true
			}
		}
	}
	return false
}
