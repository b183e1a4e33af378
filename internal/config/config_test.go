package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/sink/file"
	"github.com/auditrelay/auditrelay/internal/sink/stdout"
	"github.com/auditrelay/auditrelay/internal/source/pingone"
	"github.com/auditrelay/auditrelay/internal/units"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.err from the current output")

// The secrets of the fake environment and files. Each contains characters
// that would break YAML if it were substituted into the text.
const (
	envSecret  = `Zq8"vL2: #mK9/x{T}w`
	fileSecret = `p4'Rr7: "wY3" [nB6]&*`
	crlfSecret = "Hk5tQ2mX9cV1"
)

// secrets lists every secret value a test file can resolve.
var secrets = []string{envSecret, fileSecret, crlfSecret}

// testEnv is the environment the testdata files see.
func testEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"PINGONE_CLIENT_SECRET": envSecret,
		"PINGONE_CLIENT_ID":     "6f1c2d3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f",
		"PINGONE_ENV_ID":        "0b5b1c9e-7d4a-4f0e-9a51-3c2d1e0f9a8b",
		"CLIENT_PREFIX":         "6f1c2d3e",
		"CLIENT_SUFFIX":         "1a2b-4c5d",
		"DATA_DIR":              "/var/lib/auditrelay",
		"REGION_LOWER":          "eu",
		"PAGE_SIZE":             "500",
		"LOOKBACK":              "7d",
		"INSECURE_AUTH_URL":     "http://10.20.30.40:8080/as",
		"EMPTY":                 "",
	}[name]
	return v, ok
}

// testReadFile is the file system the testdata files see.
func testReadFile(path string) ([]byte, error) {
	switch path {
	case "/run/secrets/pingone_client_secret":
		return []byte(fileSecret + "\n"), nil
	case "/run/secrets/crlf":
		return []byte(crlfSecret + "\r\n"), nil
	case "/run/secrets/empty":
		return []byte("\n"), nil
	case "/run/secrets/denied":
		return nil, &os.PathError{Op: "open", Path: path, Err: errors.New("permission denied")}
	}
	return nil, &os.PathError{Op: "open", Path: path, Err: errors.New("no such file or directory")}
}

func parseTestFile(t *testing.T, path string) (*Config, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(data, testEnv, testReadFile)
}

func files(t *testing.T, pattern string) []string {
	t.Helper()
	fs, err := filepath.Glob(pattern)
	if err != nil || len(fs) == 0 {
		t.Fatalf("no files match %s (%v)", pattern, err)
	}
	return fs
}

// TestBad checks every testdata/bad file against the error text next to it.
func TestBad(t *testing.T) {
	fs := files(t, "testdata/bad/*.yaml")
	if len(fs) < 25 {
		t.Errorf("only %d bad files", len(fs))
	}
	for _, path := range fs {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			c, err := parseTestFile(t, path)
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Parse = %v, %v; want an *Error", c, err)
			}
			if c != nil {
				t.Errorf("Parse returned a config with its error")
			}
			if len(cerr.Problems) == 0 {
				t.Fatal("no problems")
			}
			got := err.Error() + "\n"
			errPath := strings.TrimSuffix(path, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(errPath, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(errPath)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("error text mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGood checks the effective values of every testdata/good file.
func TestGood(t *testing.T) {
	pingoneDefaults := func(p pingone.Config) pingone.Config {
		p.SetDefaults()
		return p
	}
	checks := map[string]func(t *testing.T, c *Config){
		"minimal": func(t *testing.T, c *Config) {
			want := &Config{
				DataDir:       "./data",
				SpoolMaxBytes: 1 << 30,
				Log:           Log{Level: "info", Format: "text"},
				Sources: []Source{{Name: "pingone-na", PingOne: &pingone.Config{
					Region:          "NA",
					EnvironmentID:   "0b5b1c9e-7d4a-4f0e-9a51-3c2d1e0f9a8b",
					ClientID:        "6f1c2d3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f",
					ClientSecret:    secret.New(envSecret),
					TokenAuthMethod: pingone.AuthBasic,
					APIURL:          "https://api.pingone.com",
					AuthURL:         "https://auth.pingone.com",
					PollInterval:    units.Duration(30 * time.Second),
					SettleDelay:     units.Duration(2 * time.Minute),
					Overlap:         units.Duration(time.Minute),
					Lookback:        units.Duration(24 * time.Hour),
					PageSize:        1000,
					RateLimit:       3,
					Licence:         "default",
					RequestTimeout:  units.Duration(time.Minute),
				}}},
				Sinks: []Sink{{Name: "console", Sources: []string{"pingone-na"}, Stdout: &stdout.Config{Format: "raw"}}},
			}
			if diff := cmp.Diff(want, c, cmp.Comparer(secretEqual)); diff != "" {
				t.Errorf("config mismatch (-want +got):\n%s", diff)
			}
			if k := c.Sources[0].Kind(); k != "pingone" {
				t.Errorf("source kind = %q", k)
			}
			if k := c.Sinks[0].Kind(); k != "stdout" {
				t.Errorf("sink kind = %q", k)
			}
		},
		"full": func(t *testing.T, c *Config) {
			want := &Config{
				DataDir:       "/var/lib/auditrelay",
				MetricsListen: "127.0.0.1:9464",
				SpoolMaxBytes: 256 << 20,
				Log:           Log{Level: "debug", Format: "json"},
				Sources: []Source{{Name: "pingone-eu", PingOne: &pingone.Config{
					Region:          "EU",
					EnvironmentID:   "0b5b1c9e-7d4a-4f0e-9a51-3c2d1e0f9a8b",
					ClientID:        "6f1c2d3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f",
					ClientSecret:    secret.New(envSecret),
					TokenAuthMethod: pingone.AuthPost,
					APIURL:          "http://127.0.0.1:9001",
					AuthURL:         "http://localhost:9001",
					PollInterval:    units.Duration(15 * time.Second),
					SettleDelay:     units.Duration(3 * time.Minute),
					Overlap:         units.Duration(90 * time.Second),
					Lookback:        units.Duration(14 * 24 * time.Hour),
					PageSize:        250,
					RateLimit:       2.5,
					Licence:         "acme-prod",
					RequestTimeout:  units.Duration(45 * time.Second),
				}}},
				Sinks: []Sink{{Name: "archive", Sources: []string{"pingone-eu"}, File: &file.Config{
					Path: "/var/log/auditrelay/events.ndjson", MaxSize: 64 << 20, MaxFiles: 5, BatchSize: 200, Format: "raw",
				}}},
			}
			if diff := cmp.Diff(want, c, cmp.Comparer(secretEqual)); diff != "" {
				t.Errorf("config mismatch (-want +got):\n%s", diff)
			}
		},
		"expansion": func(t *testing.T, c *Config) {
			eu, ca := c.Sources[0].PingOne, c.Sources[1].PingOne
			got := []string{
				c.DataDir, eu.Region, eu.EnvironmentID, eu.ClientID, eu.ClientSecret.Reveal(), eu.APIURL,
				ca.ClientID, ca.ClientSecret.Reveal(), ca.Licence, c.Sinks[0].File.Path,
			}
			want := []string{
				"/var/lib/auditrelay", "EU", "0b5b1c9e-7d4a-4f0e-9a51-3c2d1e0f9a8b", "6f1c2d3e-1a2b-4c5d", fileSecret, "https://api.pingone.eu",
				"6f1c2d3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f", crlfSecret, "$budget-one", "/srv/audit/${env:NOT_EXPANDED}/$x.ndjson",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("expanded values mismatch (-want +got):\n%s", diff)
			}
			if eu.PageSize != 500 || eu.Lookback.D() != 7*24*time.Hour {
				t.Errorf("page_size = %d, lookback = %v; want 500, 168h", eu.PageSize, eu.Lookback)
			}
			if diff := cmp.Diff([]string{"pingone-eu", "pingone-ca"}, c.Sinks[0].Sources); diff != "" {
				t.Errorf("sink sources (-want +got):\n%s", diff)
			}
		},
		"anchors": func(t *testing.T, c *Config) {
			prod, staging := c.Sources[0].PingOne, c.Sources[1].PingOne
			wantStaging := pingoneDefaults(pingone.Config{
				Region:        "EU",
				EnvironmentID: "9c8b7a6f-5e4d-4c3b-8a29-1f0e0d0c0b0a",
				ClientID:      "6f1c2d3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f",
				ClientSecret:  secret.New(envSecret),
				Licence:       "acme",
				RateLimit:     5,
				PollInterval:  units.Duration(5 * time.Minute),
			})
			if diff := cmp.Diff(&wantStaging, staging, cmp.Comparer(secretEqual)); diff != "" {
				t.Errorf("merged source mismatch (-want +got):\n%s", diff)
			}
			if prod.EnvironmentID != "0b5b1c9e-7d4a-4f0e-9a51-3c2d1e0f9a8b" || prod.PollInterval.D() != 30*time.Second {
				t.Errorf("anchored source changed by the merge: %+v", prod)
			}
			for _, k := range c.Sinks {
				if diff := cmp.Diff([]string{"pingone-eu-prod", "pingone-eu-staging"}, k.Sources); diff != "" {
					t.Errorf("sink %s sources (-want +got):\n%s", k.Name, diff)
				}
			}
			if c.Sinks[1].File.Path != "out/events.ndjson" || c.Sinks[1].File.MaxFiles != 10 {
				t.Errorf("file sink = %+v", c.Sinks[1].File)
			}
		},
		"metrics_tls_auth": func(t *testing.T, c *Config) {
			if c.MetricsTLS == nil || c.MetricsTLS.CertFile != "/etc/auditrelay/tls.crt" || c.MetricsTLS.KeyFile != "/etc/auditrelay/tls.key" {
				t.Errorf("metrics_tls = %+v", c.MetricsTLS)
			}
			a := c.MetricsAuth
			if a == nil || a.Basic == nil || a.Basic.Username != "operator" || a.Basic.Password.IsZero() || a.BearerToken.IsZero() {
				t.Errorf("metrics_auth = %+v", a)
			}
		},
		"shared_licence": func(t *testing.T, c *Config) {
			if c.MetricsListen != ":9464" {
				t.Errorf("metrics_listen = %q", c.MetricsListen)
			}
			var regions, apis []string
			for _, s := range c.Sources {
				regions = append(regions, s.PingOne.Region)
				apis = append(apis, s.PingOne.APIURL)
				if s.PingOne.Licence != "acme" || s.PingOne.RateLimit != 6 {
					t.Errorf("%s: licence %q rate %v", s.Name, s.PingOne.Licence, s.PingOne.RateLimit)
				}
			}
			if diff := cmp.Diff([]string{"EU", "EU", "NA"}, regions); diff != "" {
				t.Errorf("regions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"https://api.pingone.eu", "https://api.pingone.eu", "https://api.pingone.com"}, apis); diff != "" {
				t.Errorf("api urls (-want +got):\n%s", diff)
			}
			got := [][]string{c.Sinks[0].Sources, c.Sinks[1].Sources}
			want := [][]string{{"pingone-eu-prod", "pingone-eu-test", "pingone-na-prod"}, {"pingone-eu-prod", "pingone-na-prod"}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("sink sources (-want +got):\n%s", diff)
			}
			if k := c.Sinks[0].Kind(); k != "file" {
				t.Errorf("sink kind = %q", k)
			}
		},
	}
	for _, path := range files(t, "testdata/good/*.yaml") {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			check, ok := checks[name]
			if !ok {
				t.Fatalf("no checks for %s: add them to TestGood", path)
			}
			c, err := parseTestFile(t, path)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			check(t, c)
		})
	}
}

func secretEqual(a, b secret.String) bool { return a.Reveal() == b.Reveal() }

// TestSecretsNeverShown parses every testdata file and checks that no
// resolved secret appears in an error or in the printed configuration.
func TestSecretsNeverShown(t *testing.T) {
	all := append(files(t, "testdata/bad/*.yaml"), files(t, "testdata/good/*.yaml")...)
	checked := 0
	for _, path := range all {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "${") {
			continue
		}
		checked++
		c, err := Parse(data, testEnv, testReadFile)
		var out string
		if err != nil {
			out = err.Error()
		} else {
			b, err := c.Redacted()
			if err != nil {
				t.Fatalf("%s: Redacted: %v", path, err)
			}
			out = string(b)
			if !strings.Contains(out, secret.Redacted) {
				t.Errorf("%s: no [redacted] in the printed configuration", path)
			}
		}
		for _, s := range secrets {
			for _, part := range []string{s, s[:leakWindow], s[len(s)-leakWindow:]} {
				if strings.Contains(out, part) {
					t.Errorf("%s: output shows %q of a secret:\n%s", path, part, out)
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d files carry a reference", checked)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{Path: "sources[0].pingone.client_id", Msg: "required"}, "sources[0].pingone.client_id: required"},
		{Problem{Path: "sources[0].pingone.foo", Line: 7, Msg: "unknown key"}, "sources[0].pingone.foo (line 7): unknown key"},
		{Problem{Line: 3, Msg: "invalid YAML: x"}, "line 3: invalid YAML: x"},
		{Problem{Msg: "and 3 more problems"}, "and 3 more problems"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
	e := &Error{Problems: []Problem{tests[0].p, tests[1].p}}
	if got, want := e.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestRedacted checks the printed form and that it reads back as the same
// configuration, but for its secrets.
func TestRedacted(t *testing.T) {
	c, err := parseTestFile(t, "testdata/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"spool_max_bytes: 256MiB\n", "client_secret: '[redacted]'\n", "lookback: 14d\n", "settle_delay: 3m\n",
		"overlap: 1m30s\n", "rate_limit: 2.5\n", "max_size: 64MiB\n", "sources: [pingone-eu]\n", "metrics_listen: 127.0.0.1:9464\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("printed configuration lacks %q:\n%s", want, out)
		}
	}
	back, err := Parse(out, testEnv, testReadFile)
	if err != nil {
		t.Fatalf("printed configuration does not parse: %v\n%s", err, out)
	}
	if back.Sources[0].PingOne.ClientSecret.Reveal() != secret.Redacted {
		t.Errorf("secret read back as %q", back.Sources[0].PingOne.ClientSecret.Reveal())
	}
	back.Sources[0].PingOne.ClientSecret = c.Sources[0].PingOne.ClientSecret
	if diff := cmp.Diff(c, back, cmp.Comparer(secretEqual)); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}

	// Values that YAML or expansion would read differently unless quoted
	// or escaped read back the same.
	tricky := &Config{
		DataDir: "123", MetricsListen: ":9464", SpoolMaxBytes: 3<<20 + 1, Log: Log{Level: "info", Format: "text"},
		Sources: []Source{{Name: "null", PingOne: &pingone.Config{
			EnvironmentID: "true", ClientID: "0x10", ClientSecret: secret.New("s"), Licence: "$${env:X}: #x",
		}}},
		Sinks: []Sink{{Name: "yes", Sources: []string{"null"}, File: &file.Config{Path: "~"}}},
	}
	setDefaults(tricky)
	if is := validate(tricky); len(is) > 0 {
		t.Fatalf("tricky config invalid: %v", is)
	}
	out, err = tricky.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	back, err = Parse(out, testEnv, testReadFile)
	if err != nil {
		t.Fatalf("printed tricky configuration does not parse: %v\n%s", err, out)
	}
	back.Sources[0].PingOne.ClientSecret = tricky.Sources[0].PingOne.ClientSecret
	if diff := cmp.Diff(tricky, back, cmp.Comparer(secretEqual)); diff != "" {
		t.Errorf("tricky round trip mismatch (-want +got):\n%s\n%s", diff, out)
	}

	m, err := parseTestFile(t, "testdata/good/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err = m.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"data_dir: ./data\n", "metrics_listen: \"\"\n", "lookback: 24h\n", "spool_max_bytes: 1GiB\n", "    stdout:\n      format: raw\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("printed minimal configuration lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "file:") {
		t.Errorf("unset type block printed:\n%s", out)
	}
}

// TestLoad reads a file from disk with references to the real environment
// and a real file.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	secretPath := filepath.Join(dir, "client_secret")
	if err := os.WriteFile(secretPath, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AUDITRELAY_TEST_ENV_ID", "0b5b1c9e-7d4a-4f0e-9a51-3c2d1e0f9a8b")
	cfg := `
sources:
  - name: pingone-eu
    pingone:
      region: EU
      environment_id: ${env:AUDITRELAY_TEST_ENV_ID}
      client_id: 6f1c2d3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f
      client_secret: ${file:` + secretPath + `}
sinks:
  - name: console
    stdout:
`
	path := filepath.Join(dir, "auditrelay.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	p := c.Sources[0].PingOne
	if p.EnvironmentID != "0b5b1c9e-7d4a-4f0e-9a51-3c2d1e0f9a8b" || p.ClientSecret.Reveal() != "from-a-file" {
		t.Errorf("environment_id %q, secret %q", p.EnvironmentID, p.ClientSecret.Reveal())
	}

	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want a not-exist error", err)
	}

	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxSecretFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(cfg, secretPath, big)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	want := "sources[0].pingone.client_secret (line 8): cannot read " + big + ": file is larger than 1MiB"
	if err == nil || err.Error() != want {
		t.Errorf("Load(big secret) = %v, want %s", err, want)
	}
}

func TestSuggest(t *testing.T) {
	fields := fieldsOf(reflect.TypeFor[pingone.Config]())
	for key, want := range map[string]string{
		"client_secrt": " (did you mean client_secret?)",
		"clientSecret": " (did you mean client_secret?)",
		"licenses":     " (did you mean licence?)",
		"regoin":       " (did you mean region?)",
		"colour":       "",
	} {
		if got := suggest(key, fields); got != want {
			t.Errorf("suggest(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestParseNilFunctions(t *testing.T) {
	data := []byte("data_dir: ${env:HOME}/${file:/etc/hostname}\nsources: []\nsinks: []\n")
	_, err := Parse(data, nil, nil)
	want := "data_dir (line 1): environment variable HOME is not set\n" +
		"data_dir (line 1): cannot read /etc/hostname: reading files is disabled\n" +
		"sources (line 2): at least one source is required (for example a source with a pingone: block)\n" +
		"sinks (line 3): at least one sink is required (for example a sink with a stdout: block)"
	if err == nil || err.Error() != want {
		t.Errorf("Parse = %v\nwant %s", err, want)
	}
}

// TestHostileFiles checks that aliases and merge keys that make a small
// file describe a huge one are cut short, quickly, with a clear problem.
func TestHostileFiles(t *testing.T) {
	var mergeBomb strings.Builder
	mergeBomb.WriteString("data_dir: &a0 {x: 1}\n")
	for i := 1; i <= 16; i++ {
		fmt.Fprintf(&mergeBomb, "metrics_listen: &a%d {<<: [*a%d, *a%d, *a%d, *a%d]}\n", i, i-1, i-1, i-1, i-1)
	}
	mergeBomb.WriteString("log: {<<: *a16}\n")

	var fanOut strings.Builder
	fanOut.WriteString("log: &bad {\n")
	for i := range 2000 {
		fmt.Fprintf(&fanOut, "  k%d: 1,\n", i)
	}
	fanOut.WriteString("}\nsources: [")
	for range 2000 {
		fanOut.WriteString("{name: x, pingone: *bad}, ")
	}
	fanOut.WriteString("]\n")

	for name, data := range map[string]string{"merge bomb": mergeBomb.String(), "alias fan-out": fanOut.String()} {
		_, err := Parse([]byte(data), testEnv, testReadFile)
		var cerr *Error
		if !errors.As(err, &cerr) {
			t.Fatalf("%s: Parse = %v, want an *Error", name, err)
		}
		if len(cerr.Problems) > maxProblems+1 {
			t.Errorf("%s: %d problems, want at most %d", name, len(cerr.Problems), maxProblems+1)
		}
		if first := cerr.Problems[0].Msg; !strings.HasPrefix(first, "the file expands to more than 100000 values") {
			t.Errorf("%s: first problem %q", name, first)
		}
	}
}

// TestKinds checks that each type block of a source or a sink is a kind of
// its own, named by its key.
func TestKinds(t *testing.T) {
	if diff := cmp.Diff([]string{"pingone", "cyberark", "okta", "entra"}, SourceKinds()); diff != "" {
		t.Errorf("SourceKinds (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"file", "stdout", "sentinel", "sekoia", "splunk", "elasticsearch", "syslog", "kafka"}, SinkKinds()); diff != "" {
		t.Errorf("SinkKinds (-want +got):\n%s", diff)
	}
	for _, kind := range SinkKinds() {
		var k Sink
		v := reflect.ValueOf(&k).Elem()
		for _, f := range fieldsOf(v.Type()) {
			if f.key == kind {
				v.Field(f.index).Set(reflect.New(v.Field(f.index).Type().Elem()))
			}
		}
		if got := k.Kind(); got != kind {
			t.Errorf("a sink with a %s: block has Kind() %q", kind, got)
		}
	}
	for _, kind := range SourceKinds() {
		var s Source
		v := reflect.ValueOf(&s).Elem()
		for _, f := range fieldsOf(v.Type()) {
			if f.key == kind {
				v.Field(f.index).Set(reflect.New(v.Field(f.index).Type().Elem()))
			}
		}
		if got := s.Kind(); got != kind {
			t.Errorf("a source with a %s: block has Kind() %q", kind, got)
		}
	}
	if got := (&Sink{}).Kind(); got != "" {
		t.Errorf("a sink without a block has Kind() %q", got)
	}
}

// TestSyntaxLine checks that a YAML error inside a block names the line the
// parser stopped at, not the line where the block starts.
func TestSyntaxLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"sources:\n  - name: a\n    pingone:\n      region: EU\n     client_id: x\n",
			"line 5: invalid YAML: did not find expected key (check this line's indentation against the block that starts at line 2)"},
		{"sources:\n  - a\n  - b\n\n  c: 1\n",
			"line 5: invalid YAML: did not find expected '-' indicator (check this line's indentation against the block that starts at line 2)"},
		{"sinks:\n  - name: a\n    stdout:\n\r\n   file: x\r\n",
			"line 5: invalid YAML: did not find expected '-' indicator (check this line's indentation against the block that starts at line 2)"},
	} {
		_, err := Parse([]byte(tc.in), nil, nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q) = %v\nwant %s", tc.in, err, tc.want)
		}
	}
}
