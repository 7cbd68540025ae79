package libcyberdb

import (
	"bufio"
	"context"
	"net"
	"path/filepath"
	"testing"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// fakeDaemon answers HELLO on each connection, then hands the requests
// to serve, which says what to do with them; it stops when the test ends.
func fakeDaemon(t *testing.T, serve func(conn int, req wire.Request, nc net.Conn) bool) string {
	t.Helper()
	return fakeDaemonHello(t, nil, serve)
}

// fakeDaemonHello is fakeDaemon with a say in each HELLO: hello writes
// reply, HELLO's reply frame, on connection conn (and maybe more frames
// with it); false ends the connection. nil writes the reply alone.
func fakeDaemonHello(t *testing.T, hello func(conn int, nc net.Conn, reply []byte) bool, serve func(conn int, req wire.Request, nc net.Conn) bool) string {
	t.Helper()
	path := filepath.Join(daemontest.ShortTempDir(t), "fake.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for n := 0; ; n++ {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				for {
					body, err := wire.ReadFrame(br, nil, 1<<20)
					if err != nil {
						return
					}
					req, err := wire.DecodeRequest(body)
					if err != nil {
						return
					}
					if req.Op == wire.OpHello {
						res, _ := wire.Marshal(map[string]any{"proto": 1, "max_frame": 1 << 20, "conn_id": n})
						reply := wire.AppendReply(nil, req.ID, res)
						if hello == nil {
							nc.Write(reply)
						} else if !hello(n, nc, reply) {
							return
						}
						continue
					}
					if !serve(n, req, nc) {
						return
					}
				}
			}()
		}
	}()
	return path
}

// TestPasswordChangedFrameMeansNotExecuted: a daemon whose password
// changed ends the sessions of the old one with an id-0 auth_failed frame
// after answering every request it read; a request without a reply was
// not executed, so even a write is resent on a new connection.
func TestPasswordChangedFrameMeansNotExecuted(t *testing.T) {
	path := fakeDaemon(t, func(conn int, req wire.Request, nc net.Conn) bool {
		if conn == 0 {
			nc.Write(wire.AppendError(nil, 0, wire.Errorf(wire.CodeAuthFailed, "the server's password was changed")))
			return false
		}
		nc.Write(wire.AppendReply(nil, req.ID, []byte{0xf6}))
		return true
	})
	c, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := NewDict[string, int](c, "t").Set(context.Background(), "k", 1); err != nil {
		t.Fatalf("a write cut by the password-changed frame: %v, want it resent and answered", err)
	}
}
