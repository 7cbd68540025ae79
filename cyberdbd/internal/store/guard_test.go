package store

import (
	"strings"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

func TestGuards(t *testing.T) {
	s := New()
	newDictTable(t, s, "acct", "alice", 10, "bob", 5)
	newListTable(t, s, "q", 1, 2)
	newDictTable(t, s, "side")
	ok := func(g ...any) {
		t.Helper()
		do(t, s, wire.OpBatch, []any{append([]any{wire.OpGuard}, g...), []any{wire.OpDIncr, "side", "n"}})
	}
	bad := func(code wire.Code, want string, g ...any) {
		t.Helper()
		before := dump(t, s)
		msg := fails(t, s, code, wire.OpBatch, []any{[]any{wire.OpDIncr, "acct", "n"}, append([]any{wire.OpGuard}, g...)})
		if !strings.HasPrefix(msg, "batch op 1 (guard): ") || !strings.Contains(msg, want) {
			t.Fatalf("message %q, want the prefix and %q", msg, want)
		}
		expect(t, dump(t, s), before) // nothing applied
	}
	ok("acct", "exists")
	ok("q", "len", 2)
	ok("acct", "len", 2)
	ok("acct", "eq", "alice", 10)
	ok("acct", "absent", "carol")
	bad(wire.CodeGuardFailed, `table "nope" does not exist`, "nope", "exists")
	bad(wire.CodeGuardFailed, "has 2 entries or elements, not 3", "q", "len", 3)
	bad(wire.CodeGuardFailed, "is 10, not 11", "acct", "eq", "alice", 11)
	bad(wire.CodeGuardFailed, "is not in dict", "acct", "eq", "carol", 1)
	bad(wire.CodeGuardFailed, "is in dict", "acct", "absent", "bob")
	bad(wire.CodeGuardFailed, "does not exist", "nope", "eq", "k", 1)
	bad(wire.CodeWrongKind, "needs a dict", "q", "eq", 0, 1)
	bad(wire.CodeBadRequest, "unknown kind", "acct", "maybe")
	bad(wire.CodeBadRequest, "takes", "acct", "eq", "alice")
	// A compare-and-swap as a guard: applied with the batch, or it fails it.
	bad(wire.CodeGuardFailed, "did not set", "acct", "cas", "alice", 0, 9)
	do(t, s, wire.OpBatch, []any{
		[]any{wire.OpGuard, "acct", "cas", "alice", 7, 10},
		[]any{wire.OpDIncr, "acct", "bob", 3},
	})
	expect(t, do(t, s, wire.OpDGet, "acct", "alice"), "7")
	expect(t, do(t, s, wire.OpDGet, "acct", "bob"), "8")
	// On its own, a guard is a check.
	expect(t, do(t, s, wire.OpGuard, "acct", "exists"), "null")
	fails(t, s, wire.CodeGuardFailed, wire.OpGuard, "missing", "exists")
	if s.lookup("missing") != nil {
		t.Fatal("a guard left a table slot behind")
	}
}
