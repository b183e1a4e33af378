package window

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLayoutFor(t *testing.T) {
	for prec, want := range map[time.Duration]string{
		time.Second:            "2006-01-02T15:04:05Z",
		time.Millisecond:       "2006-01-02T15:04:05.000Z",
		time.Microsecond:       "2006-01-02T15:04:05.000000Z",
		100 * time.Nanosecond:  "2006-01-02T15:04:05.0000000Z",
		time.Nanosecond:        "2006-01-02T15:04:05.000000000Z",
		10 * time.Millisecond:  "2006-01-02T15:04:05.00Z",
		250 * time.Millisecond: "2006-01-02T15:04:05.00Z",
	} {
		if got := layoutFor(prec); got != want {
			t.Errorf("layoutFor(%v) = %q, want %q", prec, got, want)
		}
	}
}

func testCodec(posKey string, prec time.Duration) codec {
	cfg := Config{Provider: "test", Precision: prec, PosKey: posKey}
	return newCodec(&cfg)
}

func TestCursorEncoding(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		k    codec
		c    cursor
		want string
	}{
		{testCodec(PosNext, time.Millisecond), cursor{Until: at("2026-11-24T10:00:00.1Z"), From: at("2026-11-24T09:59:00.1Z"), To: at("2026-11-24T11:00:00Z"), Pos: "https://h/n"},
			`{"v":1,"until":"2026-11-24T10:00:00.100Z","from":"2026-11-24T09:59:00.100Z","to":"2026-11-24T11:00:00.000Z","next":"https://h/n"}`},
		{testCodec(PosNext, time.Millisecond), cursor{Until: at("2026-11-24T10:00:00Z")}, `{"v":1,"until":"2026-11-24T10:00:00.000Z"}`},
		{testCodec(PosCursorRef, time.Second), cursor{Until: at("2026-03-10T12:00:00Z"), From: at("2026-03-10T11:00:00Z"), To: at("2026-03-10T13:00:00Z"), Pos: "abc"},
			`{"v":1,"until":"2026-03-10T12:00:00Z","from":"2026-03-10T11:00:00Z","to":"2026-03-10T13:00:00Z","cursorRef":"abc"}`},
		{testCodec(PosCursorRef, time.Second), cursor{Until: at("2026-03-10T12:00:00Z"), Exact: true}, `{"v":1,"until":"2026-03-10T12:00:00Z","exact":true}`},
		{testCodec(PosNext, 100*time.Nanosecond), cursor{Until: at("2026-03-10T12:00:00.1234567Z")}, `{"v":1,"until":"2026-03-10T12:00:00.1234567Z"}`},
	} {
		got := string(tc.k.encode(tc.c))
		if got != tc.want {
			t.Errorf("encode(%+v) = %s, want %s", tc.c, got, tc.want)
			continue
		}
		back, err := tc.k.decode([]byte(got))
		if err != nil || back != tc.c {
			t.Errorf("decode(%s) = %+v, %v; want %+v", got, back, err, tc.c)
		}
	}
}

func TestCursorRejects(t *testing.T) {
	ms := testCodec(PosNext, time.Millisecond)
	ms.checkPos = func(p string) error {
		if !strings.HasPrefix(p, "https://") {
			return errors.New("not an absolute https URL")
		}
		return nil
	}
	sec := testCodec(PosCursorRef, time.Second)
	for _, tc := range []struct {
		k    codec
		in   string
		want string
	}{
		{ms, ``, "not a test cursor"},
		{ms, `null`, "version 0"},
		{ms, `{"until":"2026-11-24T10:00:00.000Z"}`, "version 0"},
		{ms, `{"v":2,"until":"2026-11-24T10:00:00.000Z"}`, "version 2"},
		{ms, `{"v":1}`, "no until"},
		{ms, `{"v":1,"until":"0001-01-01T00:00:00Z"}`, "no until"},
		{ms, `{"v":1,"until":"1969-12-31T23:59:59Z"}`, "out of range"},
		{ms, `{"v":1,"until":"2026-11-24T10:00:00+01:00"}`, "not a UTC timestamp"},
		{ms, `{"v":1,"until":"2026-11-24T10:00:00.0001Z"}`, "finer than"},
		{sec, `{"v":1,"until":"2026-03-10T12:00:00.5Z"}`, "finer than"},
		{ms, `{"v":1,"until":"2026-11-24T10:00:00.000Z","next":"https://h/x"}`, "partial window"},
		{ms, `{"v":1,"until":"2026-11-24T10:00:00.000Z","from":"2026-11-24T09:00:00.000Z","next":"https://h/x"}`, "partial window"},
		{ms, `{"v":1,"until":"2026-11-24T10:00:00.000Z","from":"2026-11-24T11:00:00.000Z","to":"2026-11-24T11:00:00.000Z","next":"https://h/x"}`, "is empty"},
		{ms, `{"v":1,"until":"2026-11-24T12:00:00.000Z","from":"2026-11-24T09:00:00.000Z","to":"2026-11-24T11:00:00.000Z","next":"https://h/x"}`, "outside its window"},
		{ms, `{"v":1,"until":"2026-11-24T10:00:00.000Z","from":"2026-11-24T09:00:00.000Z","to":"2026-11-24T11:00:00.000Z","next":"/relative"}`, "not an absolute https URL"},
		{ms, `{"v":1,"until":"2026-11-24T10:00:00.000Z","from":"2026-11-24T09:00:00.000Z","to":"2026-11-24T11:00:00.000Z","cursorRef":"x"}`, `not under "next"`},
		{sec, `{"v":1,"until":"2026-03-10T12:00:00Z","from":"2026-03-10T11:00:00Z","to":"2026-03-10T13:00:00Z","next":"x"}`, `not under "cursorRef"`},
		{sec, `{"v":1,"until":"2026-03-10T12:00:00Z","from":"2026-03-10T11:00:00Z","to":"2026-03-10T13:00:00Z","cursorRef":"a\nb"}`, "control characters"},
		{sec, `{"v":1,"until":"2026-03-10T12:00:00Z","from":"2026-03-10T11:00:00Z","to":"2026-03-10T13:00:00Z","cursorRef":"x","exact":true}`, "exact with a window"},
		{ms, `{"v":1,"until":"` + strings.Repeat("9", maxCursorBytes) + `"}`, "more than a test cursor can be"},
	} {
		_, err := tc.k.decode([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			if len(tc.in) > 200 {
				tc.in = tc.in[:200] + "…"
			}
			t.Errorf("decode(%s) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

// FuzzCursor checks that decoding never panics, and that every cursor it
// accepts encodes to one that decodes to the same cursor.
func FuzzCursor(f *testing.F) {
	f.Add([]byte(`{"v":1,"until":"2026-11-24T10:00:00.000Z"}`), false)
	f.Add([]byte(`{"v":1,"until":"2026-11-24T10:00:00.000Z","from":"2026-11-24T09:59:00.000Z","to":"2026-11-24T10:30:00.000Z","next":"https://api/x?cursor=y"}`), false)
	f.Add([]byte(`{"v":1,"until":"2026-03-10T12:00:00Z","from":"2026-03-10T11:00:00Z","to":"2026-03-10T13:00:00Z","cursorRef":"abc"}`), true)
	f.Add([]byte(`{"v":1,"until":"2026-03-10T12:00:00Z","exact":true}`), true)
	f.Fuzz(func(t *testing.T, b []byte, ref bool) {
		k := testCodec(PosNext, time.Millisecond)
		if ref {
			k = testCodec(PosCursorRef, time.Second)
		}
		c, err := k.decode(b)
		if err != nil {
			return
		}
		again, err := k.decode(k.encode(c))
		if err != nil {
			t.Fatalf("decode(encode(%+v)) failed: %v", c, err)
		}
		if again != c {
			t.Fatalf("round trip changed the cursor: %+v then %+v", c, again)
		}
	})
}
