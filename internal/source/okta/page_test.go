package okta

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestDecodePage(t *testing.T) {
	evs, err := decodePage([]byte(` [{"uuid":"u1","published":"2026-11-20T10:00:00.123Z","eventType":"x"},{"published":"2026-11-20T10:00:01+01:00","uuid":"u2"}] `), "s", "o.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].ID != "u1" || !evs[0].Time.Equal(time.Date(2026, 11, 20, 10, 0, 0, 123e6, time.UTC)) ||
		evs[1].Time.Location() != time.UTC || evs[1].Time.Hour() != 9 || string(evs[0].Data) != `{"uuid":"u1","published":"2026-11-20T10:00:00.123Z","eventType":"x"}` ||
		evs[0].Tenant != "o.example" || evs[0].Source != "s" || evs[0].Provider != Provider {
		t.Fatalf("decoded %+v", evs)
	}
	if evs, err := decodePage([]byte(`[]`), "s", "o"); err != nil || len(evs) != 0 {
		t.Fatalf("empty page: %v %v", evs, err)
	}
	for in, want := range map[string]string{
		``:                                       "not a JSON array",
		`{"errorCode":"E0000011"}`:               "not a JSON array",
		`[{"uuid":"u1","published":"2026-`:       "not a JSON array",
		`[1]`:                                    "event 0 of the page is not a JSON object",
		`[{"published":"2026-11-20T10:00:00Z"}]`: "event 0 of the page has no uuid",
		`[{"uuid":"","published":"2026-11-20T10:00:00Z"}]`: "has no uuid",
		`[{"uuid":"u"}]`:                                  "event u has no published time",
		`[{"uuid":"u","published":"yesterday"}]`:          `published "yesterday" is not an RFC 3339 time`,
		`[{"uuid":7,"published":"2026-11-20T10:00:00Z"}]`: "event 0 of the page",
	} {
		if _, err := decodePage([]byte(in), "s", "o"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("decodePage(%s) = %v, want %q", in, err, want)
		}
	}
}

func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(`[{"uuid":"u1","published":"2026-11-20T10:00:00.123Z"}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"uuid":"a","published":"2026-11-20T10:00:00Z","x":[1,{"y":null}]}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := decodePage(b, "s", "o")
		if err != nil {
			return
		}
		for _, e := range evs {
			if e.ID == "" || !json.Valid(e.Data) || e.Data[0] != '{' {
				t.Fatalf("accepted %+v from %q", e, b)
			}
		}
	})
}

func FuzzNextLink(f *testing.F) {
	f.Add(`<https://example.okta.com/api/v1/logs?after=1_1>; rel="next"`)
	f.Add(`</api/v1/logs?after=2_2>; rel=next, <https://x/y>; rel="self"`)
	f.Add(`<https://evil.example/api/v1/logs>; rel="next"`)
	s, err := New("f", tokenConfig("https://example.okta.com"), Options{Limiter: testLimiter()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h := http.Header{}
		h.Add("Link", v)
		next, err := s.nextLink(h)
		if err == nil && next != "" {
			if s.checkLink(next) != nil {
				t.Fatalf("nextLink(%q) = %q, a link off the org", v, next)
			}
		}
	})
}
