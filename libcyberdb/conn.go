package libcyberdb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// conn is one connection to the daemon, shared by any number of calls.
//
// Callers enqueue calls; the writer goroutine takes the whole queue,
// encodes it into one buffer and writes it with one system call, so that
// concurrent calls are pipelined by themselves (the queue fills while the
// previous batch is being written). A caller alone on an idle connection
// writes its call itself. Whoever holds the read side (readside.go: the
// reader goroutine, or a caller alone reading its own reply) matches
// replies to the calls in flight, which the daemon answers in order.
//
// The push extension (PROTOCOL.md 3.1), negotiated in HELLO, lets the
// daemon answer a blocking call (lbpop, lbmove) after the calls sent
// after it. Ordinary calls keep their order: they wait in fifo and the
// reader matches the oldest first, exactly as without push, so their path
// costs nothing more. A blocking call, once written, waits in parked,
// by id; the reader looks there only when a reply does not answer the
// oldest ordinary call. Ids are never reused on a connection (nextID only
// grows, from 2: HELLO is 1), so they are unique and non-zero, as a push
// connection requires, and a cancelled call's id cannot be confused with
// a later one's. Frames [0, 0, {"push": KIND, ...}] go to the push hooks
// (push.go).
//
// Lock order: pool.mu before conn.mu.
type conn struct {
	p        *pool
	nc       net.Conn   // the dialed connection, or on Linux its sockConn once started (sockconn_linux.go)
	serverID uint64     // conn_id from HELLO, for messages
	maxFrame int        // the daemon's max_frame
	push     bool       // the daemon agreed to the push extension in HELLO
	hooks    *pushHooks // a dedicated push connection's hooks (set before start), or nil: the pool's
	created  time.Time
	lastUsed atomic.Int64 // p.now() in Unix nanoseconds, after each write
	load     atomic.Int32 // ordinary calls queued or awaiting a reply
	blocked  atomic.Int32 // blocking calls queued or parked: not in load, as they do not make the connection busy
	unusable atomic.Bool  // dead or retired: takes no new calls
	retired  atomic.Bool  // close once load and blocked drop to 0
	stale    atomic.Bool  // idle for WithHealthCheck's period: check before use (connect.go)

	// Guarded by pool.mu: the request counter (nextID) as the cleaner
	// last saw it, and when (markIdleLocked).
	seenID uint64
	seenAt time.Time

	mu       sync.Mutex
	queue    []*call          // waiting for the writer
	fifo     []*call          // ordinary calls written, awaiting replies in this order
	head     int              // fifo[head:] are awaiting replies
	parked   map[uint64]*call // blocking calls written, awaiting replies in any order, by id
	nextID   uint64
	dead     bool   // the reader is finishing: no new calls
	writing  bool   // a write is in progress (by the writer, or a caller inline)
	closeErr error  // set when we close the connection on purpose
	inline   []byte // the inline writer's buffer; owned by whoever set writing
	// inlines counts inline writes under way (Add under mu while not
	// dead): finish waits for them before deciding fates, as an inline
	// write that fails with nothing written (cl.unsent) makes its call
	// fateNotSent.
	inlines sync.WaitGroup

	// The read side (readside.go), guarded by mu: whether a goroutine
	// holds it; the caller holding it (nil: the reader goroutine) and the
	// count of callers that took it; whether interrupt cut that caller's
	// read with a deadline. ended: finish ran.
	reading bool
	rdCall  *call
	rdSeq   uint64
	rdIntr  bool
	ended   bool
	unix    bool                                      // a plain Unix socket: callers may read their own replies (selfRead)
	spoke   bool                                      // alive found the daemon's end or a frame on a quiet connection: read it
	rc      syscall.RawConn                           // the dialed Unix socket's (start hands it to newSockConn)
	ctl     interface{ Control(func(uintptr)) error } // runs alive's peek on the socket: rc, or the sockConn
	peekFn  func(fd uintptr)                          // alive's probe, made once: Control would allocate a closure per call
	peekN   int
	peekErr error
	rd      *frameReader // owned by whoever holds the read side

	br    *bufio.Reader // the handshake's reader, until start
	flush FlushFunc     // the Flush hooks around writes; nil: none (hooks.go)

	kick       chan struct{} // capacity 1: the queue is not empty
	rdWake     chan struct{} // capacity 1: the reader goroutine should see whether to read
	quit       chan struct{} // closed when the reader ends
	writerDone chan struct{}
}

// retryableDial reports errors of a daemon that is not there yet: the
// socket file is missing (not started, or restarting), nobody listens on
// it, or its backlog is full.
func retryableDial(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EAGAIN)
}

// retryableRefusal reports a daemon's refusal of a connection that waiting
// can cure: it is stopping (shutting_down), or at one of its connection
// limits (too_many_connections, as when a burst of clients starts at once).
// Either comes before anything was executed.
func retryableRefusal(err error) bool {
	return errors.Is(err, ErrShuttingDown) || errors.Is(err, ErrTooManyConns)
}

// dial opens a connection and completes the handshake. While the daemon is
// (re)starting (no socket, connection refused, shutting_down frame) or at
// its connection limits (too_many_connections) it retries with backoff
// until ctx or the dial time-out ends. h, when not nil, makes it a
// dedicated push connection (pushConn): set before anything starts the
// connection (WithOnConnect's call does), since how it reads depends on it.
func (p *pool) dial(ctx context.Context, h *pushHooks) (*conn, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, p.cfg.dialTimeout)
	defer cancel()
	backoff := 5 * time.Millisecond
	var last error
	for {
		p.stats.dialAttempts.Add(1)
		cn, hello, ioErr, err := p.dialOnce(ctx) // connect and HELLO, through the Dial hooks if any (hooks.go)
		if err == nil {
			cn.hooks = h
			return p.connected(ctx, cn) // WithOnConnect (connect.go)
		}
		if hello {
			// A daemon that dies or stops as we connect resets the
			// connection or answers shutting_down; one at its limits
			// answers too_many_connections: try again.
			if !ioErr && !retryableRefusal(err) || ctx.Err() != nil {
				p.stats.dialErrors.Add(1)
				return nil, err
			}
		} else if errors.Is(err, ErrUntrustedServer) {
			p.stats.dialErrors.Add(1)
			return nil, err // not the daemon: trying again cannot help
		} else if !retryableDial(err) && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			// (A dial that the time-out cut short says only "i/o
			// timeout": the error before it, below, says more.)
			p.stats.dialErrors.Add(1)
			return nil, fmt.Errorf("%w: cannot connect to %s: %w%s", ErrUnavailable, p.dialer.display, err, permissionHint(p.dialer, err))
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		// Half the backoff plus a random part of the other half, so that
		// clients refused together do not all come back together.
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			p.stats.dialErrors.Add(1)
			if parent.Err() != nil {
				return nil, fmt.Errorf("%w: cannot connect to %s: %w; last error: %w",
					ErrUnavailable, p.dialer.display, parent.Err(), last)
			}
			hint := " (is cyberdbd running?)"
			if retryableRefusal(last) {
				hint = "" // it is, and said why it refused
			}
			return nil, fmt.Errorf("%w: cannot connect to %s within %s%s: %w",
				ErrUnavailable, p.dialer.display, p.cfg.dialTimeout, hint, last)
		case <-t.C:
		}
		backoff = min(2*backoff, 250*time.Millisecond)
	}
}

// handshake sends HELLO and waits for its reply, so that a connection
// enters the pool known to work and with the daemon's max_frame known.
// ioErr reports a failure to exchange the frames (as opposed to a refusal).
func (p *pool) handshake(ctx context.Context, nc net.Conn) (cn *conn, ioErr bool, err error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	opts := map[string]any{"client": p.cfg.clientName}
	if !p.rawFrames {
		opts["push"] = true // PROTOCOL.md 3.1: blocking calls must not hold up the others
	}
	pw, err := p.dialer.password() // tcp:// only
	if err != nil {
		return nil, false, err
	}
	if pw != "" {
		opts["password"] = pw
	}
	hello, err := wire.AppendRequest(nil, 1, wire.OpHello, wire.ProtocolVersion, opts)
	if err != nil {
		return nil, false, err
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	if _, err := nc.Write(hello); err != nil {
		if refusal := readRefusal(nc, br); refusal != nil {
			return nil, false, fmt.Errorf("cyberdb: %s refused the connection: %w", p.dialer.display, refusal)
		}
		return nil, true, p.handshakeErr(ctx, err)
	}
	body, err := wire.ReadFrame(br, nil, -1)
	if err != nil {
		// A TLS alert here (mutual TLS without a client certificate) is
		// final; other errors are a daemon coming or going.
		return nil, !tlsRefused(err), p.handshakeErr(ctx, err)
	}
	r, err := wire.DecodeReply(body)
	if err != nil {
		return nil, false, &ProtocolError{Msg: "malformed HELLO reply " + wire.Diagnose(body)}
	}
	if r.Err != nil {
		return nil, false, fmt.Errorf("cyberdb: %s refused the connection: %w", p.dialer.display, r.Err)
	}
	var info struct {
		MaxFrame int    `cbor:"max_frame"`
		ConnID   uint64 `cbor:"conn_id"`
		Push     bool   `cbor:"push"`
	}
	if err := wire.Unmarshal(r.Result, &info); err != nil {
		return nil, false, &ProtocolError{Msg: "malformed HELLO result " + wire.Diagnose(r.Result)}
	}
	if info.MaxFrame <= 0 {
		info.MaxFrame = wire.DefaultMaxFrame
	}
	if !stop() {
		return nil, true, p.handshakeErr(ctx, ctx.Err())
	}
	_ = nc.SetDeadline(time.Time{})
	now := p.cfg.now()
	cn = &conn{
		p:          p,
		nc:         nc,
		serverID:   info.ConnID,
		maxFrame:   info.MaxFrame,
		push:       info.Push,
		created:    now,
		nextID:     1,
		kick:       make(chan struct{}, 1),
		rdWake:     make(chan struct{}, 1),
		quit:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	cn.lastUsed.Store(now.UnixNano())
	cn.br = br
	if uc, ok := nc.(*net.UnixConn); ok && canPeek {
		if rc, err := uc.SyscallConn(); err == nil {
			cn.unix, cn.rc, cn.ctl = true, rc, rc
			cn.peekFn = cn.peek
		}
	}
	return cn, false, nil
}

// readRefusal returns the error frame of a daemon that refused the
// connection (at its limits, stopping): it writes why and closes, maybe
// before the HELLO arrives, whose write then fails. The frame, if it was
// sent, is already here: the read waits a moment at most.
func readRefusal(nc net.Conn, br *bufio.Reader) *wire.Error {
	_ = nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	body, err := wire.ReadFrame(br, nil, 64<<10)
	if err != nil {
		return nil
	}
	if r, err := wire.DecodeReply(body); err == nil && r.ID == 0 && r.Err != nil {
		return r.Err
	}
	return nil
}

func (p *pool) handshakeErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: HELLO to %s: %w", ErrUnavailable, p.dialer.display, ctx.Err())
	}
	return fmt.Errorf("%w: HELLO to %s: %w", ErrUnavailable, p.dialer.display, err)
}

// start runs the connection's goroutines; called with p.mu held and the
// pool open, so that Close's wg.Wait sees them.
func (c *conn) start() {
	if c.br == nil {
		return // already started (WithOnConnect: connected)
	}
	if c.unix && c.hooks == nil {
		// On Linux, the socket leaves Go's poller (sockconn_linux.go).
		// Not a dedicated push connection's: it sends little, so the
		// daemon's reads wake it for nothing seldom, and its pushes need
		// no extra hop through an epoll instance.
		if sc, err := newSockConn(c.nc, c.rc); err == nil {
			c.nc, c.ctl = sc, sc
		}
	}
	c.flush = c.flushChain()
	buffered, _ := c.br.Peek(c.br.Buffered()) // what came after HELLO's reply
	c.rd = newFrameReader(c.nc, buffered)
	c.p.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
	c.br = nil
}

// inlineMax is the largest request a caller writes itself (enqueue): a
// quarter of a Unix socket's default buffer, so that it finds room.
const inlineMax = 48 << 10

// enqueue hands cl to the writer. It returns fateNone on success,
// fateNotSent if the connection takes no new calls, or fateFailed with an
// error for a request too large for the daemon (or a blocking one on a
// connection without push). A cancel (urgent) is taken by a retired
// connection too, as long as it is alive: its target is still parked.
func (c *conn) enqueue(cl *call, urgent bool) (fate, error) {
	c.mu.Lock()
	if c.dead || c.unusable.Load() && !urgent {
		c.mu.Unlock()
		return fateNotSent, nil
	}
	id := c.nextID + 1
	size := cl.bodySize(id)
	if size > c.maxFrame {
		c.mu.Unlock()
		return fateFailed, wire.Errorf(wire.CodeTooLarge,
			"%s request of %d bytes exceeds the daemon's maximum frame size of %d bytes (--max-frame); nothing was sent", cl.op, size, c.maxFrame)
	}
	var idle bool
	if cl.blocking {
		if !c.push {
			c.mu.Unlock()
			return fateFailed, fmt.Errorf("cyberdb: %s: %w: the daemon at %s does not speak the push extension (PROTOCOL.md 3.1), without which a blocking call would hold up every call sharing its connection; upgrade cyberdbd",
				cl.op, errors.ErrUnsupported, c.p.dialer.display)
		}
		c.blocked.Add(1)
		idle = c.load.Load() == 0
	} else {
		idle = c.load.Add(1) == 1
	}
	c.nextID = id
	cl.id = id
	if idle && !c.writing && len(c.queue) == 0 && size <= inlineMax {
		// The connection is idle (no other call queued or awaiting a
		// reply; parked ones do not count): write it ourselves rather
		// than wake the writer, sparing a goroutine hand-off to a caller
		// that is alone. Under concurrency calls go to the writer
		// instead, which sends all that queued meanwhile with one write:
		// a caller writing inline each time would make one system call
		// per call. A big request goes to the writer too: a write can
		// wait for room in the socket (a daemon stopped or slow to
		// read), and a caller waiting on the writer leaves at its
		// deadline, where one writing could not.
		c.writing = true
		c.inlines.Add(1)
		cl.state = stateInFlight
		c.track(cl)
		buf := c.inline[:0]
		c.mu.Unlock()
		buf = cl.appendFrame(buf)
		err := c.write(buf, 1)
		if cap(buf) > 64<<10 {
			buf = nil
		}
		c.mu.Lock()
		c.inline = buf
		c.writing = false
		more := len(c.queue) > 0
		if err != nil && errors.Is(err, errNothingWritten) {
			cl.unsent = true
		}
		c.mu.Unlock()
		c.inlines.Done()
		if err != nil {
			c.writeFailed()
		} else if c.p.cfg.idleTimeout > 0 {
			c.lastUsed.Store(c.p.cfg.now().UnixNano())
		}
		if more {
			c.kickWriter()
		}
		return fateNone, nil
	}
	cl.state = stateQueued
	c.queue = append(c.queue, cl)
	c.mu.Unlock()
	c.kickWriter()
	return fateNone, nil
}

// track records a call being written as awaiting its reply: in fifo, or
// parked by id for a blocking one. Called with mu held.
func (c *conn) track(cl *call) {
	if !cl.blocking {
		c.fifo = append(c.fifo, cl)
		return
	}
	if c.parked == nil {
		c.parked = make(map[uint64]*call)
	}
	c.parked[cl.id] = cl
}

func (c *conn) kickWriter() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// roundTrip sends cl and waits for its fate, or for ctx to end.
func (c *conn) roundTrip(ctx context.Context, cl *call) {
	if f, err := c.enqueue(cl, false); f != fateNone {
		cl.fate, cl.err = f, err
		return
	}
	tick := c.p.ticks.channel(cl) // nil unless WithTimeout bounds cl (connect.go)
	if c.selfRead() {
		c.readOwn(ctx, cl) // readside.go: alone, it reads its own reply
	}
	for {
		select {
		case <-cl.done:
			return
		case <-ctx.Done():
		case <-tick:
			if tick = c.p.ticks.next(cl); tick != nil {
				continue // not expired yet
			}
		}
		break
	}
	c.mu.Lock()
	if cl.state == stateQueued || cl.state == stateInFlight && !cl.blocking {
		// Give up the slot: the writer skips a queued call, and the reader
		// drops the reply of one in flight.
		cl.state = stateAbandoned
		c.mu.Unlock()
		c.unload(cl)
		c.afterDone()
		cl.fate, cl.err = fateCanceled, cl.canceled(ctx)
		return
	}
	if cl.state == stateInFlight { // a blocking call the daemon has or will have parked
		c.mu.Unlock()
		c.cancel(ctx, cl)
		return
	}
	c.mu.Unlock()
	<-cl.done // already being completed
}

// cancel ends the wait of a parked blocking call whose caller gave up: it
// sends cancel (op 67) for its id and waits for its reply, which the
// daemon sends at once: null when the call was still waiting (nothing
// was taken), or the value taken for it just before the cancel arrived.
// That value was removed from its list for this caller, so it is not
// dropped: the caller gets it (List.PopWait returns it with a nil error).
// The wait is as short as any call's on the connection; it ends too when
// the connection is lost (with the usual fates). The call's id is not
// reused meanwhile, nor ever (nextID only grows).
//
// A daemon that does not answer within the dial time-out (stopped,
// hung) would hold the caller past its deadline without bound: the
// connection is then dropped as lost, and the call ends with its context's
// error. The daemon, once it reads the end, forgets the call, or gives
// back to its list a value it took for it and could not send.
func (c *conn) cancel(ctx context.Context, cl *call) {
	cc := newCall(wire.OpCancel).uint(cl.id)
	f, _ := c.enqueue(cc, true)
	c.wantReader()
	t := time.NewTimer(c.p.cfg.dialTimeout)
	select {
	case <-cl.done:
		t.Stop()
	case <-t.C:
		c.unusable.Store(true)
		_ = c.nc.Close() // lost: the others' calls get the fates of a lost connection
		c.kickReader()
		<-cl.done
		if cl.fate != fateReply {
			cl.fate, cl.err = fateCanceled, fmt.Errorf("%w; the daemon did not confirm the cancel within %s (WithDialTimeout), so the connection was dropped",
				cl.canceled(ctx), c.p.cfg.dialTimeout)
		}
	}
	if f == fateNone {
		<-cc.done
	}
	cc.release()
}

// unload uncounts a call that leaves the connection.
func (c *conn) unload(cl *call) {
	if cl.blocking {
		c.blocked.Add(-1)
	} else {
		c.load.Add(-1)
	}
}

// idle reports that no call is queued, in flight or parked.
func (c *conn) idle() bool { return c.load.Load() == 0 && c.blocked.Load() == 0 }

// afterDone closes a retired connection once its last call is answered.
func (c *conn) afterDone() {
	if c.retired.Load() && c.idle() {
		c.shutdown(errRetired)
	}
}

var errRetired = errors.New("connection retired")

// retire takes c out of service: no new calls, closed once drained.
func (c *conn) retire() {
	c.mu.Lock()
	c.unusable.Store(true)
	c.retired.Store(true)
	c.mu.Unlock()
	c.afterDone()
}

// shutdown closes the connection on purpose; reason is what calls still
// in flight are told (ErrClosed when the client closes).
func (c *conn) shutdown(reason error) {
	c.mu.Lock()
	if c.closeErr == nil {
		c.closeErr = reason
	}
	c.unusable.Store(true)
	c.mu.Unlock()
	_ = c.nc.Close()
	c.kickReader() // an idle connection may have nobody reading: the reader reads the end
}

func (c *conn) writeLoop() {
	defer c.p.wg.Done()
	defer close(c.writerDone)
	var (
		wbuf  []byte
		spare []*call
	)
	trackIdle := c.p.cfg.idleTimeout > 0
	for {
		select {
		case <-c.kick:
		case <-c.quit:
			return
		}
		// Let the goroutines that are ready to run (typically callers the
		// reader just answered, about to send their next call) queue up
		// first, so that one write carries them all: the kick readied us
		// ahead of them.
		runtime.Gosched()
		for {
			c.mu.Lock()
			if c.dead {
				c.mu.Unlock()
				return
			}
			batch := c.queue
			if len(batch) == 0 || c.writing {
				// Empty, or a caller is writing inline: it kicks us
				// when it is done if the queue has filled meanwhile.
				c.mu.Unlock()
				break
			}
			c.writing = true
			c.queue = spare[:0]
			if c.head > 1024 && c.head*2 > len(c.fifo) {
				n := copy(c.fifo, c.fifo[c.head:])
				clear(c.fifo[n:])
				c.fifo, c.head = c.fifo[:n], 0
			}
			n := 0
			for _, cl := range batch {
				if cl.state == stateAbandoned {
					continue
				}
				cl.state = stateInFlight
				c.track(cl)
				batch[n] = cl
				n++
			}
			kick := n > 0 && !c.reading
			c.mu.Unlock()
			if kick {
				c.kickReader() // the callers wait for replies that nobody reads yet
			}

			wbuf = wbuf[:0]
			for _, cl := range batch[:n] {
				wbuf = cl.appendFrame(wbuf)
			}
			var err error
			if len(wbuf) > 0 {
				err = c.write(wbuf, n)
			}
			c.mu.Lock()
			c.writing = false
			if err != nil && errors.Is(err, errNothingWritten) {
				for _, cl := range batch[:n] {
					cl.unsent = true
				}
			}
			c.mu.Unlock()
			clear(batch)
			spare = batch[:0]
			if err != nil {
				c.writeFailed()
				return
			}
			if cap(wbuf) > 1<<20 {
				wbuf = nil
			}
			if trackIdle {
				c.lastUsed.Store(c.p.cfg.now().UnixNano())
			}
		}
	}
}

// writeFailed stops new calls and lets the reader collect the replies the
// daemon still sends (and its shutting_down frame, if that is why), then
// end the connection.
func (c *conn) writeFailed() {
	c.mu.Lock()
	c.dead = true
	c.unusable.Store(true)
	c.mu.Unlock()
	if uc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = uc.CloseWrite()
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(drainTimeout))
	c.kickReader()
}

// finish ends the connection after the reader stopped, and decides the
// fate of every call it still holds (PROTOCOL.md, "Shutdown and safe
// retries"):
//   - calls never written can always be resent;
//   - after a shutting_down or idle_timeout frame, or an auth_failed one
//     (the daemon's password changed), calls without a reply were not
//     executed and can be resent, whatever the operation;
//   - after a too_large frame, the oldest call is the culprit and the
//     later ones were not executed;
//   - when the connection is lost without such a frame, calls without a
//     reply may or may not have been applied.
//
// Parked blocking calls are in flight like the others, and neither the
// oldest one nor the culprit of a too_large frame (the daemon had read
// them whole). On shutdown the daemon cancels them without a reply: not
// executed. Lost without a frame, one may have taken a value whose reply
// never arrived (fateMaybe): it is a write, so run does not resend it.
func (c *conn) finish(readErr error, frame *wire.Error) {
	c.mu.Lock()
	c.dead = true
	c.ended = true
	c.unusable.Store(true)
	queued := c.queue
	inflight := c.fifo[c.head:]
	var parked []*call
	for _, cl := range c.parked {
		parked = append(parked, cl)
	}
	c.queue, c.fifo, c.head, c.parked = nil, nil, 0, nil
	closeErr := c.closeErr
	take := func(cls []*call) []*call {
		n := 0
		for _, cl := range cls {
			if cl.state != stateAbandoned {
				cl.state = stateDone
				cls[n] = cl
				n++
			}
		}
		return cls[:n]
	}
	queued, inflight, parked = take(queued), take(inflight), take(parked)
	c.mu.Unlock()

	_ = c.nc.Close()
	close(c.quit)
	<-c.writerDone // the writer reads calls' arguments: wait before handing them back
	// An inline write under way (the close above ends it) may yet find
	// that nothing was written (cl.unsent): wait for its verdict.
	c.inlines.Wait()
	c.p.connGone(c, closeErr == nil)
	if closeErr != nil {
		c.lost(closeErr) // push.go
	} else {
		c.lost(readErr)
	}

	complete := func(cl *call, f fate, err error) {
		cl.fate, cl.err = f, err
		c.unload(cl)
		cl.done <- struct{}{}
	}
	for _, cl := range queued {
		complete(cl, fateNotSent, nil)
	}
	// The parked calls go first among those in flight: none of them is
	// "the oldest" of a too_large frame (i > 0 below).
	inflight = append(parked, inflight...)
	first := len(parked)
	for i, cl := range inflight {
		i -= first
		switch {
		case cl.unsent:
			// Its write failed before any byte left: the daemon was gone.
			complete(cl, fateNotSent, nil)
		case closeErr != nil:
			complete(cl, fateFailed, closeErr)
		case frame == nil:
			complete(cl, fateMaybe, readErr)
		case frame.Code == wire.CodeShuttingDown || frame.Code == wire.CodeIdleTimeout || frame.Code == wire.CodeAuthFailed:
			complete(cl, fateNotExecuted, readErr)
		case frame.Code == wire.CodeTooLarge && i != 0:
			complete(cl, fateNotExecuted, readErr)
		default:
			// too_large for the oldest call; any other reason is final.
			complete(cl, fateFailed, frame)
		}
	}
}
