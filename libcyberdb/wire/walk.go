package wire

import (
	"encoding/binary"
	"math"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/x448/float16"
)

// The walker: the one place that reads CBOR heads and steps over items
// without the CBOR library. It exists for speed: the daemon's request hot
// path, the store's stored values and the persistence records are split
// and read here, with no reflection and no allocation (BenchmarkWalk,
// BenchmarkDecodeRequest and TestHotPathsDoNotAllocate keep that true).
// The CBOR library checks what comes from outside first (Wellformed:
// structure, nesting and size limits, UTF-8); the walker then splits the
// checked bytes, and anything unusual in an id, op or name falls back to
// the library. Values are still decoded and re-encoded by the library
// (Canonical).
//
// It reads byte slices (frames, records) and strings (the daemon's store
// keeps each entry as a string), hence Bytes.

// Bytes is what the walker reads: a frame or record ([]byte, Raw), or a
// stored entry (string).
type Bytes interface{ ~string | ~[]byte }

// ReadHead reads the definite-length head at the start of b: its major
// type, its argument (a length, a count, a tag number, an integer, a
// float's bits) and its length in bytes. Shortest form is not required.
// ok is false for an empty or truncated head, an indefinite length and
// the reserved additional information values 28 to 30.
func ReadHead[T Bytes](b T) (major byte, arg uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, 0, false
	}
	major = b[0] >> 5
	switch ai := b[0] & 0x1f; {
	case ai < 24:
		return major, uint64(ai), 1, true
	case ai == 24 && len(b) >= 2:
		return major, uint64(b[1]), 2, true
	case ai == 25 && len(b) >= 3:
		return major, uint64(b[1])<<8 | uint64(b[2]), 3, true
	case ai == 26 && len(b) >= 5:
		return major, uint64(b[1])<<24 | uint64(b[2])<<16 | uint64(b[3])<<8 | uint64(b[4]), 5, true
	case ai == 27 && len(b) >= 9:
		return major, uint64(b[1])<<56 | uint64(b[2])<<48 | uint64(b[3])<<40 | uint64(b[4])<<32 |
			uint64(b[5])<<24 | uint64(b[6])<<16 | uint64(b[7])<<8 | uint64(b[8]), 9, true
	}
	return 0, 0, 0, false
}

// HeadLen is the length of the shortest-form head whose argument is n.
func HeadLen(n uint64) int {
	switch {
	case n < 24:
		return 1
	case n <= math.MaxUint8:
		return 2
	case n <= math.MaxUint16:
		return 3
	case n <= math.MaxUint32:
		return 5
	}
	return 9
}

// appendHead appends a shortest-form head of the given major type.
func appendHead(dst []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(dst, m|byte(n))
	case n <= math.MaxUint8:
		return append(dst, m|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, m|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, m|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(dst, m|27), n)
}

// ItemLen returns the length of the definite-length data item at the
// start of b, or -1 when b does not start with a whole one (truncated,
// a reserved head, an indefinite length anywhere inside). It checks
// lengths and structure only, not UTF-8 or what a tag holds: use it on
// items that are canonical (stored ones) or that Wellformed has checked,
// which also bounds their nesting, and so the walker's recursion.
func ItemLen[T Bytes](b T) int { return itemLen(b, false) }

// itemLen is ItemLen; with indef, indefinite lengths are accepted too.
// Their contents are not checked (chunk types, pairs): only items that
// Wellformed has checked are walked with indef.
func itemLen[T Bytes](b T, indef bool) int {
	if len(b) > 0 && b[0]&0x1f == 31 && b[0]>>5 >= 2 && b[0]>>5 <= 5 {
		if !indef {
			return -1
		}
		off := 1
		for off < len(b) && b[off] != 0xff {
			l := itemLen(b[off:], true)
			if l < 0 {
				return -1
			}
			off += l
		}
		if off >= len(b) {
			return -1
		}
		return off + 1
	}
	major, arg, n, ok := ReadHead(b)
	if !ok {
		return -1
	}
	switch major {
	case 2, 3:
		if arg > uint64(len(b)-n) {
			return -1
		}
		return n + int(arg)
	case 4, 5:
		if arg > uint64(len(b)-n) { // every item takes a byte at least
			return -1
		}
		if major == 5 {
			arg *= 2
		}
		off := n
		for range arg {
			l := itemLen(b[off:], indef)
			if l < 0 {
				return -1
			}
			off += l
		}
		return off
	case 6:
		l := itemLen(b[n:], indef)
		if l < 0 {
			return -1
		}
		return n + l
	}
	return n // 0, 1, 7
}

// splitWellformed appends the items of the array raw, which Wellformed
// has checked, to items, aliasing raw (each item's capacity ends with it).
func splitWellformed(raw []byte, items []Raw) []Raw {
	if raw[0]&0x1f == 31 { // indefinite length: items until the break
		for off := 1; raw[off] != 0xff; {
			end := off + itemLen(raw[off:], true)
			items = append(items, raw[off:end:end])
			off = end
		}
		return items
	}
	_, count, off, _ := ReadHead(raw)
	for range count {
		end := off + itemLen(raw[off:], true)
		items = append(items, raw[off:end:end])
		off = end
	}
	return items
}

// walkMap calls fn for each pair of the map raw, which Wellformed has
// checked, in encoded order, aliasing raw.
func walkMap(raw []byte, fn func(k, v Raw) error) error {
	indef := raw[0]&0x1f == 31
	off, pairs := 1, uint64(0)
	if !indef {
		_, pairs, off, _ = ReadHead(raw)
	}
	for i := uint64(0); indef && raw[off] != 0xff || !indef && i < pairs; i++ {
		kend := off + itemLen(raw[off:], true)
		vend := kend + itemLen(raw[kend:], true)
		if err := fn(raw[off:kend:kend], raw[kend:vend:vend]); err != nil {
			return err
		}
		off = vend
	}
	return nil
}

// ItemUint reads an unsigned integer item (any head length) without the
// library; ok is false for anything else.
func ItemUint[T Bytes](b T) (uint64, bool) {
	major, v, n, ok := ReadHead(b)
	return v, ok && major == 0 && n == len(b)
}

// ItemInt reads an integer item (any head length) that fits an int64,
// without the library; ok is false for anything else, bignums included.
func ItemInt[T Bytes](b T) (int64, bool) {
	major, v, n, ok := ReadHead(b)
	if !ok || major > 1 || n != len(b) || v > math.MaxInt64 {
		return 0, false
	}
	if major == 1 {
		return -1 - int64(v), true
	}
	return int64(v), true
}

// ItemText reads a definite-length, valid UTF-8 text item; the string
// aliases b (clone it to keep it). ok is false for anything else.
func ItemText(b []byte) (string, bool) { return itemText(b, true) }

// itemText is ItemText; check false skips the UTF-8 check, for text the
// decoder checked.
func itemText(b []byte, check bool) (string, bool) {
	major, l, n, ok := ReadHead(b)
	if !ok || major != 3 || uint64(len(b)-n) != l || check && !utf8.Valid(b[n:]) {
		return "", false
	}
	if l == 0 {
		return "", true
	}
	return unsafe.String(&b[n], int(l)), true
}

// ItemFloat reads a half, single or double precision float item without
// the library; ok is false for anything else.
func ItemFloat[T Bytes](b T) (float64, bool) {
	major, bits, n, ok := ReadHead(b)
	if !ok || major != 7 || n != len(b) {
		return 0, false
	}
	switch n {
	case 3:
		return float64(float16.Frombits(uint16(bits)).Float32()), true
	case 5:
		return float64(math.Float32frombits(uint32(bits))), true
	case 9:
		return math.Float64frombits(bits), true
	}
	return 0, false // a simple value
}

// checkTimeTag validates the content of tag 0 or 1 (RFC 8949 §3.4.1-2),
// which the well-formedness check alone does not look at.
func checkTimeTag(raw []byte) error {
	var t time.Time
	if err := decMode.Unmarshal(raw, &t); err != nil {
		return decodeError(err)
	}
	return nil
}

// ReplyHead reads the id and code of a reply body [id, code, x] and
// returns the bytes of x (the result, or the message), without decoding
// anything else. ok is false when the body does not start like that;
// DecodeReply says what is wrong with it then. The code is as sent: check
// its range before making it a Code.
func ReplyHead(body []byte) (id, code uint64, rest []byte, ok bool) {
	if len(body) < 4 || body[0] != 0x83 {
		return 0, 0, nil, false
	}
	major, id, n, ok := ReadHead(body[1:])
	if !ok || major != 0 {
		return 0, 0, nil, false
	}
	rest = body[1+n:]
	major, code, n, ok = ReadHead(rest)
	if !ok || major != 0 || n >= len(rest) {
		return 0, 0, nil, false
	}
	return id, code, rest[n:], true
}

// PeekReply reads the id and code of a reply body without decoding the
// rest, for callers that only need to know whether it succeeded (load
// generators, pipelines of writes). ok is false when the body does not
// start like a reply [uint, uint, x]; use DecodeReply then.
func PeekReply(body []byte) (id uint64, code Code, ok bool) {
	id, c, _, ok := ReplyHead(body)
	if !ok || c > 0xffff {
		return 0, 0, false
	}
	return id, Code(c), true
}

// PeekRequestOp reads the op of a request body without decoding the rest,
// for servers that treat some ops apart (the daemon runs save off its
// event loop). ok is false when the body does not start like a request
// [uint, uint, ...]; DecodeRequestInto says what is wrong with it then.
func PeekRequestOp(body []byte) (op Op, ok bool) {
	if len(body) < 3 || body[0]>>5 != 4 || body[0]&0x1f < 2 || body[0]&0x1f > 23 {
		return 0, false
	}
	major, _, n, ok := ReadHead(body[1:])
	if !ok || major != 0 || 1+n >= len(body) {
		return 0, false
	}
	major, v, _, ok := ReadHead(body[1+n:])
	if !ok || major != 0 || v > 0xff {
		return 0, false
	}
	return Op(v), true
}

// SplitArrayInto returns the items of the CBOR array raw, appended to
// items[:0] and aliasing raw. Unlike SplitArray it uses no reflection: the
// library checks raw (structure, limits) and the walker splits it. For
// readers of many records (the daemon's snapshot and log).
func SplitArrayInto(raw []byte, items []Raw) ([]Raw, error) {
	if err := decMode.Wellformed(raw); err != nil {
		return items[:0], decodeError(err)
	}
	if raw[0]>>5 != 4 {
		return items[:0], Errorf(CodeBadRequest, "expected a CBOR array")
	}
	return splitWellformed(raw, items[:0]), nil
}

// Wellformed checks that raw is exactly one well-formed CBOR item within
// the protocol's limits (nesting, lengths), without decoding it.
func Wellformed(raw []byte) error {
	if err := decMode.Wellformed(raw); err != nil {
		return decodeError(err)
	}
	return nil
}
