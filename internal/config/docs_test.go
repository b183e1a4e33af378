package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// section returns the part of a Markdown document under heading, up to the
// next heading of the same or a higher level, and whether it is there.
func section(doc, heading string) (string, bool) {
	level := heading[:strings.IndexByte(heading, ' ')+1]
	lines := strings.Split(doc, "\n")
	for i, l := range lines {
		if l != heading {
			continue
		}
		var b strings.Builder
		fenced := false
		for _, m := range lines[i+1:] {
			if strings.HasPrefix(strings.TrimSpace(m), "```") {
				fenced = !fenced
			}
			if h, _, ok := strings.Cut(m, " "); ok && !fenced && strings.Trim(h, "#") == "" && len(h) > 0 && len(h) <= len(level)-1 {
				break
			}
			b.WriteString(m)
			b.WriteByte('\n')
		}
		return b.String(), true
	}
	return "", false
}

// TestConfigurationDocumented checks that docs/configuration.md documents
// every key of the configuration types: each top-level key, each source and
// sink type in its list, and each key of a type block in that block's own
// section. The kinds and keys come from the types, so a new source, sink or
// setting fails this test until it is documented.
func TestConfigurationDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	top, ok := section(doc, "## Top-level keys")
	if !ok {
		t.Fatal(`docs/configuration.md has no "## Top-level keys" section`)
	}
	ct := reflect.TypeFor[Config]()
	for _, f := range fieldsOf(ct) {
		keys := []string{f.key}
		if ft := ct.Field(f.index).Type; ft.Kind() == reflect.Struct {
			keys = nil
			for _, sub := range fieldsOf(ft) {
				keys = append(keys, f.key+"."+sub.key)
			}
		}
		for _, k := range keys {
			if !strings.Contains(top, "| `"+k+"` |") {
				t.Errorf("docs/configuration.md: top-level key %s has no row in Top-level keys", k)
			}
		}
	}
	for _, list := range []struct {
		heading string
		t       reflect.Type
		kinds   []string
	}{
		{"## Sources", reflect.TypeFor[Source](), SourceKinds()},
		{"## Sinks", reflect.TypeFor[Sink](), SinkKinds()},
	} {
		sec, ok := section(doc, list.heading)
		if !ok {
			t.Errorf("docs/configuration.md has no %q section", list.heading)
			continue
		}
		if len(list.kinds) < 2 {
			t.Errorf("%s: found the kinds %v only", list.heading, list.kinds)
		}
		blocks := map[string]reflect.Type{} // kind → its block's type
		for _, f := range fieldsOf(list.t) {
			if !strings.Contains(sec, "| `"+f.key+"` |") {
				t.Errorf("docs/configuration.md: %s has no row for key %s", list.heading, f.key)
			}
			if ft := list.t.Field(f.index).Type; ft.Kind() == reflect.Pointer {
				blocks[f.key] = ft.Elem()
			}
		}
		for _, kind := range list.kinds {
			block, ok := section(sec, "### `"+kind+"`")
			if !ok {
				t.Errorf("docs/configuration.md: %s has no \"### `%s`\" section", list.heading, kind)
				continue
			}
			for _, k := range fieldsOf(blocks[kind]) {
				if !strings.Contains(block, "| `"+k.key+"` |") {
					t.Errorf("docs/configuration.md: ### `%s` has no row for key %s", kind, k.key)
				}
			}
		}
	}
}

// TestSection checks the Markdown section splitter the documentation test
// relies on.
func TestSection(t *testing.T) {
	doc := "# T\n## A\na\n### `x`\nx\n#### deep\nd\n### `y`\ny\n## B\nb\n"
	for heading, want := range map[string]string{
		"## A":      "a\n### `x`\nx\n#### deep\nd\n### `y`\ny\n",
		"### `x`":   "x\n#### deep\nd\n",
		"### `y`":   "y\n",
		"## B":      "b\n\n",
		"#### deep": "d\n",
	} {
		if got, ok := section(doc, heading); !ok || got != want {
			t.Errorf("section(%q) = %q, %v; want %q", heading, got, ok, want)
		}
	}
	if _, ok := section(doc, "## C"); ok {
		t.Error("found a section that is not there")
	}
}
