package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestEntraStreamNames: an entra: block runs one source per stream, and
// sinks route by those names, whether they name the block or a stream.
func TestEntraStreamNames(t *testing.T) {
	yml := `
sources:
  - name: entra-contoso
    entra:
      tenant_id: contoso.onmicrosoft.com
      client_id: 00000000-0000-4000-8000-0000000a0001
      client_secret: s3cret
      streams: [directory_audits, sign_ins, provisioning]
  - name: okta-prod
    okta: {org_url: "https://example.okta.com", auth: api_token, api_token: t0ken}
sinks:
  - name: everything
    file: {path: /tmp/all.ndjson}
  - name: block
    sources: [entra-contoso]
    file: {path: /tmp/block.ndjson}
  - name: signins
    sources: [entra-contoso/sign_ins, okta-prod, entra-contoso]
    file: {path: /tmp/signins.ndjson}
`
	c, err := Parse([]byte(yml), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	streams := []string{"entra-contoso/directory_audits", "entra-contoso/sign_ins", "entra-contoso/provisioning"}
	if diff := cmp.Diff(append(streams, "okta-prod"), c.SourceNames()); diff != "" {
		t.Errorf("SourceNames (-want +got):\n%s", diff)
	}
	for i, want := range [][]string{append(streams, "okta-prod"), streams,
		{"entra-contoso/sign_ins", "okta-prod", "entra-contoso/directory_audits", "entra-contoso/provisioning"}} {
		if diff := cmp.Diff(want, c.Sinks[i].Sources); diff != "" {
			t.Errorf("sink %s sources (-want +got):\n%s", c.Sinks[i].Name, diff)
		}
	}
	if got := c.Sources[0].Lookback().D(); got != 24*time.Hour {
		t.Errorf("entra lookback %v, want the 24h default", got)
	}

	bad := strings.Replace(yml, "sources: [entra-contoso]", "sources: [entra-contoso/nope]", 1)
	_, err = Parse([]byte(bad), nil, nil)
	if err == nil || !strings.Contains(err.Error(), `unknown source "entra-contoso/nope"`) || !strings.Contains(err.Error(), "entra-contoso/sign_ins") {
		t.Errorf("a sink naming a stream that is not read: %v", err)
	}
}

// TestEntraDefaultStreams: without streams:, the block reads directory
// audits and sign-ins.
func TestEntraDefaultStreams(t *testing.T) {
	c, err := Parse([]byte(`
sources:
  - name: e
    entra: {tenant_id: contoso.onmicrosoft.com, client_id: 00000000-0000-4000-8000-0000000a0001, client_secret: s}
sinks:
  - name: out
    stdout: {}
`), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"e/directory_audits", "e/sign_ins"}, c.Sinks[0].Sources); diff != "" {
		t.Errorf("default routes (-want +got):\n%s", diff)
	}
}
