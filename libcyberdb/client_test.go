package libcyberdb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

func TestParseAddr(t *testing.T) {
	t.Setenv(AddrEnv, "")
	def := LocalSocket
	if _, err := os.Stat(SystemSocket); err == nil {
		def = SystemSocket
	}
	for _, tc := range []struct{ in, want, err string }{
		{in: "", want: def},
		{in: "/run/x.sock", want: "/run/x.sock"},
		{in: "rel.sock", want: "rel.sock"},
		{in: "unix:///abs/x.sock", want: "/abs/x.sock"},
		{in: "unix:rel/x.sock", want: "rel/x.sock"},
		{in: "tcp://host:7000", want: "tcp://host:7000"},
		{in: "tcp://[::1]", want: "tcp://[::1]:9980"},
		{in: "tcp+insecure://127.0.0.1:7000", want: "tcp+insecure://127.0.0.1:7000"},
		{in: "tcp+insecure://db1:7000", err: "loopback"},
		{in: "tcp://:7000", err: "HOST:PORT"},
		{in: "http://x", err: "unknown scheme"},
		{in: "unix://", err: "empty"},
	} {
		got, err := ResolveAddr(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ResolveAddr(%q) = %q, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ResolveAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	t.Setenv(AddrEnv, "unix:///from/env.sock")
	if got, _ := ResolveAddr(""); got != "/from/env.sock" {
		t.Errorf("ResolveAddr with $%s = %q", AddrEnv, got)
	}
}

func TestOpenUnavailable(t *testing.T) {
	noLeaks(t)
	path := filepath.Join(t.TempDir(), "none.sock")
	_, err := Open(context.Background(), path, WithDialTimeout(500*time.Millisecond)) // retried until then: room for one dial on a loaded machine
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Open of a missing socket: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(ctx, path); !errors.Is(err, context.Canceled) {
		t.Fatalf("Open with a cancelled context: %v", err)
	}
}

func TestTablesAndServerOps(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	must(t, c.Ping(ctx))
	must(t, c.CreateDict(ctx, "b", nil))
	must(t, c.CreateList(ctx, "a", []string{"x", "y"}))
	ts, err := c.Tables(ctx)
	must(t, err)
	want := []TableInfo{{Name: "a", Kind: KindList, Len: 2}, {Name: "b", Kind: KindDict, Len: 0}}
	if !reflect.DeepEqual(ts, want) {
		t.Fatalf("Tables = %+v", ts)
	}
	if ok, err := c.Exists(ctx, "a"); err != nil || !ok {
		t.Fatalf("Exists(a) = %v, %v", ok, err)
	}
	must(t, c.Drop(ctx, "a"))
	if ok, err := c.Exists(ctx, "a"); err != nil || ok {
		t.Fatalf("Exists(a) after Drop = %v, %v", ok, err)
	}
	if err := c.Drop(ctx, "a"); !errors.Is(err, ErrNoTable) {
		t.Fatalf("Drop twice: %v", err)
	}
	if err := c.CreateDict(ctx, "", nil); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("CreateDict(\"\"): %v", err)
	}
	info, err := c.Info(ctx)
	must(t, err)
	if info["tables"] != uint64(1) {
		t.Fatalf("info tables = %#v", info["tables"])
	}
	if err := c.Save(ctx); err != nil && !errors.Is(err, ErrBadRequest) {
		t.Fatalf("Save: %v", err)
	}
	raw, err := c.Do(ctx, wire.OpPing, "echo")
	must(t, err)
	if wire.Diagnose(raw) != `"echo"` {
		t.Fatalf("Do(ping) = %s", wire.Diagnose(raw))
	}
}

func TestBatch(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	hits := NewDict[string, int](c, "hits")
	log := NewList[string](c, "log")

	b := c.Batch()
	b.CreateDict("hits", nil)
	b.CreateList("log", nil)
	n := hits.In(b).Incr("home", 2)
	hits.In(b).Set("about", 1)
	length := log.In(b).Append("a", "b")
	get := hits.In(b).Get("about")
	has := hits.In(b).Has("nope")
	if _, err := n.Result(); !errors.Is(err, ErrNotExecuted) {
		t.Fatalf("Result before Exec: %v", err)
	}
	if b.Len() != 7 {
		t.Fatalf("Len = %d", b.Len())
	}
	must(t, b.Exec(ctx))
	if n.Value() != 2 || length.Value() != 2 || get.Value() != 1 || has.Value() {
		t.Fatalf("results: %d %d %d %v", n.Value(), length.Value(), get.Value(), has.Value())
	}
	if b.Len() != 0 {
		t.Fatal("Exec did not empty the batch")
	}

	// A failing operation undoes the whole batch.
	n2 := hits.In(b).Incr("home", 1)
	log.In(b).Append("c")
	hits.In(b).Delete("missing")
	err := b.Exec(ctx)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "batch op 2") {
		t.Fatalf("Exec of a failing batch: %v", err)
	}
	if _, ferr := n2.Result(); !errors.Is(ferr, ErrNotFound) {
		t.Fatalf("Future of a failed batch: %v", ferr)
	}
	if v, _ := hits.Get(ctx, "home"); v != 2 {
		t.Fatalf("home = %d after a failed batch", v)
	}
	if n, _ := log.Len(ctx); n != 2 {
		t.Fatalf("log len = %d after a failed batch", n)
	}
	// An empty batch is fine.
	must(t, b.Exec(ctx))
}

func TestConnPinned(t *testing.T) {
	noLeaks(t)
	d, c := start(t, WithPoolSize(1))
	ctx := context.Background()
	pc, err := c.Conn(ctx)
	must(t, err)
	if pc.ID() == 0 {
		t.Fatal("pinned conn has no id")
	}
	if s := c.Stats(); s.Open != 2 || s.Pinned != 1 {
		t.Fatalf("stats with a pinned conn: %v", s)
	}
	must(t, pc.CreateDict(ctx, "centre", nil))
	d1 := NewDict[string, string](pc, "centre")
	must(t, d1.Set(ctx, "content", "Hello CyberDB!"))
	b := pc.Batch()
	v := d1.In(b).Get("content")
	must(t, b.Exec(ctx))
	if v.Value() != "Hello CyberDB!" {
		t.Fatalf("batch on Conn = %q", v.Value())
	}
	// The same handle type works on the Client, seeing the same data.
	if got, err := NewDict[string, string](c, "centre").Get(ctx, "content"); err != nil || got != "Hello CyberDB!" {
		t.Fatalf("Get via Client = %q, %v", got, err)
	}
	id := pc.ID()
	must(t, pc.Close())
	must(t, pc.Close())
	if err := d1.Set(ctx, "x", "y"); !errors.Is(err, ErrClosed) {
		t.Fatalf("use after Close: %v", err)
	}
	// The pool (size 1) is full: the returned connection is closed.
	if s := c.Stats(); s.Pinned != 0 || s.Open != 1 {
		t.Fatalf("stats after Close: %v", s)
	}
	_ = id

	// A Conn whose connection is lost reconnects on its next call.
	pc, err = c.Conn(ctx)
	must(t, err)
	d.Kill(t)
	d.Restart(t)
	must(t, pc.CreateDict(ctx, "again", nil))
	must(t, pc.Close())
}

func TestConnReturnsToPool(t *testing.T) {
	_, c := start(t, WithPoolSize(2))
	ctx := context.Background()
	pc, err := c.Conn(ctx)
	must(t, err)
	must(t, pc.Ping(ctx))
	must(t, pc.Close())
	if s := c.Stats(); s.Open != 2 || s.Pinned != 0 {
		t.Fatalf("stats after returning a Conn: %v", s)
	}
}

func TestContextCancellation(t *testing.T) {
	noLeaks(t)
	_, c := start(t)
	d := NewDict[string, int](c, "t")
	must(t, c.CreateDict(context.Background(), "t", nil))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Set(ctx, "a", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Set with a cancelled context: %v", err)
	}
	// Calls that give up while in flight abandon their reply slot: the
	// connection stays usable and nothing is left pending.
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				ctx, cancel := context.WithCancel(context.Background())
				if i%2 == 0 {
					cancel()
				} else {
					go cancel()
				}
				_, err := d.Incr(ctx, "n", 1)
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("Incr: %v", err)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	bg := context.Background()
	if _, err := d.Incr(bg, "n", 1); err != nil {
		t.Fatal(err)
	}
	s := c.Stats()
	if s.InFlight != 0 || s.Timeouts == 0 {
		t.Fatalf("after cancellations: %v", s)
	}
}

func TestTooLargeRequest(t *testing.T) {
	d := daemontest.Start(t, "--max-frame=1024")
	c := open(t, d.Socket)
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "t", nil))
	dd := NewDict[string, string](c, "t")
	err := dd.Set(ctx, "big", strings.Repeat("x", 2000))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Set of 2000 bytes with --max-frame=1024: %v", err)
	}
	must(t, dd.Set(ctx, "small", "x"))
	if s := c.Stats(); s.LostConns != 0 {
		t.Fatalf("a too-large request cost a connection: %v", s)
	}
}

func TestCloseNoLeaks(t *testing.T) {
	noLeaks(t)
	d := daemontest.Start(t)
	c, err := Open(context.Background(), d.Socket, WithIdleTimeout(time.Hour), WithMaxLifetime(time.Hour))
	must(t, err)
	dd := NewDict[int, int](c, "t")
	must(t, c.CreateDict(context.Background(), "t", nil))
	var wg sync.WaitGroup
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if err := dd.Set(context.Background(), g, i); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	pc, err := c.Conn(context.Background())
	must(t, err)
	must(t, pc.Ping(context.Background()))
	must(t, c.Close())
	must(t, c.Close())
	if err := dd.Set(context.Background(), 1, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Set after Close: %v", err)
	}
	if err := pc.Ping(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping on a Conn after Close: %v", err)
	}
	if s := c.Stats(); s.Open != 0 {
		t.Fatalf("stats after Close: %v", s)
	}
}

// While one caller of a Conn dials a new connection (its daemon is gone),
// another caller of the same Conn waits only as long as its own context
// allows; before, it waited on the Conn's mutex for the whole dial.
func TestConnDialRespectsOtherCallersContext(t *testing.T) {
	noLeaks(t)
	d, c := start(t, WithDialTimeout(30*time.Second))
	ctx := context.Background()
	pc, err := c.Conn(ctx)
	must(t, err)
	defer pc.Close()
	must(t, pc.Ping(ctx))

	d.Kill(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// An idle Unix connection notices its daemon's end at its next
		// use (alive, as get does), without waiting for a call.
		pc.mu.Lock()
		lost := pc.cn == nil || pc.cn.unusable.Load() || !pc.cn.alive()
		pc.mu.Unlock()
		if lost {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the Conn did not notice its daemon was killed")
		}
		time.Sleep(time.Millisecond)
	}

	dials := c.p.stats.dialAttempts.Load()
	first := make(chan error, 1)
	go func() {
		long, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		first <- pc.Ping(long) // dials until the daemon is back
	}()
	for c.p.stats.dialAttempts.Load() == dials {
		if time.Now().After(deadline) {
			t.Fatal("the first caller did not start dialing")
		}
		time.Sleep(time.Millisecond)
	}

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = pc.Ping(short)
	if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took > 5*time.Second {
		t.Fatalf("a second caller with a 200ms context: %v after %v; want its deadline, at once", err, took)
	}

	d.Restart(t)
	if err := <-first; err != nil {
		t.Fatalf("the caller that dialed, once the daemon is back: %v", err)
	}
	must(t, pc.Ping(ctx))
}
