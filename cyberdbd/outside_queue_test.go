package main

// Tests written from PROTOCOL.md (sections 3.1, 6.4, 6.6, 6.7) by an outside
// client: deques against Python's collections.deque, blocking pops and their
// cancel, fairness and loss-freedom under hang-ups and SIGKILL, and batches
// whose rollback must not wake a waiter.

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// pushConn is a raw push connection on which the test chooses the ids.
type pushConn struct {
	*daemontest.Conn
	t testing.TB
}

func dialPush(t *testing.T, socket string) pushConn {
	t.Helper()
	return pushConn{helloPush(t, socket), t}
}

// sendID writes one request with the given id.
func (p pushConn) sendID(id uint64, op wire.Op, args ...any) {
	p.t.Helper()
	f, err := wire.AppendRequest(nil, id, op, args...)
	if err != nil {
		p.t.Fatal(err)
	}
	_ = p.NetConn().SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := p.NetConn().Write(f); err != nil {
		p.t.Fatal(err)
	}
}

// next reads one frame and renders it as "id code-or-result".
func (p pushConn) next() string {
	p.t.Helper()
	r, err := p.Read()
	if err != nil {
		p.t.Fatal(err)
	}
	return renderReply(r)
}

func renderReply(r wire.Reply) string {
	if r.Err != nil {
		return fmt.Sprintf("%d %s", r.ID, r.Err.Code)
	}
	return fmt.Sprintf("%d %s", r.ID, wire.Diagnose(r.Result))
}

func (p pushConn) expect(want ...string) {
	p.t.Helper()
	for _, w := range want {
		if got := p.next(); got != w {
			p.t.Fatalf("got %q, want %q", got, w)
		}
	}
}

// call is a raw request/reply rendered as "code-or-result" (no id).
func call(t testing.TB, c *daemontest.Conn, op wire.Op, args ...any) string {
	t.Helper()
	res, err := c.Call(op, args...)
	if err != nil {
		if we, ok := err.(*wire.Error); ok {
			return we.Code.String()
		}
		t.Fatalf("%s: %v", op, err)
	}
	return wire.Diagnose(res)
}

func expectCall(t testing.TB, c *daemontest.Conn, want string, op wire.Op, args ...any) {
	t.Helper()
	if got := call(t, c, op, args...); got != want {
		t.Fatalf("%s %v: got %s, want %s", op, args, got, want)
	}
}

// TestOutsideDequeLikePython checks the deque ops against what Python's
// collections.deque does with the same calls (the expected lists were
// produced by python3).
func TestOutsideDequeLikePython(t *testing.T) {
	d := daemontest.Start(t)
	c := daemontest.DialHello(t, d.Socket)
	c.MustCall(t, nil, wire.OpCreateList, "l")
	// d = deque(); d.extendleft([1, 2, 3]) -> deque([3, 2, 1])
	expectCall(t, c, "3", wire.OpLExtendLeft, "l", []int{1, 2, 3})
	expectCall(t, c, "[3, 2, 1]", wire.OpLToList, "l")
	// d.appendleft(4); d.appendleft(5) in one request -> [5, 4, 3, 2, 1]
	expectCall(t, c, "5", wire.OpLAppendLeft, "l", 4, 5)
	expectCall(t, c, "[5, 4, 3, 2, 1]", wire.OpLToList, "l")
	// d.extendleft([]) changes nothing.
	expectCall(t, c, "5", wire.OpLExtendLeft, "l", []int{})
	// d.rotate(2) -> [2, 1, 5, 4, 3]; d.rotate(-3) -> [4, 3, 2, 1, 5]
	expectCall(t, c, "null", wire.OpLRotate, "l", 2)
	expectCall(t, c, "[2, 1, 5, 4, 3]", wire.OpLToList, "l")
	expectCall(t, c, "null", wire.OpLRotate, "l", -3)
	expectCall(t, c, "[4, 3, 2, 1, 5]", wire.OpLToList, "l")
	// rotate() is rotate(1), null too -> [5, 4, 3, 2, 1] then [1, 5, 4, 3, 2]
	expectCall(t, c, "null", wire.OpLRotate, "l")
	expectCall(t, c, "null", wire.OpLRotate, "l", nil)
	expectCall(t, c, "[1, 5, 4, 3, 2]", wire.OpLToList, "l")
	// Extreme rotations are modulo the length: -2**63 % 5 == 2, (2**63-1) % 5 == 2.
	expectCall(t, c, "null", wire.OpLRotate, "l", int64(math.MinInt64))
	expectCall(t, c, "[3, 2, 1, 5, 4]", wire.OpLToList, "l")
	expectCall(t, c, "null", wire.OpLRotate, "l", int64(math.MaxInt64))
	expectCall(t, c, "[5, 4, 3, 2, 1]", wire.OpLToList, "l")
	// Not an int64: bad_request (PROTOCOL.md section 5), the list unchanged.
	expectCall(t, c, "bad_request", wire.OpLRotate, "l", 1.5)
	expectCall(t, c, "bad_request", wire.OpLRotate, "l", true)
	expectCall(t, c, "bad_request", wire.OpLRotate, "l", uint64(math.MaxUint64))
	expectCall(t, c, "bad_request", wire.OpLRotate, "l", wire.Raw{0xf7})
	expectCall(t, c, "[5, 4, 3, 2, 1]", wire.OpLToList, "l")

	// lmove from a list to itself: left->right rotates by -1, right->left by 1,
	// left->left and right->right give the same list back.
	expectCall(t, c, "5", wire.OpLMove, "l", "l", "left", "right")
	expectCall(t, c, "[4, 3, 2, 1, 5]", wire.OpLToList, "l")
	expectCall(t, c, "5", wire.OpLMove, "l", "l", "right", "left")
	expectCall(t, c, "[5, 4, 3, 2, 1]", wire.OpLToList, "l")
	expectCall(t, c, "5", wire.OpLMove, "l", "l", "left", "left")
	expectCall(t, c, "1", wire.OpLMove, "l", "l", "right", "right")
	expectCall(t, c, "[5, 4, 3, 2, 1]", wire.OpLToList, "l")
	expectCall(t, c, "bad_request", wire.OpLMove, "l", "l", "LEFT", "right")
	expectCall(t, c, "bad_request", wire.OpLMove, "l", "l", "left", nil)

	// Empty: rotate stays empty, popleft and lmove are IndexError, also to itself.
	c.MustCall(t, nil, wire.OpCreateList, "e")
	expectCall(t, c, "null", wire.OpLRotate, "e", 7)
	expectCall(t, c, "null", wire.OpLRotate, "e", int64(math.MinInt64))
	expectCall(t, c, "[]", wire.OpLToList, "e")
	expectCall(t, c, "index_out_of_range", wire.OpLPopLeft, "e")
	expectCall(t, c, "index_out_of_range", wire.OpLMove, "e", "e", "left", "right")
	expectCall(t, c, "index_out_of_range", wire.OpLMove, "e", "l", "left", "right")
	expectCall(t, c, "[5, 4, 3, 2, 1]", wire.OpLToList, "l")
	// One element to itself.
	expectCall(t, c, "1", wire.OpLAppend, "e", "x")
	expectCall(t, c, `"x"`, wire.OpLMove, "e", "e", "left", "right")
	expectCall(t, c, `["x"]`, wire.OpLToList, "e")

	// Deque ops on a dict are wrong_kind; on nothing, no_such_table.
	c.MustCall(t, nil, wire.OpCreateDict, "d")
	expectCall(t, c, "wrong_kind", wire.OpLAppendLeft, "d", 1)
	expectCall(t, c, "wrong_kind", wire.OpLMove, "l", "d", "left", "right")
	expectCall(t, c, "[5, 4, 3, 2, 1]", wire.OpLToList, "l")
	expectCall(t, c, "no_such_table", wire.OpLMove, "l", "nope", "left", "right")
	expectCall(t, c, "no_such_table", wire.OpLRotate, "nope")
	// lmove is allowed in a batch and rolls back with it.
	expectCall(t, c, "guard_failed", wire.OpBatch, []any{
		[]any{wire.OpLMove, "l", "e", "left", "right"},
		[]any{wire.OpGuard, "l", "len", 5},
	})
	expectCall(t, c, "[5, 4, 3, 2, 1]", wire.OpLToList, "l")
	expectCall(t, c, `["x"]`, wire.OpLToList, "e")
}

// TestOutsideBlockingTimeouts: what PROTOCOL.md 6.6 says of the time-out:
// 0 answers at once, negative is bad_request, 2^40 and more wait for ever,
// anything not an integer is a wrong type.
func TestOutsideBlockingTimeouts(t *testing.T) {
	d := daemontest.Start(t)
	admin := daemontest.DialHello(t, d.Socket)
	admin.MustCall(t, nil, wire.OpCreateList, "q")
	p := dialPush(t, d.Socket)

	p.sendID(1, wire.OpLBPop, []string{"q"}, "left", 0)
	p.expect("1 null")
	p.sendID(2, wire.OpLBPop, []string{"q"}, "left", -1)
	p.expect("2 bad_request")
	p.sendID(3, wire.OpLBPop, []string{"q"}, "left", int64(math.MinInt64))
	p.expect("3 bad_request")
	p.sendID(4, wire.OpLBPop, []string{"q"}, "left", 1.5)
	p.expect("4 bad_request")
	p.sendID(5, wire.OpLBPop, []string{"q"}, "left", wire.Raw{0xf7})
	p.expect("5 bad_request")
	p.sendID(6, wire.OpLBPop, []string{"q"}, "left", "10")
	p.expect("6 bad_request")
	p.sendID(7, wire.OpLBPop, []string{"q"}, "left", true)
	p.expect("7 bad_request")
	p.sendID(8, wire.OpLBMove, "q", "q", "left", "right", -5)
	p.expect("8 bad_request")
	p.sendID(9, wire.OpLBPop, []string{}, "left", 0)
	p.expect("9 bad_request")
	p.sendID(10, wire.OpLBPop, []string{"q"}, "middle", 0)
	p.expect("10 bad_request")
	p.sendID(11, wire.OpLBPop, "q", "left", 0)
	p.expect("11 bad_request")
	p.sendID(12, wire.OpLBPop, []string{"q", "nope"}, "left", 0)
	p.expect("12 no_such_table")

	// Huge time-outs wait: none of them is answered before the ping after
	// them, nor within 200ms; cancel ends each.
	huge := []any{int64(1) << 40, int64(math.MaxInt64), uint64(math.MaxUint64),
		wire.Raw{0xc2, 0x49, 1, 0, 0, 0, 0, 0, 0, 0, 0}, nil} // 2^64 as a bignum
	for i, to := range huge {
		p.sendID(uint64(100+i), wire.OpLBPop, []string{"q"}, "left", to)
	}
	p.sendID(99, wire.OpLBPop, []string{"q"}, "left") // left out
	p.sendID(200, wire.OpPing)
	p.expect("200 \"PONG\"")
	time.Sleep(200 * time.Millisecond)
	p.sendID(201, wire.OpPing)
	p.expect("201 \"PONG\"")
	for _, id := range []uint64{99, 100, 101, 102, 103, 104} {
		p.sendID(1000+id, wire.OpCancel, id)
		p.expect(fmt.Sprintf("%d null", id), fmt.Sprintf("%d true", 1000+id))
	}
	expectCall(t, admin, "[]", wire.OpLToList, "q")

	// A short time-out ends with null; the list is still empty afterwards.
	p.sendID(300, wire.OpLBMove, "q", "q", "left", "right", 30)
	p.expect("300 null")
}

// TestOutsidePushIDs: id 0 is refused and not executed; a blocking
// request reusing a parked id is refused and does not disturb the first;
// cancel of an unknown id, of a non-blocking request, answers false.
func TestOutsidePushIDs(t *testing.T) {
	d := daemontest.Start(t)
	admin := daemontest.DialHello(t, d.Socket)
	admin.MustCall(t, nil, wire.OpCreateList, "q")
	p := dialPush(t, d.Socket)

	// id 0 is not executed, blocking or not.
	p.sendID(0, wire.OpLAppend, "q", "zero")
	p.expect("0 bad_request")
	p.sendID(0, wire.OpLBPop, []string{"q"}, "left", nil)
	p.expect("0 bad_request")
	expectCall(t, admin, "[]", wire.OpLToList, "q")

	p.sendID(5, wire.OpLBPop, []string{"q"}, "left", nil)
	p.sendID(5, wire.OpLBMove, "q", "q", "left", "right", nil) // same id: refused
	p.expect("5 bad_request")
	// An ordinary request may reuse the id (the server enforces uniqueness
	// only for blocking ones); its reply comes in order.
	p.sendID(5, wire.OpPing, "same id")
	p.expect(`5 "same id"`)
	// The first waiter is still there and gets the value, once.
	admin.MustCall(t, nil, wire.OpLAppend, "q", "v")
	p.expect(`5 ["q", "v"]`)
	p.sendID(6, wire.OpCancel, 5)
	p.expect("6 false")
	p.sendID(7, wire.OpCancel, 12345)
	p.expect("7 false")
	p.sendID(8, wire.OpCancel, 0)
	p.expect("8 false")
	p.sendID(9, wire.OpCancel, "x")
	p.expect("9 bad_request")
	// Now the id is free again.
	p.sendID(5, wire.OpLBPop, []string{"q"}, "left", nil)
	p.sendID(10, wire.OpCancel, 5)
	p.expect("5 null", "10 true")
	expectCall(t, admin, "[]", wire.OpLToList, "q")

	// A cancel on another connection does not reach this one's waiter.
	p.sendID(11, wire.OpLBPop, []string{"q"}, "left", nil)
	other := dialPush(t, d.Socket)
	other.sendID(1, wire.OpCancel, 11)
	other.expect("1 false")
	admin.MustCall(t, nil, wire.OpLAppend, "q", "w")
	p.expect(`11 ["q", "w"]`)

	// Without push, cancel finds nothing.
	np := daemontest.DialHello(t, d.Socket)
	expectCall(t, np, "false", wire.OpCancel, 1)
}

// TestOutsideCancelRacesDelivery: a cancel sent while a value arrives
// either wins (true, the waiter's null first, the value stays in the list)
// or loses (false, and the value is delivered to the waiter): never both,
// never neither.
func TestOutsideCancelRacesDelivery(t *testing.T) {
	d := daemontest.Start(t)
	admin := daemontest.DialHello(t, d.Socket)
	admin.MustCall(t, nil, wire.OpCreateList, "q")
	admin.MustCall(t, nil, wire.OpCreateList, "dst")
	p := dialPush(t, d.Socket)
	rounds := 300
	won, lost := 0, 0
	for i := 0; i < rounds; i++ {
		id := uint64(2*i + 1)
		val := "v" + strconv.Itoa(i)
		move := i%2 == 1
		if move {
			p.sendID(id, wire.OpLBMove, "q", "dst", "left", "right", nil)
		} else {
			p.sendID(id, wire.OpLBPop, []string{"q"}, "left", nil)
		}
		// Make sure it is parked before the race.
		p.sendID(id+1000000, wire.OpPing)
		p.expect(fmt.Sprintf("%d \"PONG\"", id+1000000))
		// The push and the cancel leave at nearly the same moment, on two
		// connections: either may win.
		if _, err := admin.Send(wire.OpLAppend, "q", val); err != nil {
			t.Fatal(err)
		}
		for spin := time.Now(); time.Since(spin) < time.Duration(i%8)*40*time.Microsecond; {
		}
		p.sendID(id+1, wire.OpCancel, id)
		var gotVal, gotNull bool
		var cancelRes string
		for cancelRes == "" || !(gotVal || gotNull) {
			r, err := p.Read()
			if err != nil {
				t.Fatal(err)
			}
			s := renderReply(r)
			switch s {
			case fmt.Sprintf("%d [\"q\", \"%s\"]", id, val):
				gotVal = true
			case fmt.Sprintf("%d null", id):
				if cancelRes != "" {
					t.Fatalf("round %d: the cancelled request's null came after the cancel's reply", i)
				}
				gotNull = true
			case fmt.Sprintf("%d true", id+1), fmt.Sprintf("%d false", id+1):
				cancelRes = s[strings.IndexByte(s, ' ')+1:]
			default:
				t.Fatalf("round %d: unexpected reply %s", i, s)
			}
			if cancelRes == "false" && gotNull {
				t.Fatalf("round %d: cancel false but the waiter got null", i)
			}
		}
		if r, err := admin.Read(); err != nil || r.Err != nil {
			t.Fatalf("round %d: lappend: %v %v", i, err, r.Err)
		}
		var left, moved []string
		admin.MustCall(t, &left, wire.OpLToList, "q")
		admin.MustCall(t, &moved, wire.OpLToList, "dst")
		switch {
		case cancelRes == "true" && gotNull && !gotVal:
			won++
			if len(left) != 1 || left[0] != val || len(moved) != 0 {
				t.Fatalf("round %d: cancel won but the list holds %v, dst %v", i, left, moved)
			}
			admin.MustCall(t, nil, wire.OpLClear, "q")
		case cancelRes == "false" && gotVal && !gotNull:
			lost++
			if len(left) != 0 || (move && (len(moved) != 1 || moved[0] != val)) || (!move && len(moved) != 0) {
				t.Fatalf("round %d: value delivered; list %v, dst %v", i, left, moved)
			}
			admin.MustCall(t, nil, wire.OpLClear, "dst")
		default:
			t.Fatalf("round %d: cancel %s, null %v, value %v", i, cancelRes, gotNull, gotVal)
		}
	}
	t.Logf("%d rounds: cancel won %d, delivery won %d", rounds, won, lost)
}

// TestOutsideWaitOnChangingTable: a parked request waits on the name
// (PROTOCOL.md 6.6): the list dropped and created again serves it; the
// list dropped and recreated as a dict, or expired, does not crash or
// deliver anything odd; cancel and time-out still end it.
func TestOutsideWaitOnChangingTable(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, ioModel string) {
		d := daemontest.Start(t, ioModel)
		admin := daemontest.DialHello(t, d.Socket)
		admin.MustCall(t, nil, wire.OpCreateList, "q")
		p := dialPush(t, d.Socket)
		park := func(id uint64, args ...any) {
			p.sendID(id, wire.OpLBPop, args...)
			p.sendID(id+10000, wire.OpPing)
			p.expect(fmt.Sprintf("%d \"PONG\"", id+10000))
		}

		// Dropped and created again.
		park(1, []string{"q"}, "left", nil)
		admin.MustCall(t, nil, wire.OpDrop, "q")
		admin.MustCall(t, nil, wire.OpCreateList, "q", []string{"born"})
		p.expect(`1 ["q", "born"]`)

		// Created again inside a batch with a value: served.
		park(2, []string{"q"}, "right", nil)
		admin.MustCall(t, nil, wire.OpBatch, []any{
			[]any{wire.OpDrop, "q"},
			[]any{wire.OpCreateList, "q", []string{"a", "b"}},
		})
		p.expect(`2 ["q", "b"]`)
		expectCall(t, admin, `["a"]`, wire.OpLToList, "q")
		admin.MustCall(t, nil, wire.OpLClear, "q")

		// Recreated as a dict: the waiter keeps waiting, dict writes do
		// not wake it; a list of that name again does.
		park(3, []string{"q"}, "left", nil)
		admin.MustCall(t, nil, wire.OpDrop, "q")
		admin.MustCall(t, nil, wire.OpCreateDict, "q", map[string]int{"k": 1})
		admin.MustCall(t, nil, wire.OpDSet, "q", "k2", 2)
		p.sendID(10, wire.OpPing)
		p.expect(`10 "PONG"`)
		admin.MustCall(t, nil, wire.OpDrop, "q")
		admin.MustCall(t, nil, wire.OpCreateList, "q")
		admin.MustCall(t, nil, wire.OpLAppend, "q", "after-dict")
		p.expect(`3 ["q", "after-dict"]`)

		// The list expires while waited on; a new one serves the waiter.
		park(4, []string{"q"}, "left", nil)
		admin.MustCall(t, nil, wire.OpExpire, "q", map[string]any{"ttl": 30})
		time.Sleep(80 * time.Millisecond)
		expectCall(t, admin, "false", wire.OpExists, "q")
		admin.MustCall(t, nil, wire.OpCreateList, "q", []string{"reborn"})
		p.expect(`4 ["q", "reborn"]`)

		// An expired list with values does not deliver them: a list with a
		// deadline in the past is gone, even if the sweeper has not run.
		admin.MustCall(t, nil, wire.OpLClear, "q")
		park(5, []string{"q"}, "left", 300)
		admin.MustCall(t, nil, wire.OpBatch, []any{
			[]any{wire.OpExpire, "q", map[string]any{"ttl": 0}},
		})
		p.expect("5 null")
		expectCall(t, admin, "false", wire.OpExists, "q")

		// lbmove whose destination is dropped while it waits, then its
		// source gets a value: the move cannot happen; the value must not
		// be lost.
		admin.MustCall(t, nil, wire.OpCreateList, "src")
		admin.MustCall(t, nil, wire.OpCreateList, "dst")
		p.sendID(6, wire.OpLBMove, "src", "dst", "left", "right", nil)
		p.sendID(10006, wire.OpPing)
		p.expect(`10006 "PONG"`)
		admin.MustCall(t, nil, wire.OpDrop, "dst")
		admin.MustCall(t, nil, wire.OpLAppend, "src", "precious")
		time.Sleep(50 * time.Millisecond)
		p.sendID(11, wire.OpCancel, 6)
		r1 := p.next()
		r2 := p.next()
		var srcNow []string
		admin.MustCall(t, &srcNow, wire.OpLToList, "src")
		t.Logf("lbmove with its dst dropped: %s / %s, src now %v", r1, r2, srcNow)
		if r1 == "6 null" && r2 == "11 true" {
			if len(srcNow) != 1 {
				t.Fatalf("cancelled lbmove, but src is %v: the value is lost", srcNow)
			}
		} else if len(srcNow) != 0 || !strings.HasPrefix(r1, "6 ") {
			t.Fatalf("lbmove answered %s / %s, src %v", r1, r2, srcNow)
		}
		if strings.HasPrefix(r1, "6 [") {
			t.Fatalf("lbmove answered a value %s although its dst was gone", r1)
		}
	})
}

// TestOutsideRolledBackPushWakesNobody: a batch that appends to a list
// with a waiter and then fails applies nothing, so the waiter must not
// get a value; a batch that appends and pops in one step leaves nothing
// to deliver either.
func TestOutsideRolledBackPushWakesNobody(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, ioModel string) {
		d := daemontest.Start(t, ioModel)
		admin := daemontest.DialHello(t, d.Socket)
		admin.MustCall(t, nil, wire.OpCreateList, "q")
		admin.MustCall(t, nil, wire.OpCreateList, "other", []string{"o1"})
		p := dialPush(t, d.Socket)
		p.sendID(1, wire.OpLBPop, []string{"q"}, "left", nil)
		p.sendID(2, wire.OpPing)
		p.expect(`2 "PONG"`)

		expectCall(t, admin, "guard_failed", wire.OpBatch, []any{
			[]any{wire.OpLAppend, "q", "ghost1"},
			[]any{wire.OpLMove, "other", "q", "left", "right"},
			[]any{wire.OpGuard, "q", "len", 0},
		})
		expectCall(t, admin, "no_such_table", wire.OpBatch, []any{
			[]any{wire.OpLAppendLeft, "q", "ghost2"},
			[]any{wire.OpLAppend, "nope", 1},
		})
		expectCall(t, admin, "index_out_of_range", wire.OpBatch, []any{
			[]any{wire.OpLExtend, "q", []string{"ghost3"}},
			[]any{wire.OpLPop, "other", 5},
		})
		expectCall(t, admin, `[1, "ghost4"]`, wire.OpBatch, []any{
			[]any{wire.OpLAppend, "q", "ghost4"},
			[]any{wire.OpLPop, "q"},
		})
		expectCall(t, admin, `[null, null, null]`, wire.OpBatch, []any{
			[]any{wire.OpDrop, "q"},
			[]any{wire.OpCreateList, "q", []string{"r"}},
			[]any{wire.OpLClear, "q"},
		})
		// Still waiting: the cancel finds it.
		time.Sleep(50 * time.Millisecond)
		p.sendID(3, wire.OpCancel, 1)
		p.expect("1 null", "3 true")
		expectCall(t, admin, "[]", wire.OpLToList, "q")
		expectCall(t, admin, `["o1"]`, wire.OpLToList, "other")

		// A batch that pushes two values wakes the waiter with the first
		// (left end), and the second stays.
		p.sendID(4, wire.OpLBPop, []string{"q"}, "left", nil)
		p.sendID(5, wire.OpPing)
		p.expect(`5 "PONG"`)
		admin.MustCall(t, nil, wire.OpBatch, []any{
			[]any{wire.OpLAppend, "q", "b1"},
			[]any{wire.OpLAppend, "q", "b2"},
		})
		p.expect(`4 ["q", "b1"]`)
		expectCall(t, admin, `["b2"]`, wire.OpLToList, "q")
	})
}

// TestOutsideFairness: waiters of one list are served first come, first
// served, and a new blocking request queues behind them even when a
// value is there.
func TestOutsideFairness(t *testing.T) {
	d := daemontest.Start(t)
	admin := daemontest.DialHello(t, d.Socket)
	admin.MustCall(t, nil, wire.OpCreateList, "q")
	const n = 20
	conns := make([]pushConn, n)
	for i := range conns {
		conns[i] = dialPush(t, d.Socket)
		conns[i].sendID(1, wire.OpLBPop, []string{"q"}, "left", nil)
		conns[i].sendID(2, wire.OpPing)
		conns[i].expect(`2 "PONG"`)
	}
	for i := 0; i < n; i++ {
		admin.MustCall(t, nil, wire.OpLAppend, "q", i)
	}
	for i := range conns {
		conns[i].expect(fmt.Sprintf(`1 ["q", %d]`, i))
	}
	// Mixed lists: a waiter on [a, b] served by whichever gets a value.
	admin.MustCall(t, nil, wire.OpCreateList, "a")
	admin.MustCall(t, nil, wire.OpCreateList, "b")
	conns[0].sendID(3, wire.OpLBPop, []string{"a", "b"}, "right", nil)
	conns[1].sendID(3, wire.OpLBPop, []string{"b"}, "right", nil)
	conns[0].sendID(4, wire.OpPing)
	conns[0].expect(`4 "PONG"`)
	conns[1].sendID(4, wire.OpPing)
	conns[1].expect(`4 "PONG"`)
	admin.MustCall(t, nil, wire.OpLAppend, "b", "x", "y")
	conns[0].expect(`3 ["b", "y"]`)
	conns[1].expect(`3 ["b", "x"]`)
	expectCall(t, admin, "0", wire.OpLLen, "b")
}

// stormValue names value i of producer g.
func stormValue(g, i int) string { return fmt.Sprintf("p%d-%d", g, i) }

// TestOutsideStorm: many blocked pops on push connections, half of whose
// connections close while producers push; every value pushed is then
// either delivered to exactly one live waiter or still in the list.
func TestOutsideStorm(t *testing.T) {
	// Half of the connections close before the pushes, once the daemon
	// has noticed: their waiters are skipped.
	t.Run("closed", func(t *testing.T) { testStorm(t, false) })
	// Half of the connections stop reading while values are pushed: a
	// reply that cannot be written gives its value back.
	t.Run("racing", func(t *testing.T) {
		testStorm(t, true)
	})
}

func testStorm(t *testing.T, racing bool) {
	waiters, producers, per := 400, 4, 120
	if os.Getenv("CYBERDB_SOAK") != "" {
		waiters, producers, per = 2000, 8, 1000
	}
	d := daemontest.Start(t)
	admin := daemontest.DialHello(t, d.Socket)
	admin.MustCall(t, nil, wire.OpCreateList, "q")

	const perConn = 10
	nconn := waiters / perConn
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	conns := make([]pushConn, nconn)
	for i := range conns {
		conns[i] = dialPush(t, d.Socket)
		for j := 0; j < perConn; j++ {
			conns[i].sendID(uint64(j+1), wire.OpLBPop, []string{"q"}, "left", nil)
		}
		conns[i].sendID(1000, wire.OpPing)
		conns[i].expect(`1000 "PONG"`)
	}
	if !racing {
		for k := 1; k < nconn; k += 2 {
			conns[k].Close()
		}
		waitBlocked(t, admin, uint64(waiters/2))
	}
	// Readers: every delivered value is counted; on a connection that
	// stopped reading, what arrived before still counts (it was delivered).
	for i := range conns {
		wg.Add(1)
		go func(c pushConn) {
			defer wg.Done()
			for {
				r, err := c.Read()
				if err != nil {
					return
				}
				if r.Err != nil {
					t.Errorf("storm reply error: %v", r.Err)
					return
				}
				var pair []string
				if err := wire.Unmarshal(r.Result, &pair); err != nil {
					continue // a null: cancelled
				}
				mu.Lock()
				got[pair[1]]++
				mu.Unlock()
			}
		}(conns[i])
	}
	prods := make([]*daemontest.Conn, producers)
	for g := range prods {
		prods[g] = daemontest.DialHello(t, d.Socket)
	}
	var pwg sync.WaitGroup
	for g := range producers {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for i := range per {
				if _, err := prods[g].Call(wire.OpLAppend, "q", stormValue(g, i)); err != nil {
					t.Errorf("push: %v", err)
					return
				}
			}
		}()
	}
	// Meanwhile half of the waiters' connections go away. Shutting the
	// reading side (rather than closing) lets the reader still count what
	// the server wrote before: a later write fails, and its value must go
	// back to the list, or to another waiter.
	for k := 1; racing && k < nconn; k += 2 {
		time.Sleep(time.Millisecond)
		_ = conns[k].NetConn().(*net.UnixConn).CloseRead()
	}
	pwg.Wait()
	// Close every connection; the readers end.
	time.Sleep(200 * time.Millisecond)
	for i := range conns {
		conns[i].Close()
	}
	wg.Wait()
	var left []string
	admin.MustCall(t, &left, wire.OpLToList, "q")
	for _, v := range left {
		got[v]++
	}
	var bad []string
	for g := 0; g < producers; g++ {
		for i := 0; i < per; i++ {
			v := stormValue(g, i)
			if got[v] != 1 {
				bad = append(bad, fmt.Sprintf("%s:%d", v, got[v]))
			}
			delete(got, v)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d values not seen exactly once (delivered + left in the list), value:times: %v", len(bad), bad)
	}
	if len(got) != 0 {
		t.Errorf("values never pushed: %v", got)
	}
	t.Logf("%d values, %d left in the list", producers*per, len(left))
	waitBlocked(t, admin, 0)
}

// waitBlocked waits until info's blocked_requests is n.
func waitBlocked(t *testing.T, admin *daemontest.Conn, n uint64) {
	t.Helper()
	var info map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; {
		admin.MustCall(t, &info, wire.OpInfo)
		if info["blocked_requests"] == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("info blocked_requests %v, want %d", info["blocked_requests"], n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOutsideStormKill: with --fsync always, waiters pop and producers
// push while the daemon is SIGKILLed. After the restart, what was
// acknowledged holds: no value whose pop reply arrived is in the list, no
// value is in the list twice or was never pushed, and of the values whose
// push was acknowledged only as many are missing as there were pops whose
// reply was lost with the daemon.
func TestOutsideStormKill(t *testing.T) {
	rounds := 2
	if os.Getenv("CYBERDB_SOAK") != "" {
		rounds = 10
	}
	for round := 0; round < rounds; round++ {
		d := daemontest.Start(t, "--fsync=always")
		admin := daemontest.DialHello(t, d.Socket)
		admin.MustCall(t, nil, wire.OpCreateList, "q")
		var mu sync.Mutex
		pushed := map[string]bool{} // acknowledged
		popped := map[string]bool{} // acknowledged
		inflight := 0               // pops sent without a reply
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := daemontest.DialHello(t, d.Socket)
				for {
					mu.Lock()
					inflight++
					mu.Unlock()
					res, err := c.Call(wire.OpLBPop, []string{"q"}, "left", 5000)
					mu.Lock()
					if err == nil {
						inflight--
						var pair []string
						if wire.Unmarshal(res, &pair) == nil {
							if popped[pair[1]] {
								t.Errorf("value %s popped twice", pair[1])
							}
							popped[pair[1]] = true
						}
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
		for p := 0; p < 4; p++ {
			wg.Add(1)
			go func(p int) {
				defer wg.Done()
				c := daemontest.DialHello(t, d.Socket)
				for i := 0; ; i++ {
					v := stormValue(p, i)
					if _, err := c.Call(wire.OpLAppend, "q", v); err != nil {
						return
					}
					mu.Lock()
					pushed[v] = true
					mu.Unlock()
				}
			}(p)
		}
		time.Sleep(time.Duration(200+100*round) * time.Millisecond)
		d.Kill(t)
		wg.Wait()
		d.Restart(t)
		admin = daemontest.DialHello(t, d.Socket)
		var left []string
		admin.MustCall(t, &left, wire.OpLToList, "q")
		seen := map[string]bool{}
		for _, v := range left {
			if seen[v] {
				t.Errorf("round %d: value %s twice in the list after restart", round, v)
			}
			seen[v] = true
			if popped[v] {
				t.Errorf("round %d: value %s was popped (reply received) and is back in the list", round, v)
			}
			if !strings.HasPrefix(v, "p") {
				t.Errorf("round %d: value %q never pushed", round, v)
			}
		}
		missing := []string{}
		for v := range pushed {
			if !seen[v] && !popped[v] {
				missing = append(missing, v)
			}
		}
		sort.Strings(missing)
		if len(missing) > inflight {
			t.Errorf("round %d: %d acknowledged pushes are neither popped nor in the list, more than the %d pops in flight: %v",
				round, len(missing), inflight, missing)
		}
		t.Logf("round %d: pushed %d, popped %d, left %d, missing %d (pops in flight %d)",
			round, len(pushed), len(popped), len(left), len(missing), inflight)
		d.Stop(t)
	}
}

// TestOutsideDeadReaderGivesBack: a waiter whose client can no longer read
// (shutdown of its reading side: the server's write fails) must not eat
// the value: it goes to the next waiter, or stays in the list.
func TestOutsideDeadReaderGivesBack(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, ioModel string) {
		d := daemontest.Start(t, ioModel)
		admin := daemontest.DialHello(t, d.Socket)
		admin.MustCall(t, nil, wire.OpCreateList, "q")
		for round, end := range []string{"left", "right"} {
			dead := dialPush(t, d.Socket)
			dead.sendID(1, wire.OpLBPop, []string{"q"}, end, nil)
			dead.sendID(2, wire.OpPing)
			dead.expect(`2 "PONG"`)
			next := dialPush(t, d.Socket)
			next.sendID(1, wire.OpLBPop, []string{"q"}, end, nil)
			next.sendID(2, wire.OpPing)
			next.expect(`2 "PONG"`)
			_ = dead.NetConn().(*net.UnixConn).CloseRead()
			admin.MustCall(t, nil, wire.OpLAppend, "q", "a", "b", "c")
			// The value taken for the dead waiter goes back to its end
			// (PROTOCOL.md 6.6), possibly after the next waiter was
			// served: next gets one of the three, the list keeps the two
			// others.
			r, err := next.Read()
			if err != nil || r.Err != nil || r.ID != 1 {
				t.Fatalf("round %d: next waiter: %v %v", round, err, r.Err)
			}
			var pair []string
			daemontest.Must(t, wire.Unmarshal(r.Result, &pair))
			var left []string
			for deadline := time.Now().Add(3 * time.Second); ; {
				admin.MustCall(t, &left, wire.OpLToList, "q")
				if len(left) >= 2 || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			all := append(left, pair[1])
			sort.Strings(all)
			if strings.Join(all, ",") != "a,b,c" {
				t.Fatalf("round %d: delivered %q, list %v: a value was lost or doubled", round, pair[1], left)
			}
			t.Logf("round %d (%s): next got %s, list %v", round, end, pair[1], left)
			admin.MustCall(t, nil, wire.OpLClear, "q")
		}
	})
}

// TestOutsideStuckMoveBlocksNobody: an lbmove whose destination was
// dropped (or became a dict) cannot be served, but the value stays in the
// list; the waiters behind it on the same list must still be served
// ("each value goes to exactly one of them": a value must not sit in a
// list while a waiter that can take it waits).
func TestOutsideStuckMoveBlocksNobody(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, ioModel string) {
		d := daemontest.Start(t, ioModel)
		admin := daemontest.DialHello(t, d.Socket)
		admin.MustCall(t, nil, wire.OpCreateList, "src")
		admin.MustCall(t, nil, wire.OpCreateList, "dst")
		mover := dialPush(t, d.Socket)
		mover.sendID(1, wire.OpLBMove, "src", "dst", "left", "right", nil)
		mover.sendID(2, wire.OpPing)
		mover.expect(`2 "PONG"`)
		popper := dialPush(t, d.Socket)
		popper.sendID(1, wire.OpLBPop, []string{"src"}, "left", 10000)
		popper.sendID(2, wire.OpPing)
		popper.expect(`2 "PONG"`)
		admin.MustCall(t, nil, wire.OpDrop, "dst")
		admin.MustCall(t, nil, wire.OpCreateDict, "dst")
		admin.MustCall(t, nil, wire.OpLAppend, "src", "v")
		popper.expect(`1 ["src", "v"]`)
		// A new blocking pop arriving later is served too.
		admin.MustCall(t, nil, wire.OpLAppend, "src", "w")
		popper.sendID(3, wire.OpLBPop, []string{"src"}, "left", 10000)
		popper.expect(`3 ["src", "w"]`)
		// The mover still waits; with a list dst again, it is served.
		admin.MustCall(t, nil, wire.OpDrop, "dst")
		admin.MustCall(t, nil, wire.OpCreateList, "dst")
		admin.MustCall(t, nil, wire.OpLAppend, "src", "x")
		mover.expect(`1 ["src", "x"]`)
		expectCall(t, admin, `["x"]`, wire.OpLToList, "dst")
		expectCall(t, admin, `[]`, wire.OpLToList, "src")
	})
}

// TestOutsideParkedEdges: a list named twice in one lbpop, the 1024-list
// bound, blocking ops and cancel refused in a batch, a half-closed push
// connection still answered, and lbmove from a list to itself while
// another waits on it.
func TestOutsideParkedEdges(t *testing.T) {
	d := daemontest.Start(t)
	admin := daemontest.DialHello(t, d.Socket)
	admin.MustCall(t, nil, wire.OpCreateList, "q")
	p := dialPush(t, d.Socket)

	// Named twice: one value, and nothing left behind.
	p.sendID(1, wire.OpLBPop, []string{"q", "q"}, "left", nil)
	p.sendID(2, wire.OpLBPop, []string{"q"}, "left", nil)
	p.sendID(3, wire.OpPing)
	p.expect(`3 "PONG"`)
	admin.MustCall(t, nil, wire.OpLAppend, "q", "a", "b", "c")
	p.expect(`1 ["q", "a"]`, `2 ["q", "b"]`)
	expectCall(t, admin, `["c"]`, wire.OpLToList, "q")
	admin.MustCall(t, nil, wire.OpLClear, "q")
	p.sendID(4, wire.OpLBPop, []string{"q", "q", "q"}, "right", nil)
	p.sendID(5, wire.OpCancel, 4)
	p.expect("4 null", "5 true")
	waitBlocked(t, admin, 0)

	names := make([]string, 1025)
	for i := range names {
		names[i] = "q"
	}
	p.sendID(6, wire.OpLBPop, names, "left", 0)
	p.expect("6 bad_request")
	p.sendID(7, wire.OpLBPop, names[:1024], "left", 0)
	p.expect("7 null")

	for _, item := range [][]any{
		{wire.OpLBPop, []string{"q"}, "left", 0},
		{wire.OpLBMove, "q", "q", "left", "right", 0},
		{wire.OpCancel, 1},
	} {
		expectCall(t, admin, "bad_request", wire.OpBatch, []any{item})
	}

	// lbmove q -> q and an lbpop behind it: the value goes round once,
	// then to the lbpop.
	p.sendID(8, wire.OpLBMove, "q", "q", "left", "right", nil)
	p.sendID(9, wire.OpLBPop, []string{"q"}, "left", nil)
	p.sendID(10, wire.OpPing)
	p.expect(`10 "PONG"`)
	admin.MustCall(t, nil, wire.OpLAppend, "q", "v")
	p.expect(`8 ["q", "v"]`, `9 ["q", "v"]`)
	expectCall(t, admin, `[]`, wire.OpLToList, "q")

	waitBlocked(t, admin, 0)
}

// TestOutsideHalfCloseWithParked: after a half-close the server still
// answers every request it read, parked ones included, then closes
// (PROTOCOL.md 3.1, 4.).
func TestOutsideHalfCloseWithParked(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, ioModel string) {
		d := daemontest.Start(t, ioModel)
		admin := daemontest.DialHello(t, d.Socket)
		admin.MustCall(t, nil, wire.OpCreateList, "q")
		// Half-close: the parked request is still answered, with a value
		// that arrives later, then the connection closes.
		h := dialPush(t, d.Socket)
		h.sendID(1, wire.OpLBPop, []string{"q"}, "left", nil)
		h.sendID(2, wire.OpLBPop, []string{"q"}, "left", 100)
		h.sendID(3, wire.OpPing)
		h.expect(`3 "PONG"`)
		daemontest.Must(t, h.NetConn().(*net.UnixConn).CloseWrite())
		time.Sleep(50 * time.Millisecond)
		admin.MustCall(t, nil, wire.OpLAppend, "q", "late")
		r, err := h.Read()
		if err != nil {
			// Closed without answering: then nothing may have been taken.
			waitBlocked(t, admin, 0)
			t.Fatalf("after a half-close the server closed without answering the parked requests (%v); list q is now %s",
				err, call(t, admin, wire.OpLToList, "q"))
		}
		if got := renderReply(r); got != `1 ["q", "late"]` {
			t.Fatalf("got %s", got)
		}
		h.expect(`2 null`)
		if r, err := h.Read(); err == nil {
			t.Fatalf("after a half-close and every reply: %s, want the close", renderReply(r))
		} else if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("after a half-close and every reply (the parked ones included), the server did not close the connection: %v", err)
		}
		waitBlocked(t, admin, 0)
		// Without parked requests the close comes at once.
		h2 := dialPush(t, d.Socket)
		h2.sendID(1, wire.OpPing)
		daemontest.Must(t, h2.NetConn().(*net.UnixConn).CloseWrite())
		h2.expect(`1 "PONG"`)
		if _, err := h2.Read(); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("after a half-close with nothing parked: %v", err)
		}
	})
}

// TestHalfCloseThenGoneCancelsParked: a client that half-closed with a
// parked request and then closes altogether is not waited for: its
// parked request is cancelled, and a value pushed later stays in the list.
func TestHalfCloseThenGoneCancelsParked(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, ioModel string) {
		d := daemontest.Start(t, ioModel)
		admin := daemontest.DialHello(t, d.Socket)
		admin.MustCall(t, nil, wire.OpCreateList, "q")
		h := dialPush(t, d.Socket)
		h.sendID(1, wire.OpLBPop, []string{"q"}, "left", nil)
		h.sendID(2, wire.OpPing)
		h.expect(`2 "PONG"`)
		waitBlocked(t, admin, 1)
		daemontest.Must(t, h.NetConn().(*net.UnixConn).CloseWrite())
		time.Sleep(50 * time.Millisecond)
		waitBlocked(t, admin, 1) // half-closed: still waiting
		daemontest.Must(t, h.NetConn().Close())
		waitBlocked(t, admin, 0) // gone: cancelled
		admin.MustCall(t, nil, wire.OpLAppend, "q", "v")
		expectCall(t, admin, `["v"]`, wire.OpLToList, "q")
	})
}

// TestOutsideShutdownCancelsParked: on SIGTERM a parked request gets no
// reply, the shutting_down frame says it was not executed, and the list
// keeps its values after the restart.
func TestOutsideShutdownCancelsParked(t *testing.T) {
	d := daemontest.Start(t, "--fsync=always")
	admin := daemontest.DialHello(t, d.Socket)
	admin.MustCall(t, nil, wire.OpCreateList, "q")
	admin.MustCall(t, nil, wire.OpCreateList, "other", []string{"x"})
	p := dialPush(t, d.Socket)
	p.sendID(1, wire.OpLBPop, []string{"q"}, "left", nil)
	p.sendID(2, wire.OpLBMove, "q", "other", "left", "right", nil)
	p.sendID(3, wire.OpPing)
	p.expect(`3 "PONG"`)
	daemontest.Must(t, d.Signal(os.Interrupt))
	p.expect("0 shutting_down")
	if r, err := p.Read(); err == nil {
		t.Fatalf("after shutting_down: %s", renderReply(r))
	}
	if exited, err := d.Wait(10 * time.Second); !exited || err != nil {
		t.Fatalf("daemon did not stop cleanly: %v %v", exited, err)
	}
	d.Restart(t)
	admin = daemontest.DialHello(t, d.Socket)
	expectCall(t, admin, `[]`, wire.OpLToList, "q")
	expectCall(t, admin, `["x"]`, wire.OpLToList, "other")
}

// TestOutsideBatchEndsListWithWaiter: a batch that pushes and then expires
// or drops the list, or moves the value on, leaves nothing for a waiter on
// it; a new list of the name serves it afterwards.
func TestOutsideBatchEndsListWithWaiter(t *testing.T) {
	d := daemontest.Start(t)
	admin := daemontest.DialHello(t, d.Socket)
	admin.MustCall(t, nil, wire.OpCreateList, "q")
	admin.MustCall(t, nil, wire.OpCreateList, "elsewhere")
	p := dialPush(t, d.Socket)
	p.sendID(1, wire.OpLBPop, []string{"q"}, "left", nil)
	p.sendID(2, wire.OpPing)
	p.expect(`2 "PONG"`)
	admin.MustCall(t, nil, wire.OpBatch, []any{
		[]any{wire.OpLAppend, "q", "g1"},
		[]any{wire.OpLMove, "q", "elsewhere", "left", "right"},
	})
	admin.MustCall(t, nil, wire.OpBatch, []any{
		[]any{wire.OpLAppend, "q", "g2"},
		[]any{wire.OpExpire, "q", map[string]any{"ttl": 0}},
	})
	expectCall(t, admin, "false", wire.OpExists, "q")
	admin.MustCall(t, nil, wire.OpCreateList, "q")
	admin.MustCall(t, nil, wire.OpBatch, []any{
		[]any{wire.OpLAppend, "q", "g3"},
		[]any{wire.OpDrop, "q"},
	})
	expectCall(t, admin, "false", wire.OpExists, "q")
	expectCall(t, admin, `["g1"]`, wire.OpLToList, "elsewhere")
	admin.MustCall(t, nil, wire.OpCreateList, "q", []string{"real"})
	p.expect(`1 ["q", "real"]`)
	expectCall(t, admin, `[]`, wire.OpLToList, "q")
}

// TestOutsideParkedIsNotIdle: a connection with a parked request is not
// idle (PROTOCOL.md 6.6), with or without push; and thousands of parked
// requests on one connection all go when it closes.
func TestOutsideParkedIsNotIdle(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, ioModel string) {
		d := daemontest.Start(t, ioModel, "--idle-timeout=300ms")
		admin := daemontest.DialHello(t, d.Socket)
		admin.MustCall(t, nil, wire.OpCreateList, "q")
		p := dialPush(t, d.Socket)
		p.sendID(1, wire.OpLBPop, []string{"q"}, "left", nil)
		np := daemontest.DialHello(t, d.Socket)
		nid, _ := np.Send(wire.OpLBPop, []string{"q"}, "right", nil)
		for i := 0; i < 9; i++ { // the admin connection stays busy
			time.Sleep(100 * time.Millisecond)
			admin.MustCall(t, nil, wire.OpPing)
		}
		admin.MustCall(t, nil, wire.OpLAppend, "q", "a", "b")
		p.expect(`1 ["q", "a"]`)
		if r, err := np.Read(); err != nil || r.ID != nid || wire.Diagnose(r.Result) != `["q", "b"]` {
			t.Fatalf("a connection without push whose lbpop was parked for 3 idle time-outs: %v %v; list q now %s",
				err, renderReply(r), call(t, admin, wire.OpLToList, "q"))
		}
		// Idle again now: closed with idle_timeout (TestOutsideIdleAfterParked).
		p.expect("0 idle_timeout")

		admin = daemontest.DialHello(t, d.Socket)
		many := dialPush(t, d.Socket)
		const n = 5000
		for i := 1; i <= n; i++ {
			many.sendID(uint64(i), wire.OpLBPop, []string{"q"}, "left", nil)
		}
		many.sendID(n+1, wire.OpPing)
		many.expect(fmt.Sprintf(`%d "PONG"`, n+1))
		waitBlocked(t, admin, n)
		admin.MustCall(t, nil, wire.OpPing)
		many.Close()
		waitBlocked(t, admin, 0)
		admin.MustCall(t, nil, wire.OpLAppend, "q", "kept")
		expectCall(t, admin, `["kept"]`, wire.OpLToList, "q")
	})
}

// TestOutsideIdleAfterParked: once its parked request is answered, a
// connection is idle again and --idle-timeout closes it.
func TestOutsideIdleAfterParked(t *testing.T) {
	forEachIOModel(t, func(t *testing.T, ioModel string) {
		d := daemontest.Start(t, ioModel, "--idle-timeout=300ms")
		admin := daemontest.DialHello(t, d.Socket)
		admin.MustCall(t, nil, wire.OpCreateList, "q")
		p := dialPush(t, d.Socket)
		p.sendID(1, wire.OpLBPop, []string{"q"}, "left", 50)
		p.expect("1 null")
		p.expect("0 idle_timeout")
	})
}
