package libcyberdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
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

// A burst of clients over the daemon's --max-conns: each is refused with
// too_many_connections until another leaves, and retries within its dial
// time-out instead of failing (the refusal comes before anything was
// executed). A client that finds no room for its whole dial time-out
// fails with both ErrTooManyConns and ErrUnavailable.
func TestDialRetriesTooManyConnections(t *testing.T) {
	noLeaks(t)
	d := daemontest.Start(t, "--max-conns", "3")
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Open(ctx, d.Socket, WithDialTimeout(30*time.Second), WithPoolSize(1))
			if err != nil {
				errs <- fmt.Errorf("client %d: Open: %w", i, err)
				return
			}
			defer c.Close()
			for range 5 {
				if err := c.Ping(ctx); err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				time.Sleep(10 * time.Millisecond) // hold the connection a while
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// The daemon full for longer than the dial time-out.
	for range 3 {
		daemontest.DialHello(t, d.Socket)
	}
	start := time.Now()
	_, err := Open(ctx, d.Socket, WithDialTimeout(500*time.Millisecond))
	if !errors.Is(err, ErrTooManyConns) || !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "is cyberdbd running") {
		t.Fatalf("Open on a full daemon: %v; want too_many_connections after the dial time-out", err)
	}
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Fatalf("Open on a full daemon gave up after %v, before its 500ms dial time-out", took)
	}
	t.Log(err)
}
