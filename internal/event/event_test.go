package event

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestAppendLine(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.FixedZone("x", 3600))
	tests := []struct {
		name string
		ev   Raw
		want string
	}{
		{"plain", Raw{Source: "p", Provider: "pingone", Tenant: "t", ID: "1", Time: at, Data: json.RawMessage(`{"id":"1"}`)},
			`{"source":"p","provider":"pingone","tenant":"t","id":"1","time":"2026-11-25T09:00:00.123Z","raw":{"id":"1"}}` + "\n"},
		{"escaping", Raw{Source: "p", ID: "a\"b\\c\x01é", Time: at, Data: json.RawMessage(`{"id":"x"}`)},
			`{"source":"p","provider":"","tenant":"","id":"a\"b\\c\u0001é","time":"2026-11-25T09:00:00.123Z","raw":{"id":"x"}}` + "\n"},
		{"multi-line raw is compacted", Raw{Source: "p", ID: "1", Time: at, Data: json.RawMessage("{\n \"id\" : \"1\"\n}")},
			`{"source":"p","provider":"","tenant":"","id":"1","time":"2026-11-25T09:00:00.123Z","raw":{"id":"1"}}` + "\n"},
	}
	for _, tt := range tests {
		got, err := AppendLine(nil, &tt.ev)
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: got %s (%v)\nwant %s", tt.name, got, err, tt.want)
		}
		var l Line
		if err := json.Unmarshal(got, &l); err != nil || l.ID != tt.ev.ID {
			t.Errorf("%s: line does not decode back: %v, id %q", tt.name, err, l.ID)
		}
	}
	if _, err := AppendLine(nil, &Raw{ID: "1", Data: json.RawMessage("{\n")}); err == nil {
		t.Error("invalid multi-line data accepted")
	}
}

// FuzzAppendJSONString checks the appender against encoding/json: its
// output is valid JSON that decodes to what encoding/json's output decodes
// to (the same string, invalid UTF-8 replaced alike), for every input.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote \" and \\", "tab\tnl\ncr\r\x00\x1f", "é ü 日本", "\xff\xfe bad", "\u2028\u2029", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		got := AppendJSONString(nil, s)
		var a, b string
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("AppendJSONString(%q) = %s, not a JSON string: %v", s, got, err)
		}
		if err := json.Unmarshal(want.Bytes(), &b); err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Fatalf("AppendJSONString(%q) = %s decodes to %q; encoding/json's %s to %q", s, got, a, want.String(), b)
		}
		if gb := AppendJSONBytes(nil, []byte(s)); !bytes.Equal(gb, got) {
			t.Fatalf("AppendJSONBytes(%q) = %s, AppendJSONString %s", s, gb, got)
		}
		if bytes.ContainsAny(got, "\n\r") {
			t.Fatalf("AppendJSONString(%q) = %s spans lines", s, got)
		}
	})
}

// TestAppendJSONBytesAllocs: the byte-slice form appends without
// allocating, like the string form, runes past ASCII included.
func TestAppendJSONBytesAllocs(t *testing.T) {
	in := []byte("quote \" tab\t é 日本 \xff \u2028 😀")
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = AppendJSONBytes(buf[:0], in) }); n != 0 {
		t.Errorf("AppendJSONBytes allocates %v times per call", n)
	}
}
