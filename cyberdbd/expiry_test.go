package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Expiry with the real binary (issue 14's goals). The fake-clock test of
// every read op at, before and after a deadline is the store's
// TestExpiredNeverVisible; these check what only the daemon can show.

// deadlinesOf reads the absolute deadline of keys 0..n-1 of table t
// (0: none, -1: no such key), pipelined.
func deadlinesOf(t *testing.T, c *daemontest.Conn, table string, n int) []int64 {
	t.Helper()
	out := make([]int64, n)
	for lo := 0; lo < n; lo += 512 {
		hi := min(lo+512, n)
		for i := lo; i < hi; i++ {
			if _, err := c.Send(wire.OpDTTL, table, i, true); err != nil {
				t.Fatal(err)
			}
		}
		for i := lo; i < hi; i++ {
			r, err := c.Read()
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case r.Code == wire.CodeKeyNotFound:
				out[i] = -1
			case r.Code != wire.CodeOK:
				t.Fatalf("dttl %s %d: code %s", table, i, r.Code)
			case r.Result.IsNull():
				out[i] = 0
			default:
				if err := wire.Unmarshal(r.Result, &out[i]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return out
}

// TestDeadlinesSurviveRestart: 5000 entries with deadlines to the
// millisecond (set as TTLs from now, as absolute times, by a table
// default, by dgetex, in a batch), a table deadline, then SIGKILL and
// restart, then SIGTERM and restart: every deadline is the same to the
// millisecond, and the entries whose deadline passed while the daemon was
// down are gone.
func TestDeadlinesSurviveRestart(t *testing.T) {
	d := daemontest.Start(t, "--fsync=always")
	c := daemontest.DialHello(t, d.Socket)
	const n = 5000
	now := time.Now().UnixMilli()
	c.MustCall(t, nil, wire.OpCreateDict, "s", nil, map[string]any{"ttl": 3_600_000})
	c.MustCall(t, nil, wire.OpCreateList, "work", []any{1})
	c.MustCall(t, nil, wire.OpExpire, "work", map[string]any{"at": now + 7_777_777})
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		var err error
		switch i % 5 {
		case 0:
			_, err = c.Call(wire.OpDSet, "s", i, i, map[string]any{"ttl": 60_000 + rng.IntN(10_000_000)})
		case 1:
			_, err = c.Call(wire.OpDSet, "s", i, i, map[string]any{"at": now + 60_000 + int64(rng.IntN(10_000_000))})
		case 2:
			_, err = c.Call(wire.OpDSet, "s", i, i) // the table's default
		case 3:
			_, err = c.Call(wire.OpBatch, []any{[]any{uint64(wire.OpDSet), "s", i, i}, []any{uint64(wire.OpDGetEx), "s", i, map[string]any{"ttl": 60_000 + rng.IntN(1000)}}})
		case 4: // below
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// A fifth expires while the daemon is down.
	var soon [][2]int
	for i := 4; i < n; i += 5 {
		soon = append(soon, [2]int{i, i})
	}
	downUntil := time.Now().Add(1500 * time.Millisecond)
	c.MustCall(t, nil, wire.OpDUpdate, "s", soon, map[string]any{"at": downUntil.UnixMilli()})
	want := deadlinesOf(t, c, "s", n)
	var tableTTL int64
	c.MustCall(t, &tableTTL, wire.OpTTL, "work", true)
	c.Close()
	for i, dl := range want {
		if dl <= 0 {
			t.Fatalf("key %d has no deadline (%d)", i, dl)
		}
	}

	for _, how := range []string{"SIGKILL", "SIGTERM"} {
		if how == "SIGKILL" {
			d.Kill(t)
		} else {
			d.Stop(t)
		}
		time.Sleep(time.Until(downUntil)) // the fifth expires while down
		d.Restart(t)
		c = daemontest.DialHello(t, d.Socket)
		got := deadlinesOf(t, c, "s", n)
		gone := 0
		for i := range want {
			if want[i] <= time.Now().UnixMilli() {
				if got[i] != -1 {
					t.Fatalf("after %s: key %d, whose deadline %d passed, is there (%d)", how, i, want[i], got[i])
				}
				gone++
				continue
			}
			if got[i] != want[i] {
				t.Fatalf("after %s: key %d has deadline %d, want %d", how, i, got[i], want[i])
			}
		}
		var tt int64
		c.MustCall(t, &tt, wire.OpTTL, "work", true)
		if tt != tableTTL {
			t.Fatalf("after %s: the table's deadline is %d, want %d", how, tt, tableTTL)
		}
		if gone != n/5 {
			t.Fatalf("after %s: %d entries expired while down, want %d", how, gone, n/5)
		}
		t.Logf("after %s: %d deadlines the same to the millisecond, %d entries expired while down", how, n-gone, gone)
		c.Close()
	}
}

// TestMillionExpireAtOnce: a million entries expiring in the same second
// are all gone, and their memory back to the OS, within 2 s after the
// deadline (the goal; asserted with room for a loaded machine),
// while a client doing gets on another table keeps its p99 low.
func TestMillionExpireAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 1M entries")
	}
	bin := daemontest.Build(t, daemontest.BuildOptions{NoRace: true})
	d := daemontest.StartBinary(t, bin, "--snapshot-interval=0")
	pid := d.Cmd.Process.Pid
	c := daemontest.DialHello(t, d.Socket)
	c.MustCall(t, nil, wire.OpCreateDict, "other")
	for i := range 1000 {
		c.MustCall(t, nil, wire.OpDSet, "other", i, fmt.Sprintf("value:%026d", i))
	}
	const entries, per = 1_000_000, 10_000
	before := rssMiB(t, pid)
	c.MustCall(t, nil, wire.OpCreateDict, "sessions")
	deadline := time.Now().Add(6 * time.Second).Truncate(time.Second)
	if time.Until(deadline) < 5*time.Second {
		deadline = deadline.Add(time.Second)
	}
	for b := range entries / per {
		pairs := wire.AppendArrayHeader(nil, per)
		for i := b * per; i < (b+1)*per; i++ {
			pairs = wire.AppendArrayHeader(pairs, 2)
			pairs = wire.AppendText(pairs, fmt.Sprintf("key:%012d", i))
			pairs = wire.AppendText(pairs, fmt.Sprintf("value:%026d", i))
		}
		// Deadlines spread over the one second before the deadline.
		c.MustCall(t, nil, wire.OpDUpdate, "sessions", wire.Raw(pairs), map[string]any{"at": deadline.UnixMilli() - int64(b%1000)})
	}
	loaded := rssMiB(t, pid)
	if time.Now().After(deadline.Add(-time.Second)) {
		t.Skipf("loading took too long on this machine: %v left before the deadline", time.Until(deadline))
	}

	// The other client: gets, one at a time, until told to stop.
	var (
		mu   sync.Mutex
		lats []time.Duration
	)
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		g := daemontest.DialHello(t, d.Socket)
		defer g.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			t0 := time.Now()
			if _, err := g.Call(wire.OpDGet, "other", i%1000); err != nil {
				done <- err
				return
			}
			lat := time.Since(t0)
			if now := time.Now(); now.After(deadline.Add(-500*time.Millisecond)) && now.Before(deadline.Add(2*time.Second)) {
				mu.Lock()
				lats = append(lats, lat)
				mu.Unlock()
			}
		}
	}()

	var gone time.Duration
	for {
		var n int64
		c.MustCall(t, &n, wire.OpDLen, "sessions")
		info := map[string]any{}
		c.MustCall(t, &info, wire.OpInfo)
		if ex, _ := info["expired"].(uint64); ex == entries {
			gone = time.Since(deadline)
			break
		}
		if time.Since(deadline) > 20*time.Second {
			t.Fatalf("20s after the deadline, info says %v expired", info["expired"])
		}
		time.Sleep(20 * time.Millisecond)
	}
	after := settle(t, pid, before)
	back := time.Since(deadline)
	time.Sleep(time.Until(deadline.Add(2 * time.Second)))
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	slices.Sort(lats)
	if len(lats) < 100 {
		t.Fatalf("only %d gets measured around the deadline", len(lats))
	}
	p99, max := lats[len(lats)*99/100], lats[len(lats)-1]
	t.Logf("1M entries expiring within one second: all removed %v after the deadline; RSS %.0f MiB before loading, %.0f MiB loaded, %.0f MiB %v after the deadline; gets on another table meanwhile: %d, p99 %v, max %v",
		gone.Round(time.Millisecond), before, loaded, after, back.Round(100*time.Millisecond), len(lats), p99, max)
	if gone > 2*time.Second {
		t.Errorf("the entries were removed %v after the deadline, want within 2s", gone)
	}
	if after > before+64 {
		t.Errorf("RSS %.0f MiB %v after the deadline, %.0f MiB before loading", after, back, before)
	}
	if p99 > 10*time.Millisecond { // the goal is 2ms; this bound holds on a loaded machine
		t.Errorf("p99 of gets on another table %v while 1M entries expired", p99)
	}
	if os.Getenv("CYBERDB_EXPIRY_STRICT") != "" && (p99 > 2*time.Millisecond || back > 2*time.Second) {
		t.Errorf("the goals: p99 %v (want < 2ms), memory back %v after the deadline (want < 2s)", p99, back)
	}
}

// TestMaxMemory: with --max-memory, loading a table until the daemon is
// over the limit ends with out_of_memory, not with a daemon that grows
// without bound; reads, deletes and drops go on; a cache table takes
// writes by evicting; once the data is dropped, writes are accepted again.
func TestMaxMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 64 MiB")
	}
	bin := daemontest.Build(t, daemontest.BuildOptions{NoRace: true})
	d := daemontest.StartBinary(t, bin, "--max-memory=48MiB", "--appendonly=false", "--snapshot-interval=0")
	c := daemontest.DialHello(t, d.Socket)
	c.MustCall(t, nil, wire.OpCreateDict, "cache", nil, map[string]any{"evict": "lru"})
	for i := range 100 {
		c.MustCall(t, nil, wire.OpDSet, "cache", i, fmt.Sprintf("%0100d", i))
	}
	c.MustCall(t, nil, wire.OpCreateDict, "big")
	const per = 5000
	var refused error
	loaded := 0
	for b := 0; b < 400 && refused == nil; b++ { // at most 2M entries, ~250 MiB
		pairs := wire.AppendArrayHeader(nil, per)
		for i := b * per; i < (b+1)*per; i++ {
			pairs = wire.AppendArrayHeader(pairs, 2)
			pairs = wire.AppendText(pairs, fmt.Sprintf("key:%012d", i))
			pairs = wire.AppendText(pairs, fmt.Sprintf("%0100d", i))
		}
		if _, err := c.Call(wire.OpDUpdate, "big", wire.Raw(pairs)); err != nil {
			refused = err
		} else {
			loaded += per
		}
		time.Sleep(2 * time.Millisecond) // let the guard see each collection
	}
	var we *wire.Error
	if !errors.As(refused, &we) || we.Code != wire.CodeOutOfMemory {
		t.Fatalf("after %d entries: %v, want out_of_memory", loaded, refused)
	}
	info := map[string]any{}
	c.MustCall(t, &info, wire.OpInfo)
	t.Logf("refused after %d entries of 100 bytes: used_memory %v, max_memory %v, RSS %.0f MiB",
		loaded, info["used_memory"], info["max_memory"], rssMiB(t, d.Cmd.Process.Pid))
	if info["over_memory"] != true || info["max_memory"] != uint64(48<<20) {
		t.Fatalf("info: %v", info)
	}
	// Reads and deletes go on; a plain write does not; a cache table evicts.
	var v string
	c.MustCall(t, &v, wire.OpDGet, "big", "key:000000000001")
	c.MustCall(t, nil, wire.OpDDel, "big", "key:000000000001")
	if _, err := c.Call(wire.OpDSet, "big", "new", 1); !errors.As(err, &we) || we.Code != wire.CodeOutOfMemory {
		t.Fatalf("dset while over: %v", err)
	}
	for i := 100; i < 200; i++ {
		c.MustCall(t, nil, wire.OpDSet, "cache", i, fmt.Sprintf("%0100d", i))
	}
	var n int
	c.MustCall(t, &n, wire.OpDLen, "cache")
	if n > 110 {
		t.Fatalf("the cache table holds %d entries after 100 more writes over the limit: it did not evict", n)
	}
	// Dropping the data brings the daemon under the limit again.
	c.MustCall(t, nil, wire.OpDrop, "big")
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := c.Call(wire.OpDSet, "cache", "after", 1)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("20s after the drop, writes are still refused: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
