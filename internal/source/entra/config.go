package entra

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/units"
)

// The streams a source can read, by their keys in streams.
const (
	// StreamDirectoryAudits is /auditLogs/directoryAudits.
	StreamDirectoryAudits = "directory_audits"
	// StreamSignIns is /auditLogs/signIns (interactive user sign-ins; the
	// tenant needs Entra ID P1 or P2).
	StreamSignIns = "sign_ins"
	// StreamProvisioning is /auditLogs/provisioning.
	StreamProvisioning = "provisioning"
)

// The clouds, by their keys in cloud.
const (
	CloudGlobal   = "global"
	CloudUSGov    = "usgov"
	CloudUSGovDoD = "usgovdod"
	CloudChina    = "china"
)

// clouds maps a cloud to its authority and Graph root (the token scope is
// the Graph root's /.default).
var clouds = map[string]struct{ authority, graph string }{
	CloudGlobal:   {"https://login.microsoftonline.com", "https://graph.microsoft.com"},
	CloudUSGov:    {"https://login.microsoftonline.us", "https://graph.microsoft.us"},
	CloudUSGovDoD: {"https://login.microsoftonline.us", "https://dod-graph.microsoft.us"},
	CloudChina:    {"https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"},
}

// Limits of the Graph audit log reports.
const (
	// MaxRetention is the longest a tenant keeps its audit and sign-in
	// logs (30 days with Entra ID P1/P2; 7 days without).
	MaxRetention = 30 * 24 * time.Hour
	// maxPageSize is the largest $top.
	maxPageSize = 1000
	// maxRateLimit is the reports' limit: 5 requests per 10 s per app and
	// tenant.
	maxRateLimit = 0.5
)

// Config is the `entra:` block of a source.
type Config struct {
	// TenantID is the directory (tenant) id, a GUID, or a verified domain.
	TenantID string `yaml:"tenant_id"`
	// ClientID is the app registration's application (client) id.
	ClientID string `yaml:"client_id"`
	// ClientSecret is a client secret's value (not its secret id).
	ClientSecret secret.String `yaml:"client_secret"`
	// CertificateFile is a PEM file with the app's certificate (the first
	// CERTIFICATE block) and, unless PrivateKeyFile is set, its RSA
	// private key.
	CertificateFile string `yaml:"certificate_file"`
	// PrivateKeyFile is the PEM RSA private key of CertificateFile, when
	// it is kept apart: PKCS #8 (PRIVATE KEY) or PKCS #1 (RSA PRIVATE KEY),
	// unencrypted.
	PrivateKeyFile string `yaml:"private_key_file"`
	// Cloud is global (default), usgov, usgovdod or china: it sets the
	// authority, the Graph host and the token scope.
	Cloud string `yaml:"cloud"`
	// Streams are the logs read, each its own source named
	// <name>/<stream>; default [directory_audits, sign_ins].
	Streams []string `yaml:"streams"`
	// SettleDelay keeps windows this far behind now; default 15m.
	SettleDelay units.Duration `yaml:"settle_delay"`
	// Overlap is re-read behind the watermark; default 30m. Events up to
	// settle_delay + overlap late are delivered.
	Overlap units.Duration `yaml:"overlap"`
	// Lookback is where the first run starts, behind now; default 24h,
	// clamped to retention.
	Lookback units.Duration `yaml:"lookback"`
	// Retention is how long the tenant keeps its logs: 30d (default, P1/P2)
	// or 7d (Free).
	Retention units.Duration `yaml:"retention"`
	// RateLimit is the requests per second of all the streams of this app
	// in this tenant; default 0.45 (the API allows 5 per 10 s).
	RateLimit float64 `yaml:"rate_limit"`
	// PollInterval is the wait between polls once caught up; default 60s.
	PollInterval units.Duration `yaml:"poll_interval"`
	// AuthorityURL overrides the cloud's authority (a proxy, the emulator).
	AuthorityURL string `yaml:"authority_url"`
	// GraphURL overrides the cloud's Graph host (a proxy, the emulator).
	GraphURL string `yaml:"graph_url"`
	// RequestTimeout bounds one HTTP request; default 60s.
	RequestTimeout units.Duration `yaml:"request_timeout"`
	// PageSize is the $top of each request, 1 to 1000; default 1000.
	PageSize int `yaml:"page_size"`
}

// SetDefaults fills every unset field with its documented default, and
// authority_url and graph_url from the cloud.
func (c *Config) SetDefaults() {
	if c.Cloud == "" {
		c.Cloud = CloudGlobal
	}
	if len(c.Streams) == 0 {
		c.Streams = []string{StreamDirectoryAudits, StreamSignIns}
	}
	if c.SettleDelay == 0 {
		c.SettleDelay = units.Duration(15 * time.Minute)
	}
	if c.Overlap == 0 {
		c.Overlap = units.Duration(30 * time.Minute)
	}
	if c.Lookback == 0 {
		c.Lookback = units.Duration(24 * time.Hour)
	}
	if c.Retention == 0 {
		c.Retention = units.Duration(MaxRetention)
	}
	if c.RateLimit == 0 {
		c.RateLimit = 0.45
	}
	if c.PollInterval == 0 {
		c.PollInterval = units.Duration(60 * time.Second)
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = units.Duration(60 * time.Second)
	}
	if c.PageSize == 0 {
		c.PageSize = maxPageSize
	}
	if cl, ok := clouds[c.Cloud]; ok {
		if c.AuthorityURL == "" {
			c.AuthorityURL = cl.authority
		}
		if c.GraphURL == "" {
			c.GraphURL = cl.graph
		}
	}
	c.AuthorityURL = strings.TrimRight(c.AuthorityURL, "/")
	c.GraphURL = strings.TrimRight(c.GraphURL, "/")
}

// Validate reports every problem of a defaulted Config. Each error's text
// starts with the field's key.
func (c *Config) Validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if c.TenantID == "" {
		add("tenant_id", "required (the Directory (tenant) ID on the app registration's Overview page)")
	} else if strings.ContainsAny(c.TenantID, "/?#% ") {
		add("tenant_id", "%q is not a tenant id or domain", c.TenantID)
	}
	if c.ClientID == "" {
		add("client_id", "required (the Application (client) ID on the app registration's Overview page)")
	}
	switch {
	case !c.ClientSecret.IsZero() && c.CertificateFile != "":
		add("client_secret", "set either client_secret or certificate_file, not both")
	case c.ClientSecret.IsZero() && c.CertificateFile == "":
		add("client_secret", "required unless certificate_file is set (e.g. ${env:ENTRA_CLIENT_SECRET})")
	}
	if c.PrivateKeyFile != "" && c.CertificateFile == "" {
		add("private_key_file", "is the key of certificate_file: set certificate_file too, or remove it")
	}
	if _, ok := clouds[c.Cloud]; !ok {
		add("cloud", "%q is not supported (want %s, %s, %s or %s)", c.Cloud, CloudGlobal, CloudUSGov, CloudUSGovDoD, CloudChina)
	}
	for _, f := range []struct{ key, v string }{{"authority_url", c.AuthorityURL}, {"graph_url", c.GraphURL}} {
		if err := httpx.CheckURL(f.v); err != nil {
			add(f.key, "%v", err)
		} else if u, _ := url.Parse(f.v); u.RawQuery != "" || u.Fragment != "" {
			add(f.key, "give the host (and any proxy path prefix) only, without a query")
		}
	}
	if u, err := url.Parse(c.GraphURL); err == nil && (strings.HasSuffix(u.Path, "/v1.0") || strings.HasSuffix(u.Path, "/beta")) {
		add("graph_url", "give the Graph host without /v1.0; auditrelay appends /v1.0/auditLogs/…")
	}
	seen := map[string]bool{}
	for _, s := range c.Streams {
		switch {
		case !slices.Contains([]string{StreamDirectoryAudits, StreamSignIns, StreamProvisioning}, s):
			add("streams", "%q is not a stream (want %s, %s or %s)", s, StreamDirectoryAudits, StreamSignIns, StreamProvisioning)
		case seen[s]:
			add("streams", "%s is listed twice", s)
		}
		seen[s] = true
	}
	ret := c.Retention.D()
	if ret < 24*time.Hour || ret > MaxRetention {
		add("retention", "%v is out of range (1d to 30d: 30d with Entra ID P1/P2, 7d for Free tenants)", c.Retention)
	} else if seen[StreamSignIns] && ret < MaxRetention {
		add("streams", "sign_ins needs Entra ID P1 or P2, whose tenants keep 30 days, but retention is %v (a Free tenant): remove sign_ins, or set retention: 30d if the tenant has P1/P2", c.Retention)
	}
	if c.SettleDelay.D() < 0 || c.SettleDelay.D() > 24*time.Hour {
		add("settle_delay", "%v is out of range (0 to 24h)", c.SettleDelay)
	}
	if c.Overlap.D() < 0 || c.Overlap.D() > 24*time.Hour {
		add("overlap", "%v is out of range (0 to 24h)", c.Overlap)
	}
	if c.Lookback.D() <= 0 {
		add("lookback", "%v is out of range (more than 0; a lookback past retention starts at the oldest event the tenant keeps)", c.Lookback)
	}
	if ret >= 24*time.Hour && c.SettleDelay.D()+c.Overlap.D()+2*time.Hour > ret {
		add("overlap", "settle_delay + overlap (%v) leave no room within retention %v", c.SettleDelay.D()+c.Overlap.D(), c.Retention)
	}
	if c.RateLimit <= 0 || c.RateLimit > maxRateLimit {
		add("rate_limit", "%v is out of range (more than 0, at most 0.5 requests/s: Graph allows an app 5 requests per 10 s in a tenant, for all streams)", c.RateLimit)
	}
	if c.PollInterval.D() < time.Second {
		add("poll_interval", "%v is too short (at least 1s)", c.PollInterval)
	}
	if c.RequestTimeout.D() < time.Second {
		add("request_timeout", "%v is too short (at least 1s)", c.RequestTimeout)
	}
	if c.PageSize < 1 || c.PageSize > maxPageSize {
		add("page_size", "%d is out of range (1 to %d)", c.PageSize, maxPageSize)
	}
	return errs
}
