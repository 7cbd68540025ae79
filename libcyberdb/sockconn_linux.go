//go:build linux

package libcyberdb

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// sockConn is a connection's Unix socket once HELLO is done, read and
// written with raw system calls, waiting in epoll instances of its own.
//
// Why: a worker process waiting for its daemon between calls sleeps at
// every call, and two costs of net.Conn land on that path:
//   - Go's poller watches a socket for writability as well as for
//     input. Each time the daemon reads a request, the kernel reports
//     the freed room (unix_write_space), which woke the worker's
//     sleeping poller thread for nothing, at the daemon's expense too:
//     two context switches per call instead of one.
//   - net.Conn's Read and Write are ordinary system calls, and entering
//     one wakes the runtime's sysmon thread whenever it sleeps, which it
//     does each time the process goes idle.
//
// perf put the two at half of a queue consumer's CPU (make bench-redis,
// queue). So the socket leaves Go's poller: it is a duplicate of the
// dialed descriptor, whose net.Conn is closed. Input is watched by an
// epoll instance of its own (rd) that asks for input only, and Go's
// poller watches that instance: it wakes when a reply comes, never for
// room. A write that finds the socket full asks a second instance (wr)
// for room while it waits. Reads and writes are syscall.RawSyscall on
// the non-blocking socket, made in the instances' RawConn callbacks, so
// that deadlines and Close work as on any file: Close waits for
// callbacks in progress before the socket's descriptor is closed.
//
// One reader and one writer at a time (the read side's holder; the
// writer): each direction keeps its own state, and its callback is made
// once, where a closure per call would allocate.
type sockConn struct {
	net.Conn          // the dialed connection, closed: its addresses
	fd       int      // the socket
	rd, wr   *os.File // epoll instances: rd has fd for input; wr, while a write waits for room
	rdRC     syscall.RawConn
	wrRC     syscall.RawConn
	closed   atomic.Bool

	rbuf   []byte
	rn     int
	rerr   error
	readFn func(uintptr) bool

	wbuf    []byte
	wn      int
	werr    error
	armed   bool // fd is in wr, for EPOLLOUT
	writeFn func(uintptr) bool

	ctlFn func(uintptr) // Control's callback: ctl on fd
	ctl   func(fd uintptr)

	cleanup runtime.Cleanup // closes fd if s is lost unclosed, as net.Conn's finalizer would
}

// newSockConn takes over nc, a *net.UnixConn whose RawConn is rc. On
// an error, nc is left as it was, still open.
func newSockConn(nc net.Conn, rc syscall.RawConn) (_ *sockConn, err error) {
	fd := -1
	if cerr := rc.Control(func(s uintptr) { fd, err = dupCloexec(int(s)) }); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	s := &sockConn{Conn: nc, fd: fd}
	defer func() {
		if err != nil {
			s.rd.Close() // (nil-safe)
			s.wr.Close()
			syscall.Close(fd)
		}
	}()
	if s.rd, s.rdRC, err = epollFile(fd, syscall.EPOLLIN|syscall.EPOLLRDHUP); err != nil {
		return nil, err
	}
	if s.wr, s.wrRC, err = epollFile(-1, 0); err != nil {
		return nil, err
	}
	s.readFn, s.writeFn, s.ctlFn = s.read, s.write, s.control
	s.cleanup = runtime.AddCleanup(s, closeFD, fd)
	nc.Close() // the duplicate keeps the socket open
	return s, nil
}

// epollFile returns a new epoll instance, watching fd for events if fd
// is not -1, as a file in Go's poller.
func epollFile(fd int, events uint32) (*os.File, syscall.RawConn, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, nil, os.NewSyscallError("epoll_create1", err)
	}
	if fd >= 0 {
		ev := syscall.EpollEvent{Events: events, Fd: int32(fd)}
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			syscall.Close(ep)
			return nil, nil, os.NewSyscallError("epoll_ctl", err)
		}
	}
	if err := syscall.SetNonblock(ep, true); err != nil {
		syscall.Close(ep)
		return nil, nil, err
	}
	f := os.NewFile(uintptr(ep), "cyberdb-epoll")
	// A file Go's poller does not take has no deadlines; its RawConn
	// would call back without waiting.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, rc, nil
}

func dupCloexec(fd int) (int, error) {
	r, _, e := syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if e != 0 {
		return -1, os.NewSyscallError("fcntl", e)
	}
	return int(r), nil
}

func (s *sockConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.rbuf, s.rn, s.rerr = p, 0, nil
	err := s.rdRC.Read(s.readFn)
	s.rbuf = nil
	if err != nil {
		return 0, s.opError("read", err) // a deadline, or closed
	}
	return s.rn, s.rerr
}

// read is one attempt on the socket: false when it has nothing yet (the
// poller waits for rd), true with rn and rerr set otherwise.
func (s *sockConn) read(uintptr) bool {
	for {
		n, e := sysRead(s.fd, s.rbuf)
		switch e {
		case 0:
			if n == 0 {
				s.rerr = io.EOF
			}
			s.rn = n
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.rerr = s.opError("read", os.NewSyscallError("read", e))
			return true
		}
	}
}

func (s *sockConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.wbuf, s.wn, s.werr = p, 0, nil
	err := s.wrRC.Read(s.writeFn)
	if s.armed { // the wait ended early: a deadline, or closed
		_ = s.wrRC.Control(s.disarm)
	}
	n := s.wn
	s.wbuf = nil
	if err != nil {
		return n, s.opError("write", err)
	}
	return n, s.werr
}

// write writes what is left of wbuf: false when the socket is full (fd
// is then in wr, whose readiness the poller waits for), true when all is
// written or on an error.
func (s *sockConn) write(ep uintptr) bool {
	for s.wn < len(s.wbuf) {
		rest := s.wbuf[s.wn:]
		n, e := sysWrite(s.fd, rest)
		switch e {
		case 0:
			s.wn += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			if !s.armed {
				ev := syscall.EpollEvent{Events: syscall.EPOLLOUT, Fd: int32(s.fd)}
				if err := syscall.EpollCtl(int(ep), syscall.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
					s.werr = s.opError("write", os.NewSyscallError("epoll_ctl", err))
					return true
				}
				s.armed = true
			}
			return false
		default:
			s.werr = s.opError("write", os.NewSyscallError("write", e))
			s.disarm(ep)
			return true
		}
	}
	s.disarm(ep)
	return true
}

// disarm takes fd out of wr: watched for room, it would wake the poller
// each time the daemon reads.
func (s *sockConn) disarm(ep uintptr) {
	if s.armed {
		_ = syscall.EpollCtl(int(ep), syscall.EPOLL_CTL_DEL, s.fd, nil)
		s.armed = false
	}
}

// Control calls f with the socket's descriptor, which stays open
// meanwhile (alive's peek). One caller at a time (conn.mu).
func (s *sockConn) Control(f func(fd uintptr)) error {
	s.ctl = f
	err := s.rdRC.Control(s.ctlFn)
	s.ctl = nil
	return err
}

func (s *sockConn) control(uintptr) { s.ctl(uintptr(s.fd)) }

// opError wraps err as net.Conn's methods would; a closed connection's
// error is net.ErrClosed.
func (s *sockConn) opError(op string, err error) error {
	if s.closed.Load() && !errors.Is(err, os.ErrDeadlineExceeded) {
		err = net.ErrClosed
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return err
	}
	return &net.OpError{Op: op, Net: "unix", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: err}
}

func (s *sockConn) SetDeadline(t time.Time) error {
	if err := s.rd.SetReadDeadline(t); err != nil {
		return err
	}
	return s.wr.SetReadDeadline(t)
}
func (s *sockConn) SetReadDeadline(t time.Time) error  { return s.rd.SetReadDeadline(t) }
func (s *sockConn) SetWriteDeadline(t time.Time) error { return s.wr.SetReadDeadline(t) }

// CloseWrite shuts the socket's sending side (conn.writeFailed).
func (s *sockConn) CloseWrite() error {
	var err error
	if cerr := s.rdRC.Control(func(uintptr) { err = syscall.Shutdown(s.fd, syscall.SHUT_WR) }); cerr != nil {
		return s.opError("close", cerr)
	}
	if err != nil {
		return s.opError("close", os.NewSyscallError("shutdown", err))
	}
	return nil
}

// Close ends waits in progress (they return net.ErrClosed), waits for
// the system calls in progress, and closes the socket.
func (s *sockConn) Close() error {
	if s.closed.Swap(true) {
		return s.opError("close", net.ErrClosed)
	}
	s.rd.Close() // returns once no callback runs
	s.wr.Close()
	s.cleanup.Stop()
	return syscall.Close(s.fd)
}

func closeFD(fd int) { syscall.Close(fd) }

// canPeek: alive can look at a quiet connection without reading it, so
// callers may read their own replies (readside.go).
const canPeek = true

// peekFD looks for a byte to read on fd without taking it or waiting:
// n > 0, something to read; n == 0 with no error, the peer closed;
// an error (EAGAIN), nothing yet. A raw call, as sockConn's.
func peekFD(fd uintptr) (int, error) {
	var b [1]byte
	n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
