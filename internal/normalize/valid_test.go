package normalize

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/auditrelay/auditrelay/internal/jsonscan"
)

// FuzzValid checks validValue against encoding/json.Valid.
func FuzzValid(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,-0.5e+3,true,false,null,"\u00e9\n"]}`, `[01]`, `{"a":}`, `"\x01"`, `1.`, `-`, `{"a":1,}`, "\"\xff\"", `"\ud800"`, ` {"a" : [ ] } `} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		end, _, ok := validValue(b, 0, 0, nil, 0)
		got := ok && jsonscan.SkipSpace(b, end) == len(b)
		if want := json.Valid(b); got != want {
			t.Fatalf("validValue(%q) = %v, json.Valid = %v", s, got, want)
		}
	})
}

// FuzzSkipValue checks the non-validating skipper against the validator:
// on valid JSON both end at the same byte.
func FuzzSkipValue(f *testing.F) {
	for _, s := range []string{`{"a":"\\\"x"}`, `["` + strings.Repeat(`\\`, 13) + `\"", 1]`, `"` + strings.Repeat("a", 30) + `\\"`, `{"k":[{"x":"y\\\\"},2]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		end, _, ok := validValue(b, 0, 0, nil, 0)
		if !ok || jsonscan.SkipSpace(b, end) != len(b) {
			return
		}
		start := jsonscan.SkipSpace(b, 0)
		if got := jsonscan.SkipValue(b, start); got != end {
			t.Fatalf("jsonscan.SkipValue(%q) ends at %d, validValue at %d", s, got, end)
		}
	})
}

// FuzzValidTop checks the top-level validator against encoding/json.Valid
// and its recorded members against the scanning iterator.
func FuzzValidTop(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":{"c":[1,2]}}`, `{"a":1,}`, `{"a":1} `, `{"a" : "x" , "b":null}`, `{"a":1}{`} {
		f.Add(s, uint8(2))
	}
	f.Fuzz(func(t *testing.T, s string, n uint8) {
		b := []byte(s)
		if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
			return // prepare hands validTop trimmed objects only
		}
		top, _, ok := validTop(b, make([]member, 0, int(n%8)))
		if want := json.Valid(b); ok != want {
			t.Fatalf("validTop(%q) = %v, json.Valid = %v", s, ok, want)
		}
		if !ok || top == nil {
			return
		}
		it := objectMembers(b)
		for i := 0; ; i++ {
			k, v, more := it.next()
			if !more {
				if i != len(top) {
					t.Fatalf("%d members recorded, %d scanned", len(top), i)
				}
				return
			}
			if i >= len(top) || string(b[top[i].k0:top[i].k1]) != string(k) || string(b[top[i].v0:top[i].v1]) != string(v) {
				t.Fatalf("member %d: recorded %q, scanned %q:%q", i, top, k, v)
			}
		}
	})
}

// TestStringScannersAtEveryOffset puts each byte the string scanners stop
// at, and a non-ASCII one, at every offset of strings longer than a word,
// and checks both scanners against encoding/json.
func TestStringScannersAtEveryOffset(t *testing.T) {
	for _, special := range []string{`\"`, `\\`, `\u00e9`, `\n`, "\x01", "\x1f", "é", "\xff", `"`, `\`, `\u00`, `\x`} {
		for n := range 20 {
			for tail := range 12 {
				s := `"` + strings.Repeat("a", n) + special + strings.Repeat("b", tail) + `"`
				b := []byte(s)
				end, ascii, ok := validValue(b, 0, 0, nil, 0)
				valid := ok && end == len(b)
				if want := json.Valid(b); valid != want {
					t.Fatalf("validValue(%q) = %v, json.Valid = %v", s, valid, want)
				}
				if !valid {
					continue
				}
				if wantASCII := !strings.ContainsFunc(s, func(r rune) bool { return r >= 0x80 }); ascii != wantASCII {
					t.Fatalf("validValue(%q): ascii %v, want %v", s, ascii, wantASCII)
				}
				if got := jsonscan.SkipValue(b, 0); got != end {
					t.Fatalf("jsonscan.SkipValue(%q) ends at %d, validValue at %d", s, got, end)
				}
			}
		}
	}
}

// FuzzPingOneColumnsOf: any input is read without panicking, and the raw
// values taken from valid JSON are valid JSON.
func FuzzPingOneColumnsOf(f *testing.F) {
	f.Add([]byte(`{"recordedAt":"2026-11-25T10:00:00.000Z","actors":{"client":{"id":"a\"b","environment":{"id":1}}},"result":[],"_links":{"self":"x"}}`))
	f.Add([]byte(`{"a":"\\","b":[{"c":"}"}],"resources":[1,2,{"x":"]"}],"internalCorrelation":{"sessionId":"s"}}`))
	f.Add([]byte(`{"actors":{"user":{"id":"u","population":{"id":"p"},"href":"h"}},"result":{"status":"SUCCESS","id":"r"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := PingOneColumnsOf(data)
		if !json.Valid(data) {
			return
		}
		for _, raw := range [][]byte{c.RecordedAt, c.CreatedAt, c.InternalCorrelation, c.Resources, c.ResultStatus, c.ResultID, c.Href,
			c.User.ID, c.User.Name, c.User.Type, c.User.Href, c.User.EnvironmentID, c.User.PopulationID,
			c.Client.ID, c.Client.Name, c.Client.Type, c.Client.Href, c.Client.EnvironmentID, c.Client.PopulationID} {
			if raw != nil && !json.Valid(raw) {
				t.Fatalf("raw value %q of %q is not JSON", raw, data)
			}
		}
	})
}
