package main

// Tests of cyberdbd as a systemd service: socket activation (with a socket
// the test holds as systemd would, and with the real
// systemd-socket-activate), restarts that refuse no client, sd_notify
// readiness, status, watchdog, reload and stop, and the peer-credential
// allowlists.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// svcWaitOutput waits until the daemon's output matches re.
func svcWaitOutput(t *testing.T, d *daemontest.Daemon, re string) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(10 * time.Second)
	for !rx.MatchString(d.Output()) {
		if time.Now().After(deadline) {
			t.Fatalf("daemon output does not match %q within 10s:\n%s", re, d.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// svcStopClean sends SIGTERM and requires a clean exit.
func svcStopClean(t *testing.T, d *daemontest.Daemon) {
	t.Helper()
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited, err := d.Wait(20 * time.Second)
	if !exited || err != nil {
		t.Fatalf("after SIGTERM: exited=%v err=%v\n%s", exited, err, d.Output())
	}
}

func svcPing(t *testing.T, socket string) {
	t.Helper()
	c := daemontest.DialHello(t, socket)
	defer c.Close()
	var got string
	c.MustCall(t, &got, wire.OpPing, "hi")
	if got != "hi" {
		t.Fatalf("ping = %q", got)
	}
}

// TestActivationKeepsSocket: a daemon given a socket by "systemd" serves
// it, leaves the file in place when it stops (the socket is systemd's),
// and the next daemon serves the same socket.
func TestActivationKeepsSocket(t *testing.T) {
	for _, name := range []string{"unix", "-"} { // "-": no FileDescriptorName
		t.Run("fdname="+name, func(t *testing.T) {
			s := daemontest.HoldSocket(t)
			d := daemontest.StartActivated(t, s, daemontest.ActivationOptions{FDName: name})
			svcPing(t, s.Path)
			svcWaitOutput(t, d, `cyberdbd ready.*socket="unix:`+regexp.QuoteMeta(s.Path)+` \(from systemd\)"`)
			svcStopClean(t, d)
			if fi, err := os.Lstat(s.Path); err != nil || fi.Mode().Type() != os.ModeSocket {
				t.Fatalf("activated socket file after stop: %v, %v", fi, err)
			}
			d.Restart(t)
			svcPing(t, s.Path)
		})
	}
}

// TestActivationRefusesUnknownSocket: a socket with a name cyberdbd does
// not know is a broken unit: the daemon says so and exits.
func TestActivationRefusesUnknownSocket(t *testing.T) {
	s := daemontest.HoldSocket(t)
	cmd := s.Command(t, daemontest.ActivationOptions{FDName: "stats"})
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1\n%s", err, out)
	}
	if !strings.Contains(string(out), `named "stats"`) || !strings.Contains(string(out), "FileDescriptorName=unix") {
		t.Fatalf("unhelpful error:\n%s", out)
	}
}

// TestSystemdSocketActivate runs the daemon under the real
// systemd-socket-activate, which creates the socket, waits for the first
// connection, then execs cyberdbd with it: that first client waits in the
// backlog while the daemon starts, and is served.
func TestSystemdSocketActivate(t *testing.T) {
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate not found (Debian package systemd; .ci/run installs it)")
	}
	bin := daemontest.Binary(t)
	socket := filepath.Join(daemontest.ShortTempDir(t), "cyberdb.sock")
	var out daemontest.Buffer
	cmd := exec.Command(tool, "--listen="+socket, "--fdname=unix", bin, "--log-level=debug")
	cmd.Dir = filepath.Dir(socket) // the default --data-dir lands in the temp dir
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	done := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	output := out.String
	for i := 0; !strings.Contains(output(), "Listening on "+socket); i++ {
		if i == 500 {
			t.Fatalf("systemd-socket-activate did not listen within 5s:\n%s", output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	svcPing(t, socket) // the first connection starts the daemon
	// The daemon answers before it logs ready: that waits for its own
	// round trip through the socket (readiness, daemon.Start).
	for i := 0; !strings.Contains(output(), "(from systemd)"); i++ {
		if i == 1000 {
			t.Fatalf("the daemon did not log ready on the activated socket within 10s:\n%s", output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		if waitErr != nil {
			t.Fatalf("cyberdbd exited with %v after SIGTERM:\n%s", waitErr, output())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("cyberdbd did not stop:\n%s", output())
	}
	if _, err := os.Lstat(socket); err != nil {
		t.Fatalf("the daemon removed the activated socket: %v", err)
	}
}

// TestMetricsSocketActivation: under systemd-socket-activate with a
// Unix socket named "unix" and a TCP one named "metrics" (what
// cyberdbd.socket and cyberdbd-metrics.socket pass), the daemon serves
// its tables on the first and /metrics on the second, with no --metrics.
func TestMetricsSocketActivation(t *testing.T) {
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate not found (Debian package systemd; .ci/run installs it)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	bin := daemontest.Binary(t)
	socket := filepath.Join(daemontest.ShortTempDir(t), "cyberdb.sock")
	var out daemontest.Buffer
	cmd := exec.Command(tool, "--listen="+socket, "--listen="+addr, "--fdname=unix:metrics", bin)
	cmd.Dir = filepath.Dir(socket)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	for i := 0; !strings.Contains(out.String(), "Listening on "+socket); i++ {
		if i == 500 {
			t.Fatalf("systemd-socket-activate did not listen within 5s:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	svcPing(t, socket) // the first connection starts the daemon
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape the activated metrics socket: %v\n%s", err, out.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `cyberdb_requests_total{op="ping"}`) {
		t.Fatalf("/metrics: %s\n%s", resp.Status, body)
	}
}

// TestRestartLosesNoClient hammers the daemon from several goroutines while
// it is restarted three times on a socket held as systemd holds it, and
// counts the calls that fail: there must be none.
//
// The client does what libcyberdb does. Connecting never fails: the socket
// stays open across restarts, and a connection made while no daemon runs
// waits in the backlog. When a daemon stops, it answers every request it
// has read and then sends a shutting_down frame: a request without a reply
// before that frame was not executed, so the client reconnects and sends
// it again; so it does when its write fails (the request never left). Any
// other outcome is a failed call: a dial error, an error reply, a wrong
// reply, or a connection that ends without the shutting_down frame (a
// request that may or may not have run).
func TestRestartLosesNoClient(t *testing.T) {
	s := daemontest.HoldSocket(t)
	d := daemontest.StartActivated(t, s, daemontest.ActivationOptions{})

	const workers, restarts = 8, 3
	var (
		calls, resent, reconnects atomic.Int64
		mu                        sync.Mutex
		failures                  []string
	)
	fail := func(format string, args ...any) bool {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf(format, args...))
		return false
	}
	clients := make([]*restartClient, workers) // each worker's connection; nil between them
	stop := daemontest.Hammer(workers, func(w, i int) bool {
		payload := fmt.Sprintf("w%d-%d", w, i)
		for attempt := 0; ; attempt++ {
			if attempt == 50 {
				return fail("%s: still unanswered after 50 attempts", payload)
			}
			if clients[w] == nil {
				c, err := dialRestartClient(s.Path)
				if err != nil {
					return fail("%s: %v", payload, err)
				}
				clients[w] = c
				reconnects.Add(1)
			}
			res, retry, err := clients[w].ping(payload)
			if retry {
				clients[w].close()
				clients[w] = nil
				resent.Add(1)
				continue
			}
			if err != nil {
				return fail("%s: %v", payload, err)
			}
			if res != payload {
				return fail("%s: echoed %q", payload, res)
			}
			calls.Add(1)
			return true
		}
	})
	for range restarts {
		time.Sleep(300 * time.Millisecond)
		svcStopClean(t, d)
		time.Sleep(100 * time.Millisecond) // clients pile up in the backlog
		d.Restart(t)
	}
	time.Sleep(300 * time.Millisecond)
	stop()
	for _, c := range clients {
		if c != nil {
			c.close()
		}
	}
	t.Logf("%d calls, %d resent after a restart, %d connections", calls.Load(), resent.Load(), reconnects.Load())
	if len(failures) > 0 {
		t.Fatalf("%d failed calls through %d restarts, e.g. %q", len(failures), restarts, failures[:min(5, len(failures))])
	}
	// The hammer must have been at work across every restart.
	if reconnects.Load() < workers*(restarts+1) {
		t.Fatalf("only %d connections for %d workers and %d restarts: the restarts missed the clients", reconnects.Load(), workers, restarts)
	}
}

// restartClient is the client side of TestRestartLosesNoClient.
type restartClient struct {
	c     *daemontest.Conn
	hello bool // HELLO answered
}

func dialRestartClient(socket string) (*restartClient, error) {
	nc, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial (a restart refused a client): %w", err)
	}
	return &restartClient{c: daemontest.Wrap(nc)}, nil
}

func (r *restartClient) close() { r.c.Close() }

// ping sends HELLO first on a new connection, then PING payload. retry
// says the request was certainly not executed and may be sent again.
func (r *restartClient) ping(payload string) (res string, retry bool, err error) {
	if !r.hello {
		if retry, err := r.call(wire.OpHello, nil, wire.ProtocolVersion, map[string]any{"client": "restart-test"}); retry || err != nil {
			return "", retry, err
		}
		r.hello = true
	}
	retry, err = r.call(wire.OpPing, &res, payload)
	return res, retry, err
}

func (r *restartClient) call(op wire.Op, out any, args ...any) (retry bool, err error) {
	id, err := r.c.Send(op, args...)
	if err != nil {
		return true, nil // the write failed: nothing was sent
	}
	reply, err := r.c.Read()
	switch {
	case err != nil:
		return false, fmt.Errorf("%s: connection ended without a shutting_down frame: %w", op, err)
	case reply.ID == 0 && reply.Code == wire.CodeShuttingDown:
		return true, nil
	case reply.ID != id:
		return false, fmt.Errorf("%s: reply id %d, want %d", op, reply.ID, id)
	case reply.Err != nil:
		return false, fmt.Errorf("%s: %w", op, reply.Err)
	case out != nil:
		return false, wire.Unmarshal(reply.Result, out)
	}
	return false, nil
}

// TestNotify checks what systemd hears (sd_notify): READY=1 with a STATUS=
// once serving, STATUS= refreshed as connections come, WATCHDOG=1 at half
// of WATCHDOG_USEC, RELOADING=1 with MONOTONIC_USEC= then READY=1 on
// SIGHUP (which applies a new log level from --config), and STOPPING=1 on
// SIGTERM.
func TestNotify(t *testing.T) {
	n := daemontest.ListenNotify(t)
	conf := filepath.Join(daemontest.ShortTempDir(t), "cyberdbd.conf")
	if err := os.WriteFile(conf, []byte("# test\nlog-level = info\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := daemontest.HoldSocket(t)
	d := daemontest.StartActivated(t, s, daemontest.ActivationOptions{
		Env: []string{"NOTIFY_SOCKET=" + n.Path, "WATCHDOG_USEC=400000"},
	}, "--config="+conf)

	i, err := n.WaitFor(0, "READY=1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if msg := n.All()[i]; !strings.Contains(msg, "\nSTATUS=serving ") {
		t.Fatalf("READY message %q has no STATUS", msg)
	}
	// Pings every 200ms, half of WATCHDOG_USEC: 5 take about 1s, where
	// pings at the full timeout would take 2s.
	start := time.Now()
	j := i
	for k := range 5 {
		if j, err = n.WaitFor(j+1, "WATCHDOG=1", time.Second); err != nil {
			t.Fatalf("watchdog ping %d: %v", k, err)
		}
	}
	if el := time.Since(start); el > 1800*time.Millisecond {
		t.Fatalf("5 watchdog pings took %s with WATCHDOG_USEC=400ms", el)
	}
	// STATUS= follows the connections (WaitReady's has closed by now).
	if j, err = n.WaitFor(i, "STATUS=serving 0 connections; 0 tables, 0 entries", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	c := daemontest.DialHello(t, s.Path)
	if _, err := n.WaitFor(j+1, "STATUS=serving 1 connection; 0 tables, 0 entries", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	c.Close()

	// Reload: debug logging from the config file.
	if strings.Contains(d.Output(), "level=DEBUG") {
		t.Fatal("debug lines before the reload")
	}
	if err := os.WriteFile(conf, []byte("log-level = debug\nmax-conns = 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mark := len(n.All())
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	r, err := n.WaitFor(mark, "RELOADING=1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(^|\n)MONOTONIC_USEC=[1-9][0-9]*(\n|$)`).MatchString(n.All()[r]) {
		t.Fatalf("RELOADING message %q lacks MONOTONIC_USEC", n.All()[r])
	}
	if _, err := n.WaitFor(r+1, "READY=1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	svcWaitOutput(t, d, `setting changed but needs a restart.*setting=max-conns`)
	svcPing(t, s.Path)
	svcWaitOutput(t, d, `level=DEBUG msg="connection opened"`)

	// A broken config file: the reload fails, the daemon serves on.
	if err := os.WriteFile(conf, []byte("log-level = loud\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mark = len(n.All())
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if r, err = n.WaitFor(mark, "READY=1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(n.All()[r], "STATUS=reload failed") {
		t.Fatalf("failed reload reported as %q", n.All()[r])
	}
	svcPing(t, s.Path)

	mark = len(n.All())
	svcStopClean(t, d)
	if _, err := n.WaitFor(mark, "STOPPING=1", time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestSIGHUPWithoutConfig: SIGHUP never kills the daemon (its default
// action), with or without a config file.
func TestSIGHUPWithoutConfig(t *testing.T) {
	d := daemontest.Start(t)
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	svcWaitOutput(t, d, `configuration reloaded`)
	svcPing(t, d.Socket)
}

// TestPeerAllowlist checks --allow-uid and --allow-gid against real peers
// of other users, as root (CI runs as root): the test starts copies of
// itself as uid 65534 with chosen groups, which connect and report what
// they got. A refused peer gets a forbidden frame and is logged with its
// uid and pid; a supplementary group (SO_PEERGROUPS) counts.
func TestPeerAllowlist(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to connect as other users (CI runs as root)")
	}
	dir := daemontest.ShortTempDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "cyberdb.sock")
	d := daemontest.Start(t, "--socket="+socket, "--socket-mode=0666", "--allow-uid=0", "--allow-gid=4242,4343")

	repeat := 1 // connections each peer process makes
	connectAs := func(gid uint32, groups ...uint32) (string, int) {
		t.Helper()
		cmd := asOtherUser(t, dir, "TestPeerHelper", &syscall.Credential{Uid: 65534, Gid: gid, Groups: groups}, "CYBERDBD_TEST_PEER="+socket, fmt.Sprintf("CYBERDBD_TEST_PEER_REPEAT=%d", repeat)) // security_test.go
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("peer as gid %d groups %v: %v\n%s", gid, groups, err, out)
		}
		m := regexp.MustCompile(`PEER-RESULT (\S+)`).FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("peer printed no result:\n%s", out)
		}
		return m[1], cmd.Process.Pid
	}
	svcPing(t, socket) // root: --allow-uid=0
	if got, _ := connectAs(65534, 4343); got != "ok" {
		t.Errorf("supplementary group 4343: %s, want ok", got)
	}
	if got, _ := connectAs(4242); got != "ok" {
		t.Errorf("primary group 4242: %s, want ok", got)
	}
	got, pid := connectAs(65534, 100)
	if got != "forbidden" {
		t.Errorf("uid 65534 in no allowed group: %s, want forbidden", got)
	}
	svcWaitOutput(t, d, fmt.Sprintf(`level=WARN msg="connection refused: peer not in --allow-uid/--allow-gid".* uid=65534 gid=65534 pid=%d`, pid))

	// A flood of refused peers is logged a few lines a second, and a
	// later line says how many were suppressed (issue 19.7).
	repeat = 300
	start := time.Now()
	if got, _ := connectAs(65534, 100); got != "forbidden" {
		t.Errorf("flooding peer: %s, want forbidden", got)
	}
	secs := time.Since(start).Seconds()
	time.Sleep(1100 * time.Millisecond)
	repeat = 1
	connectAs(65534, 100)
	svcWaitOutput(t, d, `msg="connection refused: peer not in --allow-uid/--allow-gid".* suppressed_since_last=\d+`)
	lines := strings.Count(d.Output(), `msg="connection refused: peer not in --allow-uid/--allow-gid"`)
	t.Logf("%d refusal lines for 302 refused connections in %.1fs", lines, secs+1.1)
	if max := 10 * (int(secs) + 4); lines > max {
		t.Errorf("%d refusal lines logged for 302 refused connections, want at most %d", lines, max)
	}
}

// TestPeerHelper is the peer process of TestPeerAllowlist: it connects,
// says HELLO and prints what it got.
func TestPeerHelper(t *testing.T) {
	socket := os.Getenv("CYBERDBD_TEST_PEER")
	if socket == "" {
		t.Skip("run by TestPeerAllowlist as another user")
	}
	// A flood first: connections that only wait for the server to close.
	repeat, _ := strconv.Atoi(os.Getenv("CYBERDBD_TEST_PEER_REPEAT"))
	for range repeat - 1 {
		if nc, err := net.Dial("unix", socket); err == nil {
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.Copy(io.Discard, nc)
			nc.Close()
		}
	}
	nc, err := net.Dial("unix", socket)
	if err != nil {
		fmt.Println("PEER-RESULT dial-error:", err)
		return
	}
	c := daemontest.Wrap(nc)
	defer c.Close()
	// A refused peer's reply is the server's id-0 error frame.
	r, err := func() (wire.Reply, error) {
		if _, err := c.Send(wire.OpHello, wire.ProtocolVersion, map[string]any{}); err != nil {
			// The server may refuse and close before HELLO is written
			// (broken pipe): its frame is still there to read.
			if r, rerr := c.Read(); rerr == nil {
				return r, nil
			}
			return wire.Reply{}, err
		}
		return c.Read()
	}()
	switch {
	case err != nil:
		fmt.Println("PEER-RESULT error:" + strings.ReplaceAll(err.Error(), " ", "_"))
	case r.Code == wire.CodeOK:
		fmt.Println("PEER-RESULT ok")
	default:
		fmt.Println("PEER-RESULT", r.Code)
	}
}

// TestSocketGroup: --socket-group hands the socket created by hand to a
// group (root may give it to any group).
func TestSocketGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the socket to another group (CI runs as root)")
	}
	d := daemontest.Start(t, "--socket-group=4242", "--socket-mode=0660")
	fi, err := os.Stat(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Gid != 4242 || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket gid %d mode %v, want 4242 and 0660", st.Gid, fi.Mode().Perm())
	}
	svcPing(t, d.Socket)
}
