package store

import (
	"fmt"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// CBOR undefined (simple value 23) is an ordinary value: where an argument
// reader expects an integer, a bool, content or a table name, undefined is
// a wrong type like any other, and only null means "left out"
// (PROTOCOL.md 6). Before the fix, undefined was read as null, so
// ldelslice l undefined deleted the whole list.

var (
	undef = wire.Raw{0xf7}
	null  = wire.Raw{0xf6}
)

// argCase is one op with a placeholder argument: X marks where undefined
// goes, and alt is another value of a wrong type for that position, whose
// error undefined must share.
type argCase struct {
	op   wire.Op
	args []any
	alt  any
}

// X marks the argument under test in an argCase.
type placeholder struct{}

var X placeholder

func (c argCase) with(v any) []any {
	out := make([]any, len(c.args))
	for i, a := range c.args {
		if a == X {
			a = v
		}
		out[i] = a
	}
	return out
}

// undefinedCases covers every argument reader of the store: table names,
// integer indices and bounds, the lsort flag, dincr's delta, content
// arrays and maps, the dscan cursor and count, the batch argument.
var undefinedCases = []argCase{
	{wire.OpLSlice, []any{"l", X}, "x"},
	{wire.OpLSlice, []any{"l", 0, X}, 1.5},
	{wire.OpLSlice, []any{"l", null, null, X}, true},
	{wire.OpLDelSlice, []any{"l", X}, "x"},
	{wire.OpLDelSlice, []any{"l", 1, X}, 1.5},
	{wire.OpLDelSlice, []any{"l", null, null, X}, false},
	{wire.OpLSetSlice, []any{"l", X, null, null, []int{}}, "x"},
	{wire.OpLSetSlice, []any{"l", 0, X, null, []int{}}, "x"},
	{wire.OpLSetSlice, []any{"l", 0, 2, X, []int{}}, 1.5},
	{wire.OpLSetSlice, []any{"l", 0, 2, null, X}, "ab"},
	{wire.OpLPop, []any{"l", X}, "x"},
	{wire.OpLIndex, []any{"l", 1, X}, "x"},
	{wire.OpLIndex, []any{"l", 1, 0, X}, 1.5},
	{wire.OpLSort, []any{"l", X}, "x"},
	{wire.OpLGet, []any{"l", X}, "x"},
	{wire.OpLSet, []any{"l", X, 5}, "x"},
	{wire.OpLDel, []any{"l", X}, "x"},
	{wire.OpLInsert, []any{"l", X, 5}, "x"},
	{wire.OpLRange, []any{"l", X, 1}, "x"},
	{wire.OpLRange, []any{"l", 0, X}, "x"},
	{wire.OpLExtend, []any{"l", X}, "ab"},
	{wire.OpLAppend, []any{X, 1}, 7},
	{wire.OpCreateList, []any{"new", X}, "ab"},
	{wire.OpCreateDict, []any{"new", X}, "ab"},
	{wire.OpCreateDict, []any{X}, 7},
	{wire.OpDIncr, []any{"d", "k", X}, "x"},
	{wire.OpDIncr, []any{"d", "new", X}, "x"},
	{wire.OpDScan, []any{"d", X, 10}, "x"},
	{wire.OpDScan, []any{"d", 0, X}, "x"},
	{wire.OpDUpdate, []any{"d", X}, "ab"},
	{wire.OpDGet, []any{X, "k"}, 7},
	{wire.OpExists, []any{X}, 7},
	{wire.OpDrop, []any{X}, 7},
	{wire.OpLen, []any{X}, 7},
	{wire.OpBatch, []any{X}, "x"},
}

func TestUndefinedIsNotLeftOut(t *testing.T) {
	for _, c := range undefinedCases {
		t.Run(fmt.Sprintf("%s%v", c.op, c.args), func(t *testing.T) { testUndefinedArg(t, c) })
	}
}

func testUndefinedArg(t *testing.T, c argCase) {
	{
		s := New()
		newListTable(t, s, "l", 0, 1, 2, 3)
		newDictTable(t, s, "d", "k", 1)
		before := dump(t, s)
		_, altErr := s.Exec(c.op, mkArgs(t, c.op, c.with(c.alt)...), nil)
		if altErr == nil {
			t.Fatalf("%s %v: the wrong-type substitute succeeded", c.op, c.with(c.alt))
		}
		want := wire.AsError(altErr).Code
		fails(t, s, want, c.op, c.with(undef)...)
		if after := dump(t, s); after != before {
			t.Errorf("%s %v changed the store:\n%s\nwas\n%s", c.op, c.with(undef), after, before)
		}
	}
}

// TestUndefinedIsAValue: wherever a value is expected, undefined is
// stored, compared and returned as itself, distinct from null.
func TestUndefinedIsAValue(t *testing.T) {
	s := New()
	newDictTable(t, s, "d")
	do(t, s, wire.OpDSet, "d", undef, undef)
	do(t, s, wire.OpDSet, "d", null, 1)
	expect(t, do(t, s, wire.OpDItems, "d"), "[[undefined, undefined], [null, 1]]")
	expect(t, do(t, s, wire.OpDGet, "d", "missing", undef), "undefined")
	expect(t, do(t, s, wire.OpDPop, "d", "missing", undef), "undefined")
	expect(t, do(t, s, wire.OpDCAS, "d", undef, 2, undef), "true")
	expect(t, do(t, s, wire.OpDGet, "d", undef), "2")
	expect(t, do(t, s, wire.OpDSetDefault, "d", "u", undef), "undefined")
	fails(t, s, wire.CodeTypeError, wire.OpDIncr, "d", "u", 1)

	newListTable(t, s, "l", null)
	expect(t, do(t, s, wire.OpLAppend, "l", undef, undef), "3")
	expect(t, do(t, s, wire.OpLCount, "l", undef), "2")
	expect(t, do(t, s, wire.OpLIndex, "l", undef), "1")
	expect(t, do(t, s, wire.OpLContains, "l", undef), "true")
	do(t, s, wire.OpLRemove, "l", undef)
	expect(t, do(t, s, wire.OpLToList, "l"), "[null, undefined]")
	// In lsort undefined is a simple value: it has no order.
	fails(t, s, wire.CodeTypeError, wire.OpLSort, "l")
}
