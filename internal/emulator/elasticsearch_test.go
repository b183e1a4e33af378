package emulator

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

var esKey = base64.StdEncoding.EncodeToString([]byte("kid:ksecret"))

func esPost(t *testing.T, url, auth, body string, zip bool) (int, map[string]any) {
	t.Helper()
	var rd io.Reader = strings.NewReader(body)
	if zip {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(body))
		zw.Close()
		rd = &b
	}
	req, _ := http.NewRequest(http.MethodPost, url, rd)
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/x-ndjson")
	if zip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func itemStatuses(m map[string]any) []int {
	var out []int
	items, _ := m["items"].([]any)
	for _, it := range items {
		for _, v := range it.(map[string]any) {
			out = append(out, int(v.(map[string]any)["status"].(float64)))
		}
	}
	return out
}

// TestElasticsearchBulkItems: per-item results in request order, 409 on a
// repeated _id, data streams refusing index and a missing @timestamp, and
// a mapping conflict on a field's type.
func TestElasticsearchBulkItems(t *testing.T) {
	es := NewElasticsearch(ElasticsearchOptions{APIKeys: []string{esKey}})
	srv := httptest.NewServer(es)
	defer srv.Close()
	body := `{"create":{"_index":"logs-okta.system-default","_id":"a"}}
{"@timestamp":"2026-01-01T00:00:00Z","message":"x","n":1}
{"create":{"_index":"logs-okta.system-default","_id":"a"}}
{"@timestamp":"2026-01-01T00:00:00Z","message":"x"}
{"index":{"_index":"logs-okta.system-default","_id":"b"}}
{"@timestamp":"2026-01-01T00:00:00Z"}
{"create":{"_index":"logs-okta.system-default","_id":"c"}}
{"message":"no time"}
{"create":{"_index":"logs-okta.system-default","_id":"d"}}
{"@timestamp":"2026-01-01T00:00:00Z","n":"not a number"}
{"create":{"_index":"plain","_id":"e"}}
{"n":"fine here"}
`
	st, m := esPost(t, srv.URL+"/_bulk", "ApiKey "+esKey, body, true)
	if st != 200 || m["errors"] != true {
		t.Fatalf("status %d errors %v", st, m["errors"])
	}
	got := itemStatuses(m)
	want := []int{201, 409, 400, 400, 400, 201}
	if len(got) != len(want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("item %d status %d, want %d (%v)", i, got[i], want[i], got)
		}
	}
	if n := es.IDCounts()["logs-okta.system-default"]["a"]; n != 1 {
		t.Errorf("a held %d times", n)
	}
	if d := es.Docs("plain"); len(d) != 1 || d[0].ID != "e" {
		t.Errorf("plain docs %v", d)
	}
	s := es.Stats()
	if s.Conflicts != 1 || s.MappingErrors != 2 || s.Created != 2 || s.Gzip != 1 || s.Items != 6 {
		t.Errorf("stats %+v", s)
	}
	if b := es.Bulks(); len(b) != 1 || strings.Join(b[0], ",") != "a,a,b,c,d,e" {
		t.Errorf("bulks %v", b)
	}
}

func TestElasticsearchAuthAndLimits(t *testing.T) {
	es := NewElasticsearch(ElasticsearchOptions{Users: map[string]string{"relay": "pw"}, MaxContentLength: 200,
		Writable: []string{"logs-okta.*"}})
	srv := httptest.NewServer(es)
	defer srv.Close()
	line := "{\"create\":{\"_index\":\"logs-okta.system-default\",\"_id\":\"a\"}}\n{\"@timestamp\":\"2026-01-01T00:00:00Z\"}\n"
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("relay:pw"))
	if st, _ := esPost(t, srv.URL+"/_bulk", "Basic "+base64.StdEncoding.EncodeToString([]byte("relay:bad")), line, false); st != 401 {
		t.Errorf("wrong password: %d", st)
	}
	if st, _ := esPost(t, srv.URL+"/_bulk", "ApiKey "+esKey, line, false); st != 401 {
		t.Errorf("unknown key: %d", st)
	}
	if st, _ := esPost(t, srv.URL+"/_bulk", basic, strings.Repeat(line, 3), false); st != 413 {
		t.Errorf("over the limit: %d", st)
	}
	forbidden := strings.ReplaceAll(line, "logs-okta.system-default", "logs-ping_one.audit-default")
	if st, m := esPost(t, srv.URL+"/_bulk", basic, forbidden, false); st != 200 || itemStatuses(m)[0] != 403 {
		t.Errorf("outside writable: %d %v", st, m)
	}
	st, m := esPost(t, srv.URL+"/_security/user/_has_privileges", basic,
		`{"index":[{"names":["logs-okta.system-default","logs-ping_one.audit-default"],"privileges":["create_doc"]}]}`, false)
	idx, _ := m["index"].(map[string]any)
	if st != 200 || m["has_all_requested"] != false || idx["logs-okta.system-default"].(map[string]any)["create_doc"] != true {
		t.Errorf("has_privileges %d %v", st, m)
	}
	es.SetFaults(ElasticsearchFaults{ThrottleItems: 1})
	if st, m := esPost(t, srv.URL+"/_bulk", basic, line, false); st != 200 || itemStatuses(m)[0] != 429 {
		t.Errorf("throttled item: %d %v", st, m)
	}
	es.SetDown(true)
	if st, _ := esPost(t, srv.URL+"/_bulk", basic, line, false); st != 503 {
		t.Errorf("down: %d", st)
	}
}

func TestElasticsearchOpenSearch(t *testing.T) {
	os := NewElasticsearch(ElasticsearchOptions{APIKeys: []string{esKey}, OpenSearch: true})
	srv := httptest.NewServer(os)
	defer srv.Close()
	if st, _ := esPost(t, srv.URL+"/_security/user/_has_privileges", "ApiKey "+esKey, `{}`, false); st != 400 {
		t.Errorf("has_privileges on OpenSearch: %d", st)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.Header.Set("Authorization", "ApiKey "+esKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Elastic-Product") != "" {
		t.Errorf("GET / %d product %q", resp.StatusCode, resp.Header.Get("X-Elastic-Product"))
	}
}
