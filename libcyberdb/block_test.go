package libcyberdb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// waitFor polls cond every few milliseconds for up to 30s (a loaded
// machine), failing the test with what when it never holds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// infoInt reads one integer field of the daemon's info.
func infoInt(t testing.TB, c *Client, key string) int {
	t.Helper()
	m, err := c.Info(context.Background())
	must(t, err)
	switch n := m[key].(type) {
	case uint64:
		return int(n)
	case int64:
		return int(n)
	}
	t.Fatalf("info has no integer %q: %v", key, m[key])
	return 0
}

// A call blocked in PopWait does not hold up the calls after it on the
// same (and only) connection: they are answered while it waits. Without
// the push extension the Get waited behind the pop until its time-out.
func TestPopWaitDoesNotHoldUpOtherCalls(t *testing.T) {
	noLeaks(t)
	_, c := start(t, WithPoolSize(1))
	ctx := context.Background()
	must(t, c.CreateList(ctx, "q", nil))
	must(t, c.CreateDict(ctx, "d", nil))
	d := NewDict[string, int](c, "d")
	must(t, d.Set(ctx, "k", 7))
	q := NewList[string](c, "q")

	type res struct {
		v   string
		ok  bool
		err error
	}
	got := make(chan res, 1)
	go func() {
		v, ok, err := q.PopWait(ctx, Left, 0)
		got <- res{v, ok, err}
	}()
	waitFor(t, "the pop to park", func() bool { return infoInt(t, c, "blocked_requests") == 1 })
	if s := c.Stats(); s.Open != 1 || s.Blocked != 1 || s.InFlight != 0 {
		t.Fatalf("stats with one blocked pop: %v", s)
	}
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for range 100 {
		if n, err := d.Get(gctx, "k"); err != nil || n != 7 {
			t.Fatalf("Get behind a blocked pop: %v, %v", n, err)
		}
	}
	select {
	case r := <-got:
		t.Fatalf("the pop returned before any value was pushed: %+v", r)
	default:
	}
	_, err := q.Append(ctx, "job")
	must(t, err)
	if r := <-got; r.err != nil || !r.ok || r.v != "job" {
		t.Fatalf("PopWait = %+v, want job", r)
	}
	if s := c.Stats(); s.Blocked != 0 || s.InFlight != 0 {
		t.Fatalf("stats after the pop: %v", s)
	}
}

// A cancelled context ends the wait promptly, with ctx's error; the
// daemon forgets the waiter (a later value stays in the list), and the
// connection goes on serving.
func TestPopWaitCancel(t *testing.T) {
	noLeaks(t)
	_, c := start(t, WithPoolSize(1))
	ctx := context.Background()
	must(t, c.CreateList(ctx, "q", nil))
	q := NewList[int](c, "q")

	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, _, err := q.PopWait(cctx, Right, time.Hour)
		errc <- err
	}()
	waitFor(t, "the pop to park", func() bool { return infoInt(t, c, "blocked_requests") == 1 })
	start := time.Now()
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("PopWait after cancel: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("PopWait took %v to return after cancel", d)
	}
	if n := infoInt(t, c, "blocked_requests"); n != 0 {
		t.Fatalf("blocked_requests = %d after cancel, want 0", n)
	}
	_, err = q.Append(ctx, 1)
	must(t, err)
	if n, err := q.Len(ctx); err != nil || n != 1 {
		t.Fatalf("Len after cancel and append = %d, %v: the value went to a cancelled waiter", n, err)
	}
	if s := c.Stats(); s.Blocked != 0 || s.InFlight != 0 || s.Open != 1 {
		t.Fatalf("stats after cancel: %v", s)
	}
}

// A blocked pop cancelled while the daemon is stopped (SIGSTOP): nobody
// answers the cancel, and the caller still returns, with its context's
// error, within the dial time-out. Once the daemon runs again it has
// forgotten the waiter: a value appended then stays in the list; and the
// Client goes on working.
func TestPopWaitCancelUnanswered(t *testing.T) {
	noLeaks(t)
	const dialTimeout = 500 * time.Millisecond
	d, c := start(t, WithPoolSize(1), WithDialTimeout(dialTimeout))
	ctx := context.Background()
	must(t, c.CreateList(ctx, "q", nil))
	q := NewList[int](c, "q")

	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, _, err := q.PopWait(cctx, Right, time.Hour)
		errc <- err
	}()
	waitFor(t, "the pop to park", func() bool { return infoInt(t, c, "blocked_requests") == 1 })
	stopDaemon(t, d)
	stopped := true
	defer func() {
		if stopped {
			_ = d.Signal(syscall.SIGCONT)
		}
	}()
	start := time.Now()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("PopWait after cancel: %v, want context.Canceled", err)
		}
		t.Logf("PopWait returned %s after its cancel: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(30 * time.Second):
		t.Fatal("PopWait still waits for its cancel's answer 30 s after it, the daemon stopped")
	}
	must(t, d.Signal(syscall.SIGCONT))
	stopped = false
	waitFor(t, "the daemon to forget the waiter", func() bool { return infoInt(t, c, "blocked_requests") == 0 })
	_, err := q.Append(ctx, 1)
	must(t, err)
	if n, err := q.Len(ctx); err != nil || n != 1 {
		t.Fatalf("Len after the cancel and an append = %d, %v: the value went to the cancelled waiter", n, err)
	}
}

// Many blocked calls cancelled at once while values arrive: each value is
// either returned to a caller (possibly one whose context just ended) or
// left in the list; none is lost, none given twice.
func TestPopWaitCancelRace(t *testing.T) {
	noLeaks(t)
	_, c := start(t, WithPoolSize(2))
	ctx := context.Background()
	must(t, c.CreateList(ctx, "q", nil))
	q := NewList[int](c, "q")
	const n = 200
	cctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	got := map[int]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, ok, err := q.PopWait(cctx, Left, 0)
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("PopWait: %v", err)
			}
			if ok {
				mu.Lock()
				got[v]++
				mu.Unlock()
			}
		}()
	}
	waitFor(t, "the pops to park", func() bool { return infoInt(t, c, "blocked_requests") == n })
	var pw sync.WaitGroup
	pw.Add(1)
	go func() {
		defer pw.Done()
		for i := range n {
			if _, err := q.Append(ctx, i); err != nil {
				t.Error(err)
				return
			}
			if i == n/2 {
				cancel()
			}
		}
	}()
	pw.Wait()
	cancel()
	wg.Wait()
	left, err := q.Values(ctx)
	must(t, err)
	for _, v := range left {
		got[v]++
	}
	for i := range n {
		if got[i] != 1 {
			t.Errorf("value %d seen %d times (popped or left), want 1", i, got[i])
		}
	}
	if len(got) != n {
		t.Errorf("%d distinct values, want %d", len(got), n)
	}
}

func TestPopWaitTimeouts(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	must(t, c.CreateList(ctx, "q", nil))
	q := NewList[string](c, "q")

	// timeout < 0: no wait.
	if _, ok, err := q.PopWait(ctx, Left, -1); ok || err != nil {
		t.Fatalf("PopWait(-1) on an empty list = %v, %v", ok, err)
	}
	// timeout > 0: nothing within it.
	t0 := time.Now()
	if _, ok, err := q.PopWait(ctx, Left, 50*time.Millisecond); ok || err != nil {
		t.Fatalf("PopWait(50ms) on an empty list = %v, %v", ok, err)
	}
	if d := time.Since(t0); d < 45*time.Millisecond {
		t.Errorf("PopWait(50ms) returned after %v", d)
	}
	// A ctx deadline is a time-out too, reported as ctx's error.
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, ok, err := q.PopWait(dctx, Left, 0); ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("PopWait under a 50ms ctx = %v, %v, want DeadlineExceeded", ok, err)
	}
	// A value there is taken at once, whatever the time-out.
	_, err := q.Append(ctx, "a", "b")
	must(t, err)
	if v, ok, err := q.PopWait(ctx, Left, -1); v != "a" || !ok || err != nil {
		t.Fatalf("PopWait(Left) = %q, %v, %v", v, ok, err)
	}
	if v, ok, err := q.PopWait(ctx, Right, time.Second); v != "b" || !ok || err != nil {
		t.Fatalf("PopWait(Right) = %q, %v, %v", v, ok, err)
	}
	// Errors: a missing list, a dict.
	must(t, c.CreateDict(ctx, "d", nil))
	if _, _, err := NewList[string](c, "nope").PopWait(ctx, Left, time.Second); !errors.Is(err, ErrNoTable) {
		t.Fatalf("PopWait on a missing list: %v", err)
	}
	if _, _, err := NewList[string](c, "d").PopWait(ctx, Left, time.Second); !errors.Is(err, ErrWrongKind) {
		t.Fatalf("PopWait on a dict: %v", err)
	}
}

func TestClientPopWaitSeveralLists(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	for _, n := range []string{"hi", "lo"} {
		must(t, c.CreateList(ctx, n, nil))
	}
	_, err := NewList[int](c, "lo").Append(ctx, 1, 2)
	must(t, err)
	_, err = NewList[int](c, "hi").Append(ctx, 10)
	must(t, err)
	var order []string
	for range 3 {
		tbl, v, ok, err := PopWaitFirst[int](ctx, c, Left, time.Second, "hi", "lo")
		if err != nil || !ok {
			t.Fatalf("PopWaitFirst: %v %v", ok, err)
		}
		order = append(order, fmt.Sprintf("%s:%d", tbl, v))
	}
	if fmt.Sprint(order) != "[hi:10 lo:1 lo:2]" {
		t.Fatalf("order = %v, want hi first, then lo from the left", order)
	}
	// Waiting on both, a value pushed to either wakes it; the untyped form.
	done := make(chan string, 1)
	go func() {
		tbl, raw, ok, err := c.PopWait(ctx, Right, 0, "hi", "lo")
		var v int
		if err == nil && ok {
			err = wire.Unmarshal(raw, &v)
		}
		done <- fmt.Sprintf("%s:%d %v %v", tbl, v, ok, err)
	}()
	waitFor(t, "the pop to park", func() bool { return infoInt(t, c, "blocked_requests") == 1 })
	_, err = NewList[int](c, "lo").Append(ctx, 5)
	must(t, err)
	if got := <-done; got != "lo:5 true <nil>" {
		t.Fatalf("Client.PopWait = %s", got)
	}
	if _, _, _, err := c.PopWait(ctx, Left, time.Second); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("PopWait of no list: %v", err)
	}
}

func TestMoveWait(t *testing.T) {
	noLeaks(t)
	_, c := start(t, WithPoolSize(1))
	ctx := context.Background()
	must(t, c.CreateList(ctx, "jobs", nil))
	must(t, c.CreateList(ctx, "work", nil))
	jobs, work := NewList[string](c, "jobs"), NewList[string](c, "work")
	done := make(chan string, 1)
	go func() {
		v, ok, err := jobs.MoveWait(ctx, work, Left, Right, 0)
		done <- fmt.Sprintf("%v %v %v", v, ok, err)
	}()
	waitFor(t, "the move to park", func() bool { return infoInt(t, c, "blocked_requests") == 1 })
	_, err := jobs.Append(ctx, "j1")
	must(t, err)
	if got := <-done; got != "j1 true <nil>" {
		t.Fatalf("MoveWait = %s", got)
	}
	if vs, err := work.Values(ctx); err != nil || fmt.Sprint(vs) != "[j1]" {
		t.Fatalf("work = %v, %v", vs, err)
	}
	if _, ok, err := jobs.MoveWait(ctx, work, Left, Right, 20*time.Millisecond); ok || err != nil {
		t.Fatalf("MoveWait time-out = %v, %v", ok, err)
	}
}

// A daemon killed while a pop waits: the pop fails with ErrConnClosed
// and is not resent (it may have taken a value just before the crash).
// One stopped cleanly (SIGTERM) cancels its parked calls without a reply,
// "not executed": the pop is resent to the restarted daemon and gets the
// value pushed there.
func TestPopWaitAcrossDaemonLoss(t *testing.T) {
	noLeaks(t)
	d, c := start(t, WithDialTimeout(30*time.Second))
	ctx := context.Background()
	must(t, c.CreateList(ctx, "q", nil))
	must(t, c.Save(ctx))
	q := NewList[string](c, "q")

	errc := make(chan error, 1)
	go func() { _, _, err := q.PopWait(ctx, Left, 0); errc <- err }()
	waitFor(t, "the pop to park", func() bool { return infoInt(t, c, "blocked_requests") == 1 })
	d.Kill(t)
	if err := <-errc; !errors.Is(err, ErrConnClosed) {
		t.Fatalf("PopWait across SIGKILL: %v, want ErrConnClosed", err)
	}
	d.Restart(t)

	got := make(chan string, 1)
	go func() { v, ok, err := q.PopWait(ctx, Left, 0); got <- fmt.Sprintf("%v %v %v", v, ok, err) }()
	waitFor(t, "the pop to park", func() bool { return infoInt(t, c, "blocked_requests") == 1 })
	d.Stop(t)
	d.Restart(t)
	waitFor(t, "the pop to be resent", func() bool { return infoInt(t, c, "blocked_requests") == 1 })
	_, err := q.Append(ctx, "after-restart")
	must(t, err)
	if r := <-got; r != "after-restart true <nil>" {
		t.Fatalf("PopWait across a clean restart = %s", r)
	}
	if s := c.Stats(); s.Retries == 0 {
		t.Errorf("no retry counted: %v", s)
	}
}

// The goal: 1,000 goroutines blocked in pops on one Client use
// its normal few connections (the daemon counts them), and a Get from
// another goroutine meanwhile is answered (BenchmarkGetWhileBlocked
// measures how fast).
func TestThousandBlockedPops(t *testing.T) {
	noLeaks(t)
	_, c := start(t)
	ctx := context.Background()
	must(t, c.CreateList(ctx, "q", nil))
	must(t, c.CreateDict(ctx, "d", nil))
	d := NewDict[string, int](c, "d")
	must(t, d.Set(ctx, "k", 1))
	q := NewList[int](c, "q")
	const n = 1000
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int]bool{}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, ok, err := q.PopWait(ctx, Left, 0)
			if err != nil || !ok {
				t.Errorf("PopWait: %v %v", ok, err)
				return
			}
			mu.Lock()
			seen[v] = true
			mu.Unlock()
		}()
	}
	waitFor(t, "1000 pops to park", func() bool { return infoInt(t, c, "blocked_requests") == n })
	if conns, s := infoInt(t, c, "connections"), c.Stats(); conns > DefaultPoolSize || s.Open > DefaultPoolSize || s.Blocked != n {
		t.Fatalf("1000 blocked pops: the daemon counts %d connections (pool size %d); stats %v", conns, DefaultPoolSize, s)
	}
	// A generous bound: on a loaded 2-core machine a Get takes well under
	// a millisecond; one waiting behind a pop would take for ever.
	for range 100 {
		gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := d.Get(gctx, "k")
		cancel()
		must(t, err)
	}
	vals := make([]int, n)
	for i := range vals {
		vals[i] = i
	}
	_, err := q.Extend(ctx, vals)
	must(t, err)
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d distinct values popped, want %d", len(seen), n)
	}
}

// BenchmarkGetWhileBlocked is BenchmarkGet with 0 or 1,000 goroutines
// blocked in PopWait on the same Client.
func BenchmarkGetWhileBlocked(b *testing.B) {
	for _, blocked := range []int{0, 1000} {
		b.Run(fmt.Sprintf("blocked=%d", blocked), func(b *testing.B) {
			_, c := start(b)
			ctx := context.Background()
			must(b, c.CreateList(ctx, "q", nil))
			must(b, c.CreateDict(ctx, "d", nil))
			d := NewDict[string, string](c, "d")
			must(b, d.Set(ctx, "key", "value-of-some-length"))
			q := NewList[int](c, "q")
			pctx, cancel := context.WithCancel(ctx)
			var wg sync.WaitGroup
			for range blocked {
				wg.Add(1)
				go func() { defer wg.Done(); _, _, _ = q.PopWait(pctx, Left, 0) }()
			}
			waitFor(b, "the pops to park", func() bool { return infoInt(b, c, "blocked_requests") == blocked })
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := d.Get(ctx, "key"); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cancel()
			wg.Wait()
		})
	}
}

// Client.Close ends a blocked call at once with ErrClosed; the daemon
// forgets the waiter (the connection closed), so a value pushed later
// stays in the list.
func TestPopWaitClientClose(t *testing.T) {
	noLeaks(t)
	d, c := start(t)
	ctx := context.Background()
	must(t, c.CreateList(ctx, "q", nil))
	errc := make(chan error, 1)
	go func() { _, _, err := NewList[int](c, "q").PopWait(ctx, Left, 0); errc <- err }()
	waitFor(t, "the pop to park", func() bool { return infoInt(t, c, "blocked_requests") == 1 })
	must(t, c.Close())
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("PopWait after Close: %v, want ErrClosed", err)
	}
	c2 := open(t, d.Socket)
	waitFor(t, "the waiter to go", func() bool { return infoInt(t, c2, "blocked_requests") == 0 })
	_, err := NewList[int](c2, "q").Append(ctx, 1)
	must(t, err)
	if n, err := NewList[int](c2, "q").Len(ctx); n != 1 || err != nil {
		t.Fatalf("Len = %d, %v: the value went to a closed client", n, err)
	}
}
