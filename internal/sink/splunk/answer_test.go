package splunk

import (
	"testing"
)

// TestClassify checks each HEC code and each bare status against its class.
func TestClassify(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   kind
		fix    string
	}{
		{200, `{"text":"Success","code":0}`, kindOK, ""},
		{200, `{"text":"Success","code":0,"ackId":7}`, kindOK, ""},
		{200, `{"text":"HEC is healthy","code":17}`, kindOK, ""},
		{403, `{"text":"Token disabled","code":1}`, kindPermanent, fixTokenDisabled},
		{401, `{"text":"Token is required","code":2}`, kindPermanent, fixAuth},
		{401, `{"text":"Invalid authorization","code":3}`, kindPermanent, fixAuth},
		{403, `{"text":"Invalid token","code":4}`, kindPermanent, fixToken},
		{400, `{"text":"No data","code":5}`, kindPermanent, ""},
		{400, `{"text":"Invalid data format","code":6,"invalid-event-number":3}`, kindPoison, ""},
		{400, `{"text":"Incorrect index","code":7,"invalid-event-number":0}`, kindPermanent, fixIndex},
		{500, `{"text":"Internal server error","code":8}`, kindTransient, ""},
		{503, `{"text":"Server is busy","code":9}`, kindThrottled, ""},
		{400, `{"text":"Data channel is missing","code":10}`, kindPermanent, fixChannel},
		{400, `{"text":"Invalid data channel","code":11}`, kindPermanent, fixBadChannel},
		{400, `{"text":"Event field is required","code":12,"invalid-event-number":1}`, kindPoison, ""},
		{400, `{"text":"Event field cannot be blank","code":13,"invalid-event-number":1}`, kindPoison, ""},
		{400, `{"text":"ACK is disabled","code":14}`, kindAckDisabled, fixAckDisabled},
		{400, `{"text":"Error in handling indexed fields","code":15,"invalid-event-number":0}`, kindPoison, ""},
		{400, `{"text":"Query string authorization is not enabled","code":16}`, kindPermanent, fixQuery},
		{503, `{"text":"HEC is unhealthy, queues are full","code":18}`, kindThrottled, ""},
		{503, `{"text":"HEC is unhealthy, ack service unavailable","code":19}`, kindThrottled, ""},
		{503, `{"text":"HEC is unhealthy, queues are full","code":20}`, kindThrottled, ""},
		{403, `{"text":"Token disabled","code":21}`, kindPermanent, fixToken},
		{403, `{"text":"Invalid token","code":22}`, kindPermanent, fixToken},
		{413, `Content-Length exceeds limit`, kindTooLarge, ""},
		{429, ``, kindThrottled, ""},
		{503, `<html>busy</html>`, kindThrottled, ""},
		{502, `<html>bad gateway</html>`, kindTransient, ""},
		{504, ``, kindTransient, ""},
		{401, `<html>login</html>`, kindPermanent, fixToken},
		{404, `not found`, kindPermanent, fixURL},
		{400, `{"oops":1}`, kindPermanent, fixRefused},
		{200, `<html>proxy</html>`, kindTransient, ""},
		{400, `{"text":"new","code":99}`, kindPermanent, fixRefused},
		{500, `{"text":"new","code":99}`, kindTransient, ""},
	}
	for _, tt := range tests {
		a, ok := parseAnswer([]byte(tt.body))
		v := classify(tt.status, a, ok)
		if v.kind != tt.want {
			t.Errorf("classify(%d, %s) = %v, want %v", tt.status, tt.body, v.kind, tt.want)
		}
		if tt.fix != "" && v.fix != tt.fix {
			t.Errorf("classify(%d, %s).fix = %q, want %q", tt.status, tt.body, v.fix, tt.fix)
		}
		if v.kind == kindPermanent && v.fix == "" {
			t.Errorf("classify(%d, %s): permanent without a fix", tt.status, tt.body)
		}
	}
}

// TestParseAnswer checks the fields the sink acts on.
func TestParseAnswer(t *testing.T) {
	a, ok := parseAnswer([]byte(`{"text":"Invalid data format","code":6,"invalid-event-number":12}`))
	if !ok || *a.Code != 6 || a.InvalidEvent == nil || *a.InvalidEvent != 12 {
		t.Errorf("parseAnswer = %+v, %v", a, ok)
	}
	a, ok = parseAnswer([]byte(`{"text":"Success","code":0,"ackId":42}`))
	if !ok || a.AckID == nil || *a.AckID != 42 {
		t.Errorf("parseAnswer = %+v, %v", a, ok)
	}
	for _, b := range []string{``, `{}`, `{"text":"x"}`, `[]`, `{"code":"0"}`, `{"code":0,"ackId":-1}`} {
		if _, ok := parseAnswer([]byte(b)); ok {
			t.Errorf("parseAnswer(%q) ok, want not a HEC answer", b)
		}
	}
	if a, ok := parseAnswer([]byte(`{"code":6,"invalid-event-number":-4}`)); !ok || a.InvalidEvent != nil {
		t.Errorf("a negative invalid-event-number is kept: %+v", a)
	}
}

// FuzzParseAnswer feeds arbitrary replies to the parser and classifier:
// they never panic, a permanent verdict always names a fix, and only a
// 2xx is ever accepted.
func FuzzParseAnswer(f *testing.F) {
	f.Add(200, []byte(`{"text":"Success","code":0,"ackId":1}`))
	f.Add(400, []byte(`{"text":"Invalid data format","code":6,"invalid-event-number":3}`))
	f.Add(503, []byte(`{"code":9}`))
	f.Add(413, []byte(`nope`))
	f.Fuzz(func(t *testing.T, status int, b []byte) {
		a, ok := parseAnswer(b)
		if ok && a.Code == nil {
			t.Fatal("ok answer without a code")
		}
		if ok && a.InvalidEvent != nil && *a.InvalidEvent < 0 {
			t.Fatal("negative invalid-event-number kept")
		}
		v := classify(status, a, ok)
		if v.kind == kindPermanent && v.fix == "" {
			t.Fatalf("permanent verdict without a fix for %d %q", status, b)
		}
		if v.kind == kindOK && status/100 != 2 {
			t.Fatalf("status %d accepted", status)
		}
	})
}
