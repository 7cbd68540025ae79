package libcyberdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
)

// Who serves a Unix socket. The socket's path says nothing about who
// listens on it: in a directory every user may write (/tmp), any user can
// listen on the path first, and a client that connects there hands its
// requests to that user. WithServerUID makes the client check.

// ServerUIDEnv is the environment variable read for Unix sockets when
// WithServerUID is not given: a uid or a user name.
const ServerUIDEnv = "CYBERDB_SERVER_UID"

// ErrUntrustedServer is wrapped by the error of a connection refused
// because the socket is not the daemon's user's (WithServerUID).
var ErrUntrustedServer = errors.New("cyberdb: the socket is not served by the daemon's user")

// WithServerUID makes the client talk, on Unix sockets, only to a process
// of uid (the daemon's user) or of root (systemd creates the sockets of
// socket units, and the process that created a listening socket is the
// one the kernel names): it checks the peer's credentials (SO_PEERCRED)
// before it sends anything. In a directory that every user may write,
// the socket file itself must also belong to uid or root. Otherwise the
// connection fails with ErrUntrustedServer. Linux only; elsewhere the
// check cannot be made, and every connection fails. The default is
// $CYBERDB_SERVER_UID (a uid or a user name), else no check.
func WithServerUID(uid int) Option {
	return func(c *config) { c.serverUID = &uid }
}

// prepareLocal completes a Unix-socket dialer with the server uid check.
func prepareLocal(cfg *config, d *dialer) error {
	if d.remote != nil {
		return nil
	}
	if cfg.serverUID != nil {
		if *cfg.serverUID < 0 {
			return fmt.Errorf("cyberdb: WithServerUID(%d): want a uid", *cfg.serverUID)
		}
		d.serverUID = cfg.serverUID
		return nil
	}
	if v := os.Getenv(ServerUIDEnv); v != "" {
		uid, err := LookupUID(v)
		if err != nil {
			return fmt.Errorf("cyberdb: $%s: %w", ServerUIDEnv, err)
		}
		d.serverUID = &uid
	}
	return nil
}

// LookupUID reads a uid, or the uid of a user name.
func LookupUID(s string) (int, error) {
	if n, err := strconv.ParseUint(s, 10, 31); err == nil {
		return int(n), nil
	}
	u, err := user.Lookup(s)
	if err != nil {
		return 0, fmt.Errorf("no user %q (give a user name or a numeric uid)", s)
	}
	return strconv.Atoi(u.Uid)
}

// dialUnix connects to the Unix socket at d.address, checking who serves
// it when d.serverUID is set.
func (d dialer) dialUnix(ctx context.Context) (net.Conn, error) {
	want := d.serverUID
	if want != nil {
		if err := checkSocketFile(d.address, *want); err != nil {
			return nil, err
		}
	}
	nc, err := d.netDial(ctx, "unix", d.address)
	if err != nil || want == nil {
		return nc, err
	}
	uid, pid, err := peerUID(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: %s: cannot check who serves it (WithServerUID): %w", ErrUntrustedServer, d.address, err)
	}
	if uid != 0 && uid != *want {
		nc.Close()
		return nil, fmt.Errorf("%w: the process answering on %s (pid %d) runs as uid %d, not as the daemon's uid %d nor root: "+
			"refusing to talk to it (another user may be listening on the daemon's path)", ErrUntrustedServer, d.address, pid, uid, *want)
	}
	return nc, nil
}

// checkSocketFile refuses a socket in a world-writable directory that
// does not belong to uid or root. Only a file's owner may remove or
// rename it in a sticky directory such as /tmp.
func checkSocketFile(path string, uid int) error {
	dir := filepath.Dir(path)
	di, err := os.Stat(dir)
	if err != nil || di.Mode().Perm()&0o002 == 0 {
		return nil // not world-writable, or the dial will say what is wrong
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return nil // missing: the dial says so (and retries while the daemon starts)
	}
	owner, ok := fileUID(fi)
	if ok && owner != 0 && owner != uid {
		return fmt.Errorf("%w: %s is in %s, which every user may write, and belongs to uid %d, not to the daemon's uid %d nor root: "+
			"refusing to connect (another user may have put it there)", ErrUntrustedServer, path, dir, owner, uid)
	}
	return nil
}
