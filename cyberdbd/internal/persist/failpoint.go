package persist

import "sync/atomic"

// Failpoints, for crash tests only. Every fsync and rename of this package
// is preceded by failpoint(name), which does nothing unless a test asked
// for it:
//
//   - In a binary built with the build tag failpoints (as bbolt builds its
//     gofail points only for its failpoint tests; daemontest builds such a
//     binary for the tests that need one), the environment variable
//     CYBERDB_FAILPOINT=name[:n], read once at start, makes the process
//     kill itself with SIGKILL the n-th time (1 by default) it reaches the
//     point called name: a real crash, with no deferred function run and
//     nothing flushed, at exactly that point (failpoint_on.go). A release
//     build ignores the variable (failpoint_off.go): an environment
//     variable must not be able to kill a production daemon. Such a
//     binary also reads CYBERDB_FAILPOINT_SLEEP=name=duration, and sleeps
//     that long at each pass through the point called name: a slow disk.
//   - A function set with setFailpoint by in-process tests is called with
//     each name.
//
// The points (see FailpointNames): log-fsync (before fsync of a log
// segment), log-create (before the fsync of a new segment and of the
// directory), manifest-fsync (before the fsync of a MANIFEST update),
// snapshot-fsync (before fsync of the new snapshot's temp file),
// snapshot-rename (before it replaces the old one), snapshot-dirsync
// (after the rename, before the directory fsync), log-remove (before
// segments no snapshot needs any more are removed) and recover-truncate
// (before a torn log tail is cut off at start).
var failpointHook atomic.Pointer[func(name string)]

// setFailpoint installs fn to be called at every failpoint (nil: none).
// For in-process tests.
func setFailpoint(fn func(name string)) {
	if fn == nil {
		failpointHook.Store(nil)
		return
	}
	failpointHook.Store(&fn)
}

// FailpointNames lists every failpoint, for tests.
var FailpointNames = []string{
	"log-fsync", "log-create", "manifest-fsync", "snapshot-fsync", "snapshot-rename", "snapshot-dirsync", "log-remove", "recover-truncate",
}

func failpoint(name string) {
	if f := failpointHook.Load(); f != nil {
		(*f)(name)
	}
	envFailpoint(name)
}
