//go:build linux && !386

package server

import "golang.org/x/sys/unix"

// sysGetsockopt is the getsockopt system call, used for SO_PEERGROUPS.
const sysGetsockopt = unix.SYS_GETSOCKOPT
