package normalize

import (
	"encoding/json"
	"testing"
)

// FuzzValid checks validValue against encoding/json.Valid.
func FuzzValid(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,-0.5e+3,true,false,null,"\u00e9\n"]}`, `[01]`, `{"a":}`, `"\x01"`, `1.`, `-`, `{"a":1,}`, "\"\xff\"", `"\ud800"`, ` {"a" : [ ] } `} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		end, _, ok := validValue(b, 0, 0)
		got := ok && skipWS(b, end) == len(b)
		if want := json.Valid(b); got != want {
			t.Fatalf("validValue(%q) = %v, json.Valid = %v", s, got, want)
		}
	})
}
