package detect_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditrelay/auditrelay/detections"
	"github.com/auditrelay/auditrelay/internal/detect"
	"github.com/auditrelay/auditrelay/internal/detect/kqltest"
	"github.com/auditrelay/auditrelay/internal/sink/sentinel"
)

// workspaceTables are the tables the templates create, with the columns
// each format's template gives them.
func workspaceTables() map[string][]kqltest.Column {
	tables := map[string][]kqltest.Column{}
	for _, f := range sentinel.Formats() {
		var cols []kqltest.Column
		for _, c := range sentinel.TableColumns(f) {
			cols = append(cols, kqltest.Column{c.Name, c.Type})
		}
		tables[sentinel.DefaultTable(f)] = cols
	}
	return tables
}

func TestContentLoads(t *testing.T) {
	c, err := detect.Load(detections.FS())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Analytics) < 15 {
		t.Errorf("%d analytics rules, want at least 15", len(c.Analytics))
	}
	tables := workspaceTables()
	for _, a := range c.Analytics {
		if _, ok := tables[a.Table]; !ok {
			t.Errorf("%s: table %s is not one a template creates", a.File, a.Table)
		}
	}
	for _, h := range c.Hunting {
		if _, ok := tables[h.Table]; !ok {
			t.Errorf("%s: table %s is not one a template creates", h.File, h.Table)
		}
	}
}

// TestContentKQLParses parses every analytics rule and hunting query with
// Microsoft's Kusto parser, against the columns of the tables the
// templates create: a misspelt column fails as surely as a syntax error.
func TestContentKQLParses(t *testing.T) {
	c, err := detect.Load(detections.FS())
	if err != nil {
		t.Fatal(err)
	}
	var qs []kqltest.Query
	for _, a := range c.Analytics {
		qs = append(qs, kqltest.Query{Name: a.File, Text: a.Query})
	}
	for _, h := range c.Hunting {
		qs = append(qs, kqltest.Query{Name: h.File, Text: h.Query})
	}
	kqltest.New(t).Check(t, workspaceTables(), qs)
}

// TestKQLCheckFails makes sure the check can fail: a syntax error, an
// unknown column and an unknown table each give a diagnostic.
func TestKQLCheckFails(t *testing.T) {
	k := kqltest.New(t)
	tables := map[string][]kqltest.Column{"T_CL": {{"a", "string"}, {"d", "dynamic"}}}
	bad := []kqltest.Query{
		{Name: "syntax", Text: "T_CL | where a == 'x' | summarize count() by"},
		{Name: "column", Text: "T_CL | where b == 'x'"},
		{Name: "table", Text: "U_CL | take 1"},
		{Name: "transform", Text: "source | extend x = tostring(e)", Source: []kqltest.Column{{"d", "dynamic"}}},
	}
	ds, err := k.Run(t.Context(), tables, append(bad, kqltest.Query{Name: "good", Text: "T_CL | where a == 'x' | extend y = tostring(d.z)"}))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, d := range ds {
		got[d.Name]++
		if d.Line != 1 || d.Code == "" || d.Message == "" {
			t.Errorf("diagnostic %+v", d)
		}
	}
	for _, q := range bad {
		if got[q.Name] == 0 {
			t.Errorf("%s: %q gave no diagnostic", q.Name, q.Text)
		}
	}
	if got["good"] != 0 {
		t.Errorf("the good query gave %d diagnostics", got["good"])
	}
}

// TestDocumented: docs/detections.md describes every rule.
func TestDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/detections.md")
	if err != nil {
		t.Fatal(err)
	}
	c, err := detect.Load(detections.FS())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range c.Analytics {
		if !bytes.Contains(doc, []byte("### "+a.Name+"\n")) {
			t.Errorf("docs/detections.md has no section for %s", a.Name)
		}
	}
	for _, h := range c.Hunting {
		if !bytes.Contains(doc, []byte("### "+h.Name+" (hunting)\n")) {
			t.Errorf("docs/detections.md has no section for %s", h.Name)
		}
	}
	files, _ := fs.Glob(detections.FS(), "sigma/*/*.yml")
	for _, f := range files {
		if !bytes.Contains(doc, []byte("`detections/"+f+"`")) {
			t.Errorf("docs/detections.md does not name %s", f)
		}
	}
}

// TestDocsKQLParses parses the KQL examples of the docs (```kql blocks)
// against the tables the templates create.
func TestDocsKQLParses(t *testing.T) {
	files, err := filepath.Glob("../../docs/*/*.md")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("../../docs/*.md")
	var qs []kqltest.Query
	for _, f := range append(files, more...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i := 0; i < len(lines); i++ {
			if strings.TrimSpace(lines[i]) != "```kql" {
				continue
			}
			start := i + 1
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			}
			qs = append(qs, kqltest.Query{Name: fmt.Sprintf("%s:%d", filepath.Base(f), start+1), Text: strings.Join(lines[start:i], "\n")})
		}
	}
	if len(qs) == 0 {
		t.Fatal("no ```kql block in the docs")
	}
	kqltest.New(t).Check(t, workspaceTables(), qs)
}
