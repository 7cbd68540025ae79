package procs

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// reset puts the package back in its first state, with full processors.
func reset(t *testing.T, n int) {
	t.Helper()
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		t.Skip("$GOMAXPROCS is set: lean mode is off by design")
	}
	prev := runtime.GOMAXPROCS(n)
	mu.Lock()
	full, userSet, loops, borrows, applied, changes, lowerAt = 0, false, 0, 0, 0, 0, nil
	stats.Store(nil)
	mu.Unlock()
	linger = 20 * time.Millisecond
	t.Cleanup(func() {
		linger = Linger
		runtime.GOMAXPROCS(prev)
		mu.Lock()
		full = 0
		stats.Store(nil)
		mu.Unlock()
	})
}

// waitProcs waits up to 5 s for GOMAXPROCS to be n.
func waitProcs(t *testing.T, what string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.GOMAXPROCS(0) != n && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	wantProcs(t, what, n)
}

func wantProcs(t *testing.T, what string, n int) {
	t.Helper()
	if got := runtime.GOMAXPROCS(0); got != n {
		t.Fatalf("%s: GOMAXPROCS = %d, want %d", what, got, n)
	}
	if st := Stats(); st.Procs != n {
		t.Fatalf("%s: Stats().Procs = %d, want %d", what, st.Procs, n)
	}
}

func TestLeanBorrowReturn(t *testing.T) {
	reset(t, 4)
	wantProcs(t, "at start", 4)
	release := Lean(1)
	wantProcs(t, "one loop, at once", 4) // lowering waits for the linger
	waitProcs(t, "one loop", 1)
	if st := Stats(); !st.Lean || st.Full != 4 {
		t.Fatalf("Stats = %+v, want lean with 4 full", st)
	}
	Borrow()
	wantProcs(t, "borrowed", 4)
	Borrow() // nested: a snapshot run by a worker
	Return()
	wantProcs(t, "one borrower left", 4)
	Return()
	wantProcs(t, "just returned: the processors linger", 4)
	waitProcs(t, "after the linger", 1)

	// Borrowed again before the linger ends: no change at all.
	Borrow()
	Return()
	before := Stats().Changes
	Borrow()
	wantProcs(t, "borrowed again", 4)
	Return()
	if got := Stats().Changes - before; got != 0 {
		t.Fatalf("a Borrow within the linger changed GOMAXPROCS %d times, want 0", got)
	}

	release2 := Lean(2)
	waitProcs(t, "three loops", 3)
	release()
	release() // a second call does nothing
	waitProcs(t, "two loops", 2)
	release2()
	wantProcs(t, "no loops", 4)
	if st := Stats(); st.Lean {
		t.Fatalf("Stats = %+v, want not lean without loops", st)
	}
}

func TestAsManyLoopsAsProcessors(t *testing.T) {
	reset(t, 2)
	release := Lean(2)
	defer release()
	wantProcs(t, "two loops on two", 2)
	if Stats().Lean {
		t.Fatal("lean with as many loops as processors")
	}
}

func TestSetFull(t *testing.T) {
	reset(t, 1)
	SetFull(2) // the worker pool's extra processor on one CPU
	release := Lean(1)
	defer release()
	waitProcs(t, "one loop", 1)
	Borrow()
	wantProcs(t, "borrowed", 2)
	Return()
}

func TestReturnWithoutBorrowPanics(t *testing.T) {
	reset(t, 2)
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
		mu.Lock()
		borrows = 0
		mu.Unlock()
	}()
	Return()
}

func TestLeanProcsLeaveTheLoopsTheirProcessors(t *testing.T) {
	want := map[int]int{1: 1, 2: 2, 3: 3, 4: 5, 5: 6, 6: 8, 8: 11, 16: 21}
	for loops, p := range want {
		if got := leanProcs(loops); got != p {
			t.Errorf("leanProcs(%d) = %d, want %d", loops, got, p)
		}
	}
	// The runtime's figures (runtime/mgcpacer.go): fractional workers
	// only up to 3 processors and at 6 one dedicated, else a quarter.
	for p, d := range map[int]int{1: 0, 2: 0, 3: 0, 4: 1, 5: 1, 6: 1, 7: 2, 8: 2, 16: 4} {
		if got := gcMarkWorkers(p); got != d {
			t.Errorf("gcMarkWorkers(%d) = %d, want %d", p, got, d)
		}
	}
}
