package server

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// What one connection, or all of them together, may make the daemon hold,
// so that a client who may open the socket cannot take the daemon's memory
// or stall the others:
//
//   - requests still arriving: a buffer grows with the bytes that arrive,
//     never to the size a frame header announces; a request frame bigger
//     than a read buffer (64 KiB on an event loop, 16 KiB on a goroutine's
//     connection) is charged whole to one budget shared by all connections
//     (Config.MaxPartialMemory) before its buffer grows, and a connection
//     waits (is not read) while the budget is spent; a frame begun and not
//     finished within Config.PartialTimeout closes its connection. Until
//     HELLO succeeds a frame may be MaxHelloFrame bytes.
//   - replies not read: Config.OutputLimit, per connection, as Redis's
//     client-output-buffer-limit, and Config.MaxOutputMemory across all.
//   - work per event-loop round: see ioloop_linux.go (offLoopFrame,
//     roundWork).
//   - the warnings a client can provoke: a few lines a second per cause,
//     with the count of those suppressed (warnLimits).

// Defaults of the limits in Config.
const (
	DefaultPartialTimeout   = 30 * time.Second
	DefaultMaxPartialMemory = 256 << 20
	DefaultMaxOutputMemory  = 256 << 20
)

// MaxHelloFrame is the largest frame a connection may send before its
// HELLO has succeeded: a HELLO needs a few hundred bytes, and a peer that
// has not authenticated must not make the daemon hold more.
const MaxHelloFrame = 4 << 10

// OutputLimit bounds the replies a connection has not read, as Redis's
// client-output-buffer-limit: past Hard unsent bytes the connection is
// closed at once; past Soft for SoftFor it is closed too, and past Soft at
// all while the unsent replies of all connections exceed
// Config.MaxOutputMemory. A zero size disables its rule.
type OutputLimit struct {
	Hard    int
	Soft    int
	SoftFor time.Duration
}

// DefaultOutputLimit is Config.OutputLimit's default: a client may leave
// up to 8 MiB unread for up to 10 seconds, and up to 64 MiB for a moment
// (a big reply it is reading).
var DefaultOutputLimit = OutputLimit{Hard: 64 << 20, Soft: 8 << 20, SoftFor: 10 * time.Second}

// exceeded says why a connection with unsent bytes of replies, over Soft
// since overSoft (zero: not yet), must be closed at now; "" if it may
// stay. total is the unsent bytes of all connections.
func (o OutputLimit) exceeded(unsent int, overSoft, now time.Time, total, maxTotal int64) string {
	switch {
	case o.Hard > 0 && unsent > o.Hard:
		return "hard"
	case o.Soft > 0 && unsent > o.Soft && !overSoft.IsZero() && now.Sub(overSoft) >= o.SoftFor:
		return "soft"
	case o.Soft > 0 && unsent > o.Soft && maxTotal > 0 && total > maxTotal:
		return "total"
	}
	return ""
}

// memBudget is a number of bytes shared by all connections: the memory
// held for requests that have not arrived whole.
type memBudget struct {
	limit int64
	used  atomic.Int64

	waiters atomic.Int32 // goroutines in wait: give must wake them
	mu      sync.Mutex   // guards freed; a leaf (give runs under ioLoop.mu)
	freed   chan struct{}
}

// take charges n bytes, if they fit.
func (b *memBudget) take(n int64) bool {
	if n <= 0 {
		return true
	}
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

// force charges n bytes already held, whether they fit or not.
func (b *memBudget) force(n int64) { b.used.Add(n) }

// tight says whether the budget is spent: new partial requests get a
// small read.
func (b *memBudget) tight() bool { return b.used.Load() >= b.limit }

// give returns n bytes and wakes the goroutines waiting for some.
func (b *memBudget) give(n int64) {
	if n == 0 {
		return
	}
	b.used.Add(-n)
	if b.waiters.Load() > 0 {
		b.mu.Lock()
		if b.freed != nil {
			close(b.freed)
			b.freed = nil
		}
		b.mu.Unlock()
	}
}

// wait takes n bytes, waiting for other connections to give some back,
// until deadline or until the server shuts down (checked every 100 ms).
// The event loops do not wait: they stop reading the connection instead
// (ioLoop.starve).
func (b *memBudget) wait(n int64, deadline time.Time, closing *atomic.Bool) bool {
	for {
		if b.take(n) {
			return true
		}
		b.waiters.Add(1)
		b.mu.Lock()
		if b.freed == nil {
			b.freed = make(chan struct{})
		}
		ch := b.freed
		b.mu.Unlock()
		ok := b.take(n) // given back before we registered?
		if !ok {
			t := time.NewTimer(min(time.Until(deadline), 100*time.Millisecond))
			select {
			case <-ch:
			case <-t.C:
			}
			t.Stop()
		}
		b.waiters.Add(-1)
		if ok {
			return true
		}
		if closing.Load() || !time.Now().Before(deadline) {
			return false
		}
	}
}

// warnLimits keeps what clients can make the daemon log to a few lines a
// second per cause; each line that gets through says how many were
// suppressed before it.
type warnLimits struct {
	tooLarge       logLimiter // frames over --max-frame, or over MaxHelloFrame before HELLO
	tooManyConns   logLimiter // --max-conns
	peerRefused    logLimiter // --allow-uid/--allow-gid, and unreadable peer credentials
	partialTimeout logLimiter // --partial-timeout
	outputLimit    logLimiter // --output-limit, --max-output-memory
}

func newWarnLimits() *warnLimits {
	const perSecond = 10
	return &warnLimits{
		tooLarge:       logLimiter{perSecond: perSecond},
		tooManyConns:   logLimiter{perSecond: perSecond},
		peerRefused:    logLimiter{perSecond: perSecond},
		partialTimeout: logLimiter{perSecond: perSecond},
		outputLimit:    logLimiter{perSecond: perSecond},
	}
}

// warn logs msg at warning level unless l has let enough through this
// second.
func warn(l *logLimiter, log *slog.Logger, msg string, args ...any) {
	if ok, suppressed := l.allow(time.Now()); ok {
		log.Warn(msg, withSuppressed(suppressed, args...)...)
	}
}

// frameLimit is the largest request frame c may send now.
func (c *conn) frameLimit() int {
	if c.hello {
		return c.s.cfg.MaxFrame
	}
	return min(c.s.cfg.MaxFrame, MaxHelloFrame)
}

// frameTooLarge logs (rate-limited) and returns the frame that closes a
// connection that announced a frame of size bytes, over its frame limit.
func (c *conn) frameTooLarge(size uint64) *wire.Error {
	limit := c.frameLimit()
	if !c.hello && limit < c.s.cfg.MaxFrame {
		warn(&c.s.warns.tooLarge, c.log, "frame too large before HELLO; closing connection", "size", size, "max_before_hello", limit)
		return wire.Errorf(wire.CodeTooLarge,
			"frame of %d bytes before a successful HELLO: until the handshake the server accepts frames of at most %d bytes; send HELLO first (see PROTOCOL.md, \"Handshake\")",
			size, limit)
	}
	warn(&c.s.warns.tooLarge, c.log, "frame too large; closing connection", "size", size, "max_frame", limit)
	return (&wire.FrameTooLargeError{Size: size, Max: uint64(limit)}).WireError()
}

// errPartialTimeout is the last frame of a connection that began a request
// frame and did not finish it within Config.PartialTimeout.
func (s *Server) errPartialTimeout() *wire.Error {
	return wire.Errorf(wire.CodeIdleTimeout,
		"a request frame was begun and not finished within %s (--partial-timeout); it was not executed: reconnect and send it whole", s.cfg.PartialTimeout)
}

// countOp counts a request of an authenticated connection in info's ops.
func (s *Server) countOp(op wire.Op) {
	if int(op) < len(knownOps) && knownOps[op] {
		s.opCount[op].Add(1)
	} else {
		s.unknownOps.Add(1)
	}
}

// knownOps is wire's op table as an array, read once per request.
var knownOps = func() (k [256]bool) {
	for i := range k {
		k[i] = wire.Op(i).Known()
	}
	return k
}()

// errOutputLimit ends a connection closed by its output limit.
var errOutputLimit = errors.New("the client did not read its replies (output limit)")

// outputLimitHit logs (rate-limited) that a connection is closed because
// its client does not read its replies, and returns errOutputLimit.
func (s *Server) outputLimitHit(log *slog.Logger, rule string, unsent int) error {
	lim := s.outLimit
	var why string
	switch rule {
	case "hard":
		why = fmt.Sprintf("over %d bytes of replies not read (--output-limit hard size)", lim.Hard)
	case "soft":
		why = fmt.Sprintf("over %d bytes of replies not read for %s (--output-limit soft size and time)", lim.Soft, lim.SoftFor)
	default:
		why = fmt.Sprintf("over %d bytes of replies not read while all connections' unread replies are over %d bytes (--max-output-memory)",
			lim.Soft, s.cfg.MaxOutputMemory)
	}
	warn(&s.warns.outputLimit, log, "closing connection: the client does not read its replies", "why", why, "unsent", unsent)
	return errOutputLimit
}
