//go:build unix && !linux

package libcyberdb

import "syscall"

// canPeek: alive can look at a quiet connection without reading it, so
// callers may read their own replies (readside.go).
const canPeek = true

// peekFD looks for a byte to read on fd without taking it or waiting:
// n > 0, something to read; n == 0 with no error, the peer closed;
// an error (EAGAIN), nothing yet.
func peekFD(fd uintptr) (int, error) {
	var b [1]byte
	n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	if err != nil {
		return -1, err
	}
	return n, nil
}
