package libcyberdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb"
	"github.com/cyberdb/cyberdb/libcyberdb/cyberdbtest"
)

// TestQueueTakeAfterRecover: a worker whose lease ran out on the daemon's
// clock, without its own clock seeing a renewal due (FastForward: a
// stall, or a daemon down longer than the lease), and whose in-progress
// list Recover then dropped, takes on: its next Take registers again and
// gets the job. It used to fail with no_such_table, an error that the
// docs never mention (found by a new user's trial).
func TestQueueTakeAfterRecover(t *testing.T) {
	db := cyberdbtest.New(t)
	ctx := context.Background()
	q := libcyberdb.NewQueue[string](db.Client, "q")
	if err := q.Create(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := q.Worker(ctx, "a", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	db.FastForward(20 * time.Second) // the lease runs out
	if _, err := q.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Put(ctx, "job-1"); err != nil {
		t.Fatal(err)
	}
	job, ok, err := w.Take(ctx, time.Second)
	if err != nil || !ok || job != "job-1" {
		t.Fatalf("Take after the lease ran out and Recover: %q, %v, %v; want job-1", job, ok, err)
	}
	if n, err := w.InProgress().Len(ctx); err != nil || n != 1 {
		t.Fatalf("in progress: %d, %v; want 1", n, err)
	}
	// It holds a lease again: Recover leaves its job alone.
	if n, err := q.Recover(ctx); err != nil || n != 0 {
		t.Fatalf("Recover with the worker back: requeued %d, %v", n, err)
	}
	if err := w.Ack(ctx, job); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}
