// Package memlimit enforces cyberdbd's --max-memory: it watches the
// memory the daemon's data takes and tells the store when it is over the
// limit, so that writes that add data are refused (out_of_memory) and
// cache tables evict, while reads, deletes, drops and expiry go on.
//
// # What is measured
//
// Used memory is the heap the last garbage collection found live
// (runtime/metrics /gc/heap/live:bytes): the tables, their indexes and
// the connections' buffers, without the garbage not collected yet (which
// GOGC bounds) and without memory the runtime holds free. It is read every
// Interval and after each collection moves it, so a burst of writes can
// pass the limit by what it adds until the next collection; the guard also
// lowers the runtime's soft memory limit (debug.SetMemoryLimit) to the
// limit plus Headroom, so that collections come sooner as the heap nears
// it and the figure stays fresh. Like Redis's maxmemory, the limit is on
// the data, not on the process's RSS, which also counts the runtime's
// free memory and the Go runtime itself.
//
// # Default
//
// With no --max-memory, a daemon in a cgroup with a memory limit
// (systemd's MemoryMax=, a container's limit) takes DefaultShare of it,
// so that it refuses writes before the kernel's OOM killer ends it;
// elsewhere there is no limit.
package memlimit

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultShare is the part of the cgroup's memory limit taken when
// --max-memory is not given: the rest is for the runtime's garbage and
// free memory (GOGC), and snapshot encoding.
const DefaultShare = 0.5

// Interval is how often the guard reads the live heap.
const Interval = 50 * time.Millisecond

// Headroom is what the runtime's soft limit allows beyond the limit, as a
// fraction of it, for garbage between collections.
const Headroom = 0.5

// Target is what the guard tells when the daemon is over its limit.
type Target interface{ SetOverMemory(bool) }

// Guard watches the live heap against a limit.
type Guard struct {
	limit atomic.Int64
	used  atomic.Int64
	over  atomic.Bool
	read  func() int64 // the live heap; a test replaces it
}

// New returns a guard for limit bytes (0: none: it only reports used).
func New(limit int64) *Guard {
	g := &Guard{read: liveHeap}
	g.limit.Store(limit)
	return g
}

// Limit is the limit in bytes, 0 for none.
func (g *Guard) Limit() int64 { return g.limit.Load() }

// SetLimit changes the limit (a reload); the next check applies it.
func (g *Guard) SetLimit(limit int64) {
	g.limit.Store(limit)
	g.softLimit()
}

// softLimit lowers the runtime's soft memory limit to the limit plus
// Headroom (or lifts it, without a limit), unless $GOMEMLIMIT set one.
func (g *Guard) softLimit() {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if l := g.limit.Load(); l > 0 {
		debug.SetMemoryLimit(l + int64(float64(l)*Headroom))
	} else {
		debug.SetMemoryLimit(math.MaxInt64)
	}
}

// Used is the live heap as of the last reading.
func (g *Guard) Used() int64 { return g.used.Load() }

// Over reports whether the last reading was over the limit.
func (g *Guard) Over() bool { return g.over.Load() }

// Check reads the live heap now and tells t whether it is over the limit.
func (g *Guard) Check(t Target) {
	u := g.read()
	g.used.Store(u)
	l := g.limit.Load()
	over := l > 0 && u > l
	if g.over.Swap(over) != over || over {
		t.SetOverMemory(over)
	}
}

// Run checks every Interval until ctx ends (call Check once before, so
// that the first requests find the store told). With a limit it also
// lowers the runtime's soft memory limit to limit plus Headroom, unless
// $GOMEMLIMIT set one.
func (g *Guard) Run(ctx context.Context, t Target) {
	if g.limit.Load() > 0 {
		g.softLimit()
	}
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for {
		g.Check(t)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// liveHeap is the heap the last collection found live; before the first
// collection, the heap in use (garbage included), so that a daemon just
// started is not taken for empty.
func liveHeap() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	for _, x := range s {
		if x.Value.Kind() == metrics.KindUint64 && x.Value.Uint64() > 0 {
			return int64(x.Value.Uint64())
		}
	}
	return 0
}

// CgroupLimit returns the memory limit of the cgroup (v2) this process
// runs in, 0 when there is none or it cannot be read.
func CgroupLimit() int64 { return cgroupLimit("/proc/self/cgroup", "/sys/fs/cgroup") }

func cgroupLimit(self, root string) int64 {
	b, err := os.ReadFile(self)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		// cgroup v2: "0::/system.slice/cyberdbd.service"
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			// The nearest limit on the way up to the root applies.
			limit := int64(0)
			for dir := filepath.Join(root, rest); strings.HasPrefix(dir, root); dir = filepath.Dir(dir) {
				if v, err := os.ReadFile(filepath.Join(dir, "memory.max")); err == nil {
					if n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64); err == nil && (limit == 0 || n < limit) {
						limit = n
					}
				}
				if dir == root {
					break
				}
			}
			return limit
		}
	}
	return 0
}

// Default is the limit a daemon without --max-memory takes:
// DefaultShare of CgroupLimit, or 0 (none).
func Default() int64 { return int64(float64(CgroupLimit()) * DefaultShare) }
