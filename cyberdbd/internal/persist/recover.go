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

// Recovery at start: the MANIFEST, the snapshot, then the log segments
// from the one the snapshot names, in order. The package doc says what
// each kind of damage leads to; this file is the exact rule.

type report struct {
	needSnapshot bool   // the state must be snapshotted before serving
	manifestGen  uint64 // the generation of the MANIFEST read, 0 if none
}

// howToRecover ends the message of a start refused because of damage in
// the log.
const howToRecover = "cyberdbd did not start and changed nothing. Start it once with --recover to load everything " +
	"valid before the damage; the damaged file is moved aside (renamed *.damaged-TIME, never deleted) and the log says how much was dropped"

// howToRecoverSnapshot ends the message of a start refused because the
// snapshot is damaged or missing.
const howToRecoverSnapshot = "cyberdbd did not start and changed nothing. Start it once with --recover to load " +
	backupName + " and the log after it instead (the exact state, when they are intact; otherwise the tables that can be " +
	"loaded whole, see the README); the damaged file is moved aside (renamed *.damaged-TIME, never deleted) and the log says what was loaded"

func (db *DB) recover() (report, error) {
	var rep report
	dir := db.opts.Dir
	ents, err := os.ReadDir(dir)
	if err != nil {
		return rep, err
	}
	// Files no state needs, removed once the start is sure to go on: a
	// refused start changes nothing.
	var unneeded []string
	var segs []uint64
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, tempSuffix) {
			unneeded = append(unneeded, filepath.Join(dir, name)) // a snapshot never finished
			continue
		}
		if n, ok := parseSegmentName(name); ok {
			segs = append(segs, n)
		}
	}
	slices.Sort(segs)

	// 1. The MANIFEST: which segments must exist.
	man, err := db.readManifest(segs)
	if err != nil {
		return rep, err
	}
	if man != nil {
		rep.manifestGen = man.gen
	} else if db.opts.Recover {
		rep.needSnapshot = true // a MANIFEST that was damaged or missing
	}

	// 2. The snapshot (or, with --recover, what replaces a damaged one).
	b, err := db.loadBase(segs, man)
	if err != nil {
		return rep, err
	}
	rep.needSnapshot = rep.needSnapshot || b.recovered
	db.snapSeg, db.keepSeg = b.snapSeg, b.keepSeg

	// Segments before the base that no snapshot needs are left over from
	// a crash between a snapshot and their removal.
	for len(segs) > 0 && segs[0] < min(b.keepSeg, b.from) {
		unneeded = append(unneeded, segPath(dir, segs[0]))
		segs = segs[1:]
	}

	// 3. The log: every segment from b.from to the last one.
	last := uint64(0)
	if len(segs) > 0 {
		last = segs[len(segs)-1]
	}
	if man != nil && man.last > 0 {
		// Segments after the MANIFEST's last were created by a start or a
		// snapshot that crashed before naming them: they hold no record.
		for len(segs) > 0 && segs[len(segs)-1] > man.last {
			remove, err := db.unusedSegment(segs[len(segs)-1], man.last)
			if err != nil {
				return rep, err
			}
			if remove {
				unneeded = append(unneeded, segPath(dir, segs[len(segs)-1]))
			}
			segs = segs[:len(segs)-1]
		}
		last = man.last
	}
	ops, replayed := 0, 0
	stopped := false // --recover: after damage, the later segments are moved aside
	var lastRes segResult
	for n := b.from; n <= last; n++ {
		path := segPath(dir, n)
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			if stopped {
				continue
			}
			de := &DamageError{File: path, Offset: -1, Reason: db.missingReason(n, last, man)}
			if !db.opts.Recover {
				return rep, fmt.Errorf("%w. %s", de, howToRecover)
			}
			db.log.Warn("--recover: a log segment is missing; the log is loaded up to it, and what follows it is moved aside", "damage", de.Error())
			stopped, rep.needSnapshot = true, true
			continue
		}
		if err != nil {
			return rep, err
		}
		if stopped {
			db.log.Warn("--recover: later log segment dropped (it follows the damage)", "file", path, "bytes_dropped", fi.Size(), "moved_to", db.moveAside(path))
			continue
		}
		chk := segCheck{last: n == last, named: man != nil && n <= man.last}
		if man != nil && n == man.last {
			chk.durable = man.durable
		}
		res, err := db.replaySegment(dir, n, chk)
		ops += res.ops
		if res.removed {
			last-- // the new segment takes its number: no gap
			continue
		}
		replayed++
		if err != nil {
			var de *DamageError
			ok := errors.As(err, &de)
			if !ok || !db.opts.Recover {
				if ok {
					return rep, fmt.Errorf("%w. %s", de, howToRecover)
				}
				return rep, err
			}
			db.log.Warn("--recover: log segment damaged; loaded the records before the damage",
				"damage", de.Error(), "ops_loaded", res.ops, "bytes_dropped", fi.Size()-de.Offset, "moved_to", db.moveAside(path))
			stopped, rep.needSnapshot = true, true
			continue
		}
		if n == last {
			lastRes = res
		}
	}
	db.segSeq = max(last, max(b.from, 1)-1)
	for _, p := range unneeded {
		os.Remove(p)
	}
	if lastRes.version >= 2 && !lastRes.sealed && !stopped {
		// The log goes on in a new segment: this one gets its end record,
		// so that from now on a cut of it is damage.
		if err := sealSegment(segPath(dir, last), lastRes.end); err != nil {
			return rep, err
		}
	}
	if len(db.setAside) > 0 {
		rep.needSnapshot = true
		db.log.Warn("--recover: tables set aside: the log holds ops on them that could not be replayed exactly, so they were left out rather than rebuilt wrong; "+
			"their last whole state is in the files moved aside", "tables", db.setAside)
	}
	if replayed > 0 {
		db.log.Info("log replayed", "segments", replayed, "ops", ops)
		if !db.opts.AppendOnly {
			rep.needSnapshot = true // --appendonly=false: fold the log into a snapshot
		}
	}
	return rep, nil
}

// readManifest reads the MANIFEST, or returns nil when there is none (a
// data dir of a cyberdbd before format 2, or a new one) or, with
// --recover, when it is damaged or missing.
func (db *DB) readManifest(segs []uint64) (*manifestState, error) {
	dir := db.opts.Dir
	path := filepath.Join(dir, manifestName)
	man, err := readManifest(dir)
	if err != nil {
		if errors.Is(err, ErrFutureVersion) {
			return nil, err
		}
		var de *DamageError
		if !errors.As(err, &de) {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if !db.opts.Recover {
			return nil, fmt.Errorf("%w. %s", de, howToRecover)
		}
		db.log.Warn("--recover: the MANIFEST is damaged: the log is loaded without it, so a missing or cut last segment cannot be detected this time",
			"damage", de.Error(), "moved_to", db.moveAside(path))
		return nil, nil
	}
	if man != nil {
		return man, nil
	}
	// No MANIFEST: fine for a new data dir, a restored snapshot or the
	// files of a cyberdbd before format 2; not when there are segments
	// of format 2, which are only ever written with one.
	for _, n := range segs {
		if v := segmentVersion(segPath(dir, n)); v >= 2 {
			msg := fmt.Sprintf("%s is missing, but log segment %s is of format %d, written with one: without it cyberdbd cannot tell whether the end of the log is missing",
				path, segmentName(n), v)
			if !db.opts.Recover {
				return nil, fmt.Errorf("%s. %s", msg, howToRecover)
			}
			db.log.Warn("--recover: the MANIFEST is missing: the log is loaded without it, so a missing or cut last segment cannot be detected this time", "detail", msg)
			return nil, nil
		}
	}
	return nil, nil
}

// segmentVersion is the version a segment's header claims, 0 if unreadable.
func segmentVersion(path string) uint32 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var h [12]byte
	if _, err := io.ReadFull(f, h[:]); err != nil || string(h[:8]) != logMagic {
		return 0
	}
	return binary.BigEndian.Uint32(h[8:])
}

// missingReason says why segment n must exist.
func (db *DB) missingReason(n, last uint64, man *manifestState) string {
	if man != nil && n <= man.last {
		if n == man.last {
			return "the file is missing: it is the last segment, and MANIFEST says it was created (the writes in it are lost unless you find the file)"
		}
		return fmt.Sprintf("the file is missing: MANIFEST says the log goes on to segment %d", man.last)
	}
	return fmt.Sprintf("the file is missing, and the log goes on at %s", segmentName(last))
}

// unusedSegment checks segment n, which the MANIFEST (ending at last)
// does not name: a segment created by a start or a snapshot that crashed
// before the MANIFEST named it, which holds no record and is to be
// removed. One that holds more than a header is damage.
func (db *DB) unusedSegment(n, last uint64) (remove bool, err error) {
	path := segPath(db.opts.Dir, n)
	fi, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	if fi.Size() <= logHeader {
		db.log.Info("removing a log segment created just before a crash (it holds no record)", "file", path, "bytes", fi.Size())
		return true, nil
	}
	de := &DamageError{File: path, Offset: logHeader, Reason: fmt.Sprintf("the segment holds records, but MANIFEST says the log ends at segment %d", last)}
	if !db.opts.Recover {
		return false, fmt.Errorf("%w. %s", de, howToRecover)
	}
	db.log.Warn("--recover: log segment not replayed (MANIFEST does not name it)", "damage", de.Error(), "bytes_dropped", fi.Size(), "moved_to", db.moveAside(path))
	return false, nil
}

// base is the state the log is replayed onto.
type base struct {
	from      uint64 // the first segment to replay
	snapSeg   uint64 // DB.snapSeg: where snapshot.cdb starts, 0 if it was not loaded
	keepSeg   uint64 // DB.keepSeg
	recovered bool   // --recover replaced or trimmed it: snapshot before serving
}

// loadBase loads snapshot.cdb into the store, or, if it is damaged or
// missing, refuses to start; with --recover it loads the first of these
// that can be had instead:
//
//  1. snapshot.cdb.bak, when the log after it is all there (from the
//     segment it names on, without a gap): with that log, the exact state;
//  2. the empty state, when the log is all there from its first segment
//     (no snapshot was taken since segment 1, or only one);
//  3. the tables of the damaged snapshot that can be read whole (those
//     damage cuts short are set aside: readSnapshot's salvage), with the
//     log after it; if even the snapshot's first record is lost, no table,
//     with the log from its first segment.
//
// In case 3 the log is replayed onto a store that lacks some tables:
// every op on a missing table fails and is skipped, and an op that fails
// on a table that is there sets that table aside too (DB.setAside), so
// every table served holds a state it really had. A table the log
// creates (after a drop, or new) is rebuilt whole from its create on.
func (db *DB) loadBase(segs []uint64, man *manifestState) (base, error) {
	dir := db.opts.Dir
	snapPath := filepath.Join(dir, snapshotName)
	res, err := readSnapshot(snapPath, db.st, false)
	if err == nil {
		n := res.info.LogSegment
		keep := n
		if man != nil && man.keep > 0 {
			keep = min(keep, man.keep)
		}
		db.lastSnapAt = res.info.time()
		db.log.Info("snapshot loaded", "file", snapPath, "tables", res.stats.Tables, "entries", res.stats.Entries,
			"created", res.info.time().Format(time.RFC3339))
		return base{from: n, snapSeg: n, keepSeg: keep}, nil
	}
	if errors.Is(err, ErrFutureVersion) {
		return base{}, err
	}
	var de *DamageError
	if errors.Is(err, fs.ErrNotExist) {
		switch {
		case man != nil && man.snap > 0:
			de = &DamageError{File: snapPath, Offset: -1, Reason: fmt.Sprintf("the file is missing, but MANIFEST says a snapshot was written (one the log continues from at segment %d)", man.snap)}
		case len(segs) == 0 || segs[0] == 1:
			// No snapshot yet: the log from its start.
			return base{from: 1, keepSeg: 1}, nil
		default:
			de = &DamageError{File: snapPath, Offset: -1, Reason: fmt.Sprintf("the file is missing, and the log starts at segment %d: the snapshot that holds what came before it is gone", segs[0])}
		}
	} else {
		if !errors.As(err, &de) {
			return base{}, fmt.Errorf("read snapshot %s: %w", snapPath, err)
		}
	}
	if !db.opts.Recover {
		return base{}, fmt.Errorf("%w. %s", de, howToRecoverSnapshot)
	}
	clearStore(db.st)
	moved := ""
	if _, err := os.Stat(snapPath); err == nil {
		moved = db.moveAside(snapPath)
	}

	// 1. The backup and the log after it.
	bakPath := filepath.Join(dir, backupName)
	bres, berr := readSnapshot(bakPath, db.st, false)
	if berr == nil {
		n := bres.info.LogSegment
		if gap := firstGap(segs, n); gap == 0 {
			db.log.Warn("--recover: the snapshot is damaged; loaded "+backupName+" instead, and the log after it",
				"damage", de.Error(), "moved_to", moved, "backup_created", bres.info.time().Format(time.RFC3339),
				"tables", bres.stats.Tables, "entries", bres.stats.Entries, "log_from", segmentName(n))
			return base{from: n, keepSeg: n, recovered: true}, nil
		} else {
			berr = fmt.Errorf("the log after it is incomplete: %s is missing", segmentName(gap))
		}
	}
	clearStore(db.st)

	// 2. The empty state and the whole log.
	if len(segs) > 0 && segs[0] == 1 && firstGap(segs, 1) == 0 {
		db.log.Warn("--recover: the snapshot is damaged and "+backupName+" cannot replace it; the log is whole from its first segment: replaying it from the empty state",
			"damage", de.Error(), "moved_to", moved, "backup", errString(berr))
		return base{from: 1, keepSeg: 1, recovered: true}, nil
	}

	// 3. The whole tables of the damaged snapshot.
	from := uint64(1)
	if len(segs) > 0 {
		from = segs[0]
	}
	if moved != "" {
		sres, _ := readSnapshot(moved, db.st, true)
		if sres.infoOK {
			db.log.Warn("--recover: the snapshot is damaged and "+backupName+" cannot replace it; loaded the tables of the damaged snapshot that can be read whole. "+
				"The tables the damage cuts short (and those it makes unreadable) are set aside; the log after the snapshot is replayed onto the tables loaded",
				"damage", de.Error(), "moved_to", moved, "backup", errString(berr), "tables_loaded", sres.stats.Tables,
				"entries_loaded", sres.stats.Entries, "tables_cut_short", sres.cut, "tables_unreadable", sres.lost)
			db.setAside = append(db.setAside, sres.cut...)
			n := sres.info.LogSegment
			return base{from: n, keepSeg: n, recovered: true}, nil
		}
		clearStore(db.st)
	}
	db.log.Warn("--recover: the snapshot is damaged, "+backupName+" cannot replace it, and the damaged snapshot does not say where its log starts: "+
		"starting without its tables. The log is replayed from its first segment; the tables it creates are rebuilt, ops on the others are skipped",
		"damage", de.Error(), "moved_to", moved, "backup", errString(berr), "log_from", segmentName(from))
	return base{from: from, keepSeg: from, recovered: true}, nil
}

// firstGap returns the first segment missing from n up to the last of
// segs (sorted), or 0 if none is: the log from n on is all there.
func firstGap(segs []uint64, n uint64) uint64 {
	want := n
	for _, s := range segs {
		if s < n {
			continue
		}
		if s != want {
			return want
		}
		want++
	}
	return 0
}

// clearStore drops every table (no journal is installed during recovery).
// Like every op of recovery it goes through Replay, under which nothing
// is expired: a table past its deadline is a table like any other here.
func clearStore(st interface {
	Replay(wire.Op, wire.Args, []byte) ([]byte, error)
}) {
	out, err := st.Replay(wire.OpTables, wire.Args{}, nil)
	if err != nil {
		return
	}
	var tables [][]any
	if wire.Unmarshal(out, &tables) != nil {
		return
	}
	for _, t := range tables {
		if name, ok := t[0].(string); ok {
			dropTable(st, name)
		}
	}
}

func dropTable(st interface {
	Replay(wire.Op, wire.Args, []byte) ([]byte, error)
}, name string) bool {
	_, err := st.Replay(wire.OpDrop, wire.Args{Op: wire.OpDrop, Items: []wire.Raw{wire.AppendText(nil, name)}}, nil)
	return err == nil
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

// segCheck is what replaySegment checks a segment against.
type segCheck struct {
	last    bool  // the last segment: may end without its end record, or with a torn tail
	named   bool  // the MANIFEST names it: its header was on disk
	durable int64 // bytes of it the MANIFEST says were on disk
}

// segResult is what replaySegment read.
type segResult struct {
	ops     int
	removed bool // a last segment cut in its header, and no MANIFEST vouched for it: removed
	version uint32
	sealed  bool  // it ends with its end record
	end     int64 // the offset after its last op record
}

// replaySegment applies the records of segment n to the store. A record
// cut short (or zeros) at the end of the last segment, past what the
// MANIFEST says was on disk, is a write cut short by a crash: cut off with
// a warning. Any other damage is a *DamageError, after which the records
// before it have been applied: a segment before the last without its end
// record, a last segment shorter than the MANIFEST says, a checksum
// mismatch, a damaged header. Ops that fail on replay stop the start;
// with --recover they set their tables aside (DB.setAside).
func (db *DB) replaySegment(dir string, n uint64, c segCheck) (res segResult, err error) {
	path := segPath(dir, n)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return res, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return res, err
	}
	size := fi.Size()
	var h [logHeader]byte
	if k, _ := io.ReadFull(f, h[:]); k < logHeader {
		if c.last && !c.named && (k == 0 || strings.HasPrefix(logMagic, string(h[:min(k, len(logMagic))]))) {
			// Created, then the daemon stopped before its header was on
			// disk (and before the MANIFEST named it): it holds no record.
			db.log.Warn("log segment cut short in its header (a crash while it was created); removed: it held no record", "file", path, "bytes", size)
			failpoint("recover-truncate")
			if err := os.Remove(path); err != nil {
				return res, err
			}
			res.removed = true
			return res, syncDir(dir)
		}
		reason := fmt.Sprintf("the segment is %d bytes, shorter than its header", size)
		if size == 0 {
			reason = "the file is empty"
		}
		if c.named {
			reason += fmt.Sprintf("; MANIFEST says %d bytes of it were on disk", max(c.durable, logHeader))
		}
		return res, &DamageError{File: path, Offset: size, Reason: reason}
	}
	v, err := checkHeader(path, h[:], logMagic, logVersion, true, "log segment")
	if err != nil {
		return res, err
	}
	res.version = v
	if s := binary.BigEndian.Uint64(h[16:]); s != n {
		return res, &DamageError{File: path, Offset: 16, Reason: fmt.Sprintf("the header says segment %d", s)}
	}
	rr := newRecordReader(f, path, size, logHeader)
	var items []wire.Raw
	var out []byte
	skipped := 0
	cut := func(off int64) error {
		return &DamageError{File: path, Offset: off, Reason: fmt.Sprintf("the segment ends at offset %d, but MANIFEST says %d bytes of it were on disk: it was cut (the records after offset %d are lost)", off, c.durable, off)}
	}
	for {
		off := rr.off
		body, err := rr.next()
		if err == io.EOF {
			res.end = off
			break
		}
		if err == errTorn {
			if !c.last {
				return res, &DamageError{File: path, Offset: off, Reason: "a record is cut short, and later segments follow"}
			}
			if off < c.durable {
				return res, cut(off)
			}
			db.log.Warn("the log ends with a record cut short (a crash in the middle of a write, or zeros a crash left): loaded up to the last whole record and cut off the rest",
				"file", path, "offset", off, "bytes_dropped", size-off)
			failpoint("recover-truncate")
			if err := f.Truncate(off); err != nil {
				return res, fmt.Errorf("truncate %s at %d: %w", path, off, err)
			}
			if err := f.Sync(); err != nil {
				return res, fmt.Errorf("fsync %s: %w", path, err)
			}
			res.end = off
			break
		}
		if err != nil {
			return res, err
		}
		items, err = wire.SplitArrayInto(body, items)
		var op uint64
		ok := err == nil && len(items) > 0
		if ok {
			op, ok = wire.ItemUint(items[0])
		}
		if ok && op == sealOp && v >= 2 {
			var at uint64
			good := len(items) == 2
			if good {
				at, good = wire.ItemUint(items[1])
			}
			if !good || int64(at) != off {
				return res, &DamageError{File: path, Offset: off, Reason: "a malformed end record"}
			}
			if rr.off != size {
				return res, &DamageError{File: path, Offset: rr.off, Reason: "data after the segment's end record"}
			}
			res.sealed, res.end = true, off
			break
		}
		if !ok || op == 0 || op > 0xffff || !wire.Op(op).IsWrite() {
			return res, &DamageError{File: path, Offset: off, Reason: "a record is not a write op [op, arg...]"}
		}
		out, err = db.st.Replay(wire.Op(op), wire.Args{Op: wire.Op(op), Items: items[1:]}, out[:0])
		if err != nil {
			if !db.opts.Recover {
				return res, fmt.Errorf("%s at byte offset %d: replaying %s failed: %v. The log does not match the snapshot; %s",
					path, off, wire.Op(op), err, howToRecover)
			}
			db.setAsideTables(wire.Op(op), items[1:])
			skipped++
			continue
		}
		res.ops++
	}
	if v >= 2 && !c.last && !res.sealed {
		return res, &DamageError{File: path, Offset: res.end, Reason: "the segment ends without its end record: it was cut (the log moves to a new segment only once this one is complete)"}
	}
	valid := res.end
	if res.sealed {
		valid = size
	}
	if valid < c.durable {
		return res, cut(valid)
	}
	if skipped > 0 {
		db.log.Warn("--recover: ops that could not be replayed were skipped, and the tables they touch set aside", "file", path, "skipped", skipped)
	}
	return res, nil
}

// sealSegment appends the end record to the segment at path, whose
// records end at end (its size), and fsyncs it.
func sealSegment(path string, end int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(appendSeal(nil, end), end); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	failpoint("log-fsync")
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return nil
}

// setAsideTables drops the tables an op that failed on replay touches,
// when they exist: their state no longer follows the log (the op really
// happened, since only ops that succeeded are logged), so keeping them
// would serve values nobody wrote.
func (db *DB) setAsideTables(op wire.Op, args []wire.Raw) {
	for _, name := range opTables(op, args) {
		if dropTable(db.st, name) && !slices.Contains(db.setAside, name) {
			db.setAside = append(db.setAside, name)
		}
	}
}

// opTables returns the names of the tables op addresses (each op of a
// batch; the op inside a timed record).
func opTables(op wire.Op, args []wire.Raw) []string {
	if op == wire.OpTimed {
		if len(args) != 2 {
			return nil
		}
		inner, err := wire.SplitArray(args[1])
		if err != nil || len(inner) == 0 {
			return nil
		}
		iop, ok := wire.ItemUint(inner[0])
		if !ok || iop == uint64(wire.OpTimed) || iop > 0xffff {
			return nil
		}
		return opTables(wire.Op(iop), inner[1:])
	}
	if op != wire.OpBatch {
		if len(args) > 0 {
			if name, ok := wire.ItemText(args[0]); ok {
				return []string{strings.Clone(name)}
			}
		}
		return nil
	}
	if len(args) == 0 {
		return nil
	}
	subs, err := wire.SplitArray(args[0])
	if err != nil {
		return nil
	}
	var names []string
	for _, sub := range subs {
		items, err := wire.SplitArray(sub)
		if err != nil || len(items) < 2 {
			continue
		}
		if name, ok := wire.ItemText(items[1]); ok {
			names = append(names, strings.Clone(name))
		}
	}
	return names
}
