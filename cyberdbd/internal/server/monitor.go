package server

import (
	"sync"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// The live monitor (PROTOCOL.md 6.9, "monitor"): a push connection that
// sends monitor gets a push message of kind "monitor" for every request
// other connections complete.
//
// Costs: nothing while nobody monitors but the atomic load in observe.
// While someone does, each request is rendered and encoded once per
// monitor, and appended to that monitor's buffer under its lock; a
// goroutine per monitor hands the buffer to the connection: written
// directly on a goroutine-served connection (under wmu, as deliverAsync
// does), through the event loop's queue on a loop's (ioLoop.do), so that
// the loop alone touches its connection's replies.
//
// Bounded memory, never silent (design-push.md): a monitor holds at most
// monitorBuffer bytes waiting for its goroutine, plus one batch being
// handed over, plus, on an event loop, monitorBuffer bytes unsent in the
// connection's replies. Past that, the subscription ends with a "lost"
// push, and the connection stays usable for requests.

// monitorBuffer bounds what one monitor may make the daemon hold (see
// above); a var for tests.
var monitorBuffer = 1 << 20

// monitorSub is one monitor subscription.
type monitorSub struct {
	id uint64
	c  *shared // the monitoring connection: its own requests are not shown

	// Goroutine-served connections: conn. Loop-served: loop and lc.
	conn *conn
	loop *ioLoop
	lc   *loopConn

	mu    sync.Mutex // guards the rest; taken under observer.monMu
	buf   []byte     // push frames not yet handed over
	armed bool       // its monitor reply has been sent: pushes may follow
	ended bool       // overflowed or stopped: nothing more is added
	wake  chan struct{}
	stop  chan struct{} // closed by unsubscribe
}

// monitorEvent is one monitor push message (PROTOCOL.md 6.9).
type monitorEvent struct {
	Push     string `cbor:"push"`
	Sub      uint64 `cbor:"sub"`
	Time     int64  `cbor:"time_us"`
	Conn     uint64 `cbor:"conn"`
	Client   string `cbor:"client"`
	Op       string `cbor:"op"`
	Table    string `cbor:"table,omitempty"`
	Key      string `cbor:"key,omitempty"`
	Duration int64  `cbor:"duration_us"`
	Error    string `cbor:"error,omitempty"`
}

// lostFrame is the push that ends subscription sub: why, and what to do.
func lostFrame(sub uint64, reason string) []byte {
	body, _ := wire.Marshal(map[string]any{"push": "lost", "sub": sub, "reason": reason})
	return wire.AppendReply(nil, 0, body)
}

// publish sends request req of c to every monitor but c's own.
func (s *Server) publish(c *conn, req wire.Request, end time.Time, d time.Duration, err error) {
	ev := monitorEvent{Push: "monitor", Time: end.UnixMicro(), Conn: c.id, Client: c.shared.stats.who,
		Op: req.Op.String(), Table: tableOf(req), Key: keyOf(req), Duration: d.Microseconds(), Error: errCode(err)}
	s.obs.monMu.Lock()
	defer s.obs.monMu.Unlock()
	for m := range s.obs.mons {
		if m.c == c.shared {
			continue
		}
		ev.Sub = m.id
		body, merr := wire.Marshal(&ev)
		if merr != nil {
			continue
		}
		m.add(wire.AppendReply(nil, 0, body))
	}
}

// add queues frame, or ends the subscription when its buffer is full.
func (m *monitorSub) add(frame []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended || !m.armed {
		return
	}
	if len(m.buf)+len(frame) > monitorBuffer {
		m.ended = true
		m.buf = append(m.buf, lostFrame(m.id, "the monitor did not keep up: its connection read too slowly; monitor again")...)
	} else {
		m.buf = append(m.buf, frame...)
	}
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// doMonitor answers monitor: [] or [true] subscribes c, [false] ends its
// subscription.
func (c *conn) doMonitor(args wire.Args, out []byte) ([]byte, error) {
	if err := args.Want(0, 1); err != nil {
		return out, err
	}
	on := true
	if args.Has(0) {
		var err error
		if on, err = args.Bool(0); err != nil {
			return out, err
		}
	}
	s := c.s
	if !on {
		return wire.AppendBool(out, s.unsubscribeConn(c.shared)), nil
	}
	if !c.push {
		return out, wire.Errorf(wire.CodeBadRequest,
			`monitor needs the push extension: send HELLO with {"push": true} (PROTOCOL.md 3.1)`)
	}
	m := &monitorSub{id: s.obs.monIDs.Add(1), c: c.shared, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	if c.deliverTo != nil {
		if m.loop, m.lc = s.findLoopConn(c); m.loop == nil {
			return out, wire.Errorf(wire.CodeInternal, "monitor: the connection's event loop was not found")
		}
		m.armed = true // the loop writes the reply before any push it queues later
	} else {
		m.conn = c
		c.shared.wmu.Lock()
		c.shared.arm = m // armed by flush, once the reply is written
		c.shared.wmu.Unlock()
	}
	s.obs.monMu.Lock()
	for old := range s.obs.mons {
		if old.c == c.shared {
			s.obs.monMu.Unlock()
			return out, wire.Errorf(wire.CodeBadRequest, "monitor: this connection is already monitoring (subscription %d)", old.id)
		}
	}
	if s.obs.mons == nil {
		s.obs.mons = make(map[*monitorSub]struct{})
	}
	s.obs.mons[m] = struct{}{}
	s.obs.monitors.Add(1)
	s.obs.retime()
	s.obs.monMu.Unlock()
	go s.runMonitor(m)
	c.log.Info("monitor started", "sub", m.id)
	return wire.AppendMarshal(out, map[string]any{"sub": m.id})
}

// unsubscribe ends m; it returns false if it had ended already.
func (s *Server) unsubscribe(m *monitorSub) bool {
	s.obs.monMu.Lock()
	_, ok := s.obs.mons[m]
	if ok {
		delete(s.obs.mons, m)
		s.obs.monitors.Add(-1)
		s.obs.retime()
		close(m.stop)
	}
	s.obs.monMu.Unlock()
	m.mu.Lock()
	m.ended = true
	m.mu.Unlock()
	return ok
}

// stopMonitors ends every monitor (Shutdown).
func (s *Server) stopMonitors() {
	s.obs.monMu.Lock()
	var all []*monitorSub
	for m := range s.obs.mons {
		all = append(all, m)
	}
	s.obs.monMu.Unlock()
	for _, m := range all {
		s.unsubscribe(m)
	}
}

// unsubscribeConn ends the monitor of a connection (monitor false, or it
// closed), and reports whether it had one.
func (s *Server) unsubscribeConn(sh *shared) bool {
	if s.obs.monitors.Load() == 0 {
		return false
	}
	s.obs.monMu.Lock()
	var mine *monitorSub
	for m := range s.obs.mons {
		if m.c == sh {
			mine = m
		}
	}
	s.obs.monMu.Unlock()
	return mine != nil && s.unsubscribe(mine)
}

// runMonitor hands m's pushes to its connection until m ends.
func (s *Server) runMonitor(m *monitorSub) {
	for {
		select {
		case <-m.wake:
		case <-m.stop:
			return
		}
		m.mu.Lock()
		b, ended := m.buf, m.ended
		m.buf = nil
		m.mu.Unlock()
		if len(b) == 0 {
			continue
		}
		alive := true
		if m.conn != nil {
			alive = m.writeDirect(b)
		} else {
			var overflow bool
			alive, overflow = m.writeLoop(b)
			ended = ended || overflow
		}
		if !alive || ended {
			s.unsubscribe(m)
			return
		}
	}
}

// writeDirect writes b to a goroutine-served connection; false when the
// connection is gone (a failed write closes it: a frame may be cut).
func (m *monitorSub) writeDirect(b []byte) bool {
	c := m.conn
	c.shared.wmu.Lock()
	defer c.shared.wmu.Unlock()
	if c.gone || c.shared.broken.Load() {
		return false
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	c.writeDL = time.Time{} // the connection's own flush sets its deadline again
	if _, err := c.nc.Write(b); err != nil {
		c.writeBroke("its monitor pushes", err)
		return false
	}
	return true
}

// monitorHandoff bounds how long a monitor waits for its event loop to
// take a batch: a loop that has ended (shutdown) never will.
const monitorHandoff = 10 * time.Second
