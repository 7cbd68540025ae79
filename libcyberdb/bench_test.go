package libcyberdb

import (
	"context"
	"runtime"
	"strconv"
	"testing"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

func benchDict(b *testing.B) *Dict[string, string] {
	_, c := start(b)
	ctx := context.Background()
	must(b, c.CreateDict(ctx, "bench", nil))
	d := NewDict[string, string](c, "bench")
	must(b, d.Set(ctx, "key", "value-of-some-length"))
	return d
}

func BenchmarkGet(b *testing.B) {
	d := benchDict(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Get(ctx, "key"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetHooked is BenchmarkGet through a Call hook that only
// calls the next function: what the hook seam costs a call (compare with
// BenchmarkGet, run alternately: the round trip's noise is larger).
func BenchmarkGetHooked(b *testing.B) {
	_, c := start(b, WithHooks(Hook{Call: func(next CallFunc) CallFunc { return next }}))
	ctx := context.Background()
	must(b, c.CreateDict(ctx, "bench", nil))
	d := NewDict[string, string](c, "bench")
	must(b, d.Set(ctx, "key", "value-of-some-length"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Get(ctx, "key"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSet(b *testing.B) {
	d := benchDict(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Set(ctx, "key", "value-of-some-length"); err != nil {
			b.Fatal(err)
		}
	}
}

// The Parallel benchmarks run many goroutines on one Client: their calls
// are pipelined over the pool's few connections.
func BenchmarkGetParallel(b *testing.B) {
	d := benchDict(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := d.Get(ctx, "key"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGet256 is issue 7's automatic-pipelining case: 256 goroutines
// calling Get on one Client (cyberdb bench --pooled -c 256 -t get is the
// same from the command line). calls/s is the figure to compare with
// redis-benchmark -c 50.
func BenchmarkGet256(b *testing.B) {
	d := benchDict(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism((256 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := d.Get(ctx, "key"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

func BenchmarkSetParallel(b *testing.B) {
	d := benchDict(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if err := d.Set(ctx, "key"+strconv.Itoa(i&1023), "value-of-some-length"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRawRoundTrip is the floor: one request and reply on a bare
// connection, no pool, for comparison with BenchmarkGet.
func BenchmarkRawRoundTrip(b *testing.B) {
	d := daemontest.Start(b)
	c := daemontest.DialHello(b, d.Socket)
	c.MustCall(b, nil, wire.OpCreateDict, "bench")
	c.MustCall(b, nil, wire.OpDSet, "bench", "key", "value-of-some-length")
	for b.Loop() {
		if _, err := c.Call(wire.OpDGet, "bench", "key"); err != nil {
			b.Fatal(err)
		}
	}
}
