package syslog

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/units"
)

// The transports and formats a Config names.
const (
	TransportTLS = "tls"
	TransportTCP = "tcp"

	FormatRFC5424 = "rfc5424"
	FormatCEF     = "cef"
	FormatLEEF    = "leef"
)

// Defaults and limits.
const (
	// DefaultMaxMessageBytes is rsyslog's default maxMessageSize: a frame
	// longer than that is cut by rsyslog, so the sink parks it instead.
	DefaultMaxMessageBytes = 8096
	// minMessageBytes is RFC 5424's minimum every receiver must accept.
	minMessageBytes = 480
	// maxMessageBytes bounds max_message_bytes.
	maxMessageBytes = 16 << 20
	// DefaultEnterpriseID is the private enterprise number of the
	// structured data ID auditrelay@32473: 32473 is the number RFC 5612
	// reserves for documentation, used until auditrelay has its own.
	DefaultEnterpriseID = 32473
	// maxBatchSize bounds batch_size.
	maxBatchSize = 100_000
	// maxAppName is RFC 5424's APP-NAME limit.
	maxAppName = 48
	// maxHostname is RFC 5424's HOSTNAME limit.
	maxHostname = 255
)

// Config is the `syslog:` block of a sink.
type Config struct {
	// Address is host:port of the syslog receiver, such as
	// siem.example.com:6514 (RFC 5425's port for syslog over TLS).
	Address string `yaml:"address"`
	// Transport is tls (the default, RFC 5425) or tcp (RFC 6587, plain:
	// only to a loopback address, such as a local rsyslog relay).
	Transport string `yaml:"transport"`
	// Format is rfc5424 (the default: the event as JSON in MSG), cef
	// (ArcSight) or leef (QRadar LEEF 2.0).
	Format string `yaml:"format"`
	// CAFile is a PEM file of the CA certificates the receiver's
	// certificate is verified against, besides the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// receivers that authenticate their senders (mutual TLS).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the receiver's certificate must carry;
	// default: the host of address.
	ServerName string `yaml:"server_name"`
	// MaxMessageBytes is the largest syslog message sent (the octets
	// after the length prefix); default 8096, rsyslog's default. A longer
	// message is parked, never cut.
	MaxMessageBytes units.ByteSize `yaml:"max_message_bytes"`
	// AppName is the APP-NAME of every message; default auditrelay.
	AppName string `yaml:"app_name"`
	// Facility is the facility of every message, by name (kern, user, …,
	// local0 to local7) or number; default local4.
	Facility string `yaml:"facility"`
	// Severity is the severity of every message, by name (emerg, alert,
	// crit, err, warning, notice, info, debug) or number; default info.
	Severity string `yaml:"severity"`
	// Hostname is the HOSTNAME of every message; default this machine's
	// name.
	Hostname string `yaml:"hostname"`
	// EnterpriseID is the private enterprise number of the structured
	// data ID (auditrelay@<n>); default 32473.
	EnterpriseID int `yaml:"enterprise_id"`
	// BatchSize is the most events per batch; default 2000.
	BatchSize int `yaml:"batch_size"`
	// WriteTimeout bounds connecting, the TLS handshake and writing one
	// batch; default 30s.
	WriteTimeout units.Duration `yaml:"write_timeout"`
	// ConfirmWait is how long the connection is watched after a batch was
	// written and taken by the receiver's TCP stack, for a close or reset
	// that means the receiver died before storing it; default 10ms, 0 to
	// watch only for what has already arrived.
	ConfirmWait *units.Duration `yaml:"confirm_wait"`
}

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	if c.Transport == "" {
		c.Transport = TransportTLS
	}
	if c.Format == "" {
		c.Format = FormatRFC5424
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.AppName == "" {
		c.AppName = "auditrelay"
	}
	if c.Facility == "" {
		c.Facility = "local4"
	}
	if c.Severity == "" {
		c.Severity = "info"
	}
	if c.EnterpriseID == 0 {
		c.EnterpriseID = DefaultEnterpriseID
	}
	if c.BatchSize == 0 {
		c.BatchSize = 2000
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = units.Duration(30 * time.Second)
	}
	if c.ConfirmWait == nil {
		d := units.Duration(10 * time.Millisecond)
		c.ConfirmWait = &d
	}
}

// Validate reports every problem of a defaulted Config, each prefixed with
// its key. It reads no file: ca_file, cert_file and key_file are loaded by
// New.
func (c *Config) Validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	host := ""
	if c.Address == "" {
		add("address", "required (host:port of the syslog receiver, e.g. siem.example.com:6514)")
	} else if h, p, err := net.SplitHostPort(c.Address); err != nil || h == "" {
		add("address", "%q is not host:port (e.g. siem.example.com:6514)", c.Address)
	} else if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		add("address", "%q: port %q is not a number from 1 to 65535", c.Address, p)
	} else {
		host = h
	}
	switch c.Transport {
	case TransportTLS:
	case TransportTCP:
		if host != "" && !httpx.IsLoopback(host) {
			add("transport", "plain tcp is only allowed to loopback addresses, not %q: use tls (RFC 5425, usually port 6514)", host)
		}
	default:
		add("transport", "%q is not tls or tcp", c.Transport)
	}
	switch c.Format {
	case FormatRFC5424, FormatCEF, FormatLEEF:
	default:
		add("format", "%q is not rfc5424, cef or leef", c.Format)
	}
	if c.Transport == TransportTCP {
		for _, f := range []struct{ key, v string }{{"ca_file", c.CAFile}, {"cert_file", c.CertFile}, {"key_file", c.KeyFile}, {"server_name", c.ServerName}} {
			if f.v != "" {
				add(f.key, "only used with transport: tls")
			}
		}
	}
	for _, f := range []struct{ key, v string }{{"ca_file", c.CAFile}, {"cert_file", c.CertFile}, {"key_file", c.KeyFile}} {
		if f.v != "" && strings.TrimSpace(f.v) != f.v {
			add(f.key, "%q has leading or trailing spaces", f.v)
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		add("cert_file", "cert_file and key_file go together (a client certificate and its key)")
	}
	if c.ServerName != "" && !printASCII(c.ServerName, maxHostname) {
		add("server_name", "%q is not a host name", c.ServerName)
	}
	if c.MaxMessageBytes < minMessageBytes || c.MaxMessageBytes > maxMessageBytes {
		add("max_message_bytes", "%v is out of range (480, RFC 5424's minimum, to 16MiB; rsyslog takes 8096 unless its maxMessageSize is raised)", c.MaxMessageBytes)
	}
	if !printASCII(c.AppName, maxAppName) {
		add("app_name", "%q must be 1 to 48 printable ASCII characters without spaces (RFC 5424 APP-NAME)", c.AppName)
	}
	if _, ok := ParseFacility(c.Facility); !ok {
		add("facility", "%q is not a facility (kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security, console, local0 to local7, or 0 to 23)", c.Facility)
	}
	if _, ok := ParseSeverity(c.Severity); !ok {
		add("severity", "%q is not a severity (emerg, alert, crit, err, warning, notice, info, debug, or 0 to 7)", c.Severity)
	}
	if c.Hostname != "" && !printASCII(c.Hostname, maxHostname) {
		add("hostname", "%q must be 1 to 255 printable ASCII characters without spaces (RFC 5424 HOSTNAME)", c.Hostname)
	}
	if c.EnterpriseID < 1 {
		add("enterprise_id", "%d is not a private enterprise number (a positive integer, see IANA's registry)", c.EnterpriseID)
	}
	if c.BatchSize < 1 || c.BatchSize > maxBatchSize {
		add("batch_size", "%d is out of range (1 to %d)", c.BatchSize, maxBatchSize)
	}
	if c.WriteTimeout.D() < time.Second {
		add("write_timeout", "%v is too short (at least 1s)", c.WriteTimeout)
	}
	if c.ConfirmWait != nil && (c.ConfirmWait.D() < 0 || c.ConfirmWait.D() > 10*time.Second) {
		add("confirm_wait", "%v is out of range (0 to 10s)", *c.ConfirmWait)
	}
	return errs
}

// printASCII reports whether s is 1 to max characters of RFC 5424's
// PRINTUSASCII (33 to 126).
func printASCII(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

var facilities = []string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
	"authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

var severities = []string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// ParseFacility returns the code of a facility given by name or number.
func ParseFacility(s string) (int, bool) { return parseCode(s, facilities) }

// ParseSeverity returns the code of a severity given by name or number.
func ParseSeverity(s string) (int, bool) {
	switch s {
	case "error":
		s = "err"
	case "warn":
		s = "warning"
	case "informational":
		s = "info"
	}
	return parseCode(s, severities)
}

func parseCode(s string, names []string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 0 && n < len(names)
	}
	for i, n := range names {
		if strings.EqualFold(s, n) {
			return i, true
		}
	}
	return 0, false
}
