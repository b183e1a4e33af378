package config

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/sink/sentinel"
)

// nameRE is what a source or sink name looks like: it appears in metric
// labels, log lines and store keys.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// nameRule explains nameRE to the operator.
const nameRule = "use 1 to 63 lowercase letters, digits, '_', '.' or '-', starting with a letter or digit"

// setDefaults fills every unset top-level value and, in each sink, an empty
// sources list with every source's name. Type blocks get their defaults in
// validate, just before their own validation.
func setDefaults(c *Config) {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.SpoolMaxBytes == 0 {
		c.SpoolMaxBytes = DefaultSpoolMaxBytes
	}
	c.Log.Level = strings.ToLower(c.Log.Level)
	if c.Log.Level == "" {
		c.Log.Level = DefaultLogLevel
	}
	c.Log.Format = strings.ToLower(c.Log.Format)
	if c.Log.Format == "" {
		c.Log.Format = DefaultLogFormat
	}
	var all []string
	for _, s := range c.Sources {
		if nameRE.MatchString(s.Name) {
			for _, n := range s.Names() {
				all = appendUnique(all, n)
			}
		}
	}
	for i := range c.Sinks {
		if len(c.Sinks[i].Sources) == 0 && len(all) > 0 {
			c.Sinks[i].Sources = append([]string(nil), all...)
		}
	}
}

// issues collects validation issues.
type issues []issue

func (is *issues) add(path, format string, args ...any) {
	*is = append(*is, issue{path: path, msg: fmt.Sprintf(format, args...)})
}

// addBlock records the errors of a type block's Validate, whose texts start
// with the field's key, under the block's path.
func (is *issues) addBlock(block string, errs []error) {
	for _, err := range errs {
		key, msg, ok := strings.Cut(err.Error(), ": ")
		if !ok || strings.ContainsAny(key, " \"") {
			*is = append(*is, issue{path: block, msg: err.Error()})
			continue
		}
		*is = append(*is, issue{path: block + "." + key, msg: msg})
	}
}

// has reports whether an issue was recorded about path.
func (is issues) has(path string) bool {
	for _, x := range is {
		if x.path == path {
			return true
		}
	}
	return false
}

// validate checks a defaulted Config, setting each type block's defaults
// before validating it, and returns every issue found.
func validate(c *Config) []issue {
	var is issues
	if strings.TrimSpace(c.DataDir) == "" {
		is.add("data_dir", "must not be blank (the directory of the store, default %s)", DefaultDataDir)
	}
	if c.SpoolMaxBytes < MinSpoolMaxBytes {
		is.add("spool_max_bytes", "%v is too small (at least %v)", c.SpoolMaxBytes, MinSpoolMaxBytes)
	}
	if c.MetricsListen != "" {
		if msg := checkListen(c.MetricsListen); msg != "" {
			is.add("metrics_listen", "%s", msg)
		}
	}
	validateMetricsAccess(c, &is)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		is.add("log.level", "%q is not a level (want debug, info, warn or error)", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		is.add("log.format", "%q is not a format (want text or json)", c.Log.Format)
	}
	if c.Store.Postgres != nil {
		c.Store.Postgres.SetDefaults()
		is.addBlock("store.postgres", c.Store.Postgres.Validate())
	}
	sources := validateSources(c, &is)
	validateSinks(c, sources, &is)
	expandStreams(c)
	return is
}

// expandStreams replaces, in each sink's sources, the name of a block that
// reads several streams with the names of its streams' sources: the names
// events carry and sinks route by.
func expandStreams(c *Config) {
	blocks := map[string][]string{}
	for i := range c.Sources {
		if s := &c.Sources[i]; s.Entra != nil {
			blocks[s.Name] = s.Names()
		}
	}
	if len(blocks) == 0 {
		return
	}
	for i := range c.Sinks {
		var out []string
		for _, n := range c.Sinks[i].Sources {
			if streams, ok := blocks[n]; ok {
				for _, st := range streams {
					out = appendUnique(out, st)
				}
				continue
			}
			out = appendUnique(out, n)
		}
		c.Sinks[i].Sources = out
	}
}

// checkListen checks a host:port listen address, returning what is wrong.
func checkListen(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not host:port (for example 127.0.0.1:9090, or :9090 for every interface)", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Sprintf("port %q is not a number from 1 to 65535", port)
	}
	return ""
}

// validateMetricsAccess checks metrics_tls and metrics_auth: both need
// metrics_listen, and credentials travel in clear only to loopback.
func validateMetricsAccess(c *Config, is *issues) {
	if t := c.MetricsTLS; t != nil {
		if c.MetricsListen == "" {
			is.add("metrics_tls", "is set but metrics_listen is not: set metrics_listen, or remove metrics_tls")
		}
		if strings.TrimSpace(t.CertFile) == "" {
			is.add("metrics_tls.cert_file", "required (a PEM file of the certificate and its chain)")
		}
		if strings.TrimSpace(t.KeyFile) == "" {
			is.add("metrics_tls.key_file", "required (a PEM file of the certificate's private key)")
		}
	}
	a := c.MetricsAuth
	if a == nil {
		return
	}
	if c.MetricsListen == "" {
		is.add("metrics_auth", "is set but metrics_listen is not: set metrics_listen, or remove metrics_auth")
	}
	if a.Basic == nil && a.BearerToken.IsZero() {
		is.add("metrics_auth", "set basic: {username, password}, bearer_token, or both")
	}
	if b := a.Basic; b != nil {
		switch {
		case b.Username == "":
			is.add("metrics_auth.basic.username", "required")
		case strings.ContainsAny(b.Username, ":\r\n"):
			is.add("metrics_auth.basic.username", "must not contain a colon or a line break (HTTP basic authentication cannot carry one)")
		}
		if b.Password.IsZero() {
			is.add("metrics_auth.basic.password", "required (for example ${file:/etc/auditrelay/metrics-password})")
		}
	}
	if c.MetricsTLS == nil && c.MetricsListen != "" && checkListen(c.MetricsListen) == "" {
		if host, _, _ := net.SplitHostPort(c.MetricsListen); !httpx.IsLoopback(host) {
			is.add("metrics_auth", "over plain HTTP on %q the credentials cross the network in clear: add metrics_tls, or listen on a loopback address (127.0.0.1:PORT) behind a proxy that terminates TLS", c.MetricsListen)
		}
	}
}

// validateSources checks the sources and returns the index of each valid,
// unique name.
func validateSources(c *Config, is *issues) map[string]int {
	if len(c.Sources) == 0 {
		is.add("sources", "at least one source is required (for example a source with a pingone: block)")
	}
	names := make(map[string]int)
	for i := range c.Sources {
		s := &c.Sources[i]
		sp := fmt.Sprintf("sources[%d]", i)
		checkName(is, "sources", i, s.Name, names, "a short identifier such as pingone-eu")
		switch kinds := s.kinds(); len(kinds) {
		case 0:
			is.add(sp, "no source type (add one of these blocks: %s)", blockList(SourceKinds()))
		case 1:
		default:
			is.add(sp, "more than one source type (%s); a source has exactly one", strings.Join(kinds, ", "))
		}
		if s.PingOne != nil {
			s.PingOne.SetDefaults()
			is.addBlock(sp+".pingone", s.PingOne.Validate())
		}
		if s.CyberArk != nil {
			s.CyberArk.SetDefaults()
			is.addBlock(sp+".cyberark", s.CyberArk.Validate())
		}
		if s.Okta != nil {
			s.Okta.SetDefaults()
			is.addBlock(sp+".okta", s.Okta.Validate())
		}
		if s.Entra != nil {
			s.Entra.SetDefaults()
			is.addBlock(sp+".entra", s.Entra.Validate())
		}
	}
	// Sources that read one API under one budget share one rate limiter,
	// built from the first such source's rate_limit: the others must agree.
	first := make(map[string]int)
	for i, s := range c.Sources {
		var key, block, why string
		var rate float64
		switch {
		case s.PingOne != nil:
			key, block, rate = "pingone/"+s.PingOne.Licence, "pingone", s.PingOne.RateLimit
			why = fmt.Sprintf("uses the same licence %q: sources of one licence", s.PingOne.Licence)
		case s.CyberArk != nil:
			key, block, rate = "cyberark/"+s.CyberArk.AuditURL, "cyberark", s.CyberArk.RateLimit
			why = "reads the same audit_url: sources of one audit API"
		case s.Okta != nil:
			key, block, rate = "okta/"+strings.ToLower(s.Okta.OrgURL), "okta", s.Okta.RateLimit
			why = "reads the same org_url: sources of one org"
		case s.Entra != nil:
			key, block, rate = "entra/"+s.Entra.AuthorityURL+"/"+strings.ToLower(s.Entra.TenantID)+"/"+s.Entra.ClientID, "entra", s.Entra.RateLimit
			why = "reads the same tenant with the same app: Graph limits the reports per app and tenant, so its streams"
		default:
			continue
		}
		rp := fmt.Sprintf("sources[%d].%s.rate_limit", i, block)
		j, seen := first[key]
		if !seen {
			first[key] = i
			continue
		}
		if other := c.Sources[j].rateLimit(); other != rate && !is.has(rp) {
			is.add(rp, "%v differs from sources[%d].%s.rate_limit (%v), which %s share one rate limiter, so give them the same rate_limit",
				rate, j, block, other, why)
		}
	}
	// A block that reads several streams runs one source per stream,
	// which a sink may name one by one.
	for i := range c.Sources {
		s := &c.Sources[i]
		if _, ok := names[s.Name]; !ok || s.Entra == nil {
			continue
		}
		for _, n := range s.Names() {
			names[n] = i
		}
	}
	return names
}

// blockList formats type block keys as the operator writes them:
// "pingone:, cyberark:".
func blockList(keys []string) string {
	return strings.Join(keys, ":, ") + ":"
}

// checkName checks the name of sources[i] or sinks[i] (list[i]), recording
// valid names in names.
func checkName(is *issues, list string, i int, name string, names map[string]int, example string) {
	np := fmt.Sprintf("%s[%d].name", list, i)
	switch {
	case name == "":
		is.add(np, "required (%s)", example)
	case !nameRE.MatchString(name):
		is.add(np, "%q is not a valid name: %s", name, nameRule)
	default:
		if j, dup := names[name]; dup {
			is.add(np, "%q is already used by %s[%d]", name, list, j)
			return
		}
		names[name] = i
	}
}

// validateSinks checks the sinks against the sources (name → index).
func validateSinks(c *Config, sources map[string]int, is *issues) {
	if len(c.Sinks) == 0 {
		is.add("sinks", "at least one sink is required (for example a sink with a stdout: block)")
	}
	configured := "no sources are configured"
	if len(c.Sources) > 0 {
		configured = "no source has a valid name"
	}
	var known []string
	for _, s := range c.Sources {
		if _, ok := sources[s.Name]; ok {
			known = appendUnique(known, s.Name)
			if s.Entra != nil {
				for _, n := range s.Names() {
					known = appendUnique(known, n)
				}
			}
		}
	}
	if len(known) > 0 {
		configured = "configured: " + strings.Join(known, ", ")
	}
	names := make(map[string]int)
	type written struct {
		path string // as written
		abs  string // absolute and clean
		sink int
	}
	var files []written
	stdoutSink := -1
	for i := range c.Sinks {
		k := &c.Sinks[i]
		sp := fmt.Sprintf("sinks[%d]", i)
		checkName(is, "sinks", i, k.Name, names, "a short identifier such as siem-archive")
		switch kinds := k.kinds(); len(kinds) {
		case 0:
			is.add(sp, "no sink type (add one of these blocks: %s)", blockList(SinkKinds()))
		case 1:
		default:
			is.add(sp, "more than one sink type (%s); a sink has exactly one", strings.Join(kinds, ", "))
		}
		listed := make(map[string]int)
		for j, name := range k.Sources {
			ep := fmt.Sprintf("%s.sources[%d]", sp, j)
			if name == "" {
				is.add(ep, "empty source name (%s)", configured)
				continue
			}
			if prev, dup := listed[name]; dup {
				is.add(ep, "%q is listed twice (also %s.sources[%d])", name, sp, prev)
				continue
			}
			listed[name] = j
			if _, ok := sources[name]; !ok {
				is.add(ep, "unknown source %q; %s", name, configured)
			}
		}
		if k.File != nil {
			k.File.SetDefaults()
			is.addBlock(sp+".file", k.File.Validate())
			if k.File.Path != "" {
				if abs, err := filepath.Abs(k.File.Path); err == nil {
					w := written{path: k.File.Path, abs: abs, sink: i}
					for _, o := range files {
						if msg := collide(w.abs, o.abs); msg != "" {
							is.add(sp+".file.path", "%q %s sinks[%d] (%q)", w.path, msg, o.sink, o.path)
							break
						}
					}
					files = append(files, w)
				}
			}
		}
		if k.Sentinel != nil {
			k.Sentinel.SetDefaults()
			is.addBlock(sp+".sentinel", k.Sentinel.Validate())
			checkFormatProvider(c, sources, k, sp, is)
		}
		if k.Sekoia != nil {
			k.Sekoia.SetDefaults()
			is.addBlock(sp+".sekoia", k.Sekoia.Validate())
			checkOneProvider(c, sources, k, sp, is)
		}
		if k.Splunk != nil {
			k.Splunk.SetDefaults()
			is.addBlock(sp+".splunk", k.Splunk.Validate())
		}
		if k.Elasticsearch != nil {
			k.Elasticsearch.SetDefaults()
			is.addBlock(sp+".elasticsearch", k.Elasticsearch.Validate())
		}
		if k.Syslog != nil {
			k.Syslog.SetDefaults()
			is.addBlock(sp+".syslog", k.Syslog.Validate())
		}
		if k.Kafka != nil {
			k.Kafka.SetDefaults()
			is.addBlock(sp+".kafka", k.Kafka.Validate())
		}
		if k.Stdout != nil {
			k.Stdout.SetDefaults()
			is.addBlock(sp+".stdout", k.Stdout.Validate())
			if stdoutSink >= 0 {
				is.add(sp+".stdout", "only one stdout sink is allowed: sinks[%d] already writes to standard output", stdoutSink)
			} else {
				stdoutSink = i
			}
		}
	}
}

// checkOneProvider reports a sekoia sink that routes sources of different
// providers: a Sekoia.io intake parses the events of one format only.
func checkOneProvider(c *Config, sources map[string]int, k *Sink, sp string, is *issues) {
	first, firstName := "", ""
	for _, name := range k.Sources {
		i, ok := sources[name]
		if !ok {
			continue
		}
		kind := c.Sources[i].Kind()
		if kind == "" {
			continue
		}
		if first == "" {
			first, firstName = kind, name
			continue
		}
		if kind != first {
			is.add(sp+".sources", "%q (%s) and %q (%s) are different providers: a Sekoia.io intake parses one format, "+
				"so give each provider its own sekoia sink with the key of an intake of that provider's format", firstName, first, name, kind)
			return
		}
	}
}

// checkFormatProvider reports a sentinel sink whose format carries the
// events of one provider (pingone_v2, cyberark_audit, okta_v2) routing a
// source of another: every event of that source would be parked.
func checkFormatProvider(c *Config, sources map[string]int, k *Sink, sp string, is *issues) {
	want := sentinel.FormatProvider(k.Sentinel.Format)
	if want == "" {
		return
	}
	for _, name := range k.Sources {
		i, ok := sources[name]
		if !ok {
			continue
		}
		if kind := c.Sources[i].Kind(); kind != "" && kind != want {
			is.add(sp+".sources", "%q is %s %s source, but format %s carries %s events only: route it to a sentinel sink of format %s (or of its provider's format)",
				name, article(kind), kind, k.Sentinel.Format, want, sentinel.FormatAuditRelay)
			return
		}
	}
}

// article returns the indefinite article of a provider name: "an okta",
// "a pingone".
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

// collide says how the file a sink writes collides with another sink's, or
// returns "" when they are apart. A file sink also writes a.1, a.2, … when
// it rotates a.
func collide(a, b string) string {
	switch {
	case a == b:
		return "is also written by"
	case isRotation(a, b):
		return "is one of the rotated files of"
	case isRotation(b, a):
		return "would rotate onto the file of"
	}
	return ""
}

// isRotation reports whether name is base followed by .N, a rotated file.
func isRotation(name, base string) bool {
	n, ok := strings.CutPrefix(name, base+".")
	if !ok || n == "" {
		return false
	}
	for _, r := range n {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
