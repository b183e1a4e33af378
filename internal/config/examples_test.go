package config

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/auditrelay/auditrelay/internal/units"
)

// envRefRE finds the environment variables an example reads.
var envRefRE = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}`)

// exampleESKey is the value of ES_API_KEY in the examples: an encoded
// Elasticsearch API key.
var exampleESKey = base64.StdEncoding.EncodeToString([]byte("example-id:example-ES_API_KEY"))

// TestExamples loads every examples/*.yaml with the environment variables it
// names set, and checks that it is valid and means what its comments say.
func TestExamples(t *testing.T) {
	checks := map[string]func(t *testing.T, c *Config){
		"minimal": func(t *testing.T, c *Config) {
			p := c.Sources[0].PingOne
			got := []string{c.DataDir, p.Region, p.APIURL, p.EnvironmentID, p.ClientSecret.Reveal(), c.Sinks[0].Kind()}
			want := []string{"./data", "NA", "https://api.pingone.com", "example-PINGONE_ENVIRONMENT_ID", "example-PINGONE_CLIENT_SECRET", "stdout"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"pingone"}, c.Sinks[0].Sources); diff != "" {
				t.Errorf("sink sources (-want +got):\n%s", diff)
			}
		},
		"pingone-to-file": func(t *testing.T, c *Config) {
			p, f := c.Sources[0].PingOne, c.Sinks[0].File
			if p.Region != "EU" || p.APIURL != "https://api.pingone.eu" || p.AuthURL != "https://auth.pingone.eu" {
				t.Errorf("region %s, api %s, auth %s", p.Region, p.APIURL, p.AuthURL)
			}
			if p.Lookback.D() != 7*24*time.Hour || p.PollInterval.D() != time.Minute {
				t.Errorf("lookback %v, poll_interval %v", p.Lookback, p.PollInterval)
			}
			if f == nil || f.Path != "/var/log/auditrelay/pingone-eu.ndjson" || f.MaxSize != 100<<20 || f.MaxFiles != 30 || f.BatchSize != 1000 {
				t.Errorf("file sink = %+v", f)
			}
			if c.SpoolMaxBytes != units.ByteSize(2<<30) || c.Log.Format != "json" {
				t.Errorf("spool %v, log format %s", c.SpoolMaxBytes, c.Log.Format)
			}
		},
		"pingone-to-sentinel": func(t *testing.T, c *Config) {
			s := c.Sinks[0].Sentinel
			if s == nil || s.Format != "pingone_v2" || s.Stream != "Custom-PingOne_AuditActivitiesV2_CL" || s.Auth != "client_secret" ||
				s.ClientSecret.Reveal() != "example-AZURE_CLIENT_SECRET" || s.MaxRequestBytes != 1_000_000 || c.Sinks[1].Kind() != "file" {
				t.Errorf("sinks = %+v, %+v", c.Sinks[0], c.Sinks[1])
			}
		},
		"cyberark-to-sekoia": func(t *testing.T, c *Config) {
			a, k := c.Sources[0].CyberArk, c.Sinks[0].Sekoia
			if a == nil || a.AuditURL != "https://mytenant.audit.cyberark.cloud" || a.Lookback.D() != 3*24*time.Hour ||
				a.ClientSecret.Reveal() != "example-CYBERARK_CLIENT_SECRET" || a.APIKey.Reveal() != "example-CYBERARK_AUDIT_API_KEY" {
				t.Errorf("source = %+v", c.Sources[0])
			}
			if k == nil || k.Base() != "https://intake.sekoia.io" || k.IntakeKey.Reveal() != "example-SEKOIA_INTAKE_KEY" ||
				k.Compression != "gzip" || len(c.Sinks) != 1 {
				t.Errorf("sinks = %+v", c.Sinks)
			}
		},
		"okta-to-sentinel-and-file": func(t *testing.T, c *Config) {
			o := c.Sources[0].Okta
			if o == nil || o.OrgURL != "https://example.okta.com" || o.Auth != "oauth" || o.PrivateKeyFile != "/etc/auditrelay/okta.pem" ||
				o.Lookback.D() != 7*24*time.Hour || o.PageSize != 1000 || o.RateLimit != 0.3 || !o.APIToken.IsZero() {
				t.Errorf("source = %+v", o)
			}
			if len(c.Sinks) != 2 || c.Sinks[0].Kind() != "file" || c.Sinks[1].Sentinel == nil || c.Sinks[1].Sentinel.Format != "auditrelay" ||
				c.Sinks[1].Sentinel.ClientSecret.Reveal() != "example-AZURE_CLIENT_SECRET" {
				t.Errorf("sinks = %+v", c.Sinks)
			}
		},
		"entra-to-sekoia-and-file": func(t *testing.T, c *Config) {
			e := c.Sources[0].Entra
			if e == nil || e.Cloud != "global" || e.GraphURL != "https://graph.microsoft.com" || e.Lookback.D() != 72*time.Hour ||
				e.ClientSecret.Reveal() != "example-ENTRA_CLIENT_SECRET" || e.SettleDelay.D() != 15*time.Minute || e.Overlap.D() != 30*time.Minute {
				t.Errorf("source = %+v", e)
			}
			if diff := cmp.Diff([]string{"entra-contoso/directory_audits", "entra-contoso/sign_ins"}, c.Sinks[0].Sources); diff != "" {
				t.Errorf("archive routes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"entra-contoso/sign_ins"}, c.Sinks[1].Sources); diff != "" {
				t.Errorf("sekoia routes (-want +got):\n%s", diff)
			}
		},
		"pingone-and-okta-to-splunk-and-elastic": func(t *testing.T, c *Config) {
			h, e := c.Sinks[0].Splunk, c.Sinks[1].Elasticsearch
			if h == nil || h.Token.Reveal() != "example-SPLUNK_HEC_TOKEN" || !h.AckEnabled() || h.Index != "identity" {
				t.Errorf("splunk sink = %+v", c.Sinks[0])
			}
			if e == nil || e.APIKey.Reveal() != exampleESKey || e.Format != "integration" || e.Index != "" || len(e.URLs) != 1 {
				t.Errorf("elasticsearch sink = %+v", c.Sinks[1])
			}
			if diff := cmp.Diff([]string{"pingone", "okta"}, c.Providers(&c.Sinks[1])); diff != "" {
				t.Errorf("providers of the elastic sink (-want +got):\n%s", diff)
			}
		},
		"identity-to-qradar-and-arcsight": func(t *testing.T, c *Config) {
			q, a := c.Sinks[0].Syslog, c.Sinks[1].Syslog
			if q == nil || a == nil {
				t.Fatalf("sinks = %+v", c.Sinks)
			}
			got := []any{q.Address, q.Transport, q.Format, q.MaxMessageBytes, q.AppName, q.Facility, q.Severity, q.EnterpriseID,
				q.BatchSize, q.ConfirmWait.D(), a.Transport, a.Format, a.MaxMessageBytes, a.CertFile}
			want := []any{"qradar.example.com:6514", "tls", "leef", units.ByteSize(8096), "auditrelay", "local4", "info", 32473,
				2000, 10 * time.Millisecond, "tls", "cef", units.ByteSize(16 << 10), "/etc/auditrelay/client.pem"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("syslog sinks (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"pingone-eu", "cyberark-prod"}, c.Sinks[0].Sources); diff != "" {
				t.Errorf("qradar routes (-want +got):\n%s", diff)
			}
		},
		"pingone-and-okta-to-kafka": func(t *testing.T, c *Config) {
			k := c.Sinks[0].Kafka
			if len(c.Sinks) != 1 || k == nil {
				t.Fatalf("sinks = %+v", c.Sinks)
			}
			got := []any{len(k.Brokers), k.Topic, k.Key, k.Format, k.Compression, k.TLS.On(), k.TLS.CAFile,
				k.SASL.Mechanism, k.SASL.Username, k.SASL.Password.Reveal(), k.BatchSize, c.Sinks[0].Sources}
			want := []any{3, "audit.{provider}", "tenant", "raw", "zstd", true, "/etc/auditrelay/kafka-ca.pem",
				"SCRAM-SHA-512", "auditrelay", "example-KAFKA_PASSWORD", 1000, []string{"pingone-eu", "okta-prod"}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("kafka sink (-want +got):\n%s", diff)
			}
		},
		"container": func(t *testing.T, c *Config) {
			got := []string{c.DataDir, c.MetricsListen, c.Log.Format, c.Sources[0].PingOne.APIURL, c.Sources[0].PingOne.ClientSecret.Reveal(), c.Sinks[0].Kind()}
			want := []string{"/data", ":9464", "json", "https://api.pingone.eu", "example-PINGONE_CLIENT_SECRET", "stdout"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		},
		"multi-environment": func(t *testing.T, c *Config) {
			if c.MetricsListen != "127.0.0.1:9464" {
				t.Errorf("metrics_listen = %q", c.MetricsListen)
			}
			regions := map[string]int{}
			for _, s := range c.Sources {
				regions[s.PingOne.Region]++
				if s.PingOne.Licence != "acme" || s.PingOne.RateLimit != 3 {
					t.Errorf("%s: licence %q, rate_limit %v", s.Name, s.PingOne.Licence, s.PingOne.RateLimit)
				}
			}
			if diff := cmp.Diff(map[string]int{"EU": 2, "NA": 1}, regions); diff != "" {
				t.Errorf("regions (-want +got):\n%s", diff)
			}
			got := map[string][]string{}
			for _, k := range c.Sinks {
				got[k.Kind()] = k.Sources
			}
			want := map[string][]string{
				"file":   {"pingone-eu-prod", "pingone-eu-staging", "pingone-na-prod"},
				"stdout": {"pingone-eu-prod", "pingone-na-prod"},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("sink routes (-want +got):\n%s", diff)
			}
		},
	}
	paths, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no examples found (%v)", err)
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range envRefRE.FindAllStringSubmatch(string(data), -1) {
				v := "example-" + m[1]
				if m[1] == "ES_API_KEY" { // validated as base64 of id:key
					v = exampleESKey
				}
				t.Setenv(m[1], v)
			}
			c, err := Load(path)
			if err != nil {
				t.Fatalf("Load(%s):\n%v", path, err)
			}
			check, ok := checks[name]
			if !ok {
				t.Fatalf("no checks for %s: add them to TestExamples", path)
			}
			check(t, c)
			out, err := c.Redacted()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range envRefRE.FindAllStringSubmatch(string(data), -1) {
				if strings.Contains(m[1], "SECRET") && strings.Contains(string(out), "example-"+m[1]) {
					t.Errorf("printed configuration shows %s:\n%s", m[1], out)
				}
			}
		})
	}
}
