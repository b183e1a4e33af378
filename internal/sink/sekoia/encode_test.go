package sekoia

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/auditrelay/auditrelay/internal/event"
)

// FuzzMessage checks the encoding of one event: the element of "jsons"
// decodes to the compacted event, byte for byte, on one line.
func FuzzMessage(f *testing.F) {
	f.Add([]byte(`{"a":"x\"y\\z","b":[1,2.50,null,""],"c":{"d":"\u00e9\n"}}`))
	f.Add([]byte("{\n  \"uuid\": \"u\",\n  \"customData\": {\"PAM\": {\"target\": \"Root\\\\x\"}}\n}"))
	f.Add([]byte(`{"emoji":"😀","html":"<a href='x'>&amp;</a>","ctl":"\u0001"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var enc encoder
		m, err := enc.message(raw)
		if err != nil {
			return
		}
		var want bytes.Buffer
		json.Compact(&want, raw)
		q := event.AppendJSONBytes(nil, m)
		var got string
		if err := json.Unmarshal(q, &got); err != nil {
			t.Fatalf("element %s is not a JSON string: %v", q, err)
		}
		if !utf8.Valid(raw) {
			return // invalid UTF-8 cannot travel in a JSON string as it is
		}
		if got != want.String() {
			t.Fatalf("element decodes to %q, want %q", got, want.String())
		}
		if bytes.ContainsAny([]byte(got), "\r\n") {
			t.Fatalf("message spans lines: %q", got)
		}
	})
}
