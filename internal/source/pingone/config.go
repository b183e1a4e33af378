package pingone

import (
	"fmt"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/units"
)

// MaxLookback is how far back the activities API can be read directly.
const MaxLookback = 14 * 24 * time.Hour

// Regions maps a region code to the top-level domain of its hosts.
var regions = map[string]string{
	"NA": "com", "CA": "ca", "EU": "eu", "AU": "com.au", "SG": "sg", "AP": "asia",
}

// Token endpoint client authentication methods.
const (
	AuthBasic = "client_secret_basic"
	AuthPost  = "client_secret_post"
)

// Config is the `pingone:` block of a source.
type Config struct {
	Region          string         `yaml:"region"`
	EnvironmentID   string         `yaml:"environment_id"`
	ClientID        string         `yaml:"client_id"`
	ClientSecret    secret.String  `yaml:"client_secret"`
	TokenAuthMethod string         `yaml:"token_auth_method"`
	APIURL          string         `yaml:"api_url"`
	AuthURL         string         `yaml:"auth_url"`
	PollInterval    units.Duration `yaml:"poll_interval"`
	SettleDelay     units.Duration `yaml:"settle_delay"`
	Overlap         units.Duration `yaml:"overlap"`
	Lookback        units.Duration `yaml:"lookback"`
	PageSize        int            `yaml:"page_size"`
	RateLimit       float64        `yaml:"rate_limit"`
	Licence         string         `yaml:"licence"`
	// RequestTimeout bounds one HTTP request, token or activities.
	RequestTimeout units.Duration `yaml:"request_timeout"`
}

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	if c.Region == "" {
		c.Region = "NA"
	}
	c.Region = strings.ToUpper(c.Region)
	if c.TokenAuthMethod == "" {
		c.TokenAuthMethod = AuthBasic
	}
	if c.PollInterval == 0 {
		c.PollInterval = units.Duration(30 * time.Second)
	}
	if c.SettleDelay == 0 {
		c.SettleDelay = units.Duration(2 * time.Minute)
	}
	if c.Overlap == 0 {
		c.Overlap = units.Duration(time.Minute)
	}
	if c.Lookback == 0 {
		c.Lookback = units.Duration(24 * time.Hour)
	}
	if c.PageSize == 0 {
		c.PageSize = 1000
	}
	if c.RateLimit == 0 {
		c.RateLimit = 3
	}
	if c.Licence == "" {
		c.Licence = "default"
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = units.Duration(60 * time.Second)
	}
	tld := regions[c.Region]
	if tld == "" {
		return // Validate reports the region
	}
	if c.APIURL == "" {
		c.APIURL = "https://api.pingone." + tld
	}
	if c.AuthURL == "" {
		c.AuthURL = "https://auth.pingone." + tld
	}
}

// Validate reports every problem of a defaulted Config. Each error's text
// starts with the field's key, so the caller can prefix the block's path.
func (c *Config) Validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if _, ok := regions[c.Region]; !ok {
		add("region", "unknown region %q (want NA, CA, EU, AU, SG or AP)", c.Region)
	}
	if c.EnvironmentID == "" {
		add("environment_id", "required (the PingOne environment's ID, from Settings > Environment Properties)")
	} else if strings.ContainsAny(c.EnvironmentID, "/?#% ") {
		add("environment_id", "%q is not an environment ID", c.EnvironmentID)
	}
	if c.ClientID == "" {
		add("client_id", "required (the worker application's Client ID)")
	}
	if c.ClientSecret.IsZero() {
		add("client_secret", "required (the worker application's Client Secret, e.g. ${env:PINGONE_CLIENT_SECRET})")
	}
	if c.TokenAuthMethod != AuthBasic && c.TokenAuthMethod != AuthPost {
		add("token_auth_method", "%q is not supported (want %s or %s)", c.TokenAuthMethod, AuthBasic, AuthPost)
	}
	for _, u := range []struct{ field, v string }{{"api_url", c.APIURL}, {"auth_url", c.AuthURL}} {
		if u.v == "" {
			continue
		}
		if err := httpx.CheckURL(u.v); err != nil {
			add(u.field, "%v", err)
		} else if strings.ContainsAny(u.v, "?#") {
			add(u.field, "%q must not carry a query or fragment", u.v)
		}
	}
	if c.PollInterval.D() < 100*time.Millisecond {
		add("poll_interval", "%v is too short (at least 100ms)", c.PollInterval)
	}
	if c.SettleDelay.D() < 0 {
		add("settle_delay", "must not be negative")
	} else if c.SettleDelay.D() > 24*time.Hour {
		add("settle_delay", "%v is too long (at most 24h)", c.SettleDelay)
	}
	if c.Overlap.D() < 0 {
		add("overlap", "must not be negative")
	}
	if c.Overlap.D() > 24*time.Hour {
		add("overlap", "%v is too long (at most 24h)", c.Overlap)
	}
	if c.Lookback.D() <= 0 {
		add("lookback", "must be positive")
	} else if c.Lookback.D() > MaxLookback {
		add("lookback", "%v is over 14 days, the most the PingOne activities API can read directly", c.Lookback)
	}
	if c.PageSize < 1 || c.PageSize > 1000 {
		add("page_size", "%d is out of range (1 to 1000)", c.PageSize)
	}
	if c.RateLimit <= 0 || c.RateLimit > 10 {
		add("rate_limit", "%v is out of range (more than 0, at most 10 requests/s, the API's limit per licence)", c.RateLimit)
	}
	if c.RequestTimeout.D() < time.Second {
		add("request_timeout", "%v is too short (at least 1s)", c.RequestTimeout)
	}
	return errs
}
