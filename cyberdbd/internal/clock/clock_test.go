package clock

import (
	"testing"
	"time"
)

// TestNow: Now agrees with time.Now, on both clocks, across anchors.
func TestNow(t *testing.T) {
	end := time.Now().Add(3 * AnchorEvery)
	prev := Now()
	for n := 0; time.Now().Before(end); n++ {
		before := time.Now()
		got := Now()
		after := time.Now()
		// Wall time: between the two readings around it, within the
		// rounding of a monotonic offset added to an anchor.
		if got.UnixNano() < before.UnixNano()-int64(time.Millisecond) || got.UnixNano() > after.UnixNano()+int64(time.Millisecond) {
			t.Fatalf("reading %d: Now() = %v, not between %v and %v", n, got, before, after)
		}
		// Monotonic: never backwards, and Sub measures it.
		if d := got.Sub(prev); d < 0 {
			t.Fatalf("reading %d: went back %v", n, -d)
		}
		if got.Sub(before) < 0 || after.Sub(got) < 0 {
			t.Fatalf("reading %d: monotonic reading outside the ones around it", n)
		}
		prev = got
		if n%1000 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// TestNowAllocs: between anchors, Now allocates nothing.
func TestNowAllocs(t *testing.T) {
	Now()
	if n := testing.AllocsPerRun(1000, func() { _ = Now() }); n > 0.01 {
		t.Fatalf("Now allocates %v times per call", n)
	}
}

func BenchmarkNow(b *testing.B) {
	for range b.N {
		_ = Now()
	}
}

func BenchmarkTimeNow(b *testing.B) {
	for range b.N {
		_ = time.Now()
	}
}
