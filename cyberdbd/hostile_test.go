package main

// Hostile local clients (issue 12 §2, issue 19): what a client who may
// open the socket can make the real daemon hold, and whether the others
// are still served meanwhile. Memory is the daemon's VmRSS, read from
// /proc; latency is a well-behaved client's ping round trip.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

const mib = 1 << 20

// rss is the daemon's resident memory in bytes.
func rss(t *testing.T, d *daemontest.Daemon) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.Cmd.Process.Pid))
	if err != nil {
		t.Skipf("cannot read the daemon's memory: %v", err)
	}
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no VmRSS in /proc/%d/status", d.Cmd.Process.Pid)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

// pinger is a well-behaved client in a process of its own (the test
// binary, running TestPingHelper), so that the attack's goroutines in the
// test process do not delay it: it pings the daemon until finish.
type pinger struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   daemontest.Buffer // written by exec's goroutine
}

func startPinger(t *testing.T, socket string) *pinger {
	t.Helper()
	return startPingerEnv(t, socket)
}

// startGetter is startPinger with dget of key "k" in the dict table
// instead of ping: a client of a table, not only of the loop.
func startGetter(t *testing.T, socket, table string) *pinger {
	t.Helper()
	return startPingerEnv(t, socket, "CYBERDBD_TEST_PINGER_GET="+table)
}

func startPingerEnv(t *testing.T, socket string, env ...string) *pinger {
	t.Helper()
	p := &pinger{cmd: exec.Command(os.Args[0], "-test.run=^TestPingHelper$")}
	p.cmd.Env = append(append(os.Environ(), "CYBERDBD_TEST_PINGER="+socket), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stdin.Close(); _ = p.cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.output(), "PINGER started") { // connected, warmed up
		if time.Now().After(deadline) {
			t.Fatalf("the pinger did not start:\n%s", p.output())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return p
}

func (p *pinger) output() string { return p.out.String() }

// finish stops the pinger and returns its p99, its worst round trip and
// how many pings it made.
func (p *pinger) finish(t *testing.T) (p99, worst time.Duration, n int) {
	t.Helper()
	p.stdin.Close()
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("pinger: %v\n%s", err, p.output())
	}
	m := regexp.MustCompile(`PINGER p99=(\d+) worst=(\d+) n=(\d+)`).FindStringSubmatch(p.output())
	if m == nil {
		t.Fatalf("the pinger printed no result:\n%s", p.output())
	}
	a, _ := strconv.ParseInt(m[1], 10, 64)
	b, _ := strconv.ParseInt(m[2], 10, 64)
	n, _ = strconv.Atoi(m[3])
	if n < 20 {
		t.Fatalf("only %d pings answered", n)
	}
	return time.Duration(a), time.Duration(b), n
}

// TestPingHelper is the pinger's process: it pings $CYBERDBD_TEST_PINGER
// until its stdin closes, then prints the round trips.
func TestPingHelper(t *testing.T) {
	socket := os.Getenv("CYBERDBD_TEST_PINGER")
	if socket == "" {
		t.Skip("the well-behaved client of the hostile-client tests, run as a process of its own")
	}
	c := daemontest.DialHello(t, socket)
	call := func() error { _, err := c.Call(wire.OpPing); return err }
	if table := os.Getenv("CYBERDBD_TEST_PINGER_GET"); table != "" {
		call = func() error { _, err := c.Call(wire.OpDGet, table, "k"); return err }
	}
	for range 200 {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stop) }()
	fmt.Println("PINGER started")
	var rtts []time.Duration
	for {
		select {
		case <-stop:
			slices.Sort(rtts)
			fmt.Printf("PINGER p99=%d worst=%d n=%d\n", rtts[len(rtts)*99/100], rtts[len(rtts)-1], len(rtts))
			return
		default:
		}
		start := time.Now()
		if err := call(); err != nil {
			t.Fatalf("ping: %v", err)
		}
		rtts = append(rtts, time.Since(start))
		time.Sleep(time.Millisecond)
	}
}

// helloFrame is a HELLO request frame.
func helloFrame(id uint64) []byte {
	f, _ := wire.AppendRequest(nil, id, wire.OpHello, wire.ProtocolVersion, map[string]any{"client": "hostile"})
	return f
}

// dialMany opens n raw connections to the daemon's socket in parallel, each
// sending first (and reading the replies of) what send gives it.
func dialMany(t *testing.T, socket string, n int, send func(i int, nc net.Conn) error) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			nc, err := net.DialTimeout("unix", socket, 10*time.Second)
			if err == nil {
				conns[i] = nc
				_ = nc.SetDeadline(time.Now().Add(60 * time.Second)) // a hang fails, -race is slow
				err = send(i, nc)
			}
			if err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, nc := range conns {
			if nc != nil {
				nc.Close()
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return conns
}

// readReply reads one reply frame from r.
func readReply(r io.Reader) (wire.Reply, error) {
	body, err := wire.ReadFrame(r, nil, 64*mib)
	if err != nil {
		return wire.Reply{}, err
	}
	return wire.DecodeReply(body)
}

// Issue 12 §2.1, slowloris: waves of 1000 connections each announce a 16
// MiB request and send 6 bytes of it. Buffers grow with the bytes that
// arrive, so the daemon's RSS grows by less than 64 MiB, and a good
// client's pings keep a p99 under 10 ms meanwhile. (Before: each got a 16
// MiB buffer at once on the event loops; the first wave's pages were
// mostly never touched, but the next wave's came from the heap and were
// cleared, 16 MiB each.)
func TestSlowlorisMemory(t *testing.T) { forEachIOModel(t, testSlowlorisMemory) }

func testSlowlorisMemory(t *testing.T, ioModel string) {
	fastRaceExit(t)
	d := daemontest.Start(t, ioModel)
	good := daemontest.DialHello(t, d.Socket)
	p := startPinger(t, d.Socket)
	base := rss(t, d)
	const n, waves = 1000, 2
	start := time.Now()
	for wave := range waves {
		conns := dialMany(t, d.Socket, n, func(i int, nc net.Conn) error {
			b := helloFrame(1)
			b = binary.BigEndian.AppendUint32(b, 16*mib) // a 16 MiB frame...
			b = append(b, 0x83, 0x02)                    // ...of which 2 bytes come
			if _, err := nc.Write(b); err != nil {
				return err
			}
			r, err := readReply(nc)
			if err == nil && r.Err != nil {
				err = r.Err
			}
			return err
		})
		time.Sleep(300 * time.Millisecond) // the pings go on meanwhile
		if wave < waves-1 {
			for _, nc := range conns {
				nc.Close()
			}
		}
	}
	took := time.Since(start)
	grew := rss(t, d) - base
	p99, worst, pings := p.finish(t)
	t.Logf("%s: %d waves of %d connections announcing 16 MiB and sending 6 bytes (%s): RSS grew %.1f MiB; ping p99 %s, worst %s over %d pings",
		ioModel, waves, n, took.Round(time.Millisecond), float64(grew)/mib, p99, worst, pings)
	// The goals are the event loops' (the default); a goroutine per
	// connection meets them too, except under -race, whose goroutines cost
	// several times the memory and time (logged above). Under -race, which
	// makes every request several times slower, the loops' p99 may be 4
	// times the goal (9 ms seen there on a busy machine, 3-4 ms without).
	if ioModel == "--io-loops=0" && daemontest.Race {
		return
	}
	if grew >= 64*mib {
		t.Errorf("RSS grew by %.1f MiB, want < 64 MiB", float64(grew)/mib)
	}
	// Generous: other tests compile and run on the same 2 cores (a p99
	// of 12 ms was seen so); a held loop gives the attack's whole second.
	maxP99 := 50 * time.Millisecond
	if daemontest.Race {
		maxP99 *= 4
	}
	if p99 >= maxP99 {
		t.Errorf("ping p99 %s during the attack, want < %s", p99, maxP99)
	}
	var info map[string]any
	good.MustCall(t, &info, wire.OpInfo)
	if c, _ := info["connections"].(uint64); c < n {
		t.Errorf("info connections = %v, want the %d partial ones still open", info["connections"], n)
	}
}

// Issue 19.1: before a successful HELLO a frame may be 4 KiB, on the Unix
// socket and on TCP: 100 connections each sending a 16 MiB frame first get
// too_large at once and are closed, and raise RSS by less than 32 MiB.
// (Before: TCP read and kept each whole frame until the handshake
// time-out; the event loops made a 16 MiB buffer for each.)
func TestPreHelloFrameCap(t *testing.T) {
	fastRaceExit(t)
	dir := daemontest.ShortTempDir(t)
	pwFile := daemontest.WriteSecret(t, filepath.Join(dir, "pw"), tcpPassword)
	d := daemontest.Start(t, "--tcp=127.0.0.1:0", "--tcp-insecure", "--password-file="+pwFile)
	for _, network := range []string{"unix", "tcp"} {
		t.Run(network, func(t *testing.T) {
			addr := d.Socket
			if network == "tcp" {
				addr = d.TCPAddr(t)
			}
			big, _ := wire.AppendRequest(nil, 1, wire.OpPing, bytes.Repeat([]byte{'x'}, 16*mib-16))
			base := rss(t, d)
			const n = 100
			var wg sync.WaitGroup
			codes := make(chan error, n)
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					nc, err := net.DialTimeout(network, addr, 10*time.Second)
					if err != nil {
						codes <- err
						return
					}
					defer nc.Close()
					_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
					go func() { _, _ = nc.Write(big) }() // fails once the daemon closes
					r, err := readReply(nc)
					switch {
					case err != nil:
						codes <- err
					case r.ID != 0 || r.Code != wire.CodeTooLarge || !strings.Contains(r.Err.Message, "before a successful HELLO"):
						codes <- fmt.Errorf("got %+v, want [0, too_large, ...before a successful HELLO...]", r)
					default:
						if _, err := readReply(nc); err == nil {
							codes <- errors.New("not closed after too_large")
							return
						}
						codes <- nil
					}
				}()
			}
			wg.Wait()
			close(codes)
			for err := range codes {
				if err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(300 * time.Millisecond)
			grew := rss(t, d) - base
			t.Logf("%s: %d pre-HELLO connections sending a 16 MiB frame: RSS grew %.1f MiB", network, n, float64(grew)/mib)
			if grew >= 32*mib {
				t.Errorf("RSS grew by %.1f MiB, want < 32 MiB", float64(grew)/mib)
			}
		})
	}
	// A HELLO pipelined with a big request is fine: the cap ends with HELLO.
	c := daemontest.Dial(t, d.Socket)
	b := helloFrame(1)
	b, _ = wire.AppendRequest(b, 2, wire.OpPing, bytes.Repeat([]byte{'y'}, 1*mib))
	if _, err := c.NetConn().Write(b); err != nil {
		t.Fatal(err)
	}
	for id := range uint64(2) {
		if r, err := c.Read(); err != nil || r.ID != id+1 || r.Err != nil {
			t.Fatalf("reply %d: %+v, %v", id+1, r, err)
		}
	}
}

// Issue 12 §2.2: 16 connections pipeline 16 MiB requests (whose replies
// are as big) and never read. Past the output limit's soft size for its
// time they are closed and logged, and the daemon lets their memory go.
// (Before: they stayed until the 30 s write time-out, 514 MiB held.)
func TestClientsThatNeverRead(t *testing.T) { forEachIOModel(t, testClientsThatNeverRead) }

func testClientsThatNeverRead(t *testing.T, ioModel string) {
	fastRaceExit(t)
	d := daemontest.Start(t, ioModel, "--output-limit=64MiB,4MiB,1s", "--max-output-memory=0")
	good := daemontest.DialHello(t, d.Socket)
	req, _ := wire.AppendRequest(nil, 2, wire.OpPing, bytes.Repeat([]byte{'z'}, 16*mib-64))
	const n = 16
	start := time.Now()
	conns := dialMany(t, d.Socket, n, func(i int, nc net.Conn) error {
		if _, err := nc.Write(helloFrame(1)); err != nil {
			return err
		}
		if _, err := readReply(nc); err != nil {
			return err
		}
		go func() { // never reads
			for range 4 {
				if _, err := nc.Write(req); err != nil {
					return
				}
			}
		}()
		return nil
	})
	_ = conns
	var info map[string]any
	// Without the output limit they stay until the 30 s write time-out;
	// 20 s leaves room for -race on a loaded machine.
	deadline := time.Now().Add(20 * time.Second)
	for {
		good.MustCall(t, &info, wire.OpInfo)
		if info["connections"] == uint64(1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v connections still open after 20s, want only the good one\n%s", info["connections"], d.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%s: %d clients that never read closed within %s", ioModel, n, time.Since(start).Round(time.Millisecond))
	if !strings.Contains(d.Output(), "closing connection: the client does not read its replies") {
		t.Errorf("no warning logged:\n%s", d.Output())
	}
	// Their memory goes: the heap comes back down.
	waitHeapBelow(t, d, good, 64*mib)
}

// waitHeapBelow makes the daemon allocate a little (so that its collector
// runs) until its live heap (info heap_bytes) is under limit.
func waitHeapBelow(t *testing.T, d *daemontest.Daemon, c *daemontest.Conn, limit uint64) {
	t.Helper()
	// Over what a connection keeps between requests (1 MiB), so that each
	// costs the daemon new buffers and its collector runs.
	churn := bytes.Repeat([]byte{'c'}, 2*mib)
	deadline := time.Now().Add(20 * time.Second)
	var heap uint64
	for time.Now().Before(deadline) {
		for range 4 {
			c.MustCall(t, nil, wire.OpPing, churn)
		}
		var info map[string]any
		c.MustCall(t, &info, wire.OpInfo)
		heap, _ = info["heap_bytes"].(uint64)
		if heap < limit {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("the daemon's heap stayed at %.1f MiB, want < %.0f MiB: memory of closed or idle connections is kept",
		float64(heap)/mib, float64(limit)/mib)
}

// Issue 19.6: after 20 connections each sent a 16 MiB request, half of
// them closed and half idle, the daemon keeps none of those buffers: its
// heap comes back under 64 MiB. (Before: the event loop's lists and the
// argument slots still pointed to them; a goroutine's connection kept
// its grown buffer while idle.)
func TestConnectionsReleaseBuffers(t *testing.T) {
	forEachIOModel(t, testConnectionsReleaseBuffers)
}

func testConnectionsReleaseBuffers(t *testing.T, ioModel string) {
	fastRaceExit(t)
	d := daemontest.Start(t, ioModel)
	good := daemontest.DialHello(t, d.Socket)
	payload := bytes.Repeat([]byte{'r'}, 16*mib-64)
	const n = 20
	conns := dialMany(t, d.Socket, n, func(i int, nc net.Conn) error {
		b := helloFrame(1)
		b, _ = wire.AppendRequest(b, 2, wire.OpPing, payload)
		go func() { _, _ = nc.Write(b) }()
		for range 2 {
			r, err := readReply(nc)
			if err == nil && r.Err != nil {
				err = r.Err
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	for _, nc := range conns[:n/2] {
		nc.Close()
	}
	waitHeapBelow(t, d, good, 64*mib)
}

// Issue 12 §2.3: one legal 4 MiB request of tiny items (a million and more
// to decode and store) does not hold up the other connections of its
// event loop: it runs off the loop, and the loop serves pings meanwhile.
// (Before: the loop was held for the whole request, 0.6 s and more.)
func TestHugeRequestDoesNotStallLoop(t *testing.T) {
	fastRaceExit(t)
	d := daemontest.Start(t, "--io-loops=1")
	good := daemontest.DialHello(t, d.Socket)
	for range 100 {
		good.MustCall(t, nil, wire.OpPing)
	}
	items := 4*mib - 64
	body := []byte{0x84, 0x01, byte(wire.OpCreateList), 0x61, 'L', 0x9a} // [1, create_list, "L", array(n)
	body = binary.BigEndian.AppendUint32(body, uint32(items))
	body = append(body, make([]byte, items)...) // n zeros: 0, 0, 0, ...
	big := wire.AppendFrame(nil, body)
	hog := daemontest.DialHello(t, d.Socket)
	p := startPinger(t, d.Socket)
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if _, err := hog.NetConn().Write(big); err != nil {
		t.Fatal(err)
	}
	err := readLong(hog) // a race-enabled daemon on a loaded machine took over Read's 10 s
	took := time.Since(start)
	if err != nil {
		t.Fatalf("the big request: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	p99, worst, pings := p.finish(t)
	t.Logf("a 4 MiB request of %d items took %s; pings on the same loop meanwhile: p99 %s, worst %s (%d pings)",
		items, took.Round(time.Millisecond), p99, worst, pings)
	// Held, a ping waits about the whole request. The daemon's collector
	// (and under -race the detector) can pause every goroutine for a
	// hundred milliseconds on a loaded machine, so only the ratio is
	// judged here; the latency figures come from benchmarks.
	if worst >= took/3 {
		t.Errorf("a ping waited %s while the big request took %s: the loop was held", worst, took)
	}
	var n int
	good.MustCall(t, &n, wire.OpLLen, "L")
	if n != items {
		t.Fatalf("llen = %d, want %d", n, items)
	}
}

// Issue 12 §2.1: a connection that keeps a partial request open past
// --partial-timeout gets an idle_timeout frame and is closed; one that
// sends a frame slowly but within the time-out is served.
func TestPartialTimeout(t *testing.T) { forEachIOModel(t, testPartialTimeout) }

func testPartialTimeout(t *testing.T, ioModel string) {
	const timeout = 1500 * time.Millisecond
	d := daemontest.Start(t, ioModel, "--partial-timeout="+timeout.String())
	slow := daemontest.DialHello(t, d.Socket)
	start := time.Now()
	if _, err := slow.NetConn().Write([]byte{0, 0, 1, 0, 0x83}); err != nil { // 1 byte of 256
		t.Fatal(err)
	}
	r, err := slow.Read()
	took := time.Since(start)
	if err != nil || r.ID != 0 || r.Code != wire.CodeIdleTimeout || !strings.Contains(r.Err.Message, "--partial-timeout") {
		t.Fatalf("got %+v, %v; want [0, idle_timeout, ...--partial-timeout...]", r, err)
	}
	if took < timeout-time.Second-100*time.Millisecond {
		t.Errorf("closed after %s, before the %s time-out", took, timeout)
	}
	if _, err := slow.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the frame: %v, want EOF", err)
	}
	// Slow but in time: frames whose halves come 100 ms apart.
	ok := daemontest.DialHello(t, d.Socket)
	for i := range 3 {
		f, _ := wire.AppendRequest(nil, uint64(10+i), wire.OpPing, "half and half")
		for _, part := range [][]byte{f[:3], f[3:]} {
			if _, err := ok.NetConn().Write(part); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if r, err := ok.Read(); err != nil || r.ID != uint64(10+i) || r.Err != nil {
			t.Fatalf("slow frame %d: %+v, %v", i, r, err)
		}
	}
}

// Issue 12 §2.1: requests still arriving share --max-partial-memory. Three
// clients send 16 MiB requests in halves with a 32 MiB budget: the third
// waits (is not read) until the others are done, then completes; none is
// refused and nothing is mixed up.
func TestPartialMemoryBudget(t *testing.T) { forEachIOModel(t, testPartialMemoryBudget) }

func testPartialMemoryBudget(t *testing.T, ioModel string) {
	fastRaceExit(t)
	d := daemontest.Start(t, ioModel, "--max-partial-memory=32MiB", "--partial-timeout=60s")
	const n = 3
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		req, _ := wire.AppendRequest(nil, 2, wire.OpPing, bytes.Repeat([]byte{byte('a' + i)}, 16*mib-64))
		c := daemontest.DialHello(t, d.Socket)
		wg.Add(1)
		go func() {
			defer wg.Done()
			go func() { // in halves, the daemon holding the first meanwhile
				_ = c.NetConn().SetWriteDeadline(time.Now().Add(30 * time.Second))
				if _, err := c.NetConn().Write(req[:len(req)/2]); err != nil {
					return
				}
				time.Sleep(300 * time.Millisecond)
				_, _ = c.NetConn().Write(req[len(req)/2:])
			}()
			r, err := c.Read()
			switch {
			case err != nil:
				errs <- err
			case r.Err != nil:
				errs <- r.Err
			default:
				var got []byte
				if err := wire.Unmarshal(r.Result, &got); err != nil || len(got) != 16*mib-64 || got[0] != byte('a'+i) {
					errs <- fmt.Errorf("connection %d: wrong echo (%d bytes, %v)", i, len(got), err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Issue 11 §4 and 19.8: info's per-op counts count the requests of
// authenticated connections only, each op by its own number, and op
// numbers no op has as "unknown". Ops above 65535 before HELLO get
// handshake, as PROTOCOL.md's order of checks says.
func TestInfoOpCounts(t *testing.T) {
	d := daemontest.Start(t)
	pre := daemontest.Dial(t, d.Socket)
	for _, op := range []wire.Op{wire.OpPing, wire.OpDGet, 258} {
		_, err := pre.Call(op)
		wantCode(t, err, wire.CodeHandshake)
	}
	big := wire.AppendFrame(nil, []byte{0x82, 0x07, 0x1a, 0x00, 0x01, 0x11, 0x70}) // [7, 70000]
	if _, err := pre.NetConn().Write(big); err != nil {
		t.Fatal(err)
	}
	if r, err := pre.Read(); err != nil || r.ID != 7 || r.Code != wire.CodeHandshake {
		t.Fatalf("op 70000 before HELLO: %+v, %v; want handshake", r, err)
	}

	c := daemontest.DialHello(t, d.Socket)
	for range 5 {
		_, err := c.Call(258)
		wantCode(t, err, wire.CodeUnknownOp)
	}
	if _, err := c.NetConn().Write(big); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Read(); err != nil || r.Code != wire.CodeUnknownOp {
		t.Fatalf("op 70000 after HELLO: %+v, %v; want unknown_op", r, err)
	}
	c.MustCall(t, nil, wire.OpPing)
	var info struct {
		Ops map[string]uint64 `cbor:"ops"`
	}
	c.MustCall(t, &info, wire.OpInfo)
	ops := info.Ops
	want := map[string]uint64{"hello": 1, "ping": 1, "unknown": 6}
	// The readiness probe's HELLO may be counted too, and info counts
	// itself once it has run: compare what this test controls.
	for k, v := range want {
		if k == "hello" {
			if ops[k] < 1 {
				t.Errorf("ops[hello] = %v, want at least 1", ops[k])
			}
			continue
		}
		if ops[k] != v {
			t.Errorf("ops[%v] = %v, want %v (all ops: %v)", k, ops[k], v, ops)
		}
	}
	if _, ok := ops["dget"]; ok {
		t.Errorf("ops counts dget, sent only before HELLO: %v", ops)
	}
}

// Issue 12 §2.4 and 19.7: the warnings a flood of hostile connections
// provokes are limited to a few lines a second per cause, and a line that
// gets through says how many were suppressed.
func TestWarningsAreRateLimited(t *testing.T) {
	fastRaceExit(t)
	d := daemontest.Start(t, "--max-conns=3")
	keep := daemontest.DialHello(t, d.Socket)
	waitFor(t, func() bool {
		var info map[string]any
		keep.MustCall(t, &info, wire.OpInfo)
		return info["connections"] == uint64(1)
	})
	flood := func(n int, send []byte) {
		for range n {
			nc, err := net.Dial("unix", d.Socket)
			if err != nil {
				continue
			}
			if send != nil {
				_, _ = nc.Write(send)
			}
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.Copy(io.Discard, nc)
			nc.Close()
		}
	}
	// Oversized frames (one connection slot each, in turn), then too many
	// connections: two held open, the rest refused.
	start := time.Now()
	flood(300, []byte{0xff, 0xff, 0xff, 0xff})
	hold := []*daemontest.Conn{daemontest.DialHello(t, d.Socket), daemontest.DialHello(t, d.Socket)}
	flood(300, nil)
	secs := time.Since(start).Seconds()
	time.Sleep(1100 * time.Millisecond) // a new window: one more line of each reports the rest
	flood(1, nil)
	for _, c := range hold {
		c.Close()
	}
	waitFor(t, func() bool {
		var info map[string]any
		keep.MustCall(t, &info, wire.OpInfo)
		return info["connections"] == uint64(1)
	})
	flood(1, []byte{0xff, 0xff, 0xff, 0xff})
	msgs := []string{"frame too large before HELLO; closing connection", "connection refused: too many connections"}
	summary := func(msg string) *regexp.Regexp {
		return regexp.MustCompile(regexp.QuoteMeta(msg) + `".* suppressed_since_last=\d+`)
	}
	deadline := time.Now().Add(5 * time.Second) // the daemon's output comes through a pipe
	for time.Now().Before(deadline) && !(summary(msgs[0]).MatchString(d.Output()) && summary(msgs[1]).MatchString(d.Output())) {
		time.Sleep(20 * time.Millisecond)
	}
	out := d.Output()
	for _, msg := range msgs {
		lines := strings.Count(out, `msg="`+msg+`"`)
		max := 10 * (int(secs) + 3)
		t.Logf("%q: %d lines for 301 events in %.1fs", msg, lines, secs+1.1)
		if lines == 0 || lines > max {
			t.Errorf("%q logged %d times for 301 events, want 1..%d", msg, lines, max)
		}
		if !summary(msg).MatchString(out) {
			t.Errorf("%q: no line says how many were suppressed:\n%s", msg, out)
		}
	}
}
