package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"

	flag "github.com/spf13/pflag"
)

// memConfig is what the memory flags decide. It is embedded in config.
type memConfig struct {
	gcPercent int
	keepGOGC  bool // $GOGC is set and --gc-percent is not: leave the runtime's setting
}

// DefaultGCPercent is the daemon's GOGC unless --gc-percent or $GOGC says
// otherwise. Go's default, 100, lets the heap grow to twice the live data
// before collecting; for a database whose heap is almost all long-lived
// table data that doubles its memory for nothing. A collection here costs
// little and is rare: gets and sets allocate next to nothing (keys and
// values are carved from shared chunks, store/kvarena.go), so what triggers
// collections is table growth, and marking is cheap because those chunks
// hold no pointers. 50 keeps the headroom at half the live data, for a few
// percent of CPU under write-heavy load.
const DefaultGCPercent = 50

// addMemFlags registers --gc-percent.
func addMemFlags(fs *flag.FlagSet, cfg *config) {
	fs.IntVar(&cfg.gcPercent, "gc-percent", DefaultGCPercent, "the garbage collector's `percent` (GOGC): how far the heap may grow past the live data before a collection; lower saves memory, higher saves CPU; -1 turns the collector off. $GOGC, when set, replaces the default; $GOMEMLIMIT sets a soft memory limit")
}

// finishMemFlags checks the memory flags.
func finishMemFlags(fs *flag.FlagSet, cfg *config) error {
	cfg.keepGOGC = os.Getenv("GOGC") != "" && !fs.Changed("gc-percent")
	if cfg.gcPercent < -1 {
		return fmt.Errorf("--gc-percent %d: want a percentage, or -1 to turn the collector off", cfg.gcPercent)
	}
	return nil
}

// setupMemory applies --gc-percent and returns memory to the operating
// system after bursts of growth until ctx ends (see trimMemory).
func setupMemory(ctx context.Context, cfg *config, log *slog.Logger) {
	if !cfg.keepGOGC {
		debug.SetGCPercent(cfg.gcPercent)
	}
	go trimMemory(ctx, log, time.Second)
}

// Memory is returned to the OS when this much of the heap is free (and at
// least trimFraction of the memory in use), and the daemon is quiet: it
// allocated less than trimQuiet in the last interval.
const (
	trimMin      = 16 << 20
	trimFraction = 8 // free > in use / 8
	trimQuiet    = 8 << 20
)

// trimMemory returns the heap's free memory to the operating system once a
// burst of growth (a bulk load, a big table dropped) is over. Go's
// scavenger returns free memory slowly and keeps some, so after loading a
// million entries the daemon would otherwise keep the memory the load
// went through (old copies of grown tables, collected garbage) for good.
// While the daemon keeps allocating, the collector reuses that memory and
// nothing is done: trimming costs a full collection.
func trimMemory(ctx context.Context, log *slog.Logger, every time.Duration) {
	samples := []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var lastAllocs uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(samples)
		allocs, free, inUse := samples[0].Value.Uint64(), samples[1].Value.Uint64(), samples[2].Value.Uint64()
		quiet := allocs-lastAllocs < trimQuiet
		lastAllocs = allocs
		if quiet && free > trimMin && free > inUse/trimFraction {
			start := time.Now()
			debug.FreeOSMemory()
			log.Debug("returned free memory to the OS", "bytes", free, "heap_in_use", inUse, "took", time.Since(start))
		}
	}
}
