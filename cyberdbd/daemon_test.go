package main

// Integration tests: each starts the real cyberdbd binary on a temp socket
// and talks to it over the real protocol.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// TestMain removes the binaries the tests built when they end.
func TestMain(m *testing.M) { daemontest.Main(m) }

func wantCode(t *testing.T, err error, code wire.Code) {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
}

func TestHandshakeRequired(t *testing.T) {
	d := daemontest.Start(t)
	c := daemontest.Dial(t, d.Socket)
	_, err := c.Call(wire.OpPing)
	wantCode(t, err, wire.CodeHandshake)
	_, err = c.Call(wire.OpHello, 99)
	wantCode(t, err, wire.CodeHandshake)
	if _, err := c.Hello(); err != nil {
		t.Fatal(err)
	}
	_, err = c.Hello()
	wantCode(t, err, wire.CodeHandshake)
	var pong string
	c.MustCall(t, &pong, wire.OpPing)
	if pong != "PONG" {
		t.Fatalf("ping = %q", pong)
	}
}

func TestBasicRoundTrip(t *testing.T) {
	d := daemontest.Start(t)
	c := daemontest.DialHello(t, d.Socket)
	c.MustCall(t, nil, wire.OpCreateDict, "centre")
	c.MustCall(t, nil, wire.OpDSet, "centre", "content", "Hello CyberDB!")
	var s string
	c.MustCall(t, &s, wire.OpDGet, "centre", "content")
	if s != "Hello CyberDB!" {
		t.Fatalf("got %q", s)
	}
	_, err := c.Call(wire.OpDGet, "centre", "missing")
	wantCode(t, err, wire.CodeKeyNotFound)
	var info map[string]any
	c.MustCall(t, &info, wire.OpInfo)
	if info["tables"] != uint64(1) || info["connections"] == nil || info["version"] == nil {
		t.Fatalf("info = %v", info)
	}
}

// A body that fails to decode inside a well-formed frame gets an error
// reply and leaves the connection usable; replies stay in request order.
func TestBadBodiesKeepConnection(t *testing.T) {
	d := daemontest.Start(t)
	c := daemontest.DialHello(t, d.Socket)
	nc := c.NetConn()
	bodies := [][]byte{
		{0xff},                         // not CBOR
		{0x82, 0x01},                   // truncated array
		{0x61, 'x'},                    // not an array
		{0x82, 0x05, 0x19, 0x03, 0xe7}, // unknown op 999
		append([]byte{0x83, 0x06, 0x02}, append(bytes.Repeat([]byte{0x81}, 80), 0x01)...), // nesting
		{0x84, 0x07, 20, 0x61, 't'}, // truncated inside
	}
	want := []wire.Code{wire.CodeBadRequest, wire.CodeBadRequest, wire.CodeBadRequest, wire.CodeUnknownOp, wire.CodeTooLarge, wire.CodeBadRequest}
	var stream []byte
	for _, b := range bodies {
		stream = wire.AppendFrame(stream, b)
	}
	stream = append(stream, 0, 0, 0, 0) // empty frame
	if _, err := nc.Write(stream); err != nil {
		t.Fatal(err)
	}
	for i, code := range append(want, wire.CodeBadRequest) {
		r, err := c.Read()
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if r.Code != code {
			t.Fatalf("reply %d: code %s (%v), want %s", i, r.Code, r.Err, code)
		}
	}
	if _, err := c.Call(wire.OpPing); err != nil {
		t.Fatalf("connection unusable after bad bodies: %v", err)
	}
}

func TestOversizedFrameClosesConnection(t *testing.T) {
	d := daemontest.Start(t, "--max-frame=1KiB")
	c := daemontest.DialHello(t, d.Socket)
	if _, err := c.NetConn().Write(binary.BigEndian.AppendUint32(nil, 0xffffffff)); err != nil {
		t.Fatal(err)
	}
	r, err := c.Read()
	if err != nil || r.Code != wire.CodeTooLarge || r.ID != 0 {
		t.Fatalf("reply %+v, %v; want id 0 too_large", r, err)
	}
	if _, err := c.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("after too_large: %v, want EOF", err)
	}
	// A frame just over the limit, with its body sent.
	c2 := daemontest.DialHello(t, d.Socket)
	big, _ := wire.AppendRequest(nil, 1, wire.OpPing, strings.Repeat("x", 1100))
	_, _ = c2.NetConn().Write(big)
	if r, err := c2.Read(); err != nil || r.Code != wire.CodeTooLarge {
		t.Fatalf("reply %+v, %v", r, err)
	}
}

func TestTooManyConnections(t *testing.T) {
	d := daemontest.Start(t, "--max-conns=3")
	keep := []*daemontest.Conn{daemontest.DialHello(t, d.Socket)}
	// The readiness probe's connection may still be closing: wait until
	// ours is the only one.
	waitFor(t, func() bool {
		var info map[string]any
		keep[0].MustCall(t, &info, wire.OpInfo)
		return info["connections"] == uint64(1)
	})
	for range 2 {
		keep = append(keep, daemontest.DialHello(t, d.Socket))
	}
	extra := daemontest.Dial(t, d.Socket)
	r, err := extra.Read()
	if err != nil || r.Code != wire.CodeTooManyConns || r.ID != 0 {
		t.Fatalf("extra connection got %+v, %v; want too_many_connections", r, err)
	}
	if _, err := extra.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("extra connection not closed: %v", err)
	}
	// Closing one frees its slot.
	keep[0].Close()
	waitFor(t, func() bool {
		c := daemontest.Dial(t, d.Socket)
		defer c.Close()
		_, err := c.Hello()
		return err == nil
	})
	for _, c := range keep[1:] {
		if _, err := c.Call(wire.OpPing); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatal("condition not met within 5s")
}

func TestIdleTimeout(t *testing.T) { forEachIOModel(t, testIdleTimeout) }

func testIdleTimeout(t *testing.T, ioModel string) {
	d := daemontest.Start(t, ioModel, "--idle-timeout=200ms")
	c := daemontest.DialHello(t, d.Socket)
	r, err := c.Read() // waits; the server speaks first after the timeout
	if err != nil || r.Code != wire.CodeIdleTimeout || r.ID != 0 {
		t.Fatalf("got %+v, %v; want idle_timeout", r, err)
	}
	if _, err := c.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("not closed after idle timeout: %v", err)
	}
}

// Hostile clients of every kind hammer the daemon while a well-behaved
// client keeps getting correct replies.
func TestHostileClientsDoNotDisturbNeighbours(t *testing.T) {
	forEachIOModel(t, testHostileClientsDoNotDisturbNeighbours)
}

func testHostileClientsDoNotDisturbNeighbours(t *testing.T, ioModel string) {
	d := daemontest.Start(t, ioModel, "--max-conns=40", "--max-frame=64KiB")
	good := daemontest.DialHello(t, d.Socket)
	good.MustCall(t, nil, wire.OpCreateDict, "good")

	stop := make(chan struct{})
	goodErr := make(chan error, 1)
	go func() {
		defer close(goodErr)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := good.Call(wire.OpDSet, "good", i, i*2); err != nil {
				goodErr <- err
				return
			}
			res, err := good.Call(wire.OpDGet, "good", i)
			var v int
			if err == nil {
				err = wire.Unmarshal(res, &v)
			}
			if err != nil || v != i*2 {
				goodErr <- errors.Join(err, errors.New("wrong value"))
				return
			}
		}
	}()

	hostile := []func(net.Conn){
		func(nc net.Conn) { // garbage
			b := make([]byte, 4096)
			for i := range b {
				b[i] = byte(rand.IntN(256))
			}
			_, _ = nc.Write(b)
		},
		func(nc net.Conn) { _, _ = nc.Write([]byte{0xff, 0xff, 0xff, 0xff}) }, // huge length
		func(nc net.Conn) { // truncated frame, then hang up
			_, _ = nc.Write([]byte{0, 0, 0, 100, 0x83, 1})
		},
		func(nc net.Conn) { // deep nesting inside a valid frame
			f, _ := wire.AppendRequest(nil, 1, wire.OpHello, 1)
			body := append([]byte{0x83, 2, 2}, append(bytes.Repeat([]byte{0x9f}, 200), 0)...)
			_, _ = nc.Write(wire.AppendFrame(f, body))
		},
		func(nc net.Conn) { // ops before hello, on a missing table, wrong kind
			f, _ := wire.AppendRequest(nil, 1, wire.OpDSet, "good", 1, 1)
			f, _ = wire.AppendRequest(f, 2, wire.OpHello, 1)
			f, _ = wire.AppendRequest(f, 3, wire.OpLAppend, "good", 1)
			f, _ = wire.AppendRequest(f, 4, wire.OpDGet, "nope", 1)
			_, _ = nc.Write(f)
		},
		func(nc net.Conn) {}, // connect and say nothing
	}
	var wg sync.WaitGroup
	for round := range 6 {
		for i, h := range hostile {
			wg.Add(1)
			go func() {
				defer wg.Done()
				nc, err := net.Dial("unix", d.Socket)
				if err != nil {
					return // refused past --max-conns: fine
				}
				defer nc.Close()
				h(nc)
				_ = nc.SetReadDeadline(time.Now().Add(time.Duration(50*(i+round%2)) * time.Millisecond))
				_, _ = io.Copy(io.Discard, nc)
			}()
		}
	}
	// A flood past --max-conns.
	var flood []net.Conn
	for range 60 {
		if nc, err := net.Dial("unix", d.Socket); err == nil {
			flood = append(flood, nc)
		}
	}
	wg.Wait()
	for _, nc := range flood {
		nc.Close()
	}
	close(stop)
	if err := <-goodErr; err != nil {
		t.Fatalf("the well-behaved client was disturbed: %v\ndaemon output:\n%s", err, d.Output())
	}
	var n int
	good.MustCall(t, &n, wire.OpDLen, "good")
	if n == 0 {
		t.Fatal("good client made no progress")
	}
}

// Many goroutines on many connections increment one key: the total is exact.
func TestConcurrentIncrIsExact(t *testing.T) { forEachIOModel(t, testConcurrentIncrIsExact) }

func testConcurrentIncrIsExact(t *testing.T, ioModel string) {
	d := daemontest.Start(t, ioModel)
	setup := daemontest.DialHello(t, d.Socket)
	setup.MustCall(t, nil, wire.OpCreateDict, "counters")
	var info map[string]any
	setup.MustCall(t, &info, wire.OpInfo)
	if want := strings.TrimPrefix(ioModel, "--io-loops="); fmt.Sprint(info["io_loops"]) != want {
		t.Fatalf("info io_loops = %v with %s", info["io_loops"], ioModel)
	}
	const workers, each = 16, 250
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := daemontest.DialHello(t, d.Socket)
			// Pipeline a few at a time to exercise ordering too.
			for i := 0; i < each; i += 5 {
				for range 5 {
					if _, err := c.Send(wire.OpDIncr, "counters", "hits", 1); err != nil {
						errs <- err
						return
					}
				}
				for range 5 {
					if r, err := c.Read(); err != nil || r.Err != nil {
						errs <- errors.Join(err, r.Err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var total int
	setup.MustCall(t, &total, wire.OpDGet, "counters", "hits")
	if total != workers*each {
		t.Fatalf("total = %d, want %d", total, workers*each)
	}
}

func TestShutdownFinishesAndRemovesSocket(t *testing.T) {
	forEachIOModel(t, testShutdownFinishesAndRemovesSocket)
}

func testShutdownFinishesAndRemovesSocket(t *testing.T, ioModel string) {
	d := daemontest.Start(t, ioModel)
	c := daemontest.DialHello(t, d.Socket)
	c.MustCall(t, nil, wire.OpCreateList, "l")
	// Pipeline requests, then stop the daemon: every request already
	// sent before the signal is answered.
	for i := range 200 {
		if _, err := c.Send(wire.OpLAppend, "l", i); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // let the daemon read them; not an assertion
	if err := d.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	got := 0
	for {
		r, err := c.Read()
		if err != nil {
			t.Fatalf("connection ended without a shutting_down frame: %v", err)
		}
		if r.ID == 0 && r.Code == wire.CodeShuttingDown {
			break
		}
		if r.Err != nil {
			t.Fatalf("reply %d: %v", r.ID, r.Err)
		}
		got++
	}
	if got != 200 {
		t.Fatalf("answered %d of 200 requests sent before SIGINT", got)
	}
	if _, err := c.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("after shutting_down: %v, want EOF", err)
	}
	exited, err := d.Wait(20 * time.Second)
	if !exited || err != nil {
		t.Fatalf("exit: exited=%v err=%v\n%s", exited, err, d.Output())
	}
	if _, err := os.Stat(d.Socket); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left behind: %v", err)
	}
}

func TestRefusesSecondDaemonAndReplacesStaleSocket(t *testing.T) {
	d := daemontest.Start(t)
	out, err := exec.Command(daemontest.Binary(t), "--socket", d.Socket).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another cyberdbd is serving") {
		t.Fatalf("second daemon: err=%v output:\n%s", err, out)
	}
	// The first is unharmed.
	daemontest.DialHello(t, d.Socket)

	// A stale socket file (no listener) is replaced.
	dir := daemontest.ShortTempDir(t)
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	d2 := daemontest.Start(t, "--socket="+stale)
	daemontest.DialHello(t, d2.Socket)

	// A regular file is left alone.
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("x"), 0o600)
	out, err = exec.Command(daemontest.Binary(t), "--socket", plain).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is not a socket") {
		t.Fatalf("regular file: err=%v output:\n%s", err, out)
	}
}

func TestSocketMode(t *testing.T) {
	d := daemontest.Start(t, "--socket-mode=0600")
	fi, err := os.Stat(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %o, want 600", fi.Mode().Perm())
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--socket-mode=999"}, {"--max-conns=0"}, {"--io-loops=-1"}, {"--max-frame=1"}, {"--log-level=loud"}, {"extra"}, {"--no-such-flag"},
		{"--partial-timeout=0"}, {"--max-partial-memory=1MiB"}, {"--output-limit=1MiB,2MiB,1s"}, {"--output-limit=64MiB,8MiB"}, {"--max-output-memory=lots"},
	} {
		stdout, stderr, err := runOutErr(daemontest.Binary(t), args...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || stdout != "" || !strings.Contains(stderr, "cyberdbd --help") {
			t.Errorf("%v: err=%v, want exit 2 and the error on stderr; stdout:\n%s\nstderr:\n%s", args, err, stdout, stderr)
		}
	}
	// The usage goes to stdout, so that "cyberdbd --help | less" shows it.
	for args, flag := range map[string]string{"--help": "--idle-timeout", "-h": "--idle-timeout", "gen-cert --help": "--days"} {
		stdout, stderr, err := runOutErr(daemontest.Binary(t), strings.Fields(args)...)
		if err != nil || !strings.Contains(stdout, flag) || stderr != "" {
			t.Errorf("%v: %v; stdout:\n%s\nstderr:\n%s", args, err, stdout, stderr)
		}
	}
	out, err := exec.Command(daemontest.Binary(t), "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "cyberdbd ") {
		t.Errorf("--version: %v\n%s", err, out)
	}
}

// TestCheckConfig: --check-config checks the flags and the config file
// and exits 0 saying so, or 2 with the error, as nginx -t; it opens
// nothing, so it works beside a running daemon.
func TestCheckConfig(t *testing.T) {
	d := daemontest.Start(t)
	dir := daemontest.ShortTempDir(t)
	good := filepath.Join(dir, "good.conf")
	bad := filepath.Join(dir, "bad.conf")
	daemontest.Must(t, os.WriteFile(good, []byte("max-conns = 50\nlog-level = debug\n"), 0o644))
	daemontest.Must(t, os.WriteFile(bad, []byte("max-conns = 50\nidle-timeout = soon\n"), 0o644))
	stdout, stderr, err := runOutErr(daemontest.Binary(t), "--check-config", "--config", good, "--socket", d.Socket)
	if err != nil || !strings.Contains(stdout, "config OK") || stderr != "" {
		t.Errorf("a good config: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	for args, want := range map[string]string{
		"--config " + bad:                     "bad.conf:2: idle-timeout: ",
		"--config " + good + " --max-conns=0": "--max-conns 0: must be at least 1",
		"--config " + dir + "/none.conf":      "none.conf: no such file",
	} {
		stdout, stderr, err := runOutErr(daemontest.Binary(t), append([]string{"--check-config"}, strings.Fields(args)...)...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || stdout != "" || !strings.Contains(stderr, want) {
			t.Errorf("%s: %v, want exit 2 and %q on stderr\nstdout: %s\nstderr: %s", args, err, want, stdout, stderr)
		}
	}
	svcPing(t, d.Socket) // the daemon was not disturbed
}

// runOutErr runs a command and returns its stdout and stderr apart.
func runOutErr(name string, args ...string) (stdout, stderr string, err error) {
	var o, e strings.Builder
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// Benchmarks of the hot path through a real connection (run with -benchmem;
// the allocations reported are the client's, see the server's with pprof).
func BenchmarkDGet(b *testing.B) {
	d := daemontest.Start(b)
	c := daemontest.DialHello(b, d.Socket)
	c.MustCall(b, nil, wire.OpCreateDict, "bench")
	c.MustCall(b, nil, wire.OpDSet, "bench", "key:000001", strings.Repeat("v", 32))
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Call(wire.OpDGet, "bench", "key:000001"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDSet(b *testing.B) {
	d := daemontest.Start(b)
	c := daemontest.DialHello(b, d.Socket)
	c.MustCall(b, nil, wire.OpCreateDict, "bench")
	val := strings.Repeat("v", 32)
	i := 0
	for b.Loop() {
		i++
		if _, err := c.Call(wire.OpDSet, "bench", i%100000, val); err != nil {
			b.Fatal(err)
		}
	}
}

// forEachIOModel runs test against a daemon serving its Unix socket from
// event loops (the default on Linux) and one with a goroutine per
// connection (--io-loops=0): both must behave the same.
func forEachIOModel(t *testing.T, test func(t *testing.T, ioModel string)) {
	t.Run("loops", func(t *testing.T) { test(t, "--io-loops=2") })
	t.Run("goroutines", func(t *testing.T) { test(t, "--io-loops=0") })
}
