package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// fuzzMaxFrame is the fuzzed servers' Config.MaxFrame.
const fuzzMaxFrame = 1 << 20

// FuzzConnStream sends the input, as the raw byte stream of one client,
// to a server of each I/O model and requires byte-identical replies.
//
// The two servers live for the whole run, each with its own store: both
// see the same streams in the same order, so their stores stay identical
// and HELLO's conn_id matches. What depends on when a request runs is
// held still: the stores read a clock that does not move (an entry's
// deadline, a TTL left), and info, save and blocking ops with a finite
// time-out are taken out of the stream (uptime, memory; whether the
// time-out or a value came first). After a
// difference both servers are replaced, so that one failure does not make
// the stores, and so the next inputs' replies, differ.
func FuzzConnStream(f *testing.F) {
	modes := ioModes()
	if len(modes) < 2 {
		f.Skipf("only one I/O model on %s", runtime.GOOS)
	}
	var servers [2]*fuzzServer
	start := func() error {
		for i, m := range modes[:2] {
			s, err := startFuzzServer(m)
			if err != nil {
				return err
			}
			servers[i] = s
		}
		return nil
	}
	stop := func() error {
		var errs []error
		for i, s := range servers {
			if s != nil {
				errs = append(errs, s.stop())
				servers[i] = nil
			}
		}
		return errors.Join(errs...)
	}
	f.Cleanup(func() {
		if err := stop(); err != nil {
			f.Error(err)
		}
	})
	if err := start(); err != nil {
		f.Fatal(err)
	}
	// history holds the inputs the servers have seen since they started:
	// a difference can come from an earlier input's state, so on one the
	// whole history is written to a file that TestConnStreamReplay runs
	// again. The servers are replaced every historyMax inputs.
	var history [][]byte
	f.Fuzz(func(t *testing.T, data []byte) {
		if servers[0] == nil {
			t.Fatal("no servers: starting them failed after an earlier failure")
		}
		if len(history) == historyMax {
			history = history[:0]
			if err := errors.Join(stop(), start()); err != nil {
				t.Fatal(err)
			}
		}
		history = append(history, bytes.Clone(data))
		diff, err := compareModes(modes, servers, data)
		if diff == "" && err == nil {
			return
		}
		if err := errors.Join(stop(), start()); err != nil {
			t.Error(err)
		}
		if err != nil {
			t.Error(err)
		}
		if diff != "" {
			if len(history) > 1 {
				if name, err := writeHistory(history); err != nil {
					t.Errorf("writing the history: %v", err)
				} else {
					diff += fmt.Sprintf("\nthe %d inputs since the servers started are in %s: CYBERDB_FUZZ_REPLAY=%s go test -run TestConnStreamReplay ./cyberdbd/internal/server", len(history), name, name)
				}
			}
			t.Error(diff)
		}
		history = history[:0]
	})
}

// historyMax is how many inputs FuzzConnStream's servers see before it
// replaces them.
const historyMax = 2000

// compareModes sends data (as FuzzConnStream does) to each server, and
// describes how their replies differ ("" if they do not).
func compareModes(modes []ioMode, servers [2]*fuzzServer, data []byte) (string, error) {
	in := withoutVaryingOps(data)
	chunk := fuzzChunk(data)
	var outs [2][]byte
	var errs [2]error
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = exchange(s.path, in, chunk)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			errs[i] = fmt.Errorf("%s: %w", modes[i].name, err)
		}
	}
	if bytes.Equal(outs[0], outs[1]) {
		return "", errors.Join(errs[:]...)
	}
	return fmt.Sprintf("the I/O models reply differently to a stream of %d bytes written in chunks of %d:\n%s",
		len(in), chunk, describeDiff(modes[0].name, outs[0], modes[1].name, outs[1])), errors.Join(errs[:]...)
}

// writeHistory writes inputs to a new file in the temp dir, each as a
// 4-byte big-endian length and the bytes, and returns its name.
func writeHistory(inputs [][]byte) (string, error) {
	f, err := os.CreateTemp("", "fuzzconnstream-history-*.bin")
	if err != nil {
		return "", err
	}
	w := bufio.NewWriter(f)
	for _, in := range inputs {
		_ = binary.Write(w, binary.BigEndian, uint32(len(in)))
		_, _ = w.Write(in)
	}
	return f.Name(), errors.Join(w.Flush(), f.Close())
}

// TestConnStreamReplay runs the inputs of a file FuzzConnStream wrote
// ($CYBERDB_FUZZ_REPLAY) through fresh servers, in order, and reports the
// first on which the I/O models differ.
func TestConnStreamReplay(t *testing.T) {
	name := os.Getenv("CYBERDB_FUZZ_REPLAY")
	if name == "" {
		t.Skip("set CYBERDB_FUZZ_REPLAY to a history file FuzzConnStream wrote")
	}
	modes := ioModes()
	if len(modes) < 2 {
		t.Skipf("only one I/O model on %s", runtime.GOOS)
	}
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var inputs [][]byte
	for len(raw) >= 4 {
		n := int(binary.BigEndian.Uint32(raw))
		if n > len(raw)-4 {
			t.Fatalf("%s: cut short", name)
		}
		inputs = append(inputs, raw[4:4+n])
		raw = raw[4+n:]
	}
	var servers [2]*fuzzServer
	for i, m := range modes[:2] {
		s, err := startFuzzServer(m)
		if err != nil {
			t.Fatal(err)
		}
		defer s.stop()
		servers[i] = s
	}
	for i, data := range inputs {
		diff, err := compareModes(modes, servers, data)
		if err != nil {
			t.Errorf("input %d: %v", i, err)
		}
		if diff != "" {
			t.Fatalf("input %d of %d: %s", i, len(inputs), diff)
		}
	}
	t.Logf("%d inputs, no difference", len(inputs))
}

// fuzzServer is a server of FuzzConnStream.
type fuzzServer struct {
	*harness
	m ioMode
}

func startFuzzServer(m ioMode) (*fuzzServer, error) {
	st := store.New(store.WithClock(store.NewManualClock(time.UnixMilli(1_700_000_000_000))))
	h, err := startHarnessStore(Config{MaxFrame: fuzzMaxFrame, IOLoops: m.loops, Logger: discardLogger()}, st, nil)
	if err != nil {
		return nil, err
	}
	s := &fuzzServer{harness: h, m: m}
	if err := loopsStarted(s.srv, m); err != nil {
		return nil, errors.Join(err, s.stop())
	}
	return s, nil
}

func (s *fuzzServer) stop() error {
	defer s.remove()
	ctx, cancel := context.WithTimeout(context.Background(), ioWait)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("%s: Shutdown: %w", s.m.name, err)
	}
	select {
	case <-s.served:
		return nil
	case <-time.After(ioWait):
		return fmt.Errorf("%s: Serve did not return after Shutdown", s.m.name)
	}
}

// fuzzChunk derives the size of the writes from the input's last byte:
// 1 to 240 bytes, or everything in one write.
func fuzzChunk(data []byte) int {
	if len(data) == 0 {
		return 1
	}
	if b := data[len(data)-1]; b < 240 {
		return 1 + int(b)
	}
	return len(data)
}

// withoutVaryingOps returns the stream without its info and save
// requests and its blocking pops and moves with a time-out other than 0
// (none waits for ever; 0 does not wait). Frames that do not decode as requests are kept, and so is
// everything from a frame the servers would not read whole (too large or
// cut short) on.
func withoutVaryingOps(in []byte) []byte {
	out := make([]byte, 0, len(in))
	for len(in) >= wire.FrameHeaderSize {
		size := binary.BigEndian.Uint32(in)
		if size > fuzzMaxFrame || len(in)-wire.FrameHeaderSize < int(size) {
			break
		}
		end := wire.FrameHeaderSize + int(size)
		if size > 0 {
			req, err := wire.DecodeRequest(in[wire.FrameHeaderSize:end])
			if err == nil && (req.Op == wire.OpInfo || req.Op == wire.OpSave || timesOut(req)) {
				in = in[end:]
				continue
			}
		}
		out = append(out, in[:end]...)
		in = in[end:]
	}
	return append(out, in...)
}

// timesOut reports whether req is a blocking op whose reply depends on
// whether its time-out ends before a value comes: lbpop or lbmove with a
// time-out argument other than 0 (anything else there is an error).
func timesOut(req wire.Request) bool {
	var at int
	switch req.Op {
	case wire.OpLBPop:
		at = 2
	case wire.OpLBMove:
		at = 4
	default:
		return false
	}
	if !req.Args.Has(at) {
		return false // none: waits for ever
	}
	ms, err := req.Args.Int(at)
	return err != nil || ms != 0
}

// exchange writes in to a new connection in writes of chunk bytes,
// half-closes, and returns everything the server sends until it closes.
func exchange(path string, in []byte, chunk int) ([]byte, error) {
	nc, err := net.DialTimeout("unix", path, ioWait)
	if err != nil {
		return nil, err
	}
	uc := nc.(*net.UnixConn)
	defer uc.Close()
	_ = uc.SetDeadline(time.Now().Add(ioWait))
	written := make(chan struct{})
	go func() {
		defer close(written)
		for off := 0; off < len(in); off += chunk {
			if _, err := uc.Write(in[off:min(off+chunk, len(in))]); err != nil {
				return // the server closed (a frame too large), or the deadline
			}
		}
		_ = uc.CloseWrite()
	}()
	out, err := io.ReadAll(uc)
	<-written
	// A server that closes with requests unread resets the connection:
	// after the replies, which are all delivered first.
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		return out, fmt.Errorf("after %d bytes of replies: %w", len(out), err)
	}
	return out, nil
}

// describeDiff explains where two reply streams part.
func describeDiff(na string, a []byte, nb string, b []byte) string {
	fa, ra := splitFrames(a)
	fb, rb := splitFrames(b)
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s: %d bytes, %d frames (+%d bytes of a partial frame)\n", na, len(a), len(fa), len(ra))
	fmt.Fprintf(&sb, "%s: %d bytes, %d frames (+%d bytes of a partial frame)\n", nb, len(b), len(fb), len(rb))
	for i := 0; i < max(len(fa), len(fb)); i++ {
		if i < len(fa) && i < len(fb) && bytes.Equal(fa[i], fb[i]) {
			continue
		}
		show := func(name string, fs [][]byte) {
			if i < len(fs) {
				fmt.Fprintf(&sb, "  %s frame %d: %.300s\n", name, i, wire.Diagnose(fs[i]))
			} else {
				fmt.Fprintf(&sb, "  %s frame %d: none\n", name, i)
			}
		}
		show(na, fa)
		show(nb, fb)
		break
	}
	return sb.String()
}

// splitFrames splits a reply stream into frame bodies and the rest.
func splitFrames(b []byte) (frames [][]byte, rest []byte) {
	for len(b) >= wire.FrameHeaderSize {
		size := uint64(binary.BigEndian.Uint32(b))
		if uint64(len(b)-wire.FrameHeaderSize) < size {
			break
		}
		end := wire.FrameHeaderSize + int(size)
		frames = append(frames, b[wire.FrameHeaderSize:end])
		b = b[end:]
	}
	return frames, b
}
