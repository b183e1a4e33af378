package httpx

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
)

// How a ClientCredentials authenticates the client to the token endpoint.
const (
	// ClientSecretBasic sends client id and secret in a Basic header,
	// each form-encoded first (RFC 6749 §2.3.1).
	ClientSecretBasic = "client_secret_basic"
	// ClientSecretBasicRaw sends them in a Basic header as they are, as
	// some providers' own clients do.
	ClientSecretBasicRaw = "client_secret_basic_raw"
	// ClientSecretPost sends them in the form body.
	ClientSecretPost = "client_secret_post"
	// PrivateKeyJWT sends a signed client assertion (RFC 7523).
	PrivateKeyJWT = "private_key_jwt"
)

// TokenFixes are the operator's fixes for what a token endpoint can answer.
type TokenFixes struct {
	// Credentials: invalid_client, 401 or 403.
	Credentials string
	// Scope: invalid_scope.
	Scope string
	// Grant: unauthorized_client or unsupported_grant_type.
	Grant string
	// NotFound: 404, a token URL that does not exist.
	NotFound string
}

// ClientCredentials gets access tokens with the OAuth 2.0 client credentials
// grant, and classifies every failure once for every source and sink: the
// network errors with the setting to check, 429 throttled with its
// Retry-After, 5xx and 408 transient, refused credentials, scopes and grants
// permanent with the operator's fix.
type ClientCredentials struct {
	// Op names the operation in errors: "okta: get token".
	Op string
	// TokenURL is the token endpoint.
	TokenURL string
	// Field is the setting the token URL comes from, named when it cannot
	// be reached ("org_url").
	Field string
	// Auth is one of ClientSecretBasic (default), ClientSecretBasicRaw,
	// ClientSecretPost, PrivateKeyJWT.
	Auth string
	// ClientID and ClientSecret are the client's credentials (no secret
	// with PrivateKeyJWT).
	ClientID     string
	ClientSecret string
	// Assertion returns a fresh signed client assertion for PrivateKeyJWT;
	// it is called once per token request.
	Assertion func() (string, error)
	// Scope, when set, is sent as the scope parameter.
	Scope string
	// Fixes are the operator's fixes of refusals.
	Fixes TokenFixes
	// Message, when set, extracts the message of a refusal from its body,
	// for a token endpoint that also answers in its provider's own error
	// format. Default: the OAuth error and its description, or the body on
	// one line.
	Message func(body []byte) string
	// HTTP makes the request.
	HTTP *http.Client
}

// maxTokenBody bounds a token endpoint's answer.
const maxTokenBody = 64 << 10

// Fetch gets a new access token and its lifetime (zero when the answer did
// not say), for a TokenCache.
func (c *ClientCredentials) Fetch(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if c.Scope != "" {
		form.Set("scope", c.Scope)
	}
	switch c.Auth {
	case ClientSecretPost:
		form.Set("client_id", c.ClientID)
		form.Set("client_secret", c.ClientSecret)
	case PrivateKeyJWT:
		if c.Assertion == nil {
			return "", 0, &delivery.Error{Class: delivery.Permanent, Op: c.Op, Msg: "no client assertion signer"}
		}
		a, err := c.Assertion()
		if err != nil {
			return "", 0, &delivery.Error{Class: delivery.Permanent, Op: c.Op, Msg: "sign the client assertion", Err: err}
		}
		form.Set("client_id", c.ClientID)
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", a)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, &delivery.Error{Class: delivery.Permanent, Op: c.Op, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	switch c.Auth {
	case "", ClientSecretBasic:
		req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	case ClientSecretBasicRaw:
		req.SetBasicAuth(c.ClientID, c.ClientSecret)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", 0, fmt.Errorf("%s: %w", c.Op, ctx.Err())
		}
		return "", 0, NetworkError(c.Op, err, c.TokenURL, c.Field)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	if err != nil {
		return "", 0, &delivery.Error{Class: delivery.Transient, Op: c.Op, Msg: "reading the answer", Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return "", 0, c.refusal(resp, body)
	}
	var t struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" {
		return "", 0, &delivery.Error{Class: delivery.Transient, Op: c.Op, Msg: "the token answer has no access_token"}
	}
	return t.AccessToken, expiresIn(t.ExpiresIn), nil
}

// refusal classifies a token endpoint's non-200 answer.
func (c *ClientCredentials) refusal(resp *http.Response, body []byte) error {
	var oe struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &oe) // not every refusal is an OAuth error object
	var msg string
	switch {
	case c.Message != nil:
		msg = c.Message(body)
	case oe.Error != "":
		msg = oe.Error
		if oe.Description != "" {
			msg += ": " + oe.Description
		}
	default:
		msg = OneLine(string(body), 300)
	}
	e := StatusError(c.Op, resp, msg)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		// Throttled or transient, as StatusError classified it.
	case oe.Error == "invalid_client" || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		e.Class, e.Fix = delivery.Permanent, c.Fixes.Credentials
	case oe.Error == "invalid_scope":
		e.Class, e.Fix = delivery.Permanent, c.Fixes.Scope
	case oe.Error == "unauthorized_client" || oe.Error == "unsupported_grant_type":
		e.Class, e.Fix = delivery.Permanent, c.Fixes.Grant
	case resp.StatusCode == http.StatusNotFound:
		e.Class, e.Fix = delivery.Permanent, c.Fixes.NotFound
	case resp.StatusCode < 400:
		// A redirect or an odd success code: the server misbehaves.
		e.Class = delivery.Transient
	}
	return e
}

// expiresIn reads expires_in, a number or a numeric string of seconds.
func expiresIn(raw json.RawMessage) time.Duration {
	s := strings.Trim(string(raw), `"`)
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 || n > 1e7 {
		return 0
	}
	return time.Duration(n * float64(time.Second))
}

// OneLine returns s on one line, cut to at most n bytes (on a rune
// boundary), for quoting a server's message in an error.
func OneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xc0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
