package postgres

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/units"
)

// Defaults and bounds of the postgres: block.
const (
	// DefaultLeaseTTL is how long a lease lasts unless renewed: the most
	// a dead replica's work waits before another replica takes it.
	DefaultLeaseTTL = 15 * time.Second
	// MinLeaseTTL and MaxLeaseTTL bound lease_ttl.
	MinLeaseTTL = 3 * time.Second
	MaxLeaseTTL = 10 * time.Minute
	// maxReplicaID is the longest replica_id accepted.
	maxReplicaID = 100
)

// Config is the store: postgres: block.
type Config struct {
	// DSN is a libpq connection string or postgres:// URL, or the
	// directory of a local server's unix socket.
	DSN secret.String `yaml:"dsn"`
	// LeaseTTL is how long a replica's lease on a source or sink lasts
	// unless renewed (default 15s).
	LeaseTTL units.Duration `yaml:"lease_ttl"`
	// ReplicaID names this process in the lease rows, status and metrics
	// (default: host name and pid).
	ReplicaID string `yaml:"replica_id"`
}

// SetDefaults fills the unset values that need no I/O; the replica id is
// completed at Open.
func (c *Config) SetDefaults() {
	if c.LeaseTTL == 0 {
		c.LeaseTTL = units.Duration(DefaultLeaseTTL)
	}
}

// Validate returns every problem of the block, each starting with its key.
func (c *Config) Validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf(field+": "+format, args...))
	}
	if c.DSN.IsZero() {
		add("dsn", `required: the PostgreSQL to keep the store in, such as "${env:AUDITRELAY_POSTGRES_DSN}" holding postgres://auditrelay@db.example.com/auditrelay?sslmode=verify-full`)
	} else if c.DSN.IsResolved() {
		if _, err := ParseDSN(c.DSN); err != nil {
			add("dsn", "%v", err)
		}
	}
	if d := c.LeaseTTL.D(); d < MinLeaseTTL || d > MaxLeaseTTL {
		add("lease_ttl", "%v is out of range (from %v to %v)", c.LeaseTTL, units.Duration(MinLeaseTTL), units.Duration(MaxLeaseTTL))
	}
	if len(c.ReplicaID) > maxReplicaID || strings.IndexFunc(c.ReplicaID, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
		add("replica_id", "must be at most %d printable characters", maxReplicaID)
	}
	return errs
}

// Replica returns the configured replica id, or the host name and pid.
func (c *Config) Replica() string {
	if c.ReplicaID != "" {
		return c.ReplicaID
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "auditrelay"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

// ParseDSN parses a DSN as pgx does, a bare directory standing for the
// unix socket of a local server, and refuses a connection that could go
// over a network without TLS to anything but loopback. Its errors never
// hold the DSN's password.
func ParseDSN(dsn secret.String) (*pgconn.Config, error) {
	s := dsn.Reveal()
	if strings.HasPrefix(s, "/") && !strings.ContainsAny(s, " =") {
		s = "host=" + s
	}
	cfg, err := pgconn.ParseConfig(s)
	if err != nil {
		return nil, errors.New(scrub(err.Error(), s))
	}
	check := func(host string, tls bool) error {
		if tls || strings.HasPrefix(host, "/") || isLoopback(host) {
			return nil
		}
		return fmt.Errorf("a connection to %s could go without TLS (sslmode disable, allow or prefer): set sslmode=verify-full (or require); plain connections are only for loopback and unix sockets", host)
	}
	if err := check(cfg.Host, cfg.TLSConfig != nil); err != nil {
		return nil, err
	}
	for _, fb := range cfg.Fallbacks {
		if err := check(fb.Host, fb.TLSConfig != nil); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// scrub removes from msg the DSN and any password it holds.
func scrub(msg, dsn string) string {
	if dsn != "" {
		msg = strings.ReplaceAll(msg, dsn, secret.Redacted)
	}
	for _, pw := range passwords(dsn) {
		msg = strings.ReplaceAll(msg, pw, secret.Redacted)
	}
	return msg
}

// passwords returns the passwords a DSN spells, in URL or keyword form,
// without parsing it the way that could fail.
func passwords(dsn string) []string {
	var out []string
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok && pw != "" {
				out = append(out, pw)
			}
		}
	}
	for _, key := range []string{"password=", "password%3D"} {
		for s := dsn; ; {
			i := strings.Index(s, key)
			if i < 0 {
				break
			}
			v := s[i+len(key):]
			if strings.HasPrefix(v, "'") {
				if j := strings.Index(v[1:], "'"); j >= 0 {
					v = v[1 : j+1]
				}
			} else if j := strings.IndexAny(v, " &"); j >= 0 {
				v = v[:j]
			}
			if v != "" {
				out = append(out, v)
			}
			s = s[i+len(key):]
		}
	}
	return out
}
