package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// FrameHeaderSize is the size of a frame's length prefix.
const FrameHeaderSize = 4

// frameChunk bounds how much memory a declared-but-unsent frame can claim:
// the body buffer grows as bytes actually arrive, in steps of this size.
const frameChunk = 64 << 10

// ErrEmptyFrame is returned for a frame of length zero, which holds no data item.
var ErrEmptyFrame = Errorf(CodeBadRequest, "empty frame: a frame holds exactly one CBOR data item")

// FrameTooLargeError reports a frame whose declared length exceeds the limit.
// It matches ErrTooLarge with errors.Is.
type FrameTooLargeError struct {
	Size, Max uint64
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("too_large: frame of %d bytes exceeds the maximum frame size of %d bytes", e.Size, e.Max)
}

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *FrameTooLargeError) Is(target error) bool { return target == ErrTooLarge }

// WireError converts it to the *Error sent to the peer.
func (e *FrameTooLargeError) WireError() *Error {
	return Errorf(CodeTooLarge, "frame of %d bytes exceeds the maximum frame size of %d bytes", e.Size, e.Max)
}

// FrameHeader reads the frame header at the start of b, which must hold
// FrameHeaderSize bytes: the size of the frame's body. A size of 0 gives
// ErrEmptyFrame, and a size over maxSize (maxSize < 0: no limit) a
// *FrameTooLargeError; the size is returned with them. Every reader of
// frames reads headers here: SplitFrame, ReadFrame, and the daemon's.
func FrameHeader(b []byte, maxSize int) (int, error) {
	n := binary.BigEndian.Uint32(b)
	if n == 0 {
		return 0, ErrEmptyFrame
	}
	if maxSize >= 0 && uint64(n) > uint64(maxSize) {
		return int(n), frameTooLarge(n, maxSize)
	}
	return int(n), nil
}

func frameTooLarge(n uint32, maxSize int) error {
	return &FrameTooLargeError{Size: uint64(n), Max: uint64(maxSize)}
}

// SplitFrame splits the frame at the start of b off it, for readers that
// hold a stream of frames in a buffer (an event loop, a pipelining client).
// When b holds a whole frame, it returns the frame's body (aliasing b, its
// capacity ending with it) and the bytes after the frame; when b holds less
// than that, body is nil and rest is b: read more and call again. An empty
// frame gives ErrEmptyFrame with rest after its header (the stream goes
// on), and a declared size over maxSize (maxSize < 0: no limit) a
// *FrameTooLargeError, as soon as the header is there.
func SplitFrame(b []byte, maxSize int) (body, rest []byte, err error) {
	if len(b) < FrameHeaderSize {
		return nil, b, nil
	}
	size, err := FrameHeader(b, maxSize)
	if err != nil {
		if size == 0 {
			return nil, b[FrameHeaderSize:], err
		}
		return nil, b, err
	}
	end := FrameHeaderSize + size
	if len(b) < end {
		return nil, b, nil
	}
	return b[FrameHeaderSize:end:end], b[end:], nil
}

// ReadFrame reads one frame from r and returns its body. The body is read
// into buf when it fits (buf may be nil) and is valid until the next call
// that reuses buf. maxSize is the largest body accepted; a larger declared length
// returns a *FrameTooLargeError before any of the body is read.
//
// It returns io.EOF only when r ends cleanly between frames, and
// io.ErrUnexpectedEOF when r ends inside a frame.
func ReadFrame(r io.Reader, buf []byte, maxSize int) ([]byte, error) {
	// The header is read into buf: a local array would escape through
	// the io.Reader interface and cost an allocation per frame.
	if cap(buf) < FrameHeaderSize {
		buf = make([]byte, 0, 512)
	}
	hdr := buf[:FrameHeaderSize]
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	size, err := FrameHeader(hdr, maxSize)
	if err != nil {
		return nil, err
	}
	if cap(buf) >= size {
		buf = buf[:size]
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, unexpected(err)
		}
		return buf, nil
	}
	// Grow as data arrives so that a peer declaring 16 MiB and sending
	// nothing holds only one chunk.
	buf = buf[:0]
	for len(buf) < size {
		step := min(size-len(buf), max(frameChunk, len(buf)))
		start := len(buf)
		buf = append(buf, make([]byte, step)...)
		if _, err := io.ReadFull(r, buf[start:]); err != nil {
			return nil, unexpected(err)
		}
	}
	return buf, nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// BeginFrame appends room for a frame header to dst and returns the new
// slice and the header's offset; append the body, then call EndFrame.
func BeginFrame(dst []byte) ([]byte, int) {
	return append(dst, 0, 0, 0, 0), len(dst)
}

// EndFrame fills in the length of the frame begun at offset start.
func EndFrame(dst []byte, start int) []byte {
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-FrameHeaderSize))
	return dst
}

// AppendFrame appends body as one frame.
func AppendFrame(dst, body []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...)
}
