package emulator

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSplunkRefusesWholeRequest: one bad event refuses the request at its
// position and nothing of it is indexed; a channel is needed with ack.
func TestSplunkRefusesWholeRequest(t *testing.T) {
	emu := NewSplunk(SplunkOptions{}, SplunkToken{Token: "t1", Ack: true, Indexes: []string{"identity"}})
	srv := httptest.NewServer(emu)
	defer srv.Close()
	post := func(body, channel string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/services/collector/event", strings.NewReader(body))
		req.Header.Set("Authorization", "Splunk t1")
		if channel != "" {
			req.Header.Set("X-Splunk-Request-Channel", channel)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 512)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
	const ch = "0f8fad5b-d9cb-469f-a165-70867728950e"
	good := `{"index":"identity","event":{"a":1},"fields":{"auditrelay_id":"x"}}`
	if st, b := post(good, ""); st != 400 || !strings.Contains(b, `"code":10`) {
		t.Errorf("no channel: %d %s", st, b)
	}
	if st, b := post(good+`{"index":"identity"}`, ch); st != 400 || !strings.Contains(b, `"code":12`) || !strings.Contains(b, `"invalid-event-number":1`) {
		t.Errorf("missing event: %d %s", st, b)
	}
	if st, b := post(`{"index":"main","event":{"a":1}}`, ch); st != 400 || !strings.Contains(b, `"code":7`) {
		t.Errorf("wrong index: %d %s", st, b)
	}
	if n := len(emu.Events()); n != 0 {
		t.Fatalf("%d events indexed from refused requests", n)
	}
	if st, b := post(good+"\n"+good, ch); st != 200 || !strings.Contains(b, `"ackId":0`) {
		t.Errorf("good request: %d %s", st, b)
	}
	if ids := emu.IDs(); ids["x"] != 2 {
		t.Errorf("IDs = %v", ids)
	}
}
