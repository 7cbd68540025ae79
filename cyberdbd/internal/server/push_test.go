package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// pushHello sends HELLO asking for the push extension.
func (c *rawClient) pushHello(id uint64) {
	c.t.Helper()
	c.send(mustReq(id, wire.OpHello, 1, map[string]any{"push": true}))
	c.expect(id, wire.CodeOK)
}

// next reads frames until the reply to id (pushes read meanwhile are
// returned too).
func (c *rawClient) next() (wire.Reply, map[string]any) {
	c.t.Helper()
	body := c.frame()
	r, err := wire.DecodeReply(body)
	if err != nil {
		c.t.Fatalf("bad frame %s: %v", wire.Diagnose(body), err)
	}
	if r.ID == 0 && r.Code == wire.CodeOK {
		var m map[string]any
		if err := wire.Unmarshal(r.Result, &m); err != nil {
			c.t.Fatalf("push %s: %v", wire.Diagnose(body), err)
		}
		return r, m
	}
	return r, nil
}

// push reads one frame and requires a push of kind.
func (c *rawClient) push(kind string) map[string]any {
	c.t.Helper()
	r, m := c.next()
	if m == nil || m["push"] != kind {
		c.t.Fatalf("want a %q push, got id %d code %s %v", kind, r.ID, r.Code, m)
	}
	return m
}

func subID(t *testing.T, r wire.Reply) uint64 {
	t.Helper()
	m := decodeResult[map[string]any](t, r)
	id, ok := m["sub"].(uint64)
	if !ok || id == 0 {
		t.Fatalf("reply %v has no sub id", m)
	}
	return id
}

func TestPubSub(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		ts := startTestServer(t, m, Config{})
		sub, pub, psub := ts.dial(), ts.dial(), ts.dial()
		sub.pushHello(1)
		pub.hello(1)
		psub.pushHello(1)

		pub.send(mustReq(2, wire.OpSubscribe, "news"))
		pub.expect(2, wire.CodeBadRequest) // no push: refused

		sub.send(mustReq(2, wire.OpSubscribe, "news", "weather"))
		id := subID(t, sub.expect(2, wire.CodeOK))
		psub.send(mustReq(2, wire.OpPSubscribe, "n?ws", "w*"))
		pid := subID(t, psub.expect(2, wire.CodeOK))

		pub.send(mustReq(3, wire.OpPublish, "news", "hello"))
		if n := decodeResult[int](t, pub.expect(3, wire.CodeOK)); n != 2 {
			t.Fatalf("publish reached %d subscriptions, want 2", n)
		}
		msg := sub.push("message")
		if msg["sub"] != id || msg["channel"] != "news" || msg["data"] != "hello" || msg["pattern"] != nil {
			t.Fatalf("subscriber got %v", msg)
		}
		msg = psub.push("message")
		if msg["sub"] != pid || msg["channel"] != "news" || msg["pattern"] != "n?ws" {
			t.Fatalf("pattern subscriber got %v", msg)
		}
		pub.send(mustReq(4, wire.OpPublish, "nobody", 1))
		if n := decodeResult[int](t, pub.expect(4, wire.CodeOK)); n != 0 {
			t.Fatalf("publish to no subscriber reached %d", n)
		}
		sub.send(mustReq(3, wire.OpUnsubscribe, id))
		if !decodeResult[bool](t, sub.expect(3, wire.CodeOK)) {
			t.Fatal("unsubscribe of a live subscription said false")
		}
		pub.send(mustReq(5, wire.OpPublish, "weather", "rain"))
		if n := decodeResult[int](t, pub.expect(5, wire.CodeOK)); n != 1 {
			t.Fatalf("after unsubscribe, publish reached %d, want 1 (the pattern)", n)
		}
		psub.push("message")
		// The subscriber got nothing more: its next frame is its own reply.
		sub.send(mustReq(4, wire.OpPing))
		if r, m := sub.next(); m != nil || r.ID != 4 {
			t.Fatalf("after unsubscribe got %v %v", r, m)
		}
	})
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		pat, s string
		want   bool
	}{
		{"*", "", true}, {"a*", "abc", true}, {"a*c", "abbbc", true}, {"a*c", "abcd", false},
		{"h?llo", "hello", true}, {"h?llo", "hllo", false}, {"h[ae]llo", "hallo", true},
		{"h[^e]llo", "hello", false}, {"h[^e]llo", "hallo", true}, {"h[a-b]llo", "hbllo", true},
		{`h\*llo`, "h*llo", true}, {`h\*llo`, "hello", false}, {"[", "[", true}, {"news.*", "news.sport", true},
	} {
		if got := globMatch(c.pat, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.pat, c.s, got, c.want)
		}
	}
}

func TestWatch(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		ts := startTestServer(t, m, Config{})
		w, kw, wr := ts.dial(), ts.dial(), ts.dial()
		w.pushHello(1)
		kw.pushHello(1)
		wr.hello(1)
		wr.dictWith("flags", "a", 1)

		w.send(mustReq(2, wire.OpWatch, "flags", map[string]any{"values": true}))
		r := w.expect(2, wire.CodeOK)
		res := decodeResult[map[string]any](t, r)
		if res["exists"] != true || res["seq"] == nil {
			t.Fatalf("watch reply %v", res)
		}
		seq0 := res["seq"].(uint64)
		kw.send(mustReq(2, wire.OpWatch, "flags", map[string]any{"key": "b"}))
		kid := subID(t, kw.expect(2, wire.CodeOK))

		wr.send(mustReq(4, wire.OpDSet, "flags", "a", 2))
		wr.expect(4, wire.CodeOK)
		ev := w.push("event")
		if ev["op"] != "dset" || ev["key"] != "a" || ev["value"] != uint64(2) || ev["seq"] != seq0+1 || ev["table"] != "flags" {
			t.Fatalf("event %v (seq0 %d)", ev, seq0)
		}
		wr.send(mustReq(5, wire.OpDIncr, "flags", "b", 5))
		wr.expect(5, wire.CodeOK)
		ev = w.push("event")
		if ev["op"] != "dincr" || ev["key"] != "b" || ev["value"] != uint64(5) || ev["seq"] != seq0+2 {
			t.Fatalf("event %v", ev)
		}
		ev = kw.push("event") // the key watcher saw only b
		if ev["sub"] != kid || ev["key"] != "b" || ev["value"] != nil {
			t.Fatalf("key watcher got %v", ev)
		}
		// A batch: its events in batch order, together.
		wr.send(mustReq(6, wire.OpBatch, []any{
			[]any{wire.OpDSet, "flags", "x", "1"},
			[]any{wire.OpDDel, "flags", "a"},
			[]any{wire.OpDGet, "flags", "b"},
		}))
		wr.expect(6, wire.CodeOK)
		e1, e2 := w.push("event"), w.push("event")
		if e1["op"] != "dset" || e1["key"] != "x" || e2["op"] != "ddel" || e2["key"] != "a" || e1["seq"] != e2["seq"] || e1["seq"] != seq0+3 {
			t.Fatalf("batch events %v %v", e1, e2)
		}
		wr.send(mustReq(7, wire.OpDrop, "flags"))
		wr.expect(7, wire.CodeOK)
		if ev := w.push("event"); ev["op"] != "drop" {
			t.Fatalf("drop event %v", ev)
		}
		if ev := kw.push("event"); ev["op"] != "drop" {
			t.Fatalf("key watcher: drop event %v", ev)
		}
		// A list table, created after the watch.
		w.send(mustReq(3, wire.OpWatch, "jobs"))
		res = decodeResult[map[string]any](t, w.expect(3, wire.CodeOK))
		if res["exists"] != false {
			t.Fatalf("watch of a missing table: %v", res)
		}
		wr.send(append(mustReq(8, wire.OpCreateList, "jobs"), mustReq(9, wire.OpLAppend, "jobs", "j1")...))
		wr.expect(8, wire.CodeOK)
		wr.expect(9, wire.CodeOK)
		if ev := w.push("event"); ev["op"] != "create_list" {
			t.Fatalf("create event %v", ev)
		}
		ev = w.push("event")
		if ev["op"] != "lappend" || fmt.Sprint(ev["args"]) != "[j1]" {
			t.Fatalf("lappend event %v", ev)
		}
	})
}

func TestTracking(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		ts := startTestServer(t, m, Config{})
		rd, wr := ts.dial(), ts.dial()
		rd.pushHello(1)
		wr.hello(1)
		wr.dictWith("cfg", "k", "v1")

		rd.send(mustReq(2, wire.OpTracking, true))
		tid := subID(t, rd.expect(2, wire.CodeOK))
		rd.send(mustReq(3, wire.OpDGet, "cfg", "k"))
		rd.expect(3, wire.CodeOK)
		rd.send(mustReq(4, wire.OpDGet, "cfg", "absent", nil))
		rd.expect(4, wire.CodeOK)

		wr.send(mustReq(4, wire.OpDSet, "cfg", "k", "v2"))
		wr.expect(4, wire.CodeOK)
		inv := rd.push("invalidate")
		if inv["sub"] != tid || inv["table"] != "cfg" || fmt.Sprint(inv["keys"]) != "[k]" {
			t.Fatalf("invalidate %v", inv)
		}
		// Once per registration: a second write sends nothing.
		wr.send(mustReq(5, wire.OpDSet, "cfg", "k", "v3"))
		wr.expect(5, wire.CodeOK)
		// The miss was registered too.
		wr.send(mustReq(6, wire.OpDSet, "cfg", "absent", 1))
		wr.expect(6, wire.CodeOK)
		if inv := rd.push("invalidate"); fmt.Sprint(inv["keys"]) != "[absent]" {
			t.Fatalf("invalidate of the miss: %v", inv)
		}
		rd.send(mustReq(5, wire.OpDGet, "cfg", "k"))
		rd.expect(5, wire.CodeOK)
		wr.send(mustReq(7, wire.OpDClear, "cfg"))
		wr.expect(7, wire.CodeOK)
		if inv := rd.push("invalidate"); inv["keys"] != nil {
			t.Fatalf("a clear invalidates the whole table: %v", inv)
		}
		rd.send(mustReq(6, wire.OpTracking, false))
		if !decodeResult[bool](t, rd.expect(6, wire.CodeOK)) {
			t.Fatal("tracking off said it was not on")
		}
	})
}

// TestPushOverflow: a subscriber that stops reading gets its subscription
// dropped with a "lost" push, the daemon holds at most the bound, and the
// connection still serves requests.
func TestPushOverflow(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		ts := startTestServer(t, m, Config{MaxPushBuffer: 64 << 10})
		sub, pub := ts.dial(), ts.dial()
		sub.pushHello(1)
		pub.hello(1)
		_ = sub.nc.SetReadBuffer(4 << 10)
		sub.send(mustReq(2, wire.OpSubscribe, "firehose"))
		id := subID(t, sub.expect(2, wire.CodeOK))
		big := strings.Repeat("x", 1000)
		const n = 20000 // 20 MB: far over the socket buffers and the bound
		reached := 0
		for i := 0; i < n; i += 100 {
			var b []byte
			for j := 0; j < 100; j++ {
				b = append(b, mustReq(uint64(10+i+j), wire.OpPublish, "firehose", big)...)
			}
			pub.send(b)
			for j := 0; j < 100; j++ {
				reached += decodeResult[int](t, pub.expect(uint64(10+i+j), wire.CodeOK))
			}
		}
		if reached >= n || ts.srv.pushLost.Load() == 0 {
			t.Fatalf("%d of %d messages reached the subscriber that does not read, none lost", reached, n)
		}
		// Now it reads: messages, then the lost notice, then nothing more.
		sub.send(mustReq(3, wire.OpPing))
		got, lost, pong := 0, false, false
		for !pong {
			r, p := sub.next()
			switch {
			case p == nil && r.ID == 3:
				pong = true
			case p != nil && p["push"] == "message":
				if lost {
					t.Fatal("a message after the lost notice")
				}
				got++
			case p != nil && p["push"] == "lost":
				if p["sub"] != id || lost {
					t.Fatalf("lost %v", p)
				}
				lost = true
			default:
				t.Fatalf("unexpected frame %v %v", r, p)
			}
		}
		if !lost || got != reached {
			t.Fatalf("read %d messages (publish counted %d), lost notice %v", got, reached, lost)
		}
		pub.send(mustReq(1<<20, wire.OpPublish, "firehose", "after"))
		if n := decodeResult[int](t, pub.expect(1<<20, wire.CodeOK)); n != 0 {
			t.Fatalf("the dropped subscription still receives: %d", n)
		}
		_ = time.Second
	})
}

// TestInvalidationBeforeReply: on one event loop, the invalidation a write
// causes is written before the reply to that write (PROTOCOL.md 6.8): once
// the writer has its reply, the reader's socket already holds the push.
func TestInvalidationBeforeReply(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("event loops need Linux")
	}
	ts := startTestServer(t, ioMode{"one loop", 1}, Config{})
	rd, wr := ts.dial(), ts.dial()
	rd.pushHello(1)
	wr.hello(1)
	wr.dictWith("cfg", "k", "v1")
	rd.send(mustReq(2, wire.OpTracking, true))
	rd.expect(2, wire.CodeOK)
	for i := range 200 {
		id := uint64(10 + i)
		rd.send(mustReq(id, wire.OpDGet, "cfg", "k"))
		rd.expect(id, wire.CodeOK)
		wr.send(mustReq(id, wire.OpDSet, "cfg", "k", i))
		wr.expect(id, wire.CodeOK)
		if rd.r.Buffered() == 0 && !readable(t, rd.nc) {
			t.Fatalf("write %d: the writer has its reply, and the reader's invalidation is not there yet", i)
		}
		rd.push("invalidate")
	}
}

// readable reports whether nc has bytes to read now, without waiting.
func readable(t *testing.T, nc *net.UnixConn) bool {
	t.Helper()
	rc, err := nc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var buf [1]byte
	if err := rc.Read(func(fd uintptr) bool {
		n, _, _ = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestPushesWaitForOffLoopRequest: while a worker runs a connection's
// request off the loop, it owns the connection. A value for the
// connection's blocked pop and pub/sub messages, posted meanwhile by
// other connections, wait until the worker is done, then all arrive.
// Taken at once, they raced the worker for the connection's replies, and
// the write of them started the off-loop request a second time: the
// daemon panicked (a slice of a released buffer) or closed the connection.
func TestPushesWaitForOffLoopRequest(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("event loops are Linux only")
	}
	ts := startTestServer(t, ioMode{"loop", 1}, Config{})
	c, feeder := ts.dial(), ts.dial()
	c.pushHello(1)
	feeder.hello(1)
	feeder.send(mustReq(2, wire.OpCreateList, "q"))
	feeder.expect(2, wire.CodeOK)
	c.send(mustReq(2, wire.OpSubscribe, "news"))
	c.expect(2, wire.CodeOK)
	c.send(mustReq(3, wire.OpLBPop, []string{"q"}, "left", nil)) // blocks
	c.send(bigListFrame(4, 300_000))                             // runs off the loop for a while
	// Fed until the request is done: before it starts, while it runs,
	// after it.
	var stop atomic.Bool
	fed := make(chan int)
	go func() {
		n := 0
		defer func() { fed <- n }()
		for id := uint64(10); !stop.Load(); id++ {
			if err := feeder.sendErr(mustReq(id, wire.OpPublish, "news", n)); err != nil {
				return
			}
			if _, err := feeder.frameErr(); err != nil {
				return
			}
			n++
			if n == 3 {
				feeder.send(mustReq(1<<20, wire.OpLAppend, "q", "job"))
				feeder.expect(1<<20, wire.CodeOK)
			}
		}
	}()
	_ = c.nc.SetReadDeadline(time.Now().Add(time.Minute)) // -race: the decoding takes a while
	var got []int
	popped := false
	for {
		r, m := c.next()
		if m != nil {
			if m["push"] != "message" {
				t.Fatalf("push %v", m)
			}
			got = append(got, int(m["data"].(uint64)))
			continue
		}
		if r.ID == 3 && r.Code == wire.CodeOK {
			if v := decodeResult[[]string](t, r); len(v) != 2 || v[1] != "job" {
				t.Fatalf("lbpop got %q", v)
			}
			popped = true
			continue
		}
		if r.ID == 4 && r.Code == wire.CodeOK {
			break
		}
		t.Fatalf("unexpected frame id %d code %s", r.ID, r.Code)
	}
	stop.Store(true)
	n := <-fed
	for len(got) < n || !popped {
		r, m := c.next()
		switch {
		case m != nil:
			got = append(got, int(m["data"].(uint64)))
		case r.ID == 3 && r.Code == wire.CodeOK:
			popped = true
		default:
			t.Fatalf("unexpected frame id %d code %s", r.ID, r.Code)
		}
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("message %d is %d: out of order or lost (%d messages)", i, v, len(got))
		}
	}
	t.Logf("%d messages published around the off-loop request", n)
	c.send(mustReq(5, wire.OpPing))
	c.expect(5, wire.CodeOK)
}

// TestKillClientOffLoop: kill_client closes a connection whose off-loop
// request waits for its replies to drain to a client that does not read
// (it was posted again every round, spinning the loop for good), and one
// whose off-loop request a worker runs (closed once the worker is done).
func TestKillClientOffLoop(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("event loops are Linux only")
	}
	ts := startTestServer(t, ioMode{"loop", 1}, Config{})
	admin := ts.dial()
	admin.hello(1)
	admin.dictWith("d", "big", make([]byte, 250<<10)) // more than a Unix socket holds
	connID := func(c *rawClient) uint64 {
		c.send(mustReq(1, wire.OpHello, 1, map[string]any{"client": "victim"}))
		m := decodeResult[map[string]any](t, c.expect(1, wire.CodeOK))
		id, ok := m["conn_id"].(uint64)
		if !ok {
			t.Fatalf("HELLO reply %v has no conn_id", m)
		}
		return id
	}
	kill := func(id, req uint64) {
		admin.send(mustReq(req, wire.OpKillClient, id))
		if !decodeResult[bool](t, admin.expect(req, wire.CodeOK)) {
			t.Fatalf("kill_client %d: false", id)
		}
	}

	admin.createBigList()

	// Not reading: the reply to dget fills the socket, and the count
	// after it waits for the reply to drain before it runs off the loop.
	stuck := ts.dial()
	id := connID(stuck)
	stuck.send(append(mustReq(2, wire.OpDGet, "d", "big"), mustReq(3, wire.OpLCount, "L", 0)...))
	time.Sleep(50 * time.Millisecond) // the loop reads both and writes what fits
	kill(id, 10)
	ts.waitConns(1) // the admin's
	drainToEnd(t, stuck, ioWait)

	// A worker runs its request: closed when it is done.
	busy := ts.dial()
	id = connID(busy)
	busy.send(bigListFrame(2, 300_000)) // L exists: it fails, once decoded

	kill(id, 11)
	drainToEnd(t, busy, time.Minute) // -race: the decoding takes a while
	ts.waitConns(1)
	admin.send(mustReq(12, wire.OpPing))
	admin.expect(12, wire.CodeOK)
}

// drainToEnd reads c until the server's close shows (EOF, or a reset:
// closed with requests unread), failing the test if it does not within d.
func drainToEnd(t *testing.T, c *rawClient, d time.Duration) {
	t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c.r)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the connection did not end within %s: %v", d, err)
	}
}

// TestShutdownStuckOffLoop: a forced Shutdown closes a connection whose
// off-loop request waits for its replies to drain to a client that does
// not read. It was spared as if a worker owned it, and the loop, never
// without connections, did not end: Shutdown returned, its loop still
// running, and the daemon did not exit.
func TestShutdownStuckOffLoop(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("event loops are Linux only")
	}
	ts := startTestServer(t, ioMode{"loop", 1}, Config{})
	admin := ts.dial()
	admin.hello(1)
	admin.dictWith("d", "big", make([]byte, 250<<10)) // more than a Unix socket holds
	admin.createBigList()
	stuck := ts.dial()
	stuck.hello(1)
	stuck.send(append(mustReq(2, wire.OpDGet, "d", "big"), mustReq(3, wire.OpLCount, "L", 0)...))
	time.Sleep(50 * time.Millisecond) // the loop reads both and writes what fits

	if err := ts.shutdown(300 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded (it had to force a close)", err)
	}
	ts.waitConns(0)
	drainToEnd(t, stuck, ioWait)
}

// TestIdleTimeoutSparesSubscribers: a connection with a subscription
// waits for pushes and is not idle, however long it sends nothing and
// whether messages come or not (Redis exempts its pub/sub clients too);
// once it unsubscribes, the idle time-out applies again. The two I/O
// models disagreed: with a goroutine per connection a silent subscriber
// was closed, on the loops only one to which nothing was published.
func TestIdleTimeoutSparesSubscribers(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		const idle = 200 * time.Millisecond
		ts := startTestServer(t, m, Config{IdleTimeout: idle})
		busy, quiet, pub := ts.dial(), ts.dial(), ts.dial()
		busy.pushHello(1)
		quiet.pushHello(1)
		busy.send(mustReq(2, wire.OpSubscribe, "news"))
		subID(t, busy.expect(2, wire.CodeOK))
		quiet.send(mustReq(2, wire.OpSubscribe, "nothing"))
		quietSub := subID(t, quiet.expect(2, wire.CodeOK))
		pub.hello(1)
		for i := range 25 { // 5 idle time-outs
			pub.send(mustReq(uint64(10+i), wire.OpPublish, "news", i))
			pub.expect(uint64(10+i), wire.CodeOK)
			time.Sleep(idle / 5)
		}
		for i := range 25 {
			if m := busy.push("message"); m["data"] != uint64(i) {
				t.Fatalf("message %d: %v", i, m)
			}
		}
		// The quiet one is open: it answers.
		quiet.send(mustReq(3, wire.OpPing))
		quiet.expect(3, wire.CodeOK)
		// Unsubscribed, it is idle again.
		quiet.send(mustReq(4, wire.OpUnsubscribe, quietSub))
		quiet.expect(4, wire.CodeOK)
		quiet.expect(0, wire.CodeIdleTimeout)
	})
}

// bigListFrame is [id, create_list, "L", [0, 0, ...]] with items zeros:
// slow enough to decode that it runs off the loop for a while.
func bigListFrame(id byte, items int) []byte {
	body := []byte{0x84, id, byte(wire.OpCreateList), 0x61, 'L', 0x9a}
	body = binary.BigEndian.AppendUint32(body, uint32(items))
	return wire.AppendFrame(nil, append(body, make([]byte, items)...))
}

// createBigList creates L with 300,000 elements (request id 4): big
// enough that a count of it runs off the loop.
func (c *rawClient) createBigList() {
	c.t.Helper()
	c.send(bigListFrame(4, 300_000))
	_ = c.nc.SetReadDeadline(time.Now().Add(time.Minute)) // -race: the decoding takes a while
	if r, err := wire.ReadFrame(c.r, nil, 1<<20); err != nil {
		c.t.Fatal(err)
	} else if rep, err := wire.DecodeReply(r); err != nil || rep.ID != 4 || rep.Code != wire.CodeOK {
		c.t.Fatalf("create_list: %s", wire.Diagnose(r))
	}
}
