package deploy_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestRunbookSections checks that every alert names a section of
// docs/operations.md that exists.
func TestRunbookSections(t *testing.T) {
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, l := range strings.Split(string(doc), "\n") {
		if h, ok := strings.CutPrefix(l, "## "); ok {
			anchors[strings.ToLower(strings.ReplaceAll(strings.TrimSpace(h), " ", "-"))] = true
		}
	}
	rules, err := os.ReadFile("prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	alert := regexp.MustCompile(`- alert: (\w+)`)
	link := regexp.MustCompile(`docs/operations\.md#([\w-]+)`)
	alerts := alert.FindAllStringSubmatch(string(rules), -1)
	links := link.FindAllStringSubmatch(string(rules), -1)
	if len(alerts) == 0 || len(links) < len(alerts) {
		t.Fatalf("%d alerts, %d runbook links: every alert needs one", len(alerts), len(links))
	}
	for _, a := range alerts {
		if !anchors[strings.ToLower(a[1])] {
			t.Errorf("docs/operations.md has no section for %s", a[1])
		}
	}
	for _, l := range links {
		if !anchors[l[1]] {
			t.Errorf("alerts.yaml links docs/operations.md#%s, which does not exist", l[1])
		}
	}
}
