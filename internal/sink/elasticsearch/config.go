package elasticsearch

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/units"
)

// Formats of the documents written.
const (
	// FormatIntegration writes what Elastic's own integration for the
	// provider expects: the raw event as JSON text in message, @timestamp
	// and data_stream.*. Providers Elastic has no integration for are
	// written as FormatECS.
	FormatIntegration = "integration"
	// FormatECS writes the event normalized to ECS (internal/normalize),
	// with event.original.
	FormatECS = "ecs"
	// FormatOCSF writes the event normalized to OCSF, with raw_data and
	// an @timestamp for data streams.
	FormatOCSF = "ocsf"
	// FormatRaw writes the provider's event as an object under "raw", with
	// @timestamp and an "auditrelay" envelope (source, provider, tenant, id).
	FormatRaw = "raw"
)

// Limits.
const (
	maxBatchSize       = 10_000
	minRequestBytes    = 64 << 10
	maxRequestBytesCap = 100 << 20 // http.max_content_length's default
)

// Config is the `elasticsearch:` block of a sink.
type Config struct {
	// URLs are the cluster's base URLs, used round robin with failover.
	URLs []string `yaml:"urls"`
	// CloudID is an Elastic Cloud deployment's Cloud ID, instead of urls.
	CloudID string `yaml:"cloud_id"`
	// APIKey is the encoded API key (base64 of id:key) as Elasticsearch
	// returns it in "encoded".
	APIKey secret.String `yaml:"api_key"`
	// Username and Password are basic authentication, instead of api_key.
	Username string        `yaml:"username"`
	Password secret.String `yaml:"password"`
	// Index is the target index or data stream; empty: per provider, see
	// DefaultIndex.
	Index string `yaml:"index"`
	// Format is integration (default) or raw.
	Format string `yaml:"format"`
	// CAFile is a PEM file of the CAs that sign the cluster's certificate,
	// for a private CA.
	CAFile string `yaml:"ca_file"`
	// BatchSize is the most documents per _bulk request; default 1000.
	BatchSize int `yaml:"batch_size"`
	// MaxRequestBytes bounds one _bulk body before compression; default 5MiB.
	MaxRequestBytes units.ByteSize `yaml:"max_request_bytes"`
	// RequestTimeout bounds one request; default 30s.
	RequestTimeout units.Duration `yaml:"request_timeout"`
}

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	c.Format = strings.ToLower(strings.TrimSpace(c.Format))
	if c.Format == "" {
		c.Format = FormatIntegration
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = 5 << 20
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = units.Duration(30 * time.Second)
	}
	for i, u := range c.URLs {
		c.URLs[i] = strings.TrimRight(strings.TrimSpace(u), "/")
	}
}

// Validate reports every problem of a defaulted Config, each prefixed with
// its key.
func (c *Config) Validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	switch {
	case len(c.URLs) == 0 && c.CloudID == "":
		add("urls", "required (the cluster's https:// URL, or set cloud_id)")
	case len(c.URLs) > 0 && c.CloudID != "":
		add("cloud_id", "set either urls or cloud_id, not both")
	case c.CloudID != "":
		if _, err := CloudURL(c.CloudID); err != nil {
			add("cloud_id", "%v", err)
		}
	}
	for i, u := range c.URLs {
		field := fmt.Sprintf("urls[%d]", i)
		if err := httpx.CheckURL(u); err != nil {
			add(field, "%v", err)
		} else if strings.ContainsAny(u, "?#") || strings.HasSuffix(u, "/_bulk") {
			add(field, "%q: give the cluster's base URL; auditrelay appends /_bulk", u)
		}
	}
	key, user := !c.APIKey.IsZero(), c.Username != "" || !c.Password.IsZero()
	switch {
	case key && user:
		add("api_key", "set either api_key or username and password, not both")
	case !key && !user:
		add("api_key", "required (an API key's \"encoded\" value, e.g. ${env:ES_API_KEY}), or set username and password")
	case key:
		k := c.APIKey.Reveal()
		if strings.ContainsAny(k, " \t\r\n\"") {
			add("api_key", "contains whitespace or quotes; give the encoded key alone, without \"ApiKey \"")
		} else if d, err := base64.StdEncoding.DecodeString(k); err != nil || !strings.Contains(string(d), ":") {
			add("api_key", "is not an encoded API key (base64 of id:key): give the \"encoded\" value Elasticsearch returned, not the id or the key alone")
		}
	case c.Username == "":
		add("username", "required with password")
	case c.Password.IsZero():
		add("password", "required with username")
	}
	if c.Index != "" {
		if err := checkIndexName(c.Index); err != nil {
			add("index", "%v", err)
		}
	}
	switch c.Format {
	case FormatIntegration, FormatECS, FormatOCSF, FormatRaw:
	default:
		add("format", "%q is not supported (want integration, ecs, ocsf or raw)", c.Format)
	}
	if c.BatchSize < 1 || c.BatchSize > maxBatchSize {
		add("batch_size", "%d is out of range (1 to %d)", c.BatchSize, maxBatchSize)
	}
	if c.MaxRequestBytes < minRequestBytes || c.MaxRequestBytes > maxRequestBytesCap {
		add("max_request_bytes", "%v is out of range (64KiB to 100MiB, Elasticsearch's http.max_content_length; 5MiB to 15MiB suits most clusters)", c.MaxRequestBytes)
	}
	if c.RequestTimeout.D() < time.Second {
		add("request_timeout", "%v is too short (at least 1s)", c.RequestTimeout)
	}
	return errs
}

// Bases returns the cluster's base URLs: urls, or the one cloud_id names.
func (c *Config) Bases() []string {
	if c.CloudID != "" {
		u, _ := CloudURL(c.CloudID)
		return []string{u}
	}
	return c.URLs
}

// CloudURL decodes an Elastic Cloud ID,
// <label>:<base64("<domain>[:port]$<es-uuid>$<kibana-uuid>")>, into the
// deployment's Elasticsearch URL https://<es-uuid>.<domain>[:port].
func CloudURL(id string) (string, error) {
	_, enc, ok := strings.Cut(id, ":")
	if !ok {
		enc = id
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		raw, err = base64.RawStdEncoding.DecodeString(enc)
	}
	if err != nil {
		return "", errors.New("not a Cloud ID (copy it from the deployment's page in the Elastic Cloud console)")
	}
	parts := strings.Split(string(raw), "$")
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return "", errors.New("not a Cloud ID: the decoded value lacks <domain>$<es-uuid> (copy it from the Elastic Cloud console)")
	}
	host, port, _ := strings.Cut(parts[0], ":")
	u := "https://" + parts[1] + "." + host
	if port != "" && port != "443" {
		u += ":" + port
	}
	if err := httpx.CheckURL(u); err != nil {
		return "", fmt.Errorf("decodes to %s: %w", u, err)
	}
	return u, nil
}

// checkIndexName applies Elasticsearch's index name rules.
func checkIndexName(n string) error {
	switch {
	case len(n) > 255:
		return errors.New("longer than 255 bytes")
	case n != strings.ToLower(n):
		return fmt.Errorf("%q must be lower case", n)
	case strings.HasPrefix(n, "-"), strings.HasPrefix(n, "_"), strings.HasPrefix(n, "+"), n == ".", n == "..":
		return fmt.Errorf("%q must not start with -, _ or + (nor be . or ..)", n)
	case strings.ContainsAny(n, `\/*?"<>| ,#:`):
		return fmt.Errorf(`%q must not contain \ / * ? " < > | space , # or :`, n)
	}
	return nil
}
