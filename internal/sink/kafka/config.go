package kafka

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/units"
)

// Record keys: what a record's key is made of. The key picks the
// partition (murmur2, as the Java client hashes), so records of one key
// keep their order.
const (
	KeyID     = "id"     // the provider's event id: spreads evenly, no order
	KeyTenant = "tenant" // the provider's tenant: per-tenant order
	KeySource = "source" // the configured source: per-source order
)

// Formats of the record value.
const (
	// FormatRaw is the file sink's NDJSON line: the provider's JSON under
	// "raw" with source, provider, tenant, id and time beside it.
	FormatRaw = "raw"
	// FormatOCSF and FormatECS write the event normalized (see
	// internal/normalize); the headers still carry its id.
	FormatOCSF = "ocsf"
	FormatECS  = "ecs"
)

// Compression codecs.
const (
	CompressionZstd   = "zstd"
	CompressionSnappy = "snappy"
	CompressionLZ4    = "lz4"
	CompressionGzip   = "gzip"
	CompressionNone   = "none"
)

// SASL mechanisms.
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// Bounds of the settings.
const (
	// DefaultMaxRecordBytes is a little under Kafka's default
	// message.max.bytes (1048588) and the Java producer's
	// max.request.size (1048576).
	DefaultMaxRecordBytes = 1_000_000
	minRecordBytes        = 1 << 10
	maxRecordBytes        = 64 << 20
	maxBatchSize          = 10_000
	defaultPort           = "9092"
)

// Config is the `kafka:` block of a sink.
type Config struct {
	// Brokers are the bootstrap brokers, host:port (port 9092 when left
	// out). The cluster's other brokers are found through them.
	Brokers []string `yaml:"brokers"`
	// Topic is the topic written: a name, or a template with {provider},
	// {tenant} and {source}, such as "audit.{provider}".
	Topic string `yaml:"topic"`
	// Key is what the record key holds: id (default), tenant or source.
	Key string `yaml:"key"`
	// Format is the record value's format: raw (default).
	Format string `yaml:"format"`
	// Compression is the batch codec: zstd (default), snappy, lz4, gzip
	// or none.
	Compression string `yaml:"compression"`
	// TLS configures the connections to the brokers.
	TLS TLS `yaml:"tls"`
	// SASL configures authentication; no mechanism means none.
	SASL SASL `yaml:"sasl"`
	// ClientID is the client.id the brokers see (quotas, logs); default
	// auditrelay.
	ClientID string `yaml:"client_id"`
	// BatchSize is the most events handed to the sink at once; default
	// 1000.
	BatchSize int `yaml:"batch_size"`
	// MaxRecordBytes bounds one record (key, value and headers); larger
	// events are parked. Keep it at or under the topic's
	// max.message.bytes. Default 1000000.
	MaxRecordBytes units.ByteSize `yaml:"max_record_bytes"`
	// RequestTimeout bounds how long a broker may take to answer a produce
	// request; default 30s.
	RequestTimeout units.Duration `yaml:"request_timeout"`
	// DeliveryTimeout bounds how long a record may wait for its
	// acknowledgment; a batch still unacknowledged after DeliveryTimeout
	// plus RequestTimeout is reported failed and retried. Default 2m.
	DeliveryTimeout units.Duration `yaml:"delivery_timeout"`
}

// TLS is the `tls:` block of a kafka sink.
type TLS struct {
	// Enabled turns TLS on (the default). Off is allowed only when every
	// broker is a loopback address.
	Enabled *bool `yaml:"enabled"`
	// CAFile is a PEM file of private CA certificates the brokers'
	// certificates are verified against, besides the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that authenticate clients by certificate (mTLS).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// On reports whether TLS is enabled.
func (t *TLS) On() bool { return t.Enabled == nil || *t.Enabled }

// SASL is the `sasl:` block of a kafka sink.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty means no
	// SASL.
	Mechanism string `yaml:"mechanism"`
	// Username is the SASL user.
	Username string `yaml:"username"`
	// Password is the SASL user's password.
	Password secret.String `yaml:"password"`
}

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	if c.Key == "" {
		c.Key = KeyID
	}
	if c.Format == "" {
		c.Format = FormatRaw
	}
	c.Compression = strings.ToLower(c.Compression)
	if c.Compression == "" {
		c.Compression = CompressionZstd
	}
	if c.TLS.Enabled == nil {
		on := true
		c.TLS.Enabled = &on
	}
	c.SASL.Mechanism = strings.ToUpper(c.SASL.Mechanism)
	if c.ClientID == "" {
		c.ClientID = "auditrelay"
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = units.Duration(30 * time.Second)
	}
	if c.DeliveryTimeout == 0 {
		c.DeliveryTimeout = units.Duration(2 * time.Minute)
	}
}

// Validate reports every problem of a defaulted Config, each prefixed with
// its key. It reads nothing: the TLS files are loaded by New.
func (c *Config) Validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	tlsOn := c.TLS.On()
	remote := ""
	if len(c.Brokers) == 0 {
		add("brokers", "required (the bootstrap brokers, such as [\"kafka-1:9092\", \"kafka-2:9092\"])")
	}
	for i, b := range c.Brokers {
		host, err := splitBroker(b)
		if err != nil {
			add(fmt.Sprintf("brokers[%d]", i), "%v", err)
			continue
		}
		if !httpx.IsLoopback(host) && remote == "" {
			remote = host
			if !tlsOn {
				add(fmt.Sprintf("brokers[%d]", i), "plain TCP (tls.enabled: false) is only allowed to loopback brokers, not %q: set tls.enabled: true and use the brokers' TLS listener", host)
			}
		}
	}
	if c.Topic == "" {
		add("topic", "required (a topic name such as identity-audit, or a template such as \"audit.{provider}\")")
	} else if _, err := ParseTopic(c.Topic); err != nil {
		add("topic", "%v", err)
	}
	switch c.Key {
	case KeyID, KeyTenant, KeySource:
	default:
		add("key", "unknown key %q (id, tenant or source)", c.Key)
	}
	switch c.Format {
	case FormatRaw, FormatOCSF, FormatECS:
	default:
		add("format", "unknown format %q (raw, ocsf or ecs)", c.Format)
	}
	switch c.Compression {
	case CompressionZstd, CompressionSnappy, CompressionLZ4, CompressionGzip, CompressionNone:
	default:
		add("compression", "unknown compression %q (zstd, snappy, lz4, gzip or none)", c.Compression)
	}
	for _, f := range []struct{ key, v string }{{"tls.ca_file", c.TLS.CAFile}, {"tls.cert_file", c.TLS.CertFile}, {"tls.key_file", c.TLS.KeyFile}} {
		if f.v == "" {
			continue
		}
		if !tlsOn {
			add(f.key, "is set but tls.enabled is false: remove it, or enable TLS")
		} else if strings.TrimSpace(f.v) != f.v {
			add(f.key, "%q has leading or trailing spaces", f.v)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls", "cert_file and key_file go together: give both (a client certificate and its key) or neither")
	}
	switch c.SASL.Mechanism {
	case "":
		if c.SASL.Username != "" || !c.SASL.Password.IsZero() {
			add("sasl.mechanism", "required with a username or password (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
	case MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		if c.SASL.Username == "" {
			add("sasl.username", "required with sasl.mechanism %s", c.SASL.Mechanism)
		}
		if c.SASL.Password.IsZero() {
			add("sasl.password", "required with sasl.mechanism %s (a secret: use ${env:…} or ${file:…})", c.SASL.Mechanism)
		}
		if c.SASL.Mechanism == MechanismPlain && !tlsOn && remote != "" {
			add("sasl.mechanism", "PLAIN sends the password in clear: it needs tls.enabled: true unless every broker is a loopback address")
		}
	default:
		add("sasl.mechanism", "unknown mechanism %q (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", c.SASL.Mechanism)
	}
	if c.ClientID != strings.TrimSpace(c.ClientID) || strings.ContainsAny(c.ClientID, "\r\n\"") || len(c.ClientID) > 255 {
		add("client_id", "%q must be at most 255 characters, without quotes, line breaks or surrounding spaces", c.ClientID)
	}
	if c.BatchSize < 1 || c.BatchSize > maxBatchSize {
		add("batch_size", "%d is out of range (1 to %d)", c.BatchSize, maxBatchSize)
	}
	if c.MaxRecordBytes < minRecordBytes || c.MaxRecordBytes > maxRecordBytes {
		add("max_record_bytes", "%v is out of range (1KiB to 64MiB; keep it at or under the topic's max.message.bytes)", c.MaxRecordBytes)
	}
	if c.RequestTimeout.D() < time.Second {
		add("request_timeout", "%v is too short (at least 1s)", c.RequestTimeout)
	}
	if c.DeliveryTimeout.D() < 5*time.Second || c.DeliveryTimeout.D() > 24*time.Hour {
		add("delivery_timeout", "%v is out of range (5s to 24h)", c.DeliveryTimeout)
	} else if c.DeliveryTimeout.D() < c.RequestTimeout.D() {
		add("delivery_timeout", "%v is shorter than request_timeout (%v): a batch could never wait for one answer", c.DeliveryTimeout, c.RequestTimeout)
	}
	return errs
}

// splitBroker checks one broker address and returns its host.
func splitBroker(b string) (string, error) {
	if b == "" {
		return "", fmt.Errorf("empty broker address")
	}
	if strings.Contains(b, "://") {
		return "", fmt.Errorf("%q: give host:port, without a scheme (TLS is set by tls.enabled)", b)
	}
	host, port := b, defaultPort
	if strings.HasPrefix(b, "[") || strings.Count(b, ":") == 1 {
		h, p, err := net.SplitHostPort(b)
		if err != nil {
			return "", fmt.Errorf("%q is not host:port: %v", b, err)
		}
		host, port = h, p
	} else if strings.Contains(b, ":") {
		return "", fmt.Errorf("%q: write an IPv6 address in brackets, such as [::1]:9092", b)
	}
	if host == "" || strings.ContainsAny(host, " /\\@") {
		return "", fmt.Errorf("%q: the host is missing or not a host name", b)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", b, port)
	}
	return host, nil
}
