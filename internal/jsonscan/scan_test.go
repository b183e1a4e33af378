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

func TestEndValue(t *testing.T) {
	for _, tt := range []struct {
		in   string
		end  int
		ends bool
	}{
		{`"abc"`, 5, true},
		{`"abc\"`, 6, false}, // the last quote is escaped
		{`"` + strings.Repeat("x", 16) + `\`, 18, false},
		{`{"a":"x"`, 8, false},
		{`{"a":"}"}`, 9, true},
		{`[1,[2]]x`, 7, true},
		{`12`, 2, true},
		{`12,`, 2, true},
		{``, 0, false},
		{`,`, 0, false},
		{`}`, 0, false},
	} {
		end, ends := EndValue([]byte(tt.in), 0)
		if end != tt.end || ends != tt.ends {
			t.Errorf("EndValue(%q) = %d, %v; want %d, %v", tt.in, end, ends, tt.end, tt.ends)
		}
		if got := SkipValue([]byte(tt.in), 0); got != end {
			t.Errorf("SkipValue(%q) = %d, EndValue %d", tt.in, got, end)
		}
	}
}

// FuzzEndValue: a value of valid JSON ends where encoding/json says, and
// whatever EndValue reports as ended on other input is balanced: cutting
// it off and asking again gives the same end.
func FuzzEndValue(f *testing.F) {
	for _, s := range []string{`{"a":[1,"]"]}`, `"\\"`, `"\"`, `[`, `1 `, `{"k":"` + strings.Repeat("é", 9) + `"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		end, ends := EndValue(b, 0)
		if end > len(b) {
			t.Fatalf("EndValue(%q) = %d, past the end", s, end)
		}
		if json.Valid(b) && len(b) > 0 && b[0] != ' ' && b[len(b)-1] != ' ' && b[len(b)-1] != '\n' && b[len(b)-1] != '\t' && b[len(b)-1] != '\r' && b[0] != '\n' && b[0] != '\t' && b[0] != '\r' {
			if !ends || end != len(b) {
				t.Fatalf("EndValue(%q) = %d, %v on valid JSON", s, end, ends)
			}
		}
		if ends {
			if e2, ok := EndValue(b[:end], 0); !ok || e2 != end {
				t.Fatalf("EndValue(%q[:%d]) = %d, %v; the value no longer ends", s, end, e2, ok)
			}
		}
	})
}
