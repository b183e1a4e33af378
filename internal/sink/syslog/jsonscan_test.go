package syslog

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/auditrelay/auditrelay/internal/jsonscan"
)

// FuzzCompactJSON: on valid JSON compactJSON gives json.Compact's bytes;
// on anything else it never panics, and what it accepts has balanced
// strings and brackets.
func FuzzCompactJSON(f *testing.F) {
	for _, s := range []string{`{"a": [1, 2, {"b" : "c d"}], "e":"\"q\" \\ ]"}`, "{\n \"x\": \"\u2028\"\n}", `"s"`, `[`, `{"a":"`, ` 12 `, `{"k":"\\"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		got, ok := compactJSON([]byte("prefix"), src)
		if !bytes.HasPrefix(got, []byte("prefix")) {
			t.Fatalf("dst prefix lost: %q", got)
		}
		got = got[len("prefix"):]
		if !json.Valid(src) {
			if end, whole := jsonscan.EndValue(got, 0); ok && (!whole || end != len(got)) {
				t.Fatalf("accepted %q as %q, not balanced", src, got)
			}
			return
		}
		var want bytes.Buffer
		if err := json.Compact(&want, src); err != nil {
			t.Fatal(err)
		}
		if !ok || !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("compactJSON(%q) = %q, %v; json.Compact gives %q", src, got, ok, want.Bytes())
		}
	})
}

// FuzzScan: the field reader agrees with encoding/json on the string
// members of a valid object, and never panics on anything.
func FuzzScan(f *testing.F) {
	for _, s := range []string{`{"a":"b","c":{"d":"e\"f"},"g":["h",{"i":1}]}`, `{"a":`, `{"a":"\u00e9"}`, `[{"x":"y"}]`, `{"":""}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		data, ok := compactJSON(nil, src)
		for _, p := range []string{"pingone", "cyberark", "okta", "entra_directory_audits", "entra_sign_ins", "entra_provisioning"} {
			fieldsOf(p, src)
			fieldsOf(p, data)
		}
		first(src)
		if !ok || !json.Valid(src) {
			return
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return
		}
		seen := map[string]bool{}
		for m := membersOf(data); m.next(); {
			k := string(m.key)
			if bytes.IndexByte(m.key, '\\') >= 0 || seen[k] {
				continue // escaped keys are not matched; the first of twins is read
			}
			seen[k] = true
			var want string
			if json.Unmarshal(obj[k], &want) != nil {
				continue
			}
			if got := str(m.val); got != want && !bytes.Equal(m.val, obj[k]) {
				t.Fatalf("member %q = %q, encoding/json reads %q", k, got, want)
			}
		}
	})
}
