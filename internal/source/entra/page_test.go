package entra

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/source/window"
)

func windowOf(from, to time.Time) window.Window { return window.Window{From: from, To: to} }

func TestEntraDecodePage(t *testing.T) {
	body := ` {"@odata.context":"x","value":[{"id":"Directory_a_B_1","activityDateTime":"2026-11-20T10:00:00.1234567Z","category":"x"},{"activityDateTime":"2026-11-20T11:00:00+01:00","id":"d2"}],"@odata.nextLink":"https://graph.microsoft.com/v1.0/auditLogs/directoryAudits?$skiptoken=ab"} `
	evs, next, err := decodePage([]byte(body), streams[StreamDirectoryAudits], "s/directory_audits", "t")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].ID != "Directory_a_B_1" || !evs[0].Time.Equal(time.Date(2026, 11, 20, 10, 0, 0, 123456700, time.UTC)) ||
		evs[1].Time.Hour() != 10 || evs[1].Time.Location() != time.UTC || string(evs[0].Data) != `{"id":"Directory_a_B_1","activityDateTime":"2026-11-20T10:00:00.1234567Z","category":"x"}` ||
		evs[0].Provider != ProviderDirectoryAudits || evs[0].Tenant != "t" || evs[0].Source != "s/directory_audits" ||
		next != "https://graph.microsoft.com/v1.0/auditLogs/directoryAudits?$skiptoken=ab" {
		t.Fatalf("decoded %+v, next %q", evs, next)
	}
	if evs, next, err := decodePage([]byte(`{"value":[]}`), streams[StreamSignIns], "s", "t"); err != nil || len(evs) != 0 || next != "" {
		t.Fatalf("empty last page: %v %q %v", evs, next, err)
	}
	for in, want := range map[string]string{
		``:                                  "not a JSON object",
		`[]`:                                "not a JSON object",
		`{"error":{"code":"x"}}`:            "no value array",
		`{"value":{}}`:                      "not a Graph collection",
		`{"value":[1]}`:                     "event 0 of the page is not a JSON object",
		`{"value":[],"@odata.nextLink":""}`: "empty @odata.nextLink",
		`{"value":[{"createdDateTime":"2026-11-20T10:00:00Z"}]}`:           "has no id",
		`{"value":[{"id":"i","activityDateTime":"2026-11-20T10:00:00Z"}]}`: "event i has no createdDateTime",
		`{"value":[{"id":"i","createdDateTime":"yesterday"}]}`:             `createdDateTime "yesterday" is not an ISO 8601 time`,
		`{"value":[{"id":"i","createdDateTime":"2026-`:                     "not a Graph collection",
	} {
		if _, _, err := decodePage([]byte(in), streams[StreamSignIns], "s", "t"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("decodePage(%s) = %v, want %q", in, err, want)
		}
	}
}

func FuzzEntraDecodePage(f *testing.F) {
	f.Add([]byte(`{"value":[{"id":"a","createdDateTime":"2026-11-20T10:00:00.1234567Z"}],"@odata.nextLink":"https://g/v1.0/auditLogs/signIns?$skiptoken=1"}`))
	f.Add([]byte(`{"value":[]}`))
	f.Add([]byte(`{"value":[{"id":"a","createdDateTime":"2026-11-20T10:00:00Z","x":[1,{"y":null}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, _, err := decodePage(b, streams[StreamSignIns], "s", "t")
		if err != nil {
			return
		}
		for _, e := range evs {
			if e.ID == "" || e.Time.IsZero() || !json.Valid(e.Data) || e.Data[0] != '{' {
				t.Fatalf("accepted %+v from %q", e, b)
			}
		}
	})
}

func FuzzEntraNextLink(f *testing.F) {
	f.Add("https://graph.microsoft.com/v1.0/auditLogs/signIns?$top=1000&$skiptoken=9177f2e3")
	f.Add("https://graph.microsoft.com:443/v1.0/auditLogs/signIns")
	f.Add("https://evil.example/v1.0/auditLogs/signIns?$skiptoken=1")
	f.Add("https://user@graph.microsoft.com/v1.0/auditLogs/signIns")
	f.Add("/v1.0/auditLogs/signIns?$skiptoken=1")
	ss := newSources(f, testConfig("https://graph.microsoft.com", StreamSignIns), nil, nil)
	s := ss[StreamSignIns]
	f.Fuzz(func(t *testing.T, link string) {
		if s.checkLink(link) != nil {
			return
		}
		u, err := url.Parse(link)
		if err != nil || u.Scheme != "https" || !strings.EqualFold(u.Host, "graph.microsoft.com") || u.Path != "/v1.0/auditLogs/signIns" || u.User != nil {
			t.Fatalf("checkLink accepted %q, a link off the stream", link)
		}
	})
}

// FuzzCursor feeds stored cursors to the engine as this source configures
// it (7 fraction digits, closed windows, nextLinks checked): it never
// panics, and what it accepts is on Graph's 100 ns grid and in order.
func FuzzEntraCursor(f *testing.F) {
	f.Add([]byte(`{"v":1,"until":"2026-11-20T10:00:00.1234567Z"}`))
	f.Add([]byte(`{"v":1,"until":"2026-11-20T10:30:00.0000000Z","from":"2026-11-20T10:00:00.0000000Z","to":"2026-11-20T11:00:00.0000000Z","next":"https://graph.microsoft.com/v1.0/auditLogs/directoryAudits?$skiptoken=ab"}`))
	f.Add([]byte(`{"v":1,"until":"2026-11-20T10:00:00.12345678Z"}`))
	f.Add([]byte(`{"v":1,"until":"2026-11-20T10:00:00Z","exact":true}`))
	ss := newSources(f, testConfig("https://graph.microsoft.com", StreamDirectoryAudits), nil, nil)
	s := ss[StreamDirectoryAudits]
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := s.Describe(b)
		if err != nil {
			return
		}
		for _, tm := range []time.Time{info.Watermark, info.From, info.To} {
			if !tm.Truncate(precision).Equal(tm) {
				t.Fatalf("accepted %q: %v is finer than 100ns", b, tm)
			}
		}
		if info.MidWindow && (!info.From.Before(info.To) || info.Watermark.Before(info.From) || !info.Closed) {
			t.Fatalf("accepted %q: window %+v", b, info)
		}
	})
}

func TestEntraConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.TenantID = "" }, "tenant_id: required"},
		{func(c *Config) { c.ClientID = "" }, "client_id: required"},
		{func(c *Config) { c.CertificateFile = "/etc/app.pem" }, "client_secret: set either client_secret or certificate_file, not both"},
		{func(c *Config) { c.ClientSecret = secret.String{} }, "client_secret: required unless certificate_file"},
		{func(c *Config) { c.PrivateKeyFile = "/k.pem" }, "private_key_file: is the key of certificate_file"},
		{func(c *Config) { c.Cloud = "germany" }, `cloud: "germany" is not supported`},
		{func(c *Config) { c.GraphURL = "http://graph.example" }, "graph_url: plain http://"},
		{func(c *Config) { c.GraphURL = "https://graph.microsoft.com/v1.0" }, "graph_url: give the Graph host without /v1.0"},
		{func(c *Config) { c.Streams = []string{"audits"} }, `streams: "audits" is not a stream`},
		{func(c *Config) { c.Streams = []string{"sign_ins", "sign_ins"} }, "streams: sign_ins is listed twice"},
		{func(c *Config) { c.Retention = 7 * 86400e9 }, "streams: sign_ins needs Entra ID P1 or P2"},
		{func(c *Config) { c.Retention = 90 * 86400e9 }, "retention: 90d is out of range"},
		{func(c *Config) { c.Overlap = -1 }, "overlap: -1ns is out of range"},
		{func(c *Config) { c.RateLimit = 1 }, "rate_limit: 1 is out of range"},
		{func(c *Config) { c.PageSize = 1001 }, "page_size: 1001 is out of range"},
		{func(c *Config) { c.Lookback = -1 }, "lookback"},
		{func(c *Config) { c.PollInterval = 1 }, "poll_interval"},
	} {
		c := testConfig("https://graph.microsoft.com")
		tc.edit(&c)
		var got []string
		for _, e := range c.Validate() {
			got = append(got, e.Error())
		}
		if !strings.Contains(strings.Join(got, "\n"), tc.want) {
			t.Errorf("Validate = %q, want %q", got, tc.want)
		}
	}
	c := Config{TenantID: "t", ClientID: "c", ClientSecret: testConfig("x").ClientSecret}
	c.SetDefaults()
	if errs := c.Validate(); len(errs) != 0 {
		t.Errorf("a defaulted config: %v", errs)
	}
	if c.AuthorityURL != "https://login.microsoftonline.com" || c.GraphURL != "https://graph.microsoft.com" || len(c.Streams) != 2 ||
		c.SettleDelay.D() != 15*time.Minute || c.Overlap.D() != 30*time.Minute || c.Retention.D() != 30*24*time.Hour || c.RateLimit != 0.45 || c.PageSize != 1000 {
		t.Errorf("defaults %+v", c)
	}
	for cloud, hosts := range map[string][2]string{
		CloudUSGov: {"https://login.microsoftonline.us", "https://graph.microsoft.us"}, CloudUSGovDoD: {"https://login.microsoftonline.us", "https://dod-graph.microsoft.us"},
		CloudChina: {"https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"},
	} {
		c := Config{Cloud: cloud}
		c.SetDefaults()
		if c.AuthorityURL != hosts[0] || c.GraphURL != hosts[1] {
			t.Errorf("%s: %s %s", cloud, c.AuthorityURL, c.GraphURL)
		}
	}
}
