package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// ListenUnix listens on the Unix socket path with the given file mode.
//
// If a process answers on path it refuses, so that a second daemon never
// steals the socket of a running one; and it says plainly whose process
// that is (SO_PEERCRED): one of this daemon's user or root is another
// cyberdbd, most likely, while one of another user holds the path for
// itself and may be impersonating cyberdbd to its clients. A stale socket
// file left by a daemon that died is removed, if it is this daemon's
// user's or root's. Anything at path that is not a socket is left alone
// and reported. The returned listener removes the file on Close.
func ListenUnix(path string, mode os.FileMode) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket; remove it or choose another --socket", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		switch {
		case err == nil:
			cred, cerr := PeerCredentials(c)
			c.Close()
			if cerr != nil {
				return nil, fmt.Errorf("a process is serving on %s (address already in use) and who it is cannot be checked (%v); stop it first or choose another --socket", path, cerr)
			}
			if !trustedUID(cred.UID) {
				return nil, squatted(path, fmt.Sprintf("a process of uid %d%s (pid %d) is listening on it", cred.UID, userName(cred.UID), cred.PID))
			}
			return nil, fmt.Errorf("another cyberdbd is serving on %s (address already in use: pid %d, uid %d%s); stop it first or choose another --socket",
				path, cred.PID, cred.UID, userName(cred.UID))
		case errors.Is(err, syscall.ECONNREFUSED):
			if uid, ok := fileOwner(fi); ok && !trustedUID(uid) {
				return nil, squatted(path, fmt.Sprintf("the socket file belongs to uid %d%s", uid, userName(uid)))
			}
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

// trustedUID reports whether uid may be the owner of a process or a
// socket at the daemon's path: the daemon's own user, or root (systemd
// creates the sockets of socket units).
func trustedUID(uid uint32) bool { return uid == 0 || uid == uint32(os.Getuid()) }

// squatted is the error for a socket path held by another user.
func squatted(path, what string) error {
	return fmt.Errorf("%s is held by another user: %s, which is neither this daemon's user (uid %d) nor root. "+
		"It is not a cyberdbd of ours, and clients connecting to %s talk to it: find out who it is, and put the socket in a "+
		"directory only the daemon's user can write (e.g. /run/cyberdb), not in a world-writable one like /tmp", path, what, os.Getuid(), path)
}

// fileOwner returns the uid that owns the file fi describes.
func fileOwner(fi os.FileInfo) (uint32, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}

// userName is " (name)" for uid, or "" when it has none.
func userName(uid uint32) string {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		return " (" + u.Username + ")"
	}
	return ""
}

// WorldWritableDir reports whether the directory holding path may be
// written by every user: then another user may put a socket there first,
// or (without the sticky bit) replace this one.
func WorldWritableDir(path string) (dir string, ok bool) {
	dir = filepath.Dir(path)
	fi, err := os.Stat(dir)
	return dir, err == nil && fi.Mode().Perm()&0o002 != 0
}
