package store

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// TestDequeModel runs random deque and list ops against a plain slice
// model, checking the content, the byte count, and that an undone batch
// leaves the list exactly as it was.
func TestDequeModel(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		s := New()
		newListTable(t, s, "q")
		var model []int64
		next := int64(0)
		for step := range 1500 {
			n := int64(len(model))
			var op string
			switch k := r.IntN(14); {
			case k < 3:
				op = "appendleft"
				v := next
				next++
				do(t, s, wire.OpLAppendLeft, "q", v)
				model = append([]int64{v}, model...)
			case k < 5:
				op = "append"
				v := next
				next++
				do(t, s, wire.OpLAppend, "q", v)
				model = append(model, v)
			case k < 7 && n > 0:
				op = "popleft"
				expect(t, do(t, s, wire.OpLPopLeft, "q"), fmt.Sprint(model[0]))
				model = model[1:]
			case k < 8 && n > 0:
				op = "pop"
				expect(t, do(t, s, wire.OpLPop, "q"), fmt.Sprint(model[n-1]))
				model = model[:n-1]
			case k < 9:
				op = "insert"
				i := r.Int64N(n+3) - 1
				v := next
				next++
				do(t, s, wire.OpLInsert, "q", i, v)
				at := clampBound(i, int(n))
				model = slices.Insert(model, at, v)
			case k < 10 && n > 0:
				op = "del"
				i := r.Int64N(n)
				do(t, s, wire.OpLDel, "q", i)
				model = slices.Delete(model, int(i), int(i)+1)
			case k < 11:
				op = "rotate"
				k := r.Int64N(2*n+3) - n - 1
				do(t, s, wire.OpLRotate, "q", k)
				if n > 0 {
					k = ((k % n) + n) % n
					model = append(slices.Clone(model[n-k:]), model[:n-k]...)
				}
			case k < 12:
				op = "extendleft"
				vs := []int64{next, next + 1, next + 2}
				next += 3
				do(t, s, wire.OpLExtendLeft, "q", vs)
				model = append([]int64{vs[2], vs[1], vs[0]}, model...)
			case k < 13:
				op = "failed batch"
				before := do(t, s, wire.OpLToList, "q")
				fails(t, s, wire.CodeIndexOutOfRange, wire.OpBatch, []any{
					[]any{wire.OpLAppendLeft, "q", 1, 2, 3}, []any{wire.OpLRotate, "q", 5},
					[]any{wire.OpLPopLeft, "q"}, []any{wire.OpLAppend, "q", 9},
					[]any{wire.OpLGet, "q", 1 << 40},
				})
				expect(t, do(t, s, wire.OpLToList, "q"), before)
			default:
				op = "lpop 0"
				if n > 0 {
					expect(t, do(t, s, wire.OpLPop, "q", 0), fmt.Sprint(model[0]))
					model = model[1:]
				}
			}
			want := make([]string, len(model))
			var bytes int64
			for i, v := range model {
				want[i] = fmt.Sprint(v)
				enc, _ := wire.Marshal(v)
				bytes += int64(len(enc))
			}
			got := do(t, s, wire.OpLToList, "q")
			if w := "[" + strings.Join(want, ", ") + "]"; got != w {
				t.Fatalf("seed %d step %d after %s:\ngot  %s\nwant %s", seed, step, op, got, w)
			}
			tb := s.lookup("q")
			if tb.l.bytes != bytes {
				t.Fatalf("seed %d step %d after %s: bytes %d, want %d", seed, step, op, tb.l.bytes, bytes)
			}
			if cap(tb.l.items) > 3*len(tb.l.items)+16 {
				t.Fatalf("seed %d step %d: capacity %d for %d elements", seed, step, cap(tb.l.items), len(tb.l.items))
			}
		}
	}
}

// TestDequePopThenPushFront: the front room that a popleft leaves in a
// list built by create_list (never anchored before) takes an appendleft.
// It panicked (index out of range) before anchor kept buf's whole length.
func TestDequePopThenPushFront(t *testing.T) {
	s := New()
	newListTable(t, s, "q", 1, 2, 3)
	do(t, s, wire.OpLPopLeft, "q")
	do(t, s, wire.OpLAppendLeft, "q", 0)
	expect(t, do(t, s, wire.OpLToList, "q"), "[0, 2, 3]")
}

func TestDequeOps(t *testing.T) {
	s := New()
	newListTable(t, s, "d", 1, 2, 3)
	expect(t, do(t, s, wire.OpLAppendLeft, "d", 0, -1), "5")
	expect(t, do(t, s, wire.OpLToList, "d"), "[-1, 0, 1, 2, 3]")
	expect(t, do(t, s, wire.OpLRotate, "d"), "null")
	expect(t, do(t, s, wire.OpLToList, "d"), "[3, -1, 0, 1, 2]")
	do(t, s, wire.OpLRotate, "d", -2)
	expect(t, do(t, s, wire.OpLToList, "d"), "[0, 1, 2, 3, -1]")
	do(t, s, wire.OpLRotate, "d", int64(-1)<<62)   // no overflow
	do(t, s, wire.OpLRotate, "d", nil)             // null: 1
	expect(t, do(t, s, wire.OpLPopLeft, "d"), "3") // rotate(-2**62) is rotate(1) on 5
	newListTable(t, s, "e")
	msg := fails(t, s, wire.CodeIndexOutOfRange, wire.OpLPopLeft, "e")
	if !strings.Contains(msg, "pop from an empty deque") {
		t.Fatalf("popleft of an empty list: %q", msg)
	}
	do(t, s, wire.OpLRotate, "e", 3) // empty: nothing, as deque
	fails(t, s, wire.CodeBadRequest, wire.OpLAppendLeft, "e")
	fails(t, s, wire.CodeBadRequest, wire.OpLExtendLeft, "e", "ab")
	fails(t, s, wire.CodeBadRequest, wire.OpLRotate, "e", 1.5)
	fails(t, s, wire.CodeBadRequest, wire.OpLPopLeft, "e", 0)
	fails(t, s, wire.CodeNoSuchTable, wire.OpLPopLeft, "nope")
	newDictTable(t, s, "dict")
	fails(t, s, wire.CodeWrongKind, wire.OpLAppendLeft, "dict", 1)

	// lmove, within one list and between two.
	expect(t, do(t, s, wire.OpLMove, "d", "e", "left", "right"), "-1")
	expect(t, do(t, s, wire.OpLMove, "d", "e", "right", "left"), "2")
	expect(t, do(t, s, wire.OpLToList, "e"), "[2, -1]")
	expect(t, do(t, s, wire.OpLMove, "e", "e", "left", "right"), "2")
	expect(t, do(t, s, wire.OpLToList, "e"), "[-1, 2]")
	fails(t, s, wire.CodeBadRequest, wire.OpLMove, "d", "e", "up", "right")
	fails(t, s, wire.CodeNoSuchTable, wire.OpLMove, "d", "nope", "up", "right") // tables before arguments
	fails(t, s, wire.CodeWrongKind, wire.OpLMove, "d", "dict", "left", "right")
	newListTable(t, s, "empty")
	fails(t, s, wire.CodeIndexOutOfRange, wire.OpLMove, "empty", "d", "left", "right")
	// In a batch, undone with the rest.
	before := dump(t, s)
	fails(t, s, wire.CodeIndexOutOfRange, wire.OpBatch, []any{
		[]any{wire.OpLMove, "d", "e", "left", "left"}, []any{wire.OpLMove, "empty", "d", "left", "left"},
	})
	expect(t, dump(t, s), before)
	expect(t, do(t, s, wire.OpBatch, []any{[]any{wire.OpLMove, "d", "empty", "left", "left"}}), "[0]")
	fails(t, s, wire.CodeBadRequest, wire.OpBatch, []any{[]any{wire.OpLBPop, []string{"d"}, "left", 0}})
}

// TestDequeJournalReplay checks that the new ops replay to the same
// state from the journal.
func TestDequeJournalReplay(t *testing.T) {
	s := New()
	var log []wire.Args
	var ops []wire.Op
	s.SetJournal(func(op wire.Op, a wire.Args) error {
		c := wire.Args{Op: op}
		for _, it := range a.Items {
			c.Items = append(c.Items, slices.Clone(it))
		}
		log, ops = append(log, c), append(ops, op)
		return nil
	})
	newListTable(t, s, "a", 1, 2, 3, 4)
	newListTable(t, s, "b")
	do(t, s, wire.OpLAppendLeft, "a", 0)
	do(t, s, wire.OpLExtendLeft, "a", []int{-2, -1})
	do(t, s, wire.OpLRotate, "a", 2)
	do(t, s, wire.OpLPopLeft, "a")
	do(t, s, wire.OpLMove, "a", "b", "right", "left")
	r, w, err := s.Block(wire.OpLBPop, mkArgs(t, wire.OpLBPop, []string{"b"}, "left", 0), nil, nil)
	if err != nil || w != nil {
		t.Fatal(err, w)
	}
	expect(t, wire.Diagnose(r), `["b", 2]`)
	want := dump(t, s)
	s2 := New()
	for i, a := range log {
		if ops[i] == wire.OpLBPop || ops[i] == wire.OpLBMove {
			t.Fatalf("a blocking op was journaled: %s", ops[i])
		}
		if _, err := s2.Exec(ops[i], a, nil); err != nil {
			t.Fatalf("replay %s: %v", ops[i], err)
		}
	}
	expect(t, dump(t, s2), want)
}

// BenchmarkPopLeft: popleft and appendleft cost the same at 10 and 10M
// elements (issue 15's goal): compare the ns/op of the sizes.
func BenchmarkPopLeft(b *testing.B) {
	for _, n := range []int{10, 1000, 100_000, 10_000_000} {
		b.Run(fmt.Sprintf("len=%d", n), func(b *testing.B) {
			s := New()
			items := make([]int, n)
			do(b, s, wire.OpCreateList, "q", items)
			pop := mkArgs(b, wire.OpLPopLeft, "q")
			push := mkArgs(b, wire.OpLAppend, "q", 7)
			// Warm up: the first push at an end gives that end room for
			// len(list) more (one copy, amortized over those pushes).
			out, _ := s.Exec(wire.OpLAppend, push, nil)
			runtime.GC()
			b.ResetTimer()
			for range b.N {
				out, _ = s.Exec(wire.OpLPopLeft, pop, out[:0])
				out, _ = s.Exec(wire.OpLAppend, push, out[:0])
			}
		})
	}
}

func BenchmarkAppendLeft(b *testing.B) {
	for _, n := range []int{10, 10_000_000} {
		b.Run(fmt.Sprintf("len=%d", n), func(b *testing.B) {
			s := New()
			do(b, s, wire.OpCreateList, "q", make([]int, n))
			pushl := mkArgs(b, wire.OpLAppendLeft, "q", 7)
			pop := mkArgs(b, wire.OpLPop, "q")
			out, _ := s.Exec(wire.OpLAppendLeft, pushl, nil) // warm up, as above
			runtime.GC()
			b.ResetTimer()
			for range b.N {
				out, _ = s.Exec(wire.OpLAppendLeft, pushl, out[:0])
				out, _ = s.Exec(wire.OpLPop, pop, out[:0])
			}
		})
	}
}

// BenchmarkBlockAtOnce: an lbpop that finds a value (what a busy queue's
// consumers mostly do) next to the append that fed it; allocs/op is what
// the daemon's collector pays per item.
func BenchmarkBlockAtOnce(b *testing.B) {
	s := New()
	do(b, s, wire.OpCreateList, "q", []int{})
	bpop := mkArgs(b, wire.OpLBPop, []string{"q"}, "left", 0)
	push := mkArgs(b, wire.OpLAppend, "q", 7)
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		out, _ = s.Exec(wire.OpLAppend, push, out[:0])
		res, w, err := s.Block(wire.OpLBPop, bpop, out[:0], nil)
		if err != nil || w != nil || len(res) == 0 {
			b.Fatalf("lbpop: %x %v %v", res, w, err)
		}
		out = res
	}
}
