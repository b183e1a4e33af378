package elasticsearch

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/auditrelay/auditrelay/internal/secret"
)

var testKey = base64.StdEncoding.EncodeToString([]byte("VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw"))

func validConfig() Config {
	c := Config{URLs: []string{"https://es.example.com:9200/"}, APIKey: secret.New(testKey)}
	c.SetDefaults()
	return c
}

func TestConfigDefaults(t *testing.T) {
	c := validConfig()
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if c.Format != FormatIntegration || c.BatchSize != 1000 || c.MaxRequestBytes != 5<<20 || c.RequestTimeout.D().Seconds() != 30 {
		t.Errorf("defaults %+v", c)
	}
	if c.URLs[0] != "https://es.example.com:9200" {
		t.Errorf("url %q", c.URLs[0])
	}
}

func TestConfigValidate(t *testing.T) {
	for name, c := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"no url":        {func(c *Config) { c.URLs = nil }, "urls: required"},
		"both":          {func(c *Config) { c.CloudID = "x:eA==" }, "cloud_id: set either"},
		"plain http":    {func(c *Config) { c.URLs = []string{"http://es.example.com:9200"} }, "urls[0]: plain http"},
		"bulk path":     {func(c *Config) { c.URLs = []string{"https://es/_bulk"} }, "appends /_bulk"},
		"no auth":       {func(c *Config) { c.APIKey = secret.String{} }, "api_key: required"},
		"key and basic": {func(c *Config) { c.Username = "u" }, "not both"},
		"key alone":     {func(c *Config) { c.APIKey = secret.New("ui2lp2axTNmsyakw9tvNnw") }, "not an encoded API key"},
		"prefix":        {func(c *Config) { c.APIKey = secret.New("ApiKey " + testKey) }, "without \"ApiKey \""},
		"user only":     {func(c *Config) { c.APIKey = secret.String{}; c.Username = "u" }, "password: required"},
		"format":        {func(c *Config) { c.Format = "cef" }, "not supported"},
		"index upper":   {func(c *Config) { c.Index = "Logs" }, "lower case"},
		"index star":    {func(c *Config) { c.Index = "logs-*" }, "must not contain"},
		"batch":         {func(c *Config) { c.BatchSize = 20000 }, "batch_size"},
		"bytes":         {func(c *Config) { c.MaxRequestBytes = 200 << 20 }, "max_request_bytes"},
	} {
		cfg := validConfig()
		c.mod(&cfg)
		var all []string
		for _, e := range cfg.Validate() {
			all = append(all, e.Error())
		}
		if j := strings.Join(all, "; "); !strings.Contains(j, c.want) {
			t.Errorf("%s: errors %q, want %q", name, j, c.want)
		} else if strings.Contains(j, "ui2lp2axTNmsyakw9tvNnw") {
			t.Errorf("%s: error reveals the key: %s", name, j)
		}
	}
}

func TestCloudURL(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for id, want := range map[string]string{
		"dep:" + enc("us-central1.gcp.cloud.es.io$abc123$kib456"):     "https://abc123.us-central1.gcp.cloud.es.io",
		"dep:" + enc("us-central1.gcp.cloud.es.io:443$abc123$kib456"): "https://abc123.us-central1.gcp.cloud.es.io",
		"dep:" + enc("eu-west-1.aws.found.io:9243$es1$kb1"):           "https://es1.eu-west-1.aws.found.io:9243",
	} {
		got, err := CloudURL(id)
		if err != nil || got != want {
			t.Errorf("CloudURL(%s) = %q, %v; want %q", id, got, err, want)
		}
	}
	for _, bad := range []string{"dep:!!!", "dep:" + enc("nodollar"), "dep:" + enc("$x$y")} {
		if _, err := CloudURL(bad); err == nil {
			t.Errorf("CloudURL(%s) accepted", bad)
		}
	}
}
