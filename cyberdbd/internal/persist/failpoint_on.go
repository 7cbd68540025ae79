//go:build failpoints

package persist

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	fpName  string
	fpCount atomic.Int64

	// CYBERDB_FAILPOINT_SLEEP=name=duration: every pass through the point
	// called name sleeps that long first (a slow disk, for the tests of
	// what waits for an fsync and what must not).
	fpSleepName string
	fpSleep     time.Duration
)

func init() {
	if v := os.Getenv("CYBERDB_FAILPOINT_SLEEP"); v != "" {
		if i := strings.LastIndexByte(v, '='); i > 0 {
			if d, err := time.ParseDuration(v[i+1:]); err == nil {
				fpSleepName, fpSleep = v[:i], d
			}
		}
	}
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

// envFailpoint kills the process at the point CYBERDB_FAILPOINT names.
func envFailpoint(name string) {
	if fpSleepName == name {
		time.Sleep(fpSleep)
	}
	if fpName == name && fpCount.Add(-1) == 0 {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not instant: never return
	}
}
