package cli

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// commandRE finds a command of the usage text: its name, and its verb when
// it has one (checkpoint show, emulate pingone).
var commandRE = regexp.MustCompile(`(?m)^  auditrelay ([a-z]+)( [a-z]+)?`)

// TestREADMEListsEveryCommand checks that the README's command table has a
// row for every command of the usage text.
func TestREADMEListsEveryCommand(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "| `auditrelay ") {
			rows = append(rows, line)
		}
	}
	cmds := commandRE.FindAllStringSubmatch(usage, -1)
	if len(cmds) < 10 {
		t.Fatalf("found %d commands in the usage text", len(cmds))
	}
	for _, m := range cmds {
		cmd := "| `auditrelay " + m[1] + m[2]
		found := false
		for _, r := range rows {
			if strings.HasPrefix(r, cmd+"`") || strings.HasPrefix(r, cmd+" ") {
				found = true
			}
		}
		if !found {
			t.Errorf("README.md has no row for auditrelay %s%s", m[1], m[2])
		}
	}
}

// TestUsageStatesGuarantees checks that the usage text promises what the
// sinks deliver: exactly once into a file, at least once elsewhere.
func TestUsageStatesGuarantees(t *testing.T) {
	first, _, _ := strings.Cut(usage, "\n")
	for _, want := range []string{"no event lost", "exactly once into a file", "at least once", "one batch"} {
		if !strings.Contains(first, want) {
			t.Errorf("usage's first line %q does not say %q", first, want)
		}
	}
	if strings.Contains(first, "none duplicated") {
		t.Errorf("usage's first line %q promises no duplicate, which only the file sink keeps across a crash", first)
	}
}
