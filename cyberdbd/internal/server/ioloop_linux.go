//go:build linux

package server

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/health"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// An ioLoop serves Unix-socket connections from one goroutine with its
// own epoll set, the way Redis serves all of its clients (see
// Config.IOLoops). Per request it makes one read and one write system call
// at most, where a goroutine per connection makes a third (the read that
// finds the socket empty before the goroutine parks) and two goroutine
// switches; replies to every connection that had requests in one round are
// written together, after one Durable call covering all of their writes.
//
// The loop parks in Go's own poller, which watches the epoll descriptor
// like any other: no OS thread is held while the loop is idle, and timers
// (idle time-out, write time-out) are the descriptor's read deadline.
//
// Connections are level-triggered: each round reads at most once from each
// readable connection, answers the whole requests read, and writes the
// replies; a connection with bytes still unread is reported again in the
// next round, so one busy client cannot starve the others. The work done
// for one connection in a round is bounded too: a request expected to be
// slow (an op on a big table, a big request, a save: cost.go) runs on the
// server's worker pool while the loop serves the others (startOffLoop),
// and after roundWork bytes of requests the rest waits for the next round
// (l.later). A client that
// stops reading its replies is no longer read from until they drain, so
// the daemon buffers at most one round of replies for it, within
// Config.OutputLimit (limits.go).
//
// A round, in order: wait for events (wait), resolve them to connections
// (resolve), read and execute (readable), run the connections resumed
// (l.resume: replies drained, an off-loop request done, or work left from
// the last round), write the replies (flushAll), hand budget to starved
// connections (feedStarved), and at times enforce the time-outs (sweep).
type ioLoop struct {
	s    *Server
	epfd int
	evfd int      // eventfd: wakes the loop (Shutdown, a save done)
	f    *os.File // epfd, registered with Go's poller
	rc   syscall.RawConn

	// executing is set while the loop executes requests: mail posted
	// meanwhile (a value for a parked pop, a push) is taken by the
	// round's last takeMail, which follows the clearing of executing, so
	// its poster need not write the eventfd (post, postPush).
	executing atomic.Bool
	sink      uint64 // prefetch's reads, kept

	// mu guards conns, which accept's goroutine adds to (adopt) while
	// the loop's goroutine looks connections up and closes them. Every
	// other field of the loop, but those after it with locks of their
	// own, belongs to the loop's goroutine. Lock order: Server.mu, then
	// mu, then the leaves savedMu (resolve takes saves back under it) and
	// the partial budget's memBudget.mu (closeLocked gives budget back).
	// Not held while a request runs.
	mu    sync.Mutex
	conns map[int32]*loopConn // by file descriptor

	// The lists below are cleared as they are used, so that a closed
	// connection's buffers are not kept alive through them.
	events   []syscall.EpollEvent
	ready    []*loopConn // resolved from events, one round
	pending  []*loopConn // connections with replies to write this round
	resume   []*loopConn // to run this round: replies drained, off-loop request done, work left over
	later    []*loopConn // used their round's work (roundWork): resumed next round
	starved  []*loopConn // waiting for the partial budget, oldest first (feedStarved)
	npartial int         // connections holding part of a frame: the sweep enforces the partial time-out
	nkept    int         // connections keeping a buffer between requests: the sweep drops it once idle
	rbuf     []byte      // shared read buffer
	now      time.Time   // start of the current round
	dirty    bool        // a connection in pending ran a write op
	closing  bool        // the server is shutting down (read once a round)
	dl       time.Time   // read deadline last set on f
	sweepAt  time.Time   // next check of the idle and write time-outs
	yielded  time.Time   // the round that last yielded the loop's thread (run)
	nblocked int         // connections waiting for their socket to drain
	done     bool        // shut down: every connection closed

	// savedMu guards saved: the goroutine of a request run off the loop
	// (startOffLoop) adds its connection, the loop takes them back
	// (takeSaved, under mu). A leaf: nothing is locked under it.
	savedMu sync.Mutex
	saved   []*loopConn // off-loop requests done, to take back

	// wmu guards exited, and evfd against a wake after the loop ended
	// (the number may then be another file's). A leaf, taken under
	// Server.mu by Shutdown and accept, and under nothing else.
	wmu    sync.Mutex
	exited bool

	// mailMu guards mail: replies to parked requests, posted by whatever
	// goroutine served them (deliver), taken by the loop each round
	// (takeMail). A leaf. orphans are the waiters of connections closed
	// this round, cancelled by the loop outside mu (cancelOrphans).
	mailMu   sync.Mutex
	mail     []mailItem
	pushMail []*loopConn // connections whose push queue has frames (push.go)
	orphans  []*store.Waiter
	// closedPush are the push queues of connections closed this round,
	// closed (their subscriptions ended) outside mu by cancelOrphans.
	closedPush []*pushQueue
	// unsent are the give-backs of replies to parked requests that
	// connections closed this round had not written whole: run outside
	// mu by cancelOrphans (a give-back is a store op).
	unsent []pendingGiveBack

	// Group commit off the loop (Config.DurableSlow, flushAll): the
	// replies of connections in syncWait wait for the next Durable call,
	// those in syncing for the one in flight (committing), while the loop
	// serves the others. syncMu guards syncDone and syncErr, which the
	// call's goroutine posts and the loop takes (takeSynced). A leaf.
	syncWait   []*loopConn
	syncing    []*loopConn
	committing bool
	syncMu     sync.Mutex
	syncDone   bool
	syncErr    error

	probes health.Queue // the watchdog's round trips, run each round (ioloop_probe_linux.go); its lock is a leaf

	// wait's callback from Go's poller, made once: a closure made on each
	// wait would allocate. Both belong to the loop's goroutine.
	pollFn func(fd uintptr) bool
	polled int // the events pollFn found
}

// mailItem is the reply to a parked request of c.
type mailItem struct {
	c  *loopConn
	id uint64
	d  store.Delivery
}

// loopConn is a connection served by an ioLoop. It belongs to the loop's
// goroutine, except while working: then to the worker running its off-loop
// request (startOffLoop), until the loop takes it back (takeSaved).
type loopConn struct {
	conn
	fd        int
	buf       []byte // bytes read but not yet executed: buf[:n]
	n         int
	wpos      int        // out[wpos:] is still to be written
	idleSince time.Time  // waiting for the client since: data read, replies drained
	blocked   time.Time  // when a write first found the socket full; zero if not blocked
	paused    bool       // whole requests wait in buf until the replies drain
	more      bool       // whole requests wait in buf for the next round (in l.later)
	offLoop   bool       // buf starts with a request run off the loop (startOffLoop)
	working   bool       // offLoop, and a worker runs the request: the loop keeps off c
	killed    bool       // kill_client came while working: closed in takeSaved
	held      []mailItem // replies to its parked requests posted while working (takeMail)
	queued    bool       // in the loop's pending list
	pushed    bool       // pushes were taken for it this round: written first (flushAll)
	written   bool       // flushAll wrote it in its first pass
	synced    bool       // replies of writes wait for a Durable call off the loop: in l.syncWait or l.syncing
	syncNext  bool       // in l.syncWait: writes made after the call in flight began
	closeBy   string     // close once out is written; the reason logged
	eof       bool       // the client sent all it will: finish its whole requests, then close
	closed    bool
	events    uint32 // the epoll events currently asked for

	// giveBacks: the values of the parked requests whose replies are in
	// out, not yet written whole (block.go: pendingGiveBack).
	giveBacks []pendingGiveBack

	// Limits (limits.go).
	charged      int64     // bytes of the server's partial budget held for buf
	partialSince time.Time // buf has held the start of an unfinished frame since; zero if not
	starved      bool      // in l.starved: not read until the budget has room for its frame
	outCharged   int64     // unsent replies counted in the server's outTotal
	overSoft     time.Time // unsent replies over OutputLimit.Soft since; zero if not
	kept         bool      // buf is over minConnBuf and holds nothing: counted in l.nkept
}

const (
	loopReadBuf  = 64 << 10 // the shared read buffer
	loopEvents   = 256      // events taken per epoll_wait
	minConnBuf   = 4 << 10  // a connection's own buffer for a partial request, to start with
	maxSweepStep = time.Second

	// A connection that sends big requests keeps its buffer between them
	// (up to keepConnBuf, still charged to the partial budget), so that
	// each does not cost a new one; once it has been idle for keepIdle the
	// sweep drops it, and an idle connection holds minConnBuf at most.
	keepConnBuf = 1 << 20
	keepIdle    = time.Second

	// Bounds on the work of one round for one connection, so that the
	// others are served in between: decoding and running requests of tiny
	// items takes about 150 ns a byte, so a 4 MiB request would hold the
	// loop for 0.6 s. A request bigger than offLoopFrame runs on a
	// goroutine of its own (startOffLoop); after roundWork bytes of
	// requests, the rest of what was read waits for the next round. So a
	// connection holds its loop for about 10 ms at the very worst (64 KiB
	// of one-byte items). Running a request off the loop costs about 10 µs
	// more (two epoll_ctl, a goroutine, a wake-up): at 16 KiB that made
	// 24 KiB sets 50% slower (BenchmarkPipelinedSetMedium), at 64 KiB it is
	// a few percent of what such a request costs anyway. (offLoopFrame is
	// in cost.go, which every OS builds.)
	roundWork = 64 << 10

	// yieldEvery is how often a loop that never runs out of events lets
	// the goroutines its rounds woke run on its thread (run).
	yieldEvery = 50 * time.Microsecond
)

func newIOLoop(s *Server) (*ioLoop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	r1, _, e := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if e != 0 {
		syscall.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", e)
	}
	evfd := int(r1)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(evfd)}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(evfd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	// Non-blocking, so that os.NewFile hands the descriptor to Go's poller.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		syscall.Close(evfd)
		return nil, fmt.Errorf("set epoll descriptor non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(epfd), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		syscall.Close(evfd)
		return nil, fmt.Errorf("epoll descriptor: %w", err)
	}
	l := &ioLoop{
		s:      s,
		epfd:   epfd,
		evfd:   evfd,
		f:      f,
		rc:     rc,
		conns:  make(map[int32]*loopConn),
		events: make([]syscall.EpollEvent, loopEvents),
		rbuf:   make([]byte, loopReadBuf),
	}
	l.pollFn = l.poll
	return l, nil
}

// release frees a loop that was never run.
func (l *ioLoop) release() {
	l.f.Close()
	syscall.Close(l.evfd)
}

// adopt takes the connection c over from Go's poller: the loop owns a
// duplicate of its socket, and c.nc is closed. On error c is left as it
// was, for a goroutine to serve.
func (l *ioLoop) adopt(c *conn) error {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%T has no file descriptor", c.nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		// Shares the open file description, so it stays non-blocking.
		r, _, e := syscall.RawSyscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			derr = fmt.Errorf("dup socket: %w", e)
			return
		}
		fd = int(r)
	}); err != nil {
		return err
	}
	if derr != nil {
		return derr
	}
	lc := &loopConn{conn: *c, fd: fd, idleSince: time.Now(), events: syscall.EPOLLIN | syscall.EPOLLRDHUP}
	lc.deliverTo = func(id uint64, d store.Delivery) { l.post(lc, id, d) }
	lc.notifyPush = func() { l.postPush(lc) }
	ev := syscall.EpollEvent{Events: lc.events, Fd: int32(fd)}
	// Registered before the loop knows fd: an event meanwhile is ignored
	// and, level-triggered, reported again.
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		syscall.Close(fd)
		return fmt.Errorf("epoll_ctl add: %w", err)
	}
	lc.log.Debug("connection opened", "remote", "unix")
	c.nc.Close() // leaves Go's poller; the socket lives on in fd
	l.mu.Lock()
	l.conns[int32(fd)] = lc // from here on, lc belongs to the loop's goroutine
	l.mu.Unlock()
	if l.s.cfg.IdleTimeout > 0 {
		l.wake() // its idle time-out may need a nearer deadline
	}
	return nil
}

// wake makes the loop run a round now (Shutdown, a save done). Once the
// loop has ended it does nothing: its eventfd is closed, and the number
// may belong to another file by then.
func (l *ioLoop) wake() {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if !l.exited {
		one := [8]byte{1}
		_, _ = syscall.Write(l.evfd, one[:])
	}
}

// run serves the loop's connections until the server shuts down and every
// connection is closed.
func (l *ioLoop) run() {
	defer func() {
		l.f.Close()
		l.wmu.Lock()
		l.exited = true
		syscall.Close(l.evfd)
		l.wmu.Unlock()
	}()
	for !l.done {
		n := l.wait()
		l.now = time.Now()
		l.closing = l.s.closing.Load()
		l.resolve(n)
		l.cancelOrphans()
		l.takeMail()   // after resolve, which reads the eventfd: no reply is left behind
		l.takeSynced() // likewise
		l.probes.Run() // after resolve, which reads the eventfd: no wake-up is lost
		l.executing.Store(true)
		for _, c := range l.ready {
			if !c.closed {
				l.readable(c)
			}
		}
		clear(l.ready)
		l.ready = l.ready[:0]
		for len(l.resume) > 0 {
			c := l.resume[len(l.resume)-1]
			l.resume[len(l.resume)-1] = nil
			l.resume = l.resume[:len(l.resume)-1]
			if !c.closed && !c.paused && !c.offLoop && !c.parked {
				c.more = false
				l.process(c)
			}
		}
		// What this round's writes handed to connections of this loop
		// (a value for a parked pop, a push) is written in this round's
		// flush, not after one more round for the wake-up they posted:
		// a blocked consumer gets its value one round sooner. Mail posted
		// while executing was set skipped the eventfd: this takes it (a
		// poster that appends after this takeMail sees executing clear,
		// the mailbox's mutex ordering the two).
		l.executing.Store(false)
		l.takeMail()
		l.flushAll()
		l.feedStarved()
		if l.s.closing.Load() {
			l.shutdown()
		}
		l.cancelOrphans()
		if !l.now.Before(l.sweepAt) {
			l.sweep()
		}
		// Work left over runs next round, after the others have been read;
		// wait does not park while there is some.
		l.resume = append(l.resume, l.later...)
		clear(l.later)
		l.later = l.later[:0]
		// A goroutine this round woke (another loop, or a connection's
		// goroutine, that waited for a table lock this loop released)
		// was queued to run next on this loop's P, and a loop with events
		// never parks: without this it would wait for the scheduler to
		// preempt the loop, 10 ms and more (600 ms seen with two loops on
		// two cores). Not every round: a yield wakes another thread
		// (5% of the daemon's CPU on pipelined gets), and a woken
		// goroutine can wait yieldEvery.
		if l.now.Sub(l.yielded) >= yieldEvery {
			l.yielded = l.now
			runtime.Gosched()
		}
	}
}

// wait returns the number of events in l.events, parking the goroutine in
// Go's poller when there are none.
func (l *ioLoop) wait() int {
	if n := epollWait(l.epfd, l.events); n > 0 || len(l.resume) > 0 {
		return n
	}
	l.setDeadline()
	l.polled = 0
	err := l.rc.Read(l.pollFn)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		l.s.log.Error("event loop: waiting for the epoll descriptor failed", "err", err)
		time.Sleep(10 * time.Millisecond) // do not spin
	}
	return l.polled
}

// poll is wait's callback from Go's poller: false parks the loop until
// the epoll descriptor is readable.
func (l *ioLoop) poll(fd uintptr) bool {
	l.polled = epollWait(int(fd), l.events)
	return l.polled > 0
}

// setDeadline sets f's read deadline to the next sweep, when it changed.
func (l *ioLoop) setDeadline() {
	var dl time.Time
	l.mu.Lock()
	n := len(l.conns)
	l.mu.Unlock()
	if n > 0 && (l.s.cfg.IdleTimeout > 0 || l.nblocked > 0 || l.npartial > 0 || len(l.starved) > 0 || l.nkept > 0) {
		dl = l.sweepAt
	}
	if !dl.Equal(l.dl) {
		l.dl = dl
		_ = l.f.SetReadDeadline(dl)
	}
}

// epollWait polls epfd without blocking. Interrupted or failed, it reports
// no events: the caller waits in Go's poller and tries again.
func epollWait(epfd int, events []syscall.EpollEvent) int {
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0
	}
	return int(r)
}

// resolve turns the round's events into connections in l.ready (to read
// from) and l.pending (to write to). It holds l.mu throughout.
func (l *ioLoop) resolve(n int) {
	if n == 0 {
		return
	}
	l.mu.Lock()
	for _, ev := range l.events[:n] {
		if int(ev.Fd) == l.evfd {
			var b [8]byte
			_, _ = syscall.Read(l.evfd, b[:])
			l.takeSaved()
			continue
		}
		c := l.conns[ev.Fd]
		if c == nil {
			continue
		}
		if c.offLoop {
			// Its off-loop request waits for the replies before it to
			// drain (the descriptor leaves the epoll set when the
			// request starts: no event comes while a worker has c).
			// Room to write resumes them; a hang-up shows in the write.
			// Dropped, this level-triggered event spun the loop, and
			// the connection was never written nor read again.
			if c.wpos < len(c.out) && ev.Events&(syscall.EPOLLOUT|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				l.queue(c)
			}
			continue
		}
		if c.synced && ev.Events&(syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
			// Gone while its replies wait for a Durable call: they can
			// reach nobody, and the hang-up, reported until the
			// descriptor closes, would spin the loop meanwhile.
			l.closeLocked(c, "client closed")
			continue
		}
		if c.parked {
			// Waiting for its parked request (no push): asked only for
			// hang-ups. A peer gone cancels it; a half-close does not.
			if ev.Events&(syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				l.closeLocked(c, "client closed while blocked")
			} else if ev.Events&syscall.EPOLLRDHUP != 0 {
				l.want(c, 0)
			}
			if c.wpos < len(c.out) && ev.Events&syscall.EPOLLOUT != 0 {
				l.queue(c)
			}
			continue
		}
		if c.starved {
			// Not read until its budget comes (feedStarved); asked for no
			// events, it hears only of a hang-up or an error.
			if ev.Events&(syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				l.closeLocked(c, "client closed in the middle of a frame")
			}
			continue
		}
		// A connection waiting for its socket to drain asks for EPOLLOUT
		// only; a hang-up or error shows in the write.
		if c.wpos < len(c.out) && ev.Events&(syscall.EPOLLOUT|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
			l.queue(c)
		}
		if c.eof {
			// Nothing more to read. Gone altogether, with nothing left
			// to send it: close (a hang-up is reported until then).
			if ev.Events&(syscall.EPOLLHUP|syscall.EPOLLERR) != 0 && c.wpos == len(c.out) && !c.paused && !c.more {
				l.closeLocked(c, "client closed")
			}
			continue
		}
		if c.blocked.IsZero() && ev.Events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
			l.ready = append(l.ready, c)
		}
	}
	l.mu.Unlock()
}

func (l *ioLoop) queue(c *loopConn) {
	if !c.queued {
		c.queued = true
		l.pending = append(l.pending, c)
	}
}

// readable reads once from c and executes every whole request read.
func (l *ioLoop) readable(c *loopConn) {
	if c.paused || c.more || c.offLoop || c.parked || c.starved || c.eof || c.closeBy != "" || !c.blocked.IsZero() || l.closing {
		return // not reading now; shutting down, nothing more is read
	}
	var dst []byte
	if c.n == 0 {
		dst = l.rbuf // nothing left over: read into the shared buffer
		if l.s.partial.tight() {
			// The partial budget is spent: what is left of this read
			// as a partial request must be small.
			dst = l.rbuf[:minConnBuf]
		}
	} else {
		if c.wholeBuffered() {
			// Requests read earlier and held back (a request that ran
			// off the loop, replies that had to drain) are executed
			// before anything more is read: reserve sizes the buffer for
			// a partial first frame, and a full buffer holding whole
			// ones had it read into nothing (a panic).
			l.process(c)
			return
		}
		if !l.reserve(c) {
			l.starve(c)
			return
		}
		dst = c.buf[c.n:]
	}
	n, err := readFD(c.fd, dst)
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return
	case err != nil:
		l.close(c, "read failed: "+err.Error())
		return
	case n == 0:
		// The client sent all it will: its whole requests are still
		// answered, then the connection is closed.
		c.eof = true
		l.want(c, 0)
		l.process(c)
		return
	}
	c.idleSince = l.now
	if c.n == 0 {
		rest := l.execute(c, l.rbuf[:n])
		if len(rest) > 0 { // keep the partial or held-back requests
			c.buf = append(c.buf[:0], rest...)
			c.n = len(rest)
			if d := int64(cap(c.buf)) - c.charged; d > 0 {
				l.s.partial.force(d) // read already: charged whether it fits or not
				c.charged += d
			}
		}
		l.settle(c, len(rest) < n)
	} else {
		c.n += n
		l.process(c)
	}
	if c.wpos < len(c.out) {
		l.queue(c)
	}
}

// process executes the whole requests in c's own buffer.
func (l *ioLoop) process(c *loopConn) {
	before := c.n
	if rest := l.execute(c, c.buf[:c.n]); len(rest) < c.n {
		c.n = copy(c.buf, rest)
	} // else nothing ran: no copy of a big partial frame onto itself, every round
	l.settle(c, c.n < before)
	l.endIfAnswered(c)
	if c.wpos < len(c.out) {
		l.queue(c)
	}
}

// endIfAnswered closes c once its replies are written when the client
// sent all it will and every request of it was answered, its parked ones
// included (PROTOCOL.md 3.1: after a half-close, they are still answered).
func (l *ioLoop) endIfAnswered(c *loopConn) {
	if c.eof && !c.paused && !c.more && !c.offLoop && !c.parked && len(c.conn.blocked) == 0 && c.closeBy == "" {
		c.closeBy = "client closed"
		if c.n > 0 {
			c.closeBy = "client closed in the middle of a frame"
		}
		c.n = 0
		l.queue(c) // closed once its replies are written
	}
}

// wholeBuffered says whether c.buf holds a whole request not yet run.
func (c *loopConn) wholeBuffered() bool {
	if c.n < wire.FrameHeaderSize {
		return false
	}
	size, _ := wire.FrameHeader(c.buf, -1)
	return c.n >= wire.FrameHeaderSize+size
}

// reserve makes room in c.buf for more of the frame it holds the start
// of. The buffer grows with the bytes that arrive (doubling from
// minConnBuf), never to the frame's announced size at once; a frame bigger
// than a read is charged whole to the server's partial budget before the
// buffer first grows for it, so that connections that hold parts of big
// frames never wait for each other. It returns false, changing nothing,
// when the budget has no room.
func (l *ioLoop) reserve(c *loopConn) bool {
	if c.n < cap(c.buf) {
		c.buf = c.buf[:cap(c.buf)]
		return true
	}
	need := max(c.n+minConnBuf, 2*cap(c.buf))
	want := int64(need)
	if c.n >= wire.FrameHeaderSize && !c.wholeBuffered() {
		// Sized for the partial frame that starts the buffer (readable
		// executes whole ones before it reads more).
		size, _ := wire.FrameHeader(c.buf, -1)
		frame := wire.FrameHeaderSize + size
		need = min(need, frame)
		want = int64(need)
		if frame > loopReadBuf {
			want = int64(frame)
		}
	}
	if want > c.charged {
		if !l.s.partial.take(want - c.charged) {
			return false
		}
		c.charged = want
	}
	nb := make([]byte, need)
	copy(nb, c.buf[:c.n])
	c.buf = nb
	return true
}

// starve stops reading c until the partial budget has room for its frame.
func (l *ioLoop) starve(c *loopConn) {
	c.starved = true
	l.starved = append(l.starved, c)
	l.want(c, 0)
}

// feedStarved resumes reading the starved connections that the budget now
// has room for, oldest first.
func (l *ioLoop) feedStarved() {
	if len(l.starved) == 0 {
		return
	}
	i := 0
	for ; i < len(l.starved); i++ {
		c := l.starved[i]
		if c.closed || !c.starved {
			continue
		}
		if !l.reserve(c) {
			break
		}
		c.starved = false
		l.want(c, syscall.EPOLLIN|syscall.EPOLLRDHUP)
	}
	n := copy(l.starved, l.starved[i:])
	clear(l.starved[n:])
	l.starved = l.starved[:n]
}

// dropBuf lets c's buffer go, when it holds nothing: an idle connection
// keeps a small one at most.
func (l *ioLoop) dropBuf(c *loopConn) {
	if cap(c.buf) > minConnBuf {
		c.buf = nil
		clear(c.items[:cap(c.items)]) // they point into the old buffer
	}
	l.s.partial.give(c.charged)
	c.charged = 0
	if c.kept {
		c.kept = false
		l.nkept--
	}
}

// settle brings c's partial-frame state and buffer up to date after
// requests were executed from it; progressed says some were.
func (l *ioLoop) settle(c *loopConn, progressed bool) {
	switch partial := c.n > 0 && !c.wholeBuffered(); {
	case !partial:
		if !c.partialSince.IsZero() {
			c.partialSince = time.Time{}
			l.npartial--
		}
	case c.partialSince.IsZero():
		c.partialSince = l.now
		l.npartial++
	case progressed:
		c.partialSince = l.now // a new frame: its own time-out
	}
	switch {
	case c.n == 0 && cap(c.buf) > minConnBuf && cap(c.buf) <= keepConnBuf && !c.closed:
		// Nothing held: kept for the next request, for now (keepIdle).
		l.s.partial.give(c.charged - int64(cap(c.buf)))
		c.charged = int64(cap(c.buf))
		if !c.kept {
			c.kept = true
			l.nkept++
		}
	case c.n == 0:
		l.dropBuf(c)
	case cap(c.buf) > keepConnBuf && c.n <= keepConnBuf/2 && !c.offLoop:
		// A big request done, the start of another held: keep that only.
		nb := make([]byte, max(c.n, minConnBuf))
		copy(nb, c.buf[:c.n])
		c.buf = nb
		clear(c.items[:cap(c.items)])
		l.s.partial.give(c.charged - int64(cap(nb)))
		c.charged = int64(cap(nb))
	}
	if cap(c.items) > maxKeptItems {
		c.items = nil
	}
}

// execute runs the whole requests at the start of b and returns the bytes
// not executed: a partial request, or requests held back while the replies
// already queued drain (paused).
func (l *ioLoop) execute(c *loopConn, b []byte) []byte {
	c.clk = time.Time{} // a new burst: its first request reads the clock (conn.clk)
	if c.hello {
		l.prefetch(c, b)
	}
	work := 0
	for len(b) >= wire.FrameHeaderSize {
		if len(c.out)-c.wpos >= flushAt {
			c.paused = true
			return b
		}
		if work >= roundWork {
			c.more = true
			l.later = append(l.later, c)
			return b
		}
		body, rest, err := wire.SplitFrame(b, c.frameLimit()) // MaxHelloFrame until HELLO
		switch {
		case err == wire.ErrEmptyFrame:
			b = rest
			c.out = wire.AppendError(c.out, 0, wire.ErrEmptyFrame)
			continue
		case err != nil:
			var tooLarge *wire.FrameTooLargeError // SplitFrame's only other error
			errors.As(err, &tooLarge)
			l.final(c, c.frameTooLarge(tooLarge.Size), "frame too large")
			return nil
		case body == nil:
			return b // the rest of the frame is still to come
		}
		if len(body) > offLoopFrame || c.hello && l.s.slowRequest(body) {
			// A big request, an op on a big table, a snapshot: it takes
			// a while (cost.go), and runs off the loop once the replies
			// before it are written (startOffLoop).
			c.offLoop = true
			l.queue(c)
			return b
		}
		c.handle(body)
		if c.conn.dirty {
			l.dirty = true
		}
		work += (len(b) - len(rest)) * workWeight(body)
		b = rest
		if c.parked {
			l.queue(c) // the replies before it go out; write asks for hang-ups only
			return b
		}
	}
	return b
}

// prefetch touches the index slots and entries that the gets and sets of
// one dict among the frames of b will look up (store.Touch), when there
// are several: their cache misses overlap instead of following one
// another.
func (l *ioLoop) prefetch(c *loopConn, b []byte) {
	var (
		keys [16][]byte
		name []byte
		n    int
	)
	for len(b) >= wire.FrameHeaderSize && n < len(keys) {
		body, rest, err := wire.SplitFrame(b, c.frameLimit())
		if err != nil || body == nil {
			break
		}
		b = rest
		if op, ok := wire.PeekRequestOp(body); !ok || op != wire.OpDGet && op != wire.OpDSet {
			continue
		}
		tn, after, ok := nextText(requestArgs(body))
		if !ok || len(tn) == 0 || name != nil && string(tn) != string(name) {
			continue
		}
		key, _, ok := nextItem(after)
		if !ok {
			continue
		}
		name = tn
		keys[n] = key
		n++
	}
	if n >= 4 {
		l.sink += l.s.store.Touch(unsafe.String(&name[0], len(name)), keys[:n])
	}
}

// workWeight is what a request's bytes count for in roundWork: those of
// the ops that carry many items (up to itemsFrame of them, cost.go) four
// times, so that the round's work stays about 2 ms at the worst.
func workWeight(body []byte) int {
	if op, ok := wire.PeekRequestOp(body); ok && carriesItems[op] {
		return 4
	}
	return 1
}

// final queues a last error frame and closes c once it is written.
func (l *ioLoop) final(c *loopConn, e *wire.Error, reason string) {
	if c.closeBy != "" {
		return
	}
	c.out = wire.AppendError(c.out, 0, e)
	c.closeBy = reason
	c.n = 0 // nothing after this frame is executed
	c.paused = false
	c.starved = false // its last frame must be written: resolve must see EPOLLOUT
	l.settle(c, false)
	l.queue(c)
}

// flushAll writes the round's replies, after one Durable call for all of
// their writes. Under Config.DurableSlow that call runs off the loop
// (commit): the replies of the connections that wrote wait for it, the
// others are written now.
func (l *ioLoop) flushAll() {
	if len(l.pending) == 0 {
		return
	}
	if l.dirty {
		l.dirty = false
		if d := l.s.cfg.Durable; d != nil && l.s.cfg.DurableSlow {
			for _, c := range l.pending {
				if c.conn.dirty && !c.closed && !c.syncNext {
					c.conn.dirty = false
					c.synced, c.syncNext = true, true
					l.syncWait = append(l.syncWait, c)
				}
			}
			l.commit()
		} else if d != nil {
			if err := d(); err != nil {
				for _, c := range l.pending {
					if c.conn.dirty && !c.closed {
						l.notDurable(c, err)
					}
				}
			}
		}
	}
	if !l.s.cfg.DurableSlow {
		// The Durable call above covered their writes. Cleared before
		// any write: a write may start a connection's off-loop request,
		// whose worker then owns c.conn and sets dirty for its own write
		// (takeSaved reads it). Cleared after, that flag was lost, and the
		// request's reply could go out before its write was durable (and
		// -race saw the two writes of the field).
		for _, c := range l.pending {
			c.conn.dirty = false
		}
	}
	// Connections that got pushes this round are written first: an
	// invalidation (or watch event) for another connection of this loop
	// goes out before the reply to the write that caused it, which was
	// queued in the same round (PROTOCOL.md 6.8).
	for _, c := range l.pending {
		if c.pushed {
			c.pushed = false
			if !c.closed && !c.synced {
				l.write(c)
				c.written = true
			}
		}
	}
	// (From here on, a connection whose write started its off-loop
	// request is the worker's but for the loop's own fields: queued and
	// written.)
	for _, c := range l.pending {
		c.queued = false
		if c.written {
			c.written = false
		} else if !c.closed && !c.synced {
			l.write(c)
		}
	}
	clear(l.pending)
	l.pending = l.pending[:0]
}

// notDurable closes c, whose writes could not be made durable: their
// replies are not sent.
func (l *ioLoop) notDurable(c *loopConn, err error) {
	c.out, c.wpos = c.out[:0], 0
	c.log.Warn("closing connection: its writes could not be made durable", "err", err)
	l.close(c, "write failed: "+err.Error())
}

// commit starts a Durable call on a goroutine of its own for the
// connections in l.syncWait, unless one is in flight: they wait for the
// next, which takeSynced starts (a call covers only the writes made
// before it began).
func (l *ioLoop) commit() {
	if l.committing || len(l.syncWait) == 0 {
		return
	}
	l.committing = true
	l.syncing, l.syncWait = l.syncWait, l.syncing[:0]
	for _, c := range l.syncing {
		c.syncNext = false
		c.conn.dirty = false // the call begins after every write made so far
	}
	durable := l.s.cfg.Durable
	go func() {
		err := durable()
		l.syncMu.Lock()
		l.syncDone, l.syncErr = true, err
		l.syncMu.Unlock()
		l.wake()
	}()
}

// takeSynced queues the replies whose Durable call is done, and starts
// the next call for those that wrote meanwhile.
func (l *ioLoop) takeSynced() {
	if !l.committing {
		return
	}
	l.syncMu.Lock()
	done, err := l.syncDone, l.syncErr
	l.syncDone, l.syncErr = false, nil
	l.syncMu.Unlock()
	if !done {
		return
	}
	l.committing = false
	for i, c := range l.syncing {
		l.syncing[i] = nil
		if c.closed || c.syncNext {
			continue // the next call covers it (or it is gone)
		}
		c.synced = false
		if err != nil {
			l.notDurable(c, err)
			continue
		}
		l.queue(c)
	}
	l.syncing = l.syncing[:0]
	l.commit()
}

// write writes what it can of c's replies without blocking.
func (l *ioLoop) write(c *loopConn) {
again:
	for c.wpos < len(c.out) {
		n, err := writeFD(c.fd, c.out[c.wpos:])
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			if c.blocked.IsZero() {
				c.blocked = l.now
				l.nblocked++
			}
			if !l.checkOutput(c) {
				return
			}
			l.want(c, syscall.EPOLLOUT|syscall.EPOLLRDHUP) // stop reading until they drain
			return
		}
		if err != nil {
			l.close(c, "write failed: "+err.Error())
			return
		}
		c.wpos += n
	}
	clear(c.giveBacks) // every reply in out was written whole
	c.giveBacks = c.giveBacks[:0]
	// All written: pushes queued meanwhile go next.
	if c.pq != nil && c.closeBy == "" && c.pq.pending() {
		c.out, c.wpos = c.pq.take(c.out[:0]), 0
		goto again
	}
	l.uncountOutput(c)
	if cap(c.out) > 4*flushAt {
		c.out = nil // don't pin a huge reply buffer
	} else {
		c.out = c.out[:0]
	}
	c.wpos = 0
	c.idleSince = l.now // the idle time-out runs from when the replies are out
	l.unblock(c)
	if c.closeBy != "" {
		l.close(c, c.closeBy)
		return
	}
	if c.offLoop {
		l.startOffLoop(c)
		return
	}
	if c.parked {
		if c.events != 0 {
			l.want(c, syscall.EPOLLRDHUP)
		}
		return
	}
	if !c.eof {
		l.want(c, syscall.EPOLLIN|syscall.EPOLLRDHUP)
	} else {
		l.want(c, 0)
	}
	if c.paused {
		c.paused = false
		l.resume = append(l.resume, c)
	}
}

// checkOutput counts c's unsent replies, which found its socket full, and
// applies the output limit to them: false if it closed c.
func (l *ioLoop) checkOutput(c *loopConn) bool {
	unsent := len(c.out) - c.wpos
	l.s.outTotal.Add(int64(unsent) - c.outCharged)
	c.outCharged = int64(unsent)
	lim := l.s.outLimit
	if lim.Soft > 0 && unsent > lim.Soft {
		if c.overSoft.IsZero() {
			c.overSoft = l.now
		}
	} else {
		c.overSoft = time.Time{}
	}
	if rule := lim.exceeded(unsent, c.overSoft, l.now, l.s.outTotal.Load(), l.s.cfg.MaxOutputMemory); rule != "" {
		_ = l.s.outputLimitHit(c.log, rule, unsent)
		l.close(c, "output limit ("+rule+")")
		return false
	}
	return true
}

// uncountOutput takes c's unsent replies out of the server's count.
func (l *ioLoop) uncountOutput(c *loopConn) {
	if c.outCharged != 0 {
		l.s.outTotal.Add(-c.outCharged)
		c.outCharged = 0
	}
	c.overSoft = time.Time{}
}

// startOffLoop runs the request at the start of c.buf (a slow one:
// slowRequest, cost.go) on the server's worker pool, so that it does not
// stall the loop's other connections. Until it is done the loop leaves c
// alone: c is out of the epoll set, and the worker owns it. takeSaved
// takes it back. It is answered in order, after the replies before it,
// and the requests after it wait in c.buf until then.
func (l *ioLoop) startOffLoop(c *loopConn) {
	if c.working {
		return // started already (a write since, of pushes, must not start it twice)
	}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil); err != nil {
		l.close(c, "epoll_ctl: "+err.Error())
		return
	}
	c.events = 0
	// From here until takeSaved the worker owns c: its buffer, its
	// replies, its parked requests. Pushes wait in c.pq and deliveries
	// in c.held (takePush, takeMail), or they would race the worker.
	c.working = true
	l.s.workers.submit(func() {
		body, rest, _ := wire.SplitFrame(c.buf[:c.n], -1) // whole: execute checked it
		c.clk = time.Time{}
		c.handle(body)
		c.n = copy(c.buf, rest)
		l.savedMu.Lock()
		l.saved = append(l.saved, c)
		l.savedMu.Unlock()
		l.wake()
	})
}

// takeSaved takes back the connections whose off-loop request is done:
// their reply is written and the requests after it run. Must hold l.mu
// (resolve); takes l.savedMu.
func (l *ioLoop) takeSaved() {
	l.savedMu.Lock()
	saved := l.saved
	l.saved = nil
	l.savedMu.Unlock()
	for _, c := range saved {
		c.offLoop = false
		c.working = false
		if len(c.held) > 0 {
			// Delivered by the takeMail after resolve, this round.
			l.mailMu.Lock()
			l.mail = append(l.mail, c.held...)
			l.mailMu.Unlock()
			clear(c.held)
			c.held = c.held[:0]
		}
		if c.killed {
			c.log.Info("connection closed by kill_client")
			l.closeLocked(c, "killed (kill_client)")
			continue
		}
		c.idleSince = l.now
		if c.conn.dirty {
			l.dirty = true // a write: its reply waits for Durable
		}
		c.events = syscall.EPOLLIN | syscall.EPOLLRDHUP
		if c.eof {
			c.events = 0
		}
		ev := syscall.EpollEvent{Events: c.events, Fd: int32(c.fd)}
		if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
			l.closeLocked(c, "epoll_ctl: "+err.Error())
			continue
		}
		l.queue(c)
		l.resume = append(l.resume, c)
	}
}

func (l *ioLoop) unblock(c *loopConn) {
	if !c.blocked.IsZero() {
		c.blocked = time.Time{}
		l.nblocked--
	}
}

// want changes the events epoll reports for c.
func (l *ioLoop) want(c *loopConn, events uint32) {
	if c.events == events {
		return
	}
	c.events = events
	ev := syscall.EpollEvent{Events: events, Fd: int32(c.fd)}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
		l.close(c, "epoll_ctl: "+err.Error())
	}
}

// close closes c and says why in the debug log.
func (l *ioLoop) close(c *loopConn, reason string) {
	l.mu.Lock()
	l.closeLocked(c, reason)
	l.mu.Unlock()
}

// closeLocked is close. Must hold l.mu.
func (l *ioLoop) closeLocked(c *loopConn, reason string) {
	if c.closed {
		return
	}
	c.closed = true
	l.unblock(c)
	delete(l.conns, int32(c.fd))
	// Uncounted before the descriptor closes: a client that sees its
	// connection end may dial again at once without finding it still
	// counted against --max-conns.
	l.s.connClosed()
	syscall.Close(c.fd) // also leaves the epoll set: the descriptor is not shared
	// Everything it held goes now, whatever lists still point to it.
	l.uncountOutput(c)
	l.s.partial.give(c.charged)
	c.charged = 0
	if !c.partialSince.IsZero() {
		c.partialSince = time.Time{}
		l.npartial--
	}
	if c.kept {
		c.kept = false
		l.nkept--
	}
	// Replies to parked requests not written whole give their values back.
	l.unsent = append(l.unsent, unwritten(c.giveBacks, c.wpos)...)
	c.giveBacks = nil
	c.buf, c.out, c.items, c.rbuf = nil, nil, nil, nil
	for _, w := range c.conn.blocked {
		l.orphans = append(l.orphans, w) // cancelled outside mu: see cancelOrphans
	}
	c.conn.blocked = nil
	if c.pq != nil {
		l.closedPush = append(l.closedPush, c.pq)
	}
	c.log.Debug("connection closed", "reason", reason)
}

// sweep enforces the idle and write time-outs.
func (l *ioLoop) sweep() {
	idle, partial := l.s.cfg.IdleTimeout, l.s.cfg.PartialTimeout
	step := maxSweepStep
	if idle > 0 {
		step = min(step, max(idle/10, 10*time.Millisecond))
	}
	if l.npartial > 0 {
		step = min(step, max(partial/10, 10*time.Millisecond))
	}
	if len(l.starved) > 0 {
		step = min(step, 10*time.Millisecond) // feedStarved, at least this often
	}
	l.sweepAt = l.now.Add(step)
	for _, c := range l.snapshot() {
		// working first: while it is set, the request's worker owns c.
		if c.kept && !c.working && c.n == 0 && l.now.Sub(c.idleSince) >= keepIdle {
			l.dropBuf(c)
		}
		switch {
		case c.closed, c.working:
		case !c.blocked.IsZero():
			// (An off-loop request waiting for the replies before it to
			// drain is no exception: it was, and a client that did not
			// read held its connection for good.)
			if l.now.Sub(c.blocked) >= writeTimeout {
				l.close(c, "write failed: the client did not read its replies for "+writeTimeout.String())
			} else {
				l.checkOutput(c) // the soft limit's time
			}
		case !c.partialSince.IsZero() && c.closeBy == "" && !c.paused && !c.more && l.now.Sub(c.partialSince) >= partial:
			warn(&l.s.warns.partialTimeout, c.log, "closing connection: a request frame stayed incomplete past --partial-timeout",
				"partial_timeout", partial)
			l.final(c, l.s.errPartialTimeout(), "partial request timeout")
		case idle > 0 && c.closeBy == "" && !c.paused && !c.eof && c.wpos == len(c.out) && len(c.conn.blocked) == 0 &&
			l.now.Sub(c.idleSince) >= idle && !c.pq.live():
			// (A connection waiting for pushes is not idle: see live. On
			// the loops a push written used to count as activity, so that
			// a subscriber was closed only while nothing was published.)
			l.final(c, wire.Errorf(wire.CodeIdleTimeout, "connection idle for %s (--idle-timeout); reconnect to continue", idle), "idle timeout")
		}
	}
	l.flushAll()
}

// snapshot returns the loop's connections.
func (l *ioLoop) snapshot() []*loopConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	cs := make([]*loopConn, 0, len(l.conns))
	for _, c := range l.conns {
		cs = append(cs, c)
	}
	return cs
}

// shutdown sends each connection its last frame, and ends the loop once
// all are closed (or at once when Shutdown's context has ended).
func (l *ioLoop) shutdown() {
	force := l.s.forceClose.Load()
	for _, c := range l.snapshot() {
		if c.working {
			continue // a worker owns it: a later round, once it is done
		}
		if force {
			// Even one whose off-loop request waits for its replies to
			// drain to a client that does not read: it was spared, and
			// the loop never ended.
			l.close(c, "server shutting down")
			continue
		}
		if len(c.conn.blocked) > 0 && !c.cancelAll() {
			continue // a reply to a parked request is on its way: it goes first
		}
		if c.parked {
			c.parked = false // what it holds after the parked request was not executed
			l.final(c, errShuttingDown, "server shutting down")
			continue
		}
		if c.offLoop || c.paused || c.wholeBuffered() {
			// Requests already read (an off-loop one among them) wait
			// for the replies before them to drain. They are answered
			// first, and the last frame comes in a later round.
			continue
		}
		l.final(c, errShuttingDown, "server shutting down")
	}
	l.flushAll()
	l.mu.Lock()
	l.done = len(l.conns) == 0
	l.mu.Unlock()
	if !l.done && l.sweepAt.After(l.now.Add(100*time.Millisecond)) {
		l.sweepAt = l.now.Add(100 * time.Millisecond) // check the write time-outs meanwhile
	}
}

// readFD reads from fd. Raw: a read of a non-blocking socket never blocks,
// so the scheduler need not know about it.
func readFD(fd int, b []byte) (int, error) {
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// writeFD sends b on the socket fd; a peer gone gives EPIPE, no SIGPIPE.
func writeFD(fd int, b []byte) (int, error) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), syscall.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// post hands the reply to parked request id of c to the loop (deliver:
// any goroutine).
func (l *ioLoop) post(c *loopConn, id uint64, d store.Delivery) {
	l.mailMu.Lock()
	first := len(l.pushMail) == 0 && len(l.mail) == 0
	l.mail = append(l.mail, mailItem{c, id, d})
	l.mailMu.Unlock()
	if first && !l.executing.Load() {
		l.wake() // once per batch of mail: the loop takes it all (takeMail)
	}
}

// takeMail queues the replies posted to parked requests. A connection
// closed meanwhile gives its value back to the list. Not under mu: a
// give-back is a store op.
func (l *ioLoop) takeMail() {
	l.mailMu.Lock()
	mail := l.mail
	l.mail = nil
	pushes := l.pushMail
	l.pushMail = nil
	l.mailMu.Unlock()
	for _, c := range pushes {
		l.takePush(c)
	}
	for i := range mail {
		m := &mail[i]
		c := m.c
		if c.closed || c.closeBy != "" {
			if m.d.GiveBack != nil {
				m.d.GiveBack()
			}
			continue
		}
		if c.working {
			c.held = append(c.held, *m) // the worker owns c: after takeSaved
			mail[i] = mailItem{}
			continue
		}
		delete(c.conn.blocked, m.id)
		c.out = appendDelivery(c.out, m.id, m.d)
		if m.d.GiveBack != nil {
			c.giveBacks = append(c.giveBacks, pendingGiveBack{end: len(c.out), fn: m.d.GiveBack})
		}
		if m.d.Err == nil {
			c.conn.dirty = true // its pop was journaled: the reply waits for Durable
			l.dirty = true
		}
		c.idleSince = l.now
		// Written first, as pushes are (flushAll): the consumer's wait
		// ends one write sooner than if it followed the reply to the
		// append that fed it, queued earlier in the same round.
		c.pushed = true
		l.queue(c)
		if c.parked {
			c.parked = false
			if !c.eof {
				l.want(c, syscall.EPOLLIN|syscall.EPOLLRDHUP)
			}
			l.resume = append(l.resume, c) // the requests it holds after the parked one
		} else {
			l.endIfAnswered(c) // a half-closed push connection's last parked request
		}
		mail[i] = mailItem{}
	}
}

// cancelOrphans cancels the parked requests of connections closed (not
// under mu: Cancel takes a store lock). One already claimed posts its
// reply, which takeMail gives back.
func (l *ioLoop) cancelOrphans() {
	for i, w := range l.orphans {
		w.Cancel()
		l.orphans[i] = nil
	}
	l.orphans = l.orphans[:0]
	for i, q := range l.closedPush {
		q.close()
		l.closedPush[i] = nil
	}
	l.closedPush = l.closedPush[:0]
	giveBack(l.unsent)
	clear(l.unsent)
	l.unsent = l.unsent[:0]
}

// postPush tells the loop that c's push queue has frames (Push: any
// goroutine, under store locks: it takes only the leaf mailMu).
func (l *ioLoop) postPush(c *loopConn) {
	l.mailMu.Lock()
	first := len(l.pushMail) == 0 && len(l.mail) == 0
	l.pushMail = append(l.pushMail, c)
	l.mailMu.Unlock()
	if first && !l.executing.Load() {
		l.wake() // once per batch of mail: the loop takes it all (takeMail)
	}
}

// takePush moves c's queued pushes behind its replies, unless replies
// already wait for the socket to drain: write takes them once it has.
// So what a client that stops reading makes the loop hold is bounded by
// flushAt plus the push queue's bound.
func (l *ioLoop) takePush(c *loopConn) {
	if c.closed || c.closeBy != "" || c.pq == nil || c.working || len(c.out)-c.wpos >= flushAt || !c.blocked.IsZero() {
		return // write takes them once it has written what is before them
	}
	n := len(c.out)
	c.out = c.pq.take(c.out)
	if len(c.out) > n {
		c.pushed = true
		l.queue(c)
	}
}
