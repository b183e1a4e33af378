package normalize

import (
	"testing"

	"github.com/auditrelay/auditrelay/internal/event"
)

// TestLineKey checks that the source and id of an event can be read back
// from its line in every line format.
func TestLineKey(t *testing.T) {
	for _, p := range Providers() {
		r := emulated(t, p, 1, 5)[0]
		for _, f := range []Format{FormatRaw, FormatOCSF, FormatECS} {
			line, err := AppendLine(nil, f, &r)
			if err != nil {
				t.Fatal(err)
			}
			if line[len(line)-1] != '\n' {
				t.Errorf("%s %s: no newline", p, f)
			}
			src, id, ok := LineKey(line)
			if !ok || src != r.Source || id != r.ID {
				t.Errorf("%s %s: key %q %q %v, want %q %q", p, f, src, id, ok, r.Source, r.ID)
			}
		}
	}
	if _, _, ok := LineKey([]byte(`{"x":1}`)); ok {
		t.Error("a foreign line has a key")
	}
	for _, s := range []string{"", "raw", "ocsf", "ecs"} {
		if _, err := ParseLineFormat(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"asim", "OCSF", "json"} {
		if _, err := ParseLineFormat(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	r := event.Raw{Provider: ProviderPingOne, Data: []byte(`[]`)}
	if _, err := AppendLine(nil, FormatOCSF, &r); err == nil {
		t.Error("an array normalized")
	}
}
