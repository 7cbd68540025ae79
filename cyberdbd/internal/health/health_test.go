package health

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestQueue(t *testing.T) {
	var q Queue
	rounds := make(chan struct{}, 16)
	go func() {
		for range rounds {
			q.Run()
		}
	}()
	wake := func() { rounds <- struct{}{} }
	for range 3 {
		ctx, cancel := WithLimit(context.Background(), 5*time.Second)
		if err := q.RoundTrip(ctx, wake); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	close(rounds)

	// An owner that no longer runs rounds: the first round trip times
	// out, the next fails at once without queueing more.
	ctx, cancel := WithLimit(context.Background(), 20*time.Millisecond)
	err := q.RoundTrip(ctx, func() {})
	cancel()
	if err == nil || !strings.Contains(err.Error(), "did not run a round within") {
		t.Fatalf("stuck owner: %v", err)
	}
	start := time.Now()
	err = q.RoundTrip(context.Background(), func() {})
	if err == nil || !strings.Contains(err.Error(), "has not run a round for") || time.Since(start) > time.Second {
		t.Fatalf("second round trip to a stuck owner: %v after %s", err, time.Since(start))
	}
	if len(q.fns) != 1 {
		t.Fatalf("%d functions queued behind a stuck owner, want 1", len(q.fns))
	}
	q.Run() // the owner comes back
	ctx, cancel = WithLimit(context.Background(), time.Second)
	defer cancel()
	if err := q.RoundTrip(ctx, q.Run); err != nil {
		t.Fatalf("after the owner came back: %v", err)
	}
}

func TestWaiter(t *testing.T) {
	var w Waiter
	var mu sync.Mutex
	lock := func(step func(string)) {
		step("the lock")
		mu.Lock()
		mu.Unlock()
	}
	if err := w.Wait(context.Background(), lock); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	ctx, cancel := WithLimit(context.Background(), 20*time.Millisecond)
	err := w.Wait(ctx, lock)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "for the lock") {
		t.Fatalf("held lock: %v", err)
	}
	if err := w.Wait(context.Background(), lock); err == nil || !strings.Contains(err.Error(), "still waiting for the lock") {
		t.Fatalf("second wait on a held lock: %v", err)
	}
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := w.Wait(context.Background(), lock); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("after the lock was released: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
}
