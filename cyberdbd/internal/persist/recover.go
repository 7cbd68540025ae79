package persist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Recovery at start: the snapshot, then the log segments from the one it
// names, in order. See the package doc for what each kind of damage does.

type report struct {
	needSnapshot bool // the state must be snapshotted before serving
}

// howToRecover ends the message of a start refused because of damage.
const howToRecover = "cyberdbd did not start and changed nothing. Start it once with --recover to load everything " +
	"valid before the damage; the damaged file is moved aside (renamed *.damaged-TIME, never deleted) and the log says how much was dropped"

func (db *DB) recover() (report, error) {
	var rep report
	dir := db.opts.Dir
	ents, err := os.ReadDir(dir)
	if err != nil {
		return rep, err
	}
	var segs []uint64
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, tempSuffix) {
			os.Remove(filepath.Join(dir, name)) // a snapshot never finished
			continue
		}
		if n, ok := parseSegmentName(name); ok {
			segs = append(segs, n)
		}
	}
	slices.Sort(segs)

	// 1. The snapshot.
	from := uint64(1) // first segment to replay
	snapPath := filepath.Join(dir, snapshotName)
	info, infoOK, loaded, err := readSnapshot(snapPath, db.st, db.opts.Recover)
	haveSnap := true
	switch {
	case errors.Is(err, fs.ErrNotExist):
		haveSnap = false
		if len(segs) > 0 {
			from = segs[0]
		}
		if from > 1 {
			msg := fmt.Sprintf("the log in %s starts at segment %d, but there is no %s to hold what came before it", dir, from, snapshotName)
			if _, e := os.Stat(filepath.Join(dir, backupName)); e == nil {
				msg += fmt.Sprintf(" (there is a %s: if %s was deleted by mistake, the backup is older and the log that followed it is gone)", backupName, snapshotName)
			}
			if !db.opts.Recover {
				return rep, fmt.Errorf("%s. cyberdbd did not start and changed nothing. Start it with --recover to load the log as it is (the tables of the missing part are lost)", msg)
			}
			db.log.Warn("--recover: loading a log with no snapshot for its start; ops on tables it does not create are skipped", "detail", msg)
			rep.needSnapshot = true
		}
	case err != nil:
		if errors.Is(err, ErrFutureVersion) {
			return rep, err
		}
		de, ok := errorsAs[*DamageError](err)
		if !ok {
			return rep, fmt.Errorf("read snapshot %s: %w", snapPath, err)
		}
		if !db.opts.Recover {
			return rep, fmt.Errorf("%w. %s (the previous snapshot, %s, is older still)", de, howToRecover, backupName)
		}
		moved := db.moveAside(snapPath)
		db.log.Warn("--recover: the snapshot is damaged; loaded what comes before the damage",
			"damage", de.Error(), "tables_loaded", loaded.Tables, "entries_loaded", loaded.Entries,
			"bytes_dropped", loaded.Bytes-de.Offset, "moved_to", moved)
		rep.needSnapshot = true
		if infoOK {
			from = info.LogSegment
		} else {
			// Without the snapshot's info we cannot tell which segments it
			// covers: replaying them could apply ops twice. Keep them aside.
			for _, n := range segs {
				p := filepath.Join(dir, segmentName(n))
				db.log.Warn("--recover: log segment not replayed (the damaged snapshot does not say where replay starts)", "moved_to", db.moveAside(p))
			}
			segs = nil
		}
	default:
		from = info.LogSegment
		db.lastSnapAt = info.time()
		db.log.Info("snapshot loaded", "file", snapPath, "tables", loaded.Tables, "entries", loaded.Entries,
			"created", info.time().Format(time.RFC3339))
	}
	if haveSnap {
		// Segments the snapshot covers are left over from a crash between
		// the snapshot and their removal.
		for len(segs) > 0 && segs[0] < from {
			os.Remove(filepath.Join(dir, segmentName(segs[0])))
			segs = segs[1:]
		}
		if len(segs) > 0 && segs[0] != from {
			return rep, db.gap(dir, from, segs, &rep)
		}
	}
	db.segSeq = max(from, 1) - 1

	// 2. The log.
	ops := 0
	for i, n := range segs {
		if n != db.segSeq+1 {
			if err := db.gapAt(dir, db.segSeq+1, segs[i:], &rep); err != nil {
				return rep, err
			}
			break
		}
		last := i == len(segs)-1
		k, err := db.replaySegment(dir, n, last)
		ops += k
		db.segSeq = n
		if err != nil {
			de, ok := errorsAs[*DamageError](err)
			if !ok || !db.opts.Recover {
				if ok {
					return rep, fmt.Errorf("%w. %s", de, howToRecover)
				}
				return rep, err
			}
			fi, _ := os.Stat(de.File)
			var size int64
			if fi != nil {
				size = fi.Size()
			}
			moved := db.moveAside(de.File)
			db.log.Warn("--recover: log segment damaged; loaded the records before the damage",
				"damage", de.Error(), "ops_loaded", k, "bytes_dropped", size-de.Offset, "moved_to", moved)
			for _, m := range segs[i+1:] {
				p := filepath.Join(dir, segmentName(m))
				fi, _ := os.Stat(p)
				var sz int64
				if fi != nil {
					sz = fi.Size()
				}
				db.log.Warn("--recover: later log segment dropped (it follows the damage)", "file", p, "bytes_dropped", sz, "moved_to", db.moveAside(p))
				db.segSeq = m
			}
			rep.needSnapshot = true
			break
		}
	}
	if len(segs) > 0 {
		db.log.Info("log replayed", "segments", len(segs), "ops", ops)
		if !db.opts.AppendOnly {
			rep.needSnapshot = true // --appendonly=false: fold the log into a snapshot
		}
	}
	return rep, nil
}

func (db *DB) gap(dir string, from uint64, segs []uint64, rep *report) error {
	return db.gapAt(dir, from, segs, rep)
}

// gapAt handles a missing segment want, before segs.
func (db *DB) gapAt(dir string, want uint64, segs []uint64, rep *report) error {
	missing := filepath.Join(dir, segmentName(want))
	if !db.opts.Recover {
		return fmt.Errorf("log segment %s is missing (the log continues at %s): %s", missing, segmentName(segs[0]), howToRecover)
	}
	for _, m := range segs {
		p := filepath.Join(dir, segmentName(m))
		db.log.Warn("--recover: log segment dropped (it follows a missing one)", "missing", missing, "moved_to", db.moveAside(p))
		db.segSeq = max(db.segSeq, m)
	}
	rep.needSnapshot = true
	return nil
}

// moveAside renames a damaged file so that it is kept but no longer used.
func (db *DB) moveAside(path string) string {
	to := fmt.Sprintf("%s.damaged-%s", path, time.Now().UTC().Format("20060102T150405.000000000"))
	if err := os.Rename(path, to); err != nil {
		db.log.Error("could not move a damaged file aside", "file", path, "err", err)
		return ""
	}
	_ = syncDir(filepath.Dir(path))
	return to
}

// replaySegment applies the records of segment n to the store. A record
// cut short at the end of the last segment (a crash in the middle of a
// write) is cut off with a warning; any other damage is a *DamageError,
// after which the records before it have been applied. With --recover, ops
// that fail on replay are skipped and counted; otherwise they stop the start.
func (db *DB) replaySegment(dir string, n uint64, last bool) (ops int, err error) {
	path := filepath.Join(dir, segmentName(n))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	var h [logHeader]byte
	if k, _ := io.ReadFull(f, h[:]); k < logHeader {
		if last && (k == 0 || strings.HasPrefix(logMagic, string(h[:min(k, len(logMagic))]))) {
			// Created, then the daemon stopped before its header was
			// durable: an empty segment.
			// Write the header again, keeping the segment numbers contiguous.
			db.log.Warn("log segment cut short in its header (a crash while it was created); rewritten empty", "file", path, "bytes", size)
			copy(h[:], logMagic)
			binary.BigEndian.PutUint32(h[8:], logVersion)
			binary.BigEndian.PutUint32(h[12:], 0)
			binary.BigEndian.PutUint64(h[16:], n)
			failpoint("recover-truncate")
			if err := f.Truncate(0); err != nil {
				return 0, err
			}
			if _, err := f.WriteAt(h[:], 0); err != nil {
				return 0, err
			}
			return 0, f.Sync()
		}
		return 0, &DamageError{File: path, Offset: 0, Reason: "the segment is shorter than its header"}
	}
	if string(h[:8]) != logMagic {
		return 0, &DamageError{File: path, Offset: 0, Reason: "not a cyberdb log segment (bad header)"}
	}
	if v := binary.BigEndian.Uint32(h[8:]); v != logVersion {
		if v > logVersion {
			return 0, fmt.Errorf("%s has format version %d, and this cyberdbd reads version %d: it was %w; run a newer cyberdbd", path, v, logVersion, ErrFutureVersion)
		}
		return 0, &DamageError{File: path, Offset: 8, Reason: fmt.Sprintf("unknown format version %d", v)}
	}
	if binary.BigEndian.Uint32(h[12:]) != 0 {
		return 0, &DamageError{File: path, Offset: 12, Reason: "reserved header bytes are not zero"}
	}
	if s := binary.BigEndian.Uint64(h[16:]); s != n {
		return 0, &DamageError{File: path, Offset: 16, Reason: fmt.Sprintf("the header says segment %d", s)}
	}
	rr := newRecordReader(f, path, size, logHeader)
	var items []wire.Raw
	var out []byte
	skipped := 0
	for {
		off := rr.off
		body, err := rr.next()
		if err == io.EOF {
			break
		}
		if err == errTorn {
			if !last {
				return ops, &DamageError{File: path, Offset: off, Reason: "a record is cut short, and later segments follow"}
			}
			db.log.Warn("the log ends with a record cut short (a crash in the middle of a write): loaded up to the last whole record and cut off the rest",
				"file", path, "offset", off, "bytes_cut", size-off)
			failpoint("recover-truncate")
			if err := f.Truncate(off); err != nil {
				return ops, fmt.Errorf("truncate %s at %d: %w", path, off, err)
			}
			if err := f.Sync(); err != nil {
				return ops, fmt.Errorf("fsync %s: %w", path, err)
			}
			break
		}
		if err != nil {
			return ops, err
		}
		items, err = splitArray(items[:0], body)
		var op uint64
		ok := err == nil && len(items) > 0
		if ok {
			op, ok = uintItem(items[0])
		}
		if !ok || op == 0 || op > 0xffff || !wire.Op(op).IsWrite() {
			return ops, &DamageError{File: path, Offset: off, Reason: "a record is not a write op [op, arg...]"}
		}
		out, err = db.st.Exec(wire.Op(op), wire.Args{Op: wire.Op(op), Items: items[1:]}, out[:0])
		if err != nil {
			if !db.opts.Recover {
				return ops, fmt.Errorf("%s at byte offset %d: replaying %s failed: %v. The log does not match the snapshot; %s",
					path, off, wire.Op(op), err, howToRecover)
			}
			skipped++
			continue
		}
		ops++
	}
	if skipped > 0 {
		db.log.Warn("--recover: ops that failed on replay were skipped", "file", path, "skipped", skipped)
	}
	return ops, nil
}
