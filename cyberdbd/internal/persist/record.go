package persist

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// Records: both the snapshot and the log are a fixed header followed by
// records, each
//
//	[len u32 big-endian][crc u32 big-endian][body: len bytes of CBOR]
//
// where crc is the CRC-32C (Castagnoli) of the body. len is at least 1.

const recHeaderSize = 8

// maxRecord bounds a record's body: a request frame is at most 4GiB-1.
const maxRecord = 1<<32 - 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// beginRecord reserves a record header at the end of dst.
func beginRecord(dst []byte) ([]byte, int) {
	start := len(dst)
	return append(dst, 0, 0, 0, 0, 0, 0, 0, 0), start
}

// endRecord fills in the header of the record begun at start.
func endRecord(dst []byte, start int) []byte {
	body := dst[start+recHeaderSize:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(body, castagnoli))
	return dst
}

// Reading. A reader tells three ends apart: the clean end of the file
// (io.EOF), a file that ends inside a record (errTorn: a write cut short by
// a crash, when nothing valid follows), and damage (a *DamageError).

var errTorn = errors.New("the file ends inside a record")

// DamageError says where a file is damaged, or that it is missing. Open
// returns it (wrapped) when the MANIFEST, a snapshot or a log segment
// cannot be read; --recover (Options.Recover) loads what comes before
// Offset and moves the file aside.
type DamageError struct {
	File   string
	Offset int64 // -1: the file is missing
	Reason string
}

func (e *DamageError) Error() string {
	if e.Offset < 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Reason)
	}
	return fmt.Sprintf("%s is damaged at byte offset %d: %s", e.File, e.Offset, e.Reason)
}

type recordReader struct {
	f    *os.File
	path string
	size int64
	r    *bufio.Reader
	off  int64 // offset of the next record
	buf  []byte
	bad  int64 // the length of the record next just found with a wrong checksum
}

func newRecordReader(f *os.File, path string, size, off int64) *recordReader {
	return &recordReader{f: f, path: path, size: size, off: off, r: bufio.NewReaderSize(io.NewSectionReader(f, off, size-off), 1<<20)}
}

func (rr *recordReader) damage(off int64, format string, args ...any) error {
	return &DamageError{File: rr.path, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// next returns the body of the next record (valid until the next call),
// io.EOF at the clean end, errTorn, or a *DamageError. On errTorn and
// damage, rr.off is the offset of the record that could not be read.
func (rr *recordReader) next() ([]byte, error) {
	rr.bad = 0
	left := rr.size - rr.off
	if left == 0 {
		return nil, io.EOF
	}
	if left < recHeaderSize {
		return nil, rr.torn()
	}
	var h [recHeaderSize]byte
	if _, err := io.ReadFull(rr.r, h[:]); err != nil {
		return nil, fmt.Errorf("read %s at %d: %w", rr.path, rr.off, err)
	}
	n := int64(binary.BigEndian.Uint32(h[:]))
	sum := binary.BigEndian.Uint32(h[4:])
	if n == 0 || n > left-recHeaderSize {
		// A length of 0 is no record: zeros, as a filesystem can leave
		// past the end of what was written when the machine stopped.
		// Either is a write cut short if no whole record follows.
		return nil, rr.torn()
	}
	if int64(cap(rr.buf)) < n {
		rr.buf = make([]byte, n)
	}
	body := rr.buf[:n]
	if _, err := io.ReadFull(rr.r, body); err != nil {
		return nil, fmt.Errorf("read %s at %d: %w", rr.path, rr.off, err)
	}
	if crc32.Checksum(body, castagnoli) != sum {
		rr.bad = recHeaderSize + n
		return nil, rr.damage(rr.off, "checksum mismatch in a record of %d bytes", n)
	}
	rr.off += recHeaderSize + n
	return body, nil
}

// skipDamaged passes over the record that next just reported with a
// checksum mismatch, for salvage: its length fits in the file, and the
// record after it is only used if its own checksum matches.
func (rr *recordReader) skipDamaged() bool {
	if rr.bad == 0 {
		return false
	}
	rr.off += rr.bad
	rr.bad = 0
	return true
}

// maxTornScan bounds how much of a file's tail torn reads into memory to
// look for valid records after an incomplete one.
const maxTornScan = 64 << 20

// torn decides whether the record at rr.off, which claims to run past the
// end of the file (or to have length 0), is a write cut short (nothing
// valid after it: errTorn) or damage (a corrupted length with whole
// records after it).
func (rr *recordReader) torn() error {
	left := rr.size - rr.off
	if left > maxTornScan {
		return rr.damage(rr.off, "a record runs past the end of the file, with %d bytes left (too many for a write cut short)", left)
	}
	tail := make([]byte, left)
	if _, err := rr.f.ReadAt(tail, rr.off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read %s at %d: %w", rr.path, rr.off, err)
	}
	if p := findRecord(tail, 1); p >= 0 {
		return rr.damage(rr.off, "a record's length is 0 or runs past the end of the file, but a whole record follows at offset %d", rr.off+int64(p))
	}
	return errTorn
}

// findRecord returns the first offset at or after from where b holds a
// whole record with a matching checksum and a CBOR array body, or -1.
func findRecord(b []byte, from int) int {
	for p := from; p+recHeaderSize < len(b); p++ {
		n := int(binary.BigEndian.Uint32(b[p:]))
		if n == 0 || n > len(b)-p-recHeaderSize {
			continue
		}
		body := b[p+recHeaderSize : p+recHeaderSize+n]
		if body[0]>>5 != 4 {
			continue
		}
		if crc32.Checksum(body, castagnoli) == binary.BigEndian.Uint32(b[p+4:]) {
			return p
		}
	}
	return -1
}
