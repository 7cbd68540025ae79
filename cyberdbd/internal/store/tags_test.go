package store

import (
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Tag 55799 (self-described CBOR) is an opaque tag like any other, kept at
// every depth (PROTOCOL.md 5). Before the fix the array splitter (the CBOR
// library's decoder) dropped it from array elements only: lextend l
// [55799("b")] stored "b", and dict pairs [55799("k"), 1] and ["k", 2]
// collapsed into one key.

// sd is 55799(item).
func sd(item wire.Raw) wire.Raw { return append(wire.Raw{0xd9, 0xd9, 0xf7}, item...) }

func text(s string) wire.Raw { return wire.AppendText(nil, s) }

func arr(items ...wire.Raw) wire.Raw {
	out := wire.AppendArrayHeader(nil, len(items))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func TestTag55799KeptInLists(t *testing.T) {
	s := New()
	newListTable(t, s, "l")
	do(t, s, wire.OpLAppend, "l", sd(text("a")))
	do(t, s, wire.OpLExtend, "l", arr(sd(text("b")), arr(sd(text("c")))))
	do(t, s, wire.OpLInsert, "l", 0, arr(arr(sd(text("d")))))
	do(t, s, wire.OpLAppend, "l", wire.Raw(append([]byte{0xd8, 0x65}, arr(sd(text("e")))...))) // 101([55799("e")])
	expect(t, do(t, s, wire.OpLToList, "l"),
		`[[[55799("d")]], 55799("a"), 55799("b"), [55799("c")], 101([55799("e")])]`)
	// Tagged and untagged values differ.
	expect(t, do(t, s, wire.OpLCount, "l", text("b")), "0")
	expect(t, do(t, s, wire.OpLCount, "l", sd(text("b"))), "1")

	do(t, s, wire.OpCreateList, "c", arr(sd(text("b")), text("b")))
	expect(t, do(t, s, wire.OpLToList, "c"), `[55799("b"), "b"]`)

	// A tagged array is not an array.
	fails(t, s, wire.CodeBadRequest, wire.OpLExtend, "l", sd(arr(text("x"))))
	fails(t, s, wire.CodeBadRequest, wire.OpCreateList, "c2", sd(arr(text("x"))))
	fails(t, s, wire.CodeBadRequest, wire.OpLSetSlice, "l", 0, 0, nil, sd(arr(text("x"))))
	do(t, s, wire.OpLSetSlice, "l", 0, 5, nil, arr(sd(text("f")), text("f")))
	expect(t, do(t, s, wire.OpLToList, "l"), `[55799("f"), "f"]`)
}

func TestTag55799KeptInDicts(t *testing.T) {
	s := New()
	newDictTable(t, s, "d")
	pairs := arr(arr(sd(text("k")), text("tagged")), arr(text("k"), text("plain")))
	do(t, s, wire.OpDUpdate, "d", pairs)
	expect(t, do(t, s, wire.OpDItems, "d"), `[[55799("k"), "tagged"], ["k", "plain"]]`)
	do(t, s, wire.OpCreateDict, "c", pairs)
	expect(t, do(t, s, wire.OpDLen, "c"), "2")
	do(t, s, wire.OpDSet, "d", sd(text("k")), arr(sd(text("v"))))
	expect(t, do(t, s, wire.OpDGet, "d", sd(text("k"))), `[55799("v")]`)
	expect(t, do(t, s, wire.OpDGet, "d", text("k")), `"plain"`)

	// Map keys and values keep the tag too, at every depth.
	m := wire.Raw{0xa1}
	m = append(append(m, sd(text("mk"))...), arr(sd(text("mv")))...)
	do(t, s, wire.OpDSet, "d", "m", m)
	expect(t, do(t, s, wire.OpDGet, "d", "m"), `{55799("mk"): [55799("mv")]}`)

	// A tagged pair is not a [key, value] array, nor a tagged map a map.
	fails(t, s, wire.CodeBadRequest, wire.OpDUpdate, "d", arr(sd(arr(text("x"), text("y")))))
	fails(t, s, wire.CodeBadRequest, wire.OpDUpdate, "d", sd(wire.Raw{0xa0}))
	fails(t, s, wire.CodeBadRequest, wire.OpCreateDict, "c2", sd(wire.Raw{0xa0}))
}

// TestTag55799NotANumberOrName: a tagged integer is not an index, a
// tagged text not a table name, a tagged number not a number for dincr.
func TestTag55799NotANumberOrName(t *testing.T) {
	s := New()
	newListTable(t, s, "l", 1, 2)
	newDictTable(t, s, "d", "n", 1)
	fails(t, s, wire.CodeBadRequest, wire.OpLGet, "l", sd(wire.Raw{0x00}))
	fails(t, s, wire.CodeBadRequest, wire.OpLSlice, "l", sd(wire.Raw{0x00}))
	fails(t, s, wire.CodeBadRequest, wire.OpLLen, sd(text("l")))
	fails(t, s, wire.CodeTypeError, wire.OpDIncr, "d", "n", sd(wire.Raw{0x01}))
	do(t, s, wire.OpDSet, "d", "t", sd(wire.Raw{0x01}))
	fails(t, s, wire.CodeTypeError, wire.OpDIncr, "d", "t", 1)
	fails(t, s, wire.CodeBadRequest, wire.OpBatch, sd(arr()))
	fails(t, s, wire.CodeBadRequest, wire.OpBatch, arr(sd(arr(wire.Raw{0x18, 0x38}, text("l")))))
}
