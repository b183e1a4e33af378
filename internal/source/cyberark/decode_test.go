package cyberark

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/source/window"
)

// cursor is a stored CyberArk cursor as the tests write and read it: the
// JSON of docs/sources/cyberark.md, encoded here by hand as earlier
// releases wrote it, so that the tests pin the bytes the window engine
// stores and show that cursors already on disk resume.
type cursor struct {
	Until time.Time
	From  time.Time
	To    time.Time
	Ref   string
	Exact bool
}

type cursorJSON struct {
	V     int    `json:"v"`
	Until string `json:"until"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
	Ref   string `json:"cursorRef,omitempty"`
	Exact bool   `json:"exact,omitempty"`
}

func (c cursor) inWindow() bool { return c.Ref != "" }

// encode writes c as CyberArk cursors have always been written.
func (c cursor) encode() source.Cursor {
	j := cursorJSON{V: 1, Until: formatTime(c.Until)}
	if c.inWindow() {
		j.From, j.To, j.Ref = formatTime(c.From), formatTime(c.To), c.Ref
	} else {
		j.Exact = c.Exact
	}
	b, err := json.Marshal(j)
	if err != nil {
		panic(err)
	}
	return b
}

// info is what Describe gives for c.
func (c cursor) info() window.Info {
	i := window.Info{Watermark: c.Until, Exact: c.Exact}
	if c.inWindow() {
		i.MidWindow, i.From, i.To = true, c.From, c.To
	}
	return i
}

// offlineSource is a source that never reaches an API, for decoding.
func offlineSource(tb testing.TB) *Source {
	h := &harness{base: "http://127.0.0.1:1", clock: &clock{t: testNow}}
	return h.source(tb, nil)
}

// goldenCursors are cursors as earlier releases stored them.
var goldenCursors = []struct {
	c    cursor
	json string
}{
	{cursor{Until: testNow, From: testNow.Add(-time.Hour), To: testNow.Add(time.Hour), Ref: "abc"},
		`{"v":1,"until":"2026-03-10T12:00:00Z","from":"2026-03-10T11:00:00Z","to":"2026-03-10T13:00:00Z","cursorRef":"abc"}`},
	{cursor{Until: testNow, Exact: true}, `{"v":1,"until":"2026-03-10T12:00:00Z","exact":true}`},
	{cursor{Until: testNow}, `{"v":1,"until":"2026-03-10T12:00:00Z"}`},
}

// TestStoredCursorsResume: every cursor an earlier release stored decodes
// to the same watermark, window and exactness.
func TestStoredCursorsResume(t *testing.T) {
	s := offlineSource(t)
	for _, g := range goldenCursors {
		if got := string(g.c.encode()); got != g.json {
			t.Fatalf("test encoder = %s, want %s", got, g.json)
		}
	}
	for _, c := range []cursor{
		{Until: testNow},
		{Until: time.Date(1999, 12, 31, 23, 59, 55, 0, time.UTC)}, // a synctest bubble's clock, minus a lookback
		{Until: testNow, Exact: true},
		{Until: testNow, From: testNow.Add(-2 * time.Minute), To: testNow.Add(time.Hour), Ref: "eyJxdWVyeSI6e319"},
		goldenCursors[0].c,
	} {
		got, err := s.Describe(c.encode())
		if err != nil {
			t.Fatalf("Describe(%s): %v", c.encode(), err)
		}
		if got != c.info() {
			t.Errorf("Describe(%s) = %+v, want %+v", c.encode(), got, c.info())
		}
	}
}

// TestCursorEncoding: the engine stores exactly the bytes earlier releases
// stored: mid-window, at the end of a window and exactly at an instant.
func TestCursorEncoding(t *testing.T) {
	h := newHarness(t, emulator.CyberArkOptions{}, AuthBasic)
	h.emu.Backlog(h.gen, tenantID, 3, testNow.Add(-50*time.Minute), testNow.Add(-40*time.Minute))
	s := h.source(t, func(c *Config) { c.PageSize = 1 })
	at := testNow.Add(-time.Hour)
	cur, err := s.CursorAt(at)
	if err != nil {
		t.Fatal(err)
	}
	if want := (cursor{Until: at, Exact: true}).encode(); string(cur) != string(want) {
		t.Errorf("CursorAt = %s, want %s", cur, want)
	}
	mid := 0
	for range 10 {
		p, err := s.Poll(context.Background(), cur)
		if err != nil {
			t.Fatal(err)
		}
		var j cursorJSON
		if err := json.Unmarshal(p.Next, &j); err != nil {
			t.Fatal(err)
		}
		want := cursor{Until: p.Watermark}
		if j.Ref != "" {
			want.From, want.To, want.Ref = at, testNow.Add(-2*time.Minute), j.Ref
			mid++
		}
		if string(p.Next) != string(want.encode()) {
			t.Errorf("stored %s, want %s", p.Next, want.encode())
		}
		cur = p.Next
		if !p.More {
			break
		}
	}
	if info, err := s.Describe(cur); err != nil || !info.Watermark.Equal(testNow.Add(-2*time.Minute)) || info.MidWindow || mid < 3 {
		t.Errorf("after the window: %+v, %v, after %d pages mid-window", info, err, mid)
	}
}

func TestDecodeCursorErrors(t *testing.T) {
	s := offlineSource(t)
	for _, in := range []string{
		`null`, `{}`, `{"v":2,"until":"2026-03-10T12:00:00Z"}`,
		`{"v":1,"until":"2026-03-10T12:00:00.5Z"}`,
		`{"v":1,"until":"2026-03-10T12:00:00Z","from":"2026-03-10T11:00:00Z"}`,
		`{"v":1,"until":"2026-03-10T12:00:00Z","from":"2026-03-10T13:00:00Z","to":"2026-03-10T14:00:00Z","cursorRef":"x"}`,
		`{"v":1,"until":"2026-03-10T12:00:00Z","from":"2026-03-10T11:00:00Z","to":"2026-03-10T11:00:00Z","cursorRef":"x"}`,
		`{"v":1,"until":"2026-03-10T12:00:00Z","from":"2026-03-10T11:00:00Z","to":"2026-03-10T13:00:00Z","cursorRef":"a\nb"}`,
	} {
		if c, err := s.Describe(source.Cursor(in)); err == nil {
			t.Errorf("Describe(%s) = %+v, want an error", in, c)
		}
		if _, err := s.Poll(context.Background(), source.Cursor(in)); !delivery.IsPermanent(err) || !strings.Contains(err.Error(), "checkpoint reset --source ca") {
			t.Errorf("Poll(%s) = %v, want a permanent error with the reset fix", in, err)
		}
	}
	// No stored cursor at all is the first poll's, never an error.
	if info, err := s.Describe(nil); err != nil || info != (window.Info{}) {
		t.Errorf("Describe(nil) = %+v, %v", info, err)
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add([]byte(cursor{Until: testNow}.encode()))
	f.Add([]byte(cursor{Until: testNow, From: testNow.Add(-time.Minute), To: testNow.Add(time.Minute), Ref: "abc"}.encode()))
	f.Add([]byte(`{"v":1}`))
	s := offlineSource(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := s.Describe(b)
		if err != nil || len(b) == 0 {
			return
		}
		var j cursorJSON
		if err := json.Unmarshal(b, &j); err != nil {
			t.Fatalf("the engine accepted a cursor that is not JSON: %s", b)
		}
		c := cursor{Until: info.Watermark, From: info.From, To: info.To, Exact: info.Exact}
		if info.MidWindow {
			c.Ref = j.Ref
		}
		again, err := s.Describe(c.encode())
		if err != nil || again != info {
			t.Fatalf("a decoded cursor does not round-trip: %+v → %v %+v", info, err, again)
		}
		if info.MidWindow && (info.Watermark.Before(info.From) || !info.Watermark.Before(info.To)) {
			t.Fatalf("decoded window is inconsistent: %+v", info)
		}
	})
}

func TestDecodeResults(t *testing.T) {
	body := `{"data":[{"uuid":"u1","tenantId":"t","timestamp":1739269449904,"x":null},` +
		`{"uuid":"u2","tenantId":null,"timestamp":"1739269449905"}],"paging":{"cursor":{"cursorRef":"next"}}}`
	r, err := decodeResults([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if r.Next != "next" || len(r.Events) != 2 || r.Events[0].UUID != "u1" || r.Events[0].Tenant != "t" ||
		r.Events[0].Time.UnixMilli() != 1739269449904 || r.Events[1].Tenant != "" {
		t.Fatalf("decoded %+v", r)
	}
	if string(r.Events[0].Data) != `{"uuid":"u1","tenantId":"t","timestamp":1739269449904,"x":null}` {
		t.Errorf("raw event changed: %s", r.Events[0].Data)
	}
	for _, bad := range []string{
		`{}`, `{"data":null}`, `{"data":[1]}`, `{"data":[{"timestamp":1739269449904}]}`,
		`{"data":[{"uuid":"","timestamp":1739269449904}]}`, `{"data":[{"uuid":"u","timestamp":1.5}]}`,
		`{"data":[{"uuid":"u","timestamp":"2025-01-01"}]}`, `{"data":[{"uuid":"u","timestamp":-12}]}`,
		`{"data":[{"uuid":"u","timestamp":1739269449904}`,
	} {
		if _, err := decodeResults([]byte(bad)); err == nil {
			t.Errorf("decodeResults(%s): want an error", bad)
		}
	}
}

// TestDecodeSamples decodes the reference samples as one results page.
func TestDecodeSamples(t *testing.T) {
	b, err := os.ReadFile("testdata/events.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeResults([]byte(`{"data":` + string(b) + `,"paging":{"cursor":{"cursorRef":"x"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	var raw []json.RawMessage
	json.Unmarshal(b, &raw)
	if len(r.Events) != len(raw) || len(raw) < 3 {
		t.Fatalf("%d events, want %d", len(r.Events), len(raw))
	}
	for i, e := range r.Events {
		if string(e.Data) != string(raw[i]) {
			t.Errorf("event %d changed", i)
		}
		if !strings.Contains(string(e.Data), `"timestamp":`+jsonInt(e.Time.UnixMilli())) {
			t.Errorf("event %d: time %v does not match its timestamp", i, e.Time)
		}
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func FuzzDecodeResults(f *testing.F) {
	f.Add([]byte(`{"data":[{"uuid":"u1","tenantId":"t","timestamp":1739269449904}],"paging":{"cursor":{"cursorRef":"n"}}}`))
	f.Add([]byte(`{"data":[],"paging":{"cursor":{"cursorRef":""}}}`))
	f.Add([]byte(`{"data":[{"uuid":"u","timestamp":"1739269449904"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeResults(b)
		if err != nil {
			return
		}
		for _, e := range r.Events {
			if e.UUID == "" || !json.Valid(e.Data) || e.Time.IsZero() {
				t.Fatalf("accepted an unusable event: %+v", e)
			}
		}
	})
}

// FuzzCursorEncodeDecode checks that every cursor the source can write, at
// any clock from 1970 to 9999, reads back the same.
func FuzzCursorEncodeDecode(f *testing.F) {
	f.Add(int64(0), int64(60), int64(3600), "ref")
	f.Add(testNow.Unix(), int64(120), int64(6*3600), "eyJxdWVyeSI6e319")
	s := offlineSource(f)
	f.Fuzz(func(t *testing.T, until, back, ahead int64, ref string) {
		const maxSec = 253402300799 - 7*24*3600
		if until < 3650*24*3600 || until > maxSec || back < 0 || back > 3650*24*3600 || ahead < 1 || ahead > 24*3600 {
			return
		}
		u := time.Unix(until, 0).UTC()
		c := cursor{Until: u, From: u.Add(-time.Duration(back) * time.Second), To: u.Add(time.Duration(ahead) * time.Second), Ref: ref}
		// A cursorRef comes out of a JSON answer: valid UTF-8.
		if ref == "" || !utf8.ValidString(ref) || strings.ContainsFunc(ref, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			c = cursor{Until: u}
		}
		got, err := s.Describe(c.encode())
		if err != nil || got != c.info() {
			t.Fatalf("%+v: read back %+v, %v", c, got, err)
		}
	})
}

func TestDescribe(t *testing.T) {
	s := offlineSource(t)
	for _, tc := range []struct {
		c    cursor
		want string
	}{
		{cursor{Until: testNow}, "watermark 2026-03-10T12:00:00Z, between windows"},
		{cursor{Until: testNow, Exact: true}, "watermark 2026-03-10T12:00:00Z, between windows; the next window starts exactly there"},
		{cursor{Until: testNow, From: testNow.Add(-time.Minute), To: testNow.Add(time.Hour), Ref: "r"},
			"watermark 2026-03-10T12:00:00Z, window [2026-03-10T11:59:00Z, 2026-03-10T13:00:00Z) in progress"},
	} {
		info, err := s.Describe(tc.c.encode())
		if err != nil || info.String() != tc.want {
			t.Errorf("Describe = %q, %v; want %q", info.String(), err, tc.want)
		}
	}
	if info, err := s.Describe(nil); err != nil || !info.Watermark.IsZero() {
		t.Errorf("Describe(nil) = %+v, %v", info, err)
	}
	if _, err := s.Describe([]byte("{")); err == nil {
		t.Error("Describe accepted a damaged cursor")
	}
}

func BenchmarkDecodeResults(b *testing.B) {
	g := emulator.NewCyberArkGenerator(1)
	var body bytes.Buffer
	body.WriteString(`{"data":[`)
	for i := range 1000 {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(g.Event(tenantID, testNow).JSON)
	}
	body.WriteString(`],"paging":{"cursor":{"cursorRef":"eyJxdWVyeSI6e319"}}}`)
	b.SetBytes(int64(body.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeResults(body.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}

// TestDescribeJSON: the JSON of a described cursor has the documented
// snake_case keys and leaves zero values out.
func TestDescribeJSON(t *testing.T) {
	s := offlineSource(t)
	for _, tc := range []struct {
		c    cursor
		want string
	}{
		{cursor{Until: testNow}, `{"watermark":"2026-03-10T12:00:00Z"}`},
		{cursor{Until: testNow, Exact: true}, `{"watermark":"2026-03-10T12:00:00Z","exact":true}`},
		{cursor{Until: testNow, From: testNow.Add(-time.Minute), To: testNow.Add(time.Hour), Ref: "r"},
			`{"watermark":"2026-03-10T12:00:00Z","mid_window":true,"window_from":"2026-03-10T11:59:00Z","window_to":"2026-03-10T13:00:00Z"}`},
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
