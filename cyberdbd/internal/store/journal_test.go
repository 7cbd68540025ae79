package store

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

type recorded struct {
	op   wire.Op
	args wire.Args
}

// recorder is a journal keeping copies of what it is given.
type recorder struct {
	mu   sync.Mutex
	ops  []recorded
	fail error
}

func (r *recorder) journal(op wire.Op, args wire.Args) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	items := make([]wire.Raw, len(args.Items))
	for i, it := range args.Items {
		items[i] = slices.Clone(it)
	}
	r.ops = append(r.ops, recorded{op, wire.Args{Op: op, Items: items}})
	return nil
}

func TestJournalReplay(t *testing.T) {
	s := New()
	var rec recorder
	s.SetJournal(rec.journal)
	do(t, s, wire.OpCreateDict, "d", [][2]any{{"a", 1}, {"b", 2}})
	do(t, s, wire.OpDGet, "d", "a") // reads are not recorded
	do(t, s, wire.OpDIncr, "d", "n", 2.5)
	do(t, s, wire.OpDDel, "d", "a")
	do(t, s, wire.OpDSet, "d", "a", 3)
	do(t, s, wire.OpCreateList, "l", []any{3, 1, 2})
	do(t, s, wire.OpLSort, "l")
	do(t, s, wire.OpLSetSlice, "l", 0, 1, nil, []any{7, 8})
	expect(t, do(t, s, wire.OpLContains, "l", 8), "true") // reads are not recorded
	do(t, s, wire.OpBatch, []any{sub(wire.OpLAppend, "l", 9), sub(wire.OpDPopItem, "d")})
	do(t, s, wire.OpBatch, []any{sub(wire.OpLLen, "l")}) // read-only batch: not recorded
	fails(t, s, wire.CodeKeyNotFound, wire.OpDDel, "d", "zz")
	do(t, s, wire.OpCreateList, "gone")
	do(t, s, wire.OpDrop, "gone")
	var names []string
	for _, r := range rec.ops {
		names = append(names, r.op.String())
	}
	expect(t, strings.Join(names, " "), "create_dict dincr ddel dset create_list lsort lsetslice batch create_list drop")

	replay := New()
	for _, r := range rec.ops {
		if _, err := replay.Exec(r.op, r.args, nil); err != nil {
			t.Fatalf("replay %s: %v", r.op, err)
		}
	}
	expect(t, dump(t, replay), dump(t, s))
}

func TestJournalFailureUndoes(t *testing.T) {
	s := setupBatchTables(t)
	rec := recorder{}
	s.SetJournal(rec.journal)
	before := dump(t, s)
	rec.fail = errors.New("disk full")
	for _, op := range writeOps() {
		o := wire.Op(op[0].(uint64))
		switch o {
		case wire.OpCreateList, wire.OpDrop:
			continue // they need the state other ops leave
		}
		msg := fails(t, s, wire.CodeIO, o, op[1:]...)
		if !strings.Contains(msg, "disk full") {
			t.Errorf("message %q", msg)
		}
		expect(t, dump(t, s), before)
	}
	fails(t, s, wire.CodeIO, wire.OpDrop, "d")
	fails(t, s, wire.CodeIO, wire.OpCreateDict, "new")
	fails(t, s, wire.CodeIO, wire.OpBatch, []any{sub(wire.OpDSet, "d", "x", 1), sub(wire.OpLPop, "l")})
	expect(t, dump(t, s), before)
	// A journal may return a typed error of its own.
	rec.fail = wire.Errorf(wire.CodeShuttingDown, "stopping")
	fails(t, s, wire.CodeShuttingDown, wire.OpDSet, "d", "x", 1)
	rec.fail = nil
	s.SetJournal(nil)
	do(t, s, wire.OpDSet, "d", "x", 1)
}

// A checked journal refuses writes before they run (nothing changes, the
// refusal comes back as is) and records the others; reads never see it.
func TestJournalChecked(t *testing.T) {
	s := New()
	var rec recorder
	var refuse error
	s.SetJournalChecked(rec.journal, func() error { return refuse })
	do(t, s, wire.OpCreateDict, "d")
	do(t, s, wire.OpDSet, "d", "k", 1)
	do(t, s, wire.OpBatch, []any{[]any{wire.OpDSet, "d", "b", 2}})
	before := dump(t, s)

	refuse = wire.Errorf(wire.CodeIO, "disk full")
	fails(t, s, wire.CodeIO, wire.OpDSet, "d", "k", 99)
	fails(t, s, wire.CodeIO, wire.OpBatch, []any{[]any{wire.OpDSet, "d", "k", 99}})
	refuse = errors.New("plain error")
	fails(t, s, wire.CodeIO, wire.OpLAppend, "d", 1)
	expect(t, dump(t, s), before)
	do(t, s, wire.OpDGet, "d", "k") // reads are not checked
	if len(rec.ops) != 3 {
		t.Fatalf("recorded %d ops, want the 3 accepted writes", len(rec.ops))
	}
}

// With a checked journal a single write allocates no undo record.
func BenchmarkDSetCheckedJournal(b *testing.B) {
	s := New()
	s.SetJournalChecked(func(wire.Op, wire.Args) error { return nil }, func() error { return nil })
	do(b, s, wire.OpCreateDict, "d")
	args := mkArgs(b, wire.OpDSet, "d", "key:000000000001", strings.Repeat("v", 32))
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		out, _ = s.Exec(wire.OpDSet, args, out[:0])
	}
}
