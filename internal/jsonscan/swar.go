package jsonscan

import (
	"encoding/binary"
	"math/bits"
)

// The string scanners read eight bytes at a time and find the first byte
// that needs a look (a quote, a backslash, a control character) with word
// arithmetic: most of an audit event's bytes are inside strings, and a
// byte-at-a-time loop over them was the largest cost of reading a page.

const (
	lsb = 0x0101010101010101 // the low bit of every byte
	msb = 0x8080808080808080 // the high bit of every byte
)

// zeroBytes returns a word whose lowest set bit is the high bit of the
// first zero byte of w. Bits above it may be set spuriously (a borrow
// carries into the next byte), so only the lowest one is meaningful.
func zeroBytes(w uint64) uint64 { return (w - lsb) & ^w & msb }

// stopBytes returns a word whose lowest set bit is the high bit of the
// first byte of w that is a quote or a backslash; with ctl, a control
// character (below 0x20) too. As with zeroBytes, only the lowest bit is
// meaningful: the lowest bit of an OR of such words is the lowest of
// their true first matches.
func stopBytes(w uint64, ctl bool) uint64 {
	m := zeroBytes(w^(lsb*'"')) | zeroBytes(w^(lsb*'\\'))
	if ctl {
		m |= (w - lsb*0x20) & ^w & msb
	}
	return m
}

// word reads the eight bytes at b[i:]; the caller checks i+8 <= len(b).
func word(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }

// firstByte returns the index, 0 to 7, of the byte whose high bit is the
// lowest set bit of m (m != 0).
func firstByte(m uint64) int { return bits.TrailingZeros64(m) >> 3 }
