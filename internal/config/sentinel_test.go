package config

import (
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/sink/sentinel"
)

// TestSentinelSink loads a sentinel: block and checks its defaults.
func TestSentinelSink(t *testing.T) {
	const file = `
sources:
  - name: pingone-eu
    pingone: {region: EU, environment_id: env-1, client_id: c, client_secret: "${env:P1}"}
sinks:
  - name: sentinel
    sources: [pingone-eu]
    sentinel:
      endpoint: "https://my-dce-5kyl.westeurope-1.ingest.monitor.azure.com/"
      dcr_immutable_id: "dcr-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
      tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47"
      client_id: "3d1e0b5c-1a2b-4c5d-8e9f-0a1b2c3d4e5f"
      client_secret: "${env:AZURE_CLIENT_SECRET}"
`
	env := map[string]string{"P1": "pingone-secret", "AZURE_CLIENT_SECRET": "azure-secret-value"}
	c, err := Parse([]byte(file), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Sinks[0]
	if s.Kind() != "sentinel" || s.Sentinel == nil {
		t.Fatalf("kind %q", s.Kind())
	}
	got := *s.Sentinel
	if got.Endpoint != "https://my-dce-5kyl.westeurope-1.ingest.monitor.azure.com" || got.Stream != sentinel.DefaultStreamPingOneV2 ||
		got.Format != sentinel.FormatPingOneV2 || got.Auth != sentinel.AuthClientSecret || got.Cloud != "public" ||
		got.BatchSize != 1000 || got.MaxRequestBytes != sentinel.MaxCallBytes || got.RequestTimeout.D() != time.Minute ||
		got.ClientSecret.Reveal() != "azure-secret-value" {
		t.Errorf("sentinel config = %+v", got)
	}
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 || strings.Contains(string(out), "azure-secret-value") {
		t.Errorf("redacted configuration shows the secret or nothing:\n%s", out)
	}
}

// TestSentinelCyberArkAudit: a CyberArk source into a sentinel sink of
// format cyberark_audit loads, with the CyberArkAudit solution's stream as
// the default.
func TestSentinelCyberArkAudit(t *testing.T) {
	const file = `
sources:
  - name: cyberark-prod
    cyberark:
      identity_url: https://abc1234.id.cyberark.cloud
      app_id: auditrelay
      client_id: svc-audit@cyberark.cloud.12345
      client_secret: "${env:CA}"
      audit_url: https://mytenant.audit.cyberark.cloud
      api_key: "${env:CA_KEY}"
sinks:
  - name: sentinel-cyberark
    sources: [cyberark-prod]
    sentinel:
      endpoint: "https://my-dce-5kyl.westeurope-1.ingest.monitor.azure.com"
      dcr_immutable_id: "dcr-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
      format: cyberark_audit
      tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47"
      client_id: "3d1e0b5c-1a2b-4c5d-8e9f-0a1b2c3d4e5f"
      client_secret: "${env:AZURE_CLIENT_SECRET}"
`
	env := map[string]string{"CA": "ca-secret", "CA_KEY": "ca-key", "AZURE_CLIENT_SECRET": "azure-secret-value"}
	c, err := Parse([]byte(file), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Sinks[0].Sentinel
	if got == nil || got.Format != sentinel.FormatCyberArkAudit || got.Stream != "Custom-CyberArk_AuditEvents" {
		t.Errorf("sentinel config = %+v", got)
	}
}

// TestSentinelOktaV2: an Okta source into a sentinel sink of format
// okta_v2 loads, with the Okta Single Sign-On solution's stream as the
// default, and so does an Okta source into one of format auditrelay.
func TestSentinelOktaV2(t *testing.T) {
	const file = `
sources:
  - name: okta-prod
    okta: {org_url: "https://example.okta.com", auth: api_token, api_token: "${env:OKTA}"}
sinks:
  - name: sentinel-okta
    sources: [okta-prod]
    sentinel:
      endpoint: "https://my-dce-5kyl.westeurope-1.ingest.monitor.azure.com"
      dcr_immutable_id: "dcr-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
      format: okta_v2
      tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47"
      client_id: "3d1e0b5c-1a2b-4c5d-8e9f-0a1b2c3d4e5f"
      client_secret: "${env:AZURE_CLIENT_SECRET}"
  - name: sentinel-all
    sentinel:
      endpoint: "https://my-dce-5kyl.westeurope-1.ingest.monitor.azure.com"
      dcr_immutable_id: "dcr-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
      format: auditrelay
      tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47"
      client_id: "3d1e0b5c-1a2b-4c5d-8e9f-0a1b2c3d4e5f"
      client_secret: "${env:AZURE_CLIENT_SECRET}"
`
	env := map[string]string{"OKTA": "okta-token", "AZURE_CLIENT_SECRET": "azure-secret-value"}
	c, err := Parse([]byte(file), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Sinks[0].Sentinel
	if got == nil || got.Format != sentinel.FormatOktaV2 || got.Stream != "Custom-OktaSSO_CL" {
		t.Errorf("sentinel config = %+v", got)
	}
	if all := c.Sinks[1]; all.Sentinel.Stream != sentinel.DefaultStreamAuditRelay || len(all.Sources) != 1 || all.Sources[0] != "okta-prod" {
		t.Errorf("auditrelay sink = %+v, %+v", all, all.Sentinel)
	}
}
