// Package jsonscan finds the ends of JSON values in a byte slice without
// decoding or allocating: SkipValue and SkipString for JSON already known
// to be valid, ValidString to check a string on the way. The normalizers,
// the Sentinel and syslog sinks and the emulators read raw JSON through
// it; EndString and EndValue also say whether input cut short ends.
package jsonscan

import "bytes"

// SkipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func SkipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// SkipString returns the index just past the string whose opening quote
// is at b[i], len(b) when it does not end. Like SkipValue it checks
// nothing.
func SkipString(b []byte, i int) int {
	end, _ := EndString(b, i)
	return end
}

// EndString is SkipString that also reports whether the string ends in
// b: false, with len(b), when b is cut inside it.
func EndString(b []byte, i int) (int, bool) {
	i++
	for i+8 <= len(b) {
		m := stopBytes(word(b, i), false)
		if m == 0 {
			i += 8
			continue
		}
		i += firstByte(m)
		if b[i] == '"' {
			return i + 1, true
		}
		i += 2 // the backslash and the byte it escapes
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return len(b), false
}

// SkipValue returns the index just past the JSON value that starts at
// b[i], len(b) when it does not end there. It is for JSON already known to
// be valid: it finds the end of a value, and checks nothing.
func SkipValue(b []byte, i int) int {
	end, _ := EndValue(b, i)
	return end
}

// EndValue is SkipValue that also reports whether the value ends in b:
// false when b is cut inside a string, object or array, or holds no value
// at i.
func EndValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch b[i] {
	case '"':
		return EndString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, ok := EndString(b, i)
				if !ok {
					return end, false
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, true
				}
			}
		}
		return len(b), false
	}
	start := i
	for ; i < len(b); i++ { // number, true, false, null
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i, i > start
		}
	}
	return i, i > start
}

// ValidString checks the string whose opening quote is at b[i]: it
// returns the index just past it, whether it is all ASCII, and whether it
// is a valid JSON string (escapes, no control characters; UTF-8 is the
// caller's to check when ascii is false).
func ValidString(b []byte, i int) (int, bool, bool) {
	ascii := true
	i++
	for {
		// Whole words without a quote, backslash or control character
		// only need their high bits looked at.
		for i+8 <= len(b) {
			w := word(b, i)
			m := stopBytes(w, true)
			if m == 0 {
				if w&msb != 0 {
					ascii = false
				}
				i += 8
				continue
			}
			n := firstByte(m)
			if w&msb&(1<<(8*n)-1) != 0 {
				ascii = false
			}
			i += n
			break
		}
		if i >= len(b) {
			return i, ascii, false
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, ascii, true
		case c == '\\':
			i++
			if i >= len(b) {
				return i, ascii, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 || !IsHex(b[i+1]) || !IsHex(b[i+2]) || !IsHex(b[i+3]) || !IsHex(b[i+4]) {
					return i, ascii, false
				}
				i += 4
			default:
				return i, ascii, false
			}
			i++
		case c < 0x20:
			return i, ascii, false
		default: // an ordinary byte of the last, partial word
			if c >= 0x80 {
				ascii = false
			}
			i++
		}
	}
}

// AppendCompact appends the JSON value src to dst without the white space
// between its tokens, as json.Compact does for valid JSON, in one pass
// and without validating. For input that may not be JSON, check the
// result with EndValue: a string or bracket of src that does not close
// leaves one open in it too.
func AppendCompact(dst, src []byte) []byte {
	if bytes.IndexAny(src, " \t\r\n") < 0 {
		return append(dst, src...)
	}
	for i := 0; i < len(src); {
		switch src[i] {
		case ' ', '\t', '\r', '\n':
			i++
			continue
		case '"':
			end := SkipString(src, i)
			dst = append(dst, src[i:end]...)
			i = end
			continue
		}
		// A run of bytes that are neither white space nor a quote.
		j := i + 1
		for j < len(src) {
			if d := src[j]; d == ' ' || d == '\t' || d == '\r' || d == '\n' || d == '"' {
				break
			}
			j++
		}
		dst = append(dst, src[i:j]...)
		i = j
	}
	return dst
}

// IsHex reports whether c is a hexadecimal digit.
func IsHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
