package normalize

import (
	"encoding/json"
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
