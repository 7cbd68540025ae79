package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// TestMemoryReturnedAfterDrop measures the real daemon's RSS (a build
// without -race, whose shadow memory would swamp the figures) before and
// after loading 1M entries (16-byte keys, 32-byte values), and after
// dropping them, then after loading them again and clearing them with
// dclear: each time, once the daemon is quiet, the memory must go back to
// the OS within a few seconds (issue 12, §3), not after Go's forced
// collection two minutes later.
func TestMemoryReturnedAfterDrop(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 1M entries")
	}
	bin := daemontest.Build(t, daemontest.BuildOptions{NoRace: true})
	d := daemontest.StartBinary(t, bin, "--appendonly=false", "--snapshot-interval=0")
	pid := d.Cmd.Process.Pid
	c := daemontest.DialHello(t, d.Socket)
	const entries, per = 1_000_000, 10_000
	batches := make([]wire.Raw, entries/per)
	for b := range batches {
		pairs := wire.AppendArrayHeader(nil, per)
		for i := b * per; i < (b+1)*per; i++ {
			pairs = wire.AppendArrayHeader(pairs, 2)
			pairs = wire.AppendText(pairs, fmt.Sprintf("key:%012d", i))
			pairs = wire.AppendText(pairs, fmt.Sprintf("value:%026d", i))
		}
		batches[b] = pairs
	}
	load := func(table string) {
		c.MustCall(t, nil, wire.OpCreateDict, table)
		for _, pairs := range batches {
			c.MustCall(t, nil, wire.OpDUpdate, table, pairs)
		}
	}
	before := rssMiB(t, pid)
	for _, step := range []struct {
		name  string
		table string
		free  func()
	}{
		{"drop", "a", func() { c.MustCall(t, nil, wire.OpDrop, "a") }},
		{"dclear", "b", func() { c.MustCall(t, nil, wire.OpDClear, "b") }},
	} {
		load(step.table)
		loaded := rssMiB(t, pid)
		if loaded < before+50 {
			t.Fatalf("%s: RSS %.0f MiB before, %.0f MiB with 1M entries: the load did not take the memory it should", step.name, before, loaded)
		}
		step.free()
		start := time.Now()
		after := settle(t, pid, before)
		limit := before + 40
		t.Logf("%s: RSS %.0f MiB before loading, %.0f MiB with 1M entries, %.0f MiB %.1fs after the %s",
			step.name, before, loaded, after, time.Since(start).Seconds(), step.name)
		if after > limit {
			t.Fatalf("%s: RSS still %.0f MiB %.0fs after the %s of 1M entries (%.0f MiB before loading them, %.0f MiB loaded)",
				step.name, after, time.Since(start).Seconds(), step.name, before, loaded)
		}
	}
}

// TestMemoryReturnedAfterClientsLeave: 200 clients each send most of a
// 1 MiB request and stop; the daemon (a goroutine per connection) holds
// their buffers. Once they disconnect, the memory goes back to the OS
// within a few seconds: nothing allocates on a quiet daemon, so without
// the trimmer nothing would collect it for two minutes.
func TestMemoryReturnedAfterClientsLeave(t *testing.T) {
	bin := daemontest.Build(t, daemontest.BuildOptions{NoRace: true})
	d := daemontest.StartBinary(t, bin, "--appendonly=false", "--io-loops=0")
	pid := d.Cmd.Process.Pid
	before := rssMiB(t, pid)
	var conns []*daemontest.Conn
	for range 200 {
		c := daemontest.DialHello(t, d.Socket)
		frame := make([]byte, 1<<20-100)
		binary.BigEndian.PutUint32(frame, 1<<20) // announces 1 MiB, sends less
		if _, err := c.NetConn().Write(frame); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	c := daemontest.DialHello(t, d.Socket) // a round trip: the daemon has read what was sent
	c.MustCall(t, nil, wire.OpPing)
	held := rssMiB(t, pid)
	if held < before+50 {
		t.Skipf("the daemon held only %.0f MiB more for 200 partial requests of 1 MiB (a budget for them?): nothing to measure", held-before)
	}
	for _, c := range conns {
		c.Close()
	}
	start := time.Now()
	after := settle(t, pid, before)
	limit := before + 40
	t.Logf("RSS %.0f MiB before, %.0f MiB with 200 partial requests of 1 MiB, %.0f MiB %.1fs after the clients left",
		before, held, after, time.Since(start).Seconds())
	if after > limit {
		t.Fatalf("RSS still %.0f MiB %.0fs after 200 clients with partial 1 MiB requests left (%.0f MiB before they came, %.0f MiB while they were there)",
			after, time.Since(start).Seconds(), before, held)
	}
}

// settle waits up to 10s for the RSS of pid to come back to within 16
// MiB of before (the runtime keeps some), and returns the last figure.
// The goal is a few seconds; the tests allow 10s and 40 MiB, for a loaded
// test machine.
func settle(t *testing.T, pid int, before float64) float64 {
	start := time.Now()
	for {
		rss := rssMiB(t, pid)
		if rss <= before+16 || time.Since(start) > 10*time.Second {
			return rss
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rssMiB is the resident set size of process pid.
func rssMiB(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc to read RSS from: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kib, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return kib / 1024
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
