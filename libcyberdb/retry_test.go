package libcyberdb

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// A daemon killed with SIGKILL and restarted, again and again, under
// concurrent readers on a Client and on a pinned Conn: no read fails. A
// read whose connection dies may have hit the other connections of the
// pool, dead too but not yet noticed; it is retried, then sent once more
// on a new connection, which waits for the daemon to be back (within the
// dial time-out). Before that last attempt, reads failed with
// ErrConnClosed after three dead connections in a row.
func TestReadsRideThroughKill(t *testing.T) {
	noLeaks(t)
	d, c := start(t, WithDialTimeout(30*time.Second)) // the default pool of 4
	ctx := context.Background()
	mustCreateDict(t, c, "t")
	pinned, err := c.Conn(ctx)
	must(t, err)
	defer pinned.Close()

	var reads, failed atomic.Int64
	read := func(x Executor) {
		// Len is a read; a daemon restarted before it wrote the table
		// down (the default fsync policy is everysec) answers no_such_table.
		if _, err := NewDict[string, int](x, "t").Len(ctx); err != nil && !errors.Is(err, ErrNoTable) {
			if failed.Add(1) <= 5 {
				t.Errorf("a read failed across a crash: %v", err)
			}
			return
		}
		reads.Add(1)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var x Executor = c
			if g%8 == 0 {
				x = pinned
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				read(x)
			}
		}()
	}
	waitReads := func() {
		t.Helper()
		n := reads.Load()
		deadline := time.Now().Add(30 * time.Second)
		for reads.Load() < n+200 {
			if time.Now().After(deadline) {
				t.Fatalf("reads stopped: %d", reads.Load())
			}
			time.Sleep(time.Millisecond)
		}
	}
	const crashes = 6
	for range crashes {
		waitReads()
		d.Kill(t)
		d.Restart(t)
		mustCreateDict(t, c, "t")
	}
	waitReads()
	close(stop)
	wg.Wait()
	s := c.Stats()
	if s.LostConns < crashes {
		t.Fatalf("the crashes were not seen: %v", s)
	}
	t.Logf("%d reads, %d failed, across %d crashes; %v", reads.Load(), failed.Load(), crashes, s)
}

// The retry rule on its own, against a fake daemon whose first three
// connections die (without a reply, as in a crash) on every request: a
// read gets two retries and then one attempt on a new connection, which
// answers; a write is never resent, since it may have been applied.
func TestRetriesThenOnceOnANewConnection(t *testing.T) {
	var mu sync.Mutex
	seen := map[wire.Op]int{}
	path := fakeDaemon(t, func(conn int, req wire.Request, nc net.Conn) bool {
		mu.Lock()
		seen[req.Op]++
		mu.Unlock()
		if conn < 3 {
			return false // the connection dies with the request unanswered
		}
		nc.Write(wire.AppendReply(nil, req.ID, []byte{0x05}))
		return true
	})
	c, err := Open(context.Background(), path, WithPoolSize(1))
	must(t, err)
	defer c.Close()
	n, err := NewDict[string, int](c, "t").Len(context.Background())
	if err != nil || n != 5 {
		t.Fatalf("a read after three dead connections: %d, %v; want it answered by the fourth", n, err)
	}
	mu.Lock()
	lens := seen[wire.OpDLen]
	mu.Unlock()
	if lens != 4 {
		t.Fatalf("the read was sent %d times, want 4 (once, two retries, once on a new connection)", lens)
	}

	path = fakeDaemon(t, func(conn int, req wire.Request, nc net.Conn) bool {
		mu.Lock()
		seen[req.Op]++
		mu.Unlock()
		return false
	})
	w, err := Open(context.Background(), path)
	must(t, err)
	defer w.Close()
	if err := NewDict[string, int](w, "t").Set(context.Background(), "k", 1); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("a write on a connection that died: %v, want ErrConnClosed", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen[wire.OpDSet] != 1 {
		t.Fatalf("the write was sent %d times, want once", seen[wire.OpDSet])
	}
}
