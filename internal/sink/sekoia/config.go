package sekoia

import (
	"fmt"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/units"
)

// Limits of the intake.
const (
	// MaxEventBytes is the largest event the intake accepts.
	MaxEventBytes = 250_000
	// maxPayload is the intake's payload limit, 10 MiB.
	maxPayload = 10 << 20
	// maxBatchBytes is the largest batch_bytes accepted: well under the
	// payload limit, leaving room for the envelope and escaping.
	maxBatchBytes = 9 << 20
	// maxBatchSize is the largest batch_size accepted.
	maxBatchSize = 10_000
)

// Compression settings.
const (
	CompressionGzip = "gzip"
	CompressionNone = "none"
)

// RegionBase returns the HTTP intake base URL of a Sekoia.io region, and
// whether the region is known.
func RegionBase(region string) (string, bool) {
	switch strings.ToUpper(region) {
	case "FRA1":
		return "https://intake.sekoia.io", true
	case "FRA2":
		return "https://intake.fra2.sekoia.io/api/v1/intake-http", true
	case "MCO1":
		return "https://intake.mco1.sekoia.io/api/v1/intake-http", true
	case "UAE1":
		return "https://intake.uae1.sekoia.io/api/v1/intake-http", true
	case "USA1":
		return "https://intake.usa1.sekoia.io/api/v1/intake-http", true
	case "SGP1":
		// Listed without the /api/v1/intake-http prefix by Sekoia's
		// documentation, unlike the other regions; set url if your
		// intake answers 404 here.
		return "https://intake.sgp1.sekoia.io", true
	}
	return "", false
}

// Config is the `sekoia:` block of a sink.
type Config struct {
	// IntakeKey is the key of the intake the events go to.
	IntakeKey secret.String `yaml:"intake_key"`
	// Region is FRA1 (default), FRA2, MCO1, UAE1, USA1 or SGP1.
	Region string `yaml:"region"`
	// URL overrides the region's intake base URL; /batch is appended.
	URL string `yaml:"url"`
	// Compression is gzip (default) or none.
	Compression string `yaml:"compression"`
	// BatchSize is the most events per request; default 1000.
	BatchSize int `yaml:"batch_size"`
	// BatchBytes bounds the events of one request; default 4MiB.
	BatchBytes units.ByteSize `yaml:"batch_bytes"`
	// RequestTimeout bounds one request; default 30s.
	RequestTimeout units.Duration `yaml:"request_timeout"`
}

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	c.Region = strings.ToUpper(c.Region)
	if c.Region == "" {
		c.Region = "FRA1"
	}
	if c.Compression == "" {
		c.Compression = CompressionGzip
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = 4 << 20
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = units.Duration(30 * time.Second)
	}
	c.URL = strings.TrimRight(c.URL, "/")
}

// Base returns the intake base URL: url, or the region's.
func (c *Config) Base() string {
	if c.URL != "" {
		return c.URL
	}
	b, _ := RegionBase(c.Region)
	return b
}

// Validate reports every problem of a defaulted Config, each prefixed with
// its key.
func (c *Config) Validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if c.IntakeKey.IsZero() {
		add("intake_key", "required (the intake's key from Sekoia.io Intakes, e.g. ${env:SEKOIA_INTAKE_KEY})")
	} else if strings.ContainsAny(c.IntakeKey.Reveal(), " \t\r\n\"") {
		add("intake_key", "contains whitespace or quotes; copy the key alone")
	}
	if _, ok := RegionBase(c.Region); !ok {
		add("region", "unknown region %q (want FRA1, FRA2, MCO1, UAE1, USA1 or SGP1, or set url)", c.Region)
	}
	if c.URL != "" {
		if err := httpx.CheckURL(c.URL); err != nil {
			add("url", "%v", err)
		} else if strings.ContainsAny(c.URL, "?#") {
			add("url", "%q must not carry a query or fragment", c.URL)
		} else if strings.HasSuffix(c.URL, "/batch") {
			add("url", "give the intake base URL; auditrelay appends /batch")
		}
	}
	if c.Compression != CompressionGzip && c.Compression != CompressionNone {
		add("compression", "%q is not supported (want gzip or none)", c.Compression)
	}
	if c.BatchSize < 1 || c.BatchSize > maxBatchSize {
		add("batch_size", "%d is out of range (1 to %d)", c.BatchSize, maxBatchSize)
	}
	if c.BatchBytes < 2*MaxEventBytes || c.BatchBytes > maxBatchBytes {
		add("batch_bytes", "%v is out of range (500KB to 9MiB: an event may be 250,000 bytes and a request at most 10 MiB)", c.BatchBytes)
	}
	if c.RequestTimeout.D() < time.Second {
		add("request_timeout", "%v is too short (at least 1s)", c.RequestTimeout)
	}
	return errs
}
