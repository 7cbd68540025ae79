// Package health holds the round trips behind cyberdbd's watchdog: each
// ping to systemd is sent only once every event loop, the store and the
// log's writer have answered within a time limit, so that a daemon hung
// in any of them stops pinging and is restarted.
//
// A Queue is a round trip through a goroutine that runs in rounds (an
// event loop, the log's writer): the owner calls Run once a round, and
// RoundTrip returns once it has. A Waiter is a round trip through locks:
// it runs a function that takes them, one after the other, in a goroutine
// of its own, and reports which one it was still waiting for when the time
// ran out.
//
// Neither piles up work behind something stuck: while an earlier round
// trip is still unanswered, the next one fails at once, saying since when
// it has waited.
package health

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Queue runs functions on its owner's goroutine, once a round. Its zero
// value is ready to use.
type Queue struct {
	mu    sync.Mutex // guards fns and since; a leaf: fns run and wake is called without it
	fns   []func()
	since time.Time // when the oldest round trip not yet run was queued; zero if none
}

// Run runs what was queued. The owner calls it once each round.
func (q *Queue) Run() {
	q.mu.Lock()
	fns := q.fns
	q.fns, q.since = nil, time.Time{}
	q.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// Do queues fn to run on the owner's goroutine at its next round, and
// calls wake to start that round.
func (q *Queue) Do(fn func(), wake func()) {
	q.mu.Lock()
	q.fns = append(q.fns, fn)
	q.mu.Unlock()
	wake()
}

// RoundTrip returns once the owner has run a round after the call (wake
// starts one), or an error when ctx ends first, or at once while an
// earlier round trip has not been answered.
func (q *Queue) RoundTrip(ctx context.Context, wake func()) error {
	done := make(chan struct{})
	q.mu.Lock()
	if !q.since.IsZero() {
		since := q.since
		q.mu.Unlock()
		return fmt.Errorf("has not run a round for %s", time.Since(since).Round(time.Millisecond))
	}
	q.fns = append(q.fns, func() { close(done) })
	q.since = time.Now()
	q.mu.Unlock()
	wake()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("did not run a round within %s", elapsed(ctx))
	}
}

// Waiter runs lock round trips, one at a time. Its zero value is ready to
// use.
type Waiter struct {
	mu    sync.Mutex // guards busy, what and since; a leaf: fn takes its locks without it
	busy  bool
	what  string    // what the round trip in flight waits for
	since time.Time // when that started
}

// Wait runs fn in a goroutine of its own and returns once it has
// returned, or an error naming what it was waiting for (as fn last told
// step) when ctx ends first. A fn still running from an earlier call
// makes Wait fail at once: fn is never run twice at a time.
func (w *Waiter) Wait(ctx context.Context, fn func(step func(what string))) error {
	w.mu.Lock()
	if w.busy {
		what, since := w.what, w.since
		w.mu.Unlock()
		return fmt.Errorf("still waiting for %s, for %s", what, time.Since(since).Round(time.Millisecond))
	}
	w.busy, w.what, w.since = true, "", time.Now()
	w.mu.Unlock()
	step := func(what string) {
		w.mu.Lock()
		w.what, w.since = what, time.Now()
		w.mu.Unlock()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(step)
		w.mu.Lock()
		w.busy = false
		w.mu.Unlock()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		w.mu.Lock()
		what := w.what
		w.mu.Unlock()
		return fmt.Errorf("waited %s for %s", elapsed(ctx), what)
	}
}

// elapsed is how long ctx had, for messages.
func elapsed(ctx context.Context) string {
	if v, ok := ctx.Value(startKey{}).(time.Time); ok {
		return time.Since(v).Round(time.Millisecond).String()
	}
	return "the time limit"
}

type startKey struct{}

// WithLimit returns a context that ends after limit, for a round of
// checks; messages then say how long they waited.
func WithLimit(parent context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithValue(parent, startKey{}, time.Now()), limit)
}
