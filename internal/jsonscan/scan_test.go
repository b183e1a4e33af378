package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSkipValue(t *testing.T) {
	long := `"` + strings.Repeat("abcdefgh", 5) + `\"` + strings.Repeat(`\\`, 9) + `"`
	for _, tt := range []struct {
		in   string
		want int // index past the first value
	}{
		{`"a" x`, 3},
		{long + `,`, len(long)},
		{`{"a":"}","b":[1,{"c":"]"}]} ,`, 27},
		{`[1, 2] x`, 6},
		{`-12.5e3,`, 7},
		{`true}`, 4},
		{`null `, 4},
		{`{"open":`, 8}, // does not end: len(b)
		{`"unterminated\"`, 15},
	} {
		if got := SkipValue([]byte(tt.in), 0); got != tt.want {
			t.Errorf("SkipValue(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
	if got := SkipSpace([]byte(" \t\r\n x"), 0); got != 5 {
		t.Errorf("SkipSpace = %d, want 5", got)
	}
	if got := SkipSpace([]byte("\f"), 0); got != 0 {
		t.Errorf("SkipSpace treats form feed as JSON white space")
	}
}

// FuzzValidString checks ValidString against encoding/json on every
// string token: the same verdict, and the same end as SkipString.
func FuzzValidString(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u00e9\n"`, `"` + strings.Repeat("x", 20) + `\"y"`, `"\x"`, "\"a\x01\"", `"é"`, `"\ud800"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		if len(b) == 0 || b[0] != '"' {
			return
		}
		end, ascii, ok := ValidString(b, 0)
		if ok && end > len(b) {
			t.Fatalf("ValidString(%q) ends at %d, past %d", s, end, len(b))
		}
		if ok && ascii && !utf8.Valid(b[:end]) {
			t.Fatalf("ValidString(%q) calls non-ASCII bytes ASCII", s)
		}
		tok := b
		if ok {
			tok = b[:end]
		}
		valid := json.Valid(tok) && utf8.Valid(tok)
		if ok != valid && !(ok && !ascii && !utf8.Valid(tok)) {
			t.Fatalf("ValidString(%q) = %v, encoding/json says %v", s, ok, valid)
		}
		if ok {
			if se := SkipString(b, 0); se != end {
				t.Fatalf("SkipString(%q) = %d, ValidString %d", s, se, end)
			}
		}
	})
}
