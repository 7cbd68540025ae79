package libcyberdb

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// frames returns the encoded frames of bodies, one after the other.
func frames(bodies ...[]byte) []byte {
	var b []byte
	for _, body := range bodies {
		b = wire.AppendFrame(b, body)
	}
	return b
}

// chunky returns at most a random few bytes per Read, and once, in the
// middle, a deadline error with no data: what a cut read looks like.
type chunky struct {
	r       io.Reader
	rng     *rand.Rand
	cutAt   int // bytes read before the cut; -1: none
	read    int
	cutDone bool
}

func (c *chunky) Read(p []byte) (int, error) {
	if !c.cutDone && c.cutAt >= 0 && c.read >= c.cutAt {
		c.cutDone = true
		return 0, os.ErrDeadlineExceeded
	}
	n := 1 + c.rng.IntN(7)
	if c.rng.IntN(4) == 0 {
		n = len(p)
	}
	n, err := c.r.Read(p[:min(n, len(p))])
	c.read += n
	return n, err
}

// readAll reads frames until an error, going on after a cut (deadline).
func readAll(f *frameReader) (bodies [][]byte, cuts int, err error) {
	for {
		body, err := f.next()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			cuts++
			continue
		}
		if err != nil {
			return bodies, cuts, err
		}
		bodies = append(bodies, bytes.Clone(body))
	}
}

// TestFrameReader: frames of every size come out whole and in order
// however the bytes arrive, a read cut by a deadline loses nothing, and a
// stream that ends mid-frame says so.
func TestFrameReader(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 3<<20) // past the shrink size
	mid := bytes.Repeat([]byte("y"), 100<<10)
	want := [][]byte{{0x80}, mid, {0x83, 1, 2, 3}, big, {0xa0}, bytes.Repeat([]byte("z"), 70)}
	stream := frames(want...)
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		cut := rng.IntN(len(stream))
		f := newFrameReader(&chunky{r: bytes.NewReader(stream), rng: rng, cutAt: cut}, nil)
		got, cuts, err := readAll(f)
		if !errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("seed %d: ended with %v, want io.EOF", seed, err)
		}
		if cuts != 1 || len(got) != len(want) {
			t.Fatalf("seed %d: %d frames, %d cuts; want %d frames, 1 cut", seed, len(got), cuts, len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("seed %d: frame %d differs (%d bytes, want %d)", seed, i, len(got[i]), len(want[i]))
			}
		}
		if len(f.buf) > readBufShrink {
			t.Errorf("seed %d: the buffer kept %d bytes after the big frame", seed, len(f.buf))
		}
	}

	// Bytes already buffered by the handshake come first.
	f := newFrameReader(bytes.NewReader(frames([]byte{2})), frames([]byte{1}))
	got, _, err := readAll(f)
	if !errors.Is(err, io.EOF) || len(got) != 2 || got[0][0] != 1 || got[1][0] != 2 {
		t.Fatalf("buffered then read: %v %v", got, err)
	}

	// Ends mid-header, mid-body.
	first := wire.FrameHeaderSize + 1 // the first frame's length
	for _, cut := range []int{2, first + 2, first + wire.FrameHeaderSize + 10} {
		f := newFrameReader(iotest.OneByteReader(bytes.NewReader(stream[:cut])), nil)
		if got, _, err := readAll(f); !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != min(1, cut/first) {
			t.Errorf("stream cut at %d: %d frames then %v, want io.ErrUnexpectedEOF", cut, len(got), err)
		}
	}

	// A peer declaring a huge frame and sending little holds little.
	hdr := wire.AppendFrame(nil, make([]byte, 16<<20))[:wire.FrameHeaderSize+10]
	f = newFrameReader(bytes.NewReader(hdr), nil)
	if _, err := f.next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("huge frame cut short: %v", err)
	}
	if len(f.buf) > 2*readBufSize {
		t.Errorf("a declared 16 MiB frame with 10 bytes sent grew the buffer to %d bytes", len(f.buf))
	}
}

// FuzzFrameReader: the frame reader agrees with wire.ReadFrame on any
// byte stream, however it arrives.
func FuzzFrameReader(f *testing.F) {
	f.Add(frames([]byte{0x80}, []byte{0x83, 1, 2, 3}), uint64(1))
	f.Add([]byte{0, 0, 0, 5, 1}, uint64(2))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint64(3))
	f.Fuzz(func(t *testing.T, stream []byte, seed uint64) {
		var want [][]byte
		br := bytes.NewReader(stream)
		var wantErr error
		for {
			body, err := wire.ReadFrame(br, nil, -1)
			if err != nil {
				wantErr = err
				break
			}
			want = append(want, body)
		}
		rng := rand.New(rand.NewPCG(seed, 2))
		cut := -1
		if len(stream) > 0 {
			cut = rng.IntN(len(stream))
		}
		fr := newFrameReader(&chunky{r: bytes.NewReader(stream), rng: rng, cutAt: cut}, nil)
		got, _, err := readAll(fr)
		if len(got) != len(want) {
			t.Fatalf("%d frames, wire.ReadFrame %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("frame %d differs", i)
			}
		}
		switch {
		case errors.Is(wantErr, io.EOF) || errors.Is(wantErr, io.ErrUnexpectedEOF):
			if !errors.Is(err, wantErr) {
				t.Fatalf("ended with %v, wire.ReadFrame with %v", err, wantErr)
			}
		default:
			if err == nil || err.Error() != wantErr.Error() {
				t.Fatalf("ended with %v, wire.ReadFrame with %v", err, wantErr)
			}
		}
	})
}

// stacks returns every goroutine's stack.
func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// TestLoneCallerReadsOwnReply: a caller alone on its connection reads its
// reply itself, with the reader goroutine asleep; a Get from another
// goroutine meanwhile is answered by it; cancelling it gives the read side
// back, unharmed, and nothing is lost.
func TestLoneCallerReadsOwnReply(t *testing.T) {
	_, c := start(t, WithPoolSize(1))
	ctx := context.Background()
	must(t, c.CreateList(ctx, "q", nil))
	must(t, c.CreateDict(ctx, "d", nil))
	l := NewList[string](c, "q")
	d := NewDict[string, string](c, "d")
	must(t, d.Set(ctx, "k", "v"))

	wctx, cancel := context.WithCancel(ctx)
	popped := make(chan error, 1)
	go func() {
		_, _, err := l.PopWait(wctx, Left, 0)
		popped <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stacks(), ".(*conn).readOwn(") {
		if time.Now().After(deadline) {
			t.Fatalf("no caller reads its own reply:\n%s", stacks())
		}
		time.Sleep(time.Millisecond)
	}
	// The blocked caller holds the read side: it answers this Get too.
	for range 100 {
		if v, err := d.Get(ctx, "k"); err != nil || v != "v" {
			t.Fatalf("Get beside a blocked caller: %q %v", v, err)
		}
	}
	cancel()
	if err := <-popped; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled PopWait: %v", err)
	}
	// The connection is whole: the next values go to the next callers.
	if _, err := l.Append(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := l.PopWait(ctx, Left, time.Second); err != nil || !ok || v != "a" {
		t.Fatalf("PopWait after a cancelled one: %q %v %v", v, ok, err)
	}
	if s := c.Stats(); s.Open != 1 || s.LostConns != 0 {
		t.Fatalf("stats: %v, want the one connection, none lost", s)
	}
}

// TestLoneCallerWithTimeout: WithTimeout bounds a caller that reads its
// own reply: with the daemon stopped (SIGSTOP), the call fails on its
// bound, and the connection serves the next call once the daemon runs.
func TestLoneCallerWithTimeout(t *testing.T) {
	dd, c := start(t, WithPoolSize(1), WithTimeout(300*time.Millisecond))
	ctx := context.Background()
	must(t, c.Ping(ctx))
	must(t, dd.Signal(syscall.SIGSTOP))
	time.Sleep(50 * time.Millisecond) // the signal lands asynchronously
	t0 := time.Now()
	err := c.Ping(ctx)
	took := time.Since(t0)
	must(t, dd.Signal(syscall.SIGCONT))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping to a stopped daemon: %v, want a time-out", err)
	}
	if took < 250*time.Millisecond || took > 5*time.Second {
		t.Fatalf("the time-out came after %v, want about 300ms", took)
	}
	for range 10 {
		must(t, c.Ping(ctx))
	}
}

// TestWriteAfterDaemonKilledWhileIdle: a daemon killed and restarted
// while the pool sat idle costs a write nothing: nobody read the idle
// connection, but the next call finds it gone before writing (or its
// write fails with nothing written) and goes to a new connection, with
// the write applied once.
func TestWriteAfterDaemonKilledWhileIdle(t *testing.T) {
	dd, c := start(t, WithPoolSize(2))
	ctx := context.Background()
	must(t, c.Ping(ctx))
	for i := range 3 {
		dd.Kill(t)
		dd.Restart(t)
		// A write that fails if applied twice (ErrTableExists), and
		// that run never resends once it may have been applied.
		if err := c.CreateList(ctx, "l"+strconv.Itoa(i), nil); err != nil {
			t.Fatalf("CreateList after restart %d: %v", i, err)
		}
	}
	if s := c.Stats(); s.Open < 1 || s.LostConns < 3 {
		t.Fatalf("stats: %v, want the connections of each killed daemon counted lost", s)
	}
}
