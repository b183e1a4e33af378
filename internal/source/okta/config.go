package okta

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/units"
)

// The ways to authenticate to the System Log API.
const (
	// AuthOAuth is an API Services app with private_key_jwt (recommended).
	AuthOAuth = "oauth"
	// AuthAPIToken is an SSWS API token of an administrator.
	AuthAPIToken = "api_token"
)

// Scope is the OAuth scope that reads the System Log.
const Scope = "okta.logs.read"

// Limits of the System Log API.
const (
	// Retention is how long an org keeps its System Log.
	Retention = 90 * 24 * time.Hour
	// maxPageSize is the largest limit a query takes.
	maxPageSize = 1000
)

// Config is the `okta:` block of a source.
type Config struct {
	// OrgURL is the org, such as https://example.okta.com, or its custom
	// domain.
	OrgURL string `yaml:"org_url"`
	// Auth is oauth (default) or api_token.
	Auth string `yaml:"auth"`
	// ClientID is the service app's client id (oauth).
	ClientID string `yaml:"client_id"`
	// PrivateKeyFile is the PEM private key whose public half is on the
	// service app (oauth): RSA of 2048 bits or more, or EC P-256/384/521.
	PrivateKeyFile string `yaml:"private_key_file"`
	// KeyID is the key's kid on the app, when the app has several keys.
	KeyID string `yaml:"key_id"`
	// APIToken is an SSWS API token (api_token).
	APIToken secret.String `yaml:"api_token"`
	// PageSize is the events per request (1 to 1000; default 1000).
	PageSize int `yaml:"page_size"`
	// PollInterval is the wait between polls once caught up; default 60s.
	PollInterval units.Duration `yaml:"poll_interval"`
	// Lookback is where the first run starts, behind now; default 24h, at
	// most the 90 days an org keeps.
	Lookback units.Duration `yaml:"lookback"`
	// Restart is how far behind the watermark a refused next link starts
	// reading again; default 10m. The store's dedup drops the repeats.
	Restart units.Duration `yaml:"restart_overlap"`
	// RateLimit is the requests per second to the org's System Log;
	// default 0.3 (18 a minute). The X-Rate-Limit-* headers tighten it.
	RateLimit float64 `yaml:"rate_limit"`
	// RequestTimeout bounds one HTTP request; default 60s (Okta stops a
	// query after 30s).
	RequestTimeout units.Duration `yaml:"request_timeout"`
}

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	if c.Auth == "" {
		c.Auth = AuthOAuth
	}
	if c.PageSize == 0 {
		c.PageSize = maxPageSize
	}
	if c.PollInterval == 0 {
		c.PollInterval = units.Duration(60 * time.Second)
	}
	if c.Lookback == 0 {
		c.Lookback = units.Duration(24 * time.Hour)
	}
	if c.Restart == 0 {
		c.Restart = units.Duration(10 * time.Minute)
	}
	if c.RateLimit == 0 {
		c.RateLimit = 0.3
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = units.Duration(60 * time.Second)
	}
	c.OrgURL = strings.TrimRight(c.OrgURL, "/")
}

// Validate reports every problem of a defaulted Config. Each error's text
// starts with the field's key.
func (c *Config) Validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	switch {
	case c.OrgURL == "":
		add("org_url", "required (the org's URL, e.g. https://example.okta.com)")
	case httpx.CheckURL(c.OrgURL) != nil:
		add("org_url", "%v", httpx.CheckURL(c.OrgURL))
	default:
		if u, _ := url.Parse(c.OrgURL); u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
			add("org_url", "give the org's URL only, such as https://example.okta.com; auditrelay appends /api/v1/logs")
		} else if strings.Contains(u.Host, "-admin.") {
			add("org_url", "%q is the admin console; use the org's URL without -admin", c.OrgURL)
		}
	}
	switch c.Auth {
	case AuthOAuth:
		if c.ClientID == "" {
			add("client_id", "required with auth: oauth (the API Services app's client id, 0oa…)")
		}
		if c.PrivateKeyFile == "" {
			add("private_key_file", "required with auth: oauth (the PEM private key whose public key is on the app)")
		}
		if !c.APIToken.IsZero() {
			add("api_token", "not used with auth: oauth; remove it, or set auth: api_token")
		}
	case AuthAPIToken:
		if c.APIToken.IsZero() {
			add("api_token", "required with auth: api_token (e.g. ${env:OKTA_API_TOKEN})")
		}
		if c.ClientID != "" || c.PrivateKeyFile != "" || c.KeyID != "" {
			add("auth", "api_token does not use client_id, private_key_file or key_id; remove them, or set auth: oauth")
		}
	default:
		add("auth", "%q is not supported (want %s or %s)", c.Auth, AuthOAuth, AuthAPIToken)
	}
	if c.PageSize < 1 || c.PageSize > maxPageSize {
		add("page_size", "%d is out of range (1 to %d)", c.PageSize, maxPageSize)
	}
	if c.PollInterval.D() < time.Second {
		add("poll_interval", "%v is too short (at least 1s)", c.PollInterval)
	}
	if c.Lookback.D() <= 0 || c.Lookback.D() > Retention {
		add("lookback", "%v is out of range (more than 0, at most 90d, the System Log's retention)", c.Lookback)
	}
	if c.Restart.D() < 0 || c.Restart.D() > 24*time.Hour {
		add("restart_overlap", "%v is out of range (0 to 24h)", c.Restart)
	}
	if c.RateLimit <= 0 || c.RateLimit > 20 {
		add("rate_limit", "%v is out of range (more than 0, at most 20 requests/s)", c.RateLimit)
	}
	if c.RequestTimeout.D() < time.Second {
		add("request_timeout", "%v is too short (at least 1s)", c.RequestTimeout)
	}
	return errs
}
