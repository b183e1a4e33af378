package sentinel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/auditrelay/auditrelay/internal/delivery"
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

// renewAhead is the most a token is renewed before it expires, as the
// Azure SDK does.
const renewAhead = 5 * time.Minute

// newTokens returns the token cache of cred: one fetch at a time, and a
// renewal a fifth of the lifetime early, at most renewAhead.
func newTokens(cred TokenCredential, scope string, now func() time.Time) *httpx.TokenCache {
	fetch := func(ctx context.Context) (string, time.Duration, error) {
		start := now()
		at, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
		if err != nil {
			return "", 0, classifyTokenError(ctx, err)
		}
		if at.Token == "" {
			return "", 0, &delivery.Error{Class: delivery.Transient, Op: opToken, Msg: "token response has no access_token"}
		}
		var ttl time.Duration
		if !at.ExpiresOn.IsZero() {
			// A token already expired is used once and renewed at the
			// next call.
			ttl = max(at.ExpiresOn.Sub(start), time.Nanosecond)
		}
		return at.Token, ttl, nil
	}
	return httpx.NewTokenCache(opToken, fetch, now).RenewAhead(renewAhead)
}

// classifyTokenError turns a credential's error into a classified one.
func classifyTokenError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", opToken, ctx.Err())
	}
	e := &delivery.Error{Class: delivery.Permanent, Op: opToken}
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
		return &delivery.Error{Class: delivery.Transient, Op: opToken, Err: err, Fix: fixAuthority}
	}
	e.Status = status
	switch {
	case status == http.StatusTooManyRequests:
		e.Class = delivery.Throttled
		if d, ok := delivery.ParseRetryAfter(header.Get("Retry-After"), time.Now()); ok {
			e.RetryAfter = d
		}
	case status == http.StatusRequestTimeout || status >= 500:
		e.Class = delivery.Transient
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
