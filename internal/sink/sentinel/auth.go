package sentinel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/auditrelay/auditrelay/internal/httpx"
)

const opToken = "sentinel: get token"

// Operator fixes of token errors.
const (
	fixSecret    = "check tenant_id, client_id and client_secret: the secret may have expired, or be the secret's ID instead of its value"
	fixTenant    = "check tenant_id (the Directory (tenant) ID) and authority_url/cloud"
	fixScope     = "check cloud: the token audience must be the Azure Monitor of the cloud the workspace is in"
	fixIdentity  = "check that this host has the managed identity (and client_id for a user-assigned one) or, for workload identity, the federated credential and token file"
	fixAudience  = "the ingestion endpoint rejected the token: check cloud (public, usgov, china) matches the endpoint's cloud"
	fixAuthority = "check authority_url/cloud and the network path to Microsoft Entra ID"
)

// TokenCredential gets Entra ID access tokens. *azidentity credentials
// implement it.
type TokenCredential interface {
	GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error)
}

// secretCredential is the client credentials grant with a client secret.
// It is done with golang.org/x/oauth2 rather than azidentity because
// azidentity refuses an authority that is not https, which rules out the
// emulator on loopback, and needs OpenID discovery documents besides the
// token endpoint.
type secretCredential struct {
	cfg  clientcredentials.Config
	http *http.Client
}

func newSecretCredential(c *Config, hc *http.Client) *secretCredential {
	cl := c.cloud()
	return &secretCredential{
		cfg: clientcredentials.Config{
			ClientID:     c.ClientID,
			ClientSecret: c.ClientSecret.Reveal(),
			TokenURL:     cl.Authority + "/" + url.PathEscape(c.TenantID) + "/oauth2/v2.0/token",
			AuthStyle:    oauth2.AuthStyleInParams,
		},
		http: hc,
	}
}

// GetToken implements TokenCredential.
func (s *secretCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	cfg := s.cfg
	cfg.Scopes = opts.Scopes
	t, err := cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, s.http))
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return azcore.AccessToken{Token: t.AccessToken, ExpiresOn: t.Expiry}, nil
}

// newCredential returns the credential of the configured auth.
func newCredential(c *Config, hc *http.Client) (TokenCredential, error) {
	cl := c.cloud()
	opts := azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: cl.Authority + "/"},
		Transport: hc,
	}
	switch c.Auth {
	case AuthManagedIdentity:
		mo := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
		if c.ClientID != "" {
			mo.ID = azidentity.ClientID(c.ClientID)
		}
		cred, err := azidentity.NewManagedIdentityCredential(mo)
		if err != nil {
			return nil, fmt.Errorf("sentinel: managed identity: %w", err)
		}
		return cred, nil
	case AuthWorkloadIdentity:
		cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: opts, TenantID: c.TenantID, ClientID: c.ClientID, TokenFilePath: c.TokenFile,
			// An authority of one's own (the emulator, a proxy) has no
			// instance discovery; asking Microsoft about it would fail.
			DisableInstanceDiscovery: c.AuthorityURL != "",
		})
		if err != nil {
			return nil, fmt.Errorf("sentinel: workload identity: %w", err)
		}
		return cred, nil
	}
	return newSecretCredential(c, hc), nil
}

// tokens caches the access token of a credential and renews it shortly
// before it expires.
type tokens struct {
	cred  TokenCredential
	scope string
	now   func() time.Time

	fetch chan struct{} // one fetch at a time
	mu    sync.Mutex
	tok   string
	renew time.Time
}

func newTokens(cred TokenCredential, scope string, now func() time.Time) *tokens {
	return &tokens{cred: cred, scope: scope, now: now, fetch: make(chan struct{}, 1)}
}

// get returns a cached token, or a new one.
func (t *tokens) get(ctx context.Context) (string, error) {
	if tok, ok := t.cached(); ok {
		return tok, nil
	}
	select {
	case t.fetch <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("%s: %w", opToken, ctx.Err())
	}
	defer func() { <-t.fetch }()
	if tok, ok := t.cached(); ok {
		return tok, nil
	}
	start := t.now()
	at, err := t.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{t.scope}})
	if err != nil {
		return "", classifyTokenError(ctx, err)
	}
	if at.Token == "" {
		return "", &httpx.Error{Class: httpx.Transient, Op: opToken, Msg: "token response has no access_token"}
	}
	var renew time.Time
	if !at.ExpiresOn.IsZero() {
		ttl := at.ExpiresOn.Sub(start)
		renew = at.ExpiresOn.Add(-min(5*time.Minute, ttl/5))
	}
	t.mu.Lock()
	t.tok, t.renew = at.Token, renew
	t.mu.Unlock()
	return at.Token, nil
}

func (t *tokens) cached() (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok == "" || (!t.renew.IsZero() && !t.now().Before(t.renew)) {
		return "", false
	}
	return t.tok, true
}

// drop forgets tok if it is still the cached token.
func (t *tokens) drop(tok string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok == tok {
		t.tok, t.renew = "", time.Time{}
	}
}

// classifyTokenError turns a credential's error into a classified one.
func classifyTokenError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", opToken, ctx.Err())
	}
	e := &httpx.Error{Class: httpx.Permanent, Op: opToken}
	var re *oauth2.RetrieveError
	var af *azidentity.AuthenticationFailedError
	var nonRetriable interface{ NonRetriable() }
	var status int
	var header http.Header
	switch {
	case errors.As(err, &re):
		if re.Response != nil {
			status, header = re.Response.StatusCode, re.Response.Header
		}
		e.Msg = re.ErrorCode
		if re.ErrorDescription != "" {
			e.Msg += ": " + firstLine(re.ErrorDescription)
		}
		if e.Msg == "" {
			e.Msg = firstLine(string(re.Body))
		}
		switch re.ErrorCode {
		case "invalid_client", "unauthorized_client":
			e.Fix = fixSecret
		case "invalid_scope":
			e.Fix = fixScope
		case "invalid_request":
			e.Fix = fixTenant
		}
	case errors.As(err, &af):
		if af.RawResponse != nil {
			status, header = af.RawResponse.StatusCode, af.RawResponse.Header
		}
		e.Err, e.Fix = err, fixIdentity
	case errors.As(err, &nonRetriable):
		e.Err, e.Fix = err, fixIdentity
	default:
		// No answer from the authority: the network, DNS, a timeout.
		return &httpx.Error{Class: httpx.Transient, Op: opToken, Err: err, Fix: fixAuthority}
	}
	e.Status = status
	switch {
	case status == http.StatusTooManyRequests:
		e.Class = httpx.Throttled
		if d, ok := httpx.ParseRetryAfter(header.Get("Retry-After"), time.Now()); ok {
			e.RetryAfter = d
		}
	case status == http.StatusRequestTimeout || status >= 500:
		e.Class = httpx.Transient
	case status == http.StatusNotFound:
		e.Fix = fixTenant
	case status == http.StatusUnauthorized && e.Fix == "":
		e.Fix = fixSecret
	}
	return e
}

// firstLine returns the first line of a server's message, at most 300
// bytes of it.
func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' || r == '\r' {
			s = s[:i]
			break
		}
	}
	return truncateUTF8(s, 300)
}
