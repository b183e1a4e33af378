package syslog

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/auditrelay/auditrelay/internal/jsonscan"
)

// A small reader of compact JSON (what json.Compact makes of the raw
// event) that finds the few fields a message needs without decoding the
// rest: about ten times faster than json.Unmarshal into a struct for
// these events. Input that is not valid compact JSON never panics; it
// reads as missing fields. Keys are compared as written, so a key spelled
// with escapes does not match. The ends of values are jsonscan's.

// members iterates over the members of a JSON object.
type members struct {
	b        []byte
	i        int
	key, val []byte
}

// membersOf returns an iterator over v's members; none when v is not an
// object.
func membersOf(v []byte) members {
	if len(v) < 2 || v[0] != '{' {
		return members{}
	}
	return members{b: v, i: 1}
}

// next moves to the next member, reporting false at the end.
func (m *members) next() bool {
	b, i := m.b, m.i
	if i < len(b) && b[i] == ',' {
		i++
	}
	if i >= len(b) || b[i] != '"' {
		return false
	}
	ks := i
	i, ok := jsonscan.EndString(b, i)
	if !ok || i >= len(b) || b[i] != ':' {
		m.i = len(b)
		return false
	}
	m.key = b[ks+1 : i-1]
	vs := i + 1
	if i, ok = jsonscan.EndValue(b, vs); !ok {
		m.i = len(b)
		return false
	}
	m.val, m.i = b[vs:i], i
	return true
}

// get returns the value of key in object v, nil when absent.
func get(v []byte, key string) []byte {
	for m := membersOf(v); m.next(); {
		if string(m.key) == key {
			return m.val
		}
	}
	return nil
}

// first returns the first element of array v, nil when there is none.
func first(v []byte) []byte {
	if len(v) < 3 || v[0] != '[' || v[1] == ']' {
		return nil
	}
	end, ok := jsonscan.EndValue(v, 1)
	if !ok {
		return nil
	}
	return v[1:end]
}

// str returns the string value v, "" when v is not a string.
func str(v []byte) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return ""
	}
	in := v[1 : len(v)-1]
	if bytes.IndexByte(in, '\\') < 0 {
		return string(in)
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// integer returns the integer value v.
func integer(v []byte) (int64, bool) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

// compactJSON appends src to dst without the whitespace between tokens,
// as json.Compact does for valid JSON, in one pass without validating:
// the raw event is valid JSON by contract (a source took it from a
// decoded response). It reports false for input whose strings or
// brackets do not close, which is not JSON at all.
func compactJSON(dst, src []byte) ([]byte, bool) {
	start := len(dst)
	dst = jsonscan.AppendCompact(dst, src)
	out := dst[start:]
	if end, ok := jsonscan.EndValue(out, 0); !ok || end != len(out) {
		return dst[:start], false
	}
	return dst, true
}
