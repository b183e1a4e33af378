package cyberark

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/units"
)

// Token endpoint client authentication methods.
const (
	AuthBasic = "client_secret_basic"
	AuthPost  = "client_secret_post"
)

// DefaultScope is the OAuth2 scope of the ISP audit API.
const DefaultScope = "isp.audit.events:read"

// Config is the `cyberark:` block of a source.
type Config struct {
	// IdentityURL is the Identity tenant that issues tokens, such as
	// https://abc1234.id.cyberark.cloud.
	IdentityURL string `yaml:"identity_url"`
	// AppID is the OAuth2 Server web app's Application ID.
	AppID string `yaml:"app_id"`
	// ClientID is the service user's login, as the administrator typed it.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the service user's password.
	ClientSecret secret.String `yaml:"client_secret"`
	// TokenAuthMethod is client_secret_basic (default) or client_secret_post.
	TokenAuthMethod string `yaml:"token_auth_method"`
	// AuditURL is the audit API base URL shown on the SIEM integration page.
	AuditURL string `yaml:"audit_url"`
	// APIKey is the SIEM integration's API key.
	APIKey secret.String `yaml:"api_key"`
	// Scope is the OAuth2 scope requested; default isp.audit.events:read.
	Scope string `yaml:"scope"`
	// ApplicationCodes, when set, reads only these application codes (IDP,
	// PAM, DPA, SIA, CSM…).
	ApplicationCodes []string `yaml:"application_codes"`
	// PageSize is the events per results page (1 to 1000; default 500).
	PageSize int `yaml:"page_size"`
	// PollInterval is the wait between polls once caught up; default 60s.
	PollInterval units.Duration `yaml:"poll_interval"`
	// SettleDelay keeps queries this far behind now; default 2m.
	SettleDelay units.Duration `yaml:"settle_delay"`
	// Overlap is re-read behind the watermark by every window; default 2m.
	Overlap units.Duration `yaml:"overlap"`
	// Lookback is where the first run starts, behind now; default 24h.
	Lookback units.Duration `yaml:"lookback"`
	// StartAt, when set (RFC 3339), is where the first run starts instead
	// of now - lookback: the newest event an earlier collector delivered,
	// to take over from it without a gap. Ignored once a checkpoint exists.
	StartAt string `yaml:"start_at"`
	// Retention is how far back the API is trusted to serve events: a resume
	// older than this is reported as a gap; default 7d.
	Retention units.Duration `yaml:"retention"`
	// RateLimit is the requests per second to the audit API; default 1.
	RateLimit float64 `yaml:"rate_limit"`
	// RequestTimeout bounds one HTTP request; default 60s.
	RequestTimeout units.Duration `yaml:"request_timeout"`
}

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	if c.TokenAuthMethod == "" {
		c.TokenAuthMethod = AuthBasic
	}
	if c.Scope == "" {
		c.Scope = DefaultScope
	}
	if c.PageSize == 0 {
		c.PageSize = 500
	}
	if c.PollInterval == 0 {
		c.PollInterval = units.Duration(60 * time.Second)
	}
	if c.SettleDelay == 0 {
		c.SettleDelay = units.Duration(2 * time.Minute)
	}
	if c.Overlap == 0 {
		c.Overlap = units.Duration(2 * time.Minute)
	}
	if c.Lookback == 0 {
		c.Lookback = units.Duration(24 * time.Hour)
	}
	if c.Retention == 0 {
		c.Retention = units.Duration(7 * 24 * time.Hour)
	}
	if c.RateLimit == 0 {
		c.RateLimit = 1
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = units.Duration(60 * time.Second)
	}
	c.IdentityURL = strings.TrimRight(c.IdentityURL, "/")
	c.AuditURL = strings.TrimRight(c.AuditURL, "/")
}

// Validate reports every problem of a defaulted Config. Each error's text
// starts with the field's key.
func (c *Config) Validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	checkURL := func(field, v, what string) {
		if v == "" {
			add(field, "required (%s)", what)
			return
		}
		if err := httpx.CheckURL(v); err != nil {
			add(field, "%v", err)
			return
		}
		if u, _ := url.Parse(v); u.RawQuery != "" || u.Fragment != "" || strings.Contains(v, "?") {
			add(field, "%q must not carry a query or fragment", v)
		}
	}
	checkURL("identity_url", c.IdentityURL, "the Identity tenant URL that issues tokens, e.g. https://abc1234.id.cyberark.cloud")
	if strings.Contains(strings.ToLower(c.IdentityURL), "/oauth2") {
		add("identity_url", "give the tenant URL only; auditrelay appends /oauth2/token/{app_id}")
	}
	checkURL("audit_url", c.AuditURL, "the API base URL of the SIEM integration, e.g. https://mytenant.audit.cyberark.cloud")
	if strings.Contains(c.AuditURL, "/api/audits") {
		add("audit_url", "give the base URL only; auditrelay appends /api/audits/stream/…")
	}
	if c.AppID == "" {
		add("app_id", "required (the OAuth2 Server web app's Application ID)")
	} else if strings.ContainsAny(c.AppID, "/?#% ") {
		add("app_id", "%q is not an Application ID", c.AppID)
	}
	if c.ClientID == "" {
		add("client_id", "required (the service user's login, e.g. svc-audit@cyberark.cloud.12345)")
	}
	if c.ClientSecret.IsZero() {
		add("client_secret", "required (the service user's password, e.g. ${env:CYBERARK_CLIENT_SECRET})")
	}
	if c.APIKey.IsZero() {
		add("api_key", "required (the SIEM integration's API key, e.g. ${env:CYBERARK_AUDIT_API_KEY})")
	}
	if c.TokenAuthMethod != AuthBasic && c.TokenAuthMethod != AuthPost {
		add("token_auth_method", "%q is not supported (want %s or %s)", c.TokenAuthMethod, AuthBasic, AuthPost)
	}
	if strings.TrimSpace(c.Scope) == "" {
		add("scope", "must not be blank")
	}
	for i, a := range c.ApplicationCodes {
		if a == "" || strings.ContainsAny(a, " \"\\") {
			add(fmt.Sprintf("application_codes[%d]", i), "%q is not an application code (IDP, PAM, DPA, SIA, CSM…)", a)
		}
	}
	if c.PageSize < 1 || c.PageSize > 1000 {
		add("page_size", "%d is out of range (1 to 1000)", c.PageSize)
	}
	if c.PollInterval.D() < 100*time.Millisecond {
		add("poll_interval", "%v is too short (at least 100ms)", c.PollInterval)
	}
	if c.SettleDelay.D() < 0 || c.SettleDelay.D() > 24*time.Hour {
		add("settle_delay", "%v is out of range (0 to 24h)", c.SettleDelay)
	}
	// The API's date bounds are whole seconds: the overlap is what makes a
	// boundary second safe to re-read, so it must cover at least two.
	if c.Overlap.D() < 2*time.Second || c.Overlap.D() > 24*time.Hour {
		add("overlap", "%v is out of range (2s to 24h: the API's dates are whole seconds, so windows must overlap by at least two)", c.Overlap)
	}
	if c.Retention.D() < time.Hour || c.Retention.D() > 3650*24*time.Hour {
		add("retention", "%v is out of range (1h to 3650d)", c.Retention)
	}
	if c.Lookback.D() <= 0 {
		add("lookback", "must be positive")
	} else if c.Lookback.D() > c.Retention.D() {
		add("lookback", "%v is longer than retention (%v): raise retention if the tenant keeps events that long", c.Lookback, c.Retention)
	}
	if c.StartAt != "" {
		if _, err := c.startAt(); err != nil {
			add("start_at", "%q is not an RFC 3339 time such as 2026-11-25T10:04:05Z", c.StartAt)
		}
	}
	if c.RateLimit <= 0 || c.RateLimit > 50 {
		add("rate_limit", "%v is out of range (more than 0, at most 50 requests/s)", c.RateLimit)
	}
	if c.RequestTimeout.D() < time.Second {
		add("request_timeout", "%v is too short (at least 1s)", c.RequestTimeout)
	}
	return errs
}

// startAt parses StartAt, truncated to the API's whole seconds; zero when
// unset.
func (c *Config) startAt() (time.Time, error) {
	if c.StartAt == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, c.StartAt)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC().Truncate(time.Second), nil
}
