package normalize

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidMembersElements(t *testing.T) {
	for _, in := range []string{`{"a":1}`, ` [1, 2] `, `{"a":}`, `{"a":1} x`, `"s"`, ``, `{"a":[1,{"b":"\""}]}`} {
		if got, want := Valid([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("Valid(%q) = %v, json.Valid says %v", in, got, want)
		}
	}
	var got []string
	for k, v := range Members([]byte(`{"a": 1, "b\"c" :{"x":[1]},"d":"e"}`)) {
		got = append(got, string(k)+"="+string(v))
	}
	if diff := cmp.Diff([]string{"a=1", `b\"c={"x":[1]}`, `d="e"`}, got); diff != "" {
		t.Errorf("Members (-want +got):\n%s", diff)
	}
	got = got[:0]
	for v := range Elements([]byte(`[ {"a":[1,2]} , "x,y", 3 ]`)) {
		got = append(got, string(v))
	}
	if diff := cmp.Diff([]string{`{"a":[1,2]}`, `"x,y"`, "3"}, got); diff != "" {
		t.Errorf("Elements (-want +got):\n%s", diff)
	}
	for range Members([]byte(`[1]`)) {
		t.Error("an array has members")
	}
}

// FuzzTape checks Tape.Scan against encoding/json.Valid and what it
// records against the scanning iterators, at every depth.
func FuzzTape(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, ` {"a":[1,{"b":"c"},[]],"d":{"e":null}} `, `{"a":1,}`, `[1,[2,[3,[4]]]]`, `"x"`, `{"a":{"a":{"a":{}}}}`, `[1 2]`} {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, s string, d uint8) {
		b := []byte(s)
		depth := int(d % 6)
		var tape Tape
		ok := tape.Scan(b, depth)
		if want := json.Valid(b); ok != want {
			t.Fatalf("Scan(%q) = %v, json.Valid = %v", s, ok, want)
		}
		if !ok {
			return
		}
		if got, want := string(tape.Value(0)), strings.TrimSpace(s); got != want {
			t.Fatalf("root %q, want %q", got, want)
		}
		var walk func(n, level int)
		walk = func(n, level int) {
			v := tape.Value(n)
			var keys, vals []string
			for k, c := range tape.Members(n) {
				keys, vals = append(keys, string(k)), append(vals, string(tape.Value(c)))
				walk(c, level+1)
			}
			for c := range tape.Elements(n) {
				vals = append(vals, string(tape.Value(c)))
				walk(c, level+1)
			}
			var wantKeys, wantVals []string
			if level < depth {
				for k, val := range Members(v) {
					wantKeys, wantVals = append(wantKeys, string(k)), append(wantVals, string(val))
				}
				for el := range Elements(v) {
					wantVals = append(wantVals, string(el))
				}
			}
			if !slices.Equal(keys, wantKeys) || !slices.Equal(vals, wantVals) {
				t.Fatalf("Scan(%q, %d): node %q at level %d has keys %q values %q, want %q %q", s, depth, v, level, keys, vals, wantKeys, wantVals)
			}
		}
		walk(0, 0)
	})
}
