package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair with the standard library and
// x/sys: the controlling side and the terminal a program gets.
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here (/dev/ptmx: %v)", err)
	}
	ptm = os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil { // unlockpt
		ptm.Close()
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN) // ptsname
	if err != nil {
		ptm.Close()
		t.Skipf("ptsname: %v", err)
	}
	pts, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		ptm.Close()
		t.Skipf("open the terminal: %v", err)
	}
	t.Cleanup(func() { ptm.Close(); pts.Close() })
	return ptm, pts
}

// screen collects what the program writes to its terminal.
type screen struct{ daemontest.Buffer }

// waitFor waits until the screen shows want n times in all.
func (s *screen) waitFor(t *testing.T, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(s.String(), want) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q (%d times):\n%s", want, n, s.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPromptOnATerminal runs the real binary on a pseudo-terminal, as a
// person would: with no command it opens the prompt (the daemon's address
// in it), runs commands, keeps going after an error, recalls a line with
// Up, and leaves on Ctrl-D with status 0, its history saved.
func TestPromptOnATerminal(t *testing.T) {
	t.Parallel()
	d := daemontest.Start(t)
	ptm, pts := openPTY(t)
	hist := filepath.Join(t.TempDir(), "history")
	cmd := exec.Command(buildCLI(t), "-s", d.Socket)
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0", HistoryEnv+"="+hist, "TERM=xterm")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pts.Close() // the child has it
	scr := &screen{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := ptm.Read(b)
			scr.Write(b[:n])
			if err != nil {
				return
			}
		}
	}()
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill() // when a check failed; harmless after the end
		<-exited
	})

	prompt := "cyberdb " + d.Socket + "> "
	scr.waitFor(t, prompt, 1)
	typeIn := func(s string) {
		t.Helper()
		if _, err := ptm.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	typeIn("create list q '[1, 2]'\r")
	scr.waitFor(t, prompt, 2)
	typeIn("at q -1\r")
	scr.waitFor(t, "2\r\n", 1) // the terminal's output turns \n into \r\n: the mode was restored
	scr.waitFor(t, prompt, 3)
	typeIn("at q 7\r")
	scr.waitFor(t, "(error) at: index_out_of_range", 1)
	scr.waitFor(t, prompt, 4)
	typeIn("append q x\x1b[Dy\r") // line editing: Left, then y: "append q yx"
	scr.waitFor(t, "3\r\n", 1)
	scr.waitFor(t, prompt, 5)
	typeIn("\x1b[A\x1b[A\x1b[A\r") // Up three times: "at q -1"
	scr.waitFor(t, prompt, 6)
	typeIn("tolist q\r")
	scr.waitFor(t, `[1,2,"yx"]`, 1)
	scr.waitFor(t, prompt, 7)
	typeIn("\x04") // Ctrl-D
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("after Ctrl-D: %v\n%s", waitErr, scr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("Ctrl-D did not end the prompt:\n%s", scr.String())
	}
	if !strings.Contains(scr.String(), "\"yx\"\r\n") { // the last value, by the recalled "at q -1"
		t.Errorf("Up did not recall 'at q -1':\n%s", scr.String())
	}
	b, _ := os.ReadFile(hist)
	if want := "create list q '[1, 2]'\nat q -1\nat q 7\nappend q yx\nat q -1\ntolist q\n"; string(b) != want {
		t.Errorf("history file %q, want %q", b, want)
	}
}

// TestPermissionDenied runs the CLI as a user outside the group of the
// socket's directory (the packaged daemon's /run/cyberdb is 0750, group
// cyberdb). Before the fix the client could not even stat the socket,
// took it for absent and said "cannot connect to ./cyberdb.sock"; now
// EACCES counts as "the socket is there", and the error names the
// directory, its mode and group, and the command that fixes it.
func TestPermissionDenied(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("needs root, to run the client as another user (nobody)")
	}
	base, err := os.MkdirTemp("", "cdbperm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	run := filepath.Join(base, "run")
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(run, 0o750); err != nil { // root:root, as /run/cyberdb is cyberdb:cyberdb
		t.Fatal(err)
	}
	sock := filepath.Join(run, "cyberdb.sock")
	daemontest.Start(t, "--socket="+sock)
	src, err := os.ReadFile(buildCLI(t))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "cyberdb")
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-s", sock, "ping")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "GORACE=atexit_sleep_ms=0"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailed {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	for _, want := range []string{"cannot connect to " + sock, "permission denied", run + " is mode 0750", "group root",
		"user nobody is not in group root", "sudo usermod -aG root nobody", "log in again"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the error does not say %q:\n%s", want, out)
		}
	}
}
