package libcyberdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
)

// TestTimeoutHungDaemon: a call with context.Background() on a daemon
// that is SIGSTOPped fails after WithTimeout's bound instead of blocking
// forever; a call whose context has a deadline waits for that deadline
// instead, and succeeds when the daemon resumes before it. (Without the
// bound the first Get never returns: the test then times out.)
func TestTimeoutHungDaemon(t *testing.T) {
	d, c := start(t, WithTimeout(300*time.Millisecond))
	t.Cleanup(func() { d.Signal(syscall.SIGCONT) }) // before Stop's SIGTERM
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "t", map[string]int{"k": 1}))
	h := NewDict[string, int](c, "t")
	if _, err := h.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	stopDaemon(t, d)

	begin := time.Now()
	_, err := h.Get(ctx, "k")
	took := time.Since(begin)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "WithTimeout") {
		t.Fatalf("Get on a stopped daemon: %v, want a WithTimeout error matching context.DeadlineExceeded", err)
	}
	if took < 300*time.Millisecond || took > 10*time.Second {
		t.Errorf("the Get took %v, want about 300ms", took)
	}
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%v is not a Timeout() error", err)
	}

	// A context deadline wins over WithTimeout, even a later one.
	go func() {
		time.Sleep(700 * time.Millisecond)
		d.Signal(syscall.SIGCONT)
	}()
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if v, err := h.Get(dctx, "k"); err != nil || v != 1 {
		t.Fatalf("Get with a 20s deadline over a 0.7s stop: %v, %v", v, err)
	}
	if s := c.Stats(); s.Timeouts != 1 {
		t.Errorf("stats: %v, want 1 time-out", s)
	}
}

// stopDaemon sends SIGSTOP and waits until every thread of the daemon
// has stopped (kill returns before they all have).
func stopDaemon(t *testing.T, d *daemontest.Daemon) {
	t.Helper()
	must(t, d.Signal(syscall.SIGSTOP))
	pid := d.Cmd.Process.Pid
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			t.Skipf("cannot see whether the daemon stopped: %v", err)
		}
		stopped := 0
		for _, task := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
			// The state follows the command name, in parentheses.
			if i := bytes.LastIndexByte(b, ')'); err == nil && i > 0 && i+2 < len(b) && b[i+2] == 'T' {
				stopped++
			}
		}
		if stopped == len(tasks) {
			return
		}
	}
	t.Fatal("the daemon did not stop within 10s of SIGSTOP")
}

// TestTimeoutOff: WithTimeout(0) leaves a call without deadline waiting
// for as long as the daemon is stopped.
func TestTimeoutOff(t *testing.T) {
	d, c := start(t, WithTimeout(0))
	t.Cleanup(func() { d.Signal(syscall.SIGCONT) })
	ctx := context.Background()
	must(t, c.Ping(ctx))
	stopDaemon(t, d)
	done := make(chan error, 1)
	go func() { done <- c.Ping(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("Ping returned while the daemon was stopped: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	must(t, d.Signal(syscall.SIGCONT))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// countingDialer is a WithDialer function that counts its dials and can
// make the connections it opened so far swallow what is written to them
// (a path to the daemon that died silently).
type countingDialer struct {
	dials atomic.Int32
	mu    sync.Mutex
	conns []*holeConn
}

func (cd *countingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	cd.dials.Add(1)
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	hc := &holeConn{Conn: nc}
	cd.mu.Lock()
	cd.conns = append(cd.conns, hc)
	cd.mu.Unlock()
	return hc, nil
}

func (cd *countingDialer) blackhole() {
	cd.mu.Lock()
	defer cd.mu.Unlock()
	for _, hc := range cd.conns {
		hc.hole.Store(true)
	}
}

type holeConn struct {
	net.Conn
	hole atomic.Bool
}

func (hc *holeConn) Write(p []byte) (int, error) {
	if hc.hole.Load() {
		return len(p), nil
	}
	return hc.Conn.Write(p)
}

// TestWithDialer: the Client's connections are the dialer's; a dialer's
// error is reported, naming the address.
func TestWithDialer(t *testing.T) {
	d := daemontest.Start(t)
	var cd countingDialer
	c := open(t, d.Socket, WithDialer(cd.dial))
	must(t, c.Ping(context.Background()))
	if n := cd.dials.Load(); n != 1 {
		t.Errorf("%d dials through WithDialer, want 1", n)
	}
	boom := errors.New("no route to the daemon")
	_, err := Open(context.Background(), d.Socket, WithDialer(func(context.Context, string, string) (net.Conn, error) { return nil, boom }))
	if !errors.Is(err, boom) || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), d.Socket) {
		t.Errorf("Open with a failing dialer: %v", err)
	}
}

// TestOnConnect: WithOnConnect's function runs on each new connection,
// over that connection, before the connection takes calls, so that a
// table it creates is there again after the daemon lost it (dropped here,
// then a kill -9 and restart). An error from the function fails Open.
func TestOnConnect(t *testing.T) {
	d := daemontest.Start(t)
	ctx := context.Background()
	var runs atomic.Int32
	var ids sync.Map
	c := open(t, d.Socket, WithOnConnect(func(ctx context.Context, cn *Conn) error {
		runs.Add(1)
		ids.Store(cn.ID(), true)
		return cn.CreateDict(ctx, "config", map[string]string{"mode": "fast"}, IfNotExists())
	}))
	h := NewDict[string, string](c, "config")
	if v, err := h.Get(ctx, "mode"); err != nil || v != "fast" {
		t.Fatalf("get: %q, %v", v, err)
	}
	pc, err := c.Conn(ctx)
	must(t, err)
	if _, ok := ids.Load(pc.ID()); !ok || runs.Load() != 2 {
		t.Errorf("the pinned connection %d was not given to the function (runs %d)", pc.ID(), runs.Load())
	}
	pc.Close()
	must(t, c.Drop(ctx, "config"))
	d.Kill(t)
	d.Restart(t)
	if v, err := h.Get(ctx, "mode"); err != nil || v != "fast" {
		t.Fatalf("get after a restart: %q, %v", v, err)
	}
	if n := runs.Load(); n < 3 {
		t.Errorf("the function ran %d times, want 3 or more", n)
	}

	refuse := errors.New("daemon too old")
	_, err = Open(ctx, d.Socket, WithOnConnect(func(context.Context, *Conn) error { return refuse }))
	if !errors.Is(err, refuse) || !strings.Contains(err.Error(), "WithOnConnect") {
		t.Errorf("Open with a refusing function: %v", err)
	}
}

// TestHealthCheck: a shared connection whose path to the daemon died
// silently while it was idle (writes vanish, nothing comes back) is
// checked by a PING before its next call and replaced, so the call
// succeeds; without the check (WithHealthCheck(0)) the same call waits
// for WithTimeout's bound.
func TestHealthCheck(t *testing.T) {
	d := daemontest.Start(t)
	ctx := context.Background()
	for _, check := range []time.Duration{50 * time.Millisecond, 0} {
		var cd countingDialer
		c := open(t, d.Socket, WithDialer(cd.dial), WithHealthCheck(check),
			WithDialTimeout(500*time.Millisecond), WithTimeout(2*time.Second))
		must(t, c.Ping(ctx))
		cd.blackhole()
		time.Sleep(400 * time.Millisecond) // the cleaner runs every 100ms
		err := c.Ping(ctx)
		switch {
		case check > 0 && err != nil:
			t.Errorf("with health checks: %v", err)
		case check > 0 && cd.dials.Load() != 2:
			t.Errorf("with health checks: %d dials, want 2 (the dead connection replaced)", cd.dials.Load())
		case check == 0 && !errors.Is(err, context.DeadlineExceeded):
			t.Errorf("without health checks: %v, want the call's time-out", err)
		}
		s := c.Stats()
		switch {
		case check > 0 && (s.HealthChecksFailed != 1 || s.HealthChecks < 1 || s.LostConns != 1):
			t.Errorf("with health checks: %v, want 1 failed check, and the connection counted as lost", s)
		case check == 0 && (s.HealthChecks != 0 || s.HealthChecksFailed != 0):
			t.Errorf("without health checks: %v, want no checks", s)
		}
	}
}

// TestHealthCheckCanceled: a check that the caller's context cuts short
// is not a failed check: the connection (healthy, its daemon stopped for
// a moment) is kept, not closed as dead, and checked at its next use.
func TestHealthCheckCanceled(t *testing.T) {
	d := daemontest.Start(t)
	t.Cleanup(func() { d.Signal(syscall.SIGCONT) }) // before Stop's SIGTERM
	ctx := context.Background()
	var cd countingDialer
	c := open(t, d.Socket, WithDialer(cd.dial), WithHealthCheck(50*time.Millisecond))
	must(t, c.Ping(ctx))
	time.Sleep(400 * time.Millisecond) // idle: marked for a check (the cleaner runs every 100ms)
	stopDaemon(t, d)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err := c.Ping(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping with a 100ms deadline on a stopped daemon: %v", err)
	}
	must(t, d.Signal(syscall.SIGCONT))
	must(t, c.Ping(ctx))
	if n := cd.dials.Load(); n != 1 {
		t.Errorf("%d dials: the connection was replaced, want it kept", n)
	}
	if s := c.Stats(); s.HealthChecksFailed != 0 || s.LostConns != 0 || s.HealthChecks < 2 {
		t.Errorf("stats: %v, want 2 checks or more, none failed, no connection lost", s)
	}
}

// TestHealthCheckConn: a Conn's connection is checked like a shared one:
// when its path to the daemon died silently while the Conn sat idle, its
// next call checks it, and goes to a new connection instead of waiting
// for WithTimeout's bound on the dead one.
func TestHealthCheckConn(t *testing.T) {
	d := daemontest.Start(t)
	ctx := context.Background()
	var cd countingDialer
	c := open(t, d.Socket, WithDialer(cd.dial), WithHealthCheck(50*time.Millisecond),
		WithDialTimeout(500*time.Millisecond), WithTimeout(2*time.Second))
	pc, err := c.Conn(ctx)
	must(t, err)
	defer pc.Close()
	must(t, pc.Ping(ctx))
	id, dials := pc.ID(), cd.dials.Load()
	cd.blackhole()
	time.Sleep(400 * time.Millisecond) // the cleaner runs every 100ms
	if err := pc.Ping(ctx); err != nil {
		t.Fatalf("a Conn's call after its connection died while idle: %v", err)
	}
	if pc.ID() == id || cd.dials.Load() != dials+1 {
		t.Errorf("the Conn's connection %d (now %d) was not replaced by one new dial (%d dials, want %d)", id, pc.ID(), cd.dials.Load(), dials+1)
	}
	if s := c.Stats(); s.HealthChecksFailed != 1 {
		t.Errorf("stats: %v, want 1 failed check", s)
	}
}

// TestReconnectBetweenCalls: a daemon restarted between two calls, and a
// connection the daemon closed for --idle-timeout, cost the next call
// nothing but a new connection.
func TestReconnectBetweenCalls(t *testing.T) {
	d := daemontest.Start(t, "--idle-timeout=300ms")
	ctx := context.Background()
	c := open(t, d.Socket)
	must(t, c.Ping(ctx))
	d.Stop(t)
	d.Restart(t)
	must(t, c.Ping(ctx))
	time.Sleep(800 * time.Millisecond) // the daemon closes the idle connection
	must(t, c.Ping(ctx))
	if s := c.Stats(); s.Dials != 3 || s.Retries > 1 {
		t.Errorf("stats: %v, want 3 dials", s)
	}
}
