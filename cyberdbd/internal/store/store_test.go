package store

import (
	"strings"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

func TestTables(t *testing.T) {
	s := New()
	expect(t, do(t, s, wire.OpTables), "[]")
	do(t, s, wire.OpCreateList, "b", []int{1, 2})
	do(t, s, wire.OpCreateDict, "a", map[string]int{"x": 1})
	do(t, s, wire.OpCreateDict, "c")
	expect(t, do(t, s, wire.OpTables), `[["a", "dict", 1], ["b", "list", 2], ["c", "dict", 0]]`)
	expect(t, do(t, s, wire.OpExists, "a"), "true")
	expect(t, do(t, s, wire.OpExists, "zz"), "false")
	expect(t, do(t, s, wire.OpLen, "a"), "1")
	expect(t, do(t, s, wire.OpLen, "b"), "2")
	if st := s.Stats(); st.Tables != 3 || st.Entries != 3 || st.Bytes != 2+1+1+1 {
		t.Fatalf("stats %+v", st)
	}

	msg := fails(t, s, wire.CodeTableExists, wire.OpCreateList, "a")
	if !strings.Contains(msg, `"a"`) {
		t.Errorf("message %q does not name the table", msg)
	}
	expect(t, do(t, s, wire.OpDrop, "a"), "null")
	msg = fails(t, s, wire.CodeNoSuchTable, wire.OpDrop, "a")
	if !strings.Contains(msg, "create_dict") {
		t.Errorf("message %q does not say how to create a table", msg)
	}
	fails(t, s, wire.CodeNoSuchTable, wire.OpLen, "a")
	fails(t, s, wire.CodeNoSuchTable, wire.OpDGet, "a", "x")
	expect(t, do(t, s, wire.OpExists, "a"), "false")
	do(t, s, wire.OpCreateList, "a") // the name is free again
	expect(t, do(t, s, wire.OpTables), `[["a", "list", 0], ["b", "list", 2], ["c", "dict", 0]]`)
	if st := s.Stats(); st.Tables != 3 || st.Entries != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTableNamesAndArgs(t *testing.T) {
	s := New()
	fails(t, s, wire.CodeBadRequest, wire.OpCreateDict, "")
	fails(t, s, wire.CodeBadRequest, wire.OpCreateDict, strings.Repeat("x", 256))
	do(t, s, wire.OpCreateDict, strings.Repeat("x", 255))
	fails(t, s, wire.CodeBadRequest, wire.OpCreateDict, 7)
	fails(t, s, wire.CodeBadRequest, wire.OpCreateDict, []byte("x"))
	fails(t, s, wire.CodeBadRequest, wire.OpCreateDict)
	fails(t, s, wire.CodeBadRequest, wire.OpCreateList, "l", "not an array")
	fails(t, s, wire.CodeBadRequest, wire.OpCreateDict, "d", 5)
	fails(t, s, wire.CodeBadRequest, wire.OpCreateDict, "d", [][]int{{1, 2, 3}})
	expect(t, do(t, s, wire.OpExists, "d"), "false")
	expect(t, do(t, s, wire.OpExists, "l"), "false")
	do(t, s, wire.OpCreateList, "l", nil) // null content: empty
	expect(t, do(t, s, wire.OpLToList, "l"), "[]")
	fails(t, s, wire.CodeBadRequest, wire.OpLLen, "l", "extra")
	fails(t, s, wire.CodeBadRequest, wire.OpTables, "extra")
	// The argument count is checked whether or not the table exists
	// (exists on a missing table used to answer false).
	fails(t, s, wire.CodeBadRequest, wire.OpExists, "nope", 1)
	fails(t, s, wire.CodeBadRequest, wire.OpExists, "l", 1)
	// Existence comes before the argument count, alone and in a batch.
	fails(t, s, wire.CodeNoSuchTable, wire.OpLen, "nope", 1)
	fails(t, s, wire.CodeNoSuchTable, wire.OpDrop, "nope", 1)
	fails(t, s, wire.CodeNoSuchTable, wire.OpBatch, []any{[]any{uint64(wire.OpLen), "nope", 1}})
	fails(t, s, wire.CodeNoSuchTable, wire.OpBatch, []any{[]any{uint64(wire.OpDrop), "nope", 1}})
}

func TestServerAndUnknownOps(t *testing.T) {
	s := New()
	for _, op := range []wire.Op{wire.OpHello, wire.OpPing, wire.OpInfo, wire.OpSave} {
		fails(t, s, wire.CodeBadRequest, op)
	}
	fails(t, s, wire.CodeUnknownOp, wire.Op(99), "t")
	fails(t, s, wire.CodeUnknownOp, wire.Op(0))
	fails(t, s, wire.CodeUnknownOp, wire.Op(5000))
}

// TestEveryOpHandled checks that Exec knows every op of the protocol.
func TestEveryOpHandled(t *testing.T) {
	s := New()
	for _, op := range wire.Ops() {
		_, err := s.Exec(op, wire.Args{Op: op}, nil)
		if err != nil && wire.AsError(err).Code == wire.CodeUnknownOp {
			t.Errorf("%s: %v", op, err)
		}
	}
}

func TestWrongKind(t *testing.T) {
	s := New()
	newListTable(t, s, "l")
	newDictTable(t, s, "d")
	msg := fails(t, s, wire.CodeWrongKind, wire.OpDGet, "l", "k")
	expect(t, msg, `table "l" is a list; dget needs a dict`)
	msg = fails(t, s, wire.CodeWrongKind, wire.OpLAppend, "d", 1)
	expect(t, msg, `table "d" is a dict; lappend needs a list`)
}

func TestCreateContent(t *testing.T) {
	s := New()
	// dict(pairs): order of first appearance, later duplicates overwrite.
	do(t, s, wire.OpCreateDict, "d", [][2]any{{"b", 1}, {"a", 2}, {"b", 3}, {"c", nil}})
	expect(t, do(t, s, wire.OpDToDict, "d"), `{"b": 3, "a": 2, "c": null}`)
	// A map keeps the order it was encoded in.
	m := wire.Raw{0xa2, 0x61, 'z', 0x01, 0x61, 'a', 0x02}
	do(t, s, wire.OpCreateDict, "m", m)
	expect(t, do(t, s, wire.OpDKeys, "m"), `["z", "a"]`)
	// Non-canonical input is stored canonically: 0x1801 is 1.
	do(t, s, wire.OpCreateList, "l", wire.Raw{0x82, 0x18, 0x01, 0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0})
	expect(t, do(t, s, wire.OpLCount, "l", 1), "1")
	expect(t, do(t, s, wire.OpLIndex, "l", 1.5), "1")
}

func TestErrorMessagesAreTruncated(t *testing.T) {
	s := New()
	newDictTable(t, s, "d")
	msg := fails(t, s, wire.CodeKeyNotFound, wire.OpDGet, "d", strings.Repeat("k", 500))
	if len(msg) > 200 || !strings.Contains(msg, `dict table "d"`) {
		t.Errorf("message %q", msg)
	}
}
