package store

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// sinkRec is a Sink that keeps the pushes it gets, decoded; full makes it
// refuse them.
type sinkRec struct {
	mu     sync.Mutex
	pushes []map[string]any
	calls  int
	full   bool
}

func (r *sinkRec) Push(sub uint64, frames []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.full {
		return false
	}
	rd := bytes.NewReader(frames)
	for rd.Len() > 0 {
		body, err := wire.ReadFrame(rd, nil, 1<<20)
		if err != nil {
			panic(err)
		}
		rep, err := wire.DecodeReply(body)
		if err != nil || rep.ID != 0 {
			panic(fmt.Sprintf("not a push: %v %v", rep, err))
		}
		var m map[string]any
		if err := wire.Unmarshal(rep.Result, &m); err != nil {
			panic(err)
		}
		r.pushes = append(r.pushes, m)
	}
	return true
}

func (r *sinkRec) take() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pushes
	r.pushes = nil
	return p
}

func (r *sinkRec) ops() string {
	var s []string
	for _, p := range r.take() {
		s = append(s, fmt.Sprint(p["op"], ":", p["key"]))
	}
	return fmt.Sprint(s)
}

// TestWatchExpiryEviction: entries removed by the sweeper and evicted by a
// cache table are events too, and a waiter's pop is the lpop it became.
func TestWatchExpiryEviction(t *testing.T) {
	clock := NewManualClock(time.UnixMilli(1_000_000))
	s := New(WithClock(clock))
	rec := &sinkRec{}
	do(t, s, wire.OpCreateDict, "d")
	seq0, ok := s.AddWatch(&Watch{Sub: 1, Sink: rec, Table: "d"})
	if !ok {
		t.Fatal("AddWatch: the table does not exist")
	}
	do(t, s, wire.OpDSet, "d", "a", 1, map[string]any{"ttl": 100})
	do(t, s, wire.OpDSet, "d", "b", 2)
	clock.Add(time.Second)
	s.SweepExpired()
	if got := rec.ops(); got != "[dset:a dset:b expired:a]" {
		t.Fatalf("events %s", got)
	}

	do(t, s, wire.OpCreateDict, "c", nil, map[string]any{"max_len": 2})
	s.AddWatch(&Watch{Sub: 2, Sink: rec, Table: "c", HasPrefix: true, Prefix: ""})
	for _, k := range []string{"x", "y", "z"} {
		do(t, s, wire.OpDSet, "c", k, 1)
		clock.Add(time.Millisecond)
	}
	// Eviction samples at random: x or y goes (z was just written).
	if got := rec.ops(); got != "[dset:x dset:y dset:z evicted:x]" && got != "[dset:x dset:y dset:z evicted:y]" {
		t.Fatalf("watch of a cache table: %s", got)
	}

	do(t, s, wire.OpCreateList, "q")
	s.AddWatch(&Watch{Sub: 3, Sink: rec, Table: "q"})
	got := make(chan Delivery, 1)
	_, w, err := s.Block(wire.OpLBPop, mkArgs(t, wire.OpLBPop, []string{"q"}, "left", nil), nil, func(d Delivery) { got <- d })
	if err != nil || w == nil {
		t.Fatalf("Block: %v %v", w, err)
	}
	do(t, s, wire.OpLAppend, "q", "job")
	<-got
	if got := rec.ops(); got != "[lappend:<nil> lpopleft:<nil>]" {
		t.Fatalf("list events: %s", got)
	}

	// seq: one per write op; the watch's reply gives the one before.
	do(t, s, wire.OpDSet, "d", "n", 1)
	do(t, s, wire.OpDDel, "d", "n")
	ev := rec.take()
	if len(ev) != 2 || ev[0]["seq"].(uint64) != seq0+4 || ev[1]["seq"].(uint64) != seq0+5 {
		t.Fatalf("seqs after %d: %v", seq0, ev)
	}

	// A sink that overflows loses the watch: nothing more is pushed to it.
	rec.full = true
	do(t, s, wire.OpDSet, "d", "n", 1)
	calls := rec.calls
	do(t, s, wire.OpDSet, "d", "n", 2)
	if rec.calls != calls {
		t.Fatal("a watch whose sink refused a push is still pushed to")
	}
}

// TestTrackedReadInvalidated: a tracked read registers its key; a write
// pushes one invalidation; a clear invalidates the table; a stopped
// tracker gets nothing.
func TestTrackedReadInvalidated(t *testing.T) {
	s := New()
	rec := &sinkRec{}
	tr := &Tracker{Sub: 7, Sink: rec}
	s.StartTracking(tr)
	do(t, s, wire.OpCreateDict, "d")
	do(t, s, wire.OpDSet, "d", "k", 0)
	read := func() string {
		out, err := s.ExecTracked(wire.OpDGet, mkArgs(t, wire.OpDGet, "d", "k", nil), nil, tr)
		if err != nil {
			t.Fatal(err)
		}
		return wire.Diagnose(out)
	}
	if read() != "0" {
		t.Fatal("read")
	}
	do(t, s, wire.OpDSet, "d", "k", 1)
	do(t, s, wire.OpDSet, "d", "k", 2) // no second invalidation: not read since
	p := rec.take()
	if len(p) != 1 || p[0]["push"] != "invalidate" || fmt.Sprint(p[0]["keys"]) != "[k]" || p[0]["sub"] != uint64(7) {
		t.Fatalf("pushes %v", p)
	}
	read()
	do(t, s, wire.OpDClear, "d")
	if p := rec.take(); len(p) != 1 || p[0]["keys"] != nil {
		t.Fatalf("a clear: %v", p)
	}
	s.StopTracking(tr)
	read() // a plain read now
	do(t, s, wire.OpDSet, "d", "k", 3)
	if p := rec.take(); len(p) != 0 {
		t.Fatalf("after StopTracking: %v", p)
	}
}
