// Package daemontest starts the real cyberdbd binary for integration tests:
// it builds the daemon once per test process (Build; Main removes the
// binaries when the tests end), runs it on a socket in a temporary
// directory, waits until it answers, and stops it at cleanup. Tests then
// talk to it over the real protocol, with [Dial] for raw frames or with
// libcyberdb ([Open]). It also holds what the tests of several packages
// share: a buffer safe for concurrent writers ([Buffer]), a load that
// keeps a daemon busy while it restarts ([Hammer]), and [Must]. With
// $CYBERDB_COVERDIR set, the binaries are built with -cover (see
// CoverDirEnv).
package daemontest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Env is the environment daemons run with: the test's, and, unless
// GORACE says otherwise, a race detector that waits 100ms rather than its
// default second at exit for late race reports. Every daemon stop of a
// -race run paid that second: half the time of the persist tests.
func Env() []string {
	env := os.Environ()
	if _, ok := os.LookupEnv("GORACE"); !ok {
		env = append(env, "GORACE=atexit_sleep_ms=100")
	}
	return env
}

// Daemon is a running cyberdbd.
type Daemon struct {
	Socket string // path of its Unix socket
	Dir    string // its temporary directory
	Bin    string // the binary (Binary when empty); Restart runs it again
	Args   []string
	Cmd    *exec.Cmd
	stderr *Buffer
	done   chan struct{}
	err    error // Wait's result, after done

	prepare func(*exec.Cmd) // adjusts each start's command: see StartActivated
}

// Start runs cyberdbd with --socket in a fresh temp dir plus the given
// flags, waits until it answers HELLO, and stops it when the test ends.
// A flag "--socket=..." in args overrides the default socket.
func Start(t testing.TB, args ...string) *Daemon {
	t.Helper()
	return StartBinary(t, "", args...)
}

// StartBinary is Start with another build of cyberdbd (FailpointBinary,
// Build); "" is Binary.
func StartBinary(t testing.TB, bin string, args ...string) *Daemon {
	t.Helper()
	dir := ShortTempDir(t)
	d := &Daemon{Dir: dir, Bin: bin, Socket: filepath.Join(dir, "cyberdb.sock")}
	hasSocket := false
	for _, a := range args {
		if strings.HasPrefix(a, "--socket=") {
			d.Socket = strings.TrimPrefix(a, "--socket=")
			hasSocket = true
		}
	}
	if !hasSocket {
		args = append([]string{"--socket=" + d.Socket}, args...)
	}
	d.Args = args
	d.start(t)
	t.Cleanup(func() { d.Stop(t) })
	return d
}

func (d *Daemon) start(t testing.TB) {
	t.Helper()
	d.stderr = &Buffer{}
	bin := d.Bin
	if bin == "" {
		bin = Binary(t)
	}
	d.Cmd = exec.Command(bin, d.Args...)
	d.Cmd.Env = Env()
	// In its temp dir, so that the default --data-dir (./cyberdb-data)
	// belongs to this daemon and survives its Restart.
	d.Cmd.Dir = d.Dir
	d.Cmd.Stderr = d.stderr
	d.Cmd.Stdout = d.stderr
	if d.prepare != nil {
		d.prepare(d.Cmd)
	}
	if err := d.Cmd.Start(); err != nil {
		t.Fatalf("start cyberdbd: %v", err)
	}
	d.done = make(chan struct{})
	go func() { d.err = d.Cmd.Wait(); close(d.done) }()
	if err := WaitReady(d.Socket, 30*time.Second, d.done); err != nil {
		t.Fatalf("cyberdbd did not become ready: %v\nits output:\n%s", err, d.stderr.String())
	}
}

// Restart starts the daemon again with the same flags after it has exited.
func (d *Daemon) Restart(t testing.TB) {
	t.Helper()
	select {
	case <-d.done:
	default:
		t.Fatal("Restart: the daemon is still running")
	}
	d.start(t)
}

// Kill sends SIGKILL and waits for the process to end.
func (d *Daemon) Kill(t testing.TB) {
	t.Helper()
	_ = d.Cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
}

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig os.Signal) error { return d.Cmd.Process.Signal(sig) }

// Wait waits up to timeout for the daemon to exit; exited says whether it
// did, and err is its exit status.
func (d *Daemon) Wait(timeout time.Duration) (exited bool, err error) {
	select {
	case <-d.done:
		return true, d.err
	case <-time.After(timeout):
		return false, nil
	}
}

// Stop sends SIGTERM, waits for a clean exit, and fails the test if the
// daemon had to be killed or exited with an error. Safe to call twice.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.Cmd.Process.Signal(syscall.SIGTERM)
	if ok, err := d.Wait(20 * time.Second); !ok {
		_ = d.Cmd.Process.Kill()
		<-d.done
		t.Errorf("cyberdbd did not stop within 20s of SIGTERM\nits output:\n%s", d.stderr.String())
	} else if err != nil {
		t.Errorf("cyberdbd exited with %v after SIGTERM\nits output:\n%s", err, d.stderr.String())
	}
}

// Output is what the daemon has written to stderr and stdout so far.
func (d *Daemon) Output() string { return d.stderr.String() }

// WaitReady dials socket until a HELLO round trip succeeds, the timeout
// passes, or exited is closed.
func WaitReady(socket string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("the daemon exited")
		default:
		}
		c, err := net.DialTimeout("unix", socket, time.Second)
		if err == nil {
			rc := &Conn{nc: c}
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			_, err = rc.Hello()
			if err == nil {
				// Wait for the daemon to close its end: then this probe
				// no longer counts against --max-conns (a test of the
				// limit that dials at once would find it counted).
				_ = c.(*net.UnixConn).CloseWrite()
				_, _ = io.Copy(io.Discard, c)
			}
			c.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no answer on %s within %s: %v", socket, timeout, last)
}

// ShortTempDir returns a temp dir with a short path: Unix socket paths are
// limited to 108 bytes, and t.TempDir() paths can be longer.
func ShortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cdb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
