package latency

import (
	"testing"
	"time"
)

// TestBuckets: every duration lands in the bucket whose bounds hold it,
// and the bounds grow.
func TestBuckets(t *testing.T) {
	for i := 1; i < Buckets; i++ {
		if UpperBound(i) <= UpperBound(i-1) {
			t.Fatalf("bound %d (%v) <= bound %d (%v)", i, UpperBound(i), i-1, UpperBound(i-1))
		}
	}
	for _, d := range []time.Duration{0, 1, 999, 1024, 1500, 2047, 2048, time.Millisecond, 1234567, time.Second, 68 * time.Second, time.Hour} {
		b := bucket(int64(d))
		if d >= UpperBound(b) || (b > 0 && d < UpperBound(b-1)) {
			t.Errorf("%v in bucket %d [%v, %v)", d, b, UpperBound(b-1), UpperBound(b))
		}
	}
}

func TestQuantile(t *testing.T) {
	var h Histogram
	for i := range 1000 {
		h.Observe(time.Duration(i+1) * time.Microsecond) // 1µs .. 1ms
	}
	s := h.Snapshot()
	if s.Count != 1000 {
		t.Fatalf("count %d", s.Count)
	}
	for q, want := range map[float64]time.Duration{0.5: 500 * time.Microsecond, 0.99: 990 * time.Microsecond, 1: time.Millisecond} {
		got := s.Quantile(q)
		if got < want || float64(got) > float64(want)*1.2 {
			t.Errorf("quantile %v: %v, want %v to +20%%", q, got, want)
		}
	}
	if m := s.Max(); m < time.Millisecond || m > 1200*time.Microsecond {
		t.Errorf("max %v", m)
	}
	h.Reset()
	if s := h.Snapshot(); s.Count != 0 || s.Quantile(0.5) != 0 {
		t.Errorf("after reset: %+v", s.Count)
	}
}

func TestObserveAllocs(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(100, func() { h.Observe(3 * time.Millisecond) }); n != 0 {
		t.Errorf("Observe allocates %v times", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	var h Histogram
	b.RunParallel(func(pb *testing.PB) {
		d := time.Duration(1500)
		for pb.Next() {
			h.Observe(d)
			d += 37
		}
	})
}
