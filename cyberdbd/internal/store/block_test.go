package store

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// parked starts a blocking op that must park, and returns its waiter and
// a channel of its delivery.
func parked(t *testing.T, s *Store, op wire.Op, vals ...any) (*Waiter, chan Delivery) {
	t.Helper()
	ch := make(chan Delivery, 1)
	out, w, err := s.Block(op, mkArgs(t, op, vals...), nil, func(d Delivery) { ch <- d })
	if err != nil || w == nil {
		t.Fatalf("%s %v: got %s, %v; want it parked", op, vals, wire.Diagnose(out), err)
	}
	return w, ch
}

func got(t *testing.T, ch chan Delivery) string {
	t.Helper()
	select {
	case d := <-ch:
		if d.Err != nil {
			t.Fatalf("delivery failed: %v", d.Err)
		}
		return wire.Diagnose(d.Result)
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
	return ""
}

func TestBlockFIFO(t *testing.T) {
	s := New()
	newListTable(t, s, "a")
	newListTable(t, s, "b")
	// At once when there is a value; the lists are tried in order.
	do(t, s, wire.OpLAppend, "b", 1, 2)
	r, w, err := s.Block(wire.OpLBPop, mkArgs(t, wire.OpLBPop, []string{"a", "b"}, "left", nil), nil, nil)
	if err != nil || w != nil {
		t.Fatal(err)
	}
	expect(t, wire.Diagnose(r), `["b", 1]`)
	do(t, s, wire.OpLPop, "b")
	// Timeout 0: null at once.
	r, w, _ = s.Block(wire.OpLBPop, mkArgs(t, wire.OpLBPop, []string{"a"}, "right", 0), nil, nil)
	if w != nil || wire.Diagnose(r) != "null" {
		t.Fatalf("timeout 0: %s", wire.Diagnose(r))
	}
	// Three waiters, served in arrival order, one value each.
	_, c1 := parked(t, s, wire.OpLBPop, []string{"a", "b"}, "left")
	_, c2 := parked(t, s, wire.OpLBPop, []string{"b"}, "left")
	w3, c3 := parked(t, s, wire.OpLBPop, []string{"a"}, "right", 60000)
	if s.Waiting() != 3 {
		t.Fatalf("waiting %d", s.Waiting())
	}
	do(t, s, wire.OpLAppend, "b", "x", "y")
	expect(t, got(t, c1), `["b", "x"]`)
	expect(t, got(t, c2), `["b", "y"]`)
	// A new blocking pop queues behind a waiter, even with a value there.
	_, c4 := parked(t, s, wire.OpLBPop, []string{"a"}, "left")
	if !w3.Cancel() {
		t.Fatal("cancel of a waiting request failed")
	}
	if w3.Cancel() {
		t.Fatal("second cancel succeeded")
	}
	do(t, s, wire.OpLExtend, "a", []int{7, 8})
	expect(t, got(t, c4), `["a", 7]`)
	select {
	case d := <-c3:
		t.Fatalf("a cancelled waiter got %s", wire.Diagnose(d.Result))
	default:
	}
	expect(t, do(t, s, wire.OpLToList, "a"), "[8]") // the cancelled one's value stayed
	if s.Waiting() != 0 {
		t.Fatalf("waiting %d", s.Waiting())
	}
	// Time-out.
	_, c5 := parked(t, s, wire.OpLBPop, []string{"b"}, "left", 20)
	expect(t, got(t, c5), "null")
	// Give back: the value returns to where it was.
	_, c6 := parked(t, s, wire.OpLBPop, []string{"b"}, "left")
	do(t, s, wire.OpLAppend, "b", 1, 2)
	d := <-c6
	d.GiveBack()
	expect(t, do(t, s, wire.OpLToList, "b"), "[1, 2]")
	// Argument errors, in the order of checks.
	blockFails(t, s, wire.CodeNoSuchTable, wire.OpLBPop, []string{"a", "nope"}, "sideways")
	newDictTable(t, s, "d")
	blockFails(t, s, wire.CodeWrongKind, wire.OpLBPop, []string{"d"}, "left")
	blockFails(t, s, wire.CodeBadRequest, wire.OpLBPop, []string{}, "left")
	blockFails(t, s, wire.CodeBadRequest, wire.OpLBPop, "a", "left")
	blockFails(t, s, wire.CodeBadRequest, wire.OpLBPop, []string{"a"}, "up")
	blockFails(t, s, wire.CodeBadRequest, wire.OpLBPop, []string{"a"}, "left", -1)
	blockFails(t, s, wire.CodeBadRequest, wire.OpLBMove, "a", "b", "left")
}

func blockFails(t *testing.T, s *Store, code wire.Code, op wire.Op, vals ...any) {
	t.Helper()
	_, w, err := s.Block(op, mkArgs(t, op, vals...), nil, func(Delivery) {})
	if w != nil {
		w.Cancel()
	}
	if wire.AsError(err).Code != code {
		t.Fatalf("%s %v: got %v, want %s", op, vals, err, code)
	}
}

func TestBlockMove(t *testing.T) {
	s := New()
	newListTable(t, s, "jobs")
	newListTable(t, s, "work")
	_, c := parked(t, s, wire.OpLBMove, "jobs", "work", "left", "right", 60000)
	_, cw := parked(t, s, wire.OpLBPop, []string{"work"}, "left") // wakes when the move lands
	do(t, s, wire.OpLAppend, "jobs", "j1")
	expect(t, got(t, c), `["jobs", "j1"]`)
	expect(t, got(t, cw), `["work", "j1"]`)
	do(t, s, wire.OpLAppend, "jobs", "j2")
	r, w, err := s.Block(wire.OpLBMove, mkArgs(t, wire.OpLBMove, "jobs", "work", "left", "left"), nil, nil)
	if err != nil || w != nil {
		t.Fatal(err)
	}
	expect(t, wire.Diagnose(r), `["jobs", "j2"]`)
	expect(t, do(t, s, wire.OpLToList, "work"), `["j2"]`)
}

// An lbmove parked while its destination is dropped cannot take a value:
// it must not hold up the waiters behind it (a value pushed sat in the
// list until the first one's time-out, and longer: nothing woke the
// others then), and it keeps its place for when its destination is back.
func TestBlockMoveDstDropped(t *testing.T) {
	s := New()
	for _, n := range []string{"jobs", "gone", "ok"} {
		newListTable(t, s, n)
	}
	w1, c1 := parked(t, s, wire.OpLBMove, "jobs", "gone", "left", "right", 60000)
	_, c2 := parked(t, s, wire.OpLBMove, "jobs", "ok", "left", "right", 60000)
	do(t, s, wire.OpDrop, "gone")
	do(t, s, wire.OpLAppend, "jobs", "x")
	expect(t, got(t, c2), `["jobs", "x"]`)
	expect(t, do(t, s, wire.OpLToList, "ok"), `["x"]`)
	select {
	case d := <-c1:
		t.Fatalf("the move into a dropped list got %s", wire.Diagnose(d.Result))
	default:
	}
	// With no other waiter, the value waits in the list; a new waiter
	// that can take it is served at once (it parks, then is served).
	do(t, s, wire.OpLAppend, "jobs", "y")
	expect(t, do(t, s, wire.OpLToList, "jobs"), `["y"]`)
	_, c3 := parked(t, s, wire.OpLBMove, "jobs", "ok", "left", "right", 60000)
	expect(t, got(t, c3), `["jobs", "y"]`)
	// Its destination back, the first waiter is served again.
	newListTable(t, s, "gone")
	do(t, s, wire.OpLAppend, "jobs", "z")
	expect(t, got(t, c1), `["jobs", "z"]`)
	if w1.Cancel() || s.Waiting() != 0 {
		t.Fatalf("waiting %d", s.Waiting())
	}
}

// TestBlockRace: many producers and blocking consumers; every value is
// delivered exactly once, to a waiter or left in the list.
func TestBlockRace(t *testing.T) {
	s := New()
	newListTable(t, s, "q")
	newListTable(t, s, "r")
	const producers, per = 4, 500
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ch := make(chan Delivery, 1)
				out, w, err := s.Block(wire.OpLBPop, mkArgs(t, wire.OpLBPop, []string{"r", "q"}, "left", 5), nil, func(d Delivery) { ch <- d })
				if err != nil {
					t.Error(err)
					return
				}
				if w != nil {
					if time.Now().UnixNano()%3 == 0 && w.Cancel() {
						continue
					}
					out = (<-ch).Result
				}
				if d := wire.Diagnose(out); d != "null" {
					mu.Lock()
					seen[d]++
					mu.Unlock()
				}
			}
		}()
	}
	var pw sync.WaitGroup
	for p := range producers {
		pw.Add(1)
		go func() {
			defer pw.Done()
			for i := range per {
				table := "q"
				if i%2 == 1 {
					table = "r"
				}
				do(t, s, wire.OpLAppend, table, fmt.Sprintf("%d-%d", p, i))
			}
		}()
	}
	pw.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for s.length("q")+s.length("r") > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for p := range producers {
		for i := range per {
			table := "q"
			if i%2 == 1 {
				table = "r"
			}
			k := fmt.Sprintf("[%q, \"%d-%d\"]", table, p, i)
			if seen[k] != 1 {
				t.Fatalf("%s delivered %d times", k, seen[k])
			}
		}
	}
	if s.Waiting() != 0 {
		t.Fatalf("%d waiters left", s.Waiting())
	}
}

// TestBlockManyWaiters parks 100,000 waiters and reports what they cost.
func TestBlockManyWaiters(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	s := New()
	newListTable(t, s, "q")
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	ws := make([]*Waiter, n)
	var delivered sync.WaitGroup
	delivered.Add(n)
	for i := range ws {
		_, w, err := s.Block(wire.OpLBPop, mkArgs(t, wire.OpLBPop, []string{"q"}, "left", 3_600_000), nil, func(Delivery) { delivered.Done() })
		if err != nil || w == nil {
			t.Fatal(err)
		}
		ws[i] = w
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	per := float64(m1.HeapAlloc-m0.HeapAlloc) / float64(n)
	t.Logf("%d waiters: %.0f bytes each on the heap, %d goroutines", n, per, runtime.NumGoroutine())
	if per > 2048 {
		t.Errorf("a waiter costs %.0f bytes", per)
	}
	if g := runtime.NumGoroutine(); g > 100 {
		t.Errorf("%d goroutines for %d waiters", g, n)
	}
	// Half cancelled, half served.
	for _, w := range ws[:n/2] {
		w.Cancel()
	}
	delivered.Add(-n / 2)
	vals := make([]int, n/2)
	do(t, s, wire.OpLExtend, "q", vals)
	delivered.Wait()
	if s.Waiting() != 0 || s.length("q") != 0 {
		t.Fatalf("waiting %d, left %d", s.Waiting(), s.length("q"))
	}
}
