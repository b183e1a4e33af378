package config

import (
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/units"
)

// TestCyberArkSekoiaExample parses the configuration of the CyberArk →
// Sekoia.io guide.
func TestCyberArkSekoiaExample(t *testing.T) {
	yml := `
sources:
  - name: cyberark-prod
    cyberark:
      identity_url: "https://abc1234.id.cyberark.cloud/"
      app_id: "auditrelay"
      client_id: "svc-audit@cyberark.cloud.12345"
      client_secret: "${env:PINGONE_CLIENT_SECRET}"
      token_auth_method: client_secret_post
      audit_url: "https://mytenant.audit.cyberark.cloud"
      api_key: "${env:CLIENT_PREFIX}"
      application_codes: [IDP, PAM]
      page_size: 500
      poll_interval: 60s
      settle_delay: 2m
      overlap: 2m
      lookback: 24h
      rate_limit: 1
sinks:
  - name: sekoia-cyberark
    sources: [cyberark-prod]
    sekoia:
      intake_key: "${env:CLIENT_PREFIX}"
      region: fra2
`
	c, err := Parse([]byte(yml), testEnv, nil)
	if err != nil {
		t.Fatal(err)
	}
	ca := c.Sources[0].CyberArk
	if c.Sources[0].Kind() != "cyberark" || ca.IdentityURL != "https://abc1234.id.cyberark.cloud" ||
		ca.ClientSecret.Reveal() != envSecret || ca.Scope != "isp.audit.events:read" ||
		ca.Retention != units.Duration(7*24*time.Hour) || len(ca.ApplicationCodes) != 2 {
		t.Errorf("cyberark block: %+v", ca)
	}
	sk := c.Sinks[0].Sekoia
	if c.Sinks[0].Kind() != "sekoia" || sk.Region != "FRA2" || sk.Base() != "https://intake.fra2.sekoia.io/api/v1/intake-http" ||
		sk.Compression != "gzip" || sk.BatchSize != 1000 || sk.IntakeKey.Reveal() != "6f1c2d3e" {
		t.Errorf("sekoia block: %+v", sk)
	}
}
