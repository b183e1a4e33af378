package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/units"
)

// Limits that keep a hostile or broken file from taking unbounded work.
const (
	// maxVisits bounds the values decoded, aliases included.
	maxVisits = 100_000
	// maxMergeDepth bounds merge keys (<<) that merge mappings with merge
	// keys of their own.
	maxMergeDepth = 16
	// maxProblems bounds the problems reported.
	maxProblems = 100
	// maxKept bounds the problems kept for sorting; more are only counted.
	maxKept = 10 * maxProblems
)

// yamlErrRE splits the line number off a YAML syntax error.
var yamlErrRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// position is where a value is in the file.
type position struct{ line, col int }

// problem is a Problem with what sorting it needs.
type problem struct {
	Problem
	sortAt position // the value's position, or its nearest ancestor's
	seq    int      // order of discovery, for a stable sort
}

// parser turns a file into a Config, collecting problems.
type parser struct {
	x            *expander
	secrets      *expander // checks the references of secrets without resolving them; nil to resolve them
	problems     []problem
	pos          map[string]position // path → position of its key or item
	failed       map[string]bool     // paths whose value could not be decoded
	subs         []substitution      // every reference resolved, once each
	mentions     map[string]bool     // every reference's text, name and path
	seenSub      map[string]bool     // references already in subs
	emptyRefs    map[string][]string // path → the references its value came from, when it came out empty
	visits       int
	dropped      int // problems found past maxKept
	syntaxFailed bool
}

func newParser(x *expander) *parser {
	return &parser{
		x:         x,
		pos:       make(map[string]position),
		failed:    make(map[string]bool),
		seenSub:   make(map[string]bool),
		mentions:  make(map[string]bool),
		emptyRefs: make(map[string][]string),
	}
}

// add records a problem about path at n (nil when the value is not in the
// file).
func (p *parser) add(path string, n *yaml.Node, format string, args ...any) {
	if len(p.problems) >= maxKept {
		p.dropped++
		return
	}
	pr := problem{Problem: Problem{Path: path, Msg: fmt.Sprintf(format, args...)}, seq: len(p.problems)}
	if n != nil {
		pr.Line = n.Line
		pr.sortAt = position{n.Line, n.Column}
	} else {
		pr.sortAt = p.nearest(path)
	}
	p.problems = append(p.problems, pr)
}

// fail records a problem about path at n and marks path as not decoded, so
// that validation does not report the zero value left there as well.
func (p *parser) fail(path string, n *yaml.Node, format string, args ...any) {
	p.failed[path] = true
	p.add(path, n, format, args...)
}

// nearest returns the position of path or of its nearest ancestor in the
// file.
func (p *parser) nearest(path string) position {
	for {
		if at, ok := p.pos[path]; ok {
			return at
		}
		if path == "" {
			return position{}
		}
		path = parentPath(path)
	}
}

// parentPath returns the path one level up: "a.b[2]" → "a.b" → "a" → "".
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// parseYAML parses data into a node tree and returns the document's root
// value, or nil when there is none (an empty file, or a syntax error).
func (p *parser) parseYAML(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file: validation reports what is missing
		}
		p.syntax(data, err)
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p.syntax(data, err)
		return nil
	case len(next.Content) > 0 && !isNull(next.Content[0]):
		p.add("", &next, "a second YAML document (after ---): the configuration is one document")
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

// syntax records a YAML syntax error in data, with its line when it has
// one.
func (p *parser) syntax(data []byte, err error) {
	p.syntaxFailed = true
	msg := err.Error()
	pr := problem{seq: len(p.problems)}
	if m := yamlErrRE.FindStringSubmatch(msg); m != nil {
		pr.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	// The YAML parser (unlike its scanner) reports the 0-based line of the
	// start of the block it was parsing, not the line it stopped at.
	if isParserError(msg) {
		pr.Line++
	}
	block := pr.Line
	if msg == "did not find expected key" || msg == "did not find expected '-' indicator" {
		pr.Line = problemLine(data, err.Error(), block)
	}
	switch {
	case pr.Line != block:
		msg += fmt.Sprintf(" (check this line's indentation against the block that starts at line %d)", block)
	case strings.HasPrefix(msg, "did not find expected"):
		msg += " (check the indentation and brackets from this line on)"
	}
	pr.sortAt.line = pr.Line
	pr.Msg = "invalid YAML: " + msg
	p.problems = append(p.problems, pr)
}

// problemLine returns the 1-based line at which the YAML parser stopped with
// err (its full text) in data, when its error names the line where the
// enclosing block mapping or list starts (block). The parser stops at the first token it
// cannot place, and reads no further than that token's line: the line is
// the first one whose prefix of the file fails with the same error. Without
// one, problemLine returns block.
func problemLine(data []byte, err string, block int) int {
	ends := []int{} // ends[i] is the offset just after line i+1
	for i, c := range data {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		ends = append(ends, len(data))
	}
	fails := func(line int) bool {
		dec := yaml.NewDecoder(bytes.NewReader(data[:ends[line-1]]))
		for {
			var n yaml.Node
			if e := dec.Decode(&n); e != nil {
				return e.Error() == err
			}
		}
	}
	// Failing is monotonic from the problem's line on: bisect for it.
	lo, hi := block, len(ends)
	if lo < 1 || lo > hi || !fails(hi) {
		return block
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// isParserError reports whether a YAML error message comes from the parser
// rather than the scanner.
func isParserError(msg string) bool {
	return strings.HasPrefix(msg, "did not find expected") || strings.HasPrefix(msg, "found duplicate %") ||
		msg == "found incompatible YAML document" || msg == "found undefined tag handle"
}

// decodeRoot decodes the document's root into c.
func (p *parser) decodeRoot(root *yaml.Node, c *Config) {
	root = deref(root)
	if root == nil || isNull(root) {
		return
	}
	if root.Kind != yaml.MappingNode {
		p.fail("", root, "the configuration must be a mapping of keys (data_dir, sources, sinks, …), not %s", describe(root))
		return
	}
	p.decode("", root, reflect.ValueOf(c).Elem())
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

// isNull reports whether n is an empty value ("key:", "~", "null").
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node is, without quoting its value.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "an empty value"
		}
		return "a string"
	}
	return "an unknown kind of value"
}

// join appends a key to a path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// spend counts n values decoded or merged against maxVisits, reporting
// false when the file expands to more than that: aliases can make a small
// file describe a huge one. finish reports it first.
func (p *parser) spend(n int) bool {
	if p.visits > maxVisits {
		return false
	}
	p.visits += n
	return p.visits <= maxVisits
}

// decode decodes n into v, which is addressable, reporting problems under
// path. Values that cannot be decoded are left zero.
func (p *parser) decode(path string, n *yaml.Node, v reflect.Value) {
	if !p.spend(1) {
		return
	}
	if n = deref(n); n == nil {
		p.fail(path, nil, "an alias that names another alias")
		return
	}
	if v.Kind() == reflect.Pointer {
		// A type block is selected by its key, even when empty ("stdout:").
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		if isNull(n) {
			return
		}
		v = v.Elem()
	}
	// The store's DSN is read even without secrets: the commands that
	// inspect the store need it to reach a shared one.
	if p.secrets != nil && v.Type() == reflect.TypeFor[secret.String]() && path != storeDSNPath {
		p.decodeUnresolved(path, n, v)
		return
	}
	if v.CanAddr() {
		if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
			p.decodeText(path, n, v, u)
			return
		}
	}
	switch v.Kind() {
	case reflect.Struct:
		p.decodeMapping(path, n, v, 0)
	case reflect.Slice:
		p.decodeList(path, n, v)
	case reflect.String:
		if s, ok := p.scalar(path, n, "a string"); ok {
			v.SetString(s.Value)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s, ok := p.scalar(path, n, "an integer")
		if !ok || isNull(n) {
			return
		}
		i, err := strconv.ParseInt(strings.TrimSpace(s.Value), 10, v.Type().Bits())
		if err != nil {
			p.cannotUse(path, n, s, "an integer")
			return
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		s, ok := p.scalar(path, n, "a number")
		if !ok || isNull(n) {
			return
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(s.Value), v.Type().Bits())
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			p.cannotUse(path, n, s, "a number")
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		s, ok := p.scalar(path, n, "true or false")
		if !ok || isNull(n) {
			return
		}
		b, err := strconv.ParseBool(strings.TrimSpace(s.Value))
		if err != nil {
			p.cannotUse(path, n, s, "true or false")
			return
		}
		v.SetBool(b)
	default:
		p.fail(path, n, "cannot be decoded (unsupported type %s)", v.Type())
	}
}

// scalarValue is a scalar after expansion.
type scalarValue struct {
	Value    string
	Expanded bool // the value came (partly) from references
}

// scalar returns n's value after expansion. It reports false, with the
// problems recorded, when n is not a scalar or expansion failed. An empty
// value ("key:", "~", "null") is "".
func (p *parser) scalar(path string, n *yaml.Node, want string) (scalarValue, bool) {
	if n.Kind != yaml.ScalarNode {
		p.fail(path, n, "expected %s, got %s", want, describe(n))
		return scalarValue{}, false
	}
	if isNull(n) {
		return scalarValue{}, true
	}
	e := p.x.expand(n.Value)
	for _, m := range e.Mentions {
		p.mentions[m] = true
	}
	for _, s := range e.Subs {
		if s.Value != "" && !p.seenSub[s.Ref] {
			p.seenSub[s.Ref] = true
			p.subs = append(p.subs, s)
		}
	}
	if len(e.Errs) > 0 {
		for _, msg := range e.Errs {
			p.fail(path, n, "%s", msg)
		}
		return scalarValue{}, false
	}
	if e.Value == "" && len(e.Subs) > 0 {
		refs := make([]string, 0, len(e.Subs))
		for _, s := range e.Subs {
			refs = appendUnique(refs, s.Ref)
		}
		p.emptyRefs[path] = refs
	}
	return scalarValue{Value: e.Value, Expanded: len(e.Subs) > 0}, true
}

// explainEmpty rewrites a "required" message about path, when its value was
// written as references that all came out empty, to name them: an operator
// who wrote ${env:NAME} looks for NAME, not for the key.
func (p *parser) explainEmpty(path, msg string) string {
	refs, ok := p.emptyRefs[path]
	rest, required := strings.CutPrefix(msg, "required")
	if !ok || !required {
		return msg
	}
	why := make([]string, len(refs))
	for i, r := range refs {
		if strings.HasPrefix(r, "${env:") {
			why[i] = r + " is set but empty"
		} else {
			why[i] = r + " is empty"
		}
	}
	return "required: " + strings.Join(why, ", ") + rest
}

// storeDSNPath is the path of the one secret LoadWithoutSecrets reads.
const storeDSNPath = "store.postgres.dsn"

// decodeUnresolved decodes a secret without reading it: a value that is set
// becomes secret.Unresolved once its references are found well-formed, and
// an empty one stays zero.
func (p *parser) decodeUnresolved(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		p.fail(path, n, "expected a string, got %s", describe(n))
		return
	}
	if isNull(n) || n.Value == "" {
		return
	}
	e := p.secrets.expand(n.Value)
	for _, m := range e.Mentions {
		p.mentions[m] = true
	}
	if len(e.Errs) > 0 {
		for _, msg := range e.Errs {
			p.fail(path, n, "%s", msg)
		}
		return
	}
	v.Set(reflect.ValueOf(secret.Unresolved()))
}

// cannotUse reports a scalar that is not a valid want. An expanded value is
// never quoted: the message names the text as written instead.
func (p *parser) cannotUse(path string, n *yaml.Node, s scalarValue, want string) {
	if s.Expanded {
		p.fail(path, n, "cannot use the expanded value of %q as %s", clip(n.Value), want)
		return
	}
	p.fail(path, n, "cannot use %q as %s", clip(n.Value), want)
}

// decodeText decodes a scalar through the value's UnmarshalText.
func (p *parser) decodeText(path string, n *yaml.Node, v reflect.Value, u encoding.TextUnmarshaler) {
	want := "a string"
	switch v.Type() {
	case reflect.TypeFor[units.Duration]():
		want = "a duration (like 30s, 2m, 24h or 14d)"
	case reflect.TypeFor[units.ByteSize]():
		want = "a size (like 512KiB, 100MiB or 1GiB)"
	}
	s, ok := p.scalar(path, n, want)
	if !ok || isNull(n) {
		return
	}
	if err := u.UnmarshalText([]byte(s.Value)); err != nil {
		v.SetZero()
		p.cannotUse(path, n, s, want)
	}
}

// decodeList decodes a sequence into the slice v.
func (p *parser) decodeList(path string, n *yaml.Node, v reflect.Value) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = " (write a list as [a, b] or as lines starting with \"- \")"
		}
		p.fail(path, n, "expected a list, got %s%s", describe(n), hint)
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		ip := path + "[" + strconv.Itoa(i) + "]"
		p.pos[ip] = position{item.Line, item.Column}
		p.decode(ip, item, s.Index(i))
	}
	v.Set(s)
}

// pair is one key and value of a mapping.
type pair struct {
	key, value *yaml.Node
	merged     bool // comes from a merge key (<<), so explicit keys override it
}

// pairs returns n's keys and values with merge keys (<<) expanded: the
// mapping's own pairs first, then the merged ones in order.
func (p *parser) pairs(path string, n *yaml.Node, depth int) []pair {
	var own, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!merge" {
			own = append(own, pair{key: k, value: val, merged: depth > 0})
			continue
		}
		if depth >= maxMergeDepth {
			p.add(join(path, "<<"), k, "merge keys nested too deeply")
			continue
		}
		target := deref(val)
		var sources []*yaml.Node
		switch {
		case target != nil && target.Kind == yaml.MappingNode:
			sources = []*yaml.Node{target}
		case target != nil && target.Kind == yaml.SequenceNode:
			sources = target.Content
		}
		if len(sources) == 0 {
			p.add(join(path, "<<"), k, "a merge key takes a mapping or a list of mappings, such as <<: *defaults")
			continue
		}
		for _, m := range sources {
			if !p.spend(1) {
				return append(own, merged...)
			}
			if m = deref(m); m == nil || m.Kind != yaml.MappingNode {
				p.add(join(path, "<<"), k, "a merge key takes a mapping or a list of mappings, such as <<: *defaults")
				continue
			}
			if !p.spend(len(m.Content) / 2) {
				return append(own, merged...)
			}
			for _, mp := range p.pairs(path, m, depth+1) {
				mp.merged = true
				merged = append(merged, mp)
			}
		}
	}
	return append(own, merged...)
}

// field is a settable key of a struct.
type field struct {
	key   string
	index int
}

// fieldsOf lists the keys of a struct type in declaration order.
func fieldsOf(t reflect.Type) []field {
	var fs []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "-" {
			continue
		}
		if key == "" {
			key = strings.ToLower(f.Name)
		}
		fs = append(fs, field{key: key, index: i})
	}
	return fs
}

// decodeMapping decodes a mapping into the struct v, rejecting unknown and
// repeated keys.
func (p *parser) decodeMapping(path string, n *yaml.Node, v reflect.Value, depth int) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.fail(path, n, "expected a mapping (key: value lines), got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	seen := make(map[string]*yaml.Node)
	for _, kv := range p.pairs(path, n, depth) {
		if !p.spend(1) {
			return
		}
		k := kv.key
		if k.Kind != yaml.ScalarNode {
			p.add(path, k, "a key must be a plain string, not %s", describe(k))
			continue
		}
		key := k.Value
		kp := join(path, key)
		if first, dup := seen[key]; dup {
			if !kv.merged {
				p.add(kp, k, "repeated key (first at line %d)", first.Line)
			}
			continue
		}
		seen[key] = k
		f, ok := lookupField(fields, key)
		if !ok {
			hint := ""
			if len(p.problems) < maxKept {
				hint = suggest(key, fields)
			}
			p.add(kp, k, "unknown key%s", hint)
			continue
		}
		p.pos[kp] = position{k.Line, k.Column}
		p.decode(kp, kv.value, v.Field(f.index))
	}
}

// lookupField finds the field of key.
func lookupField(fields []field, key string) (field, bool) {
	for _, f := range fields {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

// suggest returns the hint of an unknown key: the closest known key when it
// is close, else the known keys when there are few of them.
func suggest(key string, fields []field) string {
	if len(fields) == 0 {
		return " (this block takes no settings)"
	}
	best, bestD := "", math.MaxInt
	for _, f := range fields {
		if normalizeKey(f.key) == normalizeKey(key) {
			return fmt.Sprintf(" (did you mean %s?)", f.key)
		}
		if d := editDistance(key, f.key); d < bestD {
			best, bestD = f.key, d
		}
	}
	if bestD <= max(1, min(3, len(key)/3)) {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	if len(fields) <= 6 {
		keys := make([]string, len(fields))
		for i, f := range fields {
			keys[i] = f.key
		}
		return " (known keys: " + strings.Join(keys, ", ") + ")"
	}
	return ""
}

// normalizeKey folds case and drops separators, so that clientId,
// client-id and CLIENT_ID all match client_id.
func normalizeKey(k string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' {
			return -1
		}
		return r
	}, strings.ToLower(k))
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and adjacent transpositions.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 {
		return len(ra) // far from any key
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// issue is a validation problem, before its position is known.
type issue struct {
	path, msg string
}

// addIssues records validation issues, except those about a value that
// could not be decoded (already reported) or under one.
func (p *parser) addIssues(issues []issue) {
	for _, is := range issues {
		if p.underFailed(is.path) {
			continue
		}
		if len(p.problems) >= maxKept {
			p.dropped++
			continue
		}
		at, exact := p.pos[is.path]
		pr := problem{Problem: Problem{Path: is.path, Msg: p.explainEmpty(is.path, is.msg)}, seq: len(p.problems)}
		if exact {
			pr.Line = at.line
			pr.sortAt = at
		} else {
			pr.sortAt = p.nearest(is.path)
		}
		p.problems = append(p.problems, pr)
	}
}

// underFailed reports whether path or one of its ancestors failed to decode.
func (p *parser) underFailed(path string) bool {
	for {
		if p.failed[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parentPath(path)
	}
}

// finish returns the problems in file order, with no expanded value in any
// of them.
func (p *parser) finish() []Problem {
	withholdLeaks(p.problems, p.subs, p.mentions)
	sort.SliceStable(p.problems, func(i, j int) bool {
		a, b := p.problems[i], p.problems[j]
		if (a.sortAt.line == 0) != (b.sortAt.line == 0) {
			return b.sortAt.line == 0
		}
		if a.sortAt != b.sortAt {
			if a.sortAt.line != b.sortAt.line {
				return a.sortAt.line < b.sortAt.line
			}
			return a.sortAt.col < b.sortAt.col
		}
		return a.seq < b.seq
	})
	out := make([]Problem, 0, min(len(p.problems), maxProblems)+1)
	if p.visits > maxVisits {
		out = append(out, Problem{Msg: fmt.Sprintf("the file expands to more than %d values (check its anchors, aliases and merge keys); it was not read to the end", maxVisits)})
	}
	for i, pr := range p.problems {
		if i == maxProblems-1 && len(p.problems)+p.dropped > maxProblems {
			out = append(out, Problem{Msg: fmt.Sprintf("and %d more problems", len(p.problems)+p.dropped-i)})
			break
		}
		out = append(out, pr.Problem)
	}
	return out
}

// appendUnique appends s to list unless it is there.
func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
