//go:build linux

package server

import (
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

// onLoop runs fn on l's goroutine and waits for it, up to monitorHandoff:
// false if it did not run in time (a wedged or ended loop).
func (l *ioLoop) onLoop(fn func()) bool {
	done := make(chan struct{})
	l.do(func() { fn(); close(done) })
	t := time.NewTimer(monitorHandoff)
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
func (l *ioLoop) clients(now time.Time, cur *ioLoop) []clientInfo {
	var out []clientInfo
	run := l.onLoop
	if l == cur {
		run = func(fn func()) bool { fn(); return true }
	}
	ok := run(func() {
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
	})
	if !ok {
		return nil
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
	var kill func()
	kill = func() {
		switch {
		case target.closed:
		case target.offLoop: // its request's goroutine owns it: next round
			l.do(kill)
		default:
			target.log.Info("connection closed by kill_client")
			l.close(target, "killed (kill_client)")
		}
	}
	l.do(kill)
	return true
}

// writeLoop hands b to m's loop connection: alive false when the
// connection is gone, overflow true when its unsent replies were over
// monitorBuffer, so that a lost push was queued instead of b.
func (m *monitorSub) writeLoop(b []byte) (alive, overflow bool) {
	l, c := m.loop, m.lc
	for {
		busy := false
		ran := l.onLoop(func() {
			switch {
			case c.closed || c.closeBy != "":
				return
			case c.offLoop: // its request's goroutine owns it for now
				busy, alive = true, true
				return
			}
			alive = true
			if len(c.out)-c.wpos > monitorBuffer {
				overflow = true
				b = lostFrame(m.id, "the monitor did not keep up: its connection read too slowly; monitor again")
			}
			c.out = append(c.out, b...)
			l.queue(c)
		})
		if !ran {
			return false, false
		}
		if !busy {
			return alive, overflow
		}
		time.Sleep(time.Millisecond)
	}
}
