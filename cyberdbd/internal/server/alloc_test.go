package server

import (
	"testing"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// TestPipelinedDoNotAllocate keeps the README's claim true: the daemon's
// hot path (an event loop reading, decoding, executing and answering)
// allocates nothing for a get, nor for a set in the store itself. It runs
// BenchmarkPipelinedGet/Set's load, 16 requests per write, and counts the
// allocations of the whole process (this raw client allocates nothing).
// A set carves its entry from a 64 KiB arena chunk, a new chunk every
// thousand sets or so: less than one allocation per batch, which
// AllocsPerRun's average rounds down to 0, while one allocation per
// request would show as 16.
func TestPipelinedDoNotAllocate(t *testing.T) {
	if daemontest.Race {
		t.Skip("the race detector allocates on its own; run without -race")
	}
	for _, op := range []wire.Op{wire.OpDGet, wire.OpDSet} {
		nc, r := benchServer(t)
		batch := pipelinedBatch(op, 32)
		buf := make([]byte, 0, 4096)
		roundTrip := func() {
			if _, err := nc.Write(batch); err != nil {
				t.Fatal(err)
			}
			for range 16 {
				body, err := wire.ReadFrame(r, buf, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				if _, code, ok := wire.PeekReply(body); !ok || code != wire.CodeOK {
					t.Fatalf("%s: reply %s", op, wire.Diagnose(body))
				}
				buf = body[:0]
			}
		}
		for range 100 { // warm up: buffers grown, the loop's slices sized
			roundTrip()
		}
		if allocs := testing.AllocsPerRun(200, roundTrip); allocs != 0 {
			t.Errorf("%s: %v allocations per 16 pipelined requests, want 0", op, allocs)
		}
	}
}
