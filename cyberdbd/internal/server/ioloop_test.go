package server

// Wire-level tests of the two I/O models: every case runs once with a
// goroutine per connection (Config.IOLoops 0) and, on Linux, once with
// event loops (IOLoops 2). Both must behave identically on the wire.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// ioWait bounds every read and write of the tests' clients, so that a bug
// gives a failure instead of a hang.
const ioWait = 5 * time.Second

// ioMode is one I/O model of the server.
type ioMode struct {
	name  string
	loops int // Config.IOLoops
}

func ioModes() []ioMode {
	ms := []ioMode{{"goroutine", 0}}
	if runtime.GOOS == "linux" {
		ms = append(ms, ioMode{"loop", 2})
	}
	return ms
}

// inModes runs fn as one subtest per I/O model, named by the model.
func inModes(t *testing.T, fn func(t *testing.T, m ioMode)) {
	for _, m := range ioModes() {
		t.Run(m.name, func(t *testing.T) { fn(t, m) })
	}
}

// testServer is an in-process server on a Unix socket.
type testServer struct {
	t    *testing.T
	srv  *Server
	path string

	mu      sync.Mutex
	clients []*rawClient
	shut    bool
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startTestServer starts a server in mode m. Its cleanup closes every
// client dialled through it, requires Conns() to drop to 0, and shuts the
// server down (unless the test did).
func startTestServer(t *testing.T, m ioMode, cfg Config) *testServer {
	t.Helper()
	cfg.IOLoops = m.loops
	ts := startWrapped(t, cfg, nil)
	waitLoops(t, ts.srv, m)
	return ts
}

// startWrapped is startTestServer with the listener Serve gets wrapped
// by wrap (startHarness), in the I/O model cfg says.
func startWrapped(t *testing.T, cfg Config, wrap func(net.Listener) net.Listener) *testServer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	h, err := startHarness(cfg, wrap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.remove)
	srv, served := h.srv, h.served
	ts := &testServer{t: t, srv: srv, path: h.path}
	t.Cleanup(func() {
		ts.mu.Lock()
		clients := ts.clients
		ts.mu.Unlock()
		for _, c := range clients {
			c.nc.Close()
		}
		ts.waitConns(0) // every client closed: no connection left
		if err := ts.shutdown(5 * time.Second); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-served:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(ioWait):
			t.Errorf("Serve did not return after Shutdown")
		}
	})
	return ts
}

// waitLoops waits for Serve to have chosen its I/O model and checks that
// it is m's: a silent fallback to goroutines would make the loop subtests
// test nothing new.
func waitLoops(t testing.TB, srv *Server, m ioMode) {
	t.Helper()
	if err := loopsStarted(srv, m); err != nil {
		t.Fatal(err)
	}
}

func loopsStarted(srv *Server, m ioMode) error {
	deadline := time.Now().Add(ioWait)
	for {
		srv.mu.Lock()
		started, n := srv.loops != nil || srv.loopsOff, len(srv.loops)
		srv.mu.Unlock()
		if started {
			if n != m.loops {
				return fmt.Errorf("server runs %d event loops, want %d", n, m.loops)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("Serve did not start within %s", ioWait)
		}
		time.Sleep(time.Millisecond)
	}
}

// shutdown calls Shutdown with a context of the given time-out, once;
// later calls return nil.
func (ts *testServer) shutdown(timeout time.Duration) error {
	ts.mu.Lock()
	if ts.shut {
		ts.mu.Unlock()
		return nil
	}
	ts.shut = true
	ts.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return ts.srv.Shutdown(ctx)
}

// waitConns polls until the server counts n connections.
func (ts *testServer) waitConns(n int) {
	ts.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for ts.srv.Conns() != n {
		if time.Now().After(deadline) {
			ts.t.Errorf("srv.Conns() = %d, want %d within 3s", ts.srv.Conns(), n)
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// rawClient is a raw connection to the server. Its methods that fail the
// test may only be called from the test's goroutine; the ...Err ones from
// any goroutine.
type rawClient struct {
	t  *testing.T
	nc *net.UnixConn
	r  *bufio.Reader
}

func (ts *testServer) dial() *rawClient {
	ts.t.Helper()
	nc, err := net.DialTimeout("unix", ts.path, ioWait)
	if err != nil {
		ts.t.Fatal(err)
	}
	c := &rawClient{t: ts.t, nc: nc.(*net.UnixConn), r: bufio.NewReaderSize(nc, 64<<10)}
	ts.mu.Lock()
	ts.clients = append(ts.clients, c)
	ts.mu.Unlock()
	return c
}

func (c *rawClient) sendErr(b []byte) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(ioWait))
	_, err := c.nc.Write(b)
	return err
}

func (c *rawClient) send(b []byte) {
	c.t.Helper()
	if err := c.sendErr(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// sendAsync writes b from a goroutine (for streams whose replies must be
// read while they are written), then half-closes if closeWrite. The
// channel gets the write's error.
func (c *rawClient) sendAsync(b []byte, closeWrite bool) <-chan error {
	done := make(chan error, 1)
	go func() {
		_ = c.nc.SetWriteDeadline(time.Now().Add(2 * ioWait))
		_, err := c.nc.Write(b)
		if err == nil && closeWrite {
			err = c.nc.CloseWrite()
		}
		done <- err
	}()
	return done
}

func waitSent(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("write: %v", err)
		}
	case <-time.After(3 * ioWait):
		t.Fatal("write did not finish")
	}
}

func (c *rawClient) frameErr() ([]byte, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(ioWait))
	return wire.ReadFrame(c.r, nil, 64<<20)
}

func (c *rawClient) frame() []byte {
	c.t.Helper()
	body, err := c.frameErr()
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return body
}

// expect reads one reply and requires its id and code.
func (c *rawClient) expect(id uint64, code wire.Code) wire.Reply {
	c.t.Helper()
	body := c.frame()
	r, err := wire.DecodeReply(body)
	if err != nil {
		c.t.Fatalf("bad reply %s: %v", wire.Diagnose(body), err)
	}
	if r.ID != id || r.Code != code {
		c.t.Fatalf("reply %s: want id %d, code %s", wire.Diagnose(body), id, code)
	}
	return r
}

// expectEOF requires the server to have closed the connection, with no
// further bytes.
func (c *rawClient) expectEOF() {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(ioWait))
	b, err := c.r.ReadByte()
	if err == nil {
		_ = c.r.UnreadByte()
		body, ferr := wire.ReadFrame(c.r, nil, 64<<20)
		c.t.Fatalf("want EOF, got more bytes (first 0x%02x; frame %s, %v)", b, wire.Diagnose(body), ferr)
	}
	if err != io.EOF {
		c.t.Fatalf("want EOF, got %v", err)
	}
}

// hello sends HELLO and requires its success.
func (c *rawClient) hello(id uint64) {
	c.t.Helper()
	c.send(mustReq(id, wire.OpHello, 1, map[string]any{"client": "ioloop_test"}))
	c.expect(id, wire.CodeOK)
}

// dictWith creates the dict table (request id 2) and sets key to value
// in it (id 3), requiring both to succeed.
func (c *rawClient) dictWith(table, key string, value any) {
	c.t.Helper()
	c.send(append(mustReq(2, wire.OpCreateDict, table), mustReq(3, wire.OpDSet, table, key, value)...))
	c.expect(2, wire.CodeOK)
	c.expect(3, wire.CodeOK)
}

func mustReq(id uint64, op wire.Op, args ...any) []byte {
	f, err := wire.AppendRequest(nil, id, op, args...)
	if err != nil {
		panic(err)
	}
	return f
}

func decodeResult[T any](t *testing.T, r wire.Reply) T {
	t.Helper()
	var v T
	if err := wire.Unmarshal(r.Result, &v); err != nil {
		t.Fatalf("result %s: %v", wire.Diagnose(r.Result), err)
	}
	return v
}

// Case 1: a stream written in random small chunks gets the replies it gets
// when written at once.
func TestConnChunkedStream(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		ts := startTestServer(t, m, Config{})
		// The stream leaves the store as it found it, so that every
		// connection sending it gets the same replies.
		var stream []byte
		add := func(id uint64, op wire.Op, args ...any) { stream = append(stream, mustReq(id, op, args...)...) }
		add(1, wire.OpHello, 1, map[string]any{"client": "chunks"})
		add(2, wire.OpCreateDict, "chunk")
		add(3, wire.OpDSet, "chunk", "k", strings.Repeat("value ", 300))
		add(4, wire.OpDSet, "chunk", 7, []any{1, "two", 3.5, nil})
		add(5, wire.OpDGet, "chunk", "k")
		add(6, wire.OpDGet, "chunk", "missing")
		add(7, wire.OpDIncr, "chunk", "n", 41)
		add(8, wire.OpDToDict, "chunk")
		add(9, wire.OpCreateList, "chunkl", []any{3, 1, 2})
		add(10, wire.OpLSort, "chunkl")
		add(11, wire.OpLToList, "chunkl")
		add(12, wire.OpPing, map[string]any{"a": []byte{0, 1, 2}})
		add(13, wire.OpDrop, "chunk")
		add(14, wire.OpDrop, "chunkl")
		const n = 14
		wantCode := map[uint64]wire.Code{6: wire.CodeKeyNotFound}

		whole := ts.dial()
		whole.send(stream)
		ref := make([][]byte, n)
		for i := range ref {
			ref[i] = whole.frame()
			r, err := wire.DecodeReply(ref[i])
			if err != nil || r.ID != uint64(i+1) || r.Code != wantCode[r.ID] {
				t.Fatalf("reply %d to the whole stream: %s (%v)", i+1, wire.Diagnose(ref[i]), err)
			}
		}

		seed := uint64(time.Now().UnixNano())
		rng := rand.New(rand.NewPCG(seed, 1))
		for round := range 3 {
			c := ts.dial()
			for off := 0; off < len(stream); {
				k := min(1+rng.IntN(7), len(stream)-off)
				c.send(stream[off : off+k])
				off += k
				if rng.IntN(10) == 0 {
					time.Sleep(time.Duration(rng.IntN(500)) * time.Microsecond)
				}
			}
			for i := range n {
				got := c.frame()
				if i == 0 {
					sameHello(t, ref[0], got)
					continue
				}
				if !bytes.Equal(got, ref[i]) {
					t.Fatalf("round %d (seed %d): reply %d is %s, written at once it was %s",
						round, seed, i+1, wire.Diagnose(got), wire.Diagnose(ref[i]))
				}
			}
		}
	})
}

// sameHello requires two HELLO replies to be equal but for conn_id.
func sameHello(t *testing.T, a, b []byte) {
	t.Helper()
	dec := func(body []byte) map[string]any {
		r, err := wire.DecodeReply(body)
		if err != nil || r.Code != wire.CodeOK {
			t.Fatalf("HELLO reply %s: %v", wire.Diagnose(body), err)
		}
		m := decodeResult[map[string]any](t, r)
		if _, ok := m["conn_id"]; !ok {
			t.Fatalf("HELLO reply without conn_id: %s", wire.Diagnose(body))
		}
		delete(m, "conn_id")
		return m
	}
	if ma, mb := dec(a), dec(b); !reflect.DeepEqual(ma, mb) {
		t.Fatalf("HELLO replies differ: %s vs %s", wire.Diagnose(a), wire.Diagnose(b))
	}
}

// Case 2: a request over 64 KiB (the read buffers' size), and its get.
func TestConnLargeRequest(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		ts := startTestServer(t, m, Config{})
		c := ts.dial()
		c.hello(1)
		c.send(mustReq(2, wire.OpCreateDict, "big"))
		c.expect(2, wire.CodeOK)

		val := make([]byte, 1<<20)
		for i := range val {
			val[i] = byte(i*7 + i>>11)
		}
		b := mustReq(3, wire.OpDSet, "big", "v", val)
		b = append(b, mustReq(4, wire.OpDGet, "big", "v")...)
		b = append(b, mustReq(5, wire.OpDSet, "big", "w", val[:100<<10])...)
		done := c.sendAsync(b, false)
		c.expect(3, wire.CodeOK)
		if got := decodeResult[[]byte](t, c.expect(4, wire.CodeOK)); !bytes.Equal(got, val) {
			t.Fatalf("dget returned %d bytes, not the 1 MiB value set", len(got))
		}
		c.expect(5, wire.CodeOK)
		waitSent(t, done)

		// Small requests still work on the same connection.
		c.send(mustReq(6, wire.OpPing, "after"))
		if got := decodeResult[string](t, c.expect(6, wire.CodeOK)); got != "after" {
			t.Fatalf("ping echoed %q", got)
		}
		c.send(append(mustReq(7, wire.OpDLen, "big"), mustReq(8, wire.OpDGet, "big", "w")...))
		if n := decodeResult[uint64](t, c.expect(7, wire.CodeOK)); n != 2 {
			t.Fatalf("dlen = %d, want 2", n)
		}
		if got := decodeResult[[]byte](t, c.expect(8, wire.CodeOK)); !bytes.Equal(got, val[:100<<10]) {
			t.Fatal("dget of the 100 KiB value returned something else")
		}
	})
}

// pingOfBodySize returns a ping request frame whose body is size bytes.
func pingOfBodySize(id uint64, size int) []byte {
	for l := size - 20; l < size; l++ {
		if f := mustReq(id, wire.OpPing, make([]byte, l)); len(f)-wire.FrameHeaderSize == size {
			return f
		}
	}
	panic(fmt.Sprintf("no ping frame of %d bytes", size))
}

func frameHeader(size uint32) []byte { return binary.BigEndian.AppendUint32(nil, size) }

// Case 3: a declared length over MaxFrame gets too_large (id 0) and EOF;
// other connections carry on.
func TestConnFrameTooLarge(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		const maxFrame = 4096
		ts := startTestServer(t, m, Config{MaxFrame: maxFrame})
		neighbour := ts.dial()
		neighbour.hello(1)
		// A frame of exactly MaxFrame is accepted.
		neighbour.send(pingOfBodySize(2, maxFrame))
		neighbour.expect(2, wire.CodeOK)

		bad := ts.dial()
		b := mustReq(1, wire.OpHello, 1)
		b = append(b, mustReq(2, wire.OpPing)...)
		b = append(b, frameHeader(maxFrame+1)...) // and no body: the server must not wait for it
		bad.send(b)
		bad.expect(1, wire.CodeOK)
		bad.expect(2, wire.CodeOK)
		r := bad.expect(0, wire.CodeTooLarge)
		if !strings.Contains(r.Err.Message, "4097") {
			t.Errorf("too_large message %q does not name the size", r.Err.Message)
		}
		bad.expectEOF()

		// The largest declared length, before HELLO.
		bad2 := ts.dial()
		bad2.send(frameHeader(0xffffffff))
		bad2.expect(0, wire.CodeTooLarge)
		bad2.expectEOF()

		neighbour.send(mustReq(3, wire.OpPing))
		neighbour.expect(3, wire.CodeOK)
	})
}

// Case 4: an empty frame gets bad_request (id 0); the connection carries on.
func TestConnEmptyFrame(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		ts := startTestServer(t, m, Config{})
		c := ts.dial()
		empty := frameHeader(0)
		wantEmpty := func() {
			t.Helper()
			if r := c.expect(0, wire.CodeBadRequest); r.Err.Message != wire.ErrEmptyFrame.Message {
				t.Fatalf("empty frame answered %q", r.Err.Message)
			}
		}
		c.send(empty) // before HELLO: framing comes first
		wantEmpty()
		var b []byte
		b = append(b, mustReq(1, wire.OpHello, 1)...)
		b = append(b, empty...)
		b = append(b, mustReq(2, wire.OpPing)...)
		b = append(b, empty...)
		b = append(b, empty...)
		b = append(b, mustReq(3, wire.OpPing, "x")...)
		c.send(b)
		c.expect(1, wire.CodeOK)
		wantEmpty()
		c.expect(2, wire.CodeOK)
		wantEmpty()
		wantEmpty()
		c.expect(3, wire.CodeOK)
		// An empty frame alone, then another request.
		c.send(empty)
		wantEmpty()
		c.send(mustReq(4, wire.OpPing))
		c.expect(4, wire.CodeOK)
	})
}

// Case 5: 20000 pipelined requests, written without reading, all answered
// in order.
func TestConnPipelining(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		ts := startTestServer(t, m, Config{})
		c := ts.dial()
		c.hello(1)
		c.dictWith("p", "k", "pipelined value")

		const n = 20000
		var b []byte
		for i := range n {
			b = append(b, mustReq(uint64(1000+i), wire.OpDGet, "p", "k")...)
		}
		done := c.sendAsync(b, false)
		for i := range n {
			body := c.frame()
			id, code, ok := wire.PeekReply(body)
			if !ok || id != uint64(1000+i) || code != wire.CodeOK {
				t.Fatalf("reply %d of %d: %s, want id %d", i, n, wire.Diagnose(body), 1000+i)
			}
			if i%1000 == 999 {
				r, err := wire.DecodeReply(body)
				if err != nil {
					t.Fatal(err)
				}
				if v := decodeResult[string](t, r); v != "pipelined value" {
					t.Fatalf("reply %d: value %q", i, v)
				}
			}
		}
		waitSent(t, done)
	})
}

// Case 6: 100 connections incrementing one key concurrently.
func TestConnConcurrentIncr(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		ts := startTestServer(t, m, Config{})
		setup := ts.dial()
		setup.hello(1)
		setup.send(mustReq(2, wire.OpCreateDict, "ctr"))
		setup.expect(2, wire.CodeOK)

		const conns, incrs, batch = 100, 200, 20
		clients := make([]*rawClient, conns)
		for i := range clients {
			clients[i] = ts.dial()
		}
		errs := make(chan error, conns)
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- incrWorker(c, incrs, batch)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if t.Failed() {
			return
		}
		setup.send(mustReq(3, wire.OpDGet, "ctr", "n"))
		if v := decodeResult[uint64](t, setup.expect(3, wire.CodeOK)); v != conns*incrs {
			t.Fatalf("counter = %d, want %d", v, conns*incrs)
		}
	})
}

// incrWorker says HELLO on c and increments ctr/n incrs times, batch
// requests at a time. It runs in its own goroutine: it returns its error.
func incrWorker(c *rawClient, incrs, batch int) error {
	check := func(id uint64) error {
		body, err := c.frameErr()
		if err != nil {
			return fmt.Errorf("reply %d: %w", id, err)
		}
		if gid, code, ok := wire.PeekReply(body); !ok || gid != id || code != wire.CodeOK {
			return fmt.Errorf("reply %s, want id %d ok", wire.Diagnose(body), id)
		}
		return nil
	}
	if err := c.sendErr(mustReq(1, wire.OpHello, 1)); err != nil {
		return err
	}
	if err := check(1); err != nil {
		return err
	}
	id := uint64(2)
	for done := 0; done < incrs; done += batch {
		var b []byte
		for i := range batch {
			b = append(b, mustReq(id+uint64(i), wire.OpDIncr, "ctr", "n")...)
		}
		if err := c.sendErr(b); err != nil {
			return err
		}
		for range batch {
			if err := check(id); err != nil {
				return err
			}
			id++
		}
	}
	return nil
}

// Case 7: the idle time-out closes a silent connection, not a busy one.
// The busy client pings every idle/5; how long it really stayed silent
// between two pings (a loaded machine may not wake it in time) is
// measured, and withIdleMargin judges the run by it.
func TestConnIdleTimeout(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		withIdleMargin(t, 150*time.Millisecond, func(idle time.Duration) (time.Duration, error) {
			ts := startTestServer(t, m, Config{IdleTimeout: idle})
			type result struct {
				after time.Duration
				body  []byte
				err   error // reading the frame
				eof   error // reading after it
			}
			start := time.Now()
			silent := ts.dial()
			res := make(chan result, 1)
			go func() {
				var r result
				r.body, r.err = silent.frameErr()
				r.after = time.Since(start)
				if r.err == nil {
					_ = silent.nc.SetReadDeadline(time.Now().Add(ioWait))
					_, r.eof = silent.r.ReadByte()
				}
				res <- r
			}()

			busy := ts.dial()
			if err := busy.expectErr(1, wire.CodeOK, mustReq(1, wire.OpHello, 1)); err != nil {
				return 0, err
			}
			var gap time.Duration
			last := time.Now()
			for id := uint64(2); time.Since(start) < 3*idle; id++ {
				time.Sleep(idle / 5)
				gap = max(gap, time.Since(last))
				if err := busy.expectErr(id, wire.CodeOK, mustReq(id, wire.OpPing)); err != nil {
					return gap, fmt.Errorf("the busy connection: %w", err)
				}
				last = time.Now()
			}

			var r result
			select {
			case r = <-res:
			case <-time.After(2 * ioWait):
				t.Fatal("the silent connection's reader did not finish")
			}
			if r.err != nil {
				t.Fatalf("silent connection: %v, want an idle_timeout frame", r.err)
			}
			rep, err := wire.DecodeReply(r.body)
			if err != nil || rep.ID != 0 || rep.Code != wire.CodeIdleTimeout {
				t.Fatalf("silent connection got %s (%v), want [0, %d, ...]", wire.Diagnose(r.body), err, wire.CodeIdleTimeout)
			}
			if r.after < idle-10*time.Millisecond { // never early, however loaded
				t.Errorf("idle_timeout after %s, before the %s time-out", r.after, idle)
			}
			if r.eof != io.EOF {
				t.Errorf("after idle_timeout: %v, want EOF", r.eof)
			}
			return gap, nil
		})
	})
}

// withIdleMargin runs try with the idle time-out base, then twice as long
// and so on (up to 16 times base) until it passes. try returns how long
// its client was really silent at most where it meant to be busy
// (measured: on a loaded machine a sleep or a wake-up can overrun by far),
// and whether the server behaved. A failure counts when that silence
// stayed under half the time-out; otherwise the run could not tell, and
// the next, longer time-out is tried, so the test is robust on a slow
// machine and still fails on a server that times out a busy client.
func withIdleMargin(t *testing.T, base time.Duration, try func(idle time.Duration) (silence time.Duration, err error)) {
	t.Helper()
	for idle := base; ; idle *= 2 {
		silence, err := try(idle)
		if err == nil {
			return
		}
		if silence < idle/2 || idle >= 16*base {
			t.Fatalf("idle time-out %s (client silent at most %s): %v", idle, silence, err)
		}
		t.Logf("idle time-out %s: the client was silent for %s on this loaded machine, too close to tell (%v); trying %s",
			idle, silence, err, 2*idle)
	}
}

// expectErr sends req and reads one reply, which must have id and code.
func (c *rawClient) expectErr(id uint64, code wire.Code, req []byte) error {
	if err := c.sendErr(req); err != nil {
		return err
	}
	body, err := c.frameErr()
	if err != nil {
		return err
	}
	if gid, gcode, ok := wire.PeekReply(body); !ok || gid != id || gcode != code {
		return fmt.Errorf("reply %s, want id %d, code %s", wire.Diagnose(body), id, code)
	}
	return nil
}

// Case 8: Shutdown sends shutting_down to an idle connection and closes it.
func TestConnShutdown(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		ts := startTestServer(t, m, Config{})
		c := ts.dial()
		c.hello(1)
		c2 := ts.dial() // no HELLO at all
		c2.send(mustReq(1, wire.OpPing))
		c2.expect(1, wire.CodeHandshake)
		ts.waitConns(2)

		if err := ts.shutdown(5 * time.Second); err != nil {
			t.Fatalf("Shutdown: %v, want nil", err)
		}
		if n := ts.srv.Conns(); n != 0 {
			t.Errorf("Conns() = %d after Shutdown", n)
		}
		for _, c := range []*rawClient{c, c2} {
			c.expect(0, wire.CodeShuttingDown)
			c.expectEOF()
		}
		if nc, err := net.DialTimeout("unix", ts.path, time.Second); err == nil {
			nc.Close()
			t.Error("dial succeeded after Shutdown")
		}
	})
}

// Case 9: Shutdown is not held up by a client that does not read its
// replies: once its context ends it closes the connection.
func TestConnShutdownStuckClient(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		ts := startTestServer(t, m, Config{})
		good := ts.dial()
		good.hello(1)
		good.dictWith("s", "v", make([]byte, 256<<10))

		stuck := ts.dial()
		b := mustReq(1, wire.OpHello, 1)
		for i := range 100 {
			b = append(b, mustReq(uint64(2+i), wire.OpDGet, "s", "v")...)
		}
		stuck.send(b)
		// HELLO's reply shows the server busy with the gets; from here on
		// the client reads nothing (beyond what bufio took with it).
		stuck.expect(1, wire.CodeOK)

		begin := time.Now()
		err := ts.shutdown(300 * time.Millisecond)
		took := time.Since(begin)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want context.DeadlineExceeded (it had to force a close)", err)
		}
		// Held up, it would wait for the 30 s write time-out; the bound
		// leaves a loaded machine (and -race) ample room to close.
		if took > writeTimeout/3 {
			t.Errorf("Shutdown took %s", took)
		}
		if n := ts.srv.Conns(); n != 0 {
			t.Errorf("Conns() = %d after Shutdown", n)
		}
		// The connection that reads gets its last frame.
		good.expect(0, wire.CodeShuttingDown)
		good.expectEOF()

		// The stuck one is closed: after what the socket holds, EOF or reset.
		_ = stuck.nc.SetReadDeadline(time.Now().Add(ioWait))
		if n, err := io.Copy(io.Discard, stuck.r); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("stuck connection: %v after %d more bytes, want EOF or reset", err, n)
		}
	})
}

// Case 10: after a half-close the client gets every reply, then EOF.
func TestConnHalfClose(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		ts := startTestServer(t, m, Config{})
		c := ts.dial()
		var b []byte
		b = append(b, mustReq(1, wire.OpHello, 1)...)
		b = append(b, mustReq(2, wire.OpCreateDict, "hc")...)
		b = append(b, mustReq(3, wire.OpDSet, "hc", "k", "v")...)
		for i := range 50 {
			b = append(b, mustReq(uint64(4+i), wire.OpPing, i)...)
		}
		b = append(b, mustReq(54, wire.OpDGet, "hc", "k")...)
		c.send(b)
		if err := c.nc.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		for id := uint64(1); id <= 53; id++ {
			c.expect(id, wire.CodeOK)
		}
		if v := decodeResult[string](t, c.expect(54, wire.CodeOK)); v != "v" {
			t.Fatalf("dget = %q", v)
		}
		c.expectEOF()

		// A burst whose replies (about 1 MiB) outgrow the socket buffers:
		// the end of the stream is seen while replies are still pending.
		c2 := ts.dial()
		c2.hello(1)
		c2.send(mustReq(2, wire.OpDSet, "hc", "k", strings.Repeat("x", 200)))
		c2.expect(2, wire.CodeOK)
		const n = 5000
		b = nil
		for i := range n {
			b = append(b, mustReq(uint64(3+i), wire.OpDGet, "hc", "k")...)
		}
		done := c2.sendAsync(b, true)
		for i := range n {
			body, err := c2.frameErr()
			if err != nil {
				t.Fatalf("reply %d of %d: %v", i, n, err)
			}
			if id, code, ok := wire.PeekReply(body); !ok || id != uint64(3+i) || code != wire.CodeOK {
				t.Fatalf("reply %d: %s", i, wire.Diagnose(body))
			}
		}
		waitSent(t, done)
		c2.expectEOF()

		// Half-closed before anything was sent.
		c3 := ts.dial()
		if err := c3.nc.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		c3.expectEOF()
	})
}

// Case 11: when Config.Durable fails, a connection with replies to writes
// is closed without them (conn.go flush, ioLoop.flushAll); connections
// that only read keep working. DurableSlow: the same, with Durable called
// off the event loops (ioLoop.commit).
func TestConnDurableError(t *testing.T) {
	t.Run("inline", func(t *testing.T) { testConnDurableError(t, false) })
	t.Run("DurableSlow", func(t *testing.T) { testConnDurableError(t, true) })
}

func testConnDurableError(t *testing.T, slow bool) {
	inModes(t, func(t *testing.T, m ioMode) {
		var fail atomic.Bool
		var calls atomic.Int64
		durable := func() error {
			calls.Add(1)
			if fail.Load() {
				return errors.New("disk on fire")
			}
			return nil
		}
		ts := startTestServer(t, m, Config{Durable: durable, DurableSlow: slow})
		setup := ts.dial()
		setup.hello(1)
		setup.dictWith("d", "k", "v")
		if calls.Load() == 0 {
			t.Fatal("Durable was not called before the replies to writes")
		}

		fail.Store(true)
		before := calls.Load()
		reader := ts.dial()
		reader.hello(1) // HELLO is no write: not held up
		writer := ts.dial()
		writer.hello(1)
		writer.send(mustReq(2, wire.OpDSet, "d", "k2", "x"))
		writer.expectEOF() // no reply, no frame
		if calls.Load() == before {
			t.Error("Durable was not called for the failed connection's write")
		}

		reader.send(append(mustReq(2, wire.OpDGet, "d", "k"), mustReq(3, wire.OpPing)...))
		if v := decodeResult[string](t, reader.expect(2, wire.CodeOK)); v != "v" {
			t.Fatalf("dget = %q", v)
		}
		reader.expect(3, wire.CodeOK)
		reader.send(mustReq(4, wire.OpDHas, "d", "k"))
		reader.expect(4, wire.CodeOK)

		// A read pipelined with a write: both replies are withheld, as
		// they are written together after one Durable call.
		w2 := ts.dial()
		w2.hello(1)
		w2.send(append(mustReq(2, wire.OpDGet, "d", "k"), mustReq(3, wire.OpDDel, "d", "k")...))
		w2.expectEOF()

		fail.Store(false)
		setup.send(mustReq(4, wire.OpDSet, "d", "k3", "y"))
		setup.expect(4, wire.CodeOK)
	})
}

// Case 12: connections in every state are counted until closed, and no
// longer after. (Every test's cleanup also requires Conns() to drop to 0.)
func TestConnsDropToZero(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		ts := startTestServer(t, m, Config{})
		setup := ts.dial()
		setup.hello(1)
		setup.dictWith("z", "v", make([]byte, 256<<10))

		var cs []*rawClient
		cs = append(cs, ts.dial()) // silent
		c := ts.dial()             // after HELLO
		c.hello(1)
		cs = append(cs, c)
		c = ts.dial() // in the middle of a frame header
		c.send([]byte{0, 0})
		cs = append(cs, c)
		c = ts.dial() // in the middle of a big frame's body (after HELLO: MaxHelloFrame)
		c.hello(1)
		c.send(mustReq(2, wire.OpPing, make([]byte, 200<<10))[:100<<10])
		cs = append(cs, c)
		c = ts.dial() // with replies it does not read
		b := mustReq(1, wire.OpHello, 1)
		for i := range 20 {
			b = append(b, mustReq(uint64(2+i), wire.OpDGet, "z", "v")...)
		}
		c.send(b)
		cs = append(cs, c)
		ts.waitConns(len(cs) + 1)
		time.Sleep(20 * time.Millisecond)
		if n := ts.srv.Conns(); n != len(cs)+1 {
			t.Fatalf("Conns() = %d, want %d", n, len(cs)+1)
		}
		for _, c := range cs {
			c.nc.Close()
		}
		ts.waitConns(1)
		setup.send(mustReq(4, wire.OpPing))
		setup.expect(4, wire.CodeOK)
		setup.nc.Close()
		ts.waitConns(0)
	})
}

// When Shutdown's context ends it wakes the event loops again to close
// what is left; a loop that had already finished has closed its
// descriptors, whose numbers the process may have reused since. Nothing
// may be written to them.
func TestConnShutdownForcedWritesNoReusedFD(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		ts := startTestServer(t, m, Config{})
		good := ts.dial() // conn 1: loop 1 of 2
		good.hello(1)
		good.dictWith("s", "v", make([]byte, 256<<10))
		stuck := ts.dial() // conn 2: loop 0 of 2
		b := mustReq(1, wire.OpHello, 1)
		for i := range 100 {
			b = append(b, mustReq(uint64(2+i), wire.OpDGet, "s", "v")...)
		}
		stuck.send(b)
		stuck.expect(1, wire.CodeOK)

		shut := make(chan error, 1)
		go func() { shut <- ts.shutdown(500 * time.Millisecond) }()
		// good's loop has nothing else: it sends the last frame, closes,
		// and ends, closing its descriptors.
		good.expect(0, wire.CodeShuttingDown)
		good.expectEOF()
		time.Sleep(50 * time.Millisecond)
		// Take every free descriptor number below the highest in use with
		// a write end of one pipe.
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		var dups []int
		defer func() {
			for _, fd := range dups {
				syscall.Close(fd)
			}
		}()
		wfd := int(w.Fd())
		for range 64 {
			fd, err := syscall.Dup(wfd)
			if err != nil {
				t.Fatal(err)
			}
			dups = append(dups, fd)
		}
		select {
		case err := <-shut:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("Shutdown did not return")
		}
		_ = r.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		var buf [64]byte
		if n, err := r.Read(buf[:]); n > 0 {
			t.Errorf("Shutdown wrote % x to a descriptor number it had closed, reused since (%v)", buf[:n], err)
		}
	})
}

// save runs off the event loop (ioLoop.startOffLoop): its reply comes in
// order, other connections are served meanwhile, its error is the reply,
// and a Shutdown during a save waits for it and answers what was read.
func TestConnSave(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		started := make(chan struct{}, 4)
		gate := make(chan error)
		quit := make(chan struct{})
		var saves atomic.Int64
		save := func() error {
			saves.Add(1)
			started <- struct{}{}
			select {
			case err := <-gate:
				return err
			case <-quit: // the test failed: do not hold the server
				return errors.New("test over")
			}
		}
		ts := startTestServer(t, m, Config{Save: save})
		t.Cleanup(func() { close(quit) }) // before the server's cleanup
		waitSave := func() {
			t.Helper()
			select {
			case <-started:
			case <-time.After(ioWait):
				t.Fatal("Save was not called")
			}
		}
		release := func(err error) {
			t.Helper()
			select {
			case gate <- err:
			case <-time.After(ioWait):
				t.Fatal("nobody waits in Save")
			}
		}

		a := ts.dial()
		a.hello(1)
		others := []*rawClient{ts.dial(), ts.dial()} // one shares a's loop
		for _, c := range others {
			c.hello(1)
		}
		b := mustReq(2, wire.OpCreateDict, "sv")
		b = append(b, mustReq(3, wire.OpDSet, "sv", "k", "v")...)
		b = append(b, mustReq(4, wire.OpSave)...)
		b = append(b, mustReq(5, wire.OpDGet, "sv", "k")...)
		b = append(b, mustReq(6, wire.OpPing)...)
		a.send(b)
		waitSave()
		for i, c := range others { // served while the save runs
			c.send(mustReq(uint64(2+i), wire.OpPing))
			c.expect(uint64(2+i), wire.CodeOK)
		}
		release(nil)
		a.expect(2, wire.CodeOK)
		a.expect(3, wire.CodeOK)
		if r := a.expect(4, wire.CodeOK); !r.Result.IsNull() {
			t.Fatalf("save returned %s, want null", wire.Diagnose(r.Result))
		}
		if v := decodeResult[string](t, a.expect(5, wire.CodeOK)); v != "v" {
			t.Fatalf("dget after save = %q", v)
		}
		a.expect(6, wire.CodeOK)

		// A failed snapshot is the reply.
		a.send(mustReq(7, wire.OpSave))
		waitSave()
		release(wire.Errorf(wire.CodeIO, "snapshot: disk full"))
		if r := a.expect(7, wire.CodeIO); r.Err.Message != "snapshot: disk full" {
			t.Errorf("save error message %q", r.Err.Message)
		}

		// Before HELLO, save is refused without a snapshot.
		n := saves.Load()
		c := ts.dial()
		c.send(append(mustReq(1, wire.OpSave), mustReq(2, wire.OpHello, 1)...))
		c.expect(1, wire.CodeHandshake)
		c.expect(2, wire.CodeOK)
		if saves.Load() != n {
			t.Error("save before HELLO called Save")
		}

		// Shutdown during a save waits for it, answers the requests read
		// (the save and the ping after it), then ends with shutting_down.
		a.send(append(mustReq(8, wire.OpSave), mustReq(9, wire.OpPing)...))
		waitSave()
		shut := make(chan error, 1)
		go func() { shut <- ts.shutdown(ioWait) }()
		time.Sleep(50 * time.Millisecond)
		select {
		case err := <-shut:
			t.Fatalf("Shutdown returned %v while a save was running", err)
		default:
		}
		release(nil)
		a.expect(8, wire.CodeOK)
		a.expect(9, wire.CodeOK)
		a.expect(0, wire.CodeShuttingDown)
		a.expectEOF()
		select {
		case err := <-shut:
			if err != nil {
				t.Errorf("Shutdown = %v", err)
			}
		case <-time.After(ioWait):
			t.Fatal("Shutdown did not return")
		}
		for _, c := range append(others, c) {
			c.expect(0, wire.CodeShuttingDown)
			c.expectEOF()
		}
	})
}

// The idle time-out counts the time the server waits for the client, not
// the time the client waits for the server: in the goroutine model the
// read deadline is set once the replies are written. A client that waited
// longer than the time-out for a slow save, or that read a long burst of
// replies slowly, may carry on at once. (withIdleMargin: the client's own
// delay before its ping is measured.)
func TestConnIdleAfterSlowReply(t *testing.T) {
	t.Run("save", func(t *testing.T) {
		inModes(t, func(t *testing.T, m ioMode) {
			withIdleMargin(t, 200*time.Millisecond, func(idle time.Duration) (time.Duration, error) {
				save := func() error { time.Sleep(2 * idle); return nil }
				ts := startTestServer(t, m, Config{IdleTimeout: idle, Save: save})
				c := ts.dial()
				c.hello(1)
				c.send(mustReq(2, wire.OpSave))
				c.expect(2, wire.CodeOK)
				replied := time.Now()
				time.Sleep(idle / 5)
				return time.Since(replied), c.expectErr(3, wire.CodeOK, mustReq(3, wire.OpPing))
			})
		})
	})
	t.Run("slow-reader", func(t *testing.T) {
		inModes(t, func(t *testing.T, m ioMode) {
			withIdleMargin(t, 200*time.Millisecond, func(idle time.Duration) (time.Duration, error) {
				ts := startTestServer(t, m, Config{IdleTimeout: idle})
				c := ts.dial()
				c.hello(1)
				c.dictWith("sr", "v", make([]byte, 64<<10))
				const n = 80 // 5 MiB of replies, read over 400 ms
				var b []byte
				for i := range n {
					b = append(b, mustReq(uint64(4+i), wire.OpDGet, "sr", "v")...)
				}
				c.send(b)
				// The server has written its last reply once the client
				// has read all but what the socket holds (a few replies):
				// from then on, until the ping, the server waits for it.
				var tail time.Time
				for i := range n {
					if i == n-8 {
						tail = time.Now()
					}
					c.expect(uint64(4+i), wire.CodeOK)
					time.Sleep(5 * time.Millisecond)
				}
				return time.Since(tail), c.expectErr(4+n, wire.CodeOK, mustReq(4+n, wire.OpPing))
			})
		})
	})
}

// TestConnKeptBufferOffLoop: while a request runs off the loop its
// goroutine owns the connection, and the sweep must not look at its
// buffer. A kept buffer (a big request before) and a long request off the
// loop across sweeps (every 100 ms with a 1 s idle time-out): -race found
// the sweep reading the buffer's length as the request's goroutine wrote
// it, in libcyberdb's tests on a loaded machine.
func TestConnKeptBufferOffLoop(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("event loops are Linux only")
	}
	ts := startTestServer(t, ioMode{"loop", 1}, Config{IdleTimeout: time.Second})
	c := ts.dial()
	c.hello(1)
	c.send(pingOfBodySize(2, offLoopFrame+1)) // off the loop; then its buffer is kept
	c.expect(2, wire.CodeOK)
	// [3, create_list, "L", [0, 0, ...]]: a few hundred milliseconds of
	// decoding, off the loop.
	const items = 300_000
	body := []byte{0x84, 0x03, byte(wire.OpCreateList), 0x61, 'L', 0x9a}
	body = binary.BigEndian.AppendUint32(body, items)
	body = append(body, make([]byte, items)...)
	start := time.Now()
	c.send(wire.AppendFrame(nil, body))
	// Longer than ioWait: with the race detector, coverage counters and
	// a loaded machine this took 5 s and more.
	_ = c.nc.SetReadDeadline(time.Now().Add(time.Minute))
	reply, err := wire.ReadFrame(c.r, nil, 1<<20)
	if err != nil {
		t.Fatalf("read the reply: %v", err)
	}
	if r, err := wire.DecodeReply(reply); err != nil || r.ID != 3 || r.Code != wire.CodeOK {
		t.Fatalf("reply %s, %v: want id 3, ok", wire.Diagnose(reply), err)
	}
	t.Logf("the request ran off the loop for %s", time.Since(start).Round(time.Millisecond))
}

// Under DurableSlow a connection's replies to writes wait for the Durable
// call off the loop while the loop serves the others: a reader gets its
// replies while a commit is stuck, the writer gets its reply once the
// commit returns, in order after its earlier replies, and a writer that
// hangs up meanwhile is closed at once (not spun on until the commit ends).
func TestDurableSlowOffLoop(t *testing.T) {
	inModes(t, func(t *testing.T, m ioMode) {
		release := make(chan struct{})
		var stuck atomic.Bool
		durable := func() error {
			if stuck.Load() {
				<-release
			}
			return nil
		}
		ts := startTestServer(t, m, Config{Durable: durable, DurableSlow: true})
		setup := ts.dial()
		setup.hello(1)
		setup.dictWith("d", "k", "v")

		stuck.Store(true)
		writer := ts.dial()
		writer.hello(1)
		writer.send(append(mustReq(2, wire.OpDGet, "d", "k"), mustReq(3, wire.OpDSet, "d", "k2", "x")...))
		gone := ts.dial()
		gone.hello(1)
		gone.send(mustReq(2, wire.OpDSet, "d", "k3", "y"))
		time.Sleep(50 * time.Millisecond) // both wait for the stuck commit

		reader := ts.dial()
		reader.hello(1)
		reader.send(mustReq(2, wire.OpDGet, "d", "k"))
		if v := decodeResult[string](t, reader.expect(2, wire.CodeOK)); v != "v" {
			t.Fatalf("dget = %q", v)
		}
		if m.loops > 0 {
			// The loop closes a hung-up connection whose replies wait.
			gone.nc.Close()
			ts.waitConns(3)
		}
		stuck.Store(false)
		close(release)
		writer.expect(2, wire.CodeOK)
		writer.expect(3, wire.CodeOK)
		writer.send(mustReq(4, wire.OpDGet, "d", "k2"))
		if v := decodeResult[string](t, writer.expect(4, wire.CodeOK)); v != "x" {
			t.Fatalf("dget k2 = %q", v)
		}
	})
}
