package main

// The watchdog and readiness tell the truth (issue 12, section 4): each
// WATCHDOG=1 depends on a round trip through every event loop, the store
// and the log's writer; READY=1 and "cyberdbd ready" come only once
// requests are answered; reloads have a time limit. The parts are wedged
// with the test hooks of cyberdbd/internal/daemon/testhooks.go (build tag
// cyberdbtest, which daemontest's binary has and releases do not).

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
)

// noLine requires that no message after the first skip has line.
func noLine(t *testing.T, n *daemontest.Notifications, skip int, line string) {
	t.Helper()
	for i, m := range n.All() {
		if i < skip {
			continue
		}
		for _, l := range strings.Split(m, "\n") {
			if l == line {
				t.Fatalf("message %d %q has %s", i, m, line)
			}
		}
	}
}

// TestWatchdogNeedsEveryPart wedges, in turn, an event loop, a table's
// lock, the log's writer and the log's file lock (as a hung fsync holds
// it): the pings stop, the log and STATUS= say which part is stuck, and
// the pings come back once it is released. The ping used to depend only
// on counters read without any of those locks.
func TestWatchdogNeedsEveryPart(t *testing.T) {
	for _, tc := range []struct{ part, says, logs string }{
		{"loop", "event loop 0 ", "event loop 0 did not run a round within"},
		{"store", "store: ", `for the lock of table \"wedged\"`},
		{"log", "the log writer ", "the log writer did not run a round within"},
		{"fsync", "the log: ", "for the log file lock"},
	} {
		t.Run(tc.part, func(t *testing.T) {
			fastRaceExit(t)
			n := daemontest.ListenNotify(t)
			s := daemontest.HoldSocket(t)
			d := daemontest.StartActivated(t, s, daemontest.ActivationOptions{
				Env: []string{"NOTIFY_SOCKET=" + n.Path, "WATCHDOG_USEC=1000000", "CYBERDB_TEST_WEDGE=" + tc.part},
			})
			i, err := n.WaitFor(0, "READY=1", 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if i, err = n.WaitFor(i+1, "WATCHDOG=1", 5*time.Second); err != nil {
				t.Fatal(err)
			}
			if err := d.Signal(syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			svcWaitOutput(t, d, `msg="test hook: wedged" part=`+tc.part)
			time.Sleep(time.Second) // a check begun before the wedge may still ping
			mark := len(n.All())
			time.Sleep(2500 * time.Millisecond) // 5 pings, were it healthy
			noLine(t, n, mark, "WATCHDOG=1")
			if !strings.Contains(d.Output(), `msg="health check failed`) || !strings.Contains(d.Output(), tc.logs) {
				t.Fatalf("the log does not say the health check failed with %q:\n%s", tc.logs, d.Output())
			}
			if !hasLinePrefix(n, mark, "STATUS=health check failed: "+tc.says) {
				t.Fatalf("STATUS= does not say %q: %q", tc.says, n.All()[mark:])
			}
			if err := d.Signal(syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			svcWaitOutput(t, d, `msg="test hook: released" part=`+tc.part)
			if _, err := n.WaitFor(len(n.All()), "WATCHDOG=1", 5*time.Second); err != nil {
				t.Fatalf("after the release: %v", err)
			}
			svcPing(t, s.Path)
		})
	}
}

// hasLinePrefix reports whether a message after the first skip has a
// line starting with prefix.
func hasLinePrefix(n *daemontest.Notifications, skip int, prefix string) bool {
	for i, m := range n.All() {
		if i < skip {
			continue
		}
		for _, l := range strings.Split(m, "\n") {
			if strings.HasPrefix(l, prefix) {
				return true
			}
		}
	}
	return false
}

// TestReadyOnlyWhenAnswering: with its event loop wedged from the start,
// the daemon loads its data but says neither READY=1 nor "cyberdbd ready",
// and says what it waits for; released, it is ready at once and serves.
// It used to say ready as soon as the data was loaded.
func TestReadyOnlyWhenAnswering(t *testing.T) {
	fastRaceExit(t)
	n := daemontest.ListenNotify(t)
	s := daemontest.HoldSocket(t)
	cmd := s.Command(t, daemontest.ActivationOptions{Env: []string{"NOTIFY_SOCKET=" + n.Path, "CYBERDB_TEST_WEDGE=start:loop"}})
	var mu daemontest.Buffer
	cmd.Stderr, cmd.Stdout = &mu, &mu
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(done) }()
	defer func() {
		cmd.Process.Kill() // if it still runs
		<-done
	}()
	waitOut := func(what string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !strings.Contains(mu.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q within %s:\n%s", what, within, mu.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitOut(`msg="data loaded"`, 10*time.Second)
	waitOut(`msg="test hook: wedged" part=loop`, 10*time.Second)
	waitOut(`msg="not ready yet: requests are not answered"`, 15*time.Second)
	if strings.Contains(mu.String(), "cyberdbd ready") {
		t.Fatalf("ready while the event loop is wedged:\n%s", mu.String())
	}
	noLine(t, n, 0, "READY=1")

	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if _, err := n.WaitFor(0, "READY=1", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitOut(`msg="cyberdbd ready"`, time.Second)
	if o := mu.String(); strings.Index(o, `msg="data loaded"`) > strings.Index(o, `msg="cyberdbd ready"`) {
		t.Fatalf("ready before the data was loaded:\n%s", o)
	}
	svcPing(t, s.Path)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		if exitErr != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", exitErr, mu.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit within 20s of SIGTERM:\n%s", mu.String())
	}
}

// TestReloadTimeLimit: a reload that hangs is reported as failed after
// the time limit (to the log and systemd), a SIGHUP meanwhile is answered
// as failed at once, and once the hung one ends the postponed reload
// runs. A hung reload used to block every later one, silently.
func TestReloadTimeLimit(t *testing.T) {
	fastRaceExit(t)
	n := daemontest.ListenNotify(t)
	s := daemontest.HoldSocket(t)
	d := daemontest.StartActivated(t, s, daemontest.ActivationOptions{
		Env: []string{"NOTIFY_SOCKET=" + n.Path, "CYBERDB_TEST_WEDGE=reload", "CYBERDB_TEST_RELOAD_TIMEOUT=1s"},
	})
	if _, err := n.WaitFor(0, "READY=1", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	svcWaitOutput(t, d, `msg="test hook: wedged" part=reload`)
	hup := func() int {
		t.Helper()
		mark := len(n.All())
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		r, err := n.WaitFor(mark, "RELOADING=1", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		i, err := n.WaitFor(r, "READY=1", 5*time.Second)
		if err != nil {
			t.Fatalf("no answer to the reload: %v", err)
		}
		return i
	}
	i := hup()
	if m := n.All()[i]; !strings.Contains(m, "STATUS=reload failed") || !strings.Contains(m, "did not finish within 1s") {
		t.Fatalf("hung reload answered %q", m)
	}
	start := time.Now()
	i = hup()
	if m := n.All()[i]; !strings.Contains(m, "STATUS=reload failed") || !strings.Contains(m, "has not finished: this one will run when it does") {
		t.Fatalf("a reload while one hangs answered %q", m)
	}
	if el := time.Since(start); el > 900*time.Millisecond {
		t.Errorf("a reload while one hangs took %s to be answered, want at once", el)
	}
	reloaded := strings.Count(d.Output(), `msg="configuration reloaded"`)
	if err := d.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	svcWaitOutput(t, d, `msg="the reload that timed out has finished"`)
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(d.Output(), `msg="configuration reloaded"`) < reloaded+2 { // the hung one, then the postponed one
		if time.Now().After(deadline) {
			t.Fatalf("the postponed reload did not run:\n%s", d.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	svcPing(t, s.Path)
}

// TestActivatedSocketModeLogged: under socket activation the ready line
// gives the socket's mode as the file system has it, and a socket more
// open than --socket-mode gets a warning. The line used to give
// --socket-mode, whatever the socket was.
func TestActivatedSocketModeLogged(t *testing.T) {
	fastRaceExit(t)
	for _, tc := range []struct {
		mode os.FileMode
		warn bool
	}{{0o666, true}, {0o600, false}} {
		s := daemontest.HoldSocket(t)
		if err := os.Chmod(s.Path, tc.mode); err != nil {
			t.Fatal(err)
		}
		d := daemontest.StartActivated(t, s, daemontest.ActivationOptions{}, "--socket-mode=0660")
		svcWaitOutput(t, d, fmt.Sprintf(`msg="cyberdbd ready".* mode=%04o `, tc.mode))
		warned := strings.Contains(d.Output(), "the socket is more open than --socket-mode")
		if warned != tc.warn {
			t.Errorf("socket mode %04o with --socket-mode=0660: warned %v, want %v:\n%s", tc.mode, warned, tc.warn, d.Output())
		}
		svcStopClean(t, d)
	}
}
