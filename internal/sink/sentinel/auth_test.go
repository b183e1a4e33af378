package sentinel

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/secret"
)

// azureRig serves a Sentinel emulator over real HTTP (TLS when asked: the
// Azure SDK refuses an authority that is not https).
func azureRig(t *testing.T, tls bool) (*emulator.Sentinel, *httptest.Server) {
	t.Helper()
	emu := emulator.NewSentinel(emulator.SentinelOptions{})
	var cols []emulator.SentinelColumn
	for _, c := range StreamColumns(FormatPingOneV2) {
		cols = append(cols, emulator.SentinelColumn{Name: c.Name, Type: c.Type})
	}
	emu.AddStream(testDCR, DefaultStreamPingOneV2, cols)
	srv := httptest.NewUnstartedServer(emu)
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return emu, srv
}

// TestWorkloadIdentity: a federated token file is exchanged for a token
// through the Azure SDK's workload identity credential.
func TestWorkloadIdentity(t *testing.T) {
	emu, srv := azureRig(t, true)
	const assertion = "eyJhbGciOiJSUzI1NiJ9.service-account-token.sig"
	emu.AddApp(emulator.SentinelApp{TenantID: testTenant, ClientID: testClient, FederatedToken: assertion})
	emu.Grant(testDCR, testClient)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(assertion), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Endpoint: srv.URL, DCRImmutableID: testDCR, Auth: AuthWorkloadIdentity, TenantID: testTenant,
		ClientID: testClient, TokenFile: tokenFile, AuthorityURL: srv.URL}
	cfg.SetDefaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	s := New(cfg, Options{HTTPClient: srv.Client()})
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("check: %v", err)
	}
	if err := s.Send(context.Background(), synthetic("wi", 5, 0)); err != nil {
		t.Fatal(err)
	}
	if n := len(emu.Rows(testDCR, DefaultStreamPingOneV2)); n != 5 {
		t.Errorf("%d rows, want 5", n)
	}
	// A token file the tenant does not trust is a permanent error.
	os.WriteFile(tokenFile, []byte("forged"), 0o600)
	s = New(cfg, Options{HTTPClient: srv.Client()})
	if err := s.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "managed identity") {
		t.Errorf("forged assertion: %v", err)
	}
}

// TestManagedIdentity: the App Service managed identity endpoint, as the
// Azure SDK finds it from IDENTITY_ENDPOINT and IDENTITY_HEADER.
func TestManagedIdentity(t *testing.T) {
	emu, srv := azureRig(t, false)
	const identity, header = "5e1f0000-0000-4000-8000-00000000beef", "identity-header-value"
	emu.SetManagedIdentity(identity, header)
	emu.Grant(testDCR, identity)
	t.Setenv("IDENTITY_ENDPOINT", srv.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", header)
	for _, clientID := range []string{"", identity} {
		cfg := Config{Endpoint: srv.URL, DCRImmutableID: testDCR, Auth: AuthManagedIdentity, ClientID: clientID}
		cfg.SetDefaults()
		if errs := cfg.Validate(); len(errs) > 0 {
			t.Fatal(errs)
		}
		s := New(cfg, Options{HTTPClient: srv.Client()})
		if err := s.Check(context.Background()); err != nil {
			t.Fatalf("client_id %q: check: %v", clientID, err)
		}
	}
	if n := emu.Stats().TokenRequests; n < 1 {
		t.Errorf("%d managed identity token requests", n)
	}
	// the identity without the role
	emu.Revoke(testDCR, identity)
	cfg := Config{Endpoint: srv.URL, DCRImmutableID: testDCR, Auth: AuthManagedIdentity}
	cfg.SetDefaults()
	err := New(cfg, Options{HTTPClient: srv.Client()}).Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), FixForbidden) {
		t.Errorf("without the role: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		return Config{Endpoint: "https://x.westeurope-1.ingest.monitor.azure.com", DCRImmutableID: testDCR,
			TenantID: testTenant, ClientID: testClient, ClientSecret: secret.New("s")}
	}
	tests := []struct {
		name string
		mut  func(*Config)
		want []string // keys with a problem
	}{
		{"ok", func(*Config) {}, nil},
		{"managed identity needs no secret", func(c *Config) { c.Auth = AuthManagedIdentity; c.ClientSecret = secret.String{}; c.TenantID = "" }, nil},
		{"workload identity from the environment", func(c *Config) {
			c.Auth = AuthWorkloadIdentity
			c.ClientSecret, c.TenantID, c.ClientID = secret.String{}, "", ""
		}, nil},
		{"everything wrong", func(c *Config) {
			c.Endpoint, c.DCRImmutableID, c.Stream, c.Format = "http://x.example", "my-dcr", "Custom-a/b", "json"
			c.Cloud, c.Auth, c.BatchSize, c.MaxRequestBytes, c.AuthorityURL = "mars", "kerberos", 20000, 2_000_000, "ftp://login"
			c.TenantID = "a/b"
		}, []string{"endpoint", "dcr_immutable_id", "stream", "format", "cloud", "authority_url", "tenant_id", "auth", "batch_size", "max_request_bytes"}},
		{"client_secret needs its three", func(c *Config) { c.TenantID, c.ClientID, c.ClientSecret = "", "", secret.String{} },
			[]string{"tenant_id", "client_id", "client_secret"}},
		{"token_file only with workload identity", func(c *Config) { c.TokenFile = "/t" }, []string{"token_file"}},
		{"cyberark_audit on its default stream", func(c *Config) { c.Format = "CyberArk_Audit" }, nil},
		{"cyberark_audit on the solution's earlier stream", func(c *Config) { c.Format, c.Stream = FormatCyberArkAudit, StreamCyberArkAuditV2 }, nil},
		{"cyberark_audit on a stream of the user's naming", func(c *Config) { c.Format, c.Stream = FormatCyberArkAudit, "Custom-Acme_CyberArk" }, nil},
		{"cyberark_audit on the PingOne connector's stream", func(c *Config) { c.Format, c.Stream = FormatCyberArkAudit, DefaultStreamPingOneV2 }, []string{"format"}},
		{"cyberark_audit on the auditrelay stream", func(c *Config) { c.Format, c.Stream = FormatCyberArkAudit, DefaultStreamAuditRelay }, []string{"format"}},
		{"okta_v2 on its default stream", func(c *Config) { c.Format = "Okta_V2" }, nil},
		{"okta_v2 on a stream of the user's naming", func(c *Config) { c.Format, c.Stream = FormatOktaV2, "Custom-Acme_Okta" }, nil},
		{"okta_v2 on the CyberArkAudit solution's stream", func(c *Config) { c.Format, c.Stream = FormatOktaV2, DefaultStreamCyberArkAudit }, []string{"format"}},
		{"auditrelay on the Okta solution's stream", func(c *Config) { c.Format, c.Stream = FormatAuditRelay, DefaultStreamOktaV2 }, []string{"format"}},
		{"pingone_v2 on the CyberArkAudit stream", func(c *Config) { c.Stream = DefaultStreamCyberArkAudit }, []string{"format"}},
		{"auditrelay on the CyberArkAudit V2 stream", func(c *Config) { c.Format, c.Stream = FormatAuditRelay, StreamCyberArkAuditV2 }, []string{"format"}},
		{"auditrelay on the PingOne connector's stream", func(c *Config) { c.Format, c.Stream = FormatAuditRelay, DefaultStreamPingOneV2 }, []string{"format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mut(&c)
			c.SetDefaults()
			var got []string
			for _, err := range c.Validate() {
				key, _, _ := strings.Cut(err.Error(), ":")
				got = append(got, key)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("problems with %v, want %v", got, tt.want)
			}
		})
	}
	for _, f := range Formats() {
		c := base()
		c.Format = f
		c.SetDefaults()
		if c.Stream != DefaultStream(f) || c.Stream == "" {
			t.Errorf("format %s: default stream %q", f, c.Stream)
		}
	}
	c := base()
	c.Format, c.Stream = FormatCyberArkAudit, DefaultStreamPingOneV2
	c.SetDefaults()
	if errs := c.Validate(); len(errs) != 1 || errs[0].Error() != "format: cyberark_audit does not match stream Custom-PingOne_AuditActivitiesV2_CL, which takes the rows of format pingone_v2; the service would store them as empty rows" {
		t.Errorf("mismatch: %v", errs)
	}
	c = base()
	c.Format, c.Stream = "cef", "Custom-Acme_CL"
	c.SetDefaults()
	if errs := c.Validate(); len(errs) != 1 || errs[0].Error() != `format: "cef" is not a format (want pingone_v2, auditrelay, cyberark_audit, okta_v2, asim_audit or asim_authentication)` {
		t.Errorf("unknown format: %v", errs)
	}
	c = base()
	c.SetDefaults()
	if c.Stream != DefaultStreamPingOneV2 || c.Cloud != "public" || c.cloud().Audience != "https://monitor.azure.com" {
		t.Errorf("defaults %+v", c)
	}
	for name, aud := range map[string]string{"usgov": "https://monitor.azure.us", "china": "https://monitor.azure.cn"} {
		c.Cloud = name
		if c.cloud().Audience != aud {
			t.Errorf("%s audience %s", name, c.cloud().Audience)
		}
	}
}
