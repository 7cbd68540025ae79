//go:build linux

package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// runConns drives the connections from one goroutine with an epoll set of
// its own, as redis-benchmark's single-threaded event loop drives its
// clients. Besides costing the load generator less (no goroutine switch,
// no read that finds the socket empty), it keeps the sockets out of Go's
// poller, which watches every socket for writability too: there, each time
// the daemon reads a request, the kernel wakes this process's poller for
// nothing, and the daemon pays for that wake-up (an inter-processor
// interrupt) inside its read. redis-benchmark asks for writability only
// while it has something to write, and so does this loop.
//
// On a set-up error it falls back to a goroutine per connection.
func runConns(conns []*benchConn, test string, cfg *benchConfig, remaining *atomic.Int64, val string) (h []uint64, n, errs int64, first string) {
	el, err := newBenchLoop(conns)
	if err != nil {
		return runConnsGoroutines(conns, test, cfg, remaining, val)
	}
	return el.run(test, cfg, remaining, val)
}

type benchLoop struct {
	epfd  int
	conns map[int32]*loopClient
	h     []uint64
	n     int64
	errs  int64
	first string
}

// loopClient is one connection of the loop: a redis-benchmark client.
type loopClient struct {
	bc      *benchConn
	fd      int
	buf     []byte // replies read, buf[:n]
	n       int
	wpos    int // bc.out[wpos:] is still to be written
	waiting int // replies outstanding for the pipeline written at t0
	t0      time.Time
	rng     *rand.Rand
	keybuf  []byte
	done    bool
}

// newBenchLoop takes the connections' sockets out of Go's poller (a
// duplicate of each, the net.Conn closed) into an epoll set.
func newBenchLoop(conns []*benchConn) (*benchLoop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	el := &benchLoop{epfd: epfd, conns: make(map[int32]*loopClient, len(conns)), h: make([]uint64, histBuckets)}
	for _, bc := range conns {
		if bc.r.Buffered() > 0 {
			el.release()
			return nil, errors.New("bytes already buffered")
		}
		sc, ok := bc.nc.(syscall.Conn)
		if !ok { // TLS (tcp://): Go's poller it is
			el.release()
			return nil, errors.New("not a plain socket")
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			el.release()
			return nil, err
		}
		fd := -1
		var derr error
		if err := rc.Control(func(s uintptr) { fd, derr = dupCloexec(int(s)) }); err != nil || derr != nil {
			el.release()
			return nil, errors.Join(err, derr)
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
		if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			syscall.Close(fd)
			el.release()
			return nil, err
		}
		el.conns[int32(fd)] = &loopClient{bc: bc, fd: fd, buf: make([]byte, 64<<10),
			rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), keybuf: make([]byte, 0, 32)}
	}
	// Only now: a failure above leaves every net.Conn usable.
	for _, c := range el.conns {
		c.bc.nc.Close() // leaves Go's poller; the duplicate keeps the socket
	}
	return el, nil
}

func dupCloexec(fd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

func (el *benchLoop) release() {
	for _, c := range el.conns {
		syscall.Close(c.fd)
	}
	el.conns = nil
	syscall.Close(el.epfd)
}

func (el *benchLoop) run(test string, cfg *benchConfig, remaining *atomic.Int64, val string) (h []uint64, n, errs int64, first string) {
	defer el.release()
	active := 0
	for _, c := range el.conns {
		if el.next(c, test, cfg, remaining, val) {
			active++
		}
	}
	events := make([]syscall.EpollEvent, 256)
	for active > 0 {
		k, err := syscall.EpollWait(el.epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			el.fail(nil, "epoll_wait: "+err.Error(), 0)
			break
		}
		now := time.Now()
		for _, ev := range events[:k] {
			c := el.conns[ev.Fd]
			if c == nil || c.done {
				continue
			}
			if ev.Events&syscall.EPOLLOUT != 0 {
				el.write(c)
			}
			if !c.done && ev.Events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 &&
				el.read(c, now) && c.waiting == 0 && !el.next(c, test, cfg, remaining, val) {
				c.done = true
			}
			if c.done {
				active--
				_ = syscall.EpollCtl(el.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
			}
		}
	}
	return el.h, el.n, el.errs, el.first
}

// next writes the connection's next pipeline, if requests are left; false
// when it is done.
func (el *benchLoop) next(c *loopClient, test string, cfg *benchConfig, remaining *atomic.Int64, val string) bool {
	k := remaining.Add(-int64(cfg.pipeline))
	batch := cfg.pipeline
	if k < 0 {
		batch += int(k)
	}
	if batch <= 0 {
		return false
	}
	c.bc.out = c.bc.out[:0]
	for range batch {
		c.bc.appendBenchRequest(test, cfg, c.rng, val, c.keybuf)
	}
	c.waiting, c.wpos = batch, 0
	c.t0 = time.Now()
	el.write(c)
	return !c.done
}

// write writes what it can of the pipeline; the rest when epoll says the
// socket has room.
func (el *benchLoop) write(c *loopClient) {
	for c.wpos < len(c.bc.out) {
		m, err := syscall.Write(c.fd, c.bc.out[c.wpos:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			el.want(c, syscall.EPOLLIN|syscall.EPOLLOUT)
			return
		case err != nil:
			el.fail(c, "write: "+err.Error(), c.waiting)
			return
		}
		c.wpos += m
	}
	el.want(c, syscall.EPOLLIN)
}

func (el *benchLoop) want(c *loopClient, events uint32) {
	ev := syscall.EpollEvent{Events: events, Fd: int32(c.fd)}
	_ = syscall.EpollCtl(el.epfd, syscall.EPOLL_CTL_MOD, c.fd, &ev)
}

// read reads once and accounts for every whole reply; false if the
// connection failed.
func (el *benchLoop) read(c *loopClient, now time.Time) bool {
	if c.n == len(c.buf) {
		c.buf = append(c.buf, make([]byte, len(c.buf))...)
	}
	m, err := syscall.Read(c.fd, c.buf[c.n:])
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return true
	case err != nil:
		el.fail(c, "read: "+err.Error(), c.waiting)
		return false
	case m == 0:
		el.fail(c, "read: the daemon closed the connection", c.waiting)
		return false
	}
	c.n += m
	lat := bucketOf(now.Sub(c.t0).Nanoseconds())
	b, err := splitReplies(c.buf[:c.n], func(body []byte) {
		el.h[lat]++
		el.n++
		c.waiting--
		if _, code, ok := wire.PeekReply(body); ok && code == wire.CodeOK {
			return
		}
		if rep, err := wire.DecodeReply(body); err != nil || rep.Err != nil {
			if el.errs == 0 {
				el.first = fmt.Sprint(errors.Join(err, errOrNil(rep.Err)))
			}
			el.errs++
		}
	})
	if err != nil {
		el.fail(c, "read: "+err.Error(), c.waiting)
		return false
	}
	c.n = copy(c.buf, b)
	return true
}

// fail ends a connection, counting its outstanding requests as errors.
func (el *benchLoop) fail(c *loopClient, msg string, lost int) {
	if el.errs == 0 {
		el.first = msg
	}
	el.errs += int64(lost)
	if c != nil {
		c.done = true
	}
}
