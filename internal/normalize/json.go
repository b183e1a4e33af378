package normalize

import (
	"bytes"
	"unicode/utf8"
	"unsafe"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/jsonscan"
)

// This file holds the two halves of the normalizers' JSON handling: a
// scanner over input already checked by json.Valid, which hands out raw
// values as sub-slices without decoding or allocating, and appenders that
// write output JSON straight into a byte slice.

// members iterates over the members of a raw JSON object. A value that is
// not an object has no members. An iterator over an event's top level
// reads the members the validator recorded instead of scanning again.
type members struct {
	b []byte
	i int
}

// topMembers iterates over an event's top-level members: those the
// validator recorded when they fit, by scanning otherwise. It holds the
// recorded offsets by value, free of pointers, so that they stay on the
// stack whatever the normalizers do with the values.
type topMembers struct {
	scan members
	rec  bool
	i, n int
	top  [maxTop]member
}

// next returns the next member's key and value, as members.next does.
func (t *topMembers) next() (key, val []byte, ok bool) {
	if !t.rec {
		return t.scan.next()
	}
	if t.i >= t.n {
		return nil, nil, false
	}
	c := t.top[t.i]
	t.i++
	return t.scan.b[c.k0:c.k1], t.scan.b[c.v0:c.v1], true
}

// member is where one member of an object is: its key (the raw text
// between the quotes) and its raw value, as offsets into the object.
// Offsets rather than slices keep a recorded list free of pointers, so
// that it stays on the caller's stack.
type member struct {
	k0, k1, v0, v1 int32
}

// objectMembers returns an iterator over the members of v.
func objectMembers(v []byte) members {
	if len(v) < 2 || v[0] != '{' {
		return members{}
	}
	return members{b: v, i: 1}
}

// next returns the next member's key (the raw text between its quotes, so
// escapes are left as they are) and raw value.
func (m *members) next() (key, val []byte, ok bool) {
	i := jsonscan.SkipSpace(m.b, m.i)
	if i < len(m.b) && m.b[i] == ',' {
		i = jsonscan.SkipSpace(m.b, i+1)
	}
	if i >= len(m.b) || m.b[i] != '"' {
		m.i = len(m.b)
		return nil, nil, false
	}
	end, ok := jsonscan.EndString(m.b, i)
	if !ok {
		// Input cut inside a key (data not validated): no more members.
		m.i = len(m.b)
		return nil, nil, false
	}
	key = m.b[i+1 : end-1]
	i = jsonscan.SkipSpace(m.b, end)
	if i < len(m.b) && m.b[i] == ':' {
		i = jsonscan.SkipSpace(m.b, i+1)
	}
	vend := jsonscan.SkipValue(m.b, i)
	val = m.b[i:vend]
	m.i = vend
	return key, val, true
}

// elements iterates over the elements of a raw JSON array.
type elements struct {
	b []byte
	i int
}

// arrayElements returns an iterator over the elements of v; a value that
// is not an array has none.
func arrayElements(v []byte) elements {
	if len(v) < 2 || v[0] != '[' {
		return elements{}
	}
	return elements{b: v, i: 1}
}

// next returns the next element's raw value.
func (e *elements) next() ([]byte, bool) {
	i := jsonscan.SkipSpace(e.b, e.i)
	if i < len(e.b) && e.b[i] == ',' {
		i = jsonscan.SkipSpace(e.b, i+1)
	}
	if i >= len(e.b) || e.b[i] == ']' {
		e.i = len(e.b)
		return nil, false
	}
	end := jsonscan.SkipValue(e.b, i)
	e.i = end
	return e.b[i:end], true
}

// get returns the raw value of key in object v, nil when absent. It is a
// linear scan: use it for small objects.
func get(v []byte, key string) []byte {
	m := objectMembers(v)
	for {
		k, val, ok := m.next()
		if !ok {
			return nil
		}
		if string(k) == key {
			return val
		}
	}
}

// str returns the contents of v when it is a non-empty JSON string, as the
// raw text between the quotes (escapes left as they are), and nil
// otherwise. Because it is raw, compare it only with text that needs no
// escaping; write it with appendRawStr.
func str(v []byte) []byte {
	if len(v) < 3 || v[0] != '"' {
		return nil
	}
	return v[1 : len(v)-1]
}

// isObject reports whether v is a JSON object.
func isObject(v []byte) bool { return len(v) > 1 && v[0] == '{' }

// text decodes the JSON string v, or returns "" when v is not a string.
// It allocates; the normalizers use it off the hot paths.
func text(v []byte) string {
	if len(v) < 2 || v[0] != '"' {
		return ""
	}
	return textOf(v[1 : len(v)-1])
}

// number returns the raw text of v when it is a JSON number, nil otherwise.
func number(v []byte) []byte {
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return nil
	}
	return v
}

// integer parses v as a JSON integer (no fraction, no exponent) that fits
// in an int64.
func integer(v []byte) (int64, bool) {
	neg := len(v) > 0 && v[0] == '-'
	if neg {
		v = v[1:]
	}
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// equalFold reports whether the ASCII text b equals s ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

// hasPrefixFold reports whether b starts with s, ignoring ASCII case.
func hasPrefixFold(b []byte, s string) bool {
	return len(b) >= len(s) && equalFold(b[:len(s)], s)
}

// containsFold reports whether b contains s, ignoring ASCII case.
func containsFold(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if equalFold(b[i:i+len(s)], s) {
			return true
		}
	}
	return false
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Appenders. Each writes one member of the object being built, with the
// comma it needs: the byte before a member is '{' for the first one.

// sep appends the comma that separates a member or element from the one
// before it, unless b ends an opening brace or bracket.
func sep(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] != '{' && b[n-1] != '[' {
		b = append(b, ',')
	}
	return b
}

// key appends a member's key (which needs no escaping) and its colon.
func key(b []byte, k string) []byte {
	b = sep(b)
	b = append(b, '"')
	b = append(b, k...)
	return append(b, '"', ':')
}

// putStr appends k with the string v, unless v is empty.
func putStr(b []byte, k, v string) []byte {
	if v == "" {
		return b
	}
	return event.AppendJSONString(key(b, k), v)
}

// putRaw appends k with the raw JSON string contents v (from str), unless
// v is empty.
func putRaw(b []byte, k string, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	return appendRawStr(key(b, k), v)
}

// appendRawStr appends the raw string contents v between quotes. The
// input was checked to be valid JSON in valid UTF-8, so v needs no
// escaping.
func appendRawStr(b, v []byte) []byte {
	b = append(b, '"')
	b = append(b, v...)
	return append(b, '"')
}

// putInt appends k with the integer n.
func putInt(b []byte, k string, n int64) []byte {
	return appendInt(key(b, k), n)
}

// putBool appends k with v.
func putBool(b []byte, k string, v bool) []byte {
	if v {
		return append(key(b, k), "true"...)
	}
	return append(key(b, k), "false"...)
}

func appendInt(b []byte, n int64) []byte {
	if n < 0 {
		b = append(b, '-')
		n = -n
	}
	var d [20]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, d[i:]...)
}

// open appends k with an opening brace. The caller keeps len(b) from
// before the call for closeObj.
func open(b []byte, k string) []byte {
	return append(key(b, k), '{')
}

// closeObj closes the object opened at mark, or removes the member
// entirely when nothing was written into it.
func closeObj(b []byte, mark int) []byte {
	if b[len(b)-1] == '{' {
		return b[:mark]
	}
	return append(b, '}')
}

// openArr appends k with an opening bracket. The caller keeps len(b)
// from before the call for closeArr.
func openArr(b []byte, k string) []byte {
	return append(key(b, k), '[')
}

// closeArr closes the array opened at mark, or removes the member when it
// is empty.
func closeArr(b []byte, mark int) []byte {
	if b[len(b)-1] == '[' {
		return b[:mark]
	}
	return append(b, ']')
}

// prepare checks that data is one JSON object and returns it in valid
// UTF-8: invalid bytes, which json.Valid lets through inside strings,
// become U+FFFD, so that everything copied from it is valid output. The
// object's members are recorded in top (nil when they do not fit), so
// that the normalizers need not scan the event again to find them.
func prepare(data []byte, top []member) ([]byte, []member, bool) {
	d := bytes.TrimSpace(data)
	if len(d) < 2 || d[0] != '{' {
		return nil, nil, false
	}
	top, ascii, ok := validTop(d, top)
	if !ok {
		return nil, nil, false
	}
	if !ascii && !utf8.Valid(d) {
		// Replacing bytes moves the members: find them again.
		d = bytes.ToValidUTF8(d, []byte("\uFFFD"))
		top, _, _ = validTop(d, top[:0])
	}
	return d, top, true
}

// appendJSONBytes appends data as one JSON string. It hands data to
// event.AppendJSONString as a string without copying it: the appender
// only reads its argument, and data is not modified while it runs.
func appendJSONBytes(b, data []byte) []byte {
	if len(data) == 0 {
		return append(b, '"', '"')
	}
	return event.AppendJSONString(b, unsafe.String(unsafe.SliceData(data), len(data)))
}

// putNum appends k with the raw JSON number v, unless v is not a number.
func putNum(b []byte, k string, v []byte) []byte {
	if number(v) == nil {
		return b
	}
	return append(key(b, k), v...)
}
