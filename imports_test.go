package auditrelay_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules enforces the layout's dependency rules: event imports
// nothing of ours; a source or sink package never imports another source or
// sink, the pipeline, config or daemon (the window engine they share,
// internal/source/window, is no source); only daemon, config and the
// command line (which wires the demo) import concrete sources and sinks;
// the pipeline knows the store contract, never a store implementation.
func TestImportRules(t *testing.T) {
	const mod = "github.com/auditrelay/auditrelay/"
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], mod) {
			continue
		}
		pkg := strings.TrimPrefix(f[0], mod)
		for _, d := range f[1:] {
			if strings.HasPrefix(d, mod) {
				deps[pkg] = append(deps[pkg], strings.TrimPrefix(d, mod))
			}
		}
	}
	if len(deps) < 10 {
		t.Fatalf("found only %d packages; go list output not understood", len(deps))
	}
	// The window engine is shared by the sources, not a source itself.
	shared := []string{"internal/source/window"}
	concrete := func(p string) bool {
		return (strings.HasPrefix(p, "internal/source/") || strings.HasPrefix(p, "internal/sink/")) && !contains(shared, p)
	}
	forbiddenForPlugins := []string{"internal/pipeline", "internal/config", "internal/daemon", "internal/cli"}
	checked := 0
	for pkg, ds := range deps {
		for _, d := range ds {
			switch {
			case pkg == "internal/event" || pkg == "internal/jsonscan":
				t.Errorf("%s imports %s; it must import only the standard library", pkg, d)
			case concrete(pkg) && concrete(d) && !strings.HasPrefix(d, pkg):
				t.Errorf("%s imports %s: sources and sinks never import each other", pkg, d)
			case concrete(pkg) && contains(forbiddenForPlugins, d):
				t.Errorf("%s imports %s", pkg, d)
			case pkg == "internal/pipeline" && strings.HasPrefix(d, "internal/store/"):
				t.Errorf("internal/pipeline imports %s; it knows only the store contract", d)
			case concrete(d) && !concrete(pkg) && !contains([]string{"internal/daemon", "internal/config", "internal/cli", "cmd/auditrelay", "bench", "e2e"}, pkg):
				t.Errorf("%s imports the concrete %s; only daemon and config construct sources and sinks", pkg, d)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no internal imports checked")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
