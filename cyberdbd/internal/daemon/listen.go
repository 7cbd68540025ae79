package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/options"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/server"
)

// listenUnix opens the Unix socket at o.Socket with --socket-mode and
// --socket-group.
func listenUnix(o *options.Options) (net.Listener, error) {
	gid, err := o.SocketGID()
	if err != nil {
		return nil, err
	}
	if gid < 0 {
		return server.ListenUnix(o.Socket, o.SocketMode)
	}
	// Create the socket open to its owner only, give it to the group, then
	// open it to the group: no moment at which the wrong group may connect.
	l, err := server.ListenUnix(o.Socket, o.SocketMode&0o700)
	if err != nil {
		return nil, err
	}
	if err := os.Chown(o.Socket, -1, gid); err != nil {
		l.Close()
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("--socket-group %s: %w: the daemon's user must be root or a member of that group", o.SocketGroup, err)
		}
		return nil, fmt.Errorf("--socket-group %s: %w", o.SocketGroup, err)
	}
	if err := os.Chmod(o.Socket, o.SocketMode); err != nil {
		l.Close()
		return nil, fmt.Errorf("set mode %o on %s: %w", o.SocketMode, o.Socket, err)
	}
	return l, nil
}

// socketsString lists the sockets for the ready line, e.g.
// "unix:/run/cyberdb/cyberdb.sock (from systemd)".
func (d *Daemon) socketsString() string {
	ls := d.unix
	if d.tcp != nil {
		ls = slices.Concat(ls, d.tcp.ls)
	}
	var parts []string
	for _, l := range ls {
		parts = append(parts, l.Addr().Network()+":"+l.Addr().String())
	}
	s := strings.Join(parts, ", ")
	if d.activated {
		s += " (from systemd)"
	}
	return s
}

// checkModes returns the mode of each Unix socket as the file system has
// it (stat), for the ready line, e.g. "0660"; "?" where it cannot tell (an
// abstract socket). A socket systemd passed is made by the .socket unit,
// not by --socket-mode: when it lets users connect whom --socket-mode
// would not (write permission is what connecting takes), a warning says
// so. A socket in a directory every user may write gets a warning too.
func (d *Daemon) checkModes() string {
	var modes []string
	for _, l := range d.unix {
		path := l.Addr().String()
		fi, err := os.Stat(path)
		if err != nil || strings.HasPrefix(path, "@") {
			modes = append(modes, "?")
			continue
		}
		perm := fi.Mode().Perm()
		modes = append(modes, fmt.Sprintf("%04o", perm))
		if extra := perm & 0o222 &^ d.o.SocketMode; extra != 0 {
			d.log.Warn("the socket is more open than --socket-mode: users it does not name may connect; "+
				"set SocketMode= (and SocketGroup=) in the .socket unit, or chmod the socket",
				"socket", path, "mode", fmt.Sprintf("%04o", perm), "socket_mode", fmt.Sprintf("%04o", d.o.SocketMode), "from_systemd", d.activated)
		}
		if dir, ok := server.WorldWritableDir(path); ok {
			d.log.Warn("the socket's directory is writable by every user: another user could listen on this path first, "+
				"and clients would talk to it; use a directory only cyberdbd's user can write (e.g. /run/cyberdb). "+
				"Clients can check the server's user: cyberdb --server-uid, libcyberdb.WithServerUID",
				"socket", path, "dir", dir)
		}
	}
	return strings.Join(modes, ", ")
}
