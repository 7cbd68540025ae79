package libcyberdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// hookLog records what hooks see.
type hookLog struct {
	mu     sync.Mutex
	events []string
	flushN int // requests seen by Flush
}

func (h *hookLog) add(s string) {
	h.mu.Lock()
	h.events = append(h.events, s)
	h.mu.Unlock()
}

func (h *hookLog) hook(name string) Hook {
	return Hook{
		Dial: func(next DialFunc) DialFunc {
			return func(ctx context.Context, network, addr string) (net.Conn, error) {
				nc, err := next(ctx, network, addr)
				h.add(fmt.Sprintf("%s dial %s %v", name, network, err))
				return nc, err
			}
		},
		Call: func(next CallFunc) CallFunc {
			return func(ctx context.Context, c *Call) error {
				h.add(fmt.Sprintf("%s >%s %s", name, c.Op(), c.Table()))
				err := next(ctx, c)
				var res string
				if err == nil {
					res = wire.Diagnose(c.Result())
				}
				h.add(fmt.Sprintf("%s <%s %s err=%v", name, c.Op(), res, errors.Is(err, ErrNotFound)))
				return err
			}
		},
		Flush: func(next FlushFunc) FlushFunc {
			return func(f Flush) error {
				if f.ConnID == 0 || f.Calls < 1 || len(f.Frames) == 0 {
					h.add(fmt.Sprintf("%s bad flush %+v", name, f))
				}
				h.mu.Lock()
				h.flushN += f.Calls
				h.mu.Unlock()
				return next(f)
			}
		},
	}
}

// TestHooks: the hooks see each dial, each call with its op, table,
// arguments, result and error, and each write, the first hook outermost;
// a Call hook can answer without the daemon; a Conn's calls go through
// them too.
func TestHooks(t *testing.T) {
	d := daemontest.Start(t)
	ctx := context.Background()
	var log hookLog
	var args []string
	deny := Hook{Call: func(next CallFunc) CallFunc {
		return func(ctx context.Context, c *Call) error {
			for a := range c.Args() {
				args = append(args, wire.Diagnose(a))
			}
			if c.Table() == "secret" {
				return errors.New("denied by hook")
			}
			return next(ctx, c)
		}
	}}
	c := open(t, d.Socket, WithHooks(log.hook("a"), log.hook("b"), deny))
	must(t, c.CreateDict(ctx, "t", map[string]int{"k": 7}))
	h := NewDict[string, int](c, "t")
	if v, err := h.Get(ctx, "k"); err != nil || v != 7 {
		t.Fatalf("get: %v %v", v, err)
	}
	if _, err := h.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of a missing key: %v", err)
	}
	if _, err := NewDict[string, int](c, "secret").Get(ctx, "k"); err == nil || !strings.Contains(err.Error(), "denied by hook") {
		t.Fatalf("a call the hook refuses: %v", err)
	}
	want := []string{
		"b dial unix <nil>", "a dial unix <nil>", // the outer hook sees the inner one's work first on the way back
		"a >create_dict t", "b >create_dict t", "b <create_dict null err=false", "a <create_dict null err=false",
		"a >dget t", "b >dget t", "b <dget 7 err=false", "a <dget 7 err=false",
		"a >dget t", "b >dget t", "b <dget  err=true", "a <dget  err=true",
		"a >dget secret", "b >dget secret", "b <dget  err=false", "a <dget  err=false",
	}
	if !slices.Equal(log.events, want) {
		t.Errorf("hooks saw:\n%s\nwant:\n%s", strings.Join(log.events, "\n"), strings.Join(want, "\n"))
	}
	if wantArgs := `"t" {"k": 7} "t" "k" "t" "nope" "secret" "k"`; strings.Join(args, " ") != wantArgs {
		t.Errorf("Args: %s, want %s", strings.Join(args, " "), wantArgs)
	}
	// Three requests reached the daemon, seen by both hooks' Flush (HELLO
	// is written before the connection has writers: no flush).
	if log.flushN != 6 {
		t.Errorf("Flush saw %d requests, want 3 by each of 2 hooks", log.flushN)
	}

	log.events = nil
	pc, err := c.Conn(ctx)
	must(t, err)
	defer pc.Close()
	must(t, pc.Ping(ctx))
	if want := []string{"b dial unix <nil>", "a dial unix <nil>", "a >ping ", "b >ping ", `b <ping "PONG" err=false`, `a <ping "PONG" err=false`}; !slices.Equal(log.events, want) {
		t.Errorf("on a Conn, hooks saw:\n%s", strings.Join(log.events, "\n"))
	}
}

// TestHooksSeePushCalls: the calls made on a dedicated push connection go
// through the Call hooks too: a read cache's tracking call and its miss
// (a hit does not reach the daemon: no call), a subscription's. A
// CachedDict's misses were invisible to them (found by a new user's
// trial: a slow-call hook never showed a stalled Get).
func TestHooksSeePushCalls(t *testing.T) {
	d := daemontest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var log hookLog
	c := open(t, d.Socket, WithHooks(Hook{Call: log.hook("h").Call}))
	must(t, c.CreateDict(ctx, "config", map[string]string{"mode": "on"}))
	log.events = nil
	cd := NewCachedDict[string, string](c, "config")
	for range 2 { // a miss, then a hit
		if v, err := cd.Get(ctx, "mode"); err != nil || v != "on" {
			t.Fatalf("Get: %q %v", v, err)
		}
	}
	want := []string{"h >tracking ", `h <tracking {"sub": 1} err=false`, "h >dget config", `h <dget "on" err=false`}
	log.mu.Lock()
	got := slices.Clone(log.events)
	log.events = nil
	log.mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("hooks saw:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	sctx, scancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range c.Subscribe(sctx, "news") {
		}
	}()
	defer func() { scancel(); <-done }()
	for {
		log.mu.Lock()
		seen := slices.ContainsFunc(log.events, func(e string) bool { return strings.HasPrefix(e, "h <subscribe") })
		log.mu.Unlock()
		if seen {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("a subscription's call: hooks saw %q", log.events)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestHookFlushPipelines: concurrent calls are flushed together, and the
// Flush hook counts every request once.
func TestHookFlushPipelines(t *testing.T) {
	d := daemontest.Start(t)
	ctx := context.Background()
	var log hookLog
	c := open(t, d.Socket, WithPoolSize(1), WithHooks(Hook{Flush: log.hook("f").Flush}))
	must(t, c.Ping(ctx))
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if err := c.Ping(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if log.flushN != 1001 {
		t.Errorf("Flush saw %d requests, want 1001", log.flushN)
	}
	if len(log.events) > 0 {
		t.Errorf("%v", log.events)
	}
}

// dialLog is a Dial hook that records each attempt: its error, and when
// it began and ended.
type dialLog struct {
	mu   sync.Mutex
	recs []dialRecord
}

type dialRecord struct {
	err        error
	begin, end time.Time
}

func (l *dialLog) hook() Hook {
	return Hook{Dial: func(next DialFunc) DialFunc {
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			begin := time.Now()
			nc, err := next(ctx, network, addr)
			l.mu.Lock()
			l.recs = append(l.recs, dialRecord{err, begin, time.Now()})
			l.mu.Unlock()
			return nc, err
		}
	}}
}

func (l *dialLog) all() []dialRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.recs)
}

// TestHookDialIncludesHello: the Dial hook sees the HELLO exchange, not
// only the connect. A daemon that is stopped (SIGSTOP) accepts connections
// (the kernel does) but answers no HELLO: each attempt is a failed dial
// for the hook, ending when the dial time-out does. Resumed while a HELLO
// waits, the dial succeeds, and the hook's next returns only once the
// daemon answered.
func TestHookDialIncludesHello(t *testing.T) {
	d := daemontest.Start(t)
	t.Cleanup(func() { d.Signal(syscall.SIGCONT) }) // before Stop's SIGTERM
	ctx := context.Background()
	stopDaemon(t, d)

	var failed dialLog
	begin := time.Now()
	_, err := Open(ctx, d.Socket, WithHooks(failed.hook()), WithDialTimeout(500*time.Millisecond))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "HELLO") {
		t.Fatalf("Open of a stopped daemon: %v, want ErrUnavailable for want of HELLO's reply", err)
	}
	recs := failed.all()
	if len(recs) == 0 {
		t.Fatal("the Dial hook saw no attempt")
	}
	for i, r := range recs {
		if r.err == nil {
			t.Errorf("attempt %d: the Dial hook saw a dial succeed whose HELLO was never answered", i)
		}
	}
	if last := recs[len(recs)-1]; !errors.Is(last.err, ErrUnavailable) || last.end.Sub(begin) < 500*time.Millisecond {
		t.Errorf("the last attempt ended %v after Open began, with %v; want the dial time-out (500ms) and ErrUnavailable",
			last.end.Sub(begin), last.err)
	}

	var ok dialLog
	resumed := make(chan time.Time, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		at := time.Now()
		d.Signal(syscall.SIGCONT)
		resumed <- at
	}()
	c, err := Open(ctx, d.Socket, WithHooks(ok.hook()), WithDialTimeout(20*time.Second))
	if err != nil {
		t.Fatalf("Open of a daemon resumed while HELLO waits: %v", err)
	}
	defer c.Close()
	at := <-resumed
	recs = ok.all()
	if len(recs) != 1 || recs[0].err != nil {
		t.Fatalf("the Dial hook saw %+v, want one successful dial", recs)
	}
	if recs[0].end.Before(at) {
		t.Errorf("the Dial hook's dial ended %v before the daemon resumed to answer its HELLO", at.Sub(recs[0].end))
	}
}

// TestHookDialAuthFailed: a login the daemon refuses is a failed dial for
// the Dial hook, with ErrAuthFailed, though the connection and its TLS
// handshake succeeded; with the right password the dial succeeds.
func TestHookDialAuthFailed(t *testing.T) {
	p := daemontest.NewPKI(t)
	_, addr, pw := startTCP(t, p)
	ctx := context.Background()
	var refused dialLog
	_, err := Open(ctx, addr, WithTLSCAFile(p.CAFile), WithPassword("wrong"), WithHooks(refused.hook()))
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("Open with a wrong password: %v, want ErrAuthFailed", err)
	}
	if recs := refused.all(); len(recs) != 1 || !errors.Is(recs[0].err, ErrAuthFailed) {
		t.Errorf("the Dial hook saw %+v, want one dial failed with ErrAuthFailed", recs)
	}
	var accepted dialLog
	c := open(t, addr, WithTLSCAFile(p.CAFile), WithPasswordFile(pw), WithHooks(accepted.hook()))
	must(t, c.Ping(ctx))
	if recs := accepted.all(); len(recs) != 1 || recs[0].err != nil {
		t.Errorf("the Dial hook saw %+v, want one successful dial", recs)
	}
}

// countConn counts the bytes written through it.
type countConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// TestHookDialWraps: a Dial hook that returns a wrapper of next's
// connection has its wrapper carry the calls after HELLO; one that
// returns a connection of its own, which had no HELLO, fails the dial
// with an error that says so.
func TestHookDialWraps(t *testing.T) {
	d := daemontest.Start(t)
	ctx := context.Background()
	var written atomic.Int64
	wrap := Hook{Dial: func(next DialFunc) DialFunc {
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := next(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countConn{nc, &written}, nil
		}
	}}
	c := open(t, d.Socket, WithHooks(wrap))
	must(t, c.CreateDict(ctx, "t", map[string]int{"k": 1}))
	if v, err := NewDict[string, int](c, "t").Get(ctx, "k"); err != nil || v != 1 {
		t.Fatalf("get through a wrapped connection: %v %v", v, err)
	}
	if written.Load() == 0 {
		t.Error("the Dial hook's wrapper carried none of the calls")
	}

	own := Hook{Dial: func(next DialFunc) DialFunc {
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, network, addr)
		}
	}}
	if _, err := Open(ctx, d.Socket, WithHooks(own)); err == nil || !strings.Contains(err.Error(), "did not open") {
		t.Errorf("Open with a hook that dials its own connection: %v", err)
	}
}
