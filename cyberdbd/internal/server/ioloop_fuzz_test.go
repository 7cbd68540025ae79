package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// fuzzMaxFrame is the fuzzed servers' Config.MaxFrame.
const fuzzMaxFrame = 1 << 20

// FuzzConnStream sends the input, as the raw byte stream of one client,
// to a server of each I/O model and requires byte-identical replies.
//
// The two servers live for the whole run, each with its own store: both
// see the same streams in the same order, so their stores stay identical
// and HELLO's conn_id matches. info and save requests are taken out of the
// stream (uptime, memory: their replies legitimately differ). After a
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
	f.Fuzz(func(t *testing.T, data []byte) {
		if servers[0] == nil {
			t.Fatal("no servers: starting them failed after an earlier failure")
		}
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
		if errs[0] == nil && errs[1] == nil && bytes.Equal(outs[0], outs[1]) {
			return
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
		if err := start(); err != nil {
			t.Error(err)
		}
		for i, err := range errs {
			if err != nil {
				t.Errorf("%s: %v", modes[i].name, err)
			}
		}
		if !bytes.Equal(outs[0], outs[1]) {
			t.Errorf("the I/O models reply differently to a stream of %d bytes written in chunks of %d:\n%s",
				len(in), chunk, describeDiff(modes[0].name, outs[0], modes[1].name, outs[1]))
		}
	})
}

// fuzzServer is a server of FuzzConnStream.
type fuzzServer struct {
	*harness
	m ioMode
}

func startFuzzServer(m ioMode) (*fuzzServer, error) {
	h, err := startHarness(Config{MaxFrame: fuzzMaxFrame, IOLoops: m.loops, Logger: discardLogger()}, nil)
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
// requests. Frames that do not decode as requests are kept, and so is
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
			if err == nil && (req.Op == wire.OpInfo || req.Op == wire.OpSave) {
				in = in[end:]
				continue
			}
		}
		out = append(out, in[:end]...)
		in = in[end:]
	}
	return append(out, in...)
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
