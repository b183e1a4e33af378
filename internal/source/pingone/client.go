package pingone

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/httpx"
)

// The operations errors are reported under.
const (
	opToken = "pingone: get token"
	opList  = "pingone: list activities"
)

// Operator fixes of the errors the API can answer with.
const (
	fixCredentials = "check environment_id (PingOne refuses an unknown environment like a wrong client), client_id and client_secret, " +
		"and that token_auth_method matches the application's Token Endpoint Authentication Method"
	fixGrant       = "enable the Client Credentials grant type on the worker application"
	fixRole        = "grant the worker application a role that can read audit activities, e.g. Environment Admin (or Identity Data Read Only) on this environment"
	fixEnvironment = "environment not found: check environment_id and region/api_url"
	fixTokenEnv    = "environment not found: check environment_id and region/auth_url"
	fixTwice401    = "check that the worker application is enabled and that environment_id is the environment the application belongs to"
)

// maxErrorBody bounds how much of an error response is read for its message.
const maxErrorBody = 64 << 10

// fetchToken gets a new access token from the token endpoint, for the
// source's token cache.
func (s *Source) fetchToken(ctx context.Context) (string, time.Duration, error) {
	tok, ttl, err := s.creds.Fetch(ctx)
	if err != nil {
		return "", 0, err
	}
	s.log.Debug("pingone: got access token", "expires_in", ttl)
	return tok, ttl, nil
}

// tokenMessage extracts the message of a token endpoint's refusal: the
// OAuth2 error and its description, or else PingOne's own error body.
func tokenMessage(body []byte) string {
	var oe struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &oe) == nil && oe.Error != "" {
		if oe.Description != "" {
			return oe.Error + ": " + oe.Description
		}
		return oe.Error
	}
	return apiMessage(body)
}

// fetch gets one page of activities. It paces itself with the shared
// limiter, authenticates, and on a 401 gets a fresh token and tries once
// more.
func (s *Source) fetch(ctx context.Context, rawURL string) (page, error) {
	var rejected string
	for attempt := 1; ; attempt++ {
		tok, err := s.tokens.Token(ctx)
		if err != nil {
			return page{}, err
		}
		if err := s.limiter.Wait(ctx); err != nil {
			return page{}, fmt.Errorf("%s: wait for the rate limiter: %w", opList, err)
		}
		p, status, msg, err := s.get(ctx, rawURL, tok)
		if status != http.StatusUnauthorized {
			return p, err
		}
		s.tokens.Drop(tok)
		if attempt >= 2 {
			if rejected != "" && msg != rejected {
				msg = rejected + "; then: " + msg
			}
			return page{}, &delivery.Error{
				Class:  delivery.Permanent,
				Op:     opList,
				Status: http.StatusUnauthorized,
				Msg:    "token rejected by the activities API twice: " + msg,
				Fix:    fixTwice401,
			}
		}
		rejected = msg
		s.log.Info("pingone: access token rejected; retrying with a fresh token", "attempt", attempt, "err", msg)
	}
}

// get makes one activities request. On a 401 it returns the status and the
// API's message with a nil error, for fetch to decide.
func (s *Source) get(ctx context.Context, rawURL, tok string) (page, int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return page{}, 0, "", &delivery.Error{Class: delivery.Permanent, Op: opList, Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", httpx.UserAgent)
	resp, err := s.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return page{}, 0, "", fmt.Errorf("%s: %w", opList, ctx.Err())
		}
		return page{}, 0, "", httpx.NetworkError(opList, err, rawURL, "region/api_url")
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		msg := apiMessage(body)
		if resp.StatusCode == http.StatusUnauthorized {
			if msg == "" {
				msg = resp.Status
			}
			return page{}, resp.StatusCode, msg, nil
		}
		e := httpx.StatusError(opList, resp, msg)
		switch resp.StatusCode {
		case http.StatusForbidden:
			e.Fix = fixRole
		case http.StatusNotFound:
			e.Fix = fixEnvironment
		}
		return page{}, resp.StatusCode, msg, e
	}

	if resp.ContentLength > s.maxBody {
		return page{}, resp.StatusCode, "", s.tooLarge()
	}
	body, err := readBody(resp, s.maxBody)
	if err != nil {
		if ctx.Err() != nil {
			return page{}, 0, "", fmt.Errorf("%s: %w", opList, ctx.Err())
		}
		return page{}, resp.StatusCode, "", &delivery.Error{Class: delivery.Transient, Op: opList, Msg: "reading the page", Err: err}
	}
	if int64(len(body)) > s.maxBody {
		return page{}, resp.StatusCode, "", s.tooLarge()
	}
	p, err := decodePage(body)
	if err != nil {
		return page{}, resp.StatusCode, "", &delivery.Error{Class: delivery.Transient, Op: opList, Err: err}
	}
	return p, resp.StatusCode, "", nil
}

// tooLarge is the error of a page body over the limit.
func (s *Source) tooLarge() error {
	return &delivery.Error{
		Class: delivery.Transient,
		Op:    opList,
		Msg:   fmt.Sprintf("page is larger than %d MiB", s.maxBody>>20),
		Fix:   "lower page_size",
	}
}

// apiErrorJSON is PingOne's error body.
type apiErrorJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Code    string `json:"code"`
		Target  string `json:"target"`
		Message string `json:"message"`
	} `json:"details"`
	// The OAuth2 error shape, for the token endpoint.
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// apiMessage extracts the message of an error body: PingOne's message and
// every detail's message, or the OAuth2 error. It falls back to the start of
// the body as text.
func apiMessage(body []byte) string {
	var e apiErrorJSON
	if json.Unmarshal(body, &e) == nil {
		var parts []string
		if e.Message != "" {
			parts = append(parts, e.Message)
		} else if e.Error != "" {
			m := e.Error
			if e.ErrorDescription != "" {
				m += ": " + e.ErrorDescription
			}
			parts = append(parts, m)
		}
		for _, d := range e.Details {
			if d.Message == "" {
				continue
			}
			m := d.Message
			if d.Target != "" {
				m = d.Target + ": " + m
			}
			parts = append(parts, m)
		}
		if len(parts) > 0 {
			return httpx.OneLine(strings.Join(parts, "; "), 1000)
		}
	}
	return httpx.OneLine(strings.ToValidUTF8(string(body), "?"), 300)
}

// readBody reads at most limit+1 bytes of the body: into one buffer of the
// announced Content-Length when there is one (a page is a megabyte or
// more, which io.ReadAll would reach through a dozen doublings), growing
// as needed otherwise.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if n := resp.ContentLength; n > 0 && n <= limit {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	return buf.Bytes(), err
}
