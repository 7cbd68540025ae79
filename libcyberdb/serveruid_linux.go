package libcyberdb

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// peerUID returns the uid and pid of the process at the other end of a
// Unix socket connection: for a client, the one that created the
// listening socket (SO_PEERCRED).
func peerUID(nc net.Conn) (uid, pid int, err error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return 0, 0, fmt.Errorf("%T is not a socket", nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, 0, err
	}
	if cerr != nil {
		return 0, 0, cerr
	}
	return int(cred.Uid), int(cred.Pid), nil
}

// fileUID returns the owner of the file fi describes.
func fileUID(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
