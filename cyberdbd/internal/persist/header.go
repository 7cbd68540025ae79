package persist

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// File headers. Snapshots and log segments start with a magic (8 bytes),
// the format version (u32 big-endian) and, since version 2, the CRC-32C
// of the header (u32 big-endian at byte 12, computed with those four
// bytes zero). Version 1 had zeros there, and no checksum.
//
// The checksum is what tells a file of a newer format from a damaged one:
// only a header whose checksum matches may claim a version this cyberdbd
// does not know (ErrFutureVersion); one whose checksum does not match is
// damage, like any other, with its file and offset. Every later format
// keeps the magic, the version and this checksum where they are.

const headerCRCAt = 12

// headerCRC is the checksum of header h (its CRC field taken as zero).
func headerCRC(h []byte) uint32 {
	c := crc32.Update(0, castagnoli, h[:headerCRCAt])
	c = crc32.Update(c, castagnoli, []byte{0, 0, 0, 0})
	return crc32.Update(c, castagnoli, h[headerCRCAt+4:])
}

// putHeader fills in h: magic, version and checksum, after the caller
// filled in the rest (bytes 16 on).
func putHeader(h []byte, magic string, version uint32) {
	copy(h, magic)
	binary.BigEndian.PutUint32(h[8:], version)
	binary.BigEndian.PutUint32(h[headerCRCAt:], 0)
	binary.BigEndian.PutUint32(h[headerCRCAt:], headerCRC(h))
}

// checkHeader returns the format version of header h of the file at path,
// whose magic must be magic and whose version at most current; v1NoCRC
// says whether this kind of file had a version 1 without checksum. A
// damaged header gives a *DamageError; an intact one of a newer format,
// an error wrapping ErrFutureVersion. what names the kind of file.
func checkHeader(path string, h []byte, magic string, current uint32, v1NoCRC bool, what string) (uint32, error) {
	v := binary.BigEndian.Uint32(h[8:])
	stored := binary.BigEndian.Uint32(h[headerCRCAt:])
	crcOK := stored == headerCRC(h)
	if string(h[:8]) != magic {
		if crcOK {
			// Intact, but another kind of file.
			return 0, &DamageError{File: path, Offset: 0, Reason: "not a cyberdb " + what + " (its header has another magic)"}
		}
		return 0, &DamageError{File: path, Offset: 0, Reason: "not a cyberdb " + what + ", or its header is damaged (bad magic)"}
	}
	if v1NoCRC && v == 1 && stored == 0 {
		return 1, nil // version 1: no checksum, zeros
	}
	if !crcOK {
		if v1NoCRC && v == 1 {
			return 0, &DamageError{File: path, Offset: headerCRCAt, Reason: "the header is damaged (a version 1 header must have zeros at byte 12)"}
		}
		return 0, &DamageError{File: path, Offset: 0, Reason: fmt.Sprintf("the header is damaged (checksum mismatch; it reads as format version %d)", v)}
	}
	switch {
	case v > current:
		return v, fmt.Errorf("%s has format version %d, and this cyberdbd reads versions 1 to %d: it was %w; run a newer cyberdbd", path, v, current, ErrFutureVersion)
	case v < 1 || v1NoCRC && v < 2:
		// A checksum over a version-0 header: not something any cyberdbd wrote.
		return 0, &DamageError{File: path, Offset: 8, Reason: fmt.Sprintf("unknown format version %d", v)}
	}
	return v, nil
}
