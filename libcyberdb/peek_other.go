//go:build !unix

package libcyberdb

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// canPeek: without a way to look at a quiet connection, the reader
// goroutine reads every connection all the time (readside.go).
const canPeek = false

func peekFD(uintptr) (int, error) { return -1, errors.ErrUnsupported }

// newRawIO is never called here (canPeek is false); a connection's bytes
// go through its net.Conn.
func newRawIO(nc net.Conn, _ syscall.RawConn) io.ReadWriter { return nc }
