package persist

import (
	"encoding/binary"
	"errors"
)

// A minimal reader for the CBOR of records: heads, and the extent of one
// data item, enough to split a record's array without decoding its items.
// Keys and values stay the exact bytes they were stored as.

var errCBOR = errors.New("malformed CBOR")

// maxDepth bounds nesting while skipping items (wire allows far less).
const maxDepth = 1000

// head reads the head at b[0]: major type, argument, head length.
func head(b []byte) (major byte, arg uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, 0, false
	}
	major, ai := b[0]>>5, b[0]&0x1f
	switch {
	case ai < 24:
		return major, uint64(ai), 1, true
	case ai == 24 && len(b) >= 2:
		return major, uint64(b[1]), 2, true
	case ai == 25 && len(b) >= 3:
		return major, uint64(binary.BigEndian.Uint16(b[1:])), 3, true
	case ai == 26 && len(b) >= 5:
		return major, uint64(binary.BigEndian.Uint32(b[1:])), 5, true
	case ai == 27 && len(b) >= 9:
		return major, binary.BigEndian.Uint64(b[1:]), 9, true
	}
	return 0, 0, 0, false
}

// itemLen returns the length of the definite-length item at b[0], or -1.
func itemLen(b []byte, depth int) int {
	major, arg, n, ok := head(b)
	if !ok || depth > maxDepth {
		return -1
	}
	switch major {
	case 0, 1, 7:
		return n
	case 2, 3:
		if arg > uint64(len(b)-n) {
			return -1
		}
		return n + int(arg)
	case 4, 5:
		k := arg
		if major == 5 {
			k *= 2
		}
		if k > uint64(len(b)-n) {
			return -1
		}
		for i := uint64(0); i < k; i++ {
			m := itemLen(b[n:], depth+1)
			if m < 0 {
				return -1
			}
			n += m
		}
		return n
	default: // tag
		m := itemLen(b[n:], depth+1)
		if m < 0 {
			return -1
		}
		return n + m
	}
}

// splitArray returns the items of the array that is exactly b, aliasing b,
// appended to dst.
func splitArray(dst [][]byte, b []byte) ([][]byte, error) {
	major, k, n, ok := head(b)
	if !ok || major != 4 || k > uint64(len(b)) {
		return dst, errCBOR
	}
	for i := uint64(0); i < k; i++ {
		m := itemLen(b[n:], 1)
		if m < 0 {
			return dst, errCBOR
		}
		dst = append(dst, b[n:n+m])
		n += m
	}
	if n != len(b) {
		return dst, errCBOR
	}
	return dst, nil
}

// uintItem reads item b as an unsigned integer.
func uintItem(b []byte) (uint64, bool) {
	major, v, n, ok := head(b)
	return v, ok && major == 0 && n == len(b)
}

// textItem reads item b as a text string.
func textItem(b []byte) (string, bool) {
	major, v, n, ok := head(b)
	if !ok || major != 3 || v != uint64(len(b)-n) {
		return "", false
	}
	return string(b[n:]), true
}
