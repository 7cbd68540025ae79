package libcyberdb

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

func TestQueue(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	q := NewQueue[string](c, "jobs")
	must(t, q.Create(ctx))
	must(t, q.Create(ctx)) // idempotent
	must(t, q.Put(ctx, "a", "b", "c"))

	w1, err := q.Worker(ctx, "one", 300*time.Millisecond)
	must(t, err)
	if _, err := q.Worker(ctx, "one", time.Second); !errors.Is(err, ErrLockHeld) {
		t.Fatalf("a second live worker with the same id: %v", err)
	}
	w2, err := q.Worker(ctx, "", time.Minute)
	must(t, err)

	job, ok, err := w1.Take(ctx, time.Second)
	if job != "a" || !ok || err != nil {
		t.Fatalf("Take = %q %v %v", job, ok, err)
	}
	must(t, w1.Ack(ctx, "a"))
	job, ok, err = w1.Take(ctx, time.Second)
	if job != "b" || !ok || err != nil {
		t.Fatalf("Take = %q %v %v", job, ok, err)
	}
	// w1 stalls past its lease with "b": Recover gives it back, to the front.
	if n, err := q.Recover(ctx); n != 0 || err != nil {
		t.Fatalf("Recover with live leases = %d, %v", n, err)
	}
	time.Sleep(400 * time.Millisecond)
	if n, err := q.Recover(ctx); n != 1 || err != nil {
		t.Fatalf("Recover after the lease ran out = %d, %v", n, err)
	}
	if vs, err := q.Jobs().Values(ctx); err != nil || fmt.Sprint(vs) != "[b c]" {
		t.Fatalf("queue after Recover = %v, %v", vs, err)
	}
	if err := w1.Ack(ctx, "b"); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Ack of a requeued job: %v, want ErrLeaseLost", err)
	}
	job, ok, err = w2.Take(ctx, time.Second)
	if job != "b" || !ok || err != nil {
		t.Fatalf("w2 Take = %q %v %v", job, ok, err)
	}
	// w1 comes back: Take registers it again.
	job, ok, err = w1.Take(ctx, time.Second)
	if job != "c" || !ok || err != nil {
		t.Fatalf("w1 Take after its lease ran out = %q %v %v", job, ok, err)
	}
	// Nothing left: a time-out, and no wait with a negative one.
	if _, ok, err := w2.Take(ctx, 50*time.Millisecond); ok || err != nil {
		t.Fatalf("Take of an empty queue = %v %v", ok, err)
	}
	if _, ok, err := w2.Take(ctx, -1); ok || err != nil {
		t.Fatalf("Take(-1) of an empty queue = %v %v", ok, err)
	}
	// A clean stop gives back what the worker holds and drops its list.
	must(t, w1.Stop(ctx))
	if vs, err := q.Jobs().Values(ctx); err != nil || fmt.Sprint(vs) != "[c]" {
		t.Fatalf("queue after Stop = %v, %v", vs, err)
	}
	if ok, err := c.Exists(ctx, "jobs.inprogress.one"); ok || err != nil {
		t.Fatalf("in-progress list after Stop: exists=%v %v", ok, err)
	}
	must(t, w2.Ack(ctx, "b"))
	// A worker's lease is kept while it waits longer than the lease.
	w3, err := q.Worker(ctx, "three", 150*time.Millisecond)
	must(t, err)
	must(t, q.Put(ctx))
	must(t, q.Jobs().Clear(ctx))
	if _, ok, err := w3.Take(ctx, 500*time.Millisecond); ok || err != nil {
		t.Fatalf("w3 Take = %v %v", ok, err)
	}
	must(t, q.Put(ctx, "d"))
	if job, ok, err := w3.Take(ctx, time.Second); job != "d" || !ok || err != nil {
		t.Fatalf("w3 Take = %q %v %v", job, ok, err)
	}
	if n, err := q.Recover(ctx); n != 0 || err != nil {
		t.Fatalf("Recover took the job of a worker that kept its lease: %d, %v", n, err)
	}
}

// TestQueueTakeLostReply: a Take whose move happened but whose reply was
// lost with its connection (a Call hook drops it, as a daemon restart
// would) returns the job from the worker's in-progress list instead of
// failing with ErrConnClosed: the job was stuck there, never done, for as
// long as the worker lived (found by a new user's trial). A lost reply
// of a move that did not happen leaves Take waiting, and it gets the
// next job as usual.
func TestQueueTakeLostReply(t *testing.T) {
	d := daemontest.Start(t)
	var drop atomic.Int32 // 1: the move happens, its reply is lost; 2: neither
	c := open(t, d.Socket, WithHooks(Hook{Call: func(next CallFunc) CallFunc {
		return func(ctx context.Context, call *Call) error {
			if call.Op() != wire.OpLBMove {
				return next(ctx, call)
			}
			switch drop.Swap(0) {
			case 1:
				if err := next(ctx, call); err != nil {
					return err
				}
				return fmt.Errorf("cyberdb: lbmove: %w", ErrConnClosed)
			case 2:
				return fmt.Errorf("cyberdb: lbmove: %w", ErrConnClosed)
			}
			return next(ctx, call)
		}
	}}))
	ctx := context.Background()
	q := NewQueue[string](c, "jobs")
	must(t, q.Create(ctx))
	w, err := q.Worker(ctx, "w", time.Minute)
	must(t, err)

	must(t, q.Put(ctx, "j1", "j2"))
	if job, ok, err := w.Take(ctx, time.Second); err != nil || !ok || job != "j1" {
		t.Fatalf("first Take: %q %v %v", job, ok, err)
	}
	drop.Store(1)
	job, ok, err := w.Take(ctx, time.Second)
	if err != nil || !ok || job != "j2" {
		t.Fatalf("Take whose reply was lost: %q %v %v; want j2, adopted from the in-progress list", job, ok, err)
	}
	if got, _ := w.InProgress().Values(ctx); len(got) != 2 {
		t.Fatalf("in progress: %q", got)
	}
	must(t, w.Ack(ctx, "j1"))
	must(t, w.Ack(ctx, "j2"))

	must(t, q.Put(ctx, "j3"))
	drop.Store(2)
	if job, ok, err := w.Take(ctx, time.Second); err != nil || !ok || job != "j3" {
		t.Fatalf("Take after a lost reply of a move that did not happen: %q %v %v", job, ok, err)
	}
	must(t, w.Ack(ctx, "j3"))
	if n, _ := q.Jobs().Len(ctx); n != 0 {
		t.Fatalf("%d jobs left", n)
	}
}
