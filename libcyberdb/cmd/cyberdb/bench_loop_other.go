//go:build !linux

package main

import "sync/atomic"

// runConns drives each connection from a goroutine of its own; Linux has
// an event loop instead (bench_loop_linux.go).
func runConns(conns []*benchConn, test string, cfg *benchConfig, remaining *atomic.Int64, val string) (h []uint64, n, errs int64, first string) {
	return runConnsGoroutines(conns, test, cfg, remaining, val)
}
