package server

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerGone says whether the peer of nc has closed its connection
// altogether, not merely shut down its sending side: a Unix socket then
// polls as hung up. A TCP peer's close looks like a half-close until a
// write fails, so for TCP (and TLS) it says false.
func peerGone(nc net.Conn) bool {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return false
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return true
	}
	gone := false
	_ = rc.Control(func(fd uintptr) {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(p, 0); err == nil && n > 0 && p[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
			gone = true
		}
	})
	return gone
}
