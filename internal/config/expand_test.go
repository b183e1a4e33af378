package config

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestExpand(t *testing.T) {
	tests := []struct {
		in       string
		want     string
		wantErrs []string
	}{
		{in: "", want: ""},
		{in: "plain text", want: "plain text"},
		{in: "${env:PINGONE_CLIENT_ID}", want: "6f1c2d3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f"},
		{in: "${env:CLIENT_PREFIX}-${env:CLIENT_SUFFIX}", want: "6f1c2d3e-1a2b-4c5d"},
		{in: "x${env:EMPTY}y", want: "xy"},
		{in: "$$", want: "$"},
		{in: "$${env:X}", want: "${env:X}"},
		{in: "$$$${env:EMPTY}", want: "$${env:EMPTY}"},
		{in: "$$${env:EMPTY}x", want: "$x"},
		{in: "a$b $ $", want: "a$b $ $"},
		{in: "cost: 5$", want: "cost: 5$"},
		{in: "${file:/run/secrets/pingone_client_secret}", want: fileSecret},
		{in: "[${file:/run/secrets/crlf}]", want: "[" + crlfSecret + "]"},
		{in: "${env:PINGONE_CLIENT_SECRET}", want: envSecret},
		{in: "${env:UNSET}", wantErrs: []string{"environment variable UNSET is not set"}},
		{in: "${env:UNSET_A}${env:UNSET_B}", wantErrs: []string{"environment variable UNSET_A is not set", "environment variable UNSET_B is not set"}},
		{in: "${env:X", wantErrs: []string{"unterminated ${env:X (end the reference with }, or write $$ for a literal $)"}},
		{in: "${", wantErrs: []string{"unterminated ${ (end the reference with }, or write $$ for a literal $)"}},
		{in: "${}", wantErrs: []string{"${} is not a reference: want ${env:NAME} or ${file:/path} (write $$ for a literal $)"}},
		{in: "${HOME}", wantErrs: []string{"${HOME} has no kind: write ${env:HOME} for an environment variable (or $$ for a literal $)"}},
		{in: "${vault:kv/x}", wantErrs: []string{`${vault:kv/x}: unknown reference kind "vault" (want env or file)`}},
		{in: "${env:}", wantErrs: []string{`${env:}: "" is not an environment variable name (letters, digits and _, not starting with a digit)`}},
		{in: "${env:A-B}", wantErrs: []string{`${env:A-B}: "A-B" is not an environment variable name (letters, digits and _, not starting with a digit)`}},
		{in: "${env:${env:X}}", wantErrs: []string{`${env:${env:X}: "${env:X" is not an environment variable name (letters, digits and _, not starting with a digit)`}},
		{in: "${file:secret.txt}", wantErrs: []string{"${file:secret.txt}: the file path must be absolute"}},
		{in: "${file:/run/secrets/denied}", wantErrs: []string{"cannot read /run/secrets/denied: permission denied"}},
		{in: "${file:/nope}", wantErrs: []string{"cannot read /nope: no such file or directory"}},
	}
	for _, tt := range tests {
		got := newExpander(testEnv, testReadFile).expand(tt.in)
		if diff := cmp.Diff(tt.wantErrs, got.Errs, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("expand(%q) errors (-want +got):\n%s", tt.in, diff)
			continue
		}
		if len(tt.wantErrs) == 0 && got.Value != tt.want {
			t.Errorf("expand(%q) = %q, want %q", tt.in, got.Value, tt.want)
		}
	}
}

// TestExpandReadsFilesOnce checks that a file referenced many times is read
// once per Parse.
func TestExpandReadsFilesOnce(t *testing.T) {
	reads := 0
	x := newExpander(nil, func(p string) ([]byte, error) {
		reads++
		return nil, &os.PathError{Op: "open", Path: p, Err: errors.New("no such file or directory")}
	})
	for range 3 {
		x.expand("${file:/run/secrets/a}")
	}
	if reads != 1 {
		t.Errorf("read %d times, want 1", reads)
	}
}

// fuzzEnv returns an environment and a file system whose secrets are a and
// b, so that two runs can tell a secret from literal text.
func fuzzEnv(a, b string) (func(string) (string, bool), func(string) ([]byte, error)) {
	env := func(name string) (string, bool) {
		switch name {
		case "SECRET":
			return a, true
		case "PUBLIC":
			return "public-value", true
		case "EMPTY":
			return "", true
		}
		return "", false
	}
	read := func(path string) ([]byte, error) {
		switch path {
		case "/s":
			return []byte(b + "\n"), nil
		case "/denied":
			return nil, &os.PathError{Op: "open", Path: path, Err: errors.New("permission denied")}
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: errors.New("no such file or directory")}
	}
	return env, read
}

// FuzzExpand expands arbitrary strings twice, with two sets of secrets.
// Expansion never panics; its errors never depend on a secret (so they
// cannot show one); and an output contains a secret only when the input
// referenced it.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{
		"", "plain", "${env:SECRET}", "${file:/s}", "$$", "$${env:SECRET}", "${env:", "${env:SECRET", "${x:y}",
		"a${env:PUBLIC}b${env:EMPTY}c", "${file:/denied}", "${file:rel}", "${env:1}", "$", "${}", "${env:SECRET}${file:/s}$$",
	} {
		f.Add(s)
	}
	const (
		secretA1, secretA2 = "sEcr3t-AAAA-1", "sEcr3t-BBBB-1"
		secretB1, secretB2 = "f1le-AAAA-2", "f1le-BBBB-2"
	)
	f.Fuzz(func(t *testing.T, in string) {
		env1, read1 := fuzzEnv(secretA1, secretB1)
		env2, read2 := fuzzEnv(secretA2, secretB2)
		r1 := newExpander(env1, read1).expand(in)
		r2 := newExpander(env2, read2).expand(in)
		if diff := cmp.Diff(r1.Errs, r2.Errs); diff != "" {
			t.Fatalf("errors depend on secret values (-run1 +run2):\n%s", diff)
		}
		if len(r1.Errs) > 0 {
			if r1.Value != "" {
				t.Fatalf("value %q returned with errors", r1.Value)
			}
			return
		}
		refs := make(map[string]bool)
		for _, s := range r1.Subs {
			refs[s.Ref] = true
		}
		for _, c := range []struct{ s1, s2, ref string }{
			{secretA1, secretA2, "${env:SECRET}"},
			{secretB1, secretB2, "${file:/s}"},
		} {
			// A secret that is in the first output but not in the second,
			// at the same place, came from the environment or a file.
			fromInput := strings.Count(r2.Value, c.s1)
			if strings.Count(r1.Value, c.s1) > fromInput && !refs[c.ref] {
				t.Fatalf("expand(%q) = %q shows a secret it did not reference", in, r1.Value)
			}
			if refs[c.ref] && !strings.Contains(r1.Value, c.s1) {
				t.Fatalf("expand(%q) = %q lacks the value of %s", in, r1.Value, c.ref)
			}
		}
		// Without references, the output is the input with $$ unescaped.
		if len(r1.Subs) == 0 && !strings.Contains(in, "${") {
			if want := strings.ReplaceAll(in, "$$", "$"); r1.Value != want {
				t.Fatalf("expand(%q) = %q, want %q", in, r1.Value, want)
			}
		}
	})
}

// FuzzParse parses arbitrary bytes: it never panics, and returns either a
// configuration or an *Error with at least one problem, none showing a
// secret.
func FuzzParse(f *testing.F) {
	for _, path := range []string{
		"testdata/good/minimal.yaml", "testdata/good/full.yaml", "testdata/good/anchors.yaml",
		"testdata/good/expansion.yaml", "testdata/bad/wrong_types.yaml", "testdata/bad/duplicate_key.yaml",
		"testdata/bad/secret_in_other_keys.yaml", "testdata/bad/bad_merge.yaml", "testdata/bad/yaml_syntax.yaml",
		"testdata/bad/yaml_misindented_sink.yaml", "testdata/good/shared_licence.yaml",
	} {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(""))
	f.Add([]byte("a: &a [*a]"))
	f.Add([]byte("sources: [&s {name: x, pingone: {<<: *s}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkWithoutSecrets(t, data)
		c, err := Parse(data, testEnv, testReadFile)
		if err == nil {
			if c == nil {
				t.Fatal("nil config and nil error")
			}
			if len(c.Sources) == 0 || len(c.Sinks) == 0 {
				t.Fatalf("valid config without sources or sinks: %+v", c)
			}
			out, err := c.Redacted()
			if err != nil {
				t.Fatalf("Redacted: %v", err)
			}
			for _, s := range secrets {
				if strings.Contains(string(out), s) && !strings.Contains(string(data), s) {
					t.Fatalf("Redacted shows a secret:\n%s", out)
				}
			}
			for _, k := range c.Sources {
				if k.PingOne != nil && !k.PingOne.ClientSecret.IsZero() && !strings.Contains(string(out), "client_secret: '[redacted]'") {
					t.Fatalf("Redacted shows no [redacted] secret:\n%s", out)
				}
			}
			return
		}
		var cerr *Error
		if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
			t.Fatalf("Parse error %T %v: want an *Error with problems", err, err)
		}
		msg := err.Error()
		for _, s := range secrets {
			if strings.Contains(msg, s) && !strings.Contains(string(data), s) {
				t.Fatalf("error shows a secret:\n%s", msg)
			}
		}
	})
}

// checkWithoutSecrets parses data without its secrets: it returns either a
// configuration whose secrets are all unread, or an *Error with problems,
// none showing a secret.
func checkWithoutSecrets(t *testing.T, data []byte) {
	t.Helper()
	c, err := ParseWithoutSecrets(data, testEnv, testReadFile)
	if err == nil {
		out, err := c.Redacted()
		if err != nil {
			t.Fatalf("Redacted: %v", err)
		}
		for _, s := range secrets {
			if strings.Contains(string(out), s) && !strings.Contains(string(data), s) {
				t.Fatalf("Redacted shows a secret:\n%s", out)
			}
		}
		for _, k := range c.Sources {
			if k.PingOne != nil && (k.PingOne.ClientSecret.IsResolved() || k.PingOne.ClientSecret.Reveal() != "") {
				t.Fatalf("source %s: client_secret was read", k.Name)
			}
		}
		return
	}
	var cerr *Error
	if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
		t.Fatalf("ParseWithoutSecrets error %T %v: want an *Error with problems", err, err)
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) && !strings.Contains(string(data), s) {
			t.Fatalf("error shows a secret:\n%s", err)
		}
	}
}
