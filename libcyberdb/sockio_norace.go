//go:build linux && !race

package libcyberdb

import (
	"syscall"
	"unsafe"
)

// sysRead and sysWrite are sockConn's system calls: raw ones, which the
// runtime need not know of, since a non-blocking call does not block
// (sockconn_linux.go). Race-detector builds use syscall.Read and Write
// instead (sockio_race.go).
func sysRead(fd int, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

func sysWrite(fd int, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}
