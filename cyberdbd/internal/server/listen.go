package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// ListenUnix listens on the Unix socket path with the given file mode.
//
// If a live daemon answers on path it refuses, so that a second daemon
// never steals the socket of a running one. A stale socket file left by a
// daemon that died is removed. Anything at path that is not a socket is
// left alone and reported. The returned listener removes the file on Close.
func ListenUnix(path string, mode os.FileMode) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket; remove it or choose another --socket", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		switch {
		case err == nil:
			c.Close()
			return nil, fmt.Errorf("another cyberdbd is serving on %s (address already in use); stop it first or choose another --socket", path)
		case errors.Is(err, syscall.ECONNREFUSED):
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
			}
		default:
			return nil, fmt.Errorf("check existing socket %s: %w", path, err)
		}
	}
	// Create the socket with its final mode (no window in which it is
	// more open than asked): umask is process-wide, and at start-up
	// nothing else is creating files.
	old := syscall.Umask(int(^mode & 0o777))
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		return nil, fmt.Errorf("set mode %o on %s: %w", mode, path, err)
	}
	return l, nil
}
