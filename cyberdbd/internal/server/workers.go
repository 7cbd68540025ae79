package server

import (
	"os"
	"sync"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/procs"
)

// workPool runs the requests the event loops hand off (slowRequest,
// startOffLoop) on at most max goroutines at a time; the others wait their
// turn in order. Goroutines are started as work comes and end when there
// is none, so an idle pool holds nothing and needs no shutdown.
//
// Bounded so that slow requests never take every P from the loops: a loop
// readied by the poller while all Ps run workers would wait for the
// scheduler to preempt one (10 ms and more), which is the very stall the
// pool is there to avoid. So the pool gets the Ps the loops leave
// (GOMAXPROCS less the loops, at least one): slow requests from many
// clients queue behind each other, never in front of the fast ones.
type workPool struct {
	max int

	// mu guards running and queue. A leaf.
	mu      sync.Mutex
	running int
	queue   []func()
}

// newWorkPool makes the pool for the given number of loops. When the loops
// leave no P (one CPU, or a daemon pinned to as many CPUs as it has
// loops), it adds one, unless $GOMAXPROCS is set: a worker sharing a loop's
// P holds it until the scheduler preempts it, every 10 ms, where two
// threads sharing a CPU are switched by the kernel, which runs the loop's
// thread as soon as the poller wakes it (measured pinned to one CPU: gets
// on another table during an lsort of 2M waited 409 ms at the p99 with
// one P, 5.4 ms with two; and pinned, two Ps cost no more CPU per get or
// set than one: 4.5 to 4.9 µs against 5.1 to 5.3, under -c 50).
//
// While a worker runs, it borrows the processors the loops leave
// (internal/procs): without slow requests, the daemon runs with one
// processor per loop.
func newWorkPool(loops int) *workPool {
	n := procs.Stats().Full // not GOMAXPROCS: lean, it may be lower now
	if _, set := os.LookupEnv("GOMAXPROCS"); !set && n < loops+1 {
		n = loops + 1
		procs.SetFull(n)
	}
	return &workPool{max: max(1, n-loops)}
}

// submit runs f on a worker, now or once one is free.
func (p *workPool) submit(f func()) {
	p.mu.Lock()
	if p.running < p.max {
		p.running++
		p.mu.Unlock()
		go p.work(f)
		return
	}
	p.queue = append(p.queue, f)
	p.mu.Unlock()
}

// work runs f, then what is queued, until nothing is, with every
// processor borrowed.
func (p *workPool) work(f func()) {
	procs.Borrow()
	defer procs.Return()
	for f != nil {
		f()
		p.mu.Lock()
		f = nil
		if len(p.queue) > 0 {
			f = p.queue[0]
			p.queue[0] = nil
			p.queue = p.queue[1:]
		} else {
			p.running--
		}
		p.mu.Unlock()
	}
}
