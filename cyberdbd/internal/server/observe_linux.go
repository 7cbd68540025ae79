//go:build linux

package server

import (
	"sync"
	"time"
)

// The event loops' side of observe.go and monitor.go. A loop's connection
// belongs to its goroutine, so what reads or changes one (its unsent
// replies, closing it, appending pushes) runs there, through ioLoop.do.

// findLoopConn returns the loop serving c and c's loopConn; nil if none.
func (s *Server) findLoopConn(c *conn) (*ioLoop, *loopConn) {
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	for _, l := range loops {
		l.mu.Lock()
		for _, lc := range l.conns {
			if &lc.conn == c {
				l.mu.Unlock()
				return l, lc
			}
		}
		l.mu.Unlock()
	}
	return nil, nil
}

// onLoop runs fn on l's goroutine and waits for it, up to wait: false if
// it did not run in time (a wedged, busy or ended loop). fn may still run
// later: it must be safe then.
func (l *ioLoop) onLoop(fn func(), wait time.Duration) bool {
	done := make(chan struct{})
	l.do(func() { fn(); close(done) })
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// currentLoop returns the loop whose goroutine runs c's request now; nil
// when c has a goroutine of its own or its request runs off the loop.
// (offLoop is the loop's, but stable while c's request runs: set before
// the request's goroutine starts, cleared after it ends.)
func (s *Server) currentLoop(c *conn) *ioLoop {
	if c.deliverTo == nil {
		return nil
	}
	l, lc := s.findLoopConn(c)
	if lc == nil || lc.offLoop {
		return nil
	}
	return l
}

// clients lists l's connections; cur is the loop running the caller.
//
// The unsent replies are the loop's to read, so the listing runs on it.
// A caller on another loop waits for it briefly only: two loops listing
// each other's connections at once would otherwise wait for each other.
// Past that, the connections are listed from what other goroutines may
// read, with pending_bytes -1 (unknown).
func (l *ioLoop) clients(now time.Time, cur *ioLoop) []clientInfo {
	if l == cur {
		return l.listClients(now)
	}
	wait := monitorHandoff
	if cur != nil {
		wait = 100 * time.Millisecond
	}
	var (
		mu  sync.Mutex
		out []clientInfo
		got bool
	)
	ok := l.onLoop(func() {
		list := l.listClients(now)
		mu.Lock()
		out, got = list, true
		mu.Unlock()
	}, wait)
	mu.Lock()
	defer mu.Unlock()
	if ok && got {
		return out
	}
	got = true // a late run of the listing is dropped
	out = nil
	for _, c := range l.snapshot() { // immutable fields and atomics only
		out = append(out, l.s.clientOf(&c.conn, -1, now))
	}
	return out
}

// listClients lists l's connections. On l's goroutine.
func (l *ioLoop) listClients(now time.Time) []clientInfo {
	var out []clientInfo
	for _, c := range l.snapshot() {
		if c.closed {
			continue
		}
		pending := int64(0)
		if !c.offLoop {
			pending = int64(len(c.out) - c.wpos)
		}
		out = append(out, l.s.clientOf(&c.conn, pending, now))
	}
	return out
}

// kill closes l's connection id at the loop's next round, if l has it.
// It does not wait for that round: the caller may be running on l.
func (l *ioLoop) kill(id uint64) bool {
	l.mu.Lock()
	var target *loopConn
	for _, c := range l.conns {
		if c.id == id {
			target = c
		}
	}
	l.mu.Unlock()
	if target == nil {
		return false
	}
	l.do(func() {
		switch {
		case target.closed:
		case target.working:
			// A worker owns it: closed when the loop takes it back
			// (takeSaved). Posting this again each round spun the loop
			// for as long as the request ran.
			target.killed = true
		default:
			// Waiting for its replies to drain before its off-loop
			// request starts is no reason to wait: a client that does
			// not read is what kill_client is for (it used to be spun
			// on for good).
			target.log.Info("connection closed by kill_client")
			l.close(target, "killed (kill_client)")
		}
	})
	return true
}

// writeLoop hands b to m's loop connection: alive false when the
// connection is gone, overflow true when its unsent replies were over
// monitorBuffer, so that a lost push was queued instead of b.
func (m *monitorSub) writeLoop(b []byte) (alive, overflow bool) {
	l, c := m.loop, m.lc
	// The state the loop's run reports; a run that comes after the wait
	// gave up reports to nobody (onLoop's timeout), hence its own lock.
	type result struct{ alive, overflow, busy bool }
	var (
		mu  sync.Mutex
		res result
	)
	for {
		ran := l.onLoop(func() {
			var r result
			switch {
			case c.closed || c.closeBy != "":
			case c.working: // a worker runs its request and owns it for now
				r.busy, r.alive = true, true
			default:
				r.alive = true
				frames := b
				if len(c.out)-c.wpos > monitorBuffer {
					r.overflow = true
					frames = lostFrame(m.id, "the monitor did not keep up: its connection read too slowly; monitor again")
				}
				c.out = append(c.out, frames...)
				l.queue(c)
			}
			mu.Lock()
			res = r
			mu.Unlock()
		}, monitorHandoff)
		if !ran {
			return false, false
		}
		mu.Lock()
		r := res
		mu.Unlock()
		if !r.busy {
			return r.alive, r.overflow
		}
		time.Sleep(time.Millisecond)
	}
}
