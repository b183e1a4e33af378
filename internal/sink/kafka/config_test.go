package kafka

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/units"
)

func valid() Config {
	return Config{Brokers: []string{"kafka-1.example.com:9093", "kafka-2.example.com:9093"}, Topic: "identity-audit",
		SASL: SASL{Mechanism: "scram-sha-512", Username: "auditrelay", Password: secret.New("pw")}}
}

func TestDefaults(t *testing.T) {
	c := valid()
	c.SetDefaults()
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	got := []any{c.Key, c.Format, c.Compression, c.TLS.On(), c.SASL.Mechanism, c.ClientID, c.BatchSize,
		c.MaxRecordBytes, c.RequestTimeout.String(), c.DeliveryTimeout.String()}
	want := []any{"id", "raw", "zstd", true, "SCRAM-SHA-512", "auditrelay", 1000, units.ByteSize(1_000_000), "30s", "2m"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	off := false
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want []string
	}{
		{"no brokers", func(c *Config) { c.Brokers = nil }, []string{"brokers: required"}},
		{"scheme", func(c *Config) { c.Brokers = []string{"kafka://k:9092"} }, []string{"brokers[0]: \"kafka://k:9092\": give host:port, without a scheme"}},
		{"bad port", func(c *Config) { c.Brokers = []string{"k:99999"} }, []string{"brokers[0]: \"k:99999\": port \"99999\" is not a number"}},
		{"bare ipv6", func(c *Config) { c.Brokers = []string{"::1:9092"} }, []string{"brokers[0]: \"::1:9092\": write an IPv6 address in brackets"}},
		{"plain remote", func(c *Config) { c.TLS.Enabled = &off; c.SASL = SASL{} },
			[]string{`brokers[0]: plain TCP (tls.enabled: false) is only allowed to loopback brokers, not "kafka-1.example.com"`}},
		{"plain loopback", func(c *Config) {
			c.TLS.Enabled = &off
			c.Brokers = []string{"127.0.0.1:9092", "localhost", "[::1]:9092"}
			c.SASL.Mechanism = "PLAIN"
		}, nil},
		{"plain sasl remote", func(c *Config) { c.TLS.Enabled = &off; c.SASL.Mechanism = "PLAIN" }, []string{
			`brokers[0]: plain TCP`, "sasl.mechanism: PLAIN sends the password in clear"}},
		{"tls files without tls", func(c *Config) {
			c.TLS = TLS{Enabled: &off, CAFile: "/etc/ca.pem"}
			c.Brokers = []string{"127.0.0.1:9092"}
		}, []string{"tls.ca_file: is set but tls.enabled is false"}},
		{"cert without key", func(c *Config) { c.TLS.CertFile = "/etc/c.pem" }, []string{"tls: cert_file and key_file go together"}},
		{"no topic", func(c *Config) { c.Topic = "" }, []string{"topic: required"}},
		{"bad topic", func(c *Config) { c.Topic = "audit/{provider}" }, []string{`topic: "audit/{provider}": character '/' is not allowed`}},
		{"bad placeholder", func(c *Config) { c.Topic = "audit.{event}" }, []string{`topic: "audit.{event}": unknown placeholder "{event}"`}},
		{"key", func(c *Config) { c.Key = "partition" }, []string{`key: unknown key "partition" (id, tenant or source)`}},
		{"cef", func(c *Config) { c.Format = "cef" }, []string{`format: unknown format "cef" (raw, ocsf or ecs)`}},
		{"format", func(c *Config) { c.Format = "avro" }, []string{`format: unknown format "avro" (raw, ocsf or ecs)`}},
		{"compression", func(c *Config) { c.Compression = "brotli" }, []string{`compression: unknown compression "brotli"`}},
		{"mechanism", func(c *Config) { c.SASL.Mechanism = "OAUTHBEARER" }, []string{`sasl.mechanism: unknown mechanism "OAUTHBEARER"`}},
		{"no mechanism", func(c *Config) { c.SASL.Mechanism = "" }, []string{"sasl.mechanism: required with a username or password"}},
		{"no user", func(c *Config) { c.SASL.Username, c.SASL.Password = "", secret.String{} },
			[]string{"sasl.username: required with sasl.mechanism SCRAM-SHA-512", "sasl.password: required with sasl.mechanism SCRAM-SHA-512"}},
		{"ranges", func(c *Config) {
			c.BatchSize, c.MaxRecordBytes, c.RequestTimeout, c.DeliveryTimeout = 20_000, 100, units.Duration(1), units.Duration(1)
		}, []string{"batch_size: 20000 is out of range", "max_record_bytes: 100 is out of range", "request_timeout: 1ns is too short", "delivery_timeout: 1ns is out of range"}},
		{"delivery under request", func(c *Config) { c.DeliveryTimeout = units.Duration(10e9) }, []string{"delivery_timeout: 10s is shorter than request_timeout (30s)"}},
		{"client id", func(c *Config) { c.ClientID = "a\"b" }, []string{`client_id: "a\"b" must be`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mod(&c)
			c.SetDefaults()
			errs := c.Validate()
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors %v, want %d", len(errs), errs, len(tc.want))
			}
			for i, err := range errs {
				if !strings.HasPrefix(err.Error(), tc.want[i]) {
					t.Errorf("error %d = %q, want it to start with %q", i, err, tc.want[i])
				}
				if strings.Contains(err.Error(), "pw") && strings.Contains(tc.name, "sasl") {
					t.Errorf("error shows the password: %v", err)
				}
			}
		})
	}
}

func TestTopicName(t *testing.T) {
	ev := &event.Raw{Source: "entra-contoso/sign_ins", Provider: "entra_sign_ins", Tenant: "0b6e7c1a-0000-4000-8000-000000000001"}
	for _, tc := range []struct{ tmpl, ev, want string }{
		{"identity-audit", "", "identity-audit"},
		{"audit.{provider}", "", "audit.entra_sign_ins"},
		{"audit.{source}", "", "audit.entra-contoso_sign_ins"},
		{"{tenant}.{provider}", "", "0b6e7c1a-0000-4000-8000-000000000001.entra_sign_ins"},
		{"a-{tenant}", "empty", "a-unknown"},
		{"x{source}", "unicode", "xt_nant_"},
	} {
		top, err := ParseTopic(tc.tmpl)
		if err != nil {
			t.Fatalf("ParseTopic(%q): %v", tc.tmpl, err)
		}
		e := *ev
		switch tc.ev {
		case "empty":
			e.Tenant = ""
		case "unicode":
			e.Source = "ténant "
		}
		got, err := top.Name(&e)
		if err != nil || got != tc.want {
			t.Errorf("%q → %q, %v; want %q", tc.tmpl, got, err, tc.want)
		}
	}
	top, _ := ParseTopic("audit.{tenant}")
	if _, err := top.Name(&event.Raw{Tenant: strings.Repeat("t", 300)}); err == nil {
		t.Error("a 306-character topic was accepted")
	}
	if f, ok := top.Fixed(); ok || f != "" {
		t.Errorf("Fixed() = %q, %v for a template", f, ok)
	}
	for _, bad := range []string{"", "{", "}", "a{provider", "a}b", "{Provider}", "..", "ä", strings.Repeat("a", 250)} {
		if _, err := ParseTopic(bad); err == nil {
			t.Errorf("ParseTopic(%q) accepted", bad)
		}
	}
}

// FuzzTopic: any template parses or fails cleanly, and every name a
// parsed template makes is one Kafka accepts, or an error.
func FuzzTopic(f *testing.F) {
	for _, s := range []string{"identity-audit", "audit.{provider}", "{tenant}.{source}", "a{b}c", "{{provider}}", "é"} {
		f.Add(s, "pingone", "env/1", "src")
	}
	f.Fuzz(func(t *testing.T, tmpl, provider, tenant, source string) {
		top, err := ParseTopic(tmpl)
		if err != nil {
			return
		}
		name, err := top.Name(&event.Raw{Provider: provider, Tenant: tenant, Source: source})
		if err != nil {
			return
		}
		if name == "" || name == "." || name == ".." || len(name) > MaxTopicLength {
			t.Fatalf("%q made topic %q", tmpl, name)
		}
		for _, r := range name {
			if !topicRune(r) {
				t.Fatalf("%q made topic %q with %q", tmpl, name, r)
			}
		}
	})
}
