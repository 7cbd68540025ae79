package server

import (
	"errors"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peerCred reads SO_PEERCRED and, where the kernel has it, SO_PEERGROUPS.
func peerCred(fd int) (PeerCred, error) {
	uc, err := syscall.GetsockoptUcred(fd, syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	if err != nil {
		return PeerCred{}, err
	}
	cred := PeerCred{PID: uc.Pid, UID: uc.Uid, GID: uc.Gid}
	cred.Groups, err = peerGroups(fd)
	if err != nil {
		return PeerCred{}, err
	}
	return cred, nil
}

// peerGroups returns the peer's supplementary groups (SO_PEERGROUPS), or nil
// where the kernel (before 4.13) or the architecture (386, where getsockopt
// goes through socketcall) does not offer them.
func peerGroups(fd int) ([]uint32, error) {
	if sysGetsockopt == 0 {
		return nil, nil
	}
	groups := make([]uint32, 32)
	for {
		size := uint32(len(groups) * 4)
		_, _, e := unix.Syscall6(sysGetsockopt, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&groups[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch {
		case e == 0:
			return groups[:size/4], nil
		case errors.Is(e, unix.ERANGE) && int(size/4) > len(groups):
			// The kernel said how much room it needs.
			groups = make([]uint32, size/4)
		case errors.Is(e, unix.ENOPROTOOPT):
			return nil, nil
		default:
			return nil, e
		}
	}
}
