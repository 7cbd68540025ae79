package libcyberdb

import (
	"context"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// TestEarlyFrameAfterHelloWithWrappingDialHook: a frame the daemon sent
// right behind its HELLO reply (here idle_timeout: nothing after it is
// executed) reaches the read side when a Dial hook wraps the connection
// (adopt), as it does without one: the write that follows is resent, not
// failed as maybe applied.
func TestEarlyFrameAfterHelloWithWrappingDialHook(t *testing.T) {
	for _, wrap := range []bool{false, true} {
		name := "plain"
		if wrap {
			name = "wrapped"
		}
		t.Run(name, func(t *testing.T) {
			// The first connection ends at once: an idle_timeout frame
			// goes in the same write as HELLO's reply; requests after it
			// are not executed, and it closes a little later.
			path := fakeDaemonHello(t, func(n int, nc net.Conn, reply []byte) bool {
				if n == 0 {
					nc.Write(wire.AppendError(reply, 0, wire.Errorf(wire.CodeIdleTimeout, "idle")))
					time.Sleep(300 * time.Millisecond)
					return false
				}
				nc.Write(reply)
				return true
			}, func(_ int, req wire.Request, nc net.Conn) bool {
				nc.Write(wire.AppendReply(nil, req.ID, []byte{0xf6}))
				return true
			})
			var opts []Option
			if wrap {
				opts = append(opts, WithHooks(Hook{Dial: func(next DialFunc) DialFunc {
					return func(ctx context.Context, network, addr string) (net.Conn, error) {
						nc, err := next(ctx, network, addr)
						if err != nil {
							return nil, err
						}
						return struct{ net.Conn }{nc}, nil
					}
				}}))
			}
			c, err := Open(context.Background(), path, append(opts, WithPoolSize(1))...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := NewDict[string, int](c, "t").Set(context.Background(), "k", 1); err != nil {
				t.Fatalf("a write after an idle_timeout frame sent with HELLO's reply: %v, want it resent and answered", err)
			}
		})
	}
}

// epipeConn is a connection whose first write waits until the client has
// seen the daemon's end (finish ran), then fails as a write to a closed
// peer does, with nothing written.
type epipeConn struct {
	net.Conn
	once   sync.Once
	hangUp chan struct{} // closed: the fake daemon closes its end
	conn   func() *conn  // the client's side of it
}

func (e *epipeConn) Write(b []byte) (int, error) {
	first := false
	e.once.Do(func() { first = true })
	if !first {
		return e.Conn.Write(b)
	}
	cn := e.conn()
	ended := func() bool {
		cn.mu.Lock()
		defer cn.mu.Unlock()
		return cn.ended
	}
	close(e.hangUp)
	for deadline := time.Now().Add(5 * time.Second); !ended() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // finish decides the fates meanwhile
	return 0, &net.OpError{Op: "write", Net: "unix", Err: os.NewSyscallError("write", syscall.EPIPE)}
}

// TestInlineWriteEPIPEAfterReaderFinished: a caller writes inline on an
// idle connection that the reader goroutine reads (push hooks); the daemon
// closes it meanwhile and the reader ends the connection (finish) while
// the write is still under way; the write then fails with EPIPE, nothing
// written. The call was never sent: it must be resent, not failed as
// maybe applied; and finish must not read cl.unsent while enqueue sets it.
func TestInlineWriteEPIPEAfterReaderFinished(t *testing.T) {
	hangUp := make(chan struct{})
	path := fakeDaemonHello(t, func(n int, nc net.Conn, reply []byte) bool {
		if n == 0 {
			go func() { <-hangUp; nc.Close() }()
		}
		nc.Write(reply)
		return true
	}, func(_ int, req wire.Request, nc net.Conn) bool {
		nc.Write(wire.AppendReply(nil, req.ID, []byte{0xf6}))
		return true
	})
	var c *Client
	dials := 0
	hook := Hook{Dial: func(next DialFunc) DialFunc {
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := next(ctx, network, addr)
			if err != nil || dials > 0 {
				return nc, err
			}
			dials++
			return &epipeConn{Conn: nc, hangUp: hangUp, conn: func() *conn { return (*c.p.conns.Load())[0] }}, nil
		}
	}}
	var err error
	c, err = Open(context.Background(), path, WithPoolSize(1), WithHooks(hook))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.p.setPushHooks(&pushHooks{}) // the reader goroutine reads all the time
	if err := NewDict[string, int](c, "t").Set(context.Background(), "k", 1); err != nil {
		t.Fatalf("a write that failed with EPIPE, nothing written: %v, want it resent and answered", err)
	}
}
