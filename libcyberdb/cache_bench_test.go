package libcyberdb

import (
	"context"
	"testing"

	"github.com/cyberdb/cyberdb/internal/daemontest"
)

// BenchmarkCachedGet is a CachedDict[string, string].Get that hits the
// read cache (issue 16's goal: under 200 ns, no allocation but the
// value); compare with BenchmarkGet, the same read from the daemon.
func BenchmarkCachedGet(b *testing.B) {
	_, c := start(b)
	ctx := context.Background()
	must(b, c.CreateDict(ctx, "bench", nil))
	d := NewCachedDict[string, string](c, "bench")
	must(b, d.Set(ctx, "key", "value-of-some-length"))
	if _, err := d.Get(ctx, "key"); err != nil { // the miss that fills it
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Get(ctx, "key"); err != nil {
			b.Fatal(err)
		}
	}
	if st := c.Stats(); st.CacheMisses != 1 {
		b.Fatalf("%d misses: the cache did not hold the key", st.CacheMisses)
	}
}

// BenchmarkCachedGetParallel: hits from every core.
func BenchmarkCachedGetParallel(b *testing.B) {
	_, c := start(b)
	ctx := context.Background()
	must(b, c.CreateDict(ctx, "bench", nil))
	d := NewCachedDict[string, string](c, "bench")
	must(b, d.Set(ctx, "key", "value-of-some-length"))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := d.Get(ctx, "key"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestCachedGetAllocs keeps the claim of BenchmarkCachedGet: a hit
// allocates the returned string only.
func TestCachedGetAllocs(t *testing.T) {
	if daemontest.Race {
		t.Skip("counts allocations: run without -race")
	}
	_, c := start(t)
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "t", nil))
	texts := NewCachedDict[string, string](c, "t")
	ints := NewCachedDict[string, int](c, "t")
	must(t, texts.Set(ctx, "s", "value-of-some-length"))
	must(t, ints.Set(ctx, "n", 42))
	for range 3 {
		_, _ = texts.Get(ctx, "s")
		_, _ = ints.Get(ctx, "n")
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = texts.Get(ctx, "s") }); n > 1 {
		t.Errorf("CachedDict[string, string].Get hit: %v allocations, want 1 (the value)", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = ints.Get(ctx, "n") }); n > 0 {
		t.Errorf("CachedDict[string, int].Get hit: %v allocations, want 0", n)
	}
}
