//go:build linux && race

package libcyberdb

import "syscall"

// sysRead and sysWrite, in race-detector builds: syscall.Read and Write
// tell the detector that what one goroutine wrote before a write happened
// before what another does after a read (as all of Go's I/O does); the
// raw calls of other builds (sockio_norace.go) would not, and the
// detector would report a call released by its caller after its reply
// while the writer had read it before sending it.
func sysRead(fd int, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(fd, p)
	return max(n, 0), errno(err)
}

func sysWrite(fd int, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(fd, p)
	return max(n, 0), errno(err)
}

func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	return err.(syscall.Errno)
}
