package store

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

func TestConcurrentIncr(t *testing.T) {
	s := New()
	newDictTable(t, s, "d")
	const workers, each = 16, 500
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := s.Exec(wire.OpDIncr, mkArgs(t, wire.OpDIncr, "d", "n"), nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	expect(t, do(t, s, wire.OpDGet, "d", "n"), fmt.Sprint(workers*each))
}

// TestSortDoesNotBlockOtherTables holds a sort in the middle (inside its
// table's lock) and meanwhile runs ops on other tables, creates and drops
// tables, lists them and reads stats. If any of those waited for the
// sorting table, the test would deadlock rather than pass.
func TestSortDoesNotBlockOtherTables(t *testing.T) {
	s := New()
	items := make([]any, 100000)
	for i := range items {
		items[i] = len(items) - i
	}
	do(t, s, wire.OpCreateList, "big", items)
	newDictTable(t, s, "other", "a", 1)
	newListTable(t, s, "victim")

	inSort, release := make(chan struct{}), make(chan struct{})
	testHookSort = func() {
		close(inSort)
		<-release
	}
	defer func() { testHookSort = nil }()
	sorted := make(chan error)
	go func() {
		_, err := s.Exec(wire.OpLSort, mkArgs(t, wire.OpLSort, "big"), nil)
		sorted <- err
	}()
	<-inSort

	// A writer queued on the sorting table must not hold anyone else up
	// either (RWMutex writer preference applies per table only).
	queued := make(chan struct{})
	go func() {
		defer close(queued)
		if _, err := s.Exec(wire.OpLAppend, mkArgs(t, wire.OpLAppend, "big", 0), nil); err != nil {
			t.Error(err)
		}
	}()
	for i := range 100 {
		do(t, s, wire.OpDSet, "other", i, i)
		do(t, s, wire.OpDGet, "other", "a")
		do(t, s, wire.OpCreateDict, fmt.Sprintf("t%d", i))
		do(t, s, wire.OpDrop, fmt.Sprintf("t%d", i))
		do(t, s, wire.OpBatch, []any{sub(wire.OpLAppend, "victim", i), sub(wire.OpDIncr, "other", "n")})
		do(t, s, wire.OpTables)
		do(t, s, wire.OpExists, "nothing")
		_ = s.Stats()
	}
	expect(t, do(t, s, wire.OpLLen, "victim"), "100")
	close(release)
	if err := <-sorted; err != nil {
		t.Fatal(err)
	}
	<-queued
	expect(t, do(t, s, wire.OpLRange, "big", 0, 3), "[1, 2, 3]")
	expect(t, do(t, s, wire.OpLGet, "big", -1), "0") // appended after the sort
	expect(t, do(t, s, wire.OpLLen, "big"), "100001")
}

// TestBatchIsolation moves amounts between two dicts in batches while
// readers check, with read-only batches, that the total never changes.
func TestBatchIsolation(t *testing.T) {
	s := New()
	newDictTable(t, s, "a", "x", 1000)
	newDictTable(t, s, "b", "x", 1000)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for range 500 {
				n := rng.IntN(50)
				from, to := "a", "b"
				if rng.IntN(2) == 0 {
					from, to = to, from
				}
				batch := []any{sub(wire.OpDIncr, from, "x", -n), sub(wire.OpDIncr, to, "x", n)}
				if _, err := s.Exec(wire.OpBatch, mkArgs(t, wire.OpBatch, batch), nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				out, err := s.Exec(wire.OpBatch, mkArgs(t, wire.OpBatch, []any{sub(wire.OpDGet, "b", "x"), sub(wire.OpDGet, "a", "x")}), nil)
				if err != nil {
					t.Error(err)
					return
				}
				var v []int64
				if err := wire.Unmarshal(out, &v); err != nil || v[0]+v[1] != 2000 {
					t.Errorf("saw %v (%v): a partial batch", v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
}

// TestConcurrentMix runs every kind of op, batches and table churn from
// many goroutines at once; run with -race it checks for data races and
// deadlocks (lock order), and at the end that the stats agree with the
// tables.
func TestConcurrentMix(t *testing.T) {
	s := New()
	names := []string{"t0", "t1", "t2", "t3", "t4", "t5"}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range 1500 {
				n1, n2 := names[rng.IntN(len(names))], names[rng.IntN(len(names))]
				var op wire.Op
				var args []any
				switch rng.IntN(14) {
				case 0:
					op, args = wire.OpCreateDict, []any{n1}
				case 1:
					op, args = wire.OpCreateList, []any{n1, []int{3, 1, 2}}
				case 2:
					op, args = wire.OpDrop, []any{n1}
				case 3:
					op, args = wire.OpDSet, []any{n1, rng.IntN(50), w}
				case 4:
					op, args = wire.OpDDel, []any{n1, rng.IntN(50)}
				case 5:
					op, args = wire.OpLAppend, []any{n1, rng.IntN(9)}
				case 6:
					op, args = wire.OpLSort, []any{n1, rng.IntN(2) == 0}
				case 7:
					op, args = wire.OpLPop, []any{n1}
				case 8:
					op, args = wire.OpTables, nil
				case 9:
					op, args = wire.OpDScan, []any{n1, 0, 5}
				case 10:
					op, args = wire.OpLen, []any{n1}
				default:
					op, args = wire.OpBatch, []any{[]any{
						sub(wire.OpDIncr, n1, "n"),
						sub(wire.OpLAppend, n2, 1),
						sub(wire.OpDrop, names[rng.IntN(len(names))]),
						sub(wire.OpCreateDict, names[rng.IntN(len(names))]),
					}}
				}
				_, err := s.Exec(op, mkArgs(t, op, args...), nil)
				if err != nil && wire.AsError(err).Code == wire.CodeInternal {
					t.Error(err)
				}
				if rng.IntN(50) == 0 {
					_ = s.Stats()
				}
			}
		}()
	}
	wg.Wait()
	var st Stats
	for _, n := range names {
		out, err := s.Exec(wire.OpLen, mkArgs(t, wire.OpLen, n), nil)
		if err != nil {
			continue
		}
		var l int64
		if err := wire.Unmarshal(out, &l); err != nil {
			t.Fatal(err)
		}
		st.Tables++
		st.Entries += l
	}
	if got := s.Stats(); got.Tables != st.Tables || got.Entries != st.Entries {
		t.Fatalf("stats %+v, tables say %+v", got, st)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for name, tb := range s.tables {
		if tb.dropped || kind(tb.pubKind.Load()) == kindNone {
			t.Errorf("slot %q left in the map: dropped=%v", name, tb.dropped)
		}
	}
}
