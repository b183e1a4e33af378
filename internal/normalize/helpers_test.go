package normalize

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/event"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// emulated returns n events of provider from the emulators' generators,
// one second apart from a fixed instant, with the envelope the sources
// give them.
func emulated(t testing.TB, provider string, n int, seed uint64) []event.Raw {
	t.Helper()
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	out := make([]event.Raw, 0, n)
	switch provider {
	case ProviderPingOne:
		g := emulator.NewGenerator(seed)
		const env = "7b3f6a4e-2d9c-4f1e-8a5b-0c6d7e8f9a01"
		for i := range n {
			a := g.Activity(env, "https://api.pingone.eu", at.Add(time.Duration(i)*time.Second))
			out = append(out, event.Raw{Source: "p1", Provider: provider, Tenant: env, ID: a.ID, Time: a.RecordedAt, Data: a.JSON})
		}
	case ProviderCyberArk:
		g := emulator.NewCyberArkGenerator(seed)
		const tenant = "43de6333-65f1-4626-aeec-2cff238e61ca"
		for i := range n {
			e := g.Event(tenant, at.Add(time.Duration(i)*time.Second))
			out = append(out, event.Raw{Source: "ca", Provider: provider, Tenant: tenant, ID: e.UUID, Time: e.Timestamp, Data: e.JSON})
		}
	case ProviderOkta:
		g := emulator.NewOktaGenerator(seed)
		for i := range n {
			e := g.Event(at.Add(time.Duration(i) * time.Second))
			out = append(out, event.Raw{Source: "okta", Provider: provider, Tenant: "example.okta.com", ID: e.UUID, Time: e.Published, Data: e.JSON})
		}
	case ProviderEntraDirectoryAudits, ProviderEntraSignIns, ProviderEntraProvisioning:
		const tenant = "b1d2c3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e"
		stream := map[string]string{ProviderEntraDirectoryAudits: emulator.EntraDirectoryAudits,
			ProviderEntraSignIns: emulator.EntraSignIns, ProviderEntraProvisioning: emulator.EntraProvisioning}[provider]
		g := emulator.NewEntraGenerator(tenant, seed)
		for i := range n {
			e := g.Event(stream, at.Add(time.Duration(i)*time.Second))
			out = append(out, event.Raw{Source: "entra", Provider: provider, Tenant: tenant, ID: e.ID, Time: e.Time, Data: e.JSON})
		}
	default:
		t.Fatalf("no generator for %s", provider)
	}
	return out
}

// golden compares got with testdata/golden/name, or rewrites it with
// -update. JSON is compared and stored indented.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var ind bytes.Buffer
	if err := json.Indent(&ind, got, "", "  "); err != nil {
		t.Fatalf("%s: output is not JSON: %v\n%s", name, err, got)
	}
	ind.WriteByte('\n')
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, ind.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(ind.Bytes(), want) {
		t.Errorf("%s differs from the golden file (run go test -update and review the diff):\n%s", path, diffLines(string(want), ind.String()))
	}
}

// diffLines shows the first lines that differ.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("- " + wl + "\n+ " + gl + "\n")
			if b.Len() > 2000 {
				break
			}
		}
	}
	return b.String()
}

// goldenInputs returns the events of testdata/golden/*.raw.json: each is
// a file sink envelope line (indented or not).
func goldenInputs(t *testing.T) map[string]event.Raw {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.raw.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	out := map[string]event.Raw{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseLine(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".raw.json")] = r
	}
	return out
}
