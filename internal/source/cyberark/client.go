package cyberark

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/httpx"
)

// The operations errors are reported under.
const (
	opToken   = "cyberark: get token"
	opQuery   = "cyberark: create query"
	opResults = "cyberark: read results"
)

// Operator fixes of the errors the APIs answer with.
const (
	fixCredentials = "the token issuer refused the service user: check client_id (the service user's login, as typed in Identity Administration) and client_secret, that the user is an OAuth confidential client, and that token_auth_method is one the app accepts"
	fixApp         = "no OAuth2 Server web app with this Application ID at identity_url: check app_id and identity_url (https://<tenant>.id.cyberark.cloud)"
	fixScope       = "the OAuth2 Server web app does not grant the scope: add isp.audit.events:read to the app's scopes (or set scope to the one it grants)"
	fixGrant       = "enable the Client Creds authentication method on the OAuth2 Server web app"
	fixAPIKey      = "the audit API refused the request: check api_key (the SIEM integration's API key) and that the service user has the app's permissions (Grant, View, Run)"
	fixAuditURL    = "the audit API was not found: check audit_url (verbatim from the SIEM integration page, https://<subdomain>.audit.cyberark.cloud) and that the SIEM integration still exists"
	fixTwice401    = "the audit API refused a fresh token: check that the OAuth2 Server web app issues jwtRS256 tokens with the claims tenant_id and aud = cyberark.isp.audit, and that the service user is linked to it"
	fixQuery       = "the audit API refused the query: check application_codes"
)

// maxErrorBody bounds how much of an error answer is read for its message.
const maxErrorBody = 64 << 10

// maxBody bounds an answer body.
const maxBody = 64 << 20

// telemetry is the x-cybr-telemetry header CyberArk's integrations send:
// base64 of "in=auditrelay&it=SIEM&iv=1.0&vn=auditrelay&VV=1.0".
const telemetry = "aW49YXVkaXRyZWxheSZpdD1TSUVNJml2PTEuMCZ2bj1hdWRpdHJlbGF5JlZWPTEuMA=="

// call makes one audit API request with the shared limiter, the bearer token
// and the API key; on a 401 it gets a fresh token and tries once more.
func (s *Source) call(ctx context.Context, op, path string, reqBody []byte) ([]byte, error) {
	var rejected string
	for attempt := 1; ; attempt++ {
		tok, err := s.tokens.Token(ctx)
		if err != nil {
			return nil, err
		}
		if err := s.limiter.Wait(ctx); err != nil {
			return nil, fmt.Errorf("%s: wait for the rate limiter: %w", op, err)
		}
		body, status, msg, err := s.post(ctx, op, path, tok, reqBody)
		if status != http.StatusUnauthorized {
			return body, err
		}
		s.tokens.Drop(tok)
		if attempt >= 2 {
			if rejected != "" && msg != rejected {
				msg = rejected + "; then: " + msg
			}
			return nil, &delivery.Error{Class: delivery.Permanent, Op: op, Status: status,
				Msg: "token refused twice: " + msg, Fix: fixTwice401}
		}
		rejected = msg
		s.log.Info("cyberark: access token refused; retrying with a fresh token", "err", msg)
	}
}

// post makes one request. A 401 comes back as its status and message with
// a nil error, for call to decide.
func (s *Source) post(ctx context.Context, op, path, tok string, reqBody []byte) ([]byte, int, string, error) {
	u := s.cfg.AuditURL + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(reqBody))
	if err != nil {
		return nil, 0, "", &delivery.Error{Class: delivery.Permanent, Op: op, Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("x-api-key", s.cfg.APIKey.Reveal())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", httpx.UserAgent)
	req.Header.Set("x-cybr-telemetry", telemetry)
	resp, err := s.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, "", fmt.Errorf("%s: %w", op, ctx.Err())
		}
		return nil, 0, "", httpx.NetworkError(op, err, u, "audit_url")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		msg := apiMessage(b)
		if resp.StatusCode == http.StatusUnauthorized {
			if msg == "" {
				msg = resp.Status
			}
			return nil, resp.StatusCode, msg, nil
		}
		e := httpx.StatusError(op, resp, msg)
		switch resp.StatusCode {
		case http.StatusForbidden:
			e.Fix = fixAPIKey
		case http.StatusNotFound:
			e.Fix = fixAuditURL
		case http.StatusBadRequest:
			if op == opQuery {
				e.Fix = fixQuery
			}
		}
		return nil, resp.StatusCode, msg, e
	}
	if resp.ContentLength > maxBody {
		return nil, resp.StatusCode, "", &delivery.Error{Class: delivery.Transient, Op: op, Msg: "answer larger than 64 MiB", Fix: "lower page_size"}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, "", fmt.Errorf("%s: %w", op, ctx.Err())
		}
		return nil, resp.StatusCode, "", &delivery.Error{Class: delivery.Transient, Op: op, Msg: "reading the answer", Err: err}
	}
	if len(b) > maxBody {
		return nil, resp.StatusCode, "", &delivery.Error{Class: delivery.Transient, Op: op, Msg: "answer larger than 64 MiB", Fix: "lower page_size"}
	}
	return b, resp.StatusCode, "", nil
}

// apiMessage extracts the message of an error body: the keys code, message
// and description, or the OAuth2 error, falling back to the body as text.
func apiMessage(body []byte) string {
	var e struct {
		Code        any    `json:"code"`
		Message     string `json:"message"`
		Description string `json:"description"`
		Error       string `json:"error"`
		ErrorDesc   string `json:"error_description"`
	}
	if json.Unmarshal(body, &e) == nil {
		var parts []string
		if e.Error != "" {
			parts = append(parts, e.Error)
			if e.ErrorDesc != "" {
				parts = append(parts, e.ErrorDesc)
			}
		}
		if c, ok := e.Code.(string); ok && c != "" {
			parts = append(parts, c)
		}
		if e.Message != "" {
			parts = append(parts, e.Message)
		}
		if len(parts) > 0 {
			return httpx.OneLine(strings.Join(parts, ": "), 1000)
		}
	}
	return httpx.OneLine(strings.ToValidUTF8(string(body), "?"), 300)
}
