package libcyberdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
)

// Adversarial tests of the read side (readside.go): callers that read
// their own replies, cut at random moments, beside others.

// drainList pops everything left in l (non-blocking) into seen.
func drainList(t *testing.T, ctx context.Context, l *List[string], seen map[string]int) {
	t.Helper()
	for {
		v, err := l.Pop(ctx)
		if err != nil {
			return // empty (IndexError) ends it
		}
		seen[v]++
	}
}

// writeReadBack runs goroutines that each set and read back n values of a
// key of their own, sending what fails or differs to errc; it returns
// when all are done.
func writeReadBack(ctx context.Context, d *Dict[string, string], goroutines, n int, errc chan<- error) {
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				key, val := "k"+strconv.Itoa(g), strconv.Itoa(i)
				if err := d.Set(ctx, key, val); err != nil {
					errc <- err
					return
				}
				if v, err := d.Get(ctx, key); err != nil || v != val {
					errc <- fmt.Errorf("Get %s: %q %v, want %q", key, v, err, val)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestReadSideMixedCancels: on one connection (and on two), goroutines
// mix Sets and Gets of their own keys, blocking pops with contexts that
// end at random moments (often while the popper reads for everyone), and
// appends; every Get reads back exactly what its goroutine wrote, and
// every item appended is popped exactly once (by a PopWait, even a
// cancelled one, or by the final drain).
func TestReadSideMixedCancels(t *testing.T) {
	for _, size := range []int{1, 2} {
		t.Run("pool"+strconv.Itoa(size), func(t *testing.T) {
			noLeaks(t)
			_, c := start(t, WithPoolSize(size))
			ctx := context.Background()
			must(t, c.CreateList(ctx, "q", nil))
			must(t, c.CreateDict(ctx, "d", nil))
			l := NewList[string](c, "q")
			d := NewDict[string, string](c, "d")

			var mu sync.Mutex
			seen := map[string]int{}
			var pushed atomic.Int64
			stop := time.Now().Add(2 * time.Second)
			var wg sync.WaitGroup
			errc := make(chan error, 64)
			fail := func(err error) {
				select {
				case errc <- err:
				default:
				}
			}
			for g := range 12 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(g), 7))
					for i := 0; time.Now().Before(stop); i++ {
						// A key per write: a cut Set may be applied after a
						// later one sent on another connection.
						key := fmt.Sprintf("k%d-%d", g, i)
						switch g % 3 {
						case 0: // writer/reader of its own key
							val := fmt.Sprintf("%d-%d", g, i)
							cctx, cancel := context.WithTimeout(ctx, time.Duration(rng.IntN(3000))*time.Microsecond)
							err := d.Set(cctx, key, val)
							cancel()
							if err != nil {
								if !errors.Is(err, context.DeadlineExceeded) {
									fail(fmt.Errorf("Set: %w", err))
									return
								}
								continue // may or may not be applied: set it again
							}
							got, err := d.Get(ctx, key)
							if err != nil || got != val {
								fail(fmt.Errorf("goroutine %d: Get %q %v, want %q", g, got, err, val))
								return
							}
						case 1: // producer
							v := fmt.Sprintf("item-%d-%d", g, i)
							if _, err := l.Append(ctx, v); err != nil {
								fail(fmt.Errorf("Append: %w", err))
								return
							}
							pushed.Add(1)
							mu.Lock()
							seen[v] += 0
							mu.Unlock()
						case 2: // consumer with short, random contexts
							cctx, cancel := context.WithTimeout(ctx, time.Duration(rng.IntN(2000))*time.Microsecond)
							v, ok, err := l.PopWait(cctx, Left, 0)
							cancel()
							if err == nil && ok {
								mu.Lock()
								seen[v]++
								mu.Unlock()
							} else if err != nil && !errors.Is(err, context.DeadlineExceeded) {
								fail(fmt.Errorf("PopWait: %w", err))
								return
							}
						}
					}
				}()
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("hang:\n%s", stacks())
			}
			close(errc)
			for err := range errc {
				t.Error(err)
			}
			drainList(t, ctx, l, seen)
			if int64(len(seen)) != pushed.Load() {
				t.Errorf("%d distinct items seen, %d pushed", len(seen), pushed.Load())
			}
			for v, n := range seen {
				if n != 1 {
					t.Errorf("item %s popped %d times", v, n)
				}
			}
			if s := c.Stats(); s.LostConns != 0 {
				t.Errorf("stats %v: connections lost", s)
			}
		})
	}
}

// TestReadSideBigRepliesCut: callers reading multi-megabyte replies are
// cut mid-frame by their contexts; the bytes they read are not lost, and
// the small calls beside them get exactly their own values.
func TestReadSideBigRepliesCut(t *testing.T) {
	noLeaks(t)
	_, c := start(t, WithPoolSize(1))
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "d", nil))
	d := NewDict[string, []byte](c, "d")
	bigs := make([][]byte, 3)
	for i := range bigs {
		bigs[i] = bytes.Repeat([]byte{byte('a' + i)}, (3+i)<<20)
		must(t, d.Set(ctx, "big"+strconv.Itoa(i), bigs[i]))
	}
	var wg sync.WaitGroup
	var cut, whole atomic.Int64
	errc := make(chan error, 16)
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for i := range 12 {
				if g < 3 {
					// A whole big reply takes tens of milliseconds under
					// -race: cut about half of them, mid-frame.
					k := rng.IntN(len(bigs))
					cctx, cancel := context.WithTimeout(ctx, time.Duration(rng.IntN(400000))*time.Microsecond)
					v, err := d.Get(cctx, "big"+strconv.Itoa(k))
					cancel()
					switch {
					case errors.Is(err, context.DeadlineExceeded):
						cut.Add(1)
					case err != nil:
						errc <- fmt.Errorf("big Get: %w", err)
						return
					case !bytes.Equal(v, bigs[k]):
						errc <- fmt.Errorf("big Get %d: %d bytes, wrong", k, len(v))
						return
					default:
						whole.Add(1)
					}
					continue
				}
				key := "s" + strconv.Itoa(g)
				val := []byte(strconv.Itoa(i))
				if err := d.Set(ctx, key, val); err != nil {
					errc <- err
					return
				}
				if v, err := d.Get(ctx, key); err != nil || !bytes.Equal(v, val) {
					errc <- fmt.Errorf("small Get %s: %q %v, want %q", key, v, err, val)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	t.Logf("big reads: %d cut, %d whole", cut.Load(), whole.Load())
	if s := c.Stats(); s.LostConns != 0 {
		t.Errorf("stats %v: connections lost", s)
	}
}

// TestReadSideCloseDuringSelfReads: Client.Close while callers read
// their own replies (blocking pops, Gets) ends every call promptly, and
// leaves no goroutine behind.
func TestReadSideCloseDuringSelfReads(t *testing.T) {
	noLeaks(t)
	d := daemontest.Start(t)
	for round := range 5 {
		c := open(t, d.Socket, WithPoolSize(1+round%2))
		ctx := context.Background()
		name := "q" + strconv.Itoa(round)
		must(t, c.CreateList(ctx, name, nil))
		l := NewList[string](c, name)
		dd := NewDict[string, string](c, "nodict")
		var wg sync.WaitGroup
		var started atomic.Int64
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					started.Add(1)
					var err error
					if g%2 == 0 {
						_, _, err = l.PopWait(ctx, Left, 0)
					} else {
						_, err = dd.Get(ctx, "x")
						if errors.Is(err, ErrNoTable) || errors.Is(err, ErrNotFound) {
							err = nil
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
		for started.Load() < 50 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(round) * time.Millisecond)
		must(t, c.Close())
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: callers still waiting after Close:\n%s", round, stacks())
		}
	}
}

// TestReadSideKillMidCalls: the daemon is killed (SIGKILL) and restarted
// while goroutines create tables: a call whose reply was lost may fail
// (maybe applied), but none is resent once written (ErrTableExists would
// say it was applied twice), and a call that succeeded was applied.
func TestReadSideKillMidCalls(t *testing.T) {
	noLeaks(t)
	dd, c := start(t, WithPoolSize(2))
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := map[string]bool{}
	stop := make(chan struct{})
	errc := make(chan error, 64)
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("t-%d-%d", g, i)
				cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				err := c.CreateList(cctx, name, nil)
				cancel()
				if errors.Is(err, ErrTableExists) {
					errc <- fmt.Errorf("CreateList %s: %v: applied twice", name, err)
					return
				}
				if err == nil {
					mu.Lock()
					created[name] = true
					mu.Unlock()
				}
			}
		}()
	}
	for range 3 {
		time.Sleep(150 * time.Millisecond)
		dd.Kill(t)
		dd.Restart(t)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	// Without persistence, only the tables created since the last restart
	// survive; each of those answers.
	if len(created) == 0 {
		t.Fatal("no CreateList succeeded")
	}
}

// TestReadSideStoppedDaemonTimeouts: with the daemon stopped (SIGSTOP),
// many callers bounded by WithTimeout fail on their bound, whoever of
// them holds the read side; once it runs again, every caller reads back
// its own writes on the same connections.
func TestReadSideStoppedDaemonTimeouts(t *testing.T) {
	noLeaks(t)
	dd, c := start(t, WithPoolSize(1), WithTimeout(300*time.Millisecond))
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "d", nil))
	d := NewDict[string, string](c, "d")
	must(t, dd.Signal(syscall.SIGSTOP))
	time.Sleep(50 * time.Millisecond) // the signal is delivered asynchronously
	var wg sync.WaitGroup
	errc := make(chan error, 32)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			_, err := d.Get(ctx, "x")
			if !errors.Is(err, context.DeadlineExceeded) {
				errc <- fmt.Errorf("Get to a stopped daemon: %v", err)
			} else if took := time.Since(t0); took > 5*time.Second {
				errc <- fmt.Errorf("time-out after %v", took)
			}
		}()
	}
	wg.Wait()
	must(t, dd.Signal(syscall.SIGCONT))
	writeReadBack(ctx, d, 10, 50, errc)
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

// TestReadSideIdleTimeout: connections the daemon closes for idleness
// (nobody reads them) are noticed at their next use, and the writes then
// are applied exactly once.
func TestReadSideIdleTimeout(t *testing.T) {
	noLeaks(t)
	d := daemontest.Start(t, "--idle-timeout", "200ms")
	c := open(t, d.Socket, WithPoolSize(3))
	ctx := context.Background()
	var wg sync.WaitGroup
	for round := range 3 {
		for g := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("l-%d-%d", round, g)
				if err := c.CreateList(ctx, name, nil); err != nil {
					t.Errorf("CreateList %s: %v", name, err)
				}
			}()
		}
		wg.Wait()
		time.Sleep(450 * time.Millisecond)
	}
	// Pinned too.
	pc, err := c.Conn(ctx)
	must(t, err)
	defer pc.Close()
	must(t, pc.CreateList(ctx, "pinned0", nil))
	time.Sleep(450 * time.Millisecond)
	must(t, pc.CreateList(ctx, "pinned1", nil))
}

// TestReadSidePinnedConn: a pinned Conn shared by goroutines, one of them
// blocked in PopWait reading for all, others cancelled at random: values
// are exact and items are popped once.
func TestReadSidePinnedConn(t *testing.T) {
	noLeaks(t)
	_, c := start(t)
	ctx := context.Background()
	pc, err := c.Conn(ctx)
	must(t, err)
	defer pc.Close()
	must(t, pc.CreateList(ctx, "q", nil))
	must(t, pc.CreateDict(ctx, "d", nil))
	l := NewList[int](pc, "q")
	d := NewDict[string, int](pc, "d")
	var wg sync.WaitGroup
	var popped sync.Map
	const items = 300
	wg.Add(1)
	go func() { // consumer, blocking, never cancelled
		defer wg.Done()
		for range items / 2 {
			v, ok, err := l.PopWait(ctx, Left, 5*time.Second)
			if err != nil || !ok {
				t.Errorf("PopWait: %v %v", ok, err)
				return
			}
			if _, dup := popped.LoadOrStore(v, true); dup {
				t.Errorf("item %d popped twice", v)
			}
		}
	}()
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			key := "k" + strconv.Itoa(g)
			for i := range 200 {
				cctx, cancel := context.WithTimeout(ctx, time.Duration(rng.IntN(1500))*time.Microsecond)
				_, err := d.Get(cctx, key)
				cancel()
				if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrNotFound) {
					t.Errorf("Get: %v", err)
					return
				}
				must(t, d.Set(ctx, key, i))
				if v, err := d.Get(ctx, key); err != nil || v != i {
					t.Errorf("Get %s: %d %v, want %d", key, v, err, i)
					return
				}
			}
		}()
	}
	for i := range items {
		if _, err := l.Append(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	n := 0
	popped.Range(func(any, any) bool { n++; return true })
	for {
		v, err := l.Pop(ctx)
		if err != nil {
			break
		}
		if _, dup := popped.LoadOrStore(v, true); dup {
			t.Errorf("item %d popped twice", v)
		}
		n++
	}
	if n != items {
		t.Errorf("%d items popped, want %d", n, items)
	}
}

// TestReadSideKillDuringInlineWrites: the daemon is killed while a
// blocked pop reads for the connection and other callers write inline
// (the connection has no other call in flight): the reader's finish and
// an inline writer's EPIPE meet. Run under -race.
func TestReadSideKillDuringInlineWrites(t *testing.T) {
	noLeaks(t)
	dd, c := start(t, WithPoolSize(1))
	ctx := context.Background()
	for round := range 6 {
		name := "q" + strconv.Itoa(round)
		must(t, c.CreateList(ctx, name, nil))
		must(t, c.CreateDict(ctx, "d"+strconv.Itoa(round), nil))
		l := NewList[string](c, name)
		d := NewDict[string, int](c, "d"+strconv.Itoa(round))
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				_, _, _ = l.PopWait(cctx, Left, 0)
				cancel()
			}
		}()
		for g := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					cctx, cancel := context.WithTimeout(ctx, time.Second)
					err := d.Set(cctx, "k"+strconv.Itoa(g), i)
					cancel()
					if errors.Is(err, ErrTableExists) {
						t.Error(err)
					}
				}
			}()
		}
		time.Sleep(time.Duration(50+round*20) * time.Millisecond)
		dd.Kill(t)
		time.Sleep(20 * time.Millisecond)
		dd.Restart(t)
		close(stop)
		wg.Wait()
	}
}

// TestReadSideGracefulRestart: the daemon stops cleanly (SIGTERM: a
// shutting_down frame after the replies of what it read) and starts
// again while goroutines create tables and wait in blocking pops, callers
// reading for their connections: every write is applied exactly once
// and answered (resent after the frame, never failed as maybe applied),
// and the pops end without error.
func TestReadSideGracefulRestart(t *testing.T) {
	noLeaks(t)
	dd, c := start(t, WithPoolSize(2))
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errc := make(chan error, 64)
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if g == 0 {
					// A blocking pop on a list that may not exist after a
					// restart: no table is fine, a lost call is not.
					_, _, err := NewList[string](c, "q").PopWait(ctx, Left, 20*time.Millisecond)
					if err != nil && !errors.Is(err, ErrNoTable) {
						errc <- fmt.Errorf("PopWait: %w", err)
						return
					}
					continue
				}
				name := fmt.Sprintf("t-%d-%d", g, i)
				if err := c.CreateList(ctx, name, nil); err != nil {
					errc <- fmt.Errorf("CreateList %s: %w", name, err)
					return
				}
			}
		}()
	}
	for range 2 {
		time.Sleep(150 * time.Millisecond)
		dd.Stop(t)
		dd.Restart(t)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

// TestReadSideStoppedDaemonCancels: with the daemon stopped (SIGSTOP),
// callers whose contexts end (one of them holding the read side) return
// at once; when it runs again the abandoned replies are dropped and every
// caller reads back its own writes. Then Client.Close with the daemon
// stopped and callers reading for the connection returns, and so do they.
func TestReadSideStoppedDaemonCancels(t *testing.T) {
	noLeaks(t)
	dd, c := start(t, WithPoolSize(1))
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "d", nil))
	d := NewDict[string, string](c, "d")
	must(t, d.Set(ctx, "x", "y"))
	must(t, dd.Signal(syscall.SIGSTOP))
	stopped := true
	time.Sleep(50 * time.Millisecond) // the signal is delivered asynchronously
	defer func() {
		if stopped {
			_ = dd.Signal(syscall.SIGCONT)
		}
	}()
	var wg sync.WaitGroup
	errc := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3 {
				cctx, cancel := context.WithTimeout(ctx, time.Duration(20+10*g+i)*time.Millisecond)
				t0 := time.Now()
				err := d.Set(cctx, fmt.Sprintf("s%d-%d", g, i), "v")
				cancel()
				if !errors.Is(err, context.DeadlineExceeded) {
					errc <- fmt.Errorf("Set to a stopped daemon: %v", err)
				} else if took := time.Since(t0); took > 3*time.Second {
					errc <- fmt.Errorf("a cancelled call returned after %v", took)
				}
			}
		}()
	}
	wg.Wait()
	must(t, dd.Signal(syscall.SIGCONT))
	stopped = false
	writeReadBack(ctx, d, 8, 30, errc)

	must(t, dd.Signal(syscall.SIGSTOP))
	stopped = true
	time.Sleep(50 * time.Millisecond)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := d.Get(ctx, "x"); err == nil {
				errc <- errors.New("a Get answered by a stopped daemon")
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Close with callers reading a stopped daemon's connection hangs:\n%s", stacks())
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("callers still wait after Close:\n%s", stacks())
	}
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

// TestReadSideClientIdleRetire: the pool retires connections idle for
// WithIdleTimeout between bursts of calls, blocking pops included; each
// burst's values are exact and each item is popped once.
func TestReadSideClientIdleRetire(t *testing.T) {
	noLeaks(t)
	_, c := start(t, WithPoolSize(2), WithIdleTimeout(30*time.Millisecond))
	ctx := context.Background()
	must(t, c.CreateList(ctx, "q", nil))
	must(t, c.CreateDict(ctx, "d", nil))
	l := NewList[int](c, "q")
	d := NewDict[string, int](c, "d")
	var popped sync.Map
	n := 0
	for round := range 8 {
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if g == 0 {
					v, ok, err := l.PopWait(ctx, Left, 200*time.Millisecond)
					if err != nil {
						t.Errorf("PopWait: %v", err)
					} else if ok {
						if _, dup := popped.LoadOrStore(v, true); dup {
							t.Errorf("item %d popped twice", v)
						}
					}
					return
				}
				key := fmt.Sprintf("k%d", g)
				for i := range 20 {
					if err := d.Set(ctx, key, round*100+i); err != nil {
						t.Errorf("Set: %v", err)
						return
					}
					if v, err := d.Get(ctx, key); err != nil || v != round*100+i {
						t.Errorf("Get %s: %d %v, want %d", key, v, err, round*100+i)
						return
					}
				}
			}()
		}
		if _, err := l.Append(ctx, round); err != nil {
			t.Fatal(err)
		}
		n++
		wg.Wait()
		time.Sleep(time.Duration(40+round*5) * time.Millisecond)
	}
	for {
		v, err := l.Pop(ctx)
		if err != nil {
			break
		}
		if _, dup := popped.LoadOrStore(v, true); dup {
			t.Errorf("item %d popped twice", v)
		}
	}
	got := 0
	popped.Range(func(any, any) bool { got++; return true })
	if got != n {
		t.Errorf("%d items popped, want %d", got, n)
	}
}

// TestReadSidePinnedClose: closing a pinned Conn (which hands its
// connection back to the pool) while goroutines use it, one parked in
// PopWait reading for the others, ends the others' next calls; the parked
// pop stays and takes the item appended next through the Client, once.
func TestReadSidePinnedClose(t *testing.T) {
	noLeaks(t)
	_, c := start(t, WithPoolSize(1))
	ctx := context.Background()
	must(t, c.CreateList(ctx, "q", nil))
	for round := range 4 {
		pc, err := c.Conn(ctx)
		must(t, err)
		l := NewList[int](pc, "q")
		var wg, others sync.WaitGroup
		var calls atomic.Int64
		got := make(chan int, 10)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				v, ok, err := l.PopWait(ctx, Left, 0)
				if err != nil {
					return
				}
				if ok {
					got <- v
				}
			}
		}()
		for range 3 {
			others.Add(1)
			go func() {
				defer others.Done()
				for {
					if _, err := l.Len(ctx); err != nil {
						if !errors.Is(err, ErrClosed) {
							t.Errorf("Len: %v", err)
						}
						return
					}
					calls.Add(1)
				}
			}()
		}
		for calls.Load() < 20 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(round) * time.Millisecond)
		must(t, pc.Close())
		done := make(chan struct{})
		go func() { others.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: callers of a closed Conn still wait:\n%s", round, stacks())
		}
		if _, err := NewList[int](c, "q").Append(ctx, round); err != nil {
			t.Fatal(err)
		}
		select {
		case v := <-got:
			if v != round {
				t.Fatalf("round %d: the parked pop got %d", round, v)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the parked pop got nothing:\n%s", round, stacks())
		}
		wg.Wait() // its next PopWait fails: the Conn is closed
		if n, err := NewList[int](c, "q").Len(ctx); err != nil || n != 0 {
			t.Fatalf("Len: %d %v, want 0", n, err)
		}
	}
}
