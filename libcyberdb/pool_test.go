package libcyberdb

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
)

// fakeClock is the pool's clock in tests: idle time-outs and lifetimes are
// tested by moving it, not by sleeping.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// daemonConns is the daemon's own count of open connections.
func daemonConns(t *testing.T, c *Client) int {
	t.Helper()
	info, err := c.Info(context.Background())
	must(t, err)
	n, ok := info["connections"].(uint64)
	if !ok {
		t.Fatalf("info connections = %#v", info["connections"])
	}
	return int(n)
}

// fill makes n concurrent calls so that the pool opens up to n connections.
func fill(t *testing.T, c *Client, goroutines int) {
	t.Helper()
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if err := c.Ping(context.Background()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestManyGoroutinesOneClient(t *testing.T) {
	const size = 3
	_, c := start(t, WithPoolSize(size))
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "n", nil))
	d := NewDict[string, int](c, "n")
	var wg sync.WaitGroup
	const goroutines, incrs = 200, 50
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < incrs; i++ {
				if _, err := d.Incr(ctx, "total", 1); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if v, err := d.Get(ctx, "total"); err != nil || v != goroutines*incrs {
		t.Fatalf("total = %d, %v", v, err)
	}
	s := c.Stats()
	if s.Open != size || s.Dials != size || s.InFlight != 0 {
		t.Fatalf("stats after %d goroutines: %v; want %d connections", goroutines, s, size)
	}
	if n := daemonConns(t, c); n != size {
		t.Fatalf("the daemon counts %d connections, want %d", n, size)
	}
}

func TestOneGoroutineOneConnection(t *testing.T) {
	_, c := start(t, WithPoolSize(4))
	for i := 0; i < 100; i++ {
		must(t, c.Ping(context.Background()))
	}
	if s := c.Stats(); s.Open != 1 {
		t.Fatalf("sequential calls opened %d connections", s.Open)
	}
}

func TestPoolIdleTimeout(t *testing.T) {
	noLeaks(t)
	clock := newFakeClock()
	_, c := start(t, WithPoolSize(3), WithIdleTimeout(time.Minute), withClock(clock.Now))
	fill(t, c, 20)
	if s := c.Stats(); s.Open != 3 {
		t.Fatalf("stats after filling: %v", s)
	}
	clock.Advance(59 * time.Second)
	c.p.clean()
	if s := c.Stats(); s.Open != 3 || s.ClosedIdle != 0 {
		t.Fatalf("closed before the idle time-out: %v", s)
	}
	clock.Advance(time.Second)
	if !c.p.clean() {
		// Nothing is left open: the cleaner stops itself.
		if s := c.Stats(); s.Open != 0 || s.ClosedIdle != 3 {
			t.Fatalf("after the idle time-out: %v", s)
		}
	} else {
		t.Fatalf("connections survived the idle time-out: %v", c.Stats())
	}
	// The next call dials again; the cleaner restarts with it.
	must(t, c.Ping(context.Background()))
	if s := c.Stats(); s.Open != 1 || s.Dials != 4 {
		t.Fatalf("after a new call: %v", s)
	}
	if n := daemonConns(t, c); n != 1 {
		t.Fatalf("the daemon still counts %d connections", n)
	}
	// A connection in use is not idle, however long ago it was dialed.
	clock.Advance(time.Hour)
	must(t, c.Ping(context.Background())) // counts as use
	clock.Advance(30 * time.Second)
	c.p.clean()
	if s := c.Stats(); s.Open != 1 {
		t.Fatalf("a recently used connection was closed: %v", s)
	}
}

func TestPoolMaxLifetime(t *testing.T) {
	clock := newFakeClock()
	_, c := start(t, WithPoolSize(2), WithMaxLifetime(time.Hour), withClock(clock.Now))
	fill(t, c, 10)
	if s := c.Stats(); s.Open != 2 {
		t.Fatalf("stats after filling: %v", s)
	}
	clock.Advance(time.Hour - time.Second)
	c.p.clean()
	if s := c.Stats(); s.ClosedMaxLife != 0 {
		t.Fatalf("retired early: %v", s)
	}
	clock.Advance(time.Second)
	c.p.clean()
	if s := c.Stats(); s.ClosedMaxLife != 2 || s.Open != 0 {
		t.Fatalf("after the lifetime: %v", s)
	}
	must(t, c.Ping(context.Background()))
	if s := c.Stats(); s.Open != 1 || s.Dials != 3 || s.LostConns != 0 {
		t.Fatalf("after a new call: %v", s)
	}
}

// A daemon killed (SIGKILL) while a Client is in use: after it restarts,
// calls succeed with no action from the caller.
func TestDaemonKilledAndRestarted(t *testing.T) {
	noLeaks(t)
	d, c := start(t, WithPoolSize(2), WithDialTimeout(30*time.Second))
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "t", nil))
	dd := NewDict[string, int](c, "t")
	fill(t, c, 10)

	d.Kill(t)
	// With the daemon gone, a read fails once its dial time-out is over...
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err := dd.Len(short)
	cancel()
	if !errors.Is(err, ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Len with the daemon down: %v", err)
	}
	d.Restart(t)
	// ...and after the restart everything works again. Whether "t" is
	// still there depends on the daemon's fsync policy (the default,
	// everysec, may lose the last second): either is fine here.
	mustCreateDict(t, c, "t")
	must(t, dd.Set(ctx, "a", 1))
	fill(t, c, 10)
	s := c.Stats()
	if s.LostConns != 2 || s.Reconnects == 0 || s.Open > 2 {
		t.Fatalf("stats after the restart: %v", s)
	}
	if n := daemonConns(t, c); n != s.Open {
		t.Fatalf("the daemon counts %d connections, the client %d", n, s.Open)
	}
}

// Many callers with no deadline while the daemon stays down: each fails
// within about two dial time-outs. They used to dial in turn, each for a
// whole time-out, so that the last waited its share of all of them (40
// callers on one connection: 40 time-outs).
func TestDaemonDownWaitersFailTogether(t *testing.T) {
	noLeaks(t)
	const dialTimeout = 250 * time.Millisecond
	d, c := start(t, WithPoolSize(1), WithDialTimeout(dialTimeout))
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "t", nil))
	dd := NewDict[string, int](c, "t")
	fill(t, c, 1)
	d.Kill(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var worst time.Duration
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			_, err := dd.Get(ctx, "a")
			took := time.Since(start)
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("Get with the daemon down: %v, want ErrUnavailable", err)
			}
			mu.Lock()
			worst = max(worst, took)
			mu.Unlock()
		}()
	}
	wg.Wait()
	// A bound on waiting, not a speed: 40 turns would be 10 s.
	if worst > 20*dialTimeout {
		t.Fatalf("a caller waited %s for a daemon that is down (dial time-out %s)", worst, dialTimeout)
	}
	t.Logf("the slowest caller failed after %s; stats %v", worst, c.Stats())
	d.Restart(t)
	mustCreateDict(t, c, "t")
	must(t, dd.Set(ctx, "a", 1))
}

// mustCreateDict creates a dict table unless a restarted daemon recovered
// it from its data dir.
func mustCreateDict(t *testing.T, c *Client, name string) {
	t.Helper()
	if err := c.CreateDict(context.Background(), name, nil); err != nil && !errors.Is(err, ErrTableExists) {
		t.Errorf("create %s: %v", name, err)
	}
}

// Calls in flight while the daemon is killed: reads are resent; writes
// fail with ErrConnClosed (they may have been applied); nothing hangs.
func TestKillDuringCalls(t *testing.T) {
	noLeaks(t)
	d, c := start(t, WithPoolSize(2), WithDialTimeout(30*time.Second))
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "t", nil))
	dd := NewDict[string, int](c, "t")
	var readErrs, writeErrs, writeLost atomic.Int64
	stop := daemontest.Hammer(16, func(g, _ int) bool {
		if g%2 == 0 {
			if _, err := dd.Has(ctx, "x"); err != nil && !errors.Is(err, ErrNoTable) {
				readErrs.Add(1)
				t.Errorf("read: %v", err)
			}
		} else if _, err := dd.Incr(ctx, "x", 1); err != nil {
			switch {
			case errors.Is(err, ErrConnClosed):
				writeLost.Add(1)
			case errors.Is(err, ErrNoTable):
			default:
				writeErrs.Add(1)
				t.Errorf("write: %v", err)
			}
		}
		return true
	})
	fill(t, c, 4)
	d.Kill(t)
	d.Restart(t)
	mustCreateDict(t, c, "t")
	fill(t, c, 4)
	stop()
	t.Logf("writes lost with the connection: %d; stats: %v", writeLost.Load(), c.Stats())
}

// SIGTERM and restart while calls are in flight: the daemon answers what
// it has read and says the rest was not executed, so no call fails, not
// even non-idempotent writes.
func TestGracefulRestartNoFailedCalls(t *testing.T) {
	noLeaks(t)
	d, c := start(t, WithPoolSize(3), WithDialTimeout(60*time.Second))
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "t", nil))
	dd := NewDict[string, int](c, "t")
	var calls, incrs atomic.Int64
	restarted := make(chan struct{})
	stop := daemontest.Hammer(16, func(g, _ int) bool {
		calls.Add(1)
		var err error
		if g%2 == 0 {
			_, err = dd.Len(ctx)
		} else {
			_, err = dd.Incr(ctx, "n", 1)
			if err == nil {
				incrs.Add(1)
			}
		}
		// The restarted daemon has no tables until the test
		// creates "t" again; that is not a failed call.
		if err != nil {
			select {
			case <-restarted:
				if errors.Is(err, ErrNoTable) {
					return true
				}
			default:
			}
			t.Errorf("call failed across a graceful restart: %v", err)
			return false
		}
		return true
	})
	fill(t, c, 4)
	before := calls.Load()
	must(t, d.Signal(syscall.SIGTERM))
	if ok, err := d.Wait(30 * time.Second); !ok || err != nil {
		t.Fatalf("daemon did not stop cleanly: %v, %v", ok, err)
	}
	close(restarted)
	d.Restart(t)
	if err := c.CreateDict(ctx, "t", nil); err != nil && !errors.Is(err, ErrTableExists) {
		t.Fatal(err)
	}
	fill(t, c, 4)
	stop()
	s := c.Stats()
	if s.LostConns == 0 || calls.Load() <= before {
		t.Fatalf("the restart was not exercised: %v, calls %d->%d", s, before, calls.Load())
	}
	t.Logf("calls: %d, resent: %d, stats: %v", calls.Load(), s.Retries, s)
}
