//go:build !linux

package libcyberdb

import (
	"errors"
	"net"
	"syscall"
)

// sockConn is Linux's (sockconn_linux.go); elsewhere a connection's
// bytes go through its net.Conn.
type sockConn struct{ net.Conn }

func newSockConn(net.Conn, syscall.RawConn) (*sockConn, error) { return nil, errors.ErrUnsupported }

func (*sockConn) Control(func(fd uintptr)) error { return errors.ErrUnsupported }
