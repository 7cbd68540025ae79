package main

import (
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// helloPush connects and negotiates the push extension.
func helloPush(t *testing.T, socket string) *daemontest.Conn {
	t.Helper()
	c := daemontest.Dial(t, socket)
	res, err := c.Call(wire.OpHello, wire.ProtocolVersion, map[string]any{"client": "push-test", "push": true})
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Push bool `cbor:"push"`
	}
	if err := wire.Unmarshal(res, &h); err != nil || !h.Push {
		t.Fatalf("HELLO with push: %s", wire.Diagnose(res))
	}
	return c
}

func readPushReply(t *testing.T, c *daemontest.Conn) (uint64, string) {
	t.Helper()
	r, err := c.Read()
	if err != nil {
		t.Fatal(err)
	}
	if r.Err != nil {
		return r.ID, r.Err.Code.String()
	}
	return r.ID, wire.Diagnose(r.Result)
}

func want(t *testing.T, c *daemontest.Conn, id uint64, res string) {
	t.Helper()
	gid, gres := readPushReply(t, c)
	if gid != id || gres != res {
		t.Fatalf("got reply %d %s, want %d %s", gid, gres, id, res)
	}
}

// TestBlockingPops runs the blocking ops over the wire, in both serving
// models: on a push connection a blocked pop does not hold up the
// requests after it; without push it does; a cancel answers it; a client
// that hangs up while blocked leaves the value for the next waiter.
func TestBlockingPops(t *testing.T) {
	test := func(t *testing.T, ioModel string) {
		d := daemontest.Start(t, ioModel)
		admin := daemontest.DialHello(t, d.Socket)
		admin.MustCall(t, nil, wire.OpCreateList, "q")
		admin.MustCall(t, nil, wire.OpCreateList, "jobs")
		admin.MustCall(t, nil, wire.OpCreateList, "work")

		// Push: the blocked pop's reply comes after later replies.
		p := helloPush(t, d.Socket)
		bid, _ := p.Send(wire.OpLBPop, []string{"q"}, "left", nil)
		pid, _ := p.Send(wire.OpPing)
		want(t, p, pid, `"PONG"`)
		admin.MustCall(t, nil, wire.OpLAppend, "q", "v1")
		want(t, p, bid, `["q", "v1"]`)

		// Request id 0 is refused on a push connection.
		f, _ := wire.AppendRequest(nil, 0, wire.OpPing)
		p.NetConn().Write(f)
		want(t, p, 0, "bad_request")

		// Cancel: the cancelled request's null, then the cancel's true.
		bid, _ = p.Send(wire.OpLBPop, []string{"q"}, "right", 60000)
		cid, _ := p.Send(wire.OpCancel, bid)
		want(t, p, bid, "null")
		want(t, p, cid, "true")
		cid, _ = p.Send(wire.OpCancel, bid)
		want(t, p, cid, "false")
		// A duplicate id of a blocked request is refused.
		p2 := helloPush(t, d.Socket)
		f, _ = wire.AppendRequest(nil, 7, wire.OpLBPop, []string{"q"}, "left", 60000)
		p2.NetConn().Write(append(f, f...))
		want(t, p2, 7, "bad_request")
		cid, _ = p2.Send(wire.OpCancel, 7)
		want(t, p2, 7, "null")
		want(t, p2, cid, "true")

		// Time-out.
		bid, _ = p.Send(wire.OpLBMove, "jobs", "work", "left", "right", 50)
		want(t, p, bid, "null")

		// Without push the connection waits for its blocked pop.
		np := daemontest.DialHello(t, d.Socket)
		bid, _ = np.Send(wire.OpLBMove, "jobs", "work", "left", "right", 60000)
		pid, _ = np.Send(wire.OpPing)
		time.Sleep(50 * time.Millisecond)
		admin.MustCall(t, nil, wire.OpLAppend, "jobs", "j1")
		want(t, np, bid, `["jobs", "j1"]`)
		want(t, np, pid, `"PONG"`)
		var work []string
		admin.MustCall(t, &work, wire.OpLToList, "work")
		if len(work) != 1 || work[0] != "j1" {
			t.Fatalf("work %v", work)
		}

		// A waiter that hangs up is skipped: the value goes to the next.
		gone := helloPush(t, d.Socket)
		gone.Send(wire.OpLBPop, []string{"q"}, "left", nil) // first in line
		goneNP := daemontest.DialHello(t, d.Socket)
		goneNP.Send(wire.OpLBPop, []string{"q"}, "left", nil) // second, no push
		time.Sleep(50 * time.Millisecond)
		next := helloPush(t, d.Socket)
		nid, _ := next.Send(wire.OpLBPop, []string{"q"}, "left", nil)
		time.Sleep(50 * time.Millisecond)
		gone.Close()
		goneNP.Close()
		time.Sleep(100 * time.Millisecond)
		admin.MustCall(t, nil, wire.OpLAppend, "q", "precious")
		want(t, next, nid, `["q", "precious"]`)
		var info map[string]any
		admin.MustCall(t, &info, wire.OpInfo)
		if n := info["blocked_requests"]; n != uint64(0) {
			t.Fatalf("info blocked_requests %v, want 0", n)
		}
	}
	forEachIOModel(t, test)
}
