package main

// Outside tests through libcyberdb's public API, as a user would call it:
// PopWait whose contexts end while values arrive, Lock leases, and a
// Queue whose daemon is SIGKILLed.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb"
)

// TestOutsidePopWaitCancelStorm: goroutines PopWait with contexts that end
// at random moments while producers push; a value is either returned to
// exactly one caller or still in the list (the doc: "If a value was
// handed to the call just as ctx ended, the value is returned with a nil
// error rather than dropped").
func TestOutsidePopWaitCancelStorm(t *testing.T) {
	d := daemontest.Start(t)
	ctx := context.Background()
	c := daemontest.Open(t, libcyberdb.Open, d.Socket, libcyberdb.WithPoolSize(2))
	daemontest.Must(t, c.CreateList(ctx, "q", nil))
	q := libcyberdb.NewList[string](c, "q")

	const producers, per, consumers = 4, 150, 16
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	done := make(chan struct{})
	for g := 0; g < consumers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				cctx, cancel := context.WithTimeout(ctx, time.Duration(1+(g*7+i)%5)*time.Millisecond)
				v, ok, err := q.PopWait(cctx, libcyberdb.Left, 0)
				cancel()
				switch {
				case err == nil && ok:
					mu.Lock()
					got[v]++
					mu.Unlock()
				case err == nil:
					// time-out: the ctx deadline was sent as the time-out
				case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
					if ok {
						t.Errorf("PopWait: ok with error %v", err)
					}
				default:
					t.Errorf("PopWait: %v", err)
					return
				}
			}
		}(g)
	}
	var pwg sync.WaitGroup
	for p := 0; p < producers; p++ {
		pwg.Add(1)
		go func(p int) {
			defer pwg.Done()
			for i := 0; i < per; i++ {
				if _, err := q.Append(ctx, stormValue(p, i)); err != nil {
					t.Errorf("append: %v", err)
					return
				}
				if i%16 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}(p)
	}
	pwg.Wait()
	time.Sleep(50 * time.Millisecond)
	close(done)
	wg.Wait()
	left, err := q.Values(ctx)
	daemontest.Must(t, err)
	for _, v := range left {
		got[v]++
	}
	var bad []string
	for p := 0; p < producers; p++ {
		for i := 0; i < per; i++ {
			if v := stormValue(p, i); got[v] != 1 {
				bad = append(bad, fmt.Sprintf("%s:%d", v, got[v]))
			}
		}
	}
	if len(bad) > 0 {
		t.Fatalf("%d values not seen exactly once (returned + left): %v", len(bad), bad)
	}
	t.Logf("%d values, %d left in the list", producers*per, len(left))
}

// TestOutsideLock: one holder at a time; a lease that ran out can be
// taken; the old holder can neither renew nor release the new one's.
func TestOutsideLock(t *testing.T) {
	d := daemontest.Start(t, "--fsync=always")
	ctx := context.Background()
	c := daemontest.Open(t, libcyberdb.Open, d.Socket)
	daemontest.Must(t, c.CreateDict(ctx, "locks", nil))
	a := libcyberdb.NewLock(c, "locks", "job", 150*time.Millisecond)
	b := libcyberdb.NewLock(c, "locks", "job", time.Minute)
	if ok, err := a.TryAcquire(ctx); err != nil || !ok {
		t.Fatalf("a: %v %v", ok, err)
	}
	if ok, err := b.TryAcquire(ctx); err != nil || ok {
		t.Fatalf("b took a held lock: %v %v", ok, err)
	}
	if ok, err := b.Release(ctx); err != nil || ok {
		t.Fatalf("b released a's lock: %v %v", ok, err)
	}
	time.Sleep(200 * time.Millisecond)
	if ok, err := b.TryAcquire(ctx); err != nil || !ok {
		t.Fatalf("b after a's lease ran out: %v %v", ok, err)
	}
	if ok, err := a.Renew(ctx); err != nil || ok {
		t.Fatalf("a renewed b's lock: %v %v", ok, err)
	}
	if ok, err := a.Release(ctx); err != nil || ok {
		t.Fatalf("a released b's lock: %v %v", ok, err)
	}
	// The lock survives a crash with its deadline.
	locks := libcyberdb.NewDict[string, string](c, "locks")
	ttl0, has, err := locks.TTL(ctx, "job")
	if err != nil || !has {
		t.Fatalf("TTL: %v %v", has, err)
	}
	d.Kill(t)
	d.Restart(t)
	c2 := daemontest.Open(t, libcyberdb.Open, d.Socket)
	a2 := libcyberdb.NewLock(c2, "locks", "job", time.Minute)
	if ok, err := a2.TryAcquire(ctx); err != nil || ok {
		t.Fatalf("a lock held before a crash was free after it: %v %v", ok, err)
	}
	locks2 := libcyberdb.NewDict[string, string](c2, "locks")
	ttl1, has, err := locks2.TTL(ctx, "job")
	if err != nil || !has || ttl1 > ttl0 {
		t.Fatalf("TTL after restart %v (before %v), %v %v", ttl1, ttl0, has, err)
	}
	b2 := libcyberdb.NewLock(c2, "locks", "job", time.Minute)
	_ = b2
	// Many contenders: exactly one wins each round.
	for round := 0; round < 20; round++ {
		key := fmt.Sprintf("r%d", round)
		var wins sync.WaitGroup
		var n int
		var mu sync.Mutex
		for i := 0; i < 8; i++ {
			wins.Add(1)
			go func() {
				defer wins.Done()
				lk := libcyberdb.NewLock(c2, "locks", key, time.Minute)
				if ok, err := lk.TryAcquire(ctx); err == nil && ok {
					mu.Lock()
					n++
					mu.Unlock()
				} else if err != nil {
					t.Error(err)
				}
			}()
		}
		wins.Wait()
		if n != 1 {
			t.Fatalf("round %d: %d holders", round, n)
		}
	}
}

// TestOutsideQueueKill: workers take jobs from a Queue and ack them while
// the daemon is SIGKILLed; after the restart and Recover, every job put
// is acked, in the queue, or in a worker's in-progress list: none lost.
func TestOutsideQueueKill(t *testing.T) {
	d := daemontest.Start(t, "--fsync=always")
	ctx := context.Background()
	c := daemontest.Open(t, libcyberdb.Open, d.Socket)
	q := libcyberdb.NewQueue[string](c, "jobs")
	daemontest.Must(t, q.Create(ctx))
	const n = 300
	for i := 0; i < n; i++ {
		daemontest.Must(t, q.Put(ctx, fmt.Sprintf("job%03d", i)))
	}
	var mu sync.Mutex
	acked := map[string]int{}
	uncertain := map[string]bool{}
	var wg, ready sync.WaitGroup
	ready.Add(4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			wk, err := q.Worker(ctx, fmt.Sprintf("w%d", w), time.Second)
			ready.Done()
			if err != nil {
				t.Error(err) // registered before the kill (below)
				return
			}
			for {
				job, ok, err := wk.Take(ctx, 200*time.Millisecond)
				if err != nil || !ok {
					return
				}
				if err := wk.Ack(ctx, job); err != nil {
					// The daemon died: the ack may or may not have been
					// applied (its reply was lost), so the job may be
					// done and gone, or back in the queue.
					mu.Lock()
					uncertain[job] = true
					mu.Unlock()
					return
				}
				mu.Lock()
				acked[job]++
				mu.Unlock()
			}
		}(w)
	}
	// Killed once every worker is registered and some jobs are acked:
	// a fixed 30 ms once came before the registrations were done on a
	// loaded machine, and the test blamed the Worker calls the kill cut.
	ready.Wait()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		k := len(acked)
		mu.Unlock()
		if k >= 20 || time.Now().After(deadline) {
			break
		}
	}
	d.Kill(t)
	wg.Wait()
	d.Restart(t)
	c2 := daemontest.Open(t, libcyberdb.Open, d.Socket)
	q2 := libcyberdb.NewQueue[string](c2, "jobs")
	time.Sleep(1100 * time.Millisecond) // the leases run out
	if _, err := q2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	jobs, err := q2.Jobs().Values(ctx)
	daemontest.Must(t, err)
	seen := map[string]int{}
	for _, j := range jobs {
		seen[j]++
	}
	tables, err := c2.Tables(ctx)
	daemontest.Must(t, err)
	for _, ti := range tables {
		if ti.Kind == "list" && ti.Name != "jobs" {
			rest, err := libcyberdb.NewList[string](c2, ti.Name).Values(ctx)
			daemontest.Must(t, err)
			if len(rest) > 0 {
				t.Errorf("in-progress list %s still holds %v after Recover", ti.Name, rest)
			}
		}
	}
	var lost, twice []string
	for i := 0; i < n; i++ {
		j := fmt.Sprintf("job%03d", i)
		if acked[j]+seen[j] == 0 && !uncertain[j] {
			lost = append(lost, j)
		}
		if acked[j] > 1 || seen[j] > 1 {
			twice = append(twice, j)
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 || len(twice) > 0 {
		t.Fatalf("jobs lost %v, duplicated %v (acked %d, in the queue %d)", lost, twice, len(acked), len(jobs))
	}
	t.Logf("acked %d before the kill, %d back in the queue", len(acked), len(jobs))
}

// TestOutsideDictTTLEdges: libcyberdb's deadline methods at their edges,
// as their doc comments promise them.
func TestOutsideDictTTLEdges(t *testing.T) {
	d := daemontest.Start(t)
	ctx := context.Background()
	c := daemontest.Open(t, libcyberdb.Open, d.Socket)
	daemontest.Must(t, c.CreateDict(ctx, "d", nil))
	dict := libcyberdb.NewDict[string, int](c, "d")
	has := func(k string) bool {
		t.Helper()
		ok, err := dict.Has(ctx, k)
		daemontest.Must(t, err)
		return ok
	}
	// "A deadline in the past removes the key at once", however far past:
	// the zero time.Time and a time before 1970 included.
	for i, at := range []time.Time{time.Now().Add(-time.Hour), time.Unix(0, 0), time.Unix(-5, 0), {}} {
		k := fmt.Sprintf("past%d", i)
		daemontest.Must(t, dict.Set(ctx, k, 1))
		ok, err := dict.ExpireAt(ctx, k, at)
		if err != nil || !ok {
			t.Errorf("ExpireAt(%v): %v %v", at, ok, err)
		}
		if has(k) {
			t.Errorf("ExpireAt(%v): the key is still there", at)
		}
		// The same deadline as a write option.
		if err := dict.Set(ctx, k, 2, libcyberdb.ExpireAt(at)); err != nil {
			t.Errorf("Set with ExpireAt(%v): %v", at, err)
		} else if has(k) {
			t.Errorf("Set with ExpireAt(%v): the key is there", at)
		}
	}
	// "A ttl of 0 or less removes the key at once."
	for i, ttl := range []time.Duration{0, -time.Millisecond, time.Duration(math.MinInt64)} {
		k := fmt.Sprintf("neg%d", i)
		daemontest.Must(t, dict.Set(ctx, k, 1))
		ok, err := dict.Expire(ctx, k, ttl)
		if err != nil || !ok {
			t.Errorf("Expire(%v): %v %v", ttl, ok, err)
		}
		if has(k) {
			t.Errorf("Expire(%v): the key is still there", ttl)
		}
	}
	// A positive ttl under a millisecond does not remove the key at once
	// (TTL's doc: "at least 1ms").
	daemontest.Must(t, dict.Set(ctx, "tiny", 1, libcyberdb.TTL(time.Microsecond)))
	daemontest.Must(t, dict.Set(ctx, "k", 1))
	if ok, err := dict.Expire(ctx, "k", 10*time.Hour); err != nil || !ok {
		t.Fatal(ok, err)
	}
	left, hasDL, err := dict.TTL(ctx, "k")
	if err != nil || !hasDL || left > 10*time.Hour || left < 10*time.Hour-time.Minute {
		t.Fatalf("TTL: %v %v %v", left, hasDL, err)
	}
	if ok, err := dict.Persist(ctx, "k"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, hasDL, err := dict.TTL(ctx, "k"); err != nil || hasDL {
		t.Fatalf("TTL after Persist: %v %v", hasDL, err)
	}
	if _, _, err := dict.TTL(ctx, "absent"); !errors.Is(err, libcyberdb.ErrNotFound) {
		t.Fatalf("TTL of an absent key: %v", err)
	}
	// Far deadlines: the protocol takes "at" up to 2^47 ms (year 6429).
	far := time.UnixMilli(1 << 47)
	if err := dict.Set(ctx, "far", 1, libcyberdb.ExpireAt(far)); err != nil {
		t.Errorf("ExpireAt(%v): %v", far, err)
	}
	if _, err := dict.GetEx(ctx, "k", 0); err == nil {
		t.Errorf("GetEx with ttl 0: no error (its doc: ttl must be positive)")
	}
}
