package main

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// TestLeanProcs checks internal/procs in the real daemon: with one event
// loop on a machine of several CPUs, it runs with one processor while
// only the loop works, borrows them all while a slow request runs on
// the worker pool, and gives them back after.
func TestLeanProcs(t *testing.T) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		t.Skip("$GOMAXPROCS is set: the daemon keeps it (lean mode is off)")
	}
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: the daemon has one processor for its loop and one for its workers, never fewer")
	}
	d := daemontest.Start(t, "--io-loops=1")
	c := daemontest.DialHello(t, d.Socket)
	info := func() (procs, full, changes uint64) {
		t.Helper()
		var m map[string]any
		c.MustCall(t, &m, wire.OpInfo)
		get := func(k string) uint64 {
			v, ok := m[k].(uint64)
			if !ok {
				t.Fatalf("info %q = %#v, want an unsigned integer", k, m[k])
			}
			return v
		}
		return get("procs"), get("procs_full"), get("procs_changes")
	}
	waitLean := func(what string) uint64 {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			procs, full, changes := info()
			if procs == 1 && full >= 2 {
				return changes
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: info procs %d, procs_full %d 10 s on; want 1 processor of %d while only the loop works", what, procs, full, full)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	before := waitLean("idle")

	// An lsort of 300,000 integers is a slow request: the loop hands it
	// to a worker, which borrows the processors.
	c.MustCall(t, nil, wire.OpCreateList, "big")
	v := make([]int64, 300_000)
	for i := range v {
		v[i] = int64(len(v) - i)
	}
	c.MustCall(t, nil, wire.OpLExtend, "big", v)
	c.MustCall(t, nil, wire.OpLSort, "big")
	var first int64
	c.MustCall(t, &first, wire.OpLGet, "big", 0)
	if first != 1 {
		t.Fatalf("big[0] = %d after lsort, want 1", first)
	}
	after := waitLean("after the lsort")
	if after < before+2 {
		t.Fatalf("procs_changes went from %d to %d across a slow request: want its worker to borrow the processors (+1) and give them back (+1)", before, after)
	}
}
