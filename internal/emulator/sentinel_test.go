package emulator

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

const (
	tDCR    = "dcr-00000000000000000000000000000001"
	tStream = "Custom-Test_CL"
)

func newSentinelHarness(t *testing.T, opts SentinelOptions) (*Sentinel, *httptest.Server) {
	t.Helper()
	s := NewSentinel(opts)
	s.AddApp(SentinelApp{TenantID: "tenant-1", ClientID: "app-1", ClientSecret: "secret-1"})
	s.AddApp(SentinelApp{TenantID: "tenant-1", ClientID: "app-2", ClientSecret: "secret-2"})
	s.AddStream(tDCR, tStream, []SentinelColumn{{"Id", "string"}, {"Big", "string"}, {"Obj", "dynamic"}})
	s.Grant(tDCR, "app-1")
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func getSentinelToken(t *testing.T, srv *httptest.Server, tenant, id, secret, scope string) (int, string, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "scope": {scope}}
	resp, err := http.PostForm(srv.URL+"/"+tenant+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	json.NewDecoder(resp.Body).Decode(&v)
	tok, _ := v["access_token"].(string)
	return resp.StatusCode, tok, v
}

func upload(t *testing.T, srv *httptest.Server, tok, dcr, stream string, body []byte, gz bool) (int, http.Header, string) {
	t.Helper()
	if gz {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write(body)
		w.Close()
		body = b.Bytes()
	}
	req, _ := http.NewRequest("POST", srv.URL+"/dataCollectionRules/"+dcr+"/streams/"+stream+"?api-version=2023-01-01", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(msg)
}

func TestSentinelToken(t *testing.T) {
	_, srv := newSentinelHarness(t, SentinelOptions{})
	const scope = "https://monitor.azure.com/.default"
	tests := []struct {
		name, tenant, id, secret, scope string
		status                          int
		code                            string
	}{
		{"ok", "tenant-1", "app-1", "secret-1", scope, 200, ""},
		{"sdk double slash", "tenant-1", "app-1", "secret-1", "https://monitor.azure.com//.default", 200, ""},
		{"wrong secret", "tenant-1", "app-1", "nope", scope, 401, "invalid_client"},
		{"unknown tenant", "tenant-x", "app-1", "secret-1", scope, 400, "invalid_request"},
		{"unknown app", "tenant-1", "app-x", "secret-1", scope, 400, "unauthorized_client"},
		{"wrong scope", "tenant-1", "app-1", "secret-1", "https://graph.microsoft.com/.default", 400, "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, tok, v := getSentinelToken(t, srv, tt.tenant, tt.id, tt.secret, tt.scope)
			if status != tt.status {
				t.Fatalf("status %d, want %d (%v)", status, tt.status, v)
			}
			if tt.code != "" && v["error"] != tt.code {
				t.Errorf("error %v, want %s", v["error"], tt.code)
			}
			if tt.status == 200 && (tok == "" || v["token_type"] != "Bearer") {
				t.Errorf("token response %v", v)
			}
		})
	}
}

func TestSentinelUpload(t *testing.T) {
	s, srv := newSentinelHarness(t, SentinelOptions{MaxCallBytes: 1000, MaxFieldBytes: 10})
	const scope = "https://monitor.azure.com/.default"
	token := func(id, secret, scope string) string {
		t.Helper()
		status, tok, v := getSentinelToken(t, srv, "tenant-1", id, secret, scope)
		if status != 200 || tok == "" {
			t.Fatalf("token for %s, scope %s: %d %v", id, scope, status, v)
		}
		return tok
	}
	tok := token("app-1", "secret-1", scope)
	tok2 := token("app-2", "secret-2", scope)
	usgov := token("app-1", "secret-1", "https://monitor.azure.us/.default")

	if st, _, msg := upload(t, srv, tok, tDCR, tStream, []byte(`[{"Id":"a","Big":"0123456789abc","Obj":{"k":1},"Extra":"dropped"}]`), true); st != 204 {
		t.Fatalf("upload: %d %s", st, msg)
	}
	rows := s.Rows(tDCR, tStream)
	if len(rows) != 1 || rows[0].String("Id") != "a" || rows[0].String("Big") != "0123456789" || string(rows[0].Columns["Obj"]) != `{"k":1}` {
		t.Fatalf("rows = %+v", rows)
	}
	if _, ok := rows[0].Columns["Extra"]; ok {
		t.Error("an undeclared column was kept")
	}
	if st := s.Stats(); st.Truncated != 1 || st.Gzipped != 1 || st.Rows != 1 {
		t.Errorf("stats %+v", st)
	}
	exact := []byte(`[{"Id":"` + strings.Repeat("x", 1000-11) + `"}]`)
	if len(exact) != 1000 {
		t.Fatalf("exact body is %d bytes", len(exact))
	}
	if st, _, msg := upload(t, srv, tok, tDCR, tStream, exact, false); st != 204 {
		t.Errorf("a body of exactly the limit: %d %s", st, msg)
	}
	over := []byte(`[{"Id":"` + strings.Repeat("x", 1000-10) + `"}]`)
	if st, _, _ := upload(t, srv, tok, tDCR, tStream, over, false); st != 413 {
		t.Errorf("a body one byte over the limit: %d, want 413", st)
	}
	if st, _, _ := upload(t, srv, tok, tDCR, tStream, over, true); st != 413 {
		t.Errorf("a gzipped body over the limit uncompressed: %d, want 413", st)
	}
	// Each refusal for its own reason: a 401 for an unknown token would
	// also answer a token of the wrong audience.
	cases := []struct {
		name, tok, dcr, stream string
		want                   int
		code                   string
	}{
		{"no role", tok2, tDCR, tStream, 403, ""},
		{"unknown dcr", tok, "dcr-ffff", tStream, 404, ""},
		{"unknown stream", tok, tDCR, "Custom-Other_CL", 404, ""},
		{"bad token", "nope", tDCR, tStream, 401, "InvalidToken"},
		{"other cloud's audience", usgov, tDCR, tStream, 401, "InvalidAudience"},
	}
	for _, c := range cases {
		st, _, msg := upload(t, srv, c.tok, c.dcr, c.stream, []byte(`[]`), false)
		var e struct{ Error struct{ Code string } }
		if st != c.want || json.Unmarshal([]byte(msg), &e) != nil || (c.code != "" && e.Error.Code != c.code) {
			t.Errorf("%s: %d %s, want %d %s", c.name, st, msg, c.want, c.code)
		}
	}
	s.SetDown(http.StatusTooManyRequests)
	st, h, _ := upload(t, srv, tok, tDCR, tStream, []byte(`[]`), false)
	if st != 429 || h.Get("Retry-After") != "1" {
		t.Errorf("down: %d Retry-After %q", st, h.Get("Retry-After"))
	}
	s.SetDown(0)
	if st, _, msg := upload(t, srv, tok, tDCR, tStream, []byte(`{"Id":"x"}`), false); st != 400 {
		t.Errorf("an object body: %d %s, want 400", st, msg)
	}
	if got := len(s.Rows(tDCR, tStream)); got != 2 {
		t.Errorf("%d rows recorded, want 2", got)
	}
}

func TestSplitArray(t *testing.T) {
	tests := []struct {
		in   string
		rows []string
		ok   bool
	}{
		{`[]`, nil, true},
		{` [ {"a":"]"} , {"b":[1,{"c":"}\"{"}]} ] `, []string{`{"a":"]"}`, `{"b":[1,{"c":"}\"{"}]}`}, true},
		{`[{"a":1},2]`, nil, false},
		{`[[{"a":1}]]`, nil, false},
		{`{"a":1}`, nil, false},
		{`[{"a":1}`, nil, false},
	}
	for _, tt := range tests {
		rows, ok := splitArray([]byte(tt.in))
		if ok != tt.ok {
			t.Errorf("splitArray(%s) ok = %v", tt.in, ok)
			continue
		}
		var got []string
		for _, r := range rows {
			got = append(got, string(r))
		}
		if strings.Join(got, "|") != strings.Join(tt.rows, "|") {
			t.Errorf("splitArray(%s) = %q, want %q", tt.in, got, tt.rows)
		}
	}
}

// FuzzSplitArray checks the splitter against encoding/json: on a valid
// array of objects both find the same elements, and anything else is
// refused.
func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{`[]`, `[{"a":"]"},{"b":[1,{"c":"}\"{"}]}]`, `[{"a":1},2]`, `[{"a":"\\"} ,{}]`, `[{},]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rows, ok := splitArray([]byte(s))
		var want []json.RawMessage
		valid := json.Unmarshal([]byte(s), &want) == nil
		for _, w := range want {
			if len(w) == 0 || w[0] != '{' {
				valid = false
			}
		}
		if ok != valid {
			t.Fatalf("splitArray(%q) ok = %v, encoding/json says %v", s, ok, valid)
		}
		if !ok {
			return
		}
		if len(rows) != len(want) {
			t.Fatalf("splitArray(%q) = %d rows, want %d", s, len(rows), len(want))
		}
		for i := range rows {
			if !bytes.Equal(rows[i], want[i]) {
				t.Fatalf("splitArray(%q) row %d = %s, want %s", s, i, rows[i], want[i])
			}
		}
	})
}

func TestSentinelCountOnly(t *testing.T) {
	s, srv := newSentinelHarness(t, SentinelOptions{CountOnly: true})
	status, tok, v := getSentinelToken(t, srv, "tenant-1", "app-1", "secret-1", "https://monitor.azure.com/.default")
	if status != 200 {
		t.Fatalf("token: %d %v", status, v)
	}
	if st, _, msg := upload(t, srv, tok, tDCR, tStream, []byte(`[{"Id":"a"},{"Id":"b"}]`), false); st != 204 {
		t.Fatalf("upload: %d %s", st, msg)
	}
	if st := s.Stats(); st.Rows != 2 || st.Accepted != 1 {
		t.Errorf("stats %+v, want 2 rows in 1 accepted call", st)
	}
	if rows := s.Rows(tDCR, tStream); len(rows) != 0 {
		t.Errorf("%d rows kept, want none", len(rows))
	}
}
