package server

import "context"

// The watchdog's round trip through an event loop (Server.Probe): the
// loop runs its health.Queue at the start of every round (run), so a loop
// stuck in a round, or not running rounds at all, fails the round trip.

// roundTrip returns once the loop has run a round, or an error when ctx
// ends first.
func (l *ioLoop) roundTrip(ctx context.Context) error { return l.probes.RoundTrip(ctx, l.wake) }

// do runs fn on the loop's goroutine at its next round (tests wedge it).
func (l *ioLoop) do(fn func()) { l.probes.Do(fn, l.wake) }
