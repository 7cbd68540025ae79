package daemontest

import (
	"bufio"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Conn is a raw protocol connection for tests: it writes frames and reads
// replies with no pooling or retries, so tests see exactly what the daemon
// sends.
type Conn struct {
	nc     net.Conn
	r      *bufio.Reader
	nextID uint64
}

// Dial connects to socket without the handshake.
func Dial(t testing.TB, socket string) *Conn {
	t.Helper()
	nc, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", socket, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &Conn{nc: nc}
}

// DialHello connects and completes the handshake.
func DialHello(t testing.TB, socket string) *Conn {
	t.Helper()
	c := Dial(t, socket)
	if _, err := c.Hello(); err != nil {
		t.Fatalf("HELLO: %v", err)
	}
	return c
}

// NetConn is the underlying connection, for raw writes.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Hello sends HELLO and returns the reply's result.
func (c *Conn) Hello() (wire.Raw, error) {
	return c.Call(wire.OpHello, wire.ProtocolVersion, map[string]any{"client": "daemontest"})
}

// Send writes one request and returns its id.
func (c *Conn) Send(op wire.Op, args ...any) (uint64, error) {
	c.nextID++
	f, err := wire.AppendRequest(nil, c.nextID, op, args...)
	if err != nil {
		return 0, err
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err = c.nc.Write(f)
	return c.nextID, err
}

// Read reads one reply frame (waiting up to 10s).
func (c *Conn) Read() (wire.Reply, error) {
	if c.r == nil {
		c.r = bufio.NewReader(c.nc)
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	body, err := wire.ReadFrame(c.r, nil, 1<<30)
	if err != nil {
		return wire.Reply{}, err
	}
	return wire.DecodeReply(body)
}

// Call sends one request and reads its reply: the result, or the reply's
// *wire.Error.
func (c *Conn) Call(op wire.Op, args ...any) (wire.Raw, error) {
	id, err := c.Send(op, args...)
	if err != nil {
		return nil, err
	}
	r, err := c.Read()
	if err != nil {
		return nil, err
	}
	if r.ID != id {
		return nil, fmt.Errorf("reply id %d, want %d", r.ID, id)
	}
	if r.Err != nil {
		return nil, r.Err
	}
	return r.Result, nil
}

// MustCall is Call that fails the test on error, decoding the result into out (if non-nil).
func (c *Conn) MustCall(t testing.TB, out any, op wire.Op, args ...any) {
	t.Helper()
	res, err := c.Call(op, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", op, args, err)
	}
	if out != nil {
		if err := wire.Unmarshal(res, out); err != nil {
			t.Fatalf("%s: decode %s: %v", op, wire.Diagnose(res), err)
		}
	}
}

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }
