package main

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Issue 17 §1: while one client runs an op whose cost grows with its
// table (an lsort of 2M elements, an ltolist of 1M, a drop of a 1M-entry
// dict) or sends a 4 MiB request of tiny items, gets on another table by
// a client on the same event loop are not held up: the slow op runs on
// the worker pool (cyberdbd/internal/server/cost.go). Measured from a
// process of its own (startGetter), like TestHugeRequestDoesNotStallLoop.
//
// The daemon's collector (and under -race the detector) can pause every
// goroutine for a hundred milliseconds on a loaded machine, so a get's
// worst wait is judged against the slow op's own time (held, a get waits
// about all of it), or against 50 ms when the op itself is quick; the
// figures the issue sets as goals (p99 under 2 ms) come from the benchmark
// (README, "Slow operations"). Under -race the tables are a quarter of
// the size: filling them through a race-enabled daemon takes most of the
// time, and the ratio is what is judged.
func TestSlowOpsDoNotStallOthers(t *testing.T) {
	fastRaceExit(t)
	size := func(n int) int {
		if daemontest.Race {
			return n / 4
		}
		return n
	}
	d := daemontest.Start(t, "--io-loops=1")
	setup := daemontest.DialHello(t, d.Socket)
	setup.MustCall(t, nil, wire.OpCreateDict, "other", map[string]any{"k": "v"})

	// fill sends n values in chunks to an op that appends (lextend) or
	// updates (dupdate) the table.
	fill := func(op wire.Op, table string, n int, chunk func(from, to int) any) {
		for i := 0; i < n; i += 1 << 16 {
			setup.MustCall(t, nil, op, table, chunk(i, min(n, i+1<<16)))
		}
	}
	ints := func(from, to int) any {
		r := rand.New(rand.NewPCG(uint64(from), 1))
		v := make([]int64, to-from)
		for i := range v {
			v[i] = r.Int64N(1 << 40)
		}
		return v
	}
	pairs := func(from, to int) any {
		m := make(map[string]int, to-from)
		for i := from; i < to; i++ {
			m["key-"+itoa(i)] = i
		}
		return m
	}

	items := 4*mib - 64
	hugeBody := []byte{0x84, 0x01, byte(wire.OpCreateList), 0x61, 'H', 0x9a} // [1, create_list, "H", array(n)
	hugeBody = binary.BigEndian.AppendUint32(hugeBody, uint32(items))
	hugeBody = append(hugeBody, make([]byte, items)...) // n zeros
	huge := wire.AppendFrame(nil, hugeBody)

	cases := []struct {
		name  string
		setup func()
		run   func(c *daemontest.Conn) error
	}{
		{"lsort 2M", func() {
			setup.MustCall(t, nil, wire.OpCreateList, "sortme")
			fill(wire.OpLExtend, "sortme", size(2_000_000), ints)
		}, func(c *daemontest.Conn) error { return callLong(c, wire.OpLSort, "sortme") }},
		{"ltolist 1M", func() {
			setup.MustCall(t, nil, wire.OpCreateList, "readme")
			fill(wire.OpLExtend, "readme", size(1_000_000), ints)
		}, func(c *daemontest.Conn) error { return callLong(c, wire.OpLToList, "readme") }},
		{"drop 1M dict", func() {
			setup.MustCall(t, nil, wire.OpCreateDict, "dropme")
			fill(wire.OpDUpdate, "dropme", size(1_000_000), pairs)
		}, func(c *daemontest.Conn) error { return callLong(c, wire.OpDrop, "dropme") }},
		{"4 MiB request", func() {}, func(c *daemontest.Conn) error {
			if _, err := c.NetConn().Write(huge); err != nil {
				return err
			}
			return readLong(c)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			hog := daemontest.DialHello(t, d.Socket)
			p := startGetter(t, d.Socket, "other")
			time.Sleep(50 * time.Millisecond)
			start := time.Now()
			err := tc.run(hog)
			took := time.Since(start)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			time.Sleep(50 * time.Millisecond)
			p99, worst, n := p.finish(t)
			t.Logf("%s took %s; gets on another table meanwhile: p99 %s, worst %s (%d gets)",
				tc.name, took.Round(time.Millisecond), p99, worst, n)
			for _, name := range []string{"sortme", "readme", "H"} {
				_, _ = setup.Call(wire.OpDrop, name) // less heap for the next case
			}
			if worst >= took/3 && worst >= 50*time.Millisecond {
				t.Errorf("a get waited %s while %s took %s: the loop was held", worst, tc.name, took)
			}
		})
	}
}

// callLong is Conn.Call for a request that may take longer than its 10
// seconds (a race-enabled daemon on a loaded machine), the reply ignored.
func callLong(c *daemontest.Conn, op wire.Op, args ...any) error {
	if _, err := c.Send(op, args...); err != nil {
		return err
	}
	return readLong(c)
}

// readLong reads c's next reply within two minutes. Nothing is buffered
// in c's reader: replies come only when asked for, and the last was read.
func readLong(c *daemontest.Conn) error {
	_ = c.NetConn().SetReadDeadline(time.Now().Add(2 * time.Minute))
	body, err := wire.ReadFrame(c.NetConn(), nil, 1<<30)
	if err != nil {
		return err
	}
	r, err := wire.DecodeReply(body)
	if err == nil && r.Err != nil {
		err = r.Err
	}
	return err
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		if i /= 10; i == 0 {
			return string(b[n:])
		}
	}
}

// Issue 17 §1: under --fsync always, a read's reply does not wait for the
// fsyncs of other clients' writes on the same event loop. The daemon
// (built with failpoints) sleeps 200 ms before each fsync of its log, a
// slow disk; a writer keeps it busy with dsets, each waiting for its
// fsync, while a reader on the same loop reads another table. Before, the
// loop waited for each group commit with every reply of its round held,
// the reader's included: its p99 was about the fsync's time.
func TestReadsDoNotWaitForOthersFsync(t *testing.T) {
	fastRaceExit(t)
	const fsync = 200 * time.Millisecond
	t.Setenv("CYBERDB_FAILPOINT_SLEEP", "log-fsync="+fsync.String())
	d := daemontest.StartBinary(t, daemontest.FailpointBinary(t), "--io-loops=1", "--fsync=always", "--snapshot-interval=0")
	setup := daemontest.DialHello(t, d.Socket)
	setup.MustCall(t, nil, wire.OpCreateDict, "other", map[string]any{"k": "v"})
	setup.MustCall(t, nil, wire.OpCreateDict, "w")
	p := startGetter(t, d.Socket, "other")
	writer := daemontest.DialHello(t, d.Socket)
	start := time.Now()
	var writes int
	for time.Since(start) < 2*time.Second {
		writer.MustCall(t, nil, wire.OpDSet, "w", "k", writes)
		writes++
	}
	p99, worst, n := p.finish(t)
	t.Logf("%d writes in %s (fsync %s each); reads of another table meanwhile: p99 %s, worst %s (%d reads)",
		writes, time.Since(start).Round(time.Millisecond), fsync, p99, worst, n)
	if writes > 20 {
		t.Fatalf("%d writes in 2s: the fsync did not take %s", writes, fsync)
	}
	if p99 >= fsync/2 {
		t.Errorf("reads' p99 was %s with fsyncs of %s: they waited for the writer's fsyncs", p99, fsync)
	}
}
