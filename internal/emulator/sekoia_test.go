package emulator

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSekoiaBatch(t *testing.T) {
	s := NewSekoia(SekoiaOptions{MaxPayload: 4096, MaxEvent: 1000}, "key")
	srv := httptest.NewServer(s)
	defer srv.Close()
	post := func(body string, zip bool) (int, []string) {
		var b bytes.Buffer
		if zip {
			zw := gzip.NewWriter(&b)
			zw.Write([]byte(body))
			zw.Close()
		} else {
			b.WriteString(body)
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/batch", &b)
		if zip {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ans struct {
			EventIDs []string `json:"event_ids"`
		}
		json.NewDecoder(resp.Body).Decode(&ans)
		return resp.StatusCode, ans.EventIDs
	}
	if code, ids := post(`{"intake_key":"key","jsons":["{\"a\":1}","{\n\"b\":2}"]}`, true); code != 200 || len(ids) != 2 {
		t.Errorf("batch: %d %v", code, ids)
	}
	if f := s.Flagged(); len(f) != 1 || f[0] != "{\n\"b\":2}" {
		t.Errorf("flagged %q, want the multi-line message", f)
	}
	if code, _ := post(`{"intake_key":"nope","jsons":[]}`, false); code != 401 {
		t.Errorf("bad key: %d", code)
	}
	if code, _ := post(`{"intake_key":"key","jsons":["`+strings.Repeat("x", 1001)+`"]}`, false); code != 413 {
		t.Errorf("big event: %d", code)
	}
	if code, _ := post(`{"intake_key":"key","jsons":["`+strings.Repeat("x", 5000)+`"]}`, false); code != 413 {
		t.Errorf("big payload: %d", code)
	}
	s.SetDown(true)
	if code, _ := post(`{"intake_key":"key","jsons":[]}`, false); code != 503 {
		t.Errorf("down: %d", code)
	}
	if got := s.Messages("key"); len(got) != 2 || s.Stats().Gzip != 1 || s.Stats().TooLarge != 2 {
		t.Errorf("messages %q, stats %+v", got, s.Stats())
	}
}
