package auditrelay_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// buildRE finds a command that builds or installs the binary.
var buildRE = regexp.MustCompile(`\bgo (build|install)\b`)

// TestDocumentedBuildsAreStatic checks that every build or install command
// in a shell block of the README and docs sets CGO_ENABLED=0: the README
// promises one static binary, and without it the binary links libc.
func TestDocumentedBuildsAreStatic(t *testing.T) {
	docs, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	more, err := filepath.Glob("docs/*/*.md")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, path := range append(append([]string{"README.md"}, docs...), more...) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		shell := false
		for i, line := range strings.Split(string(b), "\n") {
			if fence, ok := strings.CutPrefix(strings.TrimSpace(line), "```"); ok {
				shell = !shell && (fence == "sh" || fence == "bash" || fence == "shell" || fence == "console")
				continue
			}
			if !shell || !buildRE.MatchString(line) {
				continue
			}
			found++
			if !strings.Contains(line, "CGO_ENABLED=0") {
				t.Errorf("%s:%d: %q builds without CGO_ENABLED=0, which links libc", path, i+1, strings.TrimSpace(line))
			}
		}
	}
	if found == 0 {
		t.Error("no build or install command found in the README or docs")
	}
}
