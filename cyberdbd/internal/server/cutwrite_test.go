package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// cutListener hands out connections whose writes can be made to fail
// halfway, as a write that times out or meets a reset after part of a
// frame went out. Its connections hide their descriptor (no event loop
// can take them): they are goroutine-served, as every TCP connection is.
type cutListener struct {
	net.Listener
	conns chan *cutConn
}

type cutConn struct {
	net.Conn
	cut chan struct{} // closed: every Write from now on writes half its bytes and fails
}

func (l cutListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &cutConn{Conn: nc, cut: make(chan struct{})}
	l.conns <- c
	return c, nil
}

func (c *cutConn) Write(b []byte) (int, error) {
	select {
	case <-c.cut:
		n, _ := c.Conn.Write(b[:len(b)/2])
		return n, errors.New("test: write cut short")
	default:
		return c.Conn.Write(b)
	}
}

// TestPushWriteCutCloses: on a goroutine-served push connection, a write
// made by another goroutine than the connection's own (its pushes; the
// reply to a parked request) that fails after part of a frame went out
// closes the connection, as a failed flush of its replies does: the
// client sees the stream end, never a frame cut in two followed by more
// frames. The parked request's value goes back to its list.
func TestPushWriteCutCloses(t *testing.T) {
	for _, tc := range []struct {
		name string
		// park makes the next write to sub's connection another
		// goroutine's: subscribe, or park a pop.
		park func(t *testing.T, sub *rawClient)
		// trigger makes the daemon write to it, through other.
		trigger func(t *testing.T, other *rawClient)
	}{
		{"push", func(t *testing.T, sub *rawClient) {
			sub.send(mustReq(2, wire.OpSubscribe, "ch"))
			sub.expect(2, wire.CodeOK)
		}, func(t *testing.T, other *rawClient) {
			other.send(mustReq(2, wire.OpPublish, "ch", "a message of some length"))
			other.expect(2, wire.CodeOK)
		}},
		{"parked reply", func(t *testing.T, sub *rawClient) {
			sub.send(mustReq(2, wire.OpLBPop, []string{"q"}, "left", nil))
		}, func(t *testing.T, other *rawClient) {
			other.send(mustReq(3, wire.OpLAppend, "q", "job"))
			other.expect(3, wire.CodeOK)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conns := make(chan *cutConn, 4)
			ts := startWrapped(t, Config{}, func(l net.Listener) net.Listener {
				return cutListener{Listener: l, conns: conns}
			})
			sub := ts.dial()
			sc := <-conns
			other := ts.dial()
			<-conns
			sub.pushHello(1)
			other.hello(1)
			other.send(mustReq(2, wire.OpCreateList, "q"))
			other.expect(2, wire.CodeOK)

			tc.park(t, sub)
			if tc.name == "parked reply" {
				waitBlocked(t, ts.srv, 1)
			}
			close(sc.cut)
			tc.trigger(t, other)

			// The client gets at most half a frame, then the end of the
			// stream: not a frame, and nothing after it.
			_ = sub.nc.SetReadDeadline(time.Now().Add(ioWait))
			rest, err := io.ReadAll(sub.r)
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("after a write cut short: %v with %d bytes; want the connection closed", err, len(rest))
			}
			if _, ferr := wire.ReadFrame(bytes.NewReader(rest), nil, 1<<20); ferr == nil {
				t.Fatalf("a whole frame after the cut: % x", rest)
			}
			ts.waitConns(1)
			if tc.name == "parked reply" {
				// Not delivered whole: the value is back in its list.
				other.send(mustReq(4, wire.OpLLen, "q"))
				if n := decodeResult[int](t, other.expect(4, wire.CodeOK)); n != 1 {
					t.Fatalf("llen q = %d after the reply was cut; want the value given back", n)
				}
			}
		})
	}
}

// waitBlocked waits until n requests are parked.
func waitBlocked(t *testing.T, s *Server, n int) {
	t.Helper()
	for deadline := time.Now().Add(ioWait); s.store.Waiting() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests parked, want %d", s.store.Waiting(), n)
		}
	}
}
