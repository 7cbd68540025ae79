// Package memtrim returns the daemon's free memory to the operating
// system after bursts of allocation, drops of data and departures of
// clients, once the daemon is quiet: Go by itself would keep it for
// minutes (see trimmer). Run samples the runtime's metrics once an
// interval; the daemon reports what the runtime cannot see, the bytes its
// store holds and its open connections.
package memtrim

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/procs"
)

// The trimmer's thresholds. The daemon is quiet when it allocated less
// than trimQuiet in the last interval.
const (
	trimMin      = 16 << 20 // bytes worth a trim
	trimFraction = 8        // free memory worth a trim: more than in use / 8
	trimQuiet    = 8 << 20
	trimConns    = 16 // connections closed since the last trim that make one worth it
)

// memSample is what the trimmer decides on, read each interval.
type memSample struct {
	allocs    uint64 // bytes allocated since start (/gc/heap/allocs:bytes)
	free      uint64 // heap memory free and not returned (/memory/classes/heap/free:bytes)
	inUse     uint64 // heap memory in objects, garbage not yet collected included
	live      uint64 // heap marked live by the last collection (/gc/heap/live:bytes)
	dataBytes int64  // keys and values the store holds
	conns     int    // open connections
}

// trimmer decides when to return memory to the operating system. Go
// returns free memory slowly and keeps some, and collects garbage only
// when the heap grows (or every two minutes): after a table of a million
// entries is dropped on a quiet daemon nothing allocates, so nothing
// collects it, and the memory stays for two minutes. So after activity that
// leaves memory behind, once the daemon is quiet, it collects and returns
// the memory at once (debug.FreeOSMemory), one time:
//
//   - a burst of allocation (an interval past trimQuiet: a bulk load, an
//     attack) that left at least trimMin not live at the last collection;
//   - the store shrinking by trimMin (drop, dclear, lclear, pops);
//   - trimConns connections closed (their buffers are garbage now).
//
// And when a collection left more than trimMin free (and more
// than an eighth of the memory in use) on a quiet daemon. While the
// daemon keeps allocating, the collector reuses that memory and nothing is
// done: trimming costs a full collection.
type trimmer struct {
	last    memSample // the previous interval's; zero at start, so that what happened before the first sample counts
	pending string    // why a trim is due once quiet; "" if none
	// Since the last trim: the most the store held, the most connections.
	dataPeak  int64
	connsPeak int
}

// step takes the sample of the interval that just ended and says whether
// to trim now, and why.
func (tr *trimmer) step(s memSample) (trim bool, why string) {
	busy := s.allocs-tr.last.allocs >= trimQuiet
	tr.last = s
	tr.dataPeak, tr.connsPeak = max(tr.dataPeak, s.dataBytes), max(tr.connsPeak, s.conns)
	switch {
	case tr.dataPeak-s.dataBytes >= trimMin:
		tr.pending = "the store released memory"
	case tr.connsPeak-s.conns >= trimConns:
		tr.pending = "connections closed"
	case busy:
		tr.pending = "a burst of allocation ended"
	}
	if busy {
		return false, ""
	}
	why = tr.pending
	if why == "a burst of allocation ended" && s.inUse+s.free < s.live+trimMin {
		why, tr.pending = "", "" // the collector already took it back
	}
	if why == "" && s.free > trimMin && s.free > s.inUse/trimFraction {
		why = "free memory"
	}
	if why == "" {
		return false, ""
	}
	tr.pending, tr.dataPeak, tr.connsPeak = "", s.dataBytes, s.conns
	return true, why
}

// Run runs a trimmer every interval until ctx ends. activity reports the
// bytes the store holds and the open connections.
func Run(ctx context.Context, log *slog.Logger, every time.Duration, activity func() (dataBytes int64, conns int)) {
	samples := []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var tr trimmer
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(samples)
		s := memSample{allocs: samples[0].Value.Uint64(), free: samples[1].Value.Uint64(),
			inUse: samples[2].Value.Uint64(), live: samples[3].Value.Uint64()}
		s.dataBytes, s.conns = activity()
		if trim, why := tr.step(s); trim {
			start := time.Now()
			procs.Borrow() // a collection's marking, off the loops' processors
			debug.FreeOSMemory()
			procs.Return()
			log.Debug("returned free memory to the OS", "why", why, "free", s.free, "heap_in_use", s.inUse, "took", time.Since(start))
		}
	}
}
