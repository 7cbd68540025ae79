package server

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/clock"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

const (
	// readBufSize is a connection's read buffer (TLS records are 16 KiB
	// at most), and the largest request buffer it keeps between requests:
	// a thousand idle connections hold 16 MiB, not 64.
	readBufSize = 16 << 10
	// flushAt bounds the replies queued for a pipelining client before they
	// are written even though more requests are buffered.
	flushAt = 256 << 10
	// writeTimeout bounds how long a client that stops reading its replies
	// can hold its connection's goroutine.
	writeTimeout = 30 * time.Second
	// maxReply is the largest reply body a frame's 32-bit length can carry.
	maxReply = math.MaxUint32
)

// conn is one client connection, served by a goroutine of its own
// (serve) or by an event loop (ioloop_linux.go: loopConn). It belongs to
// the goroutine that serves it; others touch only nc's deadlines
// (interrupt: Shutdown, EndOldSessions) and session's atomic.
type conn struct {
	s     *Server
	nc    net.Conn
	id    uint64
	log   *slog.Logger
	r     *bufio.Reader // serve's; nil on an event loop's connection
	rbuf  []byte        // request body buffer, reused
	out   []byte        // replies waiting to be written
	hello bool          // HELLO done
	dirty bool          // out holds replies of write ops: Config.Durable before sending
	items []wire.Raw    // argument slots, reused by every request

	// Blocking requests and push (block.go). push: the client asked for
	// the extension in HELLO. blocked: the parked requests by id, guarded
	// by wmu on a goroutine-served connection (its deliveries come from
	// other goroutines), the loop's alone on a loop's. parked: without
	// push, the connection waits for its one parked request. parkedNow:
	// set by block for handle.
	push      bool
	blocked   map[uint64]*store.Waiter
	parked    bool
	parkedNow bool
	deliverTo func(id uint64, d store.Delivery) // nil: deliverAsync

	// Pushes (push.go): the queue, made by the first subscription;
	// notifyPush, set by an event loop, tells it the queue has frames
	// (nil: flushPushAsync); tracker, the read-cache tracking that dget
	// registers with (stopped: a plain dget).
	pq         *pushQueue
	notifyPush func()
	tracker    *store.Tracker

	// Goroutine-served connections only: wmu guards writes to nc, gone
	// and blocked (deliveries write from their own goroutines); unpark
	// wakes waitParked; interrupted tells waitParked's helper that its
	// read was cut short on purpose.
	*shared

	// TCP connections only (tcp.go): nil on Unix sockets.
	tcp        *tcpListener
	authBy     time.Time // HELLO must have authenticated by then
	authFailed bool      // HELLO's password was refused: close
	unauth     bool      // counted in tcpState.unauth: not authenticated yet
	session    *tcpSession

	// The deadlines last set, so that the loop sets them only when they
	// change: each setting takes the poller's lock and moves a timer, on
	// every request otherwise.
	readDL, writeDL time.Time

	// serve's frame in progress: the frame's read deadline while it is
	// not whole (zero between frames), and the bytes charged to the
	// server's partial budget for it (limits.go).
	partialBy time.Time
	charged   int64

	// clk is when the request handle runs next began: the end of the one
	// before it in the same burst, or zero (handle reads the clock). The
	// clock costs 100 ns and more a reading on a VM, so a burst of
	// pipelined requests reads it once per request, not twice (observe).
	// Whoever starts a burst zeroes it: loop below, ioLoop.execute, a
	// request run off the loop.
	clk time.Time
	// opTime is the clock reading exec hands the store for expiry
	// (Store.ExecAt), while handle runs a timed request; zero otherwise.
	opTime time.Time
}

// shared is the part of a conn that other goroutines touch (see the
// fields' comment); a pointer, so that an event loop's copy of the conn
// (adopt) shares it.
type shared struct {
	wmu  sync.Mutex
	gone bool
	// broken: a write to nc failed, perhaps after part of a frame went
	// out, so the stream is cut and nothing more may be written (set
	// under wmu; read without it by the loop to say why it ended).
	broken      atomic.Bool
	unpark      chan struct{}
	interrupted atomic.Bool

	// What the clients op shows (observe.go), and a monitor that waits
	// for its reply to be written before its pushes may follow (guarded
	// by wmu; monitor.go).
	stats connStats
	arm   *monitorSub

	// giveBacks: the values of parked requests whose replies deliverAsync
	// appended to out (no push) and flush has not written yet.
	giveBacks []pendingGiveBack

	// idleWait (block.go: armIdle): idleWaiting while the connection's
	// goroutine reads with no deadline only because requests of it are
	// parked; idleArmed once the last of them was answered and
	// deliverAsync set the idle deadline. Changed under wmu (read
	// without it to skip taking it).
	idleWait atomic.Uint32
}

func newConn(s *Server, nc net.Conn, id uint64) *conn {
	return &conn{
		shared: &shared{},
		s:      s,
		nc:     nc,
		id:     id,
		log:    s.log.With("conn", id),
	}
}

// interrupt wakes a connection blocked in a read so that it notices shutdown.
func (c *conn) interrupt() { _ = c.nc.SetReadDeadline(time.Now()) }

// serve serves c until it ends; the caller closes c.nc, after it stopped
// counting it.
func (c *conn) serve() {
	c.log.Debug("connection opened", "remote", remoteName(c.nc))
	if c.tcp != nil && !c.startTCP() { // TLS handshake, under the handshake time-out
		return
	}
	c.r = bufio.NewReaderSize(c.nc, readBufSize) // here: an event loop's connections have no use for it
	c.unpark = make(chan struct{}, 1)
	reason := c.loop()
	c.shared.wmu.Lock()
	c.gone = true // a reply to a parked request now gives its value back
	c.cancelAll()
	unsent := c.shared.giveBacks // replies queued in c.out, never written
	c.shared.giveBacks = nil
	c.shared.wmu.Unlock()
	giveBack(unsent)
	c.s.unsubscribeConn(c.shared)
	if c.pq != nil {
		c.pq.close()
	}
	c.log.Debug("connection closed", "reason", reason)
}

// loop serves requests until the connection ends and says why it ended.
func (c *conn) loop() string {
	idle := c.s.cfg.IdleTimeout
	for {
		if !c.frameBuffered() {
			c.clk = time.Time{} // a new burst: the wait for it is not a request's
			// No whole request is queued: send what we have before
			// blocking (with part of one, it must not wait for the rest).
			if err := c.flush(); err != nil {
				return "write failed: " + err.Error()
			}
		}
		if c.r.Buffered() == 0 {
			// Under wmu: deliverAsync may arm the idle deadline of a
			// read that began with requests parked (idleWait).
			c.shared.wmu.Lock()
			var deadline time.Time
			if idle > 0 {
				switch {
				case len(c.blocked) > 0:
					c.shared.idleWait.Store(idleWaiting) // a connection waiting for a pop is not idle
				case c.pq.live():
					// Nor one waiting for pushes: a subscriber that never
					// sends was closed here, not on the event loops.
				default:
					deadline = time.Now().Add(idle)
				}
			}
			deadline = c.readDeadline(deadline) // TCP: the handshake time-out until HELLO
			if !deadline.Equal(c.readDL) {
				// (Shutdown's interrupt is never undone by skipping this:
				// it only ends the connection sooner.)
				c.readDL = deadline
				_ = c.nc.SetReadDeadline(deadline)
			}
			c.shared.wmu.Unlock()
			// Checked after setting the deadline: Shutdown sets closing
			// before it interrupts, so one of the two is always seen.
			if c.s.closing.Load() {
				c.final(errShuttingDown)
				return "server shutting down"
			}
			if c.sessionEnded() { // TCP: logged in with a password replaced since
				return "password changed"
			}
		}
		body, err := c.readFrame()
		c.endIdleWait()
		if errors.Is(err, wire.ErrEmptyFrame) {
			// Still in sync with the stream: answer and carry on.
			c.out = wire.AppendError(c.out, 0, wire.ErrEmptyFrame)
			continue
		}
		if err != nil {
			if c.shared.broken.Load() {
				// A goroutine writing pushes or a parked request's
				// reply failed and closed the connection (writeBroke).
				return "write failed"
			}
			reason := c.readFailed(err)
			// Replies to the requests read with the end of the stream
			// (a client that half-closed, or stopped mid-frame) still go out.
			if ferr := c.flush(); ferr == nil && c.push && errors.Is(err, io.EOF) {
				c.drainParked() // and those of its parked requests, when they come
			}
			return reason
		}
		c.handle(body)
		c.frameDone(body)
		if c.authFailed {
			return c.failAuth() // TCP: wrong password; nothing after HELLO runs
		}
		if c.parked {
			// Without push the connection waits for its parked request.
			if err := c.flush(); err != nil {
				return "write failed: " + err.Error()
			}
			if !c.waitParked() {
				return "client closed while blocked"
			}
			c.parked = false
			c.clk = time.Time{}
		}
		if len(c.out) >= flushAt {
			if err := c.flush(); err != nil {
				return "write failed: " + err.Error()
			}
		}
	}
}

// readFailed handles a frame that could not be read and says why the
// connection ends.
func (c *conn) readFailed(err error) string {
	var tooLarge *wire.FrameTooLargeError
	partial := !c.partialBy.IsZero()
	c.frameDone(nil)
	switch {
	case errors.Is(err, io.EOF):
		return "client closed"
	case errors.As(err, &tooLarge):
		c.final(c.frameTooLarge(tooLarge.Size))
		return "frame too large"
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.s.closing.Load() {
			c.final(errShuttingDown)
			return "server shutting down"
		}
		if c.sessionEnded() {
			return "password changed"
		}
		if partial && (c.tcp == nil || c.hello || time.Now().Before(c.authBy)) {
			warn(&c.s.warns.partialTimeout, c.log, "closing connection: a request frame stayed incomplete past --partial-timeout",
				"partial_timeout", c.s.cfg.PartialTimeout)
			c.final(c.s.errPartialTimeout())
			return "partial request timeout"
		}
		if c.handshakeExpired() {
			return "handshake timeout"
		}
		c.final(wire.Errorf(wire.CodeIdleTimeout, "connection idle for %s (--idle-timeout); reconnect to continue", c.s.cfg.IdleTimeout))
		return "idle timeout"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "client closed in the middle of a frame"
	}
	return "read failed: " + err.Error()
}

// errShuttingDown is the last frame of a connection closed by Shutdown.
// Every request read before it has been answered; any request without a
// reply was never executed, so clients may safely send it again.
var errShuttingDown = wire.Errorf(wire.CodeShuttingDown,
	"the server is shutting down; requests without a reply were not executed: reconnect and resend them")

// final queues a last error frame (id 0), writes everything, and lets the
// caller close.
func (c *conn) final(e *wire.Error) {
	c.out = wire.AppendError(c.out, 0, e)
	_ = c.flush()
}

func (c *conn) flush() error {
	undelivered, err := c.flushOut()
	giveBack(undelivered) // not under wmu: a give-back is a store op
	return err
}

// flushOut is flush, under wmu; it returns the give-backs of the parked
// requests' replies that were not written whole (block.go: pendingGiveBack).
func (c *conn) flushOut() (undelivered []pendingGiveBack, err error) {
	// Replies to parked requests are appended or written by other
	// goroutines (deliverAsync), under wmu: c.out is read and cut under
	// it too.
	c.shared.wmu.Lock()
	defer c.shared.wmu.Unlock()
	if len(c.out) == 0 {
		return nil, nil
	}
	if c.shared.broken.Load() {
		gbs := c.shared.giveBacks
		c.shared.giveBacks = nil
		c.out = c.out[:0]
		return gbs, errStreamBroken
	}
	shift := 0 // bytes put before the replies whose offsets giveBacks holds
	if c.pq != nil {
		// Pushes queued before these replies go out first (the push
		// writer takes them under wmu too: flushPushAsync).
		if pb := c.pq.take(nil); len(pb) > 0 {
			c.out = append(pb, c.out...)
			shift = len(pb)
		}
	}
	gbs := c.shared.giveBacks
	c.shared.giveBacks = nil
	if c.dirty && c.s.cfg.Durable != nil {
		// Group commit: one wait covers every write of this burst.
		c.dirty = false
		if err := c.s.cfg.Durable(); err != nil {
			c.out = c.out[:0] // their writes may not be durable: no reply
			c.log.Warn("closing connection: its writes could not be made durable", "err", err)
			return gbs, err
		}
	}
	c.shared.stats.pending.Store(int64(len(c.out)))
	defer c.shared.stats.pending.Store(0)
	if m := c.shared.arm; m != nil {
		// The monitor's reply goes out with this write: its pushes,
		// written under wmu too, come after it.
		c.shared.arm = nil
		defer func() {
			m.mu.Lock()
			m.armed = true
			m.mu.Unlock()
		}()
	}
	var n int
	if lim := c.s.outLimit; (lim.Soft > 0 && len(c.out) > lim.Soft) || (lim.Hard > 0 && len(c.out) > lim.Hard) {
		n, err = c.writeLimited(lim)
	} else {
		// The deadline is moved at most once a second: it is between
		// writeTimeout-1s and writeTimeout away.
		if now := time.Now(); c.writeDL.Sub(now) < writeTimeout-time.Second {
			c.writeDL = now.Add(writeTimeout)
			_ = c.nc.SetWriteDeadline(c.writeDL)
		}
		n, err = c.nc.Write(c.out)
	}
	if err != nil {
		undelivered = unwritten(gbs, n-shift)
		c.shared.broken.Store(true) // the loop ends; nobody writes after a cut frame
	}
	if cap(c.out) > 4*flushAt {
		c.out = nil // don't pin a huge reply buffer
	} else {
		c.out = c.out[:0]
	}
	return undelivered, err
}

// errStreamBroken: an earlier write to the connection failed, perhaps
// in the middle of a frame; the connection is closing.
var errStreamBroken = errors.New("an earlier write failed: the stream may be cut in the middle of a frame")

// writeBroke ends a goroutine-served connection whose write by another
// goroutine than its own (pushes, a parked request's reply, a monitor)
// failed: part of a frame may have gone out, so nothing may follow it on
// the stream, as the loop does when its own flush fails. Closing nc ends
// the connection's read, and its goroutine cleans up. Must hold wmu.
func (c *conn) writeBroke(what string, err error) {
	c.shared.broken.Store(true)
	c.log.Info("closing connection: writing "+what+" failed", "err", err)
	_ = c.nc.Close()
}

// handle executes one request frame and queues its reply.
func (c *conn) handle(body []byte) {
	// Timed (observe.go: the latency histograms, the slow log or a
	// monitor want it), a request reads the clock once; untimed, a burst
	// reads it once, for the connection's idle time.
	timed := c.s.obs.timed.Load()
	began := c.clk
	if began.IsZero() {
		began = clock.Now()
		if !timed {
			c.clk = began
			c.shared.stats.lastNano.Store(began.UnixNano())
		}
	}
	req, items, err := wire.DecodeRequestInto(body, c.items)
	c.items = items
	if err != nil {
		e := wire.AsError(err)
		if e.Code == wire.CodeUnknownOp { // an op number over 65535
			if !c.hello {
				c.replyErr(req.ID, req.Op, errHelloFirst) // the handshake is checked before the op (PROTOCOL.md)
				return
			}
			c.s.unknownOps.Add(1)
		}
		c.replyErr(req.ID, req.Op, e)
		return
	}
	if !c.hello && req.Op != wire.OpHello {
		c.replyErr(req.ID, req.Op, errHelloFirst)
		return
	}
	if c.push && req.ID == 0 {
		c.s.countOp(req.Op)
		c.replyErr(req.ID, req.Op, errPushID0)
		return
	}
	if req.Op == wire.OpCancel {
		c.s.countOp(req.Op)
		c.shared.wmu.Lock()
		c.out = c.cancelBlocked(req, c.out)
		c.shared.wmu.Unlock()
		return
	}
	out, start := wire.BeginReply(c.out, req.ID)
	if timed {
		// The clock reading that times the request (the end of the one
		// before it in the burst, or this burst's start) decides expiry
		// too: one reading for both. Untimed, a burst reads the clock
		// once, too stale for expiry: the store reads its own.
		c.opTime = began
	}
	out, err = c.exec(req, out)
	c.opTime = time.Time{}
	if timed {
		c.observe(req, began, err)
	} else {
		c.shared.stats.requests.Add(1)
	}
	if c.parkedNow {
		c.parkedNow = false
		// Without push, its reply may have been appended to c.out
		// already (deliverAsync, under wmu): then c.out is longer than
		// start and holds it. Otherwise keep out's buffer, which may
		// have grown.
		c.shared.wmu.Lock()
		if len(c.out) == start {
			c.out = out[:start]
		}
		c.shared.wmu.Unlock()
		c.dirty = c.dirty || req.Op.IsWrite()
		c.parked = !c.push
		c.s.countOp(req.Op)
		return
	}
	if c.hello {
		// Counted once the handshake let it through: a peer without the
		// password cannot move info's counts (a failed HELLO is not counted).
		c.s.countOp(req.Op)
	}
	if req.Op.IsWrite() {
		c.dirty = true
	}
	if err == nil && len(out)-start-wire.FrameHeaderSize > maxReply {
		err = wire.Errorf(wire.CodeTooLarge, "the reply would exceed 4 GiB; read the table in pages (dscan, lrange)")
	}
	if err != nil {
		c.out = wire.AppendError(out[:start], req.ID, wire.AsError(err)) // logged by observe, with its table, key and duration
		return
	}
	c.out = wire.EndFrame(out, start)
}

// errPushID0 answers a request with id 0 on a push connection, where ids
// match replies to requests and 0 is the server's.
var errPushID0 = wire.Errorf(wire.CodeBadRequest,
	"request id 0 on a push connection: id 0 is the server's; use ids from 1, unique among the requests in flight")

// errHelloFirst answers any request but HELLO before the handshake.
var errHelloFirst = wire.Errorf(wire.CodeHandshake,
	"send HELLO first: [id, %d, %d, {}] (see PROTOCOL.md, \"Handshake\")", wire.OpHello, wire.ProtocolVersion)

func (c *conn) replyErr(id uint64, op wire.Op, e *wire.Error) {
	c.out = wire.AppendError(c.out, id, e)
	c.log.Debug("request failed", "id", id, "op", op.String(), "code", e.Code.String(), "msg", e.Message)
}

// exec runs one request, appending its result to out. A panic in an
// operation is a bug: it is logged and answered with CodeInternal, and the
// daemon and the connection carry on.
func (c *conn) exec(req wire.Request, out []byte) (res []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("panic while executing request; please report this bug", "op", req.Op.String(), "panic", p, "stack", string(debug.Stack()))
			res, err = out, wire.Errorf(wire.CodeInternal, "internal error executing %s (logged by the server)", req.Op)
		}
	}()
	switch req.Op {
	case wire.OpHello:
		return c.doHello(req.Args, out)
	case wire.OpPing:
		if err := req.Args.Want(0, 1); err != nil {
			return out, err
		}
		if req.Args.Len() == 1 {
			v, err := req.Args.Value(0) // validated and canonical, like any value
			if err != nil {
				return out, err
			}
			return append(out, v...), nil
		}
		return wire.AppendText(out, "PONG"), nil
	case wire.OpInfo:
		if err := req.Args.Want(0, 0); err != nil {
			return out, err
		}
		return wire.AppendMarshal(out, c.s.info())
	case wire.OpSave:
		if c.s.cfg.Save != nil {
			if err := req.Args.Want(0, 0); err != nil {
				return out, err
			}
			if err := c.s.cfg.Save(); err != nil {
				return out, err
			}
			return wire.AppendNull(out), nil
		}
		return out, wire.Errorf(wire.CodeBadRequest, "save: this server has no data directory configured")
	}
	if res, err, ok := c.execAdmin(req, out); ok {
		return res, err
	}
	if req.Op.IsBlocking() {
		c.shared.wmu.Lock()
		defer c.shared.wmu.Unlock()
		return c.block(req, out)
	}
	if req.Op >= wire.OpPublish && req.Op <= wire.OpTracking {
		return c.execPush(req, out)
	}
	if c.tracker != nil && req.Op == wire.OpDGet {
		return c.s.store.ExecTrackedAt(req.Op, req.Args, out, c.tracker, c.opTime)
	}
	return c.s.store.ExecAt(req.Op, req.Args, out, c.opTime)
}

// Features are announced in the HELLO reply.
var Features = []string{"batch", "scan", "cas", "incr", "pipelining", "ttl", "evict", "push", "deque", "blocking", "guards", "pubsub", "watch", "tracking"}

// helloOptions reads HELLO's options: a map with text keys. A text value
// becomes a string, anything else stays a wire.Raw. Tags are opaque here
// as everywhere (PROTOCOL.md 5): a tagged map is not a map, a tagged key
// is not a text key, and a tagged password is not text.
func helloOptions(raw wire.Raw) (map[string]any, error) {
	bad := wire.Errorf(wire.CodeHandshake, "HELLO options must be a map with text keys")
	if len(raw) == 0 || raw[0]>>5 != 5 {
		return nil, bad
	}
	opts := make(map[string]any)
	err := wire.Pairs(raw, func(k, v wire.Raw) error {
		var key string
		if k[0]>>5 != 3 || wire.Unmarshal(k, &key) != nil {
			return bad
		}
		var text string
		if v[0]>>5 == 3 && wire.Unmarshal(v, &text) == nil {
			opts[key] = text
		} else {
			opts[key] = v
		}
		return nil
	})
	if err != nil {
		return nil, bad
	}
	return opts, nil
}

// doHello answers HELLO. Nothing the client sent in it is ever rendered,
// in a reply or in the log at any level: a client that puts its password
// in the wrong slot must not find it echoed back, nor in the journal. The
// messages say what is wrong by position and kind only. The client name
// is logged only once HELLO has succeeded (on TCP: with the password).
func (c *conn) doHello(args wire.Args, out []byte) ([]byte, error) {
	if c.hello {
		return out, wire.Errorf(wire.CodeHandshake, "HELLO was already sent on this connection")
	}
	if n := args.Len(); n < 1 || n > 2 {
		return out, wire.Errorf(wire.CodeHandshake, "HELLO takes [proto, {options}]: 1 to 2 arguments, got %d", n)
	}
	if v, err := args.Uint(0); err != nil || v != wire.ProtocolVersion {
		what := "an unsupported protocol version"
		if err != nil {
			what = "not a protocol version (an unsigned integer)"
		}
		return out, wire.Errorf(wire.CodeHandshake, "HELLO's first argument is %s; this server speaks version %d: [id, %d, %d, {options}]",
			what, wire.ProtocolVersion, wire.OpHello, wire.ProtocolVersion)
	}
	var opts map[string]any
	if args.Has(1) {
		var err error
		if opts, err = helloOptions(args.Items[1]); err != nil {
			return out, err
		}
	}
	if err := c.authenticate(opts); err != nil { // TCP listeners: the password
		return out, err
	}
	c.hello = true
	if name, ok := opts["client"].(string); ok {
		c.log = c.log.With("client", name)
		c.shared.stats.name.Store(&name)
	}
	if p, ok := opts["push"].(wire.Raw); ok && len(p) == 1 && p[0] == 0xf5 {
		c.push = true // PROTOCOL.md 3.1
		c.shared.stats.push.Store(true)
	}
	res := map[string]any{
		"proto":     wire.ProtocolVersion,
		"server":    "cyberdbd",
		"version":   c.s.cfg.Version,
		"features":  Features,
		"max_frame": c.s.cfg.MaxFrame,
		"conn_id":   c.id,
	}
	if c.push {
		res["push"] = true
	}
	return wire.AppendMarshal(out, res)
}

// readFrame reads the next request frame within the limits (limits.go):
// its first byte is awaited under the idle deadline, the rest of it under
// the partial time-out; before HELLO it may be MaxHelloFrame bytes long; a
// body bigger than a read is charged to the partial budget before any of
// it is held, and its buffer grows with the bytes that arrive, never to
// the announced size at once. frameDone ends it.
func (c *conn) readFrame() ([]byte, error) {
	if _, err := c.r.Peek(1); err != nil {
		return nil, err // io.EOF between frames: the client closed
	}
	if !c.frameBuffered() && !c.startPartial() {
		return nil, os.ErrDeadlineExceeded // shutting down
	}
	hdr, err := c.r.Peek(wire.FrameHeaderSize)
	if err != nil {
		return nil, unexpectedEOF(err)
	}
	size, err := wire.FrameHeader(hdr, c.frameLimit())
	switch {
	case err == wire.ErrEmptyFrame:
		_, _ = c.r.Discard(wire.FrameHeaderSize)
		c.partialBy = time.Time{}
		return nil, err
	case err != nil: // too large
		return nil, err
	}
	_, _ = c.r.Discard(wire.FrameHeaderSize)
	return c.readBody(size)
}

// frameBuffered says whether the next frame is whole in c.r's buffer.
func (c *conn) frameBuffered() bool {
	n := c.r.Buffered()
	if n < wire.FrameHeaderSize {
		return false
	}
	hdr, _ := c.r.Peek(wire.FrameHeaderSize)
	size, _ := wire.FrameHeader(hdr, -1)
	return n-wire.FrameHeaderSize >= size
}

// startPartial starts the partial time-out of a frame that has begun to
// arrive. The deadline is moved only when it is more than a second off, so
// that a stream of frames split across reads does not move it on each. It
// returns false when the server is shutting down.
func (c *conn) startPartial() bool {
	c.endIdleWait() // from now on, the partial time-out's deadline
	c.partialBy = time.Now().Add(c.s.cfg.PartialTimeout)
	dl := c.readDeadline(c.partialBy) // TCP before HELLO: the handshake's, if earlier
	if c.readDL.IsZero() || c.readDL.After(dl) || c.readDL.Before(dl.Add(-time.Second)) {
		c.readDL = dl
		_ = c.nc.SetReadDeadline(dl)
		// Checked after setting the deadline, which may have replaced
		// Shutdown's interrupt: see loop.
		return !c.s.closing.Load()
	}
	return true
}

// readBody reads a body of size bytes (see readFrame).
func (c *conn) readBody(size int) ([]byte, error) {
	if size <= cap(c.rbuf) {
		buf := c.rbuf[:size]
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, unexpectedEOF(err)
		}
		return buf, nil
	}
	if size > readBufSize {
		// Charged whole before any of it is held: connections that hold
		// parts of big requests never wait for each other's budget.
		by := c.partialBy
		if by.IsZero() {
			by = time.Now().Add(c.s.cfg.PartialTimeout)
		}
		if !c.s.partial.wait(int64(size), by, &c.s.closing) {
			return nil, os.ErrDeadlineExceeded // shutting down, or the partial time-out
		}
		c.charged = int64(size)
	}
	buf := c.rbuf[:0]
	for len(buf) < size {
		step := min(size-len(buf), max(readBufSize, len(buf)))
		start := len(buf)
		buf = append(buf, make([]byte, step)...)
		if _, err := io.ReadFull(c.r, buf[start:]); err != nil {
			return nil, unexpectedEOF(err)
		}
	}
	return buf, nil
}

// maxKeptItems bounds the argument slots a connection keeps between
// requests: a request of a million items must not leave a 24 MB slice.
const maxKeptItems = 1024

// frameDone ends the frame readFrame returned, once it has been handled
// (body nil: none was read): its budget is given back, and its buffer is
// kept for the next frame only when small, so that an idle connection
// never holds a big one.
func (c *conn) frameDone(body []byte) {
	c.partialBy = time.Time{}
	if c.charged > 0 {
		c.s.partial.give(c.charged)
		c.charged = 0
	}
	if cap(body) > readBufSize {
		c.rbuf = nil
		clear(c.items[:cap(c.items)]) // they point into body
	} else if body != nil {
		c.rbuf = body[:0]
	}
	if cap(c.items) > maxKeptItems {
		c.items = nil
	}
}

// hardWait is how long serve's write of replies over OutputLimit.Hard may
// wait for the client to take them; an event loop tries once, without
// waiting.
const hardWait = 50 * time.Millisecond

// writeLimited writes c.out when it is over the output limit's soft or
// hard size: whatever is over Hard must be taken within hardWait, over Soft
// within SoftFor (at once while the unsent replies of all connections are
// over Config.MaxOutputMemory), or the connection is closed.
func (c *conn) writeLimited(lim OutputLimit) (int, error) {
	counted := int64(len(c.out))
	c.s.outTotal.Add(counted)
	defer func() { c.s.outTotal.Add(-counted) }()
	start, sent := time.Now(), 0
	for sent < len(c.out) {
		unsent := len(c.out) - sent
		end, dl, rule := len(c.out), time.Now().Add(writeTimeout), ""
		switch {
		case lim.Hard > 0 && unsent > lim.Hard:
			end, dl, rule = sent+unsent-lim.Hard, start.Add(hardWait), "hard"
		case lim.Soft > 0 && unsent > lim.Soft:
			end, dl, rule = sent+unsent-lim.Soft, start.Add(lim.SoftFor), "soft"
			if m := c.s.cfg.MaxOutputMemory; m > 0 && c.s.outTotal.Load() > m {
				dl, rule = start.Add(hardWait), "total"
			}
		}
		c.writeDL = dl
		_ = c.nc.SetWriteDeadline(dl)
		n, err := c.nc.Write(c.out[sent:end])
		sent += n
		c.s.outTotal.Add(-int64(n))
		counted -= int64(n)
		if err != nil {
			if rule != "" && errors.Is(err, os.ErrDeadlineExceeded) {
				return sent, c.s.outputLimitHit(c.log, rule, len(c.out)-sent)
			}
			return sent, err
		}
	}
	return sent, nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
