package emulator_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
)

func Example() {
	p := emulator.NewPingOne(emulator.PingOneOptions{})
	srv := httptest.NewServer(p)
	defer srv.Close()

	env := emulator.Environment{ID: "example-env", ClientID: "worker", ClientSecret: "s3cret"}
	p.AddEnvironment(env)
	end := time.Now().Truncate(time.Millisecond)
	p.Backlog(emulator.NewGenerator(1), env.ID, srv.URL, 250, end.Add(-time.Hour), end)

	// Client credentials, client_secret_basic.
	req, _ := http.NewRequest("POST", srv.URL+"/example-env/as/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(env.ClientID, env.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()

	// Page through the last hour, newest first, following _links.next.
	filter := fmt.Sprintf(`recordedAt ge "%s" and recordedAt lt "%s"`,
		end.Add(-time.Hour).UTC().Format("2006-01-02T15:04:05.000Z"), end.UTC().Format("2006-01-02T15:04:05.000Z"))
	next := srv.URL + "/v1/environments/example-env/activities?limit=100&filter=" + url.QueryEscape(filter)
	for next != "" {
		req, _ := http.NewRequest("GET", next, nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		var page struct {
			Links struct {
				Next *struct{ Href string } `json:"next"`
			} `json:"_links"`
			Embedded struct {
				Activities []json.RawMessage `json:"activities"`
			} `json:"_embedded"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, len(page.Embedded.Activities))
		next = ""
		if page.Links.Next != nil {
			next = page.Links.Next.Href
		}
	}
	// Output:
	// 200 100
	// 200 100
	// 200 50
}
