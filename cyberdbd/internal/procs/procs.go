// Package procs sizes the Go runtime's processors (GOMAXPROCS) to the
// work the daemon has: one per event loop while only the loops have work
// (and, from 4 loops on, those the collector's mark workers take),
// every CPU while anything else does.
//
// Why: an event loop parks in Go's poller whenever it finds no event.
// With a second, idle processor, each wake-up of the loop also wakes a
// spinning thread for that processor, and the loop's goroutine is run by
// whichever thread polls next, so two or three threads take turns
// running one loop, switching context each time, on the cores the
// clients need. With as many processors as loops, the thread that waits
// in the poller runs the loop it wakes, as Redis's one thread does.
// Measured unpinned on 2 cores, `cyberdb bench -c 50` against Redis
// (README, "The unpinned gap"): one processor instead of two raised the
// rps by 15 to 25%, with and without pipelining, and brought the p99
// under Redis's.
//
// But a loop sharing its processor with a goroutine that computes (a slow
// request on the worker pool, a snapshot, a TCP connection) would wait
// for the scheduler to preempt it, every 10 ms: the stall the worker pool
// exists to prevent. So such work borrows the other processors while it
// runs (Borrow, Return), and they are given back Linger after the last
// borrower returned them (each change of GOMAXPROCS stops the world for a
// few microseconds).
//
// Lean mode is on while an event loop is registered (Lean) and off when
// $GOMAXPROCS is set: then the runtime keeps what the user chose.
package procs

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Linger is how long the processors stay after the last Return.
const Linger = 250 * time.Millisecond

// linger is Linger, shortened by tests.
var linger = Linger

var (
	// mu guards the fields below and serializes GOMAXPROCS changes. A
	// leaf: nothing else is locked under it.
	mu      sync.Mutex
	full    int  // GOMAXPROCS when nothing is lean; 0 before the first use
	userSet bool // $GOMAXPROCS is set: never change it
	loops   int  // event loops registered (Lean)
	borrows int  // Borrow calls not yet returned
	applied int  // the GOMAXPROCS last set
	lowerAt *time.Timer
	changes int // GOMAXPROCS changes made, for tests and info

	// stats is what Stats reports, updated under mu and read without it:
	// info runs on an event loop, which must never wait for mu (a Borrow
	// holds it while GOMAXPROCS waits for a collection cycle).
	stats atomic.Pointer[State]
)

// initLocked reads the machine's processor count once. Must hold mu.
func initLocked() {
	if full != 0 {
		return
	}
	full = runtime.GOMAXPROCS(0)
	applied = full
	_, userSet = os.LookupEnv("GOMAXPROCS")
}

// SetFull records n as the processors the daemon has when it is not lean
// (the worker pool may raise GOMAXPROCS above the CPU count at start-up).
// Call it before Lean.
func SetFull(n int) {
	mu.Lock()
	defer mu.Unlock()
	initLocked()
	full = max(1, n)
	applyLocked()
}

// Lean registers n event loops: from Linger on, while no one borrows,
// GOMAXPROCS is leanProcs of the loops registered (as many, below 4). The returned func
// unregisters them. It never lowers GOMAXPROCS itself (a timer does,
// Linger on), so a loop may call it as it starts; it waits only for the
// lock, which a Borrow under way holds while it raises GOMAXPROCS.
func Lean(n int) (release func()) {
	mu.Lock()
	defer mu.Unlock()
	initLocked()
	loops += n
	applyLocked()
	var once sync.Once
	return func() {
		once.Do(func() {
			mu.Lock()
			defer mu.Unlock()
			loops -= n
			applyLocked()
		})
	}
}

// Borrow makes every processor available until the matching Return. It
// returns once they are, which may wait for a garbage collection cycle
// to end (GOMAXPROCS waits for one): call it from the goroutine that
// will compute, never from an event loop.
func Borrow() {
	mu.Lock()
	defer mu.Unlock()
	initLocked()
	borrows++
	applyLocked()
}

// Return gives back what Borrow took; the processors go Linger later
// unless they are borrowed again.
func Return() {
	mu.Lock()
	defer mu.Unlock()
	borrows--
	if borrows < 0 {
		panic("procs: Return without Borrow")
	}
	applyLocked()
}

// target is the GOMAXPROCS the present state calls for. Must hold mu.
func target() int {
	if userSet || loops == 0 || borrows > 0 {
		return full
	}
	return min(full, leanProcs(loops))
}

// leanProcs is the fewest processors that leave n of them to the loops
// while the collector marks: from 4 processors on, it takes whole ones
// for its dedicated mark workers (gcMarkWorkers). With 1 to 3 it takes a
// fraction of each instead, so one loop gets one processor, and 4 loops
// get 5.
func leanProcs(n int) int {
	p := n
	for p-gcMarkWorkers(p) < n {
		p++
	}
	return p
}

// gcMarkWorkers is how many of p processors the Go collector dedicates to
// marking while it runs: a quarter of them, rounded, unless rounding is
// more than 30% off, then rounded down (runtime/mgcpacer.go,
// gcControllerState.startCycle, as of Go 1.26).
func gcMarkWorkers(p int) int {
	goal := float64(p) * 0.25
	d := int(goal + 0.5)
	if e := float64(d)/goal - 1; (e > 0.3 || e < -0.3) && float64(d) > goal {
		d--
	}
	return d
}

// applyLocked moves GOMAXPROCS towards target: up at once, down Linger
// later, from a timer's goroutine (GOMAXPROCS may wait for a collection
// cycle: not on an event loop, which Lean is called from), unless it is
// raised again meanwhile; and updates what Stats reports. Must hold mu.
func applyLocked() {
	defer publishLocked()
	t := target()
	switch {
	case t > applied:
		if lowerAt != nil {
			lowerAt.Stop()
			lowerAt = nil
		}
		setLocked(t)
	case t == applied && lowerAt != nil:
		lowerAt.Stop()
		lowerAt = nil
	case t < applied && lowerAt == nil:
		lowerAt = time.AfterFunc(linger, func() {
			mu.Lock()
			defer mu.Unlock()
			lowerAt = nil
			if t := target(); t < applied {
				setLocked(t)
			}
			publishLocked()
		})
	}
}

// setLocked sets GOMAXPROCS. Must hold mu.
func setLocked(n int) {
	runtime.GOMAXPROCS(n)
	applied = n
	changes++
}

// publishLocked updates what Stats reports. Must hold mu.
func publishLocked() {
	stats.Store(&State{Procs: applied, Full: full, Lean: !userSet && loops > 0 && leanProcs(loops) < full,
		Borrows: borrows, Changes: changes})
}

// State is what Stats reports.
type State struct {
	Procs   int  // GOMAXPROCS now
	Full    int  // GOMAXPROCS when borrowed or not lean
	Lean    bool // lean mode is on (loops registered, fewer than Full, no $GOMAXPROCS)
	Borrows int  // borrowers now
	Changes int  // GOMAXPROCS changes since start
}

// Stats reports the present state, without waiting for a change under
// way.
func Stats() State {
	if st := stats.Load(); st != nil {
		return *st
	}
	mu.Lock()
	defer mu.Unlock()
	initLocked()
	publishLocked()
	return *stats.Load()
}
