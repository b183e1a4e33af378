package sentinel

import (
	"fmt"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/units"
)

// The row formats a sink can send.
const (
	// FormatPingOneV2 sends the PingOne activity objects as the stream
	// Custom-PingOne_AuditActivitiesV2_CL of the Sentinel "Ping One (via
	// Codeless Connector Framework)" connector declares them.
	FormatPingOneV2 = "pingone_v2"
	// FormatAuditRelay sends typed columns for every field of an activity,
	// the canonical fields and the raw event as dynamic.
	FormatAuditRelay = "auditrelay"
	// FormatCyberArkAudit sends CyberArk audit events as the stream
	// Custom-CyberArk_AuditEvents of the Sentinel CyberArkAudit solution's
	// DCR declares them; its transform writes CyberArk_AuditEvents_CL.
	FormatCyberArkAudit = "cyberark_audit"
	// FormatOktaV2 sends Okta System Log events as the stream
	// Custom-OktaSSO_CL of the Sentinel "Okta Single Sign-On" solution's
	// DCR declares them; its transform writes OktaV2_CL. It is named after
	// that table and the solution's connector (OktaSSOv2), which is what
	// users query and install: the stream's own name, OktaSSO, is also the
	// solution's parser over the legacy Okta_CL table.
	FormatOktaV2 = "okta_v2"
	// FormatASIMAudit sends ASIM AuditEvent rows (internal/normalize) of
	// every provider's administrative events; sign-ins and sign-outs are
	// left to FormatASIMAuthentication.
	FormatASIMAudit = "asim_audit"
	// FormatASIMAuthentication sends ASIM Authentication rows of every
	// provider's sign-ins and sign-outs; other events are left to
	// FormatASIMAudit.
	FormatASIMAuthentication = "asim_authentication"
)

// Formats returns every row format, in the order the documentation
// lists them.
func Formats() []string {
	return []string{FormatPingOneV2, FormatAuditRelay, FormatCyberArkAudit, FormatOktaV2, FormatASIMAudit, FormatASIMAuthentication}
}

// formatList is the formats for messages: "a, b or c".
func formatList() string {
	f := Formats()
	return strings.Join(f[:len(f)-1], ", ") + " or " + f[len(f)-1]
}

// FormatProvider returns the provider whose events a format carries, or ""
// when it carries the events of every provider.
func FormatProvider(format string) string {
	switch format {
	case FormatPingOneV2:
		return "pingone"
	case FormatCyberArkAudit:
		return "cyberark"
	case FormatOktaV2:
		return "okta"
	}
	return ""
}

// The ways a sink authenticates to Microsoft Entra ID.
const (
	// AuthClientSecret is the client credentials grant of an app
	// registration with a client secret.
	AuthClientSecret = "client_secret"
	// AuthManagedIdentity uses the Azure host's managed identity
	// (system-assigned, or user-assigned when client_id is set).
	AuthManagedIdentity = "managed_identity"
	// AuthWorkloadIdentity exchanges a Kubernetes service account token
	// (workload identity federation) for an Entra token.
	AuthWorkloadIdentity = "workload_identity"
)

// Default streams of each format.
const (
	DefaultStreamPingOneV2  = "Custom-PingOne_AuditActivitiesV2_CL"
	DefaultStreamAuditRelay = "Custom-PingOne_AuditActivities_CL"
	// DefaultStreamCyberArkAudit is the input stream of the CyberArkAudit
	// solution's DCR since version 3.2.0.
	DefaultStreamCyberArkAudit = "Custom-CyberArk_AuditEvents"
	// StreamCyberArkAuditV2 is the input stream of the solution's earlier
	// DCR (3.0.x, table CyberArkAuditV2_CL). It declares the same columns
	// as DefaultStreamCyberArkAudit, timestamp as long.
	StreamCyberArkAuditV2 = "Custom-CyberArkAuditV2"
	// DefaultStreamOktaV2 is the input stream of the Okta Single Sign-On
	// solution's DCR (connector OktaSSOv2, table OktaV2_CL).
	DefaultStreamOktaV2 = "Custom-OktaSSO_CL"
	// DefaultStreamASIMAudit and DefaultStreamASIMAuthentication are the
	// input streams of the ASIM formats' templates.
	DefaultStreamASIMAudit          = "Custom-AuditRelayAuditEvent_CL"
	DefaultStreamASIMAuthentication = "Custom-AuditRelayAuthentication_CL"
)

// DefaultStream returns the stream a format sends to when none is
// configured, or "" for an unknown format.
func DefaultStream(format string) string {
	switch format {
	case FormatPingOneV2:
		return DefaultStreamPingOneV2
	case FormatAuditRelay:
		return DefaultStreamAuditRelay
	case FormatCyberArkAudit:
		return DefaultStreamCyberArkAudit
	case FormatOktaV2:
		return DefaultStreamOktaV2
	case FormatASIMAudit:
		return DefaultStreamASIMAudit
	case FormatASIMAuthentication:
		return DefaultStreamASIMAuthentication
	}
	return ""
}

// streamFormat returns the format whose rows a well-known stream takes, or
// "" for a stream of the user's own naming.
func streamFormat(stream string) string {
	switch stream {
	case DefaultStreamPingOneV2:
		return FormatPingOneV2
	case DefaultStreamAuditRelay:
		return FormatAuditRelay
	case DefaultStreamCyberArkAudit, StreamCyberArkAuditV2:
		return FormatCyberArkAudit
	case DefaultStreamOktaV2:
		return FormatOktaV2
	case DefaultStreamASIMAudit:
		return FormatASIMAudit
	case DefaultStreamASIMAuthentication:
		return FormatASIMAuthentication
	}
	return ""
}

// Limits of the Logs Ingestion API.
const (
	// MaxCallBytes is the most one API call may carry, compressed and
	// uncompressed: the service documents "1 MB"; this is its smaller
	// reading.
	MaxCallBytes = 1_000_000
	// MaxFieldBytes is the longest field value the service stores;
	// longer values are truncated by the sink, and counted.
	MaxFieldBytes = 64 << 10
	// minCallBytes is the smallest max_request_bytes accepted.
	minCallBytes = 64 << 10
	// maxBatchSize is the largest batch_size accepted.
	maxBatchSize = 10000
)

// Cloud is an Azure cloud: where tokens come from and which audience they
// are for.
type Cloud struct {
	// Authority is the Entra ID authority host.
	Authority string
	// Audience is the Azure Monitor token audience; the scope requested
	// is Audience + "/.default".
	Audience string
}

// CloudNamed returns the cloud of a configuration name (public, usgov,
// china) and whether it is known.
func CloudNamed(name string) (Cloud, bool) {
	switch name {
	case "public":
		return Cloud{Authority: "https://login.microsoftonline.com", Audience: "https://monitor.azure.com"}, true
	case "usgov":
		return Cloud{Authority: "https://login.microsoftonline.us", Audience: "https://monitor.azure.us"}, true
	case "china":
		return Cloud{Authority: "https://login.chinacloudapi.cn", Audience: "https://monitor.azure.cn"}, true
	}
	return Cloud{}, false
}

// Config is the `sentinel:` block of a sink.
type Config struct {
	// Endpoint is the data collection endpoint (DCE) or the DCR's own
	// logs ingestion endpoint.
	Endpoint string `yaml:"endpoint"`
	// DCRImmutableID is the data collection rule's immutable id, dcr-….
	DCRImmutableID string `yaml:"dcr_immutable_id"`
	// Stream is the DCR's input stream, Custom-….
	Stream string `yaml:"stream"`
	// Format is pingone_v2, auditrelay, cyberark_audit or okta_v2.
	Format string `yaml:"format"`
	// Auth is client_secret, managed_identity or workload_identity.
	Auth string `yaml:"auth"`
	// TenantID is the Entra ID tenant (directory) id.
	TenantID string `yaml:"tenant_id"`
	// ClientID is the app registration's application (client) id, or the
	// user-assigned managed identity's client id.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the app registration's client secret.
	ClientSecret secret.String `yaml:"client_secret"`
	// TokenFile is the federated token file of workload identity; empty
	// means AZURE_FEDERATED_TOKEN_FILE.
	TokenFile string `yaml:"token_file"`
	// AuthorityURL overrides the cloud's Entra ID authority host.
	AuthorityURL string `yaml:"authority_url"`
	// Cloud is public, usgov or china: the token audience.
	Cloud string `yaml:"cloud"`
	// BatchSize is the most events handed to the sink at once; each batch
	// is split into calls of at most MaxRequestBytes.
	BatchSize int `yaml:"batch_size"`
	// MaxRequestBytes bounds one call, compressed and uncompressed.
	MaxRequestBytes units.ByteSize `yaml:"max_request_bytes"`
	// RequestTimeout bounds one HTTP request, token or upload.
	RequestTimeout units.Duration `yaml:"request_timeout"`
}

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	c.Format = strings.ToLower(c.Format)
	if c.Format == "" {
		c.Format = FormatPingOneV2
	}
	if c.Stream == "" {
		c.Stream = DefaultStream(c.Format)
	}
	c.Auth = strings.ToLower(c.Auth)
	if c.Auth == "" {
		c.Auth = AuthClientSecret
	}
	c.Cloud = strings.ToLower(c.Cloud)
	if c.Cloud == "" {
		c.Cloud = "public"
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = MaxCallBytes
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = units.Duration(60 * time.Second)
	}
	c.Endpoint = strings.TrimRight(c.Endpoint, "/")
	c.AuthorityURL = strings.TrimRight(c.AuthorityURL, "/")
}

// Validate reports every problem of a defaulted Config. Each error's text
// starts with the field's key, so the caller can prefix the block's path.
func (c *Config) Validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	checkURL := func(field, v string) {
		if err := httpx.CheckURL(v); err != nil {
			add(field, "%v", err)
		} else if strings.ContainsAny(v, "?#") {
			add(field, "%q must not carry a query or fragment", v)
		}
	}
	if c.Endpoint == "" {
		add("endpoint", "required (the DCE's or the DCR's logs ingestion URL, https://….ingest.monitor.azure.com)")
	} else {
		checkURL("endpoint", c.Endpoint)
	}
	switch {
	case c.DCRImmutableID == "":
		add("dcr_immutable_id", "required (the data collection rule's Immutable Id, dcr-…, from its JSON view or `auditrelay sentinel template` outputs)")
	case !strings.HasPrefix(c.DCRImmutableID, "dcr-") || !pathSafe(c.DCRImmutableID):
		add("dcr_immutable_id", "%q is not a DCR immutable id (want dcr- followed by hex digits)", c.DCRImmutableID)
	}
	switch {
	case c.Stream == "":
		add("stream", "required (the DCR's input stream, such as %s)", DefaultStreamPingOneV2)
	case !(strings.HasPrefix(c.Stream, "Custom-") || strings.HasPrefix(c.Stream, "Microsoft-")) || !pathSafe(c.Stream):
		add("stream", "%q is not a stream name (want Custom-<name>, as declared in the DCR's streamDeclarations)", c.Stream)
	}
	switch c.Format {
	case FormatPingOneV2, FormatAuditRelay, FormatCyberArkAudit, FormatOktaV2, FormatASIMAudit, FormatASIMAuthentication:
		if other := streamFormat(c.Stream); other != "" && other != c.Format {
			add("format", "%s does not match stream %s, which takes the rows of format %s; the service would store them as empty rows", c.Format, c.Stream, other)
		}
	default:
		add("format", "%q is not a format (want %s)", c.Format, formatList())
	}
	if _, ok := CloudNamed(c.Cloud); !ok {
		add("cloud", "%q is not a cloud (want public, usgov or china)", c.Cloud)
	}
	if c.AuthorityURL != "" {
		checkURL("authority_url", c.AuthorityURL)
	}
	if c.TenantID != "" && !pathSafe(c.TenantID) {
		add("tenant_id", "%q is not a tenant id", c.TenantID)
	}
	switch c.Auth {
	case AuthClientSecret:
		if c.TenantID == "" {
			add("tenant_id", "required (the Directory (tenant) ID of the app registration)")
		}
		if c.ClientID == "" {
			add("client_id", "required (the app registration's Application (client) ID)")
		}
		if c.ClientSecret.IsZero() {
			add("client_secret", "required (the app registration's client secret, e.g. ${env:AZURE_CLIENT_SECRET})")
		}
		if c.TokenFile != "" {
			add("token_file", "only used with auth: %s", AuthWorkloadIdentity)
		}
	case AuthManagedIdentity, AuthWorkloadIdentity:
		if !c.ClientSecret.IsZero() {
			add("client_secret", "not used with auth: %s; remove it", c.Auth)
		}
		if c.Auth == AuthManagedIdentity && c.TokenFile != "" {
			add("token_file", "only used with auth: %s", AuthWorkloadIdentity)
		}
	default:
		add("auth", "%q is not supported (want %s, %s or %s)", c.Auth, AuthClientSecret, AuthManagedIdentity, AuthWorkloadIdentity)
	}
	if c.BatchSize < 1 || c.BatchSize > maxBatchSize {
		add("batch_size", "%d is out of range (1 to %d)", c.BatchSize, maxBatchSize)
	}
	if c.MaxRequestBytes < minCallBytes || c.MaxRequestBytes > MaxCallBytes {
		add("max_request_bytes", "%v is out of range (%d to %d bytes, the API's limit per call)", c.MaxRequestBytes, minCallBytes, MaxCallBytes)
	}
	if c.RequestTimeout.D() < time.Second {
		add("request_timeout", "%v is too short (at least 1s)", c.RequestTimeout)
	}
	return errs
}

// pathSafe reports whether s can be one URL path segment as is.
func pathSafe(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return s != ""
}

// cloud returns the configured cloud with the authority override applied.
func (c *Config) cloud() Cloud {
	cl, _ := CloudNamed(c.Cloud)
	if c.AuthorityURL != "" {
		cl.Authority = c.AuthorityURL
	}
	return cl
}
