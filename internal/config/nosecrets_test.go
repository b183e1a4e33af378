package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/auditrelay/auditrelay/internal/secret"
)

// unresolvedFile sets every kind of secret from references this test never
// provides: the daemon's EnvironmentFile is not in the operator's shell.
const unresolvedFile = `
data_dir: ${env:AR_TEST_DATA_DIR}
sources:
  - name: pingone-eu
    pingone: {region: EU, environment_id: env-1, client_id: c, client_secret: "${env:AR_TEST_UNSET_PINGONE}"}
  - name: cyberark
    cyberark:
      identity_url: "https://abc1234.id.cyberark.cloud"
      app_id: auditrelay
      client_id: "svc-audit@cyberark.cloud.12345"
      client_secret: "${file:/nonexistent/auditrelay/cyberark_secret}"
      audit_url: "https://mytenant.audit.cyberark.cloud"
      api_key: "literal-${env:AR_TEST_UNSET_KEY}"
sinks:
  - name: sentinel
    sources: [pingone-eu]
    sentinel:
      endpoint: "https://my-dce-5kyl.westeurope-1.ingest.monitor.azure.com"
      dcr_immutable_id: "dcr-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
      tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47"
      client_id: "3d1e0b5c-1a2b-4c5d-8e9f-0a1b2c3d4e5f"
      client_secret: "${env:AR_TEST_UNSET_AZURE}"
  - name: sekoia
    sources: [cyberark]
    sekoia: {intake_key: plain-text-key}
`

// TestLoadWithoutSecrets checks that a file whose secrets cannot be
// resolved loads for the commands that only read the store, with every
// secret unresolved and every other value expanded, and still fails to load
// for the commands that use them.
func TestLoadWithoutSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auditrelay.yaml")
	if err := os.WriteFile(path, []byte(unresolvedFile), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AR_TEST_DATA_DIR", "/var/lib/auditrelay-test")

	_, err := Load(path)
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load = %v, want an *Error", err)
	}
	var got []string
	for _, p := range cerr.Problems {
		got = append(got, p.Path)
	}
	want := []string{
		"sources[0].pingone.client_secret", "sources[1].cyberark.client_secret", "sources[1].cyberark.api_key",
		"sinks[0].sentinel.client_secret",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load problems (-want +got):\n%s\n%v", diff, err)
	}

	c, err := LoadWithoutSecrets(path)
	if err != nil {
		t.Fatalf("LoadWithoutSecrets: %v", err)
	}
	if c.DataDir != "/var/lib/auditrelay-test" {
		t.Errorf("data_dir = %q, want the expanded value", c.DataDir)
	}
	secrets := map[string]secret.String{
		"pingone.client_secret":  c.Sources[0].PingOne.ClientSecret,
		"cyberark.client_secret": c.Sources[1].CyberArk.ClientSecret,
		"cyberark.api_key":       c.Sources[1].CyberArk.APIKey,
		"sentinel.client_secret": c.Sinks[0].Sentinel.ClientSecret,
		"sekoia.intake_key":      c.Sinks[1].Sekoia.IntakeKey,
	}
	for name, s := range secrets {
		if s.IsResolved() || s.IsZero() || s.Reveal() != "" {
			t.Errorf("%s: IsResolved %v, IsZero %v, Reveal %q; want unresolved", name, s.IsResolved(), s.IsZero(), s.Reveal())
		}
	}
	out, err := c.Redacted()
	if err != nil || strings.Contains(string(out), "plain-text-key") || strings.Count(string(out), secret.Redacted) != len(secrets) {
		t.Errorf("Redacted = %v:\n%s", err, out)
	}
}

// TestParseWithoutSecretsChecks checks that everything but the secrets'
// values is still checked when they are not read.
func TestParseWithoutSecretsChecks(t *testing.T) {
	const file = `
data_dir: ${env:AR_TEST_UNSET_DIR}
sources:
  - name: a
    pingone: {region: EU, environment_id: env-1, client_id: c, client_secret: "${vault:pingone}"}
  - name: b
    pingone: {region: EU, environment_id: env-2, client_id: c, client_secret: "${file:relative/path}"}
  - name: c
    pingone: {region: EU, environment_id: env-3, client_id: c, client_secret: ""}
  - name: d
    pingone: {region: EU, environment_id: env-4, client_id: c, client_secret: [a]}
  - name: e
    pingone: {region: XX, environment_id: env-5, client_id: c, client_secret: "${env:AR_TEST_UNSET}"}
sinks:
  - name: s
    sentinel: {auth: managed_identity, endpoint: "https://x.ingest.monitor.azure.com", dcr_immutable_id: dcr-1, client_secret: "${env:AR_TEST_UNSET}"}
`
	_, err := ParseWithoutSecrets([]byte(file), func(string) (string, bool) { return "", false }, nil)
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("ParseWithoutSecrets = %v, want an *Error", err)
	}
	got := map[string]string{}
	for _, p := range cerr.Problems {
		got[p.Path] = p.Msg
	}
	want := map[string]string{
		"data_dir":                         "environment variable AR_TEST_UNSET_DIR is not set",
		"sources[0].pingone.client_secret": `${vault:pingone}: unknown reference kind "vault" (want env or file)`,
		"sources[1].pingone.client_secret": "${file:relative/path}: the file path must be absolute",
		"sources[2].pingone.client_secret": "required (the worker application's Client Secret, e.g. ${env:PINGONE_CLIENT_SECRET})",
		"sources[3].pingone.client_secret": "expected a string, got a list",
		"sources[4].pingone.region":        `unknown region "XX" (want NA, CA, EU, AU, SG or AP)`,
		"sinks[0].sentinel.client_secret":  "not used with auth: managed_identity; remove it",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// TestParseWithoutSecretsSameConfig checks that a file whose secrets resolve
// parses to the same configuration with or without them, but for the
// secrets.
func TestParseWithoutSecretsSameConfig(t *testing.T) {
	for _, path := range files(t, "testdata/good/*.yaml") {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		with, err := Parse(data, testEnv, testReadFile)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		without, err := ParseWithoutSecrets(data, testEnv, testReadFile)
		if err != nil {
			t.Fatalf("%s without secrets: %v", path, err)
		}
		opt := cmp.Comparer(func(a, b secret.String) bool { return a.IsZero() == b.IsZero() })
		if diff := cmp.Diff(with, without, opt); diff != "" {
			t.Errorf("%s (-with +without secrets):\n%s", path, diff)
		}
		if reflect.DeepEqual(with, without) {
			t.Errorf("%s: the secrets were read", path)
		}
	}
}
