package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

// chunkReader returns its data in pieces: first data[:split], then the rest
// one read at a time, as a socket may.
type chunkReader struct {
	parts [][]byte
}

func splitReader(data []byte, split int) io.Reader {
	if split < 0 || split > len(data) {
		split = len(data) / 2
	}
	return &chunkReader{parts: [][]byte{data[:split], data[split:]}}
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.parts) > 0 && len(c.parts[0]) == 0 {
		c.parts = c.parts[1:]
	}
	if len(c.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.parts[0])
	c.parts[0] = c.parts[0][n:]
	return n, nil
}

func TestReadFrameRoundTrip(t *testing.T) {
	var stream []byte
	bodies := [][]byte{{0xf6}, bytes.Repeat([]byte{0x61}, 70000), {0x83, 1, 2, 3}}
	for _, b := range bodies {
		stream = AppendFrame(stream, b)
	}
	for _, split := range []int{0, 1, 3, 4, 5, 6, 70003, len(stream) - 1} {
		r := splitReader(stream, split)
		for i, want := range bodies {
			got, err := ReadFrame(r, nil, DefaultMaxFrame)
			if err != nil {
				t.Fatalf("split %d frame %d: %v", split, i, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("split %d frame %d: body differs", split, i)
			}
		}
		if _, err := ReadFrame(r, nil, DefaultMaxFrame); err != io.EOF {
			t.Fatalf("split %d: after last frame err = %v, want io.EOF", split, err)
		}
	}
	// One byte at a time.
	r := iotest.OneByteReader(bytes.NewReader(stream))
	for range bodies {
		if _, err := ReadFrame(r, make([]byte, 0, 8), DefaultMaxFrame); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadFrameErrors(t *testing.T) {
	huge := binary.BigEndian.AppendUint32(nil, DefaultMaxFrame+1)
	_, err := ReadFrame(bytes.NewReader(huge), nil, DefaultMaxFrame)
	var tl *FrameTooLargeError
	if !errors.As(err, &tl) || !errors.Is(err, ErrTooLarge) || tl.Size != DefaultMaxFrame+1 {
		t.Fatalf("oversized frame: err = %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 0, 0}), nil, 100); !errors.Is(err, ErrEmptyFrame) {
		t.Fatalf("empty frame: err = %v", err)
	}
	for _, in := range [][]byte{{0}, {0, 0, 0}, {0, 0, 0, 5, 1, 2}} {
		if _, err := ReadFrame(bytes.NewReader(in), nil, 100); err != io.ErrUnexpectedEOF {
			t.Fatalf("truncated %x: err = %v, want io.ErrUnexpectedEOF", in, err)
		}
	}
	// A declared 16 MiB frame with little data costs one chunk, not 16 MiB.
	decl := binary.BigEndian.AppendUint32(nil, DefaultMaxFrame)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	got, err := ReadFrame(bytes.NewReader(append(decl, 1, 2, 3)), nil, DefaultMaxFrame)
	runtime.ReadMemStats(&ms)
	if err != io.ErrUnexpectedEOF || got != nil {
		t.Fatalf("short 16MiB frame: %v", err)
	}
	if grew := ms.TotalAlloc - before; grew > 4*frameChunk {
		t.Fatalf("a declared 16MiB frame with 3 bytes sent allocated %d bytes", grew)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, []byte{0x83, 1, 2, 0xf6}), 2)
	f.Add([]byte{0, 0, 0, 0}, 1)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, 2)
	f.Add(append(AppendFrame(nil, []byte{1}), 0, 0), 5)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		whole, werr := readAll(bytes.NewReader(data))
		parts, perr := readAll(splitReader(data, split))
		if (werr == nil) != (perr == nil) || len(whole) != len(parts) {
			t.Fatalf("split read differs: whole %d frames (%v), split %d frames (%v)", len(whole), werr, len(parts), perr)
		}
		for i := range whole {
			if !bytes.Equal(whole[i], parts[i]) {
				t.Fatalf("frame %d differs between whole and split reads", i)
			}
			if _, err := DecodeRequest(whole[i]); err == nil {
				continue
			} else if AsError(err).Code == CodeInternal {
				t.Fatalf("decode error has no protocol code: %v", err)
			}
		}
	})
}

func readAll(r io.Reader) ([][]byte, error) {
	var out [][]byte
	for {
		b, err := ReadFrame(r, nil, 1<<16)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, bytes.Clone(b))
	}
}

// splitAll feeds the stream to SplitFrame in two pieces, cut at k, as an
// event loop receives it in two reads, and returns the bodies (nil for an
// empty frame) and the error that stopped it.
func splitAll(stream []byte, k, maxSize int) ([][]byte, error) {
	var out [][]byte
	var buf []byte
	for _, piece := range [][]byte{stream[:k], stream[k:]} {
		buf = append(buf, piece...)
		for {
			body, rest, err := SplitFrame(buf, maxSize)
			if err == ErrEmptyFrame {
				out, buf = append(out, nil), rest
				continue
			}
			if err != nil {
				return out, err
			}
			if body == nil {
				break
			}
			if cap(body) != len(body) {
				return out, errors.New("a body's capacity runs past it")
			}
			out, buf = append(out, bytes.Clone(body)), rest
		}
		buf = bytes.Clone(buf) // what a reader keeps is its own
	}
	return out, nil
}

// FuzzSplitFrame: a stream split by SplitFrame, arriving in two pieces cut
// anywhere, gives the frames ReadFrame reads from it whole: the same
// bodies in the same order, empty frames where it finds them, and a
// too-large error where it finds one.
func FuzzSplitFrame(f *testing.F) {
	f.Add(append(AppendFrame(nil, []byte{0x83, 1, 2, 0xf6}), AppendFrame(nil, []byte{0xf6})...), 3)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0xf6}, 5)
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 1, 2}, 1)
	f.Add(append(AppendFrame(nil, []byte("abc")), 0, 0, 0), 100)
	const limit = 1 << 10
	f.Fuzz(func(t *testing.T, stream []byte, cut int) {
		var want [][]byte
		var wantErr error
		r := bytes.NewReader(stream)
		for {
			body, err := ReadFrame(r, nil, limit)
			if err == ErrEmptyFrame {
				want = append(want, nil)
				continue
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				wantErr = err
				break
			}
			want = append(want, body)
		}
		k := 0
		if len(stream) > 0 {
			k = int(uint(cut) % uint(len(stream)+1))
		}
		got, err := splitAll(stream, k, limit)
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("SplitFrame stopped with %v; ReadFrame with %v", err, wantErr)
		}
		if len(got) != len(want) {
			t.Fatalf("SplitFrame saw %d frames, ReadFrame %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) || (got[i] == nil) != (want[i] == nil) {
				t.Fatalf("frame %d: %x, ReadFrame: %x", i, got[i], want[i])
			}
		}
	})
}

func TestSplitFrame(t *testing.T) {
	stream := AppendFrame(nil, []byte{0xf6})
	stream = append(stream, 0, 0, 0, 0) // an empty frame
	stream = AppendFrame(stream, bytes.Repeat([]byte{0x61}, 300))
	for k := range len(stream) + 1 {
		got, err := splitAll(stream, k, 1000)
		if err != nil || len(got) != 3 || !bytes.Equal(got[0], []byte{0xf6}) || got[1] != nil || len(got[2]) != 300 {
			t.Fatalf("cut at %d: %d frames, %v", k, len(got), err)
		}
	}
	// Too large as soon as the header is there, before the body.
	_, _, err := SplitFrame([]byte{0, 0, 4, 0}, 1000)
	var tl *FrameTooLargeError
	if !errors.As(err, &tl) || tl.Size != 1024 || tl.Max != 1000 || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a 1024-byte frame over a 1000-byte limit: %v", err)
	}
	if body, rest, err := SplitFrame([]byte{0, 0, 0}, 1000); body != nil || len(rest) != 3 || err != nil {
		t.Fatalf("a partial header: %x, %x, %v", body, rest, err)
	}
}
