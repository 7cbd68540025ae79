package libcyberdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// The read side of a connection, and who reads it.
//
// Whoever holds the read side (conn.reading) reads frames from the socket
// and hands each to its call (dispatch). Two kinds of goroutine take it:
//
//   - The connection's reader goroutine (readLoop), which reads whenever
//     someone must: while calls wait for replies whose callers do not read
//     themselves, while the connection is being closed, and always on a
//     connection that can receive push messages or is not a Unix socket
//     (needReaderLocked).
//   - A caller alone on its connection (readOwn): it wrote its request
//     inline (enqueue) and, finding nobody reading, reads its reply
//     itself, as go-redis's callers do. Handing each reply from the reader
//     goroutine to the caller's goroutine woke a second thread for every
//     call in a process with two processors or more: measured on the queue
//     benchmark (issue 15), a quarter of the throughput. A caller that
//     reads another call's reply hands it over, as the reader goroutine
//     does, and gives the read side back once its own reply is in, waking
//     the reader goroutine if other calls still wait.
//
// An idle Unix connection without push hooks has nobody reading. A daemon
// that closed it meanwhile is noticed by the next call: its write fails
// with EPIPE, nothing having been written, and the call is resent on
// another connection (fateNotSent), as the pool's other connections are
// after a restart. Closing such a connection (retire, Client.Close) wakes
// the reader goroutine, which reads the end and runs finish as before.
//
// A caller's context that ends while it reads cuts its read with a past
// deadline (interrupt). The frame reader keeps what it read, so a cut
// loses nothing: the caller gives the read side back (resetting the
// deadline) and leaves as any cancelled caller does.

// frameReader reads frames into its own buffer. A read cut short (a
// deadline) loses nothing: the bytes stay buffered for the next reader.
// It belongs to whoever holds the connection's read side.
type frameReader struct {
	r      io.Reader
	buf    []byte
	lo, hi int   // buf[lo:hi] is read and not yet consumed
	err    error // a read error that came with data, for the next read
}

const (
	readBufSize   = 64 << 10
	readBufShrink = 1 << 20 // a buffer grown past this is dropped once empty
)

func newFrameReader(r io.Reader, buffered []byte) *frameReader {
	f := &frameReader{r: r, buf: make([]byte, max(readBufSize, len(buffered)))}
	f.hi = copy(f.buf, buffered)
	return f
}

// next returns the next frame's body. It aliases the reader's buffer
// until the next call. Errors are the reader's, io.EOF at a frame
// boundary, io.ErrUnexpectedEOF within a frame, or the header's.
func (f *frameReader) next() ([]byte, error) {
	if f.lo == f.hi {
		f.lo, f.hi = 0, 0
		if len(f.buf) > readBufShrink {
			f.buf = make([]byte, readBufSize)
		}
	}
	for {
		need := wire.FrameHeaderSize
		if f.hi-f.lo >= wire.FrameHeaderSize {
			size, err := wire.FrameHeader(f.buf[f.lo:f.lo+wire.FrameHeaderSize], -1)
			if err != nil {
				return nil, err
			}
			need += size
			if f.hi-f.lo >= need {
				body := f.buf[f.lo+wire.FrameHeaderSize : f.lo+need]
				f.lo += need
				return body, nil
			}
		}
		if f.err != nil {
			err := f.err
			f.err = nil
			if errors.Is(err, io.EOF) && f.hi > f.lo {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		f.room(need)
		n, err := f.r.Read(f.buf[f.hi:])
		f.hi += n
		if err != nil {
			f.err = err
		}
	}
}

// room makes space to read more of a frame of need bytes (header
// included) starting at lo. The buffer grows only when it is full, to at
// most twice its size: a peer that declares a large frame and sends
// little holds little memory.
func (f *frameReader) room(need int) {
	if f.hi < len(f.buf) {
		return
	}
	if f.lo > 0 {
		f.hi = copy(f.buf, f.buf[f.lo:f.hi])
		f.lo = 0
		if f.hi < len(f.buf) {
			return
		}
	}
	nb := make([]byte, max(min(need, 2*len(f.buf)), len(f.buf)+1))
	copy(nb, f.buf[:f.hi])
	f.buf = nb
}

// selfRead reports whether callers may read their own replies: on a
// Unix socket (where a daemon gone while nobody read is seen by the next
// write, EPIPE) without push hooks (whose messages must be read as they
// come).
func (c *conn) selfRead() bool {
	return c.unix && c.hooks == nil && c.p.pushHooks.Load() == nil
}

// needReaderLocked reports whether the read side must be read: calls
// await replies, the connection is ending, or it is not one where callers
// read their own (selfRead). Called with mu held.
func (c *conn) needReaderLocked() bool {
	return c.head < len(c.fifo) || len(c.parked) > 0 || c.dead || c.closeErr != nil || c.spoke || !c.selfRead()
}

// alive reports whether c may take a call. A quiet connection (nobody
// reads it, no call awaits a reply) on which the daemon closed or sent a
// frame (idle_timeout, shutting_down) is not: it is marked unusable and
// its reader goroutine reads the end (finish), and the caller picks
// another. One non-blocking peek, about 0.2 µs, where a connection read
// all the time would have noticed by itself; the check of
// go-sql-driver/mysql's connCheck before reusing a pooled connection.
func (c *conn) alive() bool {
	if !c.unix || c.load.Load() > 0 || c.blocked.Load() > 0 {
		return true // a call waits on it: its reader sees the end (no lock for busy ones)
	}
	c.mu.Lock()
	if c.reading || c.needReaderLocked() || c.unusable.Load() {
		c.mu.Unlock()
		return true // somebody reads it and sees its end; or enqueue refuses it
	}
	// Holding mu with nobody reading: no caller can start reading meanwhile.
	err := c.ctl.Control(c.peekFn)
	gone := err != nil || c.peekN > 0 || c.peekN == 0 && c.peekErr == nil
	if gone {
		c.spoke = true
		c.unusable.Store(true)
	}
	c.mu.Unlock()
	if gone {
		c.kickReader()
	}
	return !gone
}

// peek is alive's probe: n > 0, something to read; n == 0 with no error,
// the daemon closed; EAGAIN, nothing yet.
func (c *conn) peek(fd uintptr) { c.peekN, c.peekErr = peekFD(fd) }

// kickReader wakes the reader goroutine to see whether it must read.
func (c *conn) kickReader() {
	select {
	case c.rdWake <- struct{}{}:
	default:
	}
}

// wantReader makes sure that somebody reads, for a caller that waits for
// its reply without reading it.
func (c *conn) wantReader() {
	c.mu.Lock()
	kick := !c.reading && c.needReaderLocked()
	c.mu.Unlock()
	if kick {
		c.kickReader()
	}
}

// releaseReadLocked gives the read side back, resetting a deadline that
// interrupt set, and reports whether the reader goroutine must take it.
// Called with mu held by its holder.
func (c *conn) releaseReadLocked() (kick bool) {
	c.reading = false
	c.rdCall = nil
	if c.rdIntr {
		c.rdIntr = false
		var dl time.Time
		if c.dead {
			dl = time.Now().Add(drainTimeout) // writeFailed's
		}
		_ = c.nc.SetReadDeadline(dl)
	}
	return c.needReaderLocked()
}

// readLoop is the connection's reader goroutine: it holds the read side
// whenever somebody must read and no caller does.
func (c *conn) readLoop() {
	defer c.p.wg.Done()
	for {
		c.mu.Lock()
		for c.reading || !c.needReaderLocked() {
			c.mu.Unlock()
			select {
			case <-c.rdWake:
			case <-c.quit:
				return
			}
			c.mu.Lock()
		}
		if c.ended {
			c.mu.Unlock()
			return
		}
		c.reading = true
		c.mu.Unlock()
		for {
			body, err := c.rd.next()
			if err != nil {
				c.finish(err, nil)
				return
			}
			keep, ok := c.dispatch(body, nil)
			if !ok {
				return
			}
			if !keep {
				break
			}
		}
	}
}

// readOwn is a caller reading the reply of cl, just written inline, when
// nobody else reads. It returns once cl is done, or when ctx ends or
// WithTimeout's bound passes (the caller then gives up as usual), or at
// once if another goroutine reads.
func (c *conn) readOwn(ctx context.Context, cl *call) {
	c.mu.Lock()
	if c.reading || c.ended || cl.state != stateInFlight {
		c.mu.Unlock()
		return
	}
	c.reading, c.rdCall = true, cl
	c.rdSeq++
	seq := c.rdSeq
	if cl.expires != 0 {
		// WithTimeout bounds cl: a deadline ends the read when the bound
		// has passed; the caller's wait (roundTrip) then expires it at
		// its tick. rdIntr has the read side's deadline reset on release.
		c.rdIntr = true
		_ = c.nc.SetReadDeadline(time.Now().Add(cl.timeout))
	}
	c.mu.Unlock()
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { c.interrupt(seq) })
	}
	for {
		body, err := c.rd.next()
		if err != nil {
			c.mu.Lock()
			if c.rdIntr && errors.Is(err, os.ErrDeadlineExceeded) {
				// ctx ended, or WithTimeout's bound passed: give the read
				// side back, unharmed.
				kick := c.releaseReadLocked()
				c.mu.Unlock()
				if kick {
					c.kickReader()
				}
				break
			}
			c.mu.Unlock()
			c.finish(err, nil) // fails cl too
			break
		}
		if keep, ok := c.dispatch(body, cl); !ok || !keep {
			break
		}
	}
	if stop != nil {
		stop()
	}
}

// interrupt cuts the read of the caller that took the read side as seq,
// if it still holds it: its context ended.
func (c *conn) interrupt(seq uint64) {
	c.mu.Lock()
	if c.rdCall != nil && c.rdSeq == seq {
		c.rdIntr = true
		_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	}
	c.mu.Unlock()
}

// dispatch hands one frame to its call or to the push hooks; own is the
// caller reading for itself, or nil for the reader goroutine. ok is false
// when the frame ended the connection (finish ran); keep, whether the
// reader goes on reading (false: it gave the read side back).
func (c *conn) dispatch(body []byte, own *call) (keep, ok bool) {
	id, _, _, headOK := wire.ReplyHead(body)
	if !headOK {
		r, err := wire.DecodeReply(body)
		if err != nil {
			c.finish(&ProtocolError{Msg: "malformed reply " + wire.Diagnose(body)}, nil)
			return false, false
		}
		id = r.ID
	}
	if id == 0 {
		if c.push {
			if kind, msg, isPush := pushMessage(body); isPush {
				c.deliverPush(kind, msg) // push.go
				return c.keepReading(own), true
			}
		}
		// An unsolicited frame: the daemon closes the connection
		// right after it, and it says what became of our requests.
		r, err := wire.DecodeReply(body)
		if err != nil || r.Err == nil {
			c.finish(&ProtocolError{Msg: "unexpected frame " + wire.Diagnose(body)}, nil)
			return false, false
		}
		c.finish(fmt.Errorf("the daemon ended the connection: %w", r.Err), r.Err)
		return false, false
	}
	c.mu.Lock()
	var cl *call
	if c.head < len(c.fifo) && c.fifo[c.head].id == id {
		cl = c.fifo[c.head]
		c.fifo[c.head] = nil
		c.head++
		if c.head == len(c.fifo) {
			c.fifo, c.head = c.fifo[:0], 0
		}
	} else if pc, found := c.parked[id]; found {
		// A blocking call's reply, in its place or later (push).
		cl = pc
		delete(c.parked, id)
	} else {
		c.mu.Unlock()
		c.finish(&ProtocolError{Msg: fmt.Sprintf("reply with id %d answers no request in flight (the oldest is not it, and no blocking request has it)", id)}, nil)
		return false, false
	}
	abandoned := cl.state == stateAbandoned
	if !abandoned {
		cl.state = stateDone
	}
	// Whether to go on reading, decided under the same lock: the caller
	// reading for itself stops at its own reply; the reader goroutine
	// stops when nobody needs it. body aliases the read buffer, which the
	// next holder of the read side overwrites: it is copied before the
	// read side is given back.
	keep = own == nil && c.needReaderLocked() || own != nil && cl != own
	kick := false
	if !keep {
		if !abandoned {
			cl.reply = append(cl.reply[:0], body...)
		}
		if own != nil {
			kick = c.releaseReadLocked()
		} else {
			c.reading = false
		}
	}
	c.mu.Unlock()
	if kick {
		c.kickReader()
	}
	if abandoned {
		return keep, true
	}
	if keep {
		cl.reply = append(cl.reply[:0], body...)
	}
	cl.fate = fateReply
	c.unload(cl)
	cl.done <- struct{}{}
	c.afterDone()
	return keep, true
}

// keepReading is dispatch's decision after a push message.
func (c *conn) keepReading(own *call) bool {
	if own == nil && !c.selfRead() {
		return true // the usual case: a push connection's reader reads on
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if own != nil {
		return true // still waiting for its own reply
	}
	if !c.needReaderLocked() {
		c.reading = false
		return false
	}
	return true
}

// drainTimeout bounds how long the reader collects the daemon's last
// replies after a write failed (writeFailed).
const drainTimeout = 5 * time.Second

// errNothingWritten marks a write that failed before any byte left: the
// daemon had closed the connection (EPIPE, ECONNRESET) and cannot have
// read the calls it carried.
var errNothingWritten = errors.New("nothing was written")

// nothingWritten reports whether a failed write of n bytes sent nothing
// because the peer had closed the connection.
func nothingWritten(n int, err error) bool {
	return n == 0 && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET))
}
