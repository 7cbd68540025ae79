//go:build linux

package libcyberdb

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a connection's Unix socket with raw system calls
// (syscall.RawSyscall) on its non-blocking descriptor, waiting for
// readiness and honouring deadlines and Close through the runtime's
// poller (syscall.RawConn).
//
// Why: net.Conn's Read and Write make ordinary system calls, and on
// entering one the runtime wakes its monitor thread (sysmon) whenever
// that thread sleeps, which it does whenever the process has gone idle.
// A worker process that waits for its daemon between calls goes idle at
// every call, so each call paid a futex wake-up and a context switch for
// sysmon: a quarter of a queue consumer's CPU in the benchmark
// (make bench-redis, queue). A call on a non-blocking socket never
// blocks, so it needs none of that bookkeeping; the daemon's loops make
// theirs the same way.
//
// A rawIO has one reader and one writer at a time (the read side's
// holder; the writer): each direction keeps its own state, and its
// closure is made once, as RawConn.Read would otherwise allocate one per
// call.
type rawIO struct {
	net.Conn
	rc syscall.RawConn

	rbuf   []byte
	rn     int
	rerr   error
	readFn func(fd uintptr) bool

	wbuf    []byte
	wn      int
	werr    error
	writeFn func(fd uintptr) bool
}

// newRawIO wraps nc, a *net.UnixConn whose RawConn is rc.
func newRawIO(nc net.Conn, rc syscall.RawConn) io.ReadWriter {
	r := &rawIO{Conn: nc, rc: rc}
	r.readFn = r.read
	r.writeFn = r.write
	return r
}

func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.rbuf, r.rn, r.rerr = p, 0, nil
	err := r.rc.Read(r.readFn)
	r.rbuf = nil
	if err != nil {
		return 0, err // a deadline, or the connection closed
	}
	return r.rn, r.rerr
}

// read is one attempt: false when the socket has nothing yet (the poller
// waits for it), true with rn and rerr set otherwise.
func (r *rawIO) read(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.rbuf[0])), uintptr(len(r.rbuf)))
		switch e {
		case 0:
			if n == 0 {
				r.rerr = io.EOF
			}
			r.rn = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			r.rerr = &net.OpError{Op: "read", Net: "unix", Source: r.LocalAddr(), Addr: r.RemoteAddr(), Err: os.NewSyscallError("read", e)}
			return true
		}
	}
}

func (r *rawIO) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.wbuf, r.wn, r.werr = p, 0, nil
	err := r.rc.Write(r.writeFn)
	n := r.wn
	r.wbuf = nil
	if err == nil {
		err = r.werr
	}
	return n, err
}

// write writes what is left of wbuf: false when the socket's buffer is
// full (the poller waits for room), true when all is written or on an
// error.
func (r *rawIO) write(fd uintptr) bool {
	for r.wn < len(r.wbuf) {
		rest := r.wbuf[r.wn:]
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch e {
		case 0:
			r.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			r.werr = &net.OpError{Op: "write", Net: "unix", Source: r.LocalAddr(), Addr: r.RemoteAddr(), Err: os.NewSyscallError("write", e)}
			return true
		}
	}
	return true
}

// canPeek: alive can look at a quiet connection without reading it, so
// callers may read their own replies (readside.go).
const canPeek = true

// peekFD looks for a byte to read on fd without taking it or waiting:
// n > 0, something to read; n == 0 with no error, the peer closed;
// an error (EAGAIN), nothing yet. A raw call, as rawIO's.
func peekFD(fd uintptr) (int, error) {
	var b [1]byte
	n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
