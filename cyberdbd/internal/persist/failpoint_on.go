//go:build failpoints

package persist

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

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

// envFailpoint kills the process at the point CYBERDB_FAILPOINT names.
func envFailpoint(name string) {
	if fpName == name && fpCount.Add(-1) == 0 {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not instant: never return
	}
}
