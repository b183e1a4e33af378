package normalize

import "iter"

// Valid reports whether data is one JSON value with nothing but
// whitespace around it: exactly what encoding/json's Valid accepts, in one
// pass, several times faster. Members and Elements may then walk data.
func Valid(data []byte) bool {
	end, _, ok := validValue(data, 0, 0)
	return ok && skipWS(data, end) == len(data)
}

// Members returns the members of the JSON object v (valid, see Valid), in
// order: each key as the raw text between its quotes (escapes left as
// they are) and its raw value, both sub-slices of v. A value that is not
// an object has no members.
func Members(v []byte) iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		m := objectMembers(v)
		for k, val, ok := m.next(); ok; k, val, ok = m.next() {
			if !yield(k, val) {
				return
			}
		}
	}
}

// Elements returns the elements of the JSON array v (valid, see Valid), in
// order, as sub-slices of v. A value that is not an array has none.
func Elements(v []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		e := arrayElements(v)
		for el, ok := e.next(); ok; el, ok = e.next() {
			if !yield(el) {
				return
			}
		}
	}
}
