package persist

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Failpoints, for crash tests only. Every fsync and rename of this package
// is preceded by failpoint(name), which does nothing unless a test asked
// for it:
//
//   - The environment variable CYBERDB_FAILPOINT=name[:n], read once at
//     start, makes the process kill itself with SIGKILL the n-th time (1 by
//     default) it reaches the point called name: a real crash, with no
//     deferred function run and nothing flushed, at exactly that point.
//   - A function set with SetFailpoint by in-process tests is called with
//     each name.
//
// The points (see FailpointNames): log-fsync (before fsync of a log
// segment), log-create (before the fsync of a new segment and of the
// directory), snapshot-fsync (before fsync of the new snapshot's temp
// file), snapshot-rename (before it replaces the old one), snapshot-dirsync
// (after the rename, before the directory fsync), log-remove (before
// segments covered by a durable snapshot are removed) and
// recover-truncate (before a torn log tail is cut off at start).
var failpointHook atomic.Pointer[func(name string)]

// SetFailpoint installs fn to be called at every failpoint (nil: none).
// For tests.
func SetFailpoint(fn func(name string)) {
	if fn == nil {
		failpointHook.Store(nil)
		return
	}
	failpointHook.Store(&fn)
}

// FailpointNames lists every failpoint, for tests.
var FailpointNames = []string{
	"log-fsync", "log-create", "snapshot-fsync", "snapshot-rename", "snapshot-dirsync", "log-remove", "recover-truncate",
}

var (
	fpName  string
	fpCount atomic.Int64
)

func init() {
	v := os.Getenv("CYBERDB_FAILPOINT")
	if v == "" {
		return
	}
	name, n := v, int64(1)
	if i := strings.LastIndexByte(v, ':'); i >= 0 {
		if k, err := strconv.ParseInt(v[i+1:], 10, 64); err == nil && k > 0 {
			name, n = v[:i], k
		}
	}
	fpName = name
	fpCount.Store(n)
}

func failpoint(name string) {
	if f := failpointHook.Load(); f != nil {
		(*f)(name)
	}
	if fpName == name && fpCount.Add(-1) == 0 {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not instant: never return
	}
}
