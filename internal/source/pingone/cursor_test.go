package pingone

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/source/window"
)

func ms(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// cursor is a stored PingOne cursor as the tests write and read it: the
// JSON of docs/sources/pingone.md, encoded here by hand as earlier
// releases wrote it, so that the tests pin the bytes the window engine
// stores and show that cursors already on disk resume.
//
// Until is the watermark; while a window is in progress, From and To bound
// it and Next is the link of its next page.
type cursor struct {
	Until time.Time
	From  time.Time
	To    time.Time
	Next  string
}

type cursorJSON struct {
	V     int    `json:"v"`
	Until string `json:"until"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
	Next  string `json:"next,omitempty"`
}

func (c cursor) inWindow() bool { return c.Next != "" }

// encode writes c as PingOne cursors have always been written.
func (c cursor) encode() source.Cursor {
	j := cursorJSON{V: 1, Until: formatTime(c.Until)}
	if c.inWindow() {
		j.From, j.To, j.Next = formatTime(c.From), formatTime(c.To), c.Next
	}
	b, err := json.Marshal(j)
	if err != nil {
		panic(err)
	}
	return b
}

// decodeCursor reads a cursor the source stored, and fails unless it is
// byte for byte what encode writes for it: the stored form has not changed.
func decodeCursor(b source.Cursor) (cursor, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j cursorJSON
	if err := dec.Decode(&j); err != nil {
		return cursor{}, fmt.Errorf("not a pingone cursor: %w", err)
	}
	if j.V != 1 {
		return cursor{}, fmt.Errorf("version %d", j.V)
	}
	var c cursor
	for _, f := range []struct {
		dst *time.Time
		v   string
	}{{&c.Until, j.Until}, {&c.From, j.From}, {&c.To, j.To}} {
		if f.v == "" {
			continue
		}
		t, err := time.Parse(timeLayout, f.v)
		if err != nil {
			return cursor{}, err
		}
		*f.dst = t.UTC()
	}
	c.Next = j.Next
	if again := c.encode(); !bytes.Equal(again, b) {
		return cursor{}, fmt.Errorf("stored as %s, not as %s", b, again)
	}
	return c, nil
}

// goldenCursors are cursors as earlier releases stored them.
var goldenCursors = []struct {
	c    cursor
	json string
}{
	{cursor{Until: ms("2026-11-24T10:00:00.1Z"), From: ms("2026-11-24T09:59:00.1Z"), To: ms("2026-11-24T11:00:00Z"), Next: "https://h/n"},
		`{"v":1,"until":"2026-11-24T10:00:00.100Z","from":"2026-11-24T09:59:00.100Z","to":"2026-11-24T11:00:00.000Z","next":"https://h/n"}`},
	{cursor{Until: ms("2026-11-24T10:00:00Z")}, `{"v":1,"until":"2026-11-24T10:00:00.000Z"}`},
}

// TestStoredCursorsResume: every cursor an earlier release stored decodes
// to the same watermark and window.
func TestStoredCursorsResume(t *testing.T) {
	s := newTestSource(t, "https://h", nil, func() time.Time { return ms("2026-11-24T11:02:00Z") }, nil)
	stored := []string{
		`{"v":1,"until":"2026-11-24T10:00:00.000Z","from":"2026-11-24T09:00:00.000Z","to":"2026-11-24T11:00:00.000Z","next":"https://api.pingone.com/v1/environments/e/activities?cursor=x"}`,
	}
	for _, g := range goldenCursors {
		stored = append(stored, g.json)
	}
	for _, c := range []cursor{
		{Until: ms("2026-11-24T10:00:00.123Z")},
		{Until: ms("2026-11-24T10:00:00Z"), From: ms("2026-11-24T09:59:00Z"), To: ms("2026-11-24T11:00:00.999Z"),
			Next: "https://api.pingone.eu/v1/environments/e/activities?cursor=abc%3D&limit=1000"},
		{Until: ms("2026-11-24T09:59:00Z"), From: ms("2026-11-24T09:59:00Z"), To: ms("2026-11-24T09:59:00.001Z"),
			Next: "http://127.0.0.1:9/x"},
	} {
		stored = append(stored, string(c.encode()))
	}
	for _, b := range stored {
		c, err := decodeCursor([]byte(b))
		if err != nil {
			t.Fatalf("test decoder: %s: %v", b, err)
		}
		info, err := s.Describe([]byte(b))
		if err != nil {
			t.Fatalf("Describe(%s): %v", b, err)
		}
		want := window.Info{Watermark: c.Until, MidWindow: c.inWindow(), From: c.From, To: c.To}
		if diff := cmp.Diff(want, info); diff != "" {
			t.Errorf("Describe(%s) (-want +got):\n%s", b, diff)
		}
	}
}

// roundTrip answers requests with h, in memory.
type roundTrip struct{ h http.Handler }

func (rt roundTrip) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	w := httptest.NewRecorder()
	rt.h.ServeHTTP(w, r)
	resp := w.Result()
	resp.Request = r
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// TestCursorEncoding: the engine stores exactly the bytes earlier releases
// stored, between windows and in the middle of one.
func TestCursorEncoding(t *testing.T) {
	for _, g := range goldenCursors {
		if got := string(g.c.encode()); got != g.json {
			t.Fatalf("test encoder = %s, want %s", got, g.json)
		}
	}
	// now - settle_delay is the golden window's end, 11:00:00.000.
	now := ms("2026-11-24T11:02:00Z")
	f := newFakeAPI()
	f.override = func(w http.ResponseWriter, r *http.Request, n int) bool {
		fmt.Fprint(w, `{"_links":{"next":{"href":"https://h/n"}},"_embedded":{"activities":[]}}`)
		return true
	}
	s := newTestSource(t, "https://h", &http.Client{Transport: roundTrip{f}}, func() time.Time { return now }, nil)
	mid := goldenCursors[0]
	p, err := s.Poll(t.Context(), cursor{Until: mid.c.Until}.encode())
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Next); got != mid.json {
		t.Errorf("stored mid-window cursor = %s\nwant                         %s", got, mid.json)
	}
	cur, err := s.CursorAt(ms("2026-11-24T10:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(cur); got != goldenCursors[1].json {
		t.Errorf("stored cursor between windows = %s, want %s", got, goldenCursors[1].json)
	}
}

func TestDecodeCursorErrors(t *testing.T) {
	s := newTestSource(t, "https://h", nil, func() time.Time { return testNow }, nil)
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
		{`{"v":1,"until":"` + strings.Repeat("9", 256<<10) + `"}`, "more than a pingone cursor"},
	} {
		if tt.in == `` {
			// No stored cursor at all is the first poll's, never an error.
			if info, err := s.Describe(nil); err != nil || info != (window.Info{}) {
				t.Errorf("Describe(nil) = %+v, %v", info, err)
			}
			continue
		}
		_, err := s.Describe([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Describe(%.80s) = %v, want error containing %q", tt.in, err, tt.want)
		}
		_, err = s.Poll(t.Context(), []byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "checkpoint reset --source p1") {
			t.Errorf("Poll(%.80s) = %v, want the reset fix for an error containing %q", tt.in, err, tt.want)
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
	s := newTestSource(f, "https://h", nil, func() time.Time { return testNow }, nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := s.Describe(b)
		if err != nil || len(b) == 0 {
			return // no cursor is the first poll's
		}
		if info.Watermark.IsZero() || info.Watermark.Location() != time.UTC || !info.Watermark.Equal(info.Watermark.Truncate(time.Millisecond)) {
			t.Fatalf("decoded a bad watermark: %+v", info)
		}
		if info.MidWindow && (!info.From.Before(info.To) || info.Watermark.Before(info.From) || !info.Watermark.Before(info.To)) {
			t.Fatalf("decoded an inconsistent window: %+v", info)
		}
		if info.Exact {
			return // a cursor this source never writes, accepted as the engine reads it
		}
		var j cursorJSON
		if err := json.Unmarshal(b, &j); err != nil {
			t.Fatalf("the engine accepted a cursor that is not JSON: %s", b)
		}
		c := cursor{Until: info.Watermark, From: info.From, To: info.To, Next: j.Next}
		again, err := s.Describe(c.encode())
		if err != nil {
			t.Fatalf("re-encoded cursor %s does not decode: %v", c.encode(), err)
		}
		if diff := cmp.Diff(info, again); diff != "" {
			t.Fatalf("cursor changed through encode/decode (-first +second):\n%s", diff)
		}
	})
}

func TestDescribe(t *testing.T) {
	s := newTestSource(t, "https://h", nil, func() time.Time { return testNow }, nil)
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
	want := window.Info{Watermark: mid.Until, MidWindow: true, From: mid.From, To: mid.To}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("Describe(mid-window) (-want +got):\n%s", diff)
	}
	if got, want := info.String(), "watermark 2026-11-24T10:00:00Z, window [2026-11-24T09:59:00Z, 2026-11-24T10:58:00Z) in progress"; got != want {
		t.Errorf("String() = %q\nwant        %q", got, want)
	}

	info, err = s.Describe(cursor{Until: ms("2026-11-24T10:58:00Z")}.encode())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.String(), "watermark 2026-11-24T10:58:00Z, between windows"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}

	if _, err := s.Describe([]byte(`{"v":9}`)); err == nil || !strings.Contains(err.Error(), "pingone: describe cursor: cursor version 9") {
		t.Errorf("Describe(bad) error = %v", err)
	}
}

// TestDescribeJSON: the JSON of a described cursor has the documented
// snake_case keys and leaves zero values out.
func TestDescribeJSON(t *testing.T) {
	s := newTestSource(t, "https://h", nil, func() time.Time { return testNow }, nil)
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

// TestDecoderRefusesOtherBytes: the tests' decoder fails on a cursor not
// written exactly as encode writes it, so a change of the stored form
// fails every test that reads a stored cursor.
func TestDecoderRefusesOtherBytes(t *testing.T) {
	for _, in := range []string{
		`{"v":1,"until":"2026-11-24T10:00:00Z"}`,
		`{"until":"2026-11-24T10:00:00.000Z","v":1}`,
		`{"v":1,"until":"2026-11-24T10:00:00.000Z","exact":true}`,
	} {
		if _, err := decodeCursor([]byte(in)); err == nil {
			t.Errorf("decodeCursor(%s) accepted another encoding", in)
		}
	}
	if _, err := decodeCursor([]byte(goldenCursors[0].json)); err != nil {
		t.Error(errors.Join(errors.New("decodeCursor refused a golden cursor"), err))
	}
}
