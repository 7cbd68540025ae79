// Package latency is a histogram of durations cheap enough for every
// request: fixed log-scale buckets counted with atomic adds, no lock and
// no allocation on Observe. Readers (info's percentiles, the latency op,
// Prometheus scrapes) take a Snapshot, which is consistent per bucket,
// not across buckets: a count racing a snapshot is in it or in the next.
//
// Buckets: four per power of two from 1µs (anything faster lands in the
// first) to about 69 s (anything slower lands in the last), so a
// percentile is reported as its bucket's upper bound, at most 19% above
// the true value. Prometheus's own Histogram would cost an atomic add per
// bucket boundary search and more; this one is one bits.Len64, one shift
// and two atomic adds.
package latency

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	minShift = 10 // the first octave starts at 2^10 ns (about 1 µs)
	maxShift = 36 // the last ends at 2^36 ns (about 69 s)
	subBits  = 2  // 4 buckets per octave

	// Buckets is the number of buckets: one below 2^minShift ns, four per
	// octave, and the last, unbounded.
	Buckets = 1 + (maxShift-minShift)<<subBits + 1
)

// Histogram counts durations. The zero value is ready; it must not be
// copied after first use.
type Histogram struct {
	counts [Buckets]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
}

// bucket returns the index of the bucket holding ns.
func bucket(ns int64) int {
	if ns < 1<<minShift {
		return 0
	}
	e := bits.Len64(uint64(ns)) - 1 // 2^e <= ns < 2^(e+1)
	if e >= maxShift {
		return Buckets - 1
	}
	sub := int(uint64(ns)>>(e-subBits)) & (1<<subBits - 1)
	return 1 + (e-minShift)<<subBits + sub
}

// UpperBound returns the upper bound of bucket i: the durations in it are
// below it (the last bucket's is +Inf, as time.Duration's maximum).
func UpperBound(i int) time.Duration {
	if i <= 0 {
		return 1 << minShift
	}
	if i >= Buckets-1 {
		return math.MaxInt64
	}
	i--
	e := minShift + i>>subBits
	sub := i & (1<<subBits - 1)
	return time.Duration(int64(1)<<e + int64(sub+1)<<(e-subBits))
}

// Observe counts one duration.
func (h *Histogram) Observe(d time.Duration) {
	h.counts[bucket(int64(d))].Add(1)
	h.sum.Add(int64(d))
}

// Reset sets every count to zero (not atomically as a whole: a duration
// observed meanwhile may be kept or not).
func (h *Histogram) Reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
	h.sum.Store(0)
}

// Snapshot is a histogram's counts at one moment.
type Snapshot struct {
	Counts [Buckets]uint64
	Count  uint64
	Sum    time.Duration
}

// Snapshot reads h.
func (h *Histogram) Snapshot() Snapshot {
	var s Snapshot
	for i := range h.counts {
		n := h.counts[i].Load()
		s.Counts[i] = n
		s.Count += n
	}
	s.Sum = time.Duration(h.sum.Load())
	return s
}

// Quantile returns the upper bound of the bucket holding quantile q (0 to
// 1) of the durations; 0 when there are none.
func (s *Snapshot) Quantile(q float64) time.Duration {
	if s.Count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(s.Count)))
	rank = max(rank, 1)
	var seen uint64
	for i, n := range s.Counts {
		seen += n
		if seen >= rank {
			return UpperBound(i)
		}
	}
	return UpperBound(Buckets - 1)
}

// Max returns the upper bound of the highest bucket with a count; 0 when
// there are none.
func (s *Snapshot) Max() time.Duration {
	for i := Buckets - 1; i >= 0; i-- {
		if s.Counts[i] > 0 {
			return UpperBound(i)
		}
	}
	return 0
}
