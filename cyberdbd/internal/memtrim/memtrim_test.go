package memtrim

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunStops: Run samples every interval while its
// context lives, and returns once it ends.
func TestRunStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var calls atomic.Int64
	go func() {
		Run(ctx, slog.New(slog.DiscardHandler), time.Millisecond, func() (int64, int) { calls.Add(1); return 0, 0 })
		close(done)
	}()
	for deadline := time.Now().Add(10 * time.Second); calls.Load() < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("Run sampled %d times in 10s at an interval of 1ms", calls.Load())
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-done:
		t.Fatal("Run returned before its context ended")
	default:
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of its context ending")
	}
}

// TestTrimmer checks when the trimmer returns memory: once quiet after a
// drop, after connections close, after a burst that left garbage, and
// after a collection left free memory; never while the daemon allocates.
func TestTrimmer(t *testing.T) {
	const mib = 1 << 20
	type tick struct {
		allocs, free, inUse, live uint64 // MiB
		data                      int64  // MiB
		conns                     int
		want                      string // the reason to trim, "" for none
	}
	for _, tc := range []struct {
		name      string
		fromStart bool // no settling: the first tick is the first sample
		ticks     []tick
	}{
		{"load-before-the-first-sample", true, []tick{
			{allocs: 500, free: 2, inUse: 300, live: 100},
			{allocs: 501, free: 2, inUse: 300, live: 100, want: "a burst of allocation ended"},
			{allocs: 502, free: 2, inUse: 150, live: 150},
		}},
		{"idle", false, []tick{
			{allocs: 100, free: 2, inUse: 100, live: 100, data: 90},
			{allocs: 100, free: 2, inUse: 100, live: 100, data: 90},
			{allocs: 101, free: 2, inUse: 100, live: 100, data: 90},
		}},
		{"drop", false, []tick{
			{allocs: 100, free: 2, inUse: 100, live: 100, data: 90},
			{allocs: 100, free: 2, inUse: 100, live: 100, data: 0, want: "the store released memory"},
			{allocs: 100, free: 2, inUse: 5, live: 5, data: 0}, // once
		}},
		{"drop-while-busy", false, []tick{
			{allocs: 100, free: 2, inUse: 100, live: 100, data: 90},
			{allocs: 200, free: 2, inUse: 150, live: 100, data: 0},
			{allocs: 300, free: 2, inUse: 150, live: 100, data: 0},
			{allocs: 301, free: 2, inUse: 150, live: 100, data: 0, want: "the store released memory"},
		}},
		{"small-drop", false, []tick{
			{allocs: 100, free: 2, inUse: 100, live: 100, data: 90},
			{allocs: 100, free: 2, inUse: 100, live: 100, data: 80},
		}},
		{"conns-closed", false, []tick{
			{allocs: 100, free: 2, inUse: 100, live: 100, conns: 10},
			{allocs: 100, free: 2, inUse: 100, live: 100, conns: 1000},
			{allocs: 100, free: 2, inUse: 100, live: 100, conns: 3, want: "connections closed"},
			{allocs: 100, free: 2, inUse: 100, live: 100, conns: 2},
		}},
		{"burst", false, []tick{
			{allocs: 100, free: 2, inUse: 100, live: 100},
			{allocs: 500, free: 2, inUse: 300, live: 150},
			{allocs: 900, free: 2, inUse: 300, live: 250},
			{allocs: 901, free: 2, inUse: 300, live: 250, want: "a burst of allocation ended"},
			{allocs: 902, free: 2, inUse: 250, live: 250},
		}},
		{"burst-already-collected", false, []tick{
			{allocs: 100, free: 2, inUse: 100, live: 100},
			{allocs: 500, free: 2, inUse: 120, live: 115},
			{allocs: 501, free: 2, inUse: 120, live: 115},
		}},
		{"free-after-collection", false, []tick{
			{allocs: 100, free: 2, inUse: 100, live: 100},
			{allocs: 104, free: 40, inUse: 100, live: 100, want: "free memory"},
			{allocs: 105, free: 40, inUse: 100, live: 100, want: "free memory"}, // the runtime kept it: again
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr trimmer
			sample := func(k tick) memSample {
				return memSample{allocs: k.allocs * mib, free: k.free * mib, inUse: k.inUse * mib,
					live: k.live * mib, dataBytes: k.data * mib, conns: k.conns}
			}
			if !tc.fromStart {
				// Settle: the first sample counts everything since start
				// as a burst, which the second finds collected already.
				for range 2 {
					if trim, why := tr.step(sample(tc.ticks[0])); trim {
						t.Fatalf("settling: trim (%q)", why)
					}
				}
			}
			for i, k := range tc.ticks {
				if i == 0 && !tc.fromStart {
					continue
				}
				trim, why := tr.step(sample(k))
				if trim != (k.want != "") || why != k.want {
					t.Fatalf("tick %d: trim %v (%q), want %q", i, trim, why, k.want)
				}
			}
		})
	}
}
