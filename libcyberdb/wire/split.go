package wire

import (
	"time"
	"unicode/utf8"
	"unsafe"
)

// The request hot path. DecodeRequest used to decode every frame into a
// []Raw through the CBOR library's reflection, then each id, op and table
// name through another Unmarshal: a third of the daemon's CPU under a
// pipelined load. Now the library checks the whole body once
// (Wellformed: structure, nesting and size limits) and the items are split
// by the walker below, which relies on that check: it never reads a head
// the library has not already validated. Values are still decoded and
// re-encoded by the library (Canonical), and anything unusual in an id, op
// or name falls back to it.

// itemEnd returns the offset just past the well-formed item starting at
// b[0]. b must have passed decMode.Wellformed as part of a larger item.
func itemEnd(b []byte) int {
	major := b[0] >> 5
	if b[0]&0x1f == 31 { // indefinite length: items (or chunks) until 0xff
		off := 1
		for b[off] != 0xff {
			off += itemEnd(b[off:])
		}
		return off + 1
	}
	arg, n, _ := readHeadAny(b)
	switch major {
	case 2, 3:
		return n + int(arg)
	case 4:
		off := n
		for range arg {
			off += itemEnd(b[off:])
		}
		return off
	case 5:
		off := n
		for range 2 * arg {
			off += itemEnd(b[off:])
		}
		return off
	case 6:
		return n + itemEnd(b[n:])
	}
	return n // 0, 1, 7
}

// splitWellformed appends the items of the well-formed array raw to items.
func splitWellformed(raw []byte, items []Raw) []Raw {
	off := 1
	if raw[0]&0x1f == 31 {
		for raw[off] != 0xff {
			end := off + itemEnd(raw[off:])
			items = append(items, raw[off:end:end])
			off = end
		}
		return items
	}
	count, n, _ := readHeadAny(raw)
	off = n
	for range count {
		end := off + itemEnd(raw[off:])
		items = append(items, raw[off:end:end])
		off = end
	}
	return items
}

// fastUint decodes an unsigned integer item without the library.
func fastUint(raw Raw) (uint64, bool) {
	if len(raw) == 0 || raw[0]>>5 != 0 {
		return 0, false
	}
	v, n, ok := readHeadAny(raw)
	return v, ok && n == len(raw)
}

// fastText returns a definite-length, valid UTF-8 text item as a string
// that aliases raw (no copy). ok is false for anything else.
func fastText(raw Raw) (string, bool) {
	if len(raw) == 0 || raw[0]>>5 != 3 || raw[0]&0x1f == 31 {
		return "", false
	}
	l, n, ok := readHeadAny(raw)
	if !ok || uint64(len(raw)-n) != l || !utf8.Valid(raw[n:]) {
		return "", false
	}
	if l == 0 {
		return "", true
	}
	return unsafe.String(&raw[n], int(l)), true
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

// PeekReply reads the id and code of a reply body without decoding the
// rest, for callers that only need to know whether it succeeded (load
// generators, pipelines of writes). ok is false when the body does not
// start like a reply [uint, uint, ...]; use DecodeReply then.
func PeekReply(body []byte) (id uint64, code Code, ok bool) {
	if len(body) < 3 || body[0] != 0x83 || body[1]>>5 != 0 {
		return 0, 0, false
	}
	id, n, ok := readHeadAny(body[1:])
	if !ok || 1+n >= len(body) || body[1+n]>>5 != 0 {
		return 0, 0, false
	}
	c, _, ok := readHeadAny(body[1+n:])
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
	if len(body) < 3 || body[0]>>5 != 4 || body[0]&0x1f < 2 || body[0]&0x1f > 23 || body[1]>>5 != 0 {
		return 0, false
	}
	_, n, ok := readHeadAny(body[1:])
	if !ok || 1+n >= len(body) || body[1+n]>>5 != 0 {
		return 0, false
	}
	v, _, ok := readHeadAny(body[1+n:])
	if !ok || v > 0xff {
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

// ItemUint reads an unsigned integer item (any head length) without the
// library; ok is false for anything else.
func ItemUint(raw []byte) (uint64, bool) { return fastUint(raw) }

// ItemText reads a definite-length, valid UTF-8 text item; the string
// aliases raw (clone it to keep it). ok is false for anything else.
func ItemText(raw []byte) (string, bool) { return fastText(raw) }

// ReadHead reads the definite-length head at the start of b: its major
// type, its argument and its length in bytes. ok is false for an empty or
// truncated head and for indefinite lengths.
func ReadHead(b []byte) (major byte, arg uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, 0, false
	}
	arg, n, ok = readHeadAny(b)
	return b[0] >> 5, arg, n, ok
}
