package normalize

import (
	"iter"
	"math"
	"slices"

	"github.com/auditrelay/auditrelay/internal/jsonscan"
)

// Valid reports whether data is one JSON value with nothing but
// whitespace around it: exactly what encoding/json's Valid accepts, in one
// pass, several times faster. Members and Elements may then walk data.
func Valid(data []byte) bool {
	end, _, ok := validValue(data, 0, 0, nil, 0)
	return ok && jsonscan.SkipSpace(data, end) == len(data)
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

// A Tape records where the values of a JSON text are, down to a depth,
// while Scan checks the text as Valid does: walking the recorded values
// afterwards reads none of their bytes again. A page of a thousand events
// is then read once, instead of once to check it and again at each level
// a walk with Members and Elements descends. A Tape may be reused.
type Tape struct {
	data  []byte
	max   int
	nodes []tapeNode
}

// tapeNode is one recorded value: its key when it is an object member
// (the raw text between the quotes), its bounds, and the indexes of its
// first and last recorded children and of its next sibling (0: none; the
// root, node 0, is nobody's child).
type tapeNode struct {
	k0, k1, v0, v1    int32
	child, last, next int32
}

// Scan checks data as Valid does and records the values in it down to
// depth levels below the top value, which is node 0. It returns false,
// with nothing to walk, when data is not valid JSON.
//
// Offsets are recorded in 32 bits: data of 2 GiB or more is checked but
// not recorded, and reads as invalid.
func (t *Tape) Scan(data []byte, depth int) bool {
	t.data, t.max, t.nodes = data, depth, t.nodes[:0]
	if len(data) > math.MaxInt32 {
		t.max = 0
		Valid(data)
		return false
	}
	v0 := jsonscan.SkipSpace(data, 0)
	t.nodes = append(t.nodes, tapeNode{v0: int32(v0)})
	end, _, ok := validValue(data, v0, 0, t, 0)
	if !ok || jsonscan.SkipSpace(data, end) != len(data) {
		t.nodes = t.nodes[:0]
		return false
	}
	t.nodes[0].v1 = int32(end)
	return true
}

// Grow makes room for n recorded values, to spare Scan the growing.
func (t *Tape) Grow(n int) { t.nodes = slices.Grow(t.nodes[:0], n) }

// open records a child of node parent, a value at depth+1 starting at v0
// (with its key at k0:k1 when it is a member), and returns its index; -1
// when it is not recorded: past the depth, or without a tape.
func (t *Tape) open(depth int, parent int32, k0, k1, v0 int) int32 {
	if t == nil || parent < 0 || depth >= t.max {
		return -1
	}
	n := int32(len(t.nodes))
	t.nodes = append(t.nodes, tapeNode{k0: int32(k0), k1: int32(k1), v0: int32(v0)})
	p := &t.nodes[parent]
	if p.child == 0 {
		p.child = n
	} else {
		t.nodes[p.last].next = n
	}
	p.last = n
	return int32(n)
}

// close records where the value of node n ends.
func (t *Tape) close(n int32, end int) {
	if n >= 0 {
		t.nodes[n].v1 = int32(end)
	}
}

// Value returns the raw value of node n, a sub-slice of the scanned data.
func (t *Tape) Value(n int) []byte {
	nd := &t.nodes[n]
	return t.data[nd.v0:nd.v1]
}

// Members returns the recorded members of node n when it is an object:
// each key as the raw text between its quotes, and its node. A node at the
// depth Scan was given has none recorded.
func (t *Tape) Members(n int) iter.Seq2[[]byte, int] {
	return func(yield func([]byte, int) bool) {
		if t.data[t.nodes[n].v0] != '{' {
			return
		}
		for c := t.nodes[n].child; c != 0; c = t.nodes[c].next {
			if !yield(t.data[t.nodes[c].k0:t.nodes[c].k1], int(c)) {
				return
			}
		}
	}
}

// Elements returns the recorded elements of node n when it is an array, as
// nodes. A node at the depth Scan was given has none recorded.
func (t *Tape) Elements(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		if t.data[t.nodes[n].v0] != '[' {
			return
		}
		for c := t.nodes[n].child; c != 0; c = t.nodes[c].next {
			if !yield(int(c)) {
				return
			}
		}
	}
}
