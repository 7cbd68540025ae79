package server

import (
	"runtime"
	"sync"
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

func newWorkPool(loops int) *workPool {
	return &workPool{max: max(1, runtime.GOMAXPROCS(0)-loops)}
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

// work runs f, then what is queued, until nothing is.
func (p *workPool) work(f func()) {
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
