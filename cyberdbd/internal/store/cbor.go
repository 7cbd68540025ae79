package store

import (
	"encoding/binary"
	"math"
)

// Stored keys and values are canonical CBOR (RFC 8949 §4.2.1, produced by
// wire.Canonical): every head is in shortest form and every length is
// definite. The readers below rely on that and are not general decoders.

// head reads the head of the item starting at s[off]: its major type, its
// argument (a length, a count, a tag number or an integer) and the offset
// just past the head. ok is false when s is truncated or uses an
// indefinite length.
func head(s string, off int) (major byte, arg uint64, next int, ok bool) {
	if off >= len(s) {
		return 0, 0, 0, false
	}
	b := s[off]
	major, ai := b>>5, b&0x1f
	switch {
	case ai < 24:
		return major, uint64(ai), off + 1, true
	case ai == 24 && off+2 <= len(s):
		return major, uint64(s[off+1]), off + 2, true
	case ai == 25 && off+3 <= len(s):
		return major, uint64(binary.BigEndian.Uint16([]byte(s[off+1 : off+3]))), off + 3, true
	case ai == 26 && off+5 <= len(s):
		return major, uint64(binary.BigEndian.Uint32([]byte(s[off+1 : off+5]))), off + 5, true
	case ai == 27 && off+9 <= len(s):
		return major, binary.BigEndian.Uint64([]byte(s[off+1 : off+9])), off + 9, true
	}
	return 0, 0, 0, false
}

// itemEnd returns the offset just past the data item starting at s[off],
// or -1 when s does not hold a whole definite-length item there.
func itemEnd(s string, off int) int {
	major, arg, next, ok := head(s, off)
	if !ok {
		return -1
	}
	switch major {
	case 0, 1, 7:
		return next
	case 2, 3:
		if arg > uint64(len(s)-next) {
			return -1
		}
		return next + int(arg)
	case 4, 5:
		n := arg
		if major == 5 {
			n *= 2
		}
		if n > uint64(len(s)-next) { // every item takes at least one byte
			return -1
		}
		for i := uint64(0); i < n; i++ {
			if next = itemEnd(s, next); next < 0 {
				return -1
			}
		}
		return next
	default: // 6: tag, then its content item
		return itemEnd(s, next)
	}
}

// smallInt returns the canonical integer s as an int64; ok is false when s
// is not an integer item or does not fit.
func smallInt(s string) (v int64, ok bool) {
	major, arg, next, ok := head(s, 0)
	if !ok || next != len(s) || major > 1 || arg > math.MaxInt64 {
		return 0, false
	}
	if major == 0 {
		return int64(arg), true
	}
	return -1 - int64(arg), true
}

// halfToFloat converts an IEEE 754 half-precision value to float64.
func halfToFloat(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	frac := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(frac, -24)
	case 0x1f:
		if frac != 0 {
			return math.NaN()
		}
		return sign * math.Inf(1)
	}
	return sign * math.Ldexp(frac+1024, exp-25)
}

// floatItem decodes the canonical float item s (half, single or double).
func floatItem(s string) (float64, bool) {
	if len(s) == 0 {
		return 0, false
	}
	switch {
	case s[0] == 0xf9 && len(s) == 3:
		return halfToFloat(binary.BigEndian.Uint16([]byte(s[1:]))), true
	case s[0] == 0xfa && len(s) == 5:
		return float64(math.Float32frombits(binary.BigEndian.Uint32([]byte(s[1:])))), true
	case s[0] == 0xfb && len(s) == 9:
		return math.Float64frombits(binary.BigEndian.Uint64([]byte(s[1:]))), true
	}
	return 0, false
}
