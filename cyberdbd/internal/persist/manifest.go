package persist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// The MANIFEST says which log segments must exist, so that a missing or
// cut one is damage rather than a log that happens to end early. It is
// two slots of 512 bytes, written alternately in place and fsynced (as
// bbolt writes its two meta pages): a crash in the middle of a write
// damages at most the slot being written, and the other still holds the
// state before. A slot (version 1):
//
//	0   "CDBMANIF"
//	8   format version, u32 big-endian
//	12  CRC-32C of the 512-byte slot, computed with these four bytes zero
//	16  generation, u64: the slot with the higher one is current
//	24  snapshot: the log segment snapshot.cdb starts replay at (0: none yet)
//	32  keep: the first segment kept (the one snapshot.cdb.bak starts at)
//	40  last: the segment being written; its header is on disk, and every
//	    segment before it, back to the one the snapshot names, is complete
//	    and ends with its end record (0: no log)
//	48  durable: bytes of segment last known to be on disk (fsynced)
//	56  zeros to 512
//
// It is written when the log moves to a new segment (at each snapshot and
// each start: before any record goes to that segment), when a snapshot is
// on disk (before the segments it makes unneeded are removed), and, at
// most every manifestEvery, when more of the last segment is on disk.
const (
	manifestName    = "MANIFEST"
	manifestMagic   = "CDBMANIF"
	manifestVersion = 1
	manifestSlot    = 512
)

// manifestState is what a slot holds.
type manifestState struct {
	gen     uint64
	snap    uint64
	keep    uint64
	last    uint64
	durable int64
}

func (m manifestState) encode() []byte {
	b := make([]byte, manifestSlot)
	binary.BigEndian.PutUint64(b[16:], m.gen)
	binary.BigEndian.PutUint64(b[24:], m.snap)
	binary.BigEndian.PutUint64(b[32:], m.keep)
	binary.BigEndian.PutUint64(b[40:], m.last)
	binary.BigEndian.PutUint64(b[48:], uint64(m.durable))
	putHeader(b, manifestMagic, manifestVersion)
	return b
}

// readManifest reads the MANIFEST of dir: its current state, or nil if
// there is none. A file with no intact slot is a *DamageError.
func readManifest(dir string) (*manifestState, error) {
	path := filepath.Join(dir, manifestName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var best *manifestState
	var firstErr error
	for i := 0; i < 2; i++ {
		slot := b[min(len(b), i*manifestSlot):min(len(b), (i+1)*manifestSlot)]
		if len(slot) < manifestSlot {
			if len(slot) > 0 && firstErr == nil {
				firstErr = &DamageError{File: path, Offset: int64(i * manifestSlot), Reason: fmt.Sprintf("slot %d is cut short (%d bytes)", i, len(slot))}
			}
			continue
		}
		if allZero(slot) {
			continue // never written: a new MANIFEST has one slot written
		}
		if _, err := checkHeader(path, slot, manifestMagic, manifestVersion, false, "MANIFEST"); err != nil {
			if errors.Is(err, ErrFutureVersion) {
				return nil, err
			}
			if de := (*DamageError)(nil); errors.As(err, &de) {
				de.Offset += int64(i * manifestSlot)
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		m := &manifestState{
			gen:     binary.BigEndian.Uint64(slot[16:]),
			snap:    binary.BigEndian.Uint64(slot[24:]),
			keep:    binary.BigEndian.Uint64(slot[32:]),
			last:    binary.BigEndian.Uint64(slot[40:]),
			durable: int64(binary.BigEndian.Uint64(slot[48:])),
		}
		if best == nil || m.gen > best.gen {
			best = m
		}
	}
	if best == nil {
		if firstErr == nil {
			firstErr = &DamageError{File: path, Offset: 0, Reason: fmt.Sprintf("no intact slot (%d bytes)", len(b))}
		}
		return nil, firstErr
	}
	// A damaged slot beside an intact one is a write cut short by a crash:
	// the intact one is the state before it.
	return best, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// manifest is the MANIFEST being kept. Its methods are safe for
// concurrent use: the log's writer, its durability keeper and snapshots
// all update it.
type manifest struct {
	path string

	mu    sync.Mutex // guards f and cur; held across the write and fsync
	f     *os.File
	cur   manifestState
	wrote bool // cur has been written at least once
}

// createManifest opens (creating if needed) the MANIFEST of dir and makes
// st its state, durably; prevGen is the generation of the state on disk
// (0 for none), so that the slot written now is the newer one. A new file
// is created with the directory fsynced.
func createManifest(dir string, prevGen uint64, st manifestState) (*manifest, error) {
	path := filepath.Join(dir, manifestName)
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	m := &manifest{path: path, f: f, cur: manifestState{gen: prevGen}}
	if statErr != nil {
		// New: both slots, the second empty, so that the file has its
		// final size before the directory entry is made durable.
		if _, err := f.WriteAt(make([]byte, 2*manifestSlot), 0); err != nil {
			f.Close()
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := m.set(func(s *manifestState) { g := s.gen; *s = st; s.gen = g }); err != nil {
		f.Close()
		return nil, err
	}
	if statErr != nil {
		if err := syncDir(dir); err != nil {
			f.Close()
			return nil, err
		}
	}
	return m, nil
}

// set applies change to the state and writes it to the slot not holding
// the current one, then fsyncs. On error the file may hold either state.
func (m *manifest) set(change func(*manifestState)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := m.cur
	change(&next)
	if m.wrote && next == m.cur {
		return nil
	}
	next.gen++
	if _, err := m.f.WriteAt(next.encode(), int64(next.gen%2)*manifestSlot); err != nil {
		return fmt.Errorf("write %s: %w", m.path, err)
	}
	failpoint("manifest-fsync")
	if err := m.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", m.path, err)
	}
	m.cur, m.wrote = next, true
	return nil
}

// state returns the current state.
func (m *manifest) state() manifestState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur
}

func (m *manifest) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.f.Close()
}
