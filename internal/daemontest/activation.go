package daemontest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// HeldSocket is a listening Unix socket that the test holds open the way
// systemd holds a .socket unit's socket: it outlives the daemons it is
// passed to, so connections made while no daemon runs wait in its backlog.
type HeldSocket struct {
	Path string
	file *os.File // the listening socket, passed as fd 3
}

// HoldSocket listens on a Unix socket in a fresh temp dir (mode 0660, as
// cyberdbd.socket sets) and closes it when the test ends. The test never
// accepts on it: that is the daemons' job.
func HoldSocket(t testing.TB) *HeldSocket {
	t.Helper()
	path := filepath.Join(ShortTempDir(t), "cyberdb.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		t.Fatal(err)
	}
	f, err := l.File() // a dup: closing l below leaves the socket open
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	t.Cleanup(func() { f.Close() })
	return &HeldSocket{Path: path, file: f}
}

// ActivationOptions are what StartActivated passes besides the socket.
type ActivationOptions struct {
	// FDName is $LISTEN_FDNAMES, systemd's FileDescriptorName=; "unix" by
	// default, "-" for none.
	FDName string
	// Env is added to the daemon's environment (e.g. NOTIFY_SOCKET=...).
	Env []string
}

// StartActivated runs cyberdbd as systemd does for a socket unit: the held
// socket is its fd 3, with LISTEN_FDS=1, LISTEN_FDNAMES and LISTEN_PID set
// to the daemon's own pid. It waits until the daemon answers HELLO and
// stops it when the test ends. Restart starts a new daemon on the same
// socket, as systemd does on "systemctl restart".
func StartActivated(t testing.TB, s *HeldSocket, opt ActivationOptions, args ...string) *Daemon {
	t.Helper()
	d := &Daemon{Dir: filepath.Dir(s.Path), Socket: s.Path, Args: args, prepare: s.activate(opt)}
	d.start(t)
	t.Cleanup(func() { d.Stop(t) })
	return d
}

// Command returns, not started, the command that runs cyberdbd with args
// and the held socket passed as StartActivated does: for tests of what the
// daemon does at start-up.
func (s *HeldSocket) Command(t testing.TB, opt ActivationOptions, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Dir = filepath.Dir(s.Path) // the default --data-dir lands in the temp dir
	s.activate(opt)(cmd)
	return cmd
}

// activate returns what turns a daemon command into one that receives the
// socket as from systemd.
func (s *HeldSocket) activate(opt ActivationOptions) func(*exec.Cmd) {
	name := opt.FDName
	if name == "" {
		name = "unix"
	}
	return func(cmd *exec.Cmd) {
		// LISTEN_PID must be the daemon's pid, known only after the fork:
		// a shell sets it to its own pid and execs the daemon in its place.
		cmd.Args = append([]string{"sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, cmd.Path}, cmd.Args[1:]...)
		cmd.Path = "/bin/sh"
		cmd.Env = append(Env(), "LISTEN_FDS=1")
		if name != "-" {
			cmd.Env = append(cmd.Env, "LISTEN_FDNAMES="+name)
		}
		cmd.Env = append(cmd.Env, opt.Env...)
		cmd.ExtraFiles = []*os.File{s.file}
	}
}

// Notifications collects what a daemon sends to $NOTIFY_SOCKET, as systemd
// receives sd_notify(3) messages.
type Notifications struct {
	Path string // the value for NOTIFY_SOCKET
	conn *net.UnixConn

	mu   sync.Mutex // guards msgs
	msgs []string
	more chan struct{}
}

// ListenNotify opens a notification socket, closed when the test ends.
func ListenNotify(t testing.TB) *Notifications {
	t.Helper()
	path := filepath.Join(ShortTempDir(t), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &Notifications{Path: path, conn: c, more: make(chan struct{}, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
			select {
			case n.more <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { c.Close() })
	return n
}

// All returns the messages received so far, oldest first.
func (n *Notifications) All() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.msgs...)
}

// WaitFor waits up to timeout for a message, after the first skip ones,
// that has a line equal to line (e.g. "READY=1"), and returns its index.
func (n *Notifications) WaitFor(skip int, line string, timeout time.Duration) (int, error) {
	deadline := time.After(timeout)
	for {
		for i, m := range n.All() {
			if i < skip {
				continue
			}
			for _, l := range strings.Split(m, "\n") {
				if l == line {
					return i, nil
				}
			}
		}
		select {
		case <-n.more:
		case <-deadline:
			return 0, fmt.Errorf("no %q notification after message %d within %s; got %q", line, skip, timeout, n.All())
		}
	}
}

// Wrap makes a raw protocol connection of nc, for clients that dial
// themselves (other users, their own retry rules).
func Wrap(nc net.Conn) *Conn { return &Conn{nc: nc} }
