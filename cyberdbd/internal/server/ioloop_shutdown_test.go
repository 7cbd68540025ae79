package server

import (
	"bufio"
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Shutdown keeps PROTOCOL.md's promises to a client whose replies back up
// (the server has stopped reading it, with requests read and held back):
// it answers every request it has read, in order, then sends the
// shutting_down frame; and a request without a reply was not executed:
// the counter the requests increment equals the number of incr replies.
func TestConnShutdownAnswersWhatItRead(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		ts := startTestServer(t, m, Config{})
		setup := ts.dial()
		setup.hello(1)
		setup.dictWith("s", "big", make([]byte, 64<<10))

		// 300 pairs of (get big, incr n): 19 MiB of replies, far more
		// than the socket buffers hold while nobody reads.
		slow := ts.dial()
		const pairs = 300
		b := mustReq(1, wire.OpHello, 1)
		for i := range pairs {
			b = append(b, mustReq(uint64(2+2*i), wire.OpDGet, "s", "big")...)
			b = append(b, mustReq(uint64(3+2*i), wire.OpDIncr, "s", "n")...)
		}
		sent := slow.sendAsync(b, false)
		slow.expect(1, wire.CodeOK)
		time.Sleep(100 * time.Millisecond) // the server fills the socket and stops reading

		shut := make(chan error, 1)
		go func() { shut <- ts.shutdown(10 * time.Second) }()
		time.Sleep(100 * time.Millisecond)

		// Now read: replies 2, 3, 4, ... with no gap, then the last frame.
		next, incrs, last := uint64(2), 0, int64(0)
		for {
			r := slow.expectAny()
			if r.ID == 0 {
				if r.Code != wire.CodeShuttingDown {
					t.Fatalf("frame with id 0: %s %v, want shutting_down", r.Code, r.Err)
				}
				break
			}
			if r.ID != next || r.Code != wire.CodeOK {
				t.Fatalf("reply id %d (%s), want %d (ok)", r.ID, r.Code, next)
			}
			if next%2 == 1 {
				incrs++
				last = decodeResult[int64](t, r)
			}
			next++
		}
		slow.expectEOF()
		<-sent // the rest of the stream was never read: its write fails or ends
		if err := <-shut; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if next == 2 {
			t.Fatal("no reply before the shutting_down frame: the test did not exercise held-back requests")
		}
		if int64(incrs) != last {
			t.Fatalf("%d incr replies, the last says %d", incrs, last)
		}
		// The store itself: every incr executed was answered.
		req, err := wire.DecodeRequest(mustReq(1, wire.OpDGet, "s", "n")[wire.FrameHeaderSize:])
		if err != nil {
			t.Fatal(err)
		}
		res, err := ts.srv.store.Exec(req.Op, req.Args, nil)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := wire.Unmarshal(res, &n); err != nil || n != int64(incrs) {
			t.Fatalf("counter %d (%v) after %d incr replies: a request without a reply was executed", n, err, incrs)
		}
		// The whole stream (about 10 KiB) was read long before Shutdown,
		// in the server's first read: every request in it is answered.
		if incrs != pairs {
			t.Fatalf("%d of %d pairs answered before the shutting_down frame, want all: they had all been read", incrs, pairs)
		}
	})
}

// expectAny reads one reply, whatever its id and code.
func (c *rawClient) expectAny() wire.Reply {
	c.t.Helper()
	body := c.frame()
	r, err := wire.DecodeReply(body)
	if err != nil {
		c.t.Fatalf("bad reply %s: %v", wire.Diagnose(body), err)
	}
	return r
}

// opaqueListener hands out connections that hide their file descriptor
// (no SyscallConn), which an event loop cannot take.
type opaqueListener struct{ net.Listener }

type opaqueConn struct{ net.Conn }

func (l opaqueListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return opaqueConn{nc}, nil
}

// A connection the event loops cannot take is served by a goroutine of
// its own instead of being dropped.
func TestConnLoopFallsBackToGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("event loops need Linux")
	}
	h, err := startHarness(Config{IOLoops: 1, Logger: discardLogger()}, func(l net.Listener) net.Listener { return opaqueListener{l} })
	if err != nil {
		t.Fatal(err)
	}
	defer h.remove()
	srv := h.srv
	defer srv.Shutdown(context.Background())
	nc, err := net.DialTimeout("unix", h.path, ioWait)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := &rawClient{t: t, nc: nc.(*net.UnixConn), r: bufio.NewReaderSize(nc, 4096)}
	c.hello(1)
	c.send(mustReq(2, wire.OpPing))
	c.expect(2, wire.CodeOK)
	if n := srv.ioLoops(); n != 1 {
		t.Fatalf("%d event loops running, want 1 (the connection must have fallen back, not the server)", n)
	}
}
