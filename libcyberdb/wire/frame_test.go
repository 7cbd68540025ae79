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
