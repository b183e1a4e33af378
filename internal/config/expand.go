package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
)

// envNameRE is what an environment variable name in ${env:NAME} looks like.
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// maxRefShown bounds how much of a reference's text a message quotes.
const maxRefShown = 80

// expander resolves the references in scalar values. It reads each file
// once per Parse, however often the file is referenced (YAML aliases can
// repeat a value many times).
type expander struct {
	env      func(string) (string, bool)
	readFile func(string) ([]byte, error)
	files    map[string]fileResult
	// checkOnly checks each reference's form without looking it up: every
	// well-formed reference resolves to "".
	checkOnly bool
}

// fileResult is a cached read of a ${file:...} reference.
type fileResult struct {
	value  string
	reason string // why the file could not be read; empty on success
}

// newExpander returns an expander over env and readFile; nil functions
// resolve nothing.
func newExpander(env func(string) (string, bool), readFile func(string) ([]byte, error)) *expander {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	if readFile == nil {
		readFile = func(p string) ([]byte, error) {
			return nil, &fs.PathError{Op: "read", Path: p, Err: errors.New("reading files is disabled")}
		}
	}
	return &expander{env: env, readFile: readFile, files: make(map[string]fileResult)}
}

// expansion is the result of expanding one string.
type expansion struct {
	// Value is the expanded string; meaningless when Errs is not empty.
	Value string
	// Subs are the references resolved, each with its value.
	Subs []substitution
	// Errs are the problems found, each free of any resolved value.
	Errs []string
	// Mentions are the texts of the references as written, and the names
	// and paths in them: file content that messages may quote.
	Mentions []string
}

// substitution is one resolved reference.
type substitution struct {
	Ref   string // the reference as written, such as "${env:NAME}"
	Value string // what it resolved to
}

// expand replaces every ${env:NAME} and ${file:/abs/path} in s by its value
// and every $$ by $. A $ followed by anything else is kept as it is. An
// unterminated ${, a reference of an unknown kind, an unset variable or an
// unreadable file is an error; every error of s is reported.
func (x *expander) expand(s string) expansion {
	var (
		out strings.Builder
		res expansion
	)
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 >= len(s) || (s[i+1] != '$' && s[i+1] != '{') {
			out.WriteByte(c)
			i++
			continue
		}
		if s[i+1] == '$' {
			out.WriteByte('$')
			i += 2
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			res.Mentions = append(res.Mentions, clip(s[i:]))
			res.Errs = append(res.Errs, fmt.Sprintf("unterminated %s (end the reference with }, or write $$ for a literal $)", clip(s[i:])))
			break
		}
		ref := s[i : i+2+end+1]
		res.Mentions = append(res.Mentions, clip(ref))
		if _, arg, ok := strings.Cut(s[i+2:i+2+end], ":"); ok {
			res.Mentions = append(res.Mentions, clip(arg))
		}
		v, err := x.resolve(ref, s[i+2:i+2+end])
		if err != "" {
			res.Errs = append(res.Errs, err)
		} else {
			res.Subs = append(res.Subs, substitution{Ref: ref, Value: v})
			out.WriteString(v)
		}
		i += len(ref)
	}
	if len(res.Errs) == 0 {
		res.Value = out.String()
	}
	return res
}

// resolve returns the value of one reference (ref is "${inner}"), or the
// reason it has none.
func (x *expander) resolve(ref, inner string) (value, problem string) {
	kind, arg, ok := strings.Cut(inner, ":")
	if !ok {
		if envNameRE.MatchString(inner) {
			return "", fmt.Sprintf("%s has no kind: write ${env:%s} for an environment variable (or $$ for a literal $)", ref, inner)
		}
		return "", fmt.Sprintf("%s is not a reference: want ${env:NAME} or ${file:/path} (write $$ for a literal $)", clip(ref))
	}
	switch kind {
	case "env":
		if !envNameRE.MatchString(arg) {
			return "", fmt.Sprintf("%s: %q is not an environment variable name (letters, digits and _, not starting with a digit)", clip(ref), clip(arg))
		}
		if x.checkOnly {
			return "", ""
		}
		v, ok := x.env(arg)
		if !ok {
			return "", fmt.Sprintf("environment variable %s is not set", arg)
		}
		return v, ""
	case "file":
		if arg == "" || !filepath.IsAbs(arg) {
			return "", fmt.Sprintf("%s: the file path must be absolute", clip(ref))
		}
		if x.checkOnly {
			return "", ""
		}
		r, ok := x.files[arg]
		if !ok {
			r = x.read(arg)
			x.files[arg] = r
		}
		if r.reason != "" {
			return "", fmt.Sprintf("cannot read %s: %s", clip(arg), r.reason)
		}
		return r.value, ""
	}
	return "", fmt.Sprintf("%s: unknown reference kind %q (want env or file)", clip(ref), clip(kind))
}

// read reads the file of a ${file:...} reference and trims one trailing
// newline. The reason of a failure is the operating system's, without the
// path (the caller names it).
func (x *expander) read(path string) fileResult {
	b, err := x.readFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return fileResult{reason: pe.Err.Error()}
		}
		return fileResult{reason: err.Error()}
	}
	v := string(b)
	if t, ok := strings.CutSuffix(v, "\r\n"); ok {
		v = t
	} else {
		v = strings.TrimSuffix(v, "\n")
	}
	return fileResult{value: v}
}

// clip shortens s for quoting in a message.
func clip(s string) string {
	if len(s) <= maxRefShown {
		return s
	}
	r := []rune(s[:maxRefShown])
	return string(r[:len(r)-1]) + "…"
}
