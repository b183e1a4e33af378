package normalize

import "github.com/auditrelay/auditrelay/internal/jsonscan"

// validValue checks the JSON value that starts at b[i] (after any
// whitespace) and returns the index just past it. It accepts exactly what
// encoding/json's Valid accepts (fuzzed against it), in one pass without
// the per-byte state functions, so that checking an event costs a
// fraction of normalizing it. ascii reports whether every byte it saw was
// ASCII, so the caller knows when a UTF-8 check is needed.
//
// With a tape, it records the values below the one it checks while depth
// is under the tape's limit, as children of the tape's node parent.
func validValue(b []byte, i, depth int, t *Tape, parent int32) (end int, ascii, ok bool) {
	i = jsonscan.SkipSpace(b, i)
	if i >= len(b) || depth > 10000 {
		return i, true, false
	}
	switch c := b[i]; {
	case c == '"':
		return jsonscan.ValidString(b, i)
	case c == '{':
		ascii = true
		i = jsonscan.SkipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, true, true
		}
		for {
			i = jsonscan.SkipSpace(b, i)
			if i >= len(b) || b[i] != '"' {
				return i, ascii, false
			}
			ks := i
			var a bool
			if i, a, ok = jsonscan.ValidString(b, i); !ok {
				return i, ascii, false
			}
			ascii = ascii && a
			k1 := i - 1
			i = jsonscan.SkipSpace(b, i)
			if i >= len(b) || b[i] != ':' {
				return i, ascii, false
			}
			vs := jsonscan.SkipSpace(b, i+1)
			n := t.open(depth, parent, ks+1, k1, vs)
			if i, a, ok = validValue(b, vs, depth+1, t, n); !ok {
				return i, ascii, false
			}
			t.close(n, i)
			ascii = ascii && a
			i = jsonscan.SkipSpace(b, i)
			if i >= len(b) {
				return i, ascii, false
			}
			switch b[i] {
			case ',':
				i++
			case '}':
				return i + 1, ascii, true
			default:
				return i, ascii, false
			}
		}
	case c == '[':
		ascii = true
		i = jsonscan.SkipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, true, true
		}
		for {
			var a bool
			vs := jsonscan.SkipSpace(b, i)
			n := t.open(depth, parent, 0, 0, vs)
			if i, a, ok = validValue(b, vs, depth+1, t, n); !ok {
				return i, ascii, false
			}
			t.close(n, i)
			ascii = ascii && a
			i = jsonscan.SkipSpace(b, i)
			if i >= len(b) {
				return i, ascii, false
			}
			switch b[i] {
			case ',':
				i++
			case ']':
				return i + 1, ascii, true
			default:
				return i, ascii, false
			}
		}
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	case c == '-' || ('0' <= c && c <= '9'):
		return validNumber(b, i)
	}
	return i, true, false
}

func literal(b []byte, i int, lit string) (int, bool, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, true, false
	}
	return i + len(lit), true, true
}

// validNumber checks the number that starts at b[i].
func validNumber(b []byte, i int) (int, bool, bool) {
	digits := func(i int) int {
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(i)
	default:
		return i, true, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return j, true, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return j, true, false
		}
		i = j
	}
	return i, true, true
}

// validTop checks the JSON object b (which starts with '{' and has no
// surrounding whitespace) and records its members in top, up to its
// capacity; when they do not fit it returns a nil slice (and still checks
// the whole object).
func validTop(b []byte, top []member) (members []member, ascii, ok bool) {
	top = top[:0]
	if len(b) > 1<<31-1 {
		top = top[:0:0] // offsets would not fit: scan instead
	}
	ascii = true
	i := jsonscan.SkipSpace(b, 1)
	if i < len(b) && b[i] == '}' {
		return top, true, i+1 == len(b)
	}
	fits := true
	for {
		i = jsonscan.SkipSpace(b, i)
		if i >= len(b) || b[i] != '"' {
			return nil, ascii, false
		}
		ks := i
		var a bool
		if i, a, ok = jsonscan.ValidString(b, i); !ok {
			return nil, ascii, false
		}
		ascii = ascii && a
		k0, k1 := ks+1, i-1
		i = jsonscan.SkipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return nil, ascii, false
		}
		vs := jsonscan.SkipSpace(b, i+1)
		if i, a, ok = validValue(b, vs, 1, nil, 0); !ok {
			return nil, ascii, false
		}
		ascii = ascii && a
		if fits && len(top) < cap(top) {
			top = append(top, member{k0: int32(k0), k1: int32(k1), v0: int32(vs), v1: int32(i)})
		} else {
			fits = false
		}
		i = jsonscan.SkipSpace(b, i)
		if i >= len(b) {
			return nil, ascii, false
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			if i+1 != len(b) {
				return nil, ascii, false
			}
			if !fits {
				top = nil
			}
			return top, ascii, true
		default:
			return nil, ascii, false
		}
	}
}
