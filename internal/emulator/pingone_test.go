package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func basicHeader(id, secret string) http.Header {
	req, _ := http.NewRequest("POST", "/", nil)
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return http.Header{"Authorization": req.Header["Authorization"]}
}

func TestTokenEndpoint(t *testing.T) {
	basicEnv := Environment{ID: "env-basic", ClientID: "cb", ClientSecret: "s3cr3t/+=&%"}
	postEnv := Environment{ID: "env-post", ClientID: "cp", ClientSecret: "post-secret", AuthMethod: AuthMethodPost}
	h := newHarness(t, PingOneOptions{TokenTTL: 90 * time.Minute}, basicEnv, postEnv)
	const form = "application/x-www-form-urlencoded"
	grant := "grant_type=client_credentials"
	postCreds := func(id, secret string) string {
		return grant + "&" + url.Values{"client_id": {id}, "client_secret": {secret}}.Encode()
	}
	tests := []struct {
		name      string
		method    string
		env       string
		body      string
		header    http.Header
		wantCode  int
		wantError string
	}{
		{"basic accepted", "POST", "env-basic", grant, basicHeader("cb", "s3cr3t/+=&%"), 200, ""},
		{"basic refuses post credentials", "POST", "env-basic", postCreds("cb", "s3cr3t/+=&%"), nil, 401, "invalid_client"},
		{"basic refuses credentials also in body", "POST", "env-basic", postCreds("cb", "s3cr3t/+=&%"), basicHeader("cb", "s3cr3t/+=&%"), 401, "invalid_client"},
		{"basic wrong secret", "POST", "env-basic", grant, basicHeader("cb", "nope"), 401, "invalid_client"},
		{"basic wrong client", "POST", "env-basic", grant, basicHeader("cx", "s3cr3t/+=&%"), 401, "invalid_client"},
		{"post accepted", "POST", "env-post", postCreds("cp", "post-secret"), nil, 200, ""},
		{"post refuses basic", "POST", "env-post", grant, basicHeader("cp", "post-secret"), 401, "invalid_client"},
		{"post refuses both", "POST", "env-post", postCreds("cp", "post-secret"), basicHeader("cp", "post-secret"), 401, "invalid_client"},
		{"post wrong secret", "POST", "env-post", postCreds("cp", "wrong"), nil, 401, "invalid_client"},
		{"post missing secret", "POST", "env-post", grant + "&client_id=cp", nil, 401, "invalid_client"},
		{"unknown environment", "POST", "env-none", grant, basicHeader("cb", "s3cr3t/+=&%"), 401, "invalid_client"},
		{"other grant", "POST", "env-basic", "grant_type=password&username=u&password=p", basicHeader("cb", "s3cr3t/+=&%"), 400, "unsupported_grant_type"},
		{"missing grant", "POST", "env-basic", "", basicHeader("cb", "s3cr3t/+=&%"), 400, "invalid_request"},
		{"GET", "GET", "env-basic", "", basicHeader("cb", "s3cr3t/+=&%"), 405, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := h.do(t, tt.method, "/"+tt.env+"/as/token", "", form, tt.body, tt.header)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, tt.wantCode, body)
			}
			var tr struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
				ExpiresIn   int    `json:"expires_in"`
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal(body, &tr); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if tt.wantCode != 200 {
				if tr.Error != tt.wantError || tr.Description == "" || tr.AccessToken != "" {
					t.Errorf("body %s: want error %q with a description", body, tt.wantError)
				}
				return
			}
			if tr.AccessToken == "" || tr.TokenType != "Bearer" || tr.ExpiresIn != 5400 {
				t.Errorf("body %s: want a Bearer token expiring in 5400s", body)
			}
		})
	}
	if got := h.p.Stats().TokenRequests; got != int64(len(tests)) {
		t.Errorf("Stats.TokenRequests = %d, want %d", got, len(tests))
	}
}

func TestActivitiesAuthorization(t *testing.T) {
	clk := newFakeClock(t0)
	envB := Environment{ID: "env-b", ClientID: "client-b", ClientSecret: "secret-b", AuthMethod: AuthMethodPost}
	h := newHarness(t, PingOneOptions{Now: clk.Now, TokenTTL: time.Hour}, testEnv, envB)
	tokA, tokB := h.token(t, testEnv), h.token(t, envB)
	h.p.Add("env-unconfigured", seq("x", 1, t0, 0)...)
	filter := url.QueryEscape(window(t0.Add(-time.Hour), t0))
	path := func(env string) string { return "/v1/environments/" + env + "/activities?filter=" + filter }

	tests := []struct {
		name     string
		token    string
		env      string
		wantCode int
		wantBody string
	}{
		{"own environment", tokA, "env-a", 200, ""},
		{"post-method token", tokB, "env-b", 200, ""},
		{"missing token", "", "env-a", 401, "INVALID_TOKEN"},
		{"unknown token", "not-a-token", "env-a", 401, "INVALID_TOKEN"},
		{"token of another environment", tokB, "env-a", 403, "ACCESS_FAILED"},
		{"unknown environment", tokA, "env-zzz", 404, "NOT_FOUND"},
		{"environment with activities but not added", tokA, "env-unconfigured", 404, "NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := h.do(t, "GET", path(tt.env), tt.token, "", "", nil)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, tt.wantCode, body)
			}
			if tt.wantCode != 200 {
				if e := decodeAPIErr(t, body); e.Code != tt.wantBody {
					t.Errorf("code %q, want %q", e.Code, tt.wantBody)
				}
			}
		})
	}

	t.Run("expired token", func(t *testing.T) {
		if resp, body := h.do(t, "GET", path("env-a"), tokA, "", "", nil); resp.StatusCode != 200 {
			t.Fatalf("before expiry: HTTP %d: %s", resp.StatusCode, body)
		}
		clk.Advance(time.Hour)
		resp, body := h.do(t, "GET", path("env-a"), tokA, "", "", nil)
		if resp.StatusCode != 401 || decodeAPIErr(t, body).Code != "INVALID_TOKEN" {
			t.Fatalf("after expiry: HTTP %d: %s", resp.StatusCode, body)
		}
		if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("WWW-Authenticate = %q", got)
		}
		if resp, body := h.do(t, "GET", path("env-a"), h.token(t, testEnv), "", "", nil); resp.StatusCode != 200 {
			t.Fatalf("new token: HTTP %d: %s", resp.StatusCode, body)
		}
	})
}

func TestParseFilter(t *testing.T) {
	ms := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMilli()
	}
	const noLo, noHi = -1 << 63, 1<<63 - 1
	tests := []struct {
		filter  string
		lo, hi  int64
		types   []string
		wantErr bool
	}{
		{`recordedAt ge "2025-03-01T12:00:00.000Z" and recordedAt lt "2025-03-01T12:10:00.000Z"`, ms("2025-03-01T12:00:00Z"), ms("2025-03-01T12:10:00Z"), nil, false},
		{`recordedat gt "2025-03-01T12:00:00.000Z" AND recordedat le "2025-03-01T12:10:00.000Z"`, ms("2025-03-01T12:00:00.001Z"), ms("2025-03-01T12:10:00.001Z"), nil, false},
		{`RECORDEDAT GE "2025-03-01T12:00:00Z"`, ms("2025-03-01T12:00:00Z"), noHi, nil, false},
		{`recordedAt LT "2025-03-01T12:00:00Z"`, noLo, ms("2025-03-01T12:00:00Z"), nil, false},
		{`  recordedAt   ge   "2025-03-01T13:00:00+01:00"  `, ms("2025-03-01T12:00:00Z"), noHi, nil, false},
		{`recordedAt ge "2025-03-01T12:00:00.0009Z"`, ms("2025-03-01T12:00:00Z"), noHi, nil, false},
		{`recordedAt ge "2025-03-01T12:00:00Z" and recordedAt ge "2025-03-01T12:05:00Z" and recordedAt lt "2025-03-01T13:00:00Z" and recordedAt le "2025-03-01T12:30:00Z"`,
			ms("2025-03-01T12:05:00Z"), ms("2025-03-01T12:30:00.001Z"), nil, false},
		{`recordedAt ge "2025-03-01T12:00:00Z" and action.type eq "USER.CREATED"`, ms("2025-03-01T12:00:00Z"), noHi, []string{"USER.CREATED"}, false},
		{`Action.Type EQ "SECRET.READ" and recordedAt lt "2025-03-01T12:00:00Z"`, noLo, ms("2025-03-01T12:00:00Z"), []string{"SECRET.READ"}, false},
		{``, 0, 0, nil, true},
		{`   `, 0, 0, nil, true},
		{`action.type eq "USER.CREATED"`, 0, 0, nil, true},
		{`recordedAt eq "2025-03-01T12:00:00Z"`, 0, 0, nil, true},
		{`recordedAt ge "yesterday"`, 0, 0, nil, true},
		{`recordedAt ge "2025-03-01 12:00:00"`, 0, 0, nil, true},
		{`recordedAt ge 2025-03-01T12:00:00Z`, 0, 0, nil, true},
		{`recordedAt ge "2025-03-01T12:00:00Z" or recordedAt lt "2025-03-02T12:00:00Z"`, 0, 0, nil, true},
		{`recordedAt ge "2025-03-01T12:00:00Z" and`, 0, 0, nil, true},
		{`recordedAt ge "2025-03-01T12:00:00Z`, 0, 0, nil, true},
		{`(recordedAt ge "2025-03-01T12:00:00Z")`, 0, 0, nil, true},
		{`createdAt gt "2025-03-01T12:00:00Z"`, 0, 0, nil, true},
		{`action.type ne "X" and recordedAt ge "2025-03-01T12:00:00Z"`, 0, 0, nil, true},
		{`recordedAt ge`, 0, 0, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			f, err := parseFilter(tt.filter)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parsed as %+v, want an error", f)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.lo != tt.lo || f.hi != tt.hi || !slices.Equal(f.actionTypes, tt.types) {
				t.Errorf("got [%d, %d) %q, want [%d, %d) %q", f.lo, f.hi, f.actionTypes, tt.lo, tt.hi, tt.types)
			}
		})
	}
}

func TestFilterOverHTTP(t *testing.T) {
	h := newHarness(t, PingOneOptions{}, testEnv)
	h.p.Add("env-a", seq("a", 10, t0, time.Second)...) // a-0000 at t0 … a-0009 at t0+9s
	tok := h.token(t, testEnv)
	at := func(s int) string { return t0.Add(time.Duration(s) * time.Second).Format(timeFormat) }
	tests := []struct {
		name   string
		filter string
		want   []string
	}{
		{"ge lt", fmt.Sprintf(`recordedAt ge "%s" and recordedAt lt "%s"`, at(2), at(5)), []string{"a-0004", "a-0003", "a-0002"}},
		{"gt le lowercase", fmt.Sprintf(`recordedat gt "%s" and recordedat le "%s"`, at(2), at(5)), []string{"a-0005", "a-0004", "a-0003"}},
		{"upper case", fmt.Sprintf(`RECORDEDAT GE "%s" AND RECORDEDAT LT "%s"`, at(8), at(20)), []string{"a-0009", "a-0008"}},
		{"lower bound only", fmt.Sprintf(`recordedAt gt "%s"`, at(7)), []string{"a-0009", "a-0008"}},
		{"upper bound only", fmt.Sprintf(`recordedAt lt "%s"`, at(2)), []string{"a-0001", "a-0000"}},
		{"millisecond edge", fmt.Sprintf(`recordedAt gt "%s" and recordedAt lt "%s"`, t0.Add(2*time.Second-time.Millisecond).Format(timeFormat), t0.Add(2*time.Second+time.Millisecond).Format(timeFormat)), []string{"a-0002"}},
		{"second precision timestamps", `recordedAt ge "2025-03-01T12:00:03Z" and recordedAt le "2025-03-01T12:00:03Z"`, []string{"a-0003"}},
		{"empty range", fmt.Sprintf(`recordedAt ge "%s" and recordedAt lt "%s"`, at(5), at(2)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pg := h.list(t, tok, "env-a", tt.filter, 0)
			if got := pg.ids(t); !slices.Equal(got, tt.want) {
				t.Errorf("ids %q, want %q", got, tt.want)
			}
			if pg.Count != len(tt.want) || pg.Size != len(tt.want) {
				t.Errorf("count %d size %d, want %d", pg.Count, pg.Size, len(tt.want))
			}
		})
	}

	bad := []struct{ name, query, wantDetail string }{
		{"no filter", "", "INVALID_FILTER"},
		{"no recordedAt bound", "filter=" + url.QueryEscape(`action.type eq "USER.CREATED"`), "INVALID_FILTER"},
		{"bad operator", "filter=" + url.QueryEscape(fmt.Sprintf(`recordedAt eq "%s"`, at(1))), "INVALID_FILTER"},
		{"bad timestamp", "filter=" + url.QueryEscape(`recordedAt ge "2025-13-01T00:00:00Z"`), "INVALID_FILTER"},
		{"unparsable", "filter=" + url.QueryEscape(`recordedAt ge`), "INVALID_FILTER"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := h.do(t, "GET", "/v1/environments/env-a/activities?"+tt.query, tok, "", "", nil)
			if resp.StatusCode != 400 {
				t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
			}
			e := decodeAPIErr(t, body)
			if e.Code != "INVALID_DATA" || len(e.Details) != 1 || e.Details[0].Code != tt.wantDetail || e.Details[0].Target != "filter" {
				t.Errorf("body %s: want INVALID_DATA with detail %s on filter", body, tt.wantDetail)
			}
		})
	}
}

func TestActionTypeFilter(t *testing.T) {
	h := newHarness(t, PingOneOptions{}, testEnv)
	g := NewGenerator(7)
	var acts []Activity
	want := map[string]bool{}
	for i := range 300 {
		a := g.Activity("env-a", h.srv.URL, t0.Add(time.Duration(i)*time.Second))
		acts = append(acts, a)
		var v struct{ Action struct{ Type string } }
		if err := json.Unmarshal(a.JSON, &v); err != nil {
			t.Fatal(err)
		}
		if v.Action.Type == "USER.UPDATED" {
			want[a.ID] = true
		}
	}
	h.p.Add("env-a", acts...)
	if len(want) == 0 {
		t.Fatal("the generator made no USER.UPDATED")
	}
	pg := h.list(t, h.token(t, testEnv), "env-a", window(t0, t0.Add(time.Hour))+` and action.type eq "USER.UPDATED"`, 1000)
	got := pg.ids(t)
	if len(got) != len(want) || pg.Count != len(want) {
		t.Fatalf("%d activities, count %d, want %d", len(got), pg.Count, len(want))
	}
	for _, id := range got {
		if !want[id] {
			t.Errorf("%s is not a USER.UPDATED", id)
		}
	}
}

func TestLimit(t *testing.T) {
	h := newHarness(t, PingOneOptions{}, testEnv)
	h.p.Add("env-a", seq("a", 1500, t0, time.Millisecond)...)
	tok := h.token(t, testEnv)
	f := url.QueryEscape(window(t0, t0.Add(time.Hour)))
	tests := []struct {
		name     string
		limit    string
		wantCode int
		wantSize int
	}{
		{"absent means 100", "", 200, 100},
		{"1", "1", 200, 1},
		{"1000", "1000", 200, 1000},
		{"0", "0", 400, 0},
		{"negative", "-5", 400, 0},
		{"1001", "1001", 400, 0},
		{"not a number", "ten", 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := "/v1/environments/env-a/activities?filter=" + f
			if tt.limit != "" {
				target += "&limit=" + tt.limit
			}
			resp, body := h.do(t, "GET", target, tok, "", "", nil)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, tt.wantCode, body)
			}
			if tt.wantCode != 200 {
				e := decodeAPIErr(t, body)
				if e.Code != "INVALID_DATA" || len(e.Details) != 1 || e.Details[0].Target != "limit" {
					t.Errorf("body %s: want INVALID_DATA on limit", body)
				}
				return
			}
			var pg page
			if err := json.Unmarshal(body, &pg); err != nil {
				t.Fatal(err)
			}
			if len(pg.Embedded.Activities) != tt.wantSize || pg.Size != tt.wantSize || pg.Count != 1500 {
				t.Errorf("%d activities, size %d, count %d; want %d, %d, 1500", len(pg.Embedded.Activities), pg.Size, pg.Count, tt.wantSize, tt.wantSize)
			}
		})
	}
}

func TestNewestFirst(t *testing.T) {
	h := newHarness(t, PingOneOptions{}, testEnv)
	// Added out of order, with ties on recordedAt.
	var acts []Activity
	for i := range 200 {
		ms := (i * 7919) % 97
		acts = append(acts, Activity{ID: fmt.Sprintf("id-%03d", (i*31)%200), RecordedAt: t0.Add(time.Duration(ms) * time.Millisecond)})
	}
	for _, a := range acts {
		h.p.Add("env-a", a) // one by one: the binary-insert path
	}
	pg := h.list(t, h.token(t, testEnv), "env-a", window(t0, t0.Add(time.Second)), 1000)
	type key struct {
		at time.Time
		id string
	}
	var got []key
	for _, raw := range pg.Embedded.Activities {
		var a struct {
			ID         string    `json:"id"`
			RecordedAt time.Time `json:"recordedAt"`
		}
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		got = append(got, key{a.RecordedAt, a.ID})
	}
	if len(got) != 200 {
		t.Fatalf("%d activities, want 200", len(got))
	}
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if a.at.Before(b.at) || (a.at.Equal(b.at) && a.id <= b.id) {
			t.Fatalf("position %d: %v %s before %v %s, want newest first then id descending", i, a.at, a.id, b.at, b.id)
		}
	}
	// Activities returns them oldest first.
	all := h.p.Activities("env-a")
	if len(all) != 200 {
		t.Fatalf("Activities returned %d, want 200", len(all))
	}
	for i := 1; i < len(all); i++ {
		if compareKey(all[i-1].RecordedAt.UnixMilli(), all[i-1].ID, all[i].RecordedAt.UnixMilli(), all[i].ID) >= 0 {
			t.Fatalf("Activities not sorted at %d", i)
		}
	}
}

// pageThrough follows next links from the first page and returns every id
// served, in order, and the number of pages.
func pageThrough(t *testing.T, h *harness, tok string, first page) ([]string, int) {
	t.Helper()
	ids, pages := first.ids(t), 1
	for pg := first; pg.Links.Next != nil; pages++ {
		if pages > 1000 {
			t.Fatal("too many pages")
		}
		pg = h.get(t, tok, pg.Links.Next.Href)
		ids = append(ids, pg.ids(t)...)
	}
	return ids, pages
}

func TestPaging(t *testing.T) {
	h := newHarness(t, PingOneOptions{}, testEnv)
	// 2,500 activities over 25 s, with a big same-millisecond cluster that
	// straddles page boundaries.
	acts := seq("a", 2300, t0, 10*time.Millisecond)
	for i := range 200 {
		acts = append(acts, Activity{ID: fmt.Sprintf("b-%04d", i), RecordedAt: t0.Add(15 * time.Second)})
	}
	h.p.Add("env-a", acts...)
	tok := h.token(t, testEnv)
	filter := window(t0, t0.Add(time.Minute))
	first := h.list(t, tok, "env-a", filter, 1000)
	if first.Count != 2500 {
		t.Errorf("count %d, want 2500", first.Count)
	}
	ids, pages := pageThrough(t, h, tok, first)
	if pages != 3 {
		t.Errorf("%d pages, want 3", pages)
	}
	if len(ids) != 2500 {
		t.Errorf("%d ids served, want 2500", len(ids))
	}
	seen := map[string]int{}
	for _, id := range ids {
		seen[id]++
	}
	for _, a := range acts {
		if seen[a.ID] != 1 {
			t.Errorf("%s served %d times, want once", a.ID, seen[a.ID])
		}
	}
	served := h.p.ServedIDs("env-a")
	if len(served) != 2500 {
		t.Errorf("ServedIDs has %d ids, want 2500", len(served))
	}
	if got := h.p.Stats().Served; got != 2500 {
		t.Errorf("Stats.Served = %d, want 2500", got)
	}

	t.Run("next href", func(t *testing.T) {
		u, err := url.Parse(first.Links.Next.Href)
		if err != nil {
			t.Fatal(err)
		}
		if u.Scheme != "http" || u.Host != strings.TrimPrefix(h.srv.URL, "http://") || u.Path != "/v1/environments/env-a/activities" {
			t.Errorf("next href %s: want the request's scheme, host and path", u)
		}
		q := u.Query()
		if q.Get("filter") != filter || q.Get("limit") != "1000" || q.Get("cursor") == "" {
			t.Errorf("next href query %v: want the filter, the limit and a cursor", q)
		}
		if url.QueryEscape(q.Get("cursor")) != q.Get("cursor") {
			t.Errorf("cursor %q is not URL-safe", q.Get("cursor"))
		}
		if !strings.HasPrefix(first.Links.Self.Href, h.srv.URL+"/v1/environments/env-a/activities?") {
			t.Errorf("self href %s", first.Links.Self.Href)
		}
	})

	t.Run("POST with cursor in body", func(t *testing.T) {
		var ids []string
		body := map[string]any{"filter": filter, "limit": 1000}
		for range 10 {
			b, _ := json.Marshal(body)
			resp, rb := h.do(t, "POST", "/v1/environments/env-a/activities", tok, "application/json", string(b), nil)
			if resp.StatusCode != 200 {
				t.Fatalf("HTTP %d: %s", resp.StatusCode, rb)
			}
			var pg page
			if err := json.Unmarshal(rb, &pg); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, pg.ids(t)...)
			if pg.Links.Next == nil {
				break
			}
			u, _ := url.Parse(pg.Links.Next.Href)
			body = map[string]any{"cursor": u.Query().Get("cursor")}
		}
		if len(ids) != 2500 || len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 2500 {
			t.Errorf("POST paging served %d ids, want 2500 distinct", len(ids))
		}
	})

	t.Run("POST default limit", func(t *testing.T) {
		b, _ := json.Marshal(map[string]any{"filter": filter})
		resp, rb := h.do(t, "POST", "/v1/environments/env-a/activities", tok, "application/json", string(b), nil)
		var pg page
		if resp.StatusCode != 200 || json.Unmarshal(rb, &pg) != nil || pg.Size != 100 {
			t.Errorf("HTTP %d, size %d: want 200 with 100 activities", resp.StatusCode, pg.Size)
		}
	})
}

func TestCursorErrors(t *testing.T) {
	envB := Environment{ID: "env-b", Licence: "lic", ClientID: "cb", ClientSecret: "sb"}
	h := newHarness(t, PingOneOptions{}, testEnv, envB)
	h.p.Add("env-a", seq("a", 30, t0, time.Second)...)
	h.p.Add("env-b", seq("b", 30, t0, time.Second)...)
	tokA, tokB := h.token(t, testEnv), h.token(t, envB)
	filter := window(t0, t0.Add(time.Hour))
	next := h.list(t, tokA, "env-a", filter, 10).Links.Next.Href
	cur, _ := url.Parse(next)
	good := cur.Query().Get("cursor")
	tests := []struct {
		name, env, token, query string
	}{
		{"not base64", "env-a", tokA, "cursor=%25%25%25"},
		{"not JSON", "env-a", tokA, "cursor=" + "bm90IGpzb24"},
		{"empty object", "env-a", tokA, "cursor=e30"},
		{"other environment", "env-b", tokB, "cursor=" + good},
		{"other filter", "env-a", tokA, "cursor=" + good + "&filter=" + url.QueryEscape(window(t0, t0.Add(time.Minute)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := h.do(t, "GET", "/v1/environments/"+tt.env+"/activities?"+tt.query, tt.token, "", "", nil)
			if resp.StatusCode != 400 || decodeAPIErr(t, body).Code != "INVALID_DATA" {
				t.Errorf("HTTP %d: %s; want 400 INVALID_DATA", resp.StatusCode, body)
			}
		})
	}
	t.Run("cursor alone", func(t *testing.T) {
		pg := h.get(t, tokA, h.srv.URL+"/v1/environments/env-a/activities?cursor="+good)
		if got := pg.ids(t); len(got) != 10 || got[0] != "a-0019" {
			t.Errorf("ids %q: want the second page a-0019…a-0010", got)
		}
	})
}

func TestVisibilityLag(t *testing.T) {
	clk := newFakeClock(t0.Add(time.Minute))
	h := newHarness(t, PingOneOptions{Now: clk.Now}, testEnv)
	tok := h.token(t, testEnv)
	h.p.Add("env-a",
		Activity{ID: "early", RecordedAt: t0},
		Activity{ID: "late", RecordedAt: t0.Add(time.Second), VisibleAt: t0.Add(2 * time.Minute)},
		Activity{ID: "later", RecordedAt: t0.Add(2 * time.Second), VisibleAt: t0.Add(3 * time.Minute)},
	)
	filter := window(t0, t0.Add(time.Hour))
	steps := []struct {
		advance time.Duration
		want    []string
	}{
		{0, []string{"early"}},
		{time.Minute - time.Nanosecond, []string{"early"}},
		{time.Nanosecond, []string{"late", "early"}},
		{time.Minute, []string{"later", "late", "early"}},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		pg := h.list(t, tok, "env-a", filter, 10)
		if got := pg.ids(t); !slices.Equal(got, s.want) || pg.Count != len(s.want) {
			t.Errorf("step %d: ids %q count %d, want %q", i, got, pg.Count, s.want)
		}
	}

	t.Run("keyset cursor skips what appears behind it", func(t *testing.T) {
		clk := newFakeClock(t0.Add(time.Minute))
		h := newHarness(t, PingOneOptions{Now: clk.Now}, testEnv)
		tok := h.token(t, testEnv)
		h.p.Add("env-a", seq("a", 4, t0, time.Second)...)
		h.p.Add("env-a", Activity{ID: "hidden", RecordedAt: t0.Add(1500 * time.Millisecond), VisibleAt: t0.Add(2 * time.Minute)})
		first := h.list(t, tok, "env-a", window(t0, t0.Add(time.Hour)), 2) // a-0003, a-0002
		clk.Advance(2 * time.Minute)                                       // "hidden" becomes visible between the pages
		second := h.get(t, tok, first.Links.Next.Href)
		if got := second.ids(t); !slices.Equal(got, []string{"hidden", "a-0001"}) {
			t.Errorf("second page %q, want [hidden a-0001]", got)
		}
	})
}

func TestSameMillisecond(t *testing.T) {
	h := newHarness(t, PingOneOptions{}, testEnv)
	var acts []Activity
	for i := range 37 {
		acts = append(acts, Activity{ID: fmt.Sprintf("same-%02d", i), RecordedAt: t0.Add(5 * time.Millisecond)})
	}
	acts = append(acts, Activity{ID: "before", RecordedAt: t0.Add(4 * time.Millisecond)}, Activity{ID: "after", RecordedAt: t0.Add(6 * time.Millisecond)})
	h.p.Add("env-a", acts...)
	tok := h.token(t, testEnv)
	ids, pages := pageThrough(t, h, tok, h.list(t, tok, "env-a", window(t0, t0.Add(time.Second)), 10))
	if pages != 4 || len(ids) != 39 {
		t.Fatalf("%d ids in %d pages, want 39 in 4", len(ids), pages)
	}
	if ids[0] != "after" || ids[38] != "before" {
		t.Errorf("first %s last %s, want after … before", ids[0], ids[38])
	}
	if n := len(slices.Compact(slices.Sorted(slices.Values(ids)))); n != 39 {
		t.Errorf("%d distinct ids, want 39", n)
	}
	// An exact-millisecond window selects the whole cluster.
	at := t0.Add(5 * time.Millisecond).Format(timeFormat)
	pg := h.list(t, tok, "env-a", fmt.Sprintf(`recordedAt ge "%s" and recordedAt le "%s"`, at, at), 100)
	if len(pg.Embedded.Activities) != 37 {
		t.Errorf("exact window: %d activities, want 37", len(pg.Embedded.Activities))
	}
}

func TestRateLimit(t *testing.T) {
	clk := newFakeClock(t0)
	envB := Environment{ID: "env-b", Licence: "lic", ClientID: "cb", ClientSecret: "sb"}
	envC := Environment{ID: "env-c", Licence: "other", ClientID: "cc", ClientSecret: "sc"}
	h := newHarness(t, PingOneOptions{Now: clk.Now, RateLimit: 2}, testEnv, envB, envC)
	toks := map[string]string{"env-a": h.token(t, testEnv), "env-b": h.token(t, envB), "env-c": h.token(t, envC)}
	filter := url.QueryEscape(window(t0.Add(-time.Hour), t0))
	get := func(env string) *http.Response {
		resp, _ := h.do(t, "GET", "/v1/environments/"+env+"/activities?filter="+filter, toks[env], "", "", nil)
		return resp
	}
	// The burst of 2 is shared by env-a and env-b (licence "lic").
	if a, b := get("env-a").StatusCode, get("env-b").StatusCode; a != 200 || b != 200 {
		t.Fatalf("burst: HTTP %d, %d", a, b)
	}
	resp, body := h.do(t, "GET", "/v1/environments/env-a/activities?filter="+filter, toks["env-a"], "", "", nil)
	if resp.StatusCode != 429 || decodeAPIErr(t, body).Code != "REQUEST_LIMITED" {
		t.Fatalf("over the rate: HTTP %d: %s", resp.StatusCode, body)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q, want whole seconds >= 1", resp.Header.Get("Retry-After"))
	}
	if get("env-b").StatusCode != 429 {
		t.Error("env-b shares the licence: want 429")
	}
	if get("env-c").StatusCode != 200 {
		t.Error("env-c has its own licence: want 200")
	}
	clk.Advance(500 * time.Millisecond) // one request's worth at 2/s
	if get("env-b").StatusCode != 200 {
		t.Error("after 500ms: want 200")
	}
	if get("env-a").StatusCode != 429 {
		t.Error("right after: want 429")
	}
	if got := h.p.Stats().Throttled; got != 3 {
		t.Errorf("Stats.Throttled = %d, want 3", got)
	}
	if got := h.p.Stats().ActivityRequests; got != 7 {
		t.Errorf("Stats.ActivityRequests = %d, want 7", got)
	}
}

func TestRateLimitSustained(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewPingOne(PingOneOptions{RateLimit: 5})
		p.AddEnvironment(testEnv)
		tok := issueToken(t, p, testEnv)
		filter := url.QueryEscape(window(t0, t0.Add(time.Hour)))
		ok, throttled := 0, 0
		start := time.Now()
		for time.Since(start) < 10*time.Second {
			rec := serve(p, "GET", "/v1/environments/env-a/activities?filter="+filter, tok, "")
			switch rec.Code {
			case 200:
				ok++
			case 429:
				throttled++
				ra, _ := strconv.Atoi(rec.Header().Get("Retry-After"))
				time.Sleep(time.Duration(ra) * time.Second)
				continue
			}
			time.Sleep(50 * time.Millisecond)
		}
		// 5 in the initial burst plus 5/s for 10 s.
		if ok < 40 || ok > 55 || throttled == 0 {
			t.Errorf("%d served, %d throttled in 10s at 5/s", ok, throttled)
		}
	})
}

// serve runs one request through p.ServeHTTP without a network.
func serve(p *PingOne, method, target, token, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method == "POST" && strings.HasSuffix(target, "/as/token") {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	return rec
}

// issueToken gets a token without a network.
func issueToken(t testing.TB, p *PingOne, env Environment) string {
	t.Helper()
	req := httptest.NewRequest("POST", "/"+env.ID+"/as/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(env.ClientID, env.ClientSecret)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &tr) != nil {
		t.Fatalf("token: HTTP %d: %s", rec.Code, rec.Body)
	}
	return tr.AccessToken
}

func TestFaults(t *testing.T) {
	filter := url.QueryEscape(window(t0, t0.Add(time.Hour)))
	path := "/v1/environments/env-a/activities?filter=" + filter
	setup := func(t *testing.T, f Faults) (*harness, string) {
		h := newHarness(t, PingOneOptions{}, testEnv)
		h.p.Add("env-a", seq("a", 50, t0, time.Second)...)
		tok := h.token(t, testEnv)
		h.p.SetFaults(f)
		return h, tok
	}

	t.Run("server error", func(t *testing.T) {
		h, tok := setup(t, Faults{ServerError: 1})
		statuses := map[int]bool{}
		for range 30 {
			resp, body := h.do(t, "GET", path, tok, "", "", nil)
			statuses[resp.StatusCode] = true
			if e := decodeAPIErr(t, body); e.Code == "" {
				t.Errorf("HTTP %d body %s: want a PingOne error", resp.StatusCode, body)
			}
		}
		if len(statuses) != 3 || !statuses[500] || !statuses[502] || !statuses[503] {
			t.Errorf("statuses %v, want 500, 502 and 503", statuses)
		}
		if s := h.p.Stats(); s.Faults != 30 || s.Served != 0 {
			t.Errorf("stats %+v: want 30 faults, nothing served", s)
		}
	})

	t.Run("truncate", func(t *testing.T) {
		h, tok := setup(t, Faults{Truncate: 1})
		req, _ := http.NewRequest("GET", h.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := h.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("HTTP %d, read error %v: want 200 and an unexpected EOF", resp.StatusCode, err)
		}
		if resp.ContentLength <= int64(len(body)) || len(body) == 0 {
			t.Errorf("Content-Length %d, read %d bytes: want a partial body", resp.ContentLength, len(body))
		}
		if json.Valid(body) {
			t.Error("the truncated body is valid JSON")
		}
		if s := h.p.Stats(); s.Faults != 1 || s.Served != 0 || len(h.p.ServedIDs("env-a")) != 0 {
			t.Errorf("stats %+v: want 1 fault, nothing served", s)
		}
	})

	t.Run("early 401", func(t *testing.T) {
		h, tok := setup(t, Faults{Early401: 1})
		resp, body := h.do(t, "GET", path, tok, "", "", nil)
		if resp.StatusCode != 401 || decodeAPIErr(t, body).Code != "INVALID_TOKEN" {
			t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
		}
		h.p.SetFaults(Faults{})
		if resp, _ := h.do(t, "GET", path, tok, "", "", nil); resp.StatusCode != 401 {
			t.Errorf("revoked token: HTTP %d, want 401", resp.StatusCode)
		}
		if resp, _ := h.do(t, "GET", path, h.token(t, testEnv), "", "", nil); resp.StatusCode != 200 {
			t.Errorf("new token: HTTP %d, want 200", resp.StatusCode)
		}
		if got := h.p.Stats().Faults; got != 1 {
			t.Errorf("Stats.Faults = %d, want 1", got)
		}
	})

	t.Run("throttle", func(t *testing.T) {
		h, tok := setup(t, Faults{Throttle: 1})
		resp, body := h.do(t, "GET", path, tok, "", "", nil)
		if resp.StatusCode != 429 || decodeAPIErr(t, body).Code != "REQUEST_LIMITED" || resp.Header.Get("Retry-After") != "1" {
			t.Fatalf("HTTP %d Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		if s := h.p.Stats(); s.Faults != 1 || s.Throttled != 0 {
			t.Errorf("stats %+v: want 1 fault and no rate-limit throttling", s)
		}
	})

	t.Run("slow", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := NewPingOne(PingOneOptions{})
			p.AddEnvironment(testEnv)
			p.Add("env-a", seq("a", 5, t0, time.Second)...)
			tok := issueToken(t, p, testEnv)
			p.SetFaults(Faults{Slow: 1, SlowDelay: 42 * time.Second})
			start := time.Now()
			rec := serve(p, "GET", path, tok, "")
			if rec.Code != 200 || time.Since(start) != 42*time.Second {
				t.Errorf("HTTP %d after %v, want 200 after 42s", rec.Code, time.Since(start))
			}
			if s := p.Stats(); s.Faults != 1 || s.Served != 5 {
				t.Errorf("stats %+v: want 1 fault, 5 served", s)
			}
		})
	})

	t.Run("fractions", func(t *testing.T) {
		h, tok := setup(t, Faults{ServerError: 0.2, Throttle: 0.1, Early401: 0.1})
		counts := map[int]int{}
		for range 400 {
			resp, _ := h.do(t, "GET", path, tok, "", "", nil)
			code := resp.StatusCode
			if code >= 500 {
				code = 500
			}
			counts[code]++
			if resp.StatusCode == 401 {
				tok = h.token(t, testEnv)
			}
		}
		within := func(name string, got, want int) {
			if got < want*6/10 || got > want*14/10 {
				t.Errorf("%s: %d of 400, want about %d", name, got, want)
			}
		}
		within("5xx", counts[500], 80)
		within("429", counts[429], 40)
		within("401", counts[401], 40)
		within("200", counts[200], 240)
	})
}

func TestAddWhileServing(t *testing.T) {
	h := newHarness(t, PingOneOptions{}, testEnv)
	tok := h.token(t, testEnv)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			// Out of order, so inserts land inside the slice.
			h.p.Add("env-a", Activity{ID: fmt.Sprintf("c-%03d", i), RecordedAt: t0.Add(time.Duration((i*37)%200) * time.Millisecond)})
		}
	})
	filter := window(t0, t0.Add(time.Second))
	for range 20 {
		pageThrough(t, h, tok, h.list(t, tok, "env-a", filter, 7))
	}
	wg.Wait()
	ids, _ := pageThrough(t, h, tok, h.list(t, tok, "env-a", filter, 1000))
	if len(ids) != 200 {
		t.Errorf("%d activities, want 200", len(ids))
	}
}

func TestAddReplacesSameID(t *testing.T) {
	p := NewPingOne(PingOneOptions{})
	p.Add("env-a", Activity{ID: "x", RecordedAt: t0}, Activity{ID: "y", RecordedAt: t0.Add(time.Second)})
	p.Add("env-a", Activity{ID: "x", RecordedAt: t0.Add(2 * time.Second), JSON: json.RawMessage(`{"id":"x","v":2}`)})
	got := p.Activities("env-a")
	if len(got) != 2 || got[0].ID != "y" || got[1].ID != "x" || string(got[1].JSON) != `{"id":"x","v":2}` {
		t.Errorf("Activities = %+v", got)
	}
	if got[0].RecordedAt.Location() != time.UTC {
		t.Error("RecordedAt not in UTC")
	}
}

func TestJSONServedByteForByte(t *testing.T) {
	h := newHarness(t, PingOneOptions{}, testEnv)
	raw := "{ \"id\" : \"odd\",\n  \"recordedAt\": \"2025-03-01T12:00:00.000Z\", \"note\": \"caf\\u00e9 <&>\" }"
	h.p.Add("env-a", Activity{ID: "odd", RecordedAt: t0, JSON: json.RawMessage(raw)})
	tok := h.token(t, testEnv)
	pg := h.list(t, tok, "env-a", window(t0, t0.Add(time.Second)), 1)
	if len(pg.Embedded.Activities) != 1 || string(pg.Embedded.Activities[0]) != raw {
		t.Errorf("served %q, want %q", pg.Embedded.Activities, raw)
	}
	resp, body := h.do(t, "GET", "/v1/environments/env-a/activities/odd", tok, "", "", nil)
	if resp.StatusCode != 200 || string(body) != raw {
		t.Errorf("single activity: HTTP %d %q", resp.StatusCode, body)
	}
	if resp, _ := h.do(t, "GET", "/v1/environments/env-a/activities/none", tok, "", "", nil); resp.StatusCode != 404 {
		t.Errorf("unknown activity: HTTP %d, want 404", resp.StatusCode)
	}
}

func TestHTTPSNextHref(t *testing.T) {
	p := NewPingOne(PingOneOptions{RateLimit: -1})
	p.AddEnvironment(testEnv)
	p.Add("env-a", seq("a", 3, t0, time.Second)...)
	srv := httptest.NewTLSServer(p)
	defer srv.Close()
	h := &harness{p: p, srv: srv, c: srv.Client()}
	tok := h.token(t, testEnv)
	pg := h.list(t, tok, "env-a", window(t0, t0.Add(time.Hour)), 1)
	if pg.Links.Next == nil || !strings.HasPrefix(pg.Links.Next.Href, srv.URL+"/v1/environments/env-a/activities?") {
		t.Fatalf("next %+v, want under %s", pg.Links.Next, srv.URL)
	}
	ids, _ := pageThrough(t, h, tok, pg)
	if len(ids) != 3 {
		t.Errorf("%d ids, want 3", len(ids))
	}
}

func TestStatsEndpoint(t *testing.T) {
	h := newHarness(t, PingOneOptions{}, testEnv)
	h.p.Add("env-a", seq("a", 3, t0, time.Second)...)
	tok := h.token(t, testEnv)
	h.list(t, tok, "env-a", window(t0, t0.Add(time.Hour)), 10)
	resp, body := h.do(t, "GET", "/emulator/stats", "", "", "", nil)
	var s Stats
	if resp.StatusCode != 200 || json.Unmarshal(body, &s) != nil {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
	}
	want := Stats{TokenRequests: 1, ActivityRequests: 1, Served: 3}
	if s != want {
		t.Errorf("stats %+v, want %+v", s, want)
	}
	if resp, body := h.do(t, "GET", "/no/such/path/here", "", "", "", nil); resp.StatusCode != 404 || decodeAPIErr(t, body).Code != "NOT_FOUND" {
		t.Errorf("unknown path: HTTP %d %s", resp.StatusCode, body)
	}
}
