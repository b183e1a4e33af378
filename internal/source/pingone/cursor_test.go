package pingone

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ms(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []cursor{
		{Until: ms("2026-11-24T10:00:00.123Z")},
		{Until: ms("2026-11-24T10:00:00Z"), From: ms("2026-11-24T09:59:00Z"), To: ms("2026-11-24T11:00:00.999Z"),
			Next: "https://api.pingone.eu/v1/environments/e/activities?cursor=abc%3D&limit=1000"},
		{Until: ms("2026-11-24T09:59:00Z"), From: ms("2026-11-24T09:59:00Z"), To: ms("2026-11-24T09:59:00.001Z"),
			Next: "http://127.0.0.1:9/x"},
	} {
		b := c.encode()
		got, err := decodeCursor(b)
		if err != nil {
			t.Fatalf("decodeCursor(%s): %v", b, err)
		}
		if diff := cmp.Diff(c, got); diff != "" {
			t.Errorf("round trip of %s (-want +got):\n%s", b, diff)
		}
	}
}

func TestCursorEncoding(t *testing.T) {
	c := cursor{Until: ms("2026-11-24T10:00:00.1Z"), From: ms("2026-11-24T09:59:00.1Z"), To: ms("2026-11-24T11:00:00Z"), Next: "https://h/n"}
	want := `{"v":1,"until":"2026-11-24T10:00:00.100Z","from":"2026-11-24T09:59:00.100Z","to":"2026-11-24T11:00:00.000Z","next":"https://h/n"}`
	if got := string(c.encode()); got != want {
		t.Errorf("encode = %s\nwant     %s", got, want)
	}
	if got, want := string(cursor{Until: ms("2026-11-24T10:00:00Z")}.encode()), `{"v":1,"until":"2026-11-24T10:00:00.000Z"}`; got != want {
		t.Errorf("encode = %s, want %s", got, want)
	}
}

func TestDecodeCursorErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{``, "not a pingone cursor"},
		{`[]`, "not a pingone cursor"},
		{`null`, "version 0"},
		{`{"until":"2026-11-24T10:00:00.000Z"}`, "version 0"},
		{`{"v":2,"until":"2026-11-24T10:00:00.000Z"}`, "version 2"},
		{`{"v":1}`, "no until"},
		{`{"v":1,"until":"0001-01-01T00:00:00Z"}`, "no until"},
		{`{"v":1,"until":"yesterday"}`, "not a UTC timestamp"},
		{`{"v":1,"until":"2026-11-24T10:00:00.000+02:00"}`, "not a UTC timestamp"},
		{`{"v":1,"until":5}`, "not a pingone cursor"},
		{`{"v":1,"until":"2026-11-24T10:00:00.000Z","next":"https://h/x"}`, "partial window"},
		{`{"v":1,"until":"2026-11-24T10:00:00.000Z","from":"2026-11-24T09:00:00.000Z","next":"https://h/x"}`, "partial window"},
		{`{"v":1,"until":"2026-11-24T10:00:00.000Z","from":"2026-11-24T11:00:00.000Z","to":"2026-11-24T11:00:00.000Z","next":"https://h/x"}`, "is empty"},
		{`{"v":1,"until":"2026-11-24T12:00:00.000Z","from":"2026-11-24T09:00:00.000Z","to":"2026-11-24T11:00:00.000Z","next":"https://h/x"}`, "outside its window"},
		{`{"v":1,"until":"2026-11-24T08:00:00.000Z","from":"2026-11-24T09:00:00.000Z","to":"2026-11-24T11:00:00.000Z","next":"https://h/x"}`, "outside its window"},
		{`{"v":1,"until":"2026-11-24T10:00:00.000Z","from":"2026-11-24T09:00:00.000Z","to":"2026-11-24T11:00:00.000Z","next":"/relative"}`, "not an absolute"},
		{`{"v":1,"until":"2026-11-24T10:00:00.000Z","from":"2026-11-24T09:00:00.000Z","to":"2026-11-24T11:00:00.000Z","next":"ftp://h/x"}`, "not an absolute"},
		{`{"v":1,"until":"2026-11-24T10:00:00.000Z","from":"2026-11-24T09:00:00.000Z","to":"2026-11-24T11:00:00.000Z","next":"https://u:p@h/x"}`, "not an absolute"},
		{`{"v":1,"until":"` + strings.Repeat("9", maxCursorBytes) + `"}`, "more than a pingone cursor"},
	} {
		_, err := decodeCursor([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("decodeCursor(%.80s) = %v, want error containing %q", tt.in, err, tt.want)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add([]byte(`{"v":1,"until":"2026-11-24T10:00:00.000Z"}`))
	f.Add([]byte(`{"v":1,"until":"2026-11-24T10:00:00.000Z","from":"2026-11-24T09:59:00.000Z","to":"2026-11-24T10:30:00.000Z","next":"https://api.pingone.com/v1/environments/e/activities?cursor=x"}`))
	f.Add([]byte(`{"v":1,"until":"0000-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"v":1,"until":"9999-12-31T23:59:59.999999999Z"}`))
	f.Add([]byte(`{"v":1,"until":"2026-11-24T10:00:00Z","from":"2026-11-24T10:00:00Z","to":"2026-11-24T10:00:00.0001Z","next":"http://x"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCursor(b)
		if err != nil {
			return
		}
		if c.Until.IsZero() || c.Until.Location() != time.UTC || !c.Until.Equal(c.Until.Truncate(time.Millisecond)) {
			t.Fatalf("decoded a bad watermark: %+v", c)
		}
		if c.inWindow() && (!c.From.Before(c.To) || c.Until.Before(c.From) || !c.Until.Before(c.To)) {
			t.Fatalf("decoded an inconsistent window: %+v", c)
		}
		again, err := decodeCursor(c.encode())
		if err != nil {
			t.Fatalf("re-encoded cursor %s does not decode: %v", c.encode(), err)
		}
		if diff := cmp.Diff(c, again); diff != "" {
			t.Fatalf("cursor changed through encode/decode (-first +second):\n%s", diff)
		}
	})
}

func TestDescribe(t *testing.T) {
	s := &Source{}
	info, err := s.Describe(nil)
	if err != nil || !info.Watermark.IsZero() || info.MidWindow {
		t.Fatalf("Describe(nil) = %+v, %v", info, err)
	}
	if got, want := info.String(), "no checkpoint: the first poll starts at now - lookback"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}

	mid := cursor{Until: ms("2026-11-24T10:00:00Z"), From: ms("2026-11-24T09:59:00Z"), To: ms("2026-11-24T10:58:00Z"), Next: "https://h/n"}
	info, err = s.Describe(mid.encode())
	if err != nil {
		t.Fatal(err)
	}
	want := CursorInfo{Watermark: mid.Until, MidWindow: true, From: mid.From, To: mid.To}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("Describe(mid-window) (-want +got):\n%s", diff)
	}
	if got, want := info.String(), "watermark 2026-11-24T10:00:00.000Z, window [2026-11-24T09:59:00.000Z, 2026-11-24T10:58:00.000Z) in progress"; got != want {
		t.Errorf("String() = %q\nwant        %q", got, want)
	}

	info, err = s.Describe(cursor{Until: ms("2026-11-24T10:58:00Z")}.encode())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.String(), "watermark 2026-11-24T10:58:00.000Z, between windows"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}

	if _, err := s.Describe([]byte(`{"v":9}`)); err == nil || !strings.Contains(err.Error(), "pingone: describe cursor: cursor version 9") {
		t.Errorf("Describe(bad) error = %v", err)
	}
}

// TestDescribeJSON: the JSON of a described cursor has the documented
// snake_case keys and leaves zero values out.
func TestDescribeJSON(t *testing.T) {
	s := &Source{}
	for _, tc := range []struct {
		c    cursor
		want string
	}{
		{cursor{Until: ms("2026-11-24T10:58:00Z")}, `{"watermark":"2026-11-24T10:58:00Z"}`},
		{cursor{Until: ms("2026-11-24T10:00:00Z"), From: ms("2026-11-24T09:59:00Z"), To: ms("2026-11-24T10:58:00.5Z"), Next: "https://h/n"},
			`{"watermark":"2026-11-24T10:00:00Z","mid_window":true,"window_from":"2026-11-24T09:59:00Z","window_to":"2026-11-24T10:58:00.5Z"}`},
	} {
		info, err := s.Describe(tc.c.encode())
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(info)
		if err != nil || string(b) != tc.want {
			t.Errorf("json.Marshal(Describe) = %s, %v; want %s", b, err, tc.want)
		}
	}
}
