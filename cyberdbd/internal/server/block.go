package server

import (
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Blocking requests (lbpop, lbmove) and the push extension (PROTOCOL.md
// 3.1).
//
// A blocking request that cannot be answered at once is parked in the
// store as a store.Waiter, which costs a small struct and a timer, no
// goroutine. On a push connection the connection goes on with its next
// requests, and the parked request's reply is sent whenever it comes
// (matched by id); without push, the connection executes nothing more
// until that reply is sent, as Redis's BLPOP blocks its connection.
//
// The store tells the waiter's connection (conn.Deliver) from whatever goroutine
// served it (a writer on another connection or loop, or the time-out's
// timer). The reply reaches the connection through its owner: an event
// loop's mailbox (ioloop_linux.go: deliverTo), or, for a connection with a
// goroutine of its own, a write under conn.wmu from a goroutine started
// for it. A value whose connection is known to be gone before its reply is
// written goes back to its list (store.Delivery.GiveBack): a waiter is
// cancelled when its connection closes, and one claimed just before that
// finds the connection closed when its reply arrives.
//
// This is the seam issue 17 builds on: a slow op parked off the loops
// answers through the same delivery path.

// hasBlocked says whether the connection has parked requests.
func (c *conn) hasBlocked() bool {
	c.shared.wmu.Lock()
	defer c.shared.wmu.Unlock()
	return len(c.blocked) > 0
}

// Deliver answers parked request id (store.Recipient): through the
// event loop's mailbox, or from a goroutine of its own (deliverAsync).
func (c *conn) Deliver(id uint64, d store.Delivery) {
	if c.deliverTo != nil {
		c.deliverTo(id, d)
		return
	}
	c.deliverAsync(id, d)
}

// block runs a blocking op for request id: an immediate answer is appended
// to out; a parked one sets c.parkedNow (handle then sends nothing now).
func (c *conn) block(req wire.Request, out []byte) ([]byte, error) {
	if c.push && c.blocked[req.ID] != nil {
		return out, wire.Errorf(wire.CodeBadRequest,
			"%s: request id %d is already used by a blocked request on this connection: ids in flight must be unique on a push connection", req.Op, req.ID)
	}
	res, w, err := c.s.store.BlockFor(req.Op, req.Args, out, c, req.ID)
	if err != nil || w == nil {
		return res, err
	}
	c.parkedNow = true
	if c.blocked == nil {
		c.blocked = make(map[uint64]*store.Waiter)
	}
	c.blocked[req.ID] = w
	c.s.blockedTotal.Add(1)
	return out, nil
}

// appendDelivery appends the reply of parked request id.
func appendDelivery(out []byte, id uint64, d store.Delivery) []byte {
	if d.Err != nil {
		return wire.AppendError(out, id, d.Err)
	}
	return wire.AppendReply(out, id, d.Result)
}

// cancelBlocked answers cancel, [id, 67, target]: true when the request
// with id target was waiting and no longer is; its reply [target, 0,
// null] is queued first. false when no request of that id waits (it was
// answered, is being answered: its reply comes, or never was).
func (c *conn) cancelBlocked(req wire.Request, out []byte) []byte {
	if err := req.Args.Want(1, 1); err != nil {
		return wire.AppendError(out, req.ID, wire.AsError(err))
	}
	target, err := req.Args.Uint(0)
	if err != nil {
		return wire.AppendError(out, req.ID, wire.AsError(err))
	}
	ok := false
	if w := c.blocked[target]; w != nil && w.Cancel() {
		delete(c.blocked, target)
		out = wire.AppendReply(out, target, []byte{0xf6})
		ok = true
	}
	return wire.AppendReply(out, req.ID, wire.AppendBool(nil, ok))
}

// cancelAll cancels the connection's parked requests, which are gone with
// it, and reports whether all were cancelled: false when some were claimed
// already, so that their replies (or give-backs) are on their way.
func (c *conn) cancelAll() bool {
	all := true
	for id, w := range c.blocked {
		if w.Cancel() {
			delete(c.blocked, id)
		} else {
			all = false
		}
	}
	return all
}

// pendingGiveBack is the give-back (store.Delivery.GiveBack) of a value
// whose reply is queued in a connection's out and ends at offset end:
// if the connection fails or closes before out[:end] is written, the
// value goes back to its list. Once written whole to the socket, the reply
// counts as delivered, even if the client dies without reading it: the
// server cannot tell the two apart (PROTOCOL.md 6.6).
type pendingGiveBack struct {
	end int
	fn  func()
}

// unwritten returns the give-backs of gbs whose replies were not written
// whole when the first n bytes of their out were.
func unwritten(gbs []pendingGiveBack, n int) []pendingGiveBack {
	for i, g := range gbs {
		if g.end > n {
			return gbs[i:]
		}
	}
	return nil
}

// giveBack runs the give-backs of gbs; never under a lock of the store
// or of an event loop.
func giveBack(gbs []pendingGiveBack) {
	for _, g := range gbs {
		g.fn()
	}
}

// Goroutine-served connections (conn.serve).

// deliverAsync answers parked request id of a goroutine-served connection:
// from a goroutine of its own, as deliver may run on an event loop.
func (c *conn) deliverAsync(id uint64, d store.Delivery) {
	go func() {
		if d.Err == nil && c.s.cfg.Durable != nil {
			if err := c.s.cfg.Durable(); err != nil {
				d = store.Delivery{Err: wire.Errorf(wire.CodeIO, "the pop could not be made durable: %v", err)}
			}
		}
		frame := appendDelivery(nil, id, d)
		var broke error
		c.shared.wmu.Lock()
		undelivered := c.gone
		if !undelivered {
			delete(c.blocked, id)
			if !c.push {
				// The connection's goroutine waits for it (waitParked)
				// and writes it; flush gives the value back if it could
				// not write it whole.
				c.out = append(c.out, frame...)
				if d.GiveBack != nil {
					c.shared.giveBacks = append(c.shared.giveBacks, pendingGiveBack{end: len(c.out), fn: d.GiveBack})
				}
			} else if c.shared.broken.Load() {
				undelivered = true // the connection is closing: nothing more is written
			} else {
				_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
				if _, err := c.nc.Write(frame); err != nil {
					// Not written whole (EPIPE: the client shut its
					// reading side or is gone): the value goes back,
					// and the stream, perhaps cut in the frame, ends.
					// Nothing more is written from now on; the socket
					// is closed once the value is back, so that a
					// client that sees the end finds it in its list.
					undelivered = true
					c.shared.broken.Store(true)
					broke = err
				}
				c.writeDL = time.Time{}
				c.armIdle()
			}
		}
		c.shared.wmu.Unlock()
		if undelivered && d.GiveBack != nil {
			d.GiveBack()
		}
		if broke != nil {
			c.writeBroke("the reply to a parked request", broke)
		}
		// Without push, waitParked waits for it; with push, drainParked
		// after a half-close.
		select {
		case c.unpark <- struct{}{}:
		default:
		}
	}()
}

// idleWait's states.
const (
	idleNone    uint32 = iota
	idleWaiting        // reading with no deadline while requests are parked
	idleArmed          // armIdle set the idle deadline of that read
)

// armIdle gives a push connection's read the --idle-timeout deadline that
// it began without because requests were parked, once the last of them was
// answered: else a connection that has had a parked request would never
// be closed for idleness again. Must hold wmu.
func (c *conn) armIdle() {
	if len(c.blocked) > 0 || c.pq.live() || !c.shared.idleWait.CompareAndSwap(idleWaiting, idleArmed) {
		return
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
	// Checked after setting the deadline, which may have replaced the
	// interrupt of Shutdown or EndOldSessions.
	if c.s.closing.Load() || (c.session != nil && c.tcp.cfg.Password.stale(c.session.gen.Load())) {
		c.interrupt()
	}
}

// endIdleWait ends the state armIdle looks for, when the read that began
// without a deadline returned or a frame began to arrive: the deadline
// last set is then unknown to the loop (readDL) if armIdle set one.
func (c *conn) endIdleWait() {
	if c.shared.idleWait.Load() == idleNone {
		return
	}
	c.shared.wmu.Lock()
	if c.shared.idleWait.Swap(idleNone) == idleArmed {
		c.readDL = time.Unix(2, 0) // unknown: the loop sets its own again
	}
	c.shared.wmu.Unlock()
}

// drainParked holds a goroutine-served push connection whose client
// half-closed until its parked requests are answered: their replies still
// go out, then the connection closes (PROTOCOL.md 3.1). It stops waiting
// when the server shuts down (the rest is cancelled, and the last frame
// says so) or when the client is gone altogether (peerGone; serve then
// cancels the rest).
func (c *conn) drainParked() {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for c.hasBlocked() {
		select {
		case <-c.unpark:
		case <-tick.C:
			if c.s.closing.Load() {
				c.shared.wmu.Lock()
				all := c.cancelAll()
				c.shared.wmu.Unlock()
				if all { // else a reply is on its way: the close comes after it
					c.final(errShuttingDown)
					return
				}
			} else if peerGone(c.nc) {
				return
			}
		}
	}
}

// waitParked holds a goroutine-served connection without push while its
// parked request waits: nothing more is executed meanwhile. A helper
// reads ahead one byte so that a client that hangs up is noticed (its
// request is then cancelled, and a value claimed meanwhile goes back); a
// byte that arrives stays buffered for the loop. It returns false when
// the connection is to end.
func (c *conn) waitParked() bool {
	// The read-ahead is not a wait for a request: no idle deadline
	// (PROTOCOL.md 6.6: a connection with a parked request is not idle).
	c.readDL = time.Unix(2, 0)
	_ = c.nc.SetReadDeadline(time.Time{})
	if c.s.closing.Load() || (c.session != nil && c.tcp.cfg.Password.stale(c.session.gen.Load())) {
		c.interrupt() // undone just now: Shutdown's or EndOldSessions'
	}
	hup := make(chan struct{})
	helperDone := make(chan struct{})
	go func() {
		defer close(helperDone)
		if _, err := c.r.Peek(1); err != nil && !c.interrupted.Load() {
			close(hup)
		}
	}()
	ended := false
	select {
	case <-c.unpark:
	case <-hup:
		c.shared.wmu.Lock()
		all := c.cancelAll()
		c.shared.wmu.Unlock()
		if !all {
			<-c.unpark // claimed just now: its reply was queued; it fails with the connection
		}
		ended = true
	}
	c.interrupted.Store(true)
	_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	<-helperDone
	c.interrupted.Store(false)
	c.readDL = time.Unix(2, 0) // unknown: the loop sets its own again
	return !ended
}
