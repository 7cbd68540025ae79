//go:build linux

package libcyberdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
)

// Adversarial, black-box tests of how a Unix connection moves its bytes
// once it has left Go's poller (raw non-blocking system calls, epoll
// instances of its own): big frames that fill the socket, contexts and
// Close that cut them, a daemon killed or stopped under them, descriptors
// that must neither leak nor be inherited by children.

// fdList returns the targets of this process's open descriptors, by fd.
func fdList(t testing.TB) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the directory's own descriptor, already closed
		}
		out[e.Name()] = target
	}
	return out
}

// fdSettle waits (up to 5 s) for the number of open descriptors to come
// back to at most want+slack, and fails with the extra ones if it does not.
func fdSettle(t testing.TB, before map[string]string, slack int, what string) {
	t.Helper()
	var now map[string]string
	for i := 0; i < 500; i++ {
		now = fdList(t)
		if len(now) <= len(before)+slack {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	var extra []string
	for fd, target := range now {
		if before[fd] != target {
			extra = append(extra, fd+" -> "+target)
		}
	}
	sort.Strings(extra)
	t.Errorf("%s: %d descriptors open, %d before (slack %d); new or changed:\n%s",
		what, len(now), len(before), slack, strings.Join(extra, "\n"))
}

// within runs f and fails the test (with every stack) if it takes longer
// than d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: still running after %v:\n%s", what, d, stacks())
	}
}

// bigValue is n bytes that say which value they are: a header naming tag
// and n, then a pattern that depends on tag, so a torn or swapped value
// does not pass checkBig.
func bigValue(tag string, n int) []byte {
	h := fmt.Sprintf("%s|%d|", tag, n)
	b := make([]byte, n)
	copy(b, h)
	seed := byte(len(tag)*31 + int(tag[len(tag)-1]))
	for i := len(h); i < n; i++ {
		b[i] = seed + byte(i*7)
	}
	return b
}

// errList collects errors from many goroutines, keeping the first few.
type errList struct {
	mu   sync.Mutex
	errs []error
	n    int
}

func (e *errList) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	if len(e.errs) < 20 {
		e.errs = append(e.errs, err)
	}
}

func (e *errList) report(t *testing.T) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, err := range e.errs {
		t.Error(err)
	}
	if e.n > len(e.errs) {
		t.Errorf("... and %d more errors", e.n-len(e.errs))
	}
}

// TestSockAdvBigValuesBeside: values of 1, 4 and 16 MiB go through one
// connection, both ways, while other goroutines make small calls on the
// same Client; every value comes back byte-exact, and nothing hangs.
func TestSockAdvBigValuesBeside(t *testing.T) {
	noLeaks(t)
	d := daemontest.Start(t, "--max-frame", "40MiB", "--max-partial-memory", "256MiB")
	for _, pool := range []int{1, 2} {
		t.Run("pool"+strconv.Itoa(pool), func(t *testing.T) {
			c := open(t, d.Socket, WithPoolSize(pool), WithTimeout(0))
			ctx := context.Background()
			table := "big" + strconv.Itoa(pool)
			must(t, c.CreateDict(ctx, table, nil))
			dict := NewDict[string, []byte](c, table)
			var errs errList
			var stop atomic.Bool
			var small atomic.Int64
			var wg, smallWG sync.WaitGroup
			for g := range 4 {
				smallWG.Add(1)
				go func() {
					defer smallWG.Done()
					for i := 0; !stop.Load(); i++ {
						key := fmt.Sprintf("s%d", g)
						val := []byte(fmt.Sprintf("%d-%d", g, i))
						if err := dict.Set(ctx, key, val); err != nil {
							errs.add(fmt.Errorf("small Set: %w", err))
							return
						}
						got, err := dict.Get(ctx, key)
						if err != nil || !bytes.Equal(got, val) {
							errs.add(fmt.Errorf("small Get %s: %q %v, want %q", key, got, err, val))
							return
						}
						small.Add(1)
					}
				}()
			}
			sizes := []int{1 << 20, 4 << 20, 16 << 20}
			for g, n := range sizes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for round := range 2 {
						tag := fmt.Sprintf("b%d-%d", g, round)
						v := bigValue(tag, n)
						key := "big" + strconv.Itoa(g)
						if err := dict.Set(ctx, key, v); err != nil {
							errs.add(fmt.Errorf("Set %d bytes: %w", n, err))
							return
						}
						got, err := dict.Get(ctx, key)
						if err != nil {
							errs.add(fmt.Errorf("Get %d bytes: %w", n, err))
							return
						}
						if !bytes.Equal(got, v) {
							errs.add(fmt.Errorf("Get %s: %d bytes, want %d, first difference at %d",
								key, len(got), len(v), firstDiff(got, v)))
							return
						}
					}
				}()
			}
			within(t, 120*time.Second, "big Set/Get", wg.Wait)
			stop.Store(true)
			within(t, 30*time.Second, "small calls", smallWG.Wait)
			errs.report(t)
			if small.Load() == 0 {
				t.Error("no small call completed")
			}
			if s := c.Stats(); s.LostConns != 0 {
				t.Errorf("stats %v: connections lost", s)
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSockAdvCancelMidBigWrite: with the daemon stopped (SIGSTOP), a big
// Set fills the socket and waits for room; its context ends mid-frame.
// Whatever the library does with the half-written frame, later calls on
// the same Client, once the daemon runs again, must succeed and return
// exactly what was written: no torn frame may reach the daemon as part of
// another request, and no reply may go to the wrong call.
func TestSockAdvCancelMidBigWrite(t *testing.T) {
	noLeaks(t)
	dd, c := start(t, WithPoolSize(1), WithTimeout(0))
	t.Cleanup(func() { dd.Signal(syscall.SIGCONT) }) // before the daemon's stop
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "d", nil))
	d := NewDict[string, []byte](c, "d")
	for round := range 3 {
		old := bigValue(fmt.Sprintf("old%d", round), 3<<20)
		key := "big" + strconv.Itoa(round)
		must(t, d.Set(ctx, key, old))

		must(t, dd.Signal(syscall.SIGSTOP))
		time.Sleep(50 * time.Millisecond)
		nv := bigValue(fmt.Sprintf("new%d", round), 6<<20)
		var setErr error
		var took time.Duration
		within(t, 20*time.Second, "cut big Set", func() {
			cctx, cancel := context.WithTimeout(ctx, time.Duration(100+100*round)*time.Millisecond)
			defer cancel()
			t0 := time.Now()
			setErr = d.Set(cctx, key, nv)
			took = time.Since(t0)
		})
		if !errors.Is(setErr, context.DeadlineExceeded) {
			t.Errorf("round %d: big Set to a stopped daemon: %v after %v, want DeadlineExceeded", round, setErr, took)
		}
		// A small call cut the same way while the big frame is stuck.
		within(t, 20*time.Second, "cut small Set", func() {
			cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			if err := d.Set(cctx, "small", []byte("cut")); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("round %d: small Set to a stopped daemon: %v, want DeadlineExceeded", round, err)
			}
		})
		must(t, dd.Signal(syscall.SIGCONT))

		within(t, 60*time.Second, "calls after SIGCONT", func() {
			got, err := d.Get(ctx, key)
			switch {
			case err != nil:
				t.Errorf("round %d: Get after the cut Set: %v", round, err)
			case !bytes.Equal(got, old) && !bytes.Equal(got, nv):
				t.Errorf("round %d: Get after the cut Set: %d bytes, neither the old value nor the new (header %q)",
					round, len(got), got[:min(len(got), 24)])
			}
			for i := range 20 {
				k := fmt.Sprintf("after%d-%d", round, i)
				v := bigValue(k, 1+i*9973)
				if err := d.Set(ctx, k, v); err != nil {
					t.Errorf("round %d: Set %s after the cut: %v", round, k, err)
					return
				}
				got, err := d.Get(ctx, k)
				if err != nil || !bytes.Equal(got, v) {
					t.Errorf("round %d: Get %s after the cut: %d bytes, %v; want %d bytes", round, k, len(got), err, len(v))
					return
				}
			}
		})
	}
	if n, err := NewDict[string, []byte](c, "d").Len(ctx); err != nil {
		t.Errorf("Len: %v", err)
	} else {
		t.Logf("%d keys; stats %v", n, c.Stats())
	}
}

// TestSockAdvCloseMidCalls: Client.Close while goroutines are in the
// middle of big writes (to a daemon too slow to take them), big reads,
// blocking pops and small calls: every call returns within a few seconds,
// no goroutine is left, and the descriptors come back to what they were.
func TestSockAdvCloseMidCalls(t *testing.T) {
	noLeaks(t)
	d := daemontest.Start(t, "--max-frame", "40MiB")
	t.Cleanup(func() { d.Signal(syscall.SIGCONT) }) // before the daemon's stop
	ctx := context.Background()
	setup := open(t, d.Socket)
	must(t, setup.CreateDict(ctx, "d", nil))
	must(t, setup.CreateList(ctx, "q", nil))
	bigs := bigValue("stored", 8<<20)
	must(t, NewDict[string, []byte](setup, "d").Set(ctx, "stored", bigs))
	must(t, setup.Close())

	before := fdList(t)
	for round := range 6 {
		c, err := Open(ctx, d.Socket, WithPoolSize(1+round%3), WithTimeout(0))
		if err != nil {
			exited, werr := d.Wait(time.Millisecond)
			t.Fatalf("round %d: Open: %v (daemon exited %v %v); its output:\n%s", round, err, exited, werr, d.Output())
		}
		dict := NewDict[string, []byte](c, "d")
		l := NewList[string](c, "q")
		var wg sync.WaitGroup
		var started atomic.Int64
		var errs errList
		for g := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					started.Add(1)
					var err error
					switch g % 4 {
					case 0:
						err = dict.Set(ctx, fmt.Sprintf("w%d", g), bigValue(fmt.Sprintf("w%d-%d", g, i), 5<<20))
					case 1:
						var v []byte
						v, err = dict.Get(ctx, "stored")
						if err == nil && !bytes.Equal(v, bigs) {
							errs.add(fmt.Errorf("big Get: %d bytes, wrong", len(v)))
						}
					case 2:
						_, _, err = l.PopWait(ctx, Left, 0)
					case 3:
						err = dict.Set(ctx, fmt.Sprintf("s%d", g), []byte("x"))
					}
					if err != nil {
						if !errors.Is(err, ErrClosed) && !errors.Is(err, ErrConnClosed) {
							errs.add(fmt.Errorf("goroutine %d after Close: %v (want ErrClosed or ErrConnClosed)", g, err))
						}
						return
					}
				}
			}()
		}
		for t0 := time.Now(); started.Load() < 24; time.Sleep(time.Millisecond) {
			if time.Since(t0) > 20*time.Second {
				exited, werr := d.Wait(time.Millisecond)
				errs.report(t)
				t.Fatalf("round %d: only %d calls started in 20s (daemon exited %v %v); its output:\n%s\n%s",
					round, started.Load(), exited, werr, d.Output(), stacks())
			}
		}
		// Stop the daemon for half the rounds, so the big writes are stuck
		// on a full socket when Close comes.
		stopped := round%2 == 1
		if stopped {
			must(t, d.Signal(syscall.SIGSTOP))
			time.Sleep(100 * time.Millisecond)
		} else {
			time.Sleep(time.Duration(20*round) * time.Millisecond)
		}
		within(t, 10*time.Second, fmt.Sprintf("round %d: Close", round), func() {
			if err := c.Close(); err != nil {
				t.Errorf("round %d: Close: %v", round, err)
			}
		})
		within(t, 10*time.Second, fmt.Sprintf("round %d: callers after Close", round), wg.Wait)
		if stopped {
			must(t, d.Signal(syscall.SIGCONT))
		}
		errs.report(t)
		if exited, err := d.Wait(time.Millisecond); exited {
			t.Fatalf("round %d: the daemon exited (%v); its output:\n%s", round, err, d.Output())
		}
		fdSettle(t, before, 0, fmt.Sprintf("round %d (stopped %v) after Close", round, stopped))
	}
}

// TestSockAdvOpenCloseLoop: 200 Clients opened, used (a call, sometimes
// on several connections at once) and closed leave no descriptor behind.
func TestSockAdvOpenCloseLoop(t *testing.T) {
	noLeaks(t)
	d := daemontest.Start(t)
	ctx := context.Background()
	// A first Client, so that whatever the process opens once (Go's
	// poller) is open before counting.
	c0, err := Open(ctx, d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	must(t, c0.Ping(ctx))
	must(t, c0.Close())
	before := fdList(t)
	for i := range 200 {
		c, err := Open(ctx, d.Socket, WithPoolSize(1+i%4))
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		if i%3 == 0 {
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := c.Ping(ctx); err != nil {
						t.Errorf("Ping %d: %v", i, err)
					}
				}()
			}
			wg.Wait()
		} else if err := c.Ping(ctx); err != nil {
			t.Fatalf("Ping %d: %v", i, err)
		}
		must(t, c.Close())
	}
	fdSettle(t, before, 1, "after 200 Clients")
}

// TestSockAdvKillUnderCalls: the daemon is killed (SIGKILL) while
// goroutines wait in blocking pops with no time-out and others write big
// values and make small calls: every call returns an error promptly (none
// hangs), and once the daemon runs again at the same socket, the same
// Client works.
func TestSockAdvKillUnderCalls(t *testing.T) {
	noLeaks(t)
	dd := daemontest.Start(t, "--max-frame", "40MiB")
	c := open(t, dd.Socket, WithPoolSize(2), WithTimeout(0), WithDialTimeout(time.Second))
	ctx := context.Background()
	for round := range 3 {
		// The daemon keeps its data across the restart (appendonly): new
		// names each round.
		q, dn := "q"+strconv.Itoa(round), "d"+strconv.Itoa(round)
		must(t, c.CreateList(ctx, q, nil))
		must(t, c.CreateDict(ctx, dn, nil))
		l := NewList[string](c, q)
		dict := NewDict[string, []byte](c, dn)
		var wg sync.WaitGroup
		var blocked, writing atomic.Int64
		var killed atomic.Bool
		var errs errList
		var ended sync.Map // goroutine -> error
		for g := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					var err error
					switch {
					case g < 4:
						blocked.Add(1)
						var v string
						var ok bool
						v, ok, err = l.PopWait(ctx, Left, 0)
						if err == nil {
							errs.add(fmt.Errorf("PopWait on an empty list returned %q %v", v, ok))
						}
					case g < 7:
						writing.Add(1)
						err = dict.Set(ctx, fmt.Sprintf("b%d", g), bigValue(fmt.Sprintf("b%d-%d", g, i), 4<<20))
					default:
						key := fmt.Sprintf("s%d", g)
						val := []byte(strconv.Itoa(i))
						if err = dict.Set(ctx, key, val); err == nil {
							var got []byte
							got, err = dict.Get(ctx, key)
							if err == nil && !bytes.Equal(got, val) {
								errs.add(fmt.Errorf("Get %s: %q, want %q", key, got, val))
							}
						}
					}
					if err != nil {
						if !killed.Load() {
							errs.add(fmt.Errorf("goroutine %d before the kill: %v", g, err))
						}
						ended.Store(g, err)
						return
					}
				}
			}()
		}
		for blocked.Load() < 4 || writing.Load() < 6 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		killed.Store(true)
		dd.Kill(t)
		within(t, 15*time.Second, fmt.Sprintf("round %d: calls after SIGKILL", round), wg.Wait)
		errs.report(t)
		ended.Range(func(k, v any) bool {
			t.Logf("round %d: goroutine %v: %v", round, k, v)
			return true
		})
		dd.Restart(t)
		within(t, 30*time.Second, "calls after restart", func() {
			must(t, c.CreateDict(ctx, "after", nil, IfNotExists()))
			a := NewDict[string, []byte](c, "after")
			for i := range 10 {
				v := bigValue("after"+strconv.Itoa(i), 1+i*300000)
				if err := a.Set(ctx, "k", v); err != nil {
					t.Errorf("round %d: Set after restart: %v", round, err)
					return
				}
				if got, err := a.Get(ctx, "k"); err != nil || !bytes.Equal(got, v) {
					t.Errorf("round %d: Get after restart: %d bytes, %v; want %d", round, len(got), err, len(v))
					return
				}
			}
			must(t, c.Drop(ctx, "after"))
		})
	}
}

// TestSockAdvStoppedDeadlines: with the daemon stopped (SIGSTOP), calls
// bounded by their contexts' deadlines or by WithTimeout, small and big
// (the big ones stuck on a full socket), end by their bound with
// context.DeadlineExceeded; once the daemon runs again, a key written by
// a cut call holds nothing or exactly that call's value, and every caller
// reads back its own writes.
func TestSockAdvStoppedDeadlines(t *testing.T) {
	noLeaks(t)
	dd, c := start(t, WithPoolSize(2), WithTimeout(400*time.Millisecond))
	t.Cleanup(func() { dd.Signal(syscall.SIGCONT) }) // before the daemon's stop
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "d", nil))
	d := NewDict[string, []byte](c, "d")
	for round := range 3 {
		must(t, dd.Signal(syscall.SIGSTOP))
		time.Sleep(50 * time.Millisecond)
		var wg sync.WaitGroup
		var errs errList
		cut := map[string][]byte{}
		var mu sync.Mutex
		for g := range 16 {
			key := fmt.Sprintf("r%d-g%d", round, g)
			n := 100
			if g%4 == 0 {
				n = 2 << 20
			}
			v := bigValue(key, n)
			mu.Lock()
			cut[key] = v
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				t0 := time.Now()
				bound := 400 * time.Millisecond
				if g%2 == 0 {
					bound = time.Duration(100+g*20) * time.Millisecond
					cctx, cancel := context.WithTimeout(ctx, bound)
					err = d.Set(cctx, key, v)
					cancel()
				} else if g%3 == 0 {
					_, err = d.Get(ctx, key)
				} else {
					err = d.Set(ctx, key, v)
				}
				took := time.Since(t0)
				if !errors.Is(err, context.DeadlineExceeded) {
					errs.add(fmt.Errorf("goroutine %d to a stopped daemon: %v after %v, want DeadlineExceeded", g, err, took))
				} else if took > bound+5*time.Second {
					errs.add(fmt.Errorf("goroutine %d: bound %v, returned after %v", g, bound, took))
				}
			}()
		}
		within(t, 20*time.Second, "calls to a stopped daemon", wg.Wait)
		must(t, dd.Signal(syscall.SIGCONT))
		errs.report(t)
		within(t, 60*time.Second, "calls after SIGCONT", func() {
			for key, v := range cut {
				got, err := d.Get(ctx, key)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					t.Errorf("Get %s after SIGCONT: %v", key, err)
					continue
				}
				if !bytes.Equal(got, v) {
					t.Errorf("Get %s after SIGCONT: %d bytes (header %q), want %d", key, len(got), got[:min(24, len(got))], len(v))
				}
			}
			var errs2 errList
			var wg2 sync.WaitGroup
			for g := range 8 {
				wg2.Add(1)
				go func() {
					defer wg2.Done()
					for i := range 30 {
						key := fmt.Sprintf("after-g%d", g)
						v := bigValue(fmt.Sprintf("%s-%d-%d", key, round, i), 10+(i%5)*50000)
						if err := d.Set(ctx, key, v); err != nil {
							errs2.add(fmt.Errorf("Set %s: %v", key, err))
							return
						}
						if got, err := d.Get(ctx, key); err != nil || !bytes.Equal(got, v) {
							errs2.add(fmt.Errorf("Get %s: %d bytes %v, want %d (header %q)", key, len(got), err, len(v), got[:min(24, len(got))]))
							return
						}
					}
				}()
			}
			wg2.Wait()
			errs2.report(t)
		})
		if t.Failed() {
			t.Fatalf("round %d: sockets:\n%s\nits output:\n%s", round, sockQueues(dd.Cmd.Process.Pid), dd.Output())
		}
	}
}

// sockQueues lists the Unix sockets of the daemon (pid) and of this
// process with their queues (ss -x): a daemon's Recv-Q full is a request
// it does not read; ours, a reply we do not.
func sockQueues(pid int) string {
	out, _ := exec.Command("ss", "-x", "-p").CombinedOutput()
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "pid="+strconv.Itoa(pid)+",") ||
			strings.Contains(l, "pid="+strconv.Itoa(os.Getpid())+",") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

var inodeRE = regexp.MustCompile(`\[\d+\]`)

// childFDs runs a child that lists its own descriptors and returns their
// targets (the listing's own directory descriptor excluded).
func childFDs(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("sh", "-c", `for f in /proc/$$/fd/*; do readlink "$f" || true; done`).Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	var fds []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !strings.HasPrefix(l, "/proc/") {
			// pipe:[123] and socket:[456] differ from child to child.
			fds = append(fds, inodeRE.ReplaceAllString(l, "[inode]"))
		}
	}
	sort.Strings(fds)
	return fds
}

// TestSockAdvExecInheritsNothing: a child process started while the
// Client has connections open (busy ones among them, and new ones being
// dialled at that moment) inherits none of their descriptors.
func TestSockAdvExecInheritsNothing(t *testing.T) {
	noLeaks(t)
	d := daemontest.Start(t)
	base := childFDs(t)
	t.Logf("a child before the Client: %v", base)
	c := open(t, d.Socket, WithPoolSize(4))
	ctx := context.Background()
	must(t, c.CreateList(ctx, "q", nil))
	l := NewList[string](c, "q")
	var wg sync.WaitGroup
	var stop atomic.Bool
	// Keep connections busy: blocking pops and pings.
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if g%2 == 0 {
					cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
					l.PopWait(cctx, Left, 0)
					cancel()
				} else {
					c.Ping(ctx)
				}
			}
		}()
	}
	// And Clients opened and closed meanwhile, so that forks happen while
	// connections are being made.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			cc, err := Open(ctx, d.Socket)
			if err != nil {
				continue
			}
			cc.Ping(ctx)
			cc.Close()
		}
	}()
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	time.Sleep(50 * time.Millisecond)
	for i := range 30 {
		got := childFDs(t)
		if strings.Join(got, ",") != strings.Join(base, ",") {
			t.Fatalf("child %d inherited descriptors: %v; a child before the Client had %v", i, got, base)
		}
	}
}

// TestSockAdvMixedChaos: 64 goroutines mix Sets (some of them big), Gets,
// Appends and blocking pops on shared keys with contexts cut at random
// moments, for a few seconds; every value read is whole and one written
// for that key, no appended item is popped twice, nothing hangs.
func TestSockAdvMixedChaos(t *testing.T) {
	for _, pool := range []int{1, 3} {
		t.Run("pool"+strconv.Itoa(pool), func(t *testing.T) {
			noLeaks(t)
			dd, c := start(t, WithPoolSize(pool))
			t.Cleanup(func() {
				if t.Failed() {
					// A daemon that died (a panic) shows why here; its
					// clients only see connections refused.
					t.Logf("cyberdbd's output:\n%s", dd.Output())
				}
			})
			ctx := context.Background()
			must(t, c.CreateDict(ctx, "d", nil))
			must(t, c.CreateList(ctx, "q", nil))
			d := NewDict[string, []byte](c, "d")
			l := NewList[string](c, "q")
			var errs errList
			var mu sync.Mutex
			popped := map[string]int{}
			var appended, reads, cuts atomic.Int64
			stop := time.Now().Add(3 * time.Second)
			var wg sync.WaitGroup
			check := func(key string, v []byte) error {
				h, _, ok := bytes.Cut(v, []byte("|"))
				if !ok {
					return fmt.Errorf("Get %s: %d bytes without a header: %q", key, len(v), v[:min(24, len(v))])
				}
				tag := string(h)
				if !strings.HasPrefix(tag, key+"/") {
					return fmt.Errorf("Get %s: a value written for %q", key, tag)
				}
				if want := bigValue(tag, len(v)); !bytes.Equal(v, want) {
					return fmt.Errorf("Get %s: value %q torn at byte %d of %d", key, tag, firstDiff(v, want), len(v))
				}
				return nil
			}
			for g := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(g), uint64(pool)))
					for i := 0; time.Now().Before(stop); i++ {
						cctx, cancel := ctx, context.CancelFunc(func() {})
						if rng.IntN(3) == 0 {
							cctx, cancel = context.WithTimeout(ctx, time.Duration(rng.IntN(5000))*time.Microsecond)
						}
						key := "k" + strconv.Itoa(rng.IntN(8))
						switch op := rng.IntN(10); {
						case op < 3:
							n := 40 + rng.IntN(200)
							if rng.IntN(8) == 0 {
								n = 64<<10 + rng.IntN(1<<20)
							}
							err := d.Set(cctx, key, bigValue(fmt.Sprintf("%s/%d/%d", key, g, i), n))
							if err != nil && !errors.Is(err, context.DeadlineExceeded) {
								errs.add(fmt.Errorf("Set: %w", err))
							} else if err != nil {
								cuts.Add(1)
							}
						case op < 6:
							v, err := d.Get(cctx, key)
							switch {
							case errors.Is(err, ErrNotFound):
							case errors.Is(err, context.DeadlineExceeded):
								cuts.Add(1)
							case err != nil:
								errs.add(fmt.Errorf("Get: %w", err))
							default:
								reads.Add(1)
								if err := check(key, v); err != nil {
									errs.add(err)
								}
							}
						case op < 8:
							item := fmt.Sprintf("item-%d-%d", g, i)
							_, err := l.Append(cctx, item)
							if err != nil && !errors.Is(err, context.DeadlineExceeded) {
								errs.add(fmt.Errorf("Append: %w", err))
							} else if err == nil {
								appended.Add(1)
							}
						default:
							pctx, pcancel := context.WithTimeout(cctx, time.Duration(rng.IntN(20000))*time.Microsecond)
							v, ok, err := l.PopWait(pctx, Left, 0)
							pcancel()
							switch {
							case err == nil && ok:
								if !strings.HasPrefix(v, "item-") {
									errs.add(fmt.Errorf("PopWait: %q", v))
								}
								mu.Lock()
								popped[v]++
								mu.Unlock()
							case err != nil && !errors.Is(err, context.DeadlineExceeded):
								errs.add(fmt.Errorf("PopWait: %w", err))
							}
						}
						cancel()
					}
				}()
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				// Who holds the bytes: the queues of the daemon's sockets
				// (Recv-Q: requests it has not read) and of ours.
				t.Fatalf("chaos: still running after 60s; sockets:\n%s\n%s", sockQueues(dd.Cmd.Process.Pid), stacks())
			}
			errs.report(t)
			for {
				v, err := l.Pop(ctx)
				if err != nil {
					break
				}
				popped[v]++
			}
			for v, n := range popped {
				if n != 1 {
					t.Errorf("item %s popped %d times", v, n)
				}
			}
			for k := range 8 {
				key := "k" + strconv.Itoa(k)
				if v, err := d.Get(ctx, key); err == nil {
					if err := check(key, v); err != nil {
						t.Error(err)
					}
				} else if !errors.Is(err, ErrNotFound) {
					t.Errorf("final Get %s: %v", key, err)
				}
			}
			t.Logf("%d reads checked, %d calls cut, %d appended (Append acknowledged), %d distinct popped; stats %v",
				reads.Load(), cuts.Load(), appended.Load(), len(popped), c.Stats())
			if int64(len(popped)) < appended.Load() {
				t.Logf("note: %d acknowledged items were never popped", appended.Load()-int64(len(popped)))
			}
			if s := c.Stats(); s.LostConns != 0 {
				t.Errorf("stats %v: connections lost", s)
			}
		})
	}
}
