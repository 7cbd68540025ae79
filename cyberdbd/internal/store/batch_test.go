package store

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// sub builds one [op, arg...] of a batch.
func sub(op wire.Op, args ...any) []any { return append([]any{uint64(op)}, args...) }

func TestBatch(t *testing.T) {
	s := New()
	newListTable(t, s, "l", 1, 2)
	got := do(t, s, wire.OpBatch, []any{
		sub(wire.OpCreateDict, "d"),
		sub(wire.OpDSet, "d", "k", "v"),
		sub(wire.OpLAppend, "l", 3),
		sub(wire.OpDGet, "d", "k"),
		sub(wire.OpTables),
		sub(wire.OpExists, "nope"),
		sub(wire.OpLen, "l"),
		sub(wire.OpDrop, "l"),
		sub(wire.OpCreateDict, "l"), // the name is free again within the batch
		sub(wire.OpTables),
	})
	expect(t, got, `[null, null, 3, "v", [["d", "dict", 1], ["l", "list", 3]], false, 3, null, null, [["d", "dict", 1], ["l", "dict", 0]]]`)
	expect(t, do(t, s, wire.OpTables), `[["d", "dict", 1], ["l", "dict", 0]]`)
	expect(t, do(t, s, wire.OpExists, "nope"), "false")
	s.mu.RLock()
	_, leaked := s.tables["nope"]
	s.mu.RUnlock()
	if leaked {
		t.Error("the slot claimed for a missing name stayed in the store")
	}
	expect(t, do(t, s, wire.OpBatch, []any{}), "[]")
}

// TestBatchFirstFailingItemWins: a failing batch reports the error of its
// first failing item, in item order, whatever the kind of failure; so
// exactly what sending the items one by one would report first. Before
// the fix every item's shape (array, op number, batchable op, table name)
// was checked before any ran, so a later malformed item beat an earlier
// item whose arguments or operation failed.
func TestBatchFirstFailingItemWins(t *testing.T) {
	for _, tc := range []struct {
		ops  []any
		code wire.Code
		msg  string
	}{
		{[]any{sub(wire.OpDDel, "d", "missing"), sub(wire.OpPing)}, wire.CodeKeyNotFound, "batch op 0 (ddel): "},
		{[]any{sub(wire.OpLGet, "d", "x"), []any{99999}}, wire.CodeWrongKind, "batch op 0 (lget): "},
		{[]any{sub(wire.OpLPop, "l", "x"), []any{99999}}, wire.CodeBadRequest, "batch op 0 (lpop): lpop: argument 2"},
		{[]any{sub(wire.OpDSet, "d", 1, 1), sub(wire.OpDDel, "d", 2), "not an op"}, wire.CodeKeyNotFound, "batch op 1 (ddel): "},
		{[]any{sub(wire.OpDGet, "nowhere", 1), sub(wire.OpDSet, "", 1, 1)}, wire.CodeNoSuchTable, "batch op 0 (dget): "},
		{[]any{sub(wire.OpDSet, "d", 1, 1), sub(wire.OpDSet, "", 1, 1), sub(wire.OpDGet, "nowhere", 1)}, wire.CodeBadRequest, "batch op 1 (dset): "},
		{[]any{sub(wire.OpDSet, "d", 1, 1), []any{}, sub(wire.OpBatch, []any{})}, wire.CodeBadRequest, "batch op 1: "},
		{[]any{sub(wire.OpLSort, "l", 1.5), sub(wire.OpInfo)}, wire.CodeBadRequest, "batch op 0 (lsort): "},
		{[]any{sub(wire.OpDIncr, "d", "k", "x"), []any{70}}, wire.CodeTypeError, "batch op 0 (dincr): "},
	} {
		s := New()
		newDictTable(t, s, "d")
		newListTable(t, s, "l", 1, 2)
		before := dump(t, s)
		msg := fails(t, s, tc.code, wire.OpBatch, tc.ops)
		if !strings.HasPrefix(msg, tc.msg) {
			t.Errorf("batch %v: message %q, want prefix %q", tc.ops, msg, tc.msg)
		}
		expect(t, dump(t, s), before)
	}
}

// TestBatchErrorIsFirstSingleError checks on random batches, malformed
// items included, that a failing batch reports the code and index of the
// first item that fails when the items are sent one by one.
func TestBatchErrorIsFirstSingleError(t *testing.T) {
	var pool []any
	for _, op := range writeOps() {
		pool = append(pool, op)
	}
	pool = append(pool,
		sub(wire.OpDDel, "d", "no such key"),
		sub(wire.OpLGet, "l", 1000),
		sub(wire.OpLGet, "l", "x"),
		sub(wire.OpDGet, "nowhere", 1),
		sub(wire.OpLen, "nowhere", 1),
		sub(wire.OpDrop, "nowhere", 1),
		sub(wire.OpExists, "nowhere", 1),
		sub(wire.OpLSort, "bad"),
		sub(wire.OpLSort, "l", 1.5),
		sub(wire.OpDIncr, "d", "k", nil, 1),
		sub(wire.OpPing),
		sub(wire.OpBatch, []any{}),
		sub(wire.OpDSet, "", 1, 1),
		[]any{uint64(99999), "d"},
		[]any{"dget", "d"},
		[]any{},
		"not an op",
	)
	// single runs one item as a request on its own.
	single := func(s *Store, it any) error {
		ops, ok := it.([]any)
		if !ok || len(ops) == 0 {
			return wire.ErrBadRequest
		}
		n, ok := ops[0].(uint64)
		switch {
		case !ok:
			return wire.ErrBadRequest
		case wire.Op(n) == wire.OpPing || wire.Op(n) == wire.OpBatch:
			return wire.ErrBadRequest // cannot be in a batch
		}
		_, err := s.Exec(wire.Op(n), mkArgs(t, wire.Op(n), ops[1:]...), nil)
		return err
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for range 300 {
		var batch []any
		for range 1 + rng.IntN(8) {
			batch = append(batch, pool[rng.IntN(len(pool))])
		}
		one := setupBatchTables(t)
		do(t, one, wire.OpCreateList, "bad", []any{1, "x"})
		wantK, wantCode := -1, wire.CodeOK
		for k, it := range batch {
			if err := single(one, it); err != nil {
				wantK, wantCode = k, wire.AsError(err).Code
				break
			}
		}
		all := setupBatchTables(t)
		do(t, all, wire.OpCreateList, "bad", []any{1, "x"})
		before := dump(t, all)
		_, err := all.Exec(wire.OpBatch, mkArgs(t, wire.OpBatch, batch), nil)
		if wantK < 0 {
			if err != nil {
				t.Fatalf("batch %v: %v; one by one every item succeeded", batch, err)
			}
			continue
		}
		we := wire.AsError(err)
		if err == nil || we.Code != wantCode || !strings.HasPrefix(we.Message, fmt.Sprintf("batch op %d", wantK)) {
			t.Fatalf("batch %v: got %v; one by one, item %d fails first, with %s", batch, err, wantK, wantCode)
		}
		expect(t, dump(t, all), before)
	}
}

func TestBatchRefused(t *testing.T) {
	s := New()
	newDictTable(t, s, "d")
	for _, tc := range []struct {
		ops  []any
		code wire.Code
		msg  string
	}{
		{[]any{sub(wire.OpDSet, "d", 1, 1), sub(wire.OpBatch, []any{})}, wire.CodeBadRequest, "batch op 1 (batch): "},
		{[]any{sub(wire.OpPing)}, wire.CodeBadRequest, "batch op 0 (ping): "},
		{[]any{sub(wire.OpHello, 1)}, wire.CodeBadRequest, "batch op 0 (hello): "},
		{[]any{sub(wire.OpInfo)}, wire.CodeBadRequest, "batch op 0 (info): "},
		{[]any{sub(wire.OpSave)}, wire.CodeBadRequest, "batch op 0 (save): "},
		{[]any{sub(wire.Op(99), "d")}, wire.CodeUnknownOp, "batch op 0 (op_99): "},
		{[]any{[]any{1 << 20, "d"}}, wire.CodeUnknownOp, "batch op 0 (op_1048576): unknown op 1048576"},
		{[]any{[]any{99999, "d"}}, wire.CodeUnknownOp, "batch op 0 (op_99999): unknown op 99999"},
		{[]any{[]any{uint64(1<<64 - 1)}}, wire.CodeUnknownOp, "batch op 0 (op_18446744073709551615): "},
		{[]any{sub(wire.OpDSet, "", 1, 1)}, wire.CodeBadRequest, "batch op 0 (dset): "},
		{[]any{"not an op"}, wire.CodeBadRequest, "batch op 0: expected an array"},
		{[]any{[]any{}}, wire.CodeBadRequest, "batch op 0: expected an array"},
		{[]any{[]any{"dget", "d", 1}}, wire.CodeBadRequest, "batch op 0: expected an array [op, arg...] starting with an op number"},
		{[]any{[]any{-1, "d", 1}}, wire.CodeBadRequest, "batch op 0: expected an array [op, arg...] starting with an op number"},
		{[]any{sub(wire.OpDSet, "d", 1, 1), sub(wire.OpDDel, "d", 2)}, wire.CodeKeyNotFound, "batch op 1 (ddel): key 2 not found"},
		{[]any{sub(wire.OpDSet, "d", 1, 1), sub(wire.OpLAppend, "d", 2)}, wire.CodeWrongKind, "batch op 1 (lappend): "},
		{[]any{sub(wire.OpDSet, "zz", 1, 1)}, wire.CodeNoSuchTable, "batch op 0 (dset): "},
	} {
		msg := fails(t, s, tc.code, wire.OpBatch, tc.ops)
		if !strings.HasPrefix(msg, tc.msg) {
			t.Errorf("message %q, want prefix %q", msg, tc.msg)
		}
		expect(t, do(t, s, wire.OpDToDict, "d"), "{}")
	}
	fails(t, s, wire.CodeBadRequest, wire.OpBatch, "x")
	fails(t, s, wire.CodeBadRequest, wire.OpBatch)
	expect(t, do(t, s, wire.OpTables), `[["d", "dict", 0]]`)
}

// writeOps are batch ops that change tables "d", "e" (dicts) and "l",
// "m" (lists) as set up by setupBatchTables; each succeeds on that state
// and on most states the others leave.
func writeOps() [][]any {
	return [][]any{
		sub(wire.OpDSet, "d", "new", 1),
		sub(wire.OpDSet, "d", "k1", "over"),
		sub(wire.OpDDel, "d", "k2"),
		sub(wire.OpDPop, "d", "k3", nil),
		sub(wire.OpDPopItem, "e"),
		sub(wire.OpDSetDefault, "d", "sd", []int{1}),
		sub(wire.OpDUpdate, "d", [][2]any{{"k4", 4.5}, {"u1", 1}, {"u2", 2}}),
		sub(wire.OpDIncr, "d", "n", 7),
		sub(wire.OpDCAS, "d", "k5", "cas"),
		sub(wire.OpDCAS, "d", "k6", "cas", 6),
		sub(wire.OpDClear, "e"),
		sub(wire.OpDSet, "e", "after-clear", true),
		sub(wire.OpLSet, "l", 0, "zero"),
		sub(wire.OpLDel, "l", 1),
		sub(wire.OpLDelSlice, "l", 1, nil, 3),
		sub(wire.OpLAppend, "l", 100, 101),
		sub(wire.OpLExtend, "l", []int{200, 201}),
		sub(wire.OpLInsert, "l", 2, "ins"),
		sub(wire.OpLPop, "l", 0),
		sub(wire.OpLRemove, "l", 7),
		sub(wire.OpLReverse, "m"),
		sub(wire.OpLSort, "m"),
		sub(wire.OpLSort, "m", true),
		sub(wire.OpLSetSlice, "l", 1, 3, nil, []string{"s1", "s2", "s3"}),
		sub(wire.OpLSetSlice, "l", 0, 4, 2, []string{"e0", "e1"}),
		sub(wire.OpLSetSlice, "l", -2, nil, nil, []int{}),
		sub(wire.OpLClear, "l"),
		sub(wire.OpLAppend, "l", "after-clear"),
		sub(wire.OpDrop, "m"),
		sub(wire.OpCreateList, "m", []int{3, 1, 2}),
		sub(wire.OpCreateDict, "fresh", map[int]int{1: 1}),
		sub(wire.OpDrop, "fresh"),
	}
}

func setupBatchTables(t *testing.T) *Store {
	s := New()
	newDictTable(t, s, "d")
	for i := range 100 {
		do(t, s, wire.OpDSet, "d", fmt.Sprintf("k%d", i), i)
	}
	for i := 10; i < 80; i++ { // tombstones, and a compaction
		do(t, s, wire.OpDDel, "d", fmt.Sprintf("k%d", i))
	}
	do(t, s, wire.OpDSet, "d", "k0", "moved?")
	newDictTable(t, s, "e", "x", 1, "y", 2)
	items := make([]any, 40)
	for i := range items {
		items[i] = i % 9
	}
	newListTable(t, s, "l", items...)
	newListTable(t, s, "m", 5, 3.5, 1, 3.5, true, 0)
	return s
}

// TestBatchAllOrNothing runs batches of write ops that end in a failing
// op and checks that every table is left exactly as it was, dict order
// and stats included.
func TestBatchAllOrNothing(t *testing.T) {
	ops := writeOps()
	failing := [][]any{
		sub(wire.OpDDel, "d", "no such key"),
		sub(wire.OpLGet, "l", 1000),
		sub(wire.OpDGet, "nowhere", 1),
		sub(wire.OpCreateDict, "d"),
		sub(wire.OpLSort, "bad"),
	}
	for i, op := range ops {
		for j, f := range failing {
			t.Run(fmt.Sprintf("op%d-fail%d", i, j), func(t *testing.T) {
				checkBatchUndo(t, []any{op, f})
			})
		}
	}
	t.Run("all", func(t *testing.T) {
		batch := make([]any, 0, len(ops)+1)
		for _, op := range ops {
			batch = append(batch, op)
		}
		checkBatchUndo(t, append(batch, failing[0]))
	})
	rng := rand.New(rand.NewPCG(5, 6))
	for r := range 200 {
		var batch []any
		for range 1 + rng.IntN(12) {
			batch = append(batch, ops[rng.IntN(len(ops))])
		}
		batch = append(batch, failing[rng.IntN(len(failing))])
		t.Run(fmt.Sprintf("random%d", r), func(t *testing.T) { checkBatchUndo(t, batch) })
	}
}

func checkBatchUndo(t *testing.T, batch []any) {
	t.Helper()
	s := setupBatchTables(t)
	do(t, s, wire.OpCreateList, "bad", []any{1, "x"})
	before := dump(t, s)
	_, err := s.Exec(wire.OpBatch, mkArgs(t, wire.OpBatch, batch), nil)
	if err == nil {
		// The ops before the failing one may themselves fail on the state
		// earlier ones leave; any failure must undo everything.
		t.Fatalf("batch %v succeeded", batch)
	}
	if !strings.HasPrefix(wire.AsError(err).Message, "batch op ") {
		t.Fatalf("message %q", wire.AsError(err).Message)
	}
	expect(t, dump(t, s), before)
	// The dict goes on inserting after its last key.
	do(t, s, wire.OpDSet, "d", "later", 1)
	expect(t, do(t, s, wire.OpDPopItem, "d"), `["later", 1]`)
	expect(t, dump(t, s), before)
}

// TestBatchMatchesSingleOps checks that a successful batch does what the
// same ops sent one by one do.
func TestBatchMatchesSingleOps(t *testing.T) {
	ops := writeOps()
	one := setupBatchTables(t)
	var results []string
	for _, op := range ops {
		o := wire.Op(op[0].(uint64))
		results = append(results, do(t, one, o, op[1:]...))
	}
	batch := make([]any, len(ops))
	for i, op := range ops {
		batch[i] = op
	}
	all := setupBatchTables(t)
	expect(t, do(t, all, wire.OpBatch, batch), "["+strings.Join(results, ", ")+"]")
	expect(t, dump(t, all), dump(t, one))
}
