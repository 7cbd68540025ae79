// Package clock reads the time for the daemon's per-request paths at half
// the cost of time.Now.
//
// time.Now reads two clocks (the wall clock and the monotonic one), which
// on a pipelined burst of gets was 7% of the daemon's CPU: once to time
// each request (latency histograms, slow log) and once for the store's
// expiry checks. Now reads only the monotonic clock, through time.Since
// on an anchor taken with time.Now, and derives the wall time from it.
// The anchor is taken again every AnchorEvery, so that a step of the
// system clock (an administrator's date, an NTP step) shows within that;
// between anchors the wall time moves as the monotonic clock does, which
// NTP slews at the same rate.
package clock

import (
	"sync/atomic"
	"time"
)

// AnchorEvery is how long an anchor serves before Now reads the wall
// clock again.
const AnchorEvery = 50 * time.Millisecond

var anchor atomic.Pointer[time.Time]

// Now returns the current time, with a monotonic reading (so that Sub and
// Since between two of its results measure elapsed time exactly) and a
// wall time at most AnchorEvery behind a step of the system clock.
func Now() time.Time {
	if a := anchor.Load(); a != nil {
		if el := time.Since(*a); el >= 0 && el < AnchorEvery {
			return a.Add(el)
		}
	}
	t := time.Now()
	anchor.Store(&t)
	return t
}
