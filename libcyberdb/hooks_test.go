package libcyberdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

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
