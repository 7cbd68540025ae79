package main

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/server"
)

// The FileDescriptorName= of the sockets cyberdbd takes from systemd.
const (
	fdNameUnix = "unix" // cyberdbd.socket: served like --socket
	fdNameTCP  = "tcp"  // cyberdbd-tcp.socket: for the TCP listener
)

// listeners are the sockets the daemon serves: those systemd passed
// (socket activation), or the one it opened itself at --socket.
type listeners struct {
	// Unix are served like --socket: systemd's sockets named "unix" (or
	// unnamed Unix sockets, as systemd-socket-activate passes without
	// --fdname), else the socket opened at --socket.
	Unix []net.Listener
	// TCP are systemd's sockets named "tcp" (or unnamed TCP sockets), for
	// the TCP listener to serve.
	TCP []net.Listener
	// Activated says systemd passed the sockets ($LISTEN_FDS). They belong
	// to systemd, which keeps them open while cyberdbd restarts, so they
	// are never unlinked.
	Activated bool
}

// openListeners takes the sockets systemd passed, if any, and opens the
// Unix socket at cfg.socket when systemd passed none. Call it once: it
// consumes $LISTEN_FDS.
func openListeners(cfg *config) (*listeners, error) {
	ls, err := activationListeners()
	if err != nil {
		return nil, err
	}
	if len(ls.Unix) == 0 {
		l, err := listenUnix(cfg)
		if err != nil {
			ls.Close()
			return nil, err
		}
		ls.Unix = append(ls.Unix, l)
	}
	return ls, nil
}

// activationListeners returns the sockets passed by systemd, sorted by
// FileDescriptorName=, and an empty set when it passed none.
func activationListeners() (*listeners, error) {
	ls := &listeners{}
	passed := 0
	if os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) {
		passed, _ = strconv.Atoi(os.Getenv("LISTEN_FDS"))
	}
	// Also unsets $LISTEN_PID, $LISTEN_FDS and $LISTEN_FDNAMES.
	byName, err := activation.ListenersWithNames()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	if passed <= 0 {
		return ls, nil
	}
	ls.Activated = true
	got := 0
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		for _, l := range byName[name] {
			got++
			network := l.Addr().Network()
			switch {
			case name == fdNameUnix && network == "unix":
				ls.Unix = append(ls.Unix, l)
			case name == fdNameTCP && network == "tcp":
				ls.TCP = append(ls.TCP, l)
			case strings.HasPrefix(name, "LISTEN_FD_") && network == "unix":
				ls.Unix = append(ls.Unix, l)
			case strings.HasPrefix(name, "LISTEN_FD_") && network == "tcp":
				ls.TCP = append(ls.TCP, l)
			default:
				l.Close()
				ls.Close()
				return nil, fmt.Errorf("socket activation: systemd passed a %s socket named %q (%s); cyberdbd takes FileDescriptorName=%s "+
					"for its Unix socket and FileDescriptorName=%s for TCP: fix the .socket unit", network, name, l.Addr(), fdNameUnix, fdNameTCP)
			}
		}
	}
	if got < passed {
		ls.Close()
		return nil, fmt.Errorf("socket activation: systemd passed %d sockets but only %d are listening stream sockets; "+
			"cyberdbd's .socket units need ListenStream= (and no Accept=yes)", passed, got)
	}
	for _, l := range ls.Unix {
		if ul, ok := l.(*net.UnixListener); ok {
			// The socket file is systemd's: it must outlive this process so
			// that clients connecting during a restart wait in its backlog.
			ul.SetUnlinkOnClose(false)
		}
	}
	return ls, nil
}

// listenUnix opens the Unix socket at cfg.socket with --socket-mode and
// --socket-group.
func listenUnix(cfg *config) (net.Listener, error) {
	if cfg.socketGID < 0 {
		return server.ListenUnix(cfg.socket, cfg.socketMode)
	}
	// Create the socket open to its owner only, give it to the group, then
	// open it to the group: no moment at which the wrong group may connect.
	l, err := server.ListenUnix(cfg.socket, cfg.socketMode&0o700)
	if err != nil {
		return nil, err
	}
	if err := os.Chown(cfg.socket, -1, cfg.socketGID); err != nil {
		l.Close()
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("--socket-group %s: %w: the daemon's user must be root or a member of that group", cfg.socketGroup, err)
		}
		return nil, fmt.Errorf("--socket-group %s: %w", cfg.socketGroup, err)
	}
	if err := os.Chmod(cfg.socket, cfg.socketMode); err != nil {
		l.Close()
		return nil, fmt.Errorf("set mode %o on %s: %w", cfg.socketMode, cfg.socket, err)
	}
	return l, nil
}

// String lists the sockets for the log, e.g.
// "unix:/run/cyberdb/cyberdb.sock (from systemd)".
func (ls *listeners) String() string {
	var parts []string
	for _, l := range slices.Concat(ls.Unix, ls.TCP) {
		parts = append(parts, l.Addr().Network()+":"+l.Addr().String())
	}
	s := strings.Join(parts, ", ")
	if ls.Activated {
		s += " (from systemd)"
	}
	return s
}

// Close closes every listener (for errors before serving; once serving,
// Server.Shutdown closes them).
func (ls *listeners) Close() {
	for _, l := range slices.Concat(ls.Unix, ls.TCP) {
		l.Close()
	}
}

// checkModes returns the mode of each Unix socket as the file system has
// it (stat), for the ready line, e.g. "0660"; "?" where it cannot tell (an
// abstract socket). A socket systemd passed is made by the .socket unit,
// not by --socket-mode: when it lets users connect whom --socket-mode
// would not (write permission is what connecting takes), a warning says
// so. A socket in a directory every user may write gets a warning too.
func (ls *listeners) checkModes(cfg *config, log *slog.Logger) string {
	var modes []string
	for _, l := range ls.Unix {
		path := l.Addr().String()
		fi, err := os.Stat(path)
		if err != nil || strings.HasPrefix(path, "@") {
			modes = append(modes, "?")
			continue
		}
		perm := fi.Mode().Perm()
		modes = append(modes, fmt.Sprintf("%04o", perm))
		if extra := perm & 0o222 &^ cfg.socketMode; extra != 0 {
			log.Warn("the socket is more open than --socket-mode: users it does not name may connect; "+
				"set SocketMode= (and SocketGroup=) in the .socket unit, or chmod the socket",
				"socket", path, "mode", fmt.Sprintf("%04o", perm), "socket_mode", fmt.Sprintf("%04o", cfg.socketMode), "from_systemd", ls.Activated)
		}
		if dir, ok := server.WorldWritableDir(path); ok {
			log.Warn("the socket's directory is writable by every user: another user could listen on this path first, "+
				"and clients would talk to it; use a directory only cyberdbd's user can write (e.g. /run/cyberdb). "+
				"Clients can check the server's user: cyberdb --server-uid, libcyberdb.WithServerUID",
				"socket", path, "dir", dir)
		}
	}
	return strings.Join(modes, ", ")
}
