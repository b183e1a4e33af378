// Package config loads auditrelay's configuration file.
//
// Loading is strict and reports every problem at once. The file is read,
// parsed into a YAML node tree, and decoded against the configuration types
// with each scalar value expanded first: ${env:NAME} is replaced by an
// environment variable, ${file:/abs/path} by a file's content (one trailing
// newline trimmed), and $$ by a literal $. Expanding after parsing means a
// secret containing quotes, colons or newlines cannot change the file's
// structure. Unknown keys, wrong types and failed expansions are problems;
// then defaults are applied and every value is validated, each source and
// sink block by its own package's rules.
//
// Each problem carries the path of the value it is about, such as
// sources[0].pingone.client_id, and its line when the value is in the file.
// No problem ever contains an expanded value, or any part of one: a message
// that would show one is rewritten to name the reference instead.
//
// LoadWithoutSecrets loads a file the same way but reads none of its
// secrets but the store's DSN, for the commands that only inspect the store.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/sink/elasticsearch"
	"github.com/auditrelay/auditrelay/internal/sink/file"
	"github.com/auditrelay/auditrelay/internal/sink/kafka"
	"github.com/auditrelay/auditrelay/internal/sink/sekoia"
	"github.com/auditrelay/auditrelay/internal/sink/sentinel"
	"github.com/auditrelay/auditrelay/internal/sink/splunk"
	"github.com/auditrelay/auditrelay/internal/sink/stdout"
	"github.com/auditrelay/auditrelay/internal/sink/syslog"
	"github.com/auditrelay/auditrelay/internal/source/cyberark"
	"github.com/auditrelay/auditrelay/internal/source/entra"
	"github.com/auditrelay/auditrelay/internal/source/okta"
	"github.com/auditrelay/auditrelay/internal/source/pingone"
	"github.com/auditrelay/auditrelay/internal/store/postgres"
	"github.com/auditrelay/auditrelay/internal/units"
)

// Defaults and bounds of the top-level settings.
const (
	// DefaultDataDir is where the store lives when data_dir is not set.
	DefaultDataDir = "./data"
	// DefaultSpoolMaxBytes is the spool's size bound when spool_max_bytes is
	// not set.
	DefaultSpoolMaxBytes units.ByteSize = 1 << 30
	// MinSpoolMaxBytes is the smallest spool_max_bytes accepted.
	MinSpoolMaxBytes units.ByteSize = 1 << 20
	// DefaultLogLevel applies when log.level is not set.
	DefaultLogLevel = "info"
	// DefaultLogFormat applies when log.format is not set.
	DefaultLogFormat = "text"
	// MaxSecretFileSize is the largest file Load reads for a ${file:...}
	// reference.
	MaxSecretFileSize = 1 << 20
)

// Config is a whole configuration file after expansion, defaults and
// validation. A Config returned by Load or Parse is valid: every source and
// sink has exactly one type block, with its defaults applied, and every sink
// lists the sources it takes by name.
type Config struct {
	// DataDir is the directory of the store (cursors, spool, offsets).
	DataDir string `yaml:"data_dir"`
	// MetricsListen is the host:port serving /metrics, /healthz and /readyz;
	// empty turns the listener off.
	MetricsListen string `yaml:"metrics_listen"`
	// MetricsTLS serves metrics_listen over HTTPS.
	MetricsTLS *MetricsTLS `yaml:"metrics_tls,omitempty"`
	// MetricsAuth asks for credentials on /metrics, the status page and
	// /status.json; /healthz and /readyz stay open to probes.
	MetricsAuth *MetricsAuth `yaml:"metrics_auth,omitempty"`
	// SpoolMaxBytes bounds the spool: polling pauses when it is reached.
	SpoolMaxBytes units.ByteSize `yaml:"spool_max_bytes"`
	// Log configures the process's log output.
	Log Log `yaml:"log"`
	// Store chooses where the state lives: in data_dir (the default) or,
	// with a postgres: block, in PostgreSQL shared by several replicas.
	Store Store `yaml:"store,omitempty"`
	// Sources are the provider APIs read, in file order.
	Sources []Source `yaml:"sources"`
	// Sinks are the destinations written, in file order.
	Sinks []Sink `yaml:"sinks"`
}

// MetricsTLS is the certificate metrics_listen serves HTTPS with.
type MetricsTLS struct {
	// CertFile is a PEM file of the certificate, its chain after it.
	CertFile string `yaml:"cert_file"`
	// KeyFile is a PEM file of the certificate's private key.
	KeyFile string `yaml:"key_file"`
}

// MetricsAuth is the credentials metrics_listen accepts: a user name and
// password (HTTP basic authentication, for people and scrapers), a bearer
// token (for scrapers), or either when both are set.
type MetricsAuth struct {
	// Basic is the basic: block.
	Basic *BasicAuth `yaml:"basic"`
	// BearerToken is accepted in an "Authorization: Bearer" header.
	BearerToken secret.String `yaml:"bearer_token"`
}

// BasicAuth is a user name and password for HTTP basic authentication.
type BasicAuth struct {
	Username string        `yaml:"username"`
	Password secret.String `yaml:"password"`
}

// Store chooses the store. With no block set, the state is one bbolt
// file in data_dir.
type Store struct {
	// Postgres keeps the state in PostgreSQL, for several replicas.
	Postgres *postgres.Config `yaml:"postgres"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// Source is one provider API to read. Exactly one type block is set.
type Source struct {
	// Name identifies the source in sinks, metrics, logs and the store.
	Name string `yaml:"name"`
	// PingOne is the pingone: block.
	PingOne *pingone.Config `yaml:"pingone"`
	// CyberArk is the cyberark: block.
	CyberArk *cyberark.Config `yaml:"cyberark"`
	// Okta is the okta: block.
	Okta *okta.Config `yaml:"okta"`
	// Entra is the entra: block: one source per stream it reads.
	Entra *entra.Config `yaml:"entra"`
}

// Names returns the names the source runs under: its name, or for a block
// that reads several streams (entra:), <name>/<stream> for each. Sinks,
// the store, metrics and logs know it by these names.
func (s *Source) Names() []string {
	if s.Entra != nil {
		e := *s.Entra
		e.SetDefaults() // the streams, before validation has defaulted the block
		out := make([]string, 0, len(e.Streams))
		for _, st := range e.Streams {
			out = append(out, s.Name+"/"+st)
		}
		return out
	}
	return []string{s.Name}
}

// SourceNames returns the names every configured source runs under, in the
// order of the file (see Source.Names).
func (c *Config) SourceNames() []string {
	var out []string
	for i := range c.Sources {
		out = append(out, c.Sources[i].Names()...)
	}
	return out
}

// Providers returns the providers (the source kinds) of the sources sink
// takes, in the order they are configured, each once.
func (c *Config) Providers(sink *Sink) []string {
	takes := map[string]bool{}
	for _, n := range sink.Sources {
		takes[n] = true
	}
	var out []string
	seen := map[string]bool{}
	for i := range c.Sources {
		kind := c.Sources[i].Kind()
		if kind == "" || seen[kind] {
			continue
		}
		for _, n := range c.Sources[i].Names() {
			if takes[n] {
				seen[kind] = true
				out = append(out, kind)
				break
			}
		}
	}
	return out
}

// Lookback returns the lookback of the source's type block, 0 without one.
func (s *Source) Lookback() units.Duration {
	switch {
	case s.PingOne != nil:
		return s.PingOne.Lookback
	case s.CyberArk != nil:
		return s.CyberArk.Lookback
	case s.Okta != nil:
		return s.Okta.Lookback
	case s.Entra != nil:
		return s.Entra.Lookback
	}
	return 0
}

// rateLimit returns the rate_limit of the source's block, 0 without one.
func (s *Source) rateLimit() float64 {
	switch {
	case s.PingOne != nil:
		return s.PingOne.RateLimit
	case s.CyberArk != nil:
		return s.CyberArk.RateLimit
	case s.Okta != nil:
		return s.Okta.RateLimit
	case s.Entra != nil:
		return s.Entra.RateLimit
	}
	return 0
}

// Kind returns the name of the source's type block (one of SourceKinds:
// "pingone", "cyberark", "okta", "entra"), or "" when it has none.
func (s *Source) Kind() string {
	if k := s.kinds(); len(k) > 0 {
		return k[0]
	}
	return ""
}

// kinds lists the type blocks that are set.
func (s *Source) kinds() []string { return setBlocks(reflect.ValueOf(s).Elem()) }

// SourceKinds lists the type blocks a source can have, by their keys in
// the file, in declaration order: "pingone", "cyberark", "okta", "entra".
func SourceKinds() []string { return blockKeys(reflect.TypeFor[Source]()) }

// Sink is one destination to write. Exactly one type block is set.
type Sink struct {
	// Name identifies the sink in metrics, logs and the store.
	Name string `yaml:"name"`
	// Sources names the sources whose events this sink takes. Left empty in
	// the file it means every source, and is filled in with their names.
	Sources []string `yaml:"sources"`
	// File is the file: block.
	File *file.Config `yaml:"file"`
	// Stdout is the stdout: block.
	Stdout *stdout.Config `yaml:"stdout"`
	// Sentinel is the sentinel: block.
	Sentinel *sentinel.Config `yaml:"sentinel"`
	// Sekoia is the sekoia: block.
	Sekoia *sekoia.Config `yaml:"sekoia"`
	// Splunk is the splunk: block.
	Splunk *splunk.Config `yaml:"splunk"`
	// Elasticsearch is the elasticsearch: block.
	Elasticsearch *elasticsearch.Config `yaml:"elasticsearch"`
	// Syslog is the syslog: block.
	Syslog *syslog.Config `yaml:"syslog"`
	// Kafka is the kafka: block.
	Kafka *kafka.Config `yaml:"kafka"`
}

// Kind returns the name of the sink's type block (one of SinkKinds: "file",
// "stdout", "sentinel", "sekoia", "splunk" or "kafka"), or "" when it has
// none.
func (s *Sink) Kind() string {
	if k := s.kinds(); len(k) > 0 {
		return k[0]
	}
	return ""
}

// kinds lists the type blocks that are set.
func (s *Sink) kinds() []string { return setBlocks(reflect.ValueOf(s).Elem()) }

// SinkKinds lists the type blocks a sink can have, by their keys in the
// file, in declaration order: "file", "stdout", "sentinel", "sekoia",
// "splunk", "kafka".
func SinkKinds() []string { return blockKeys(reflect.TypeFor[Sink]()) }

// blockKeys returns the keys of the type blocks of t, a Source or a Sink:
// its fields that point to a struct.
func blockKeys(t reflect.Type) []string {
	var keys []string
	for _, f := range fieldsOf(t) {
		if ft := t.Field(f.index).Type; ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct {
			keys = append(keys, f.key)
		}
	}
	return keys
}

// setBlocks returns the keys of the type blocks set in v, a Source or a
// Sink.
func setBlocks(v reflect.Value) []string {
	var keys []string
	for _, f := range fieldsOf(v.Type()) {
		fv := v.Field(f.index)
		if fv.Kind() == reflect.Pointer && fv.Type().Elem().Kind() == reflect.Struct && !fv.IsNil() {
			keys = append(keys, f.key)
		}
	}
	return keys
}

// Error is the error of an invalid configuration: every problem found, in
// file order where their position is known.
type Error struct {
	Problems []Problem
}

// Error lists the problems, one per line.
func (e *Error) Error() string {
	if len(e.Problems) == 0 {
		return "invalid configuration"
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Problem is one thing wrong with a configuration file.
type Problem struct {
	// Path is the value's path, such as "sources[0].pingone.client_id";
	// empty for a problem with the file as a whole.
	Path string
	// Line is the value's 1-based line in the file, 0 when the value is not
	// in the file (a required key that is missing, for instance).
	Line int
	// Msg says what is wrong and, where it can, how to fix it. It never
	// contains an expanded value.
	Msg string
}

// String formats p as "path (line N): msg", leaving out what is unknown.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Path)
	if p.Line > 0 {
		if p.Path != "" {
			b.WriteString(" (line ")
			b.WriteString(strconv.Itoa(p.Line))
			b.WriteString(")")
		} else {
			b.WriteString("line ")
			b.WriteString(strconv.Itoa(p.Line))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Load reads the configuration file at path, expanding references from the
// process's environment and from files. It returns an *Error listing every
// problem when the file is invalid; the caller names the file when printing
// it. Files named by ${file:...} are read up to MaxSecretFileSize.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return Parse(data, os.LookupEnv, readSecretFile)
}

// LoadWithoutSecrets reads the configuration file at path as Load does,
// but leaves every secret unread, for commands that only inspect the store
// (status, checkpoint show) from a shell that may lack the daemon's
// environment. The one exception is store.postgres.dsn, read as Load does:
// those commands need it to reach a shared store. Each other secret that the file sets is secret.Unresolved: its
// references are checked for their form, not looked up, and a required
// secret counts as set. Every other value is expanded and every other check
// applies. The result must not be used to reach a provider or a SIEM.
func LoadWithoutSecrets(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return ParseWithoutSecrets(data, os.LookupEnv, readSecretFile)
}

// readSecretFile reads a file named by a ${file:...} reference, refusing
// files larger than MaxSecretFileSize (a device or a log file named by
// mistake).
func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretFileSize+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if len(b) > MaxSecretFileSize {
		return nil, &fs.PathError{Op: "read", Path: path, Err: errors.New("file is larger than 1MiB")}
	}
	return b, nil
}

// Parse parses and validates a configuration file's content. env looks up
// environment variables for ${env:NAME} (os.LookupEnv in Load) and readFile
// reads files for ${file:/path} (os.ReadFile-like); either may be nil, which
// makes every reference of its kind a problem. It returns an *Error listing
// every problem when the configuration is invalid.
func Parse(data []byte, env func(string) (string, bool), readFile func(string) ([]byte, error)) (*Config, error) {
	return parse(newParser(newExpander(env, readFile)), data)
}

// ParseWithoutSecrets is Parse for LoadWithoutSecrets: every secret the
// file sets is secret.Unresolved, and env and readFile are used for the
// other values only.
func ParseWithoutSecrets(data []byte, env func(string) (string, bool), readFile func(string) ([]byte, error)) (*Config, error) {
	p := newParser(newExpander(env, readFile))
	p.secrets = newExpander(nil, nil)
	p.secrets.checkOnly = true
	return parse(p, data)
}

// parse parses and validates data with p.
func parse(p *parser, data []byte) (*Config, error) {
	var c Config
	if root := p.parseYAML(data); root != nil {
		p.decodeRoot(root, &c)
	}
	if !p.syntaxFailed {
		setDefaults(&c)
		p.addIssues(validate(&c))
	}
	if probs := p.finish(); len(probs) > 0 {
		return nil, &Error{Problems: probs}
	}
	return &c, nil
}
