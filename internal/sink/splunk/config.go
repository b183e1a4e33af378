package splunk

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/units"
)

// Limits of HEC and of this sink.
const (
	// MaxEventBytes is the largest envelope sent: HEC refuses single
	// events above about 5 MB.
	MaxEventBytes = 5 << 20
	// maxRequestBytes is the largest max_request_bytes accepted, HEC's
	// default max_content_length (limits.conf [http_input]).
	maxRequestBytes = 838_860_800
	// minRequestBytes is the smallest max_request_bytes accepted.
	minRequestBytes = 64 << 10
	// maxBatchSize is the largest batch_size accepted.
	maxBatchSize = 100_000
)

// Config is the `splunk:` block of a sink.
type Config struct {
	// URL is the HEC base URL, such as https://splunk.example.com:8088;
	// /services/collector/... is appended.
	URL string `yaml:"url"`
	// Token is the HEC token (a GUID).
	Token secret.String `yaml:"token"`
	// Index is the index events go to; empty: the token's default index.
	Index string `yaml:"index"`
	// Sourcetype overrides the per-provider sourcetype (see Sourcetype).
	Sourcetype string `yaml:"sourcetype"`
	// Ack turns indexer acknowledgment on (the default): a batch is done
	// only once /services/collector/ack says its ackId is true. The token
	// must have indexer acknowledgment enabled.
	Ack *bool `yaml:"ack"`
	// AckTimeout is how long an ackId may stay false before its request is
	// sent again; default 5m.
	AckTimeout units.Duration `yaml:"ack_timeout"`
	// CAFile is a PEM file of private CA certificates the HEC's TLS
	// certificate is verified against, besides the system's.
	CAFile string `yaml:"ca_file"`
	// BatchSize is the most events per request; default 1000.
	BatchSize int `yaml:"batch_size"`
	// MaxRequestBytes bounds the uncompressed body of one request;
	// default 1MiB. Keep it under the server's max_content_length.
	MaxRequestBytes units.ByteSize `yaml:"max_request_bytes"`
	// RequestTimeout bounds one request; default 30s.
	RequestTimeout units.Duration `yaml:"request_timeout"`
}

// AckEnabled reports whether indexer acknowledgment is on.
func (c *Config) AckEnabled() bool { return c.Ack == nil || *c.Ack }

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	if c.Ack == nil {
		on := true
		c.Ack = &on
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = units.Duration(5 * time.Minute)
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = 1 << 20
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = units.Duration(30 * time.Second)
	}
	c.URL = strings.TrimRight(c.URL, "/")
}

// Validate reports every problem of a defaulted Config, each prefixed with
// its key. It reads nothing: ca_file is loaded by New.
func (c *Config) Validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if c.URL == "" {
		add("url", "required (the HEC base URL, e.g. https://splunk.example.com:8088)")
	} else if err := httpx.CheckURL(c.URL); err != nil {
		add("url", "%v", err)
	} else if u, _ := url.Parse(c.URL); u.RawQuery != "" || u.Fragment != "" {
		add("url", "%q must not carry a query or fragment", c.URL)
	} else if strings.Contains(u.Path, "/services/collector") {
		add("url", "give the HEC base URL (scheme, host and port); auditrelay appends /services/collector/event")
	}
	if c.Token.IsZero() {
		add("token", "required (the HEC token from Settings > Data inputs > HTTP Event Collector, e.g. ${env:SPLUNK_HEC_TOKEN})")
	} else if c.Token.IsResolved() && strings.ContainsAny(c.Token.Reveal(), " \t\r\n\"") {
		add("token", "contains whitespace or quotes; copy the token value alone, without \"Splunk \"")
	}
	if c.Index != "" && !validName(c.Index) {
		add("index", "%q is not a Splunk index name (lower case letters, digits, _ and -, not starting with _ or -)", c.Index)
	}
	if strings.ContainsAny(c.Sourcetype, "\r\n\"") {
		add("sourcetype", "%q must not contain quotes or line breaks", c.Sourcetype)
	}
	if c.AckTimeout.D() < 10*time.Second || c.AckTimeout.D() > 24*time.Hour {
		add("ack_timeout", "%v is out of range (10s to 24h; Splunk recommends treating an ack still false after about 5m as lost)", c.AckTimeout)
	}
	if c.BatchSize < 1 || c.BatchSize > maxBatchSize {
		add("batch_size", "%d is out of range (1 to %d)", c.BatchSize, maxBatchSize)
	}
	if c.MaxRequestBytes < minRequestBytes || c.MaxRequestBytes > maxRequestBytes {
		add("max_request_bytes", "%v is out of range (64KiB to 800MiB, the HEC default max_content_length)", c.MaxRequestBytes)
	}
	if c.RequestTimeout.D() < time.Second {
		add("request_timeout", "%v is too short (at least 1s)", c.RequestTimeout)
	}
	if c.CAFile != "" && strings.TrimSpace(c.CAFile) != c.CAFile {
		add("ca_file", "%q has leading or trailing spaces", c.CAFile)
	}
	return errs
}

// validName reports whether s can name a Splunk index.
func validName(s string) bool {
	if s == "" || s[0] == '_' || s[0] == '-' || len(s) > 80 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Sourcetype returns the default sourcetype of a provider's events: those
// the Splunk add-ons for each provider parse, and auditrelay:<provider>
// for any other.
func Sourcetype(provider string) string {
	switch provider {
	case "pingone":
		return "pingone:audit"
	case "cyberark":
		return "cyberark:isp:audit"
	case "okta":
		return "OktaIM2:log" // Splunk Add-on for Okta Identity Cloud, System Log
	case "entra_directory_audits":
		return "ms:aad:audit"
	case "entra_sign_ins":
		return "ms:aad:signin"
	case "entra_provisioning":
		return "ms:aad:provisioning"
	}
	return "auditrelay:" + provider
}

// defaultHost is the envelope's host: this machine's name.
func defaultHost() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "auditrelay"
	}
	return h
}
