package persist

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/latency"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/procs"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Options configure Open.
type Options struct {
	Dir              string        // the data dir, created 0700 if missing
	AppendOnly       bool          // keep the append-only log (else snapshots only)
	Fsync            Fsync         // when the log is fsynced
	SnapshotInterval time.Duration // between automatic snapshots; 0: none
	Recover          bool          // load what is valid before damage instead of refusing to start
	Logger           *slog.Logger
}

// retryInterval is how often a snapshot is retried while writes are
// refused after a disk error.
const retryInterval = 10 * time.Second

// DB keeps a store durable in a data dir. Its methods are safe for
// concurrent use.
type DB struct {
	opts Options
	st   *store.Store
	log  *slog.Logger
	lock *os.File
	alog *appendLog // nil without AppendOnly
	man  *manifest  // the MANIFEST, open from the end of recovery on

	// refusal is set by a disk error (failed): write ops then fail with
	// CodeIO until a snapshot taken after it succeeds.
	refusal atomic.Pointer[refusal]

	// Lock order: snapMu first; under it the store's locks (Freeze), and
	// under those the log's (rotate; the store's journal hook, too,
	// appends to the log under table locks); the MANIFEST's lock
	// (manifest.mu) with no store or log lock held. infoMu is a leaf.
	snapMu  sync.Mutex // one snapshot at a time; guards segSeq, snapSeg, keepSeg
	segSeq  uint64     // the current log segment (or the last number used)
	snapSeg uint64     // the segment snapshot.cdb starts replay at; 0: no snapshot.cdb
	keepSeg uint64     // the first segment kept: where snapshot.cdb.bak (or the empty state) starts

	setAside []string // tables --recover left out (recover.go); used during Open only

	infoMu       sync.Mutex // guards the fields below, up to snapshots; a leaf
	lastSnapAt   time.Time
	lastSnapDur  time.Duration
	lastSnapErr  error
	lastSnapSize int64
	lastFsyncErr error
	snapshots    int64

	stop    chan struct{}
	stopped chan struct{}
	closed  bool

	// For metrics (Metrics): the log's fsyncs, and the failures of
	// fsyncs and snapshots. Atomic: no lock.
	fsyncs        latency.Histogram
	fsyncFailures atomic.Uint64
	snapFailures  atomic.Uint64
}

type refusal struct {
	err *wire.Error
	seg uint64 // the segment being written when it happened
}

// Open locks the data dir, loads the newest snapshot and replays the log
// into st (which must be empty), starts a new log segment, and from then
// on records every write op of st. Errors that stop the start say what is
// wrong and how to go on.
func Open(st *store.Store, opts Options) (*DB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	db := &DB{opts: opts, st: st, log: opts.Logger, lock: lock, stop: make(chan struct{}), stopped: make(chan struct{})}
	rep, err := db.recover()
	if err != nil {
		lock.Close()
		return nil, err
	}
	// A new segment, then the MANIFEST naming it: a crash in between
	// leaves a segment the MANIFEST does not name, which the next start
	// removes (it holds no record).
	var seg *segment
	if opts.AppendOnly {
		if seg, err = createSegment(dir, db.segSeq+1); err != nil {
			lock.Close()
			return nil, err
		}
		db.segSeq = seg.seq
	}
	mst := manifestState{snap: db.snapSeg, keep: db.keepSeg}
	if seg != nil {
		mst.last, mst.durable = seg.seq, logHeader
	}
	if db.man, err = createManifest(dir, rep.manifestGen, mst); err != nil {
		if seg != nil {
			seg.f.Close()
		}
		lock.Close()
		return nil, err
	}
	if seg != nil {
		db.alog = newAppendLog(db, dir, opts.Fsync, seg)
		db.alog.size.Store(db.segmentBytes())
	}
	st.SetJournalChecked(db.record, db.failed)
	if rep.needSnapshot {
		// After --recover moved files aside, or replayed a log that
		// --appendonly=false will not keep: make the state self-contained.
		if err := db.Save(); err != nil {
			db.abort()
			return nil, fmt.Errorf("snapshot after loading: %w", err)
		}
	}
	go db.background()
	return db, nil
}

// abort stops what Open started, without a snapshot.
func (db *DB) abort() {
	db.st.SetJournal(nil)
	if db.alog != nil {
		db.alog.close()
	}
	db.man.close()
	db.lock.Close()
}

// record is the store's journal: it appends each write to the log, when
// there is one. It cannot fail: the log's writer reports disk errors
// through fail, which refuses the writes that come after (failed is the
// store's pre-check), so no write needs an undo record.
func (db *DB) record(op wire.Op, args wire.Args) error {
	if db.alog != nil {
		db.alog.append(op, args)
	}
	return nil
}

// fail records a disk error: writes are refused from now on.
func (db *DB) fail(seg uint64, err error) {
	we := wire.Errorf(wire.CodeIO, "writes are refused: the data dir failed (%v); reads still work. "+
		"cyberdbd retries a snapshot every %s and accepts writes again once one succeeds (or run 'cyberdb save')", err, retryInterval)
	if db.refusal.CompareAndSwap(nil, &refusal{err: we, seg: seg}) {
		db.log.Error("disk error: refusing writes until a snapshot succeeds", "err", err)
	}
	db.infoMu.Lock()
	db.lastFsyncErr = err
	db.infoMu.Unlock()
	db.fsyncFailures.Add(1)
}

// failed returns the error writes get, or nil.
func (db *DB) failed() error {
	if r := db.refusal.Load(); r != nil {
		return r.err
	}
	return nil
}

// Wait blocks until the writes executed so far by the caller are as
// durable as the fsync policy promises: written to the OS (everysec, no),
// or fsynced (always). The server calls it before sending the replies of
// write ops. An error means those writes may not be durable.
func (db *DB) Wait() error {
	if db.alog == nil {
		return nil
	}
	return db.alog.wait()
}

// Save takes a snapshot now and returns once it is durable.
func (db *DB) Save() error { return db.snapshot() }

func (db *DB) snapshot() error {
	procs.Borrow() // it computes for as long as the tables are big: not on the loops' processors
	defer procs.Return()
	db.snapMu.Lock()
	defer db.snapMu.Unlock()
	start := time.Now()
	st, seq, err := db.writeSnapshot()
	dur := time.Since(start)
	db.infoMu.Lock()
	db.lastSnapDur, db.lastSnapErr = dur, err
	if err != nil {
		db.snapFailures.Add(1)
	}
	if err == nil {
		db.lastSnapAt, db.lastSnapSize = start, st.Bytes
		db.snapshots++
	}
	db.infoMu.Unlock()
	if err != nil {
		db.log.Error("snapshot failed", "err", err, "duration", dur)
		if db.alog == nil {
			db.fail(0, err) // snapshots are all there is: stop writes
		}
		return wire.Errorf(wire.CodeIO, "snapshot failed: %v", err)
	}
	// Writes refused because of a failure before this snapshot's cut are
	// now durable in it: accept writes again.
	if r := db.refusal.Load(); r != nil && (db.alog == nil || r.seg < seq) {
		db.refusal.CompareAndSwap(r, nil)
		db.log.Warn("writes accepted again: a snapshot succeeded after the disk error", "previous_error", r.err.Message)
	}
	db.log.Info("snapshot saved", "tables", st.Tables, "entries", st.Entries, "bytes", st.Bytes, "duration", dur)
	return nil
}

// writeSnapshot cuts (starting a new segment), writes and publishes the
// snapshot, records it in the MANIFEST, then removes the segments no
// snapshot needs: those before the one snapshot.cdb.bak (the snapshot
// before this one) starts at, so that a damaged snapshot.cdb can be
// replaced by the backup and the log after it. It returns the number of
// the first segment this snapshot does not cover.
func (db *DB) writeSnapshot() (snapStats, uint64, error) {
	seq := db.segSeq + 1
	var seg *segment
	if db.alog != nil {
		var err error
		if seg, err = createSegment(db.opts.Dir, seq); err != nil {
			return snapStats{}, 0, err
		}
	}
	created := time.Now()
	cut, err := db.st.Freeze(func() error {
		if seg != nil {
			db.alog.rotate(seg)
		}
		return nil
	})
	if err != nil {
		return snapStats{}, 0, err
	}
	db.segSeq = seq
	if db.alog != nil {
		// Before the snapshot is published: so the MANIFEST never names a
		// last segment older than the one snapshot.cdb starts at, and the
		// segment before it has its end record.
		db.alog.waitSegment(seq)
	}
	st, replaced, err := writeSnapshot(db.opts.Dir, cut, snapInfo{Created: created.UnixNano(), LogSegment: seq})
	if err != nil {
		return st, seq, err
	}
	switch {
	case db.failed() != nil:
		// After a disk error the log before seq may lack records or end
		// records: only this snapshot is a base to count on.
		db.keepSeg = seq
	case replaced:
		// The snapshot before this one is now snapshot.cdb.bak: keep the
		// log from where it starts. (When there was no snapshot.cdb, the
		// backup, if any, is unchanged, and so is keepSeg.)
		db.keepSeg = db.snapSeg
	}
	db.snapSeg = seq
	if err := db.man.set(func(m *manifestState) {
		m.snap, m.keep = seq, db.keepSeg
		switch {
		case db.alog == nil:
			m.last, m.durable = 0, 0
		case m.last != seq:
			// The writer moved to seq without naming it (it does not
			// after a disk error): no record went there since.
			m.last, m.durable = seq, logHeader
		}
	}); err != nil {
		return st, seq, err
	}
	db.removeSegmentsBefore(db.keepSeg)
	return st, seq, nil
}

// removeSegmentsBefore removes the log segments before seq, which no
// snapshot needs any more.
func (db *DB) removeSegmentsBefore(seq uint64) {
	ents, err := os.ReadDir(db.opts.Dir)
	if err != nil {
		return
	}
	first := true
	for _, e := range ents {
		if n, ok := parseSegmentName(e.Name()); ok && n < seq {
			if first {
				failpoint("log-remove")
				first = false
			}
			if err := os.Remove(filepath.Join(db.opts.Dir, e.Name())); err != nil {
				db.log.Warn("could not remove a log segment covered by the snapshot", "err", err)
			}
		}
	}
	if db.alog != nil {
		db.alog.size.Store(db.segmentBytes())
	}
}

// segmentBytes is the size of the log segments in the data dir.
func (db *DB) segmentBytes() int64 {
	ents, err := os.ReadDir(db.opts.Dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range ents {
		if _, ok := parseSegmentName(e.Name()); ok {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
	}
	return n
}

// background takes the periodic snapshots, and retries one every
// retryInterval while writes are refused.
func (db *DB) background() {
	defer close(db.stopped)
	interval := db.opts.SnapshotInterval
	last := time.Now()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastRetry time.Time
	for {
		select {
		case <-db.stop:
			return
		case now := <-t.C:
			switch {
			case interval > 0 && now.Sub(last) >= interval:
				last = now
				_ = db.snapshot()
			case db.failed() != nil && now.Sub(lastRetry) >= retryInterval:
				lastRetry = now
				_ = db.snapshot()
			}
		}
	}
}

// Close takes a last snapshot (so that the next start loads fast), closes
// the log and unlocks the data dir. Call it once the server has stopped
// executing requests.
func (db *DB) Close() error {
	if db.closed {
		return nil
	}
	db.closed = true
	close(db.stop)
	<-db.stopped
	err := db.snapshot()
	db.st.SetJournal(nil)
	if db.alog != nil {
		db.alog.close()
		if err == nil {
			err = db.failed()
		}
	}
	db.man.close()
	db.lock.Close()
	return err
}

// Info adds the persistence fields of the info op to m.
func (db *DB) Info(m map[string]any) {
	db.infoMu.Lock()
	defer db.infoMu.Unlock()
	m["data_dir"] = db.opts.Dir
	m["aof_enabled"] = db.opts.AppendOnly
	m["fsync"] = db.opts.Fsync.String()
	if !db.opts.AppendOnly {
		m["fsync"] = "none"
	}
	var size int64
	if db.alog != nil {
		size = db.alog.size.Load()
	}
	m["aof_size_bytes"] = size
	m["snapshot_interval_seconds"] = int64(db.opts.SnapshotInterval / time.Second)
	m["snapshots"] = db.snapshots
	var at int64
	if !db.lastSnapAt.IsZero() {
		at = db.lastSnapAt.Unix()
	}
	m["last_snapshot_time"] = at
	m["last_snapshot_duration_ms"] = db.lastSnapDur.Milliseconds()
	m["last_snapshot_bytes"] = db.lastSnapSize
	m["last_snapshot_error"] = errString(db.lastSnapErr)
	m["last_fsync_error"] = errString(db.lastFsyncErr)
	refused := ""
	if r := db.refusal.Load(); r != nil {
		refused = r.err.Message
	}
	m["writes_refused"] = refused
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Metrics are the persistence figures Prometheus exports.
type Metrics struct {
	Fsyncs        latency.Snapshot // the log's fsyncs
	FsyncFailures uint64           // disk errors that made writes be refused
	SnapFailures  uint64           // snapshots that failed
	LogBytes      int64            // bytes in the log segments of this run
	Snapshots     int64            // snapshots taken since start
	LastSnapshot  time.Time        // zero: none yet
	LastSnapDur   time.Duration
	LastSnapBytes int64
	WritesRefused bool // the data dir failed: writes are refused
}

// Metrics reads db's figures.
func (db *DB) Metrics() Metrics {
	m := Metrics{Fsyncs: db.fsyncs.Snapshot(), FsyncFailures: db.fsyncFailures.Load(), SnapFailures: db.snapFailures.Load(),
		WritesRefused: db.refusal.Load() != nil}
	if db.alog != nil {
		m.LogBytes = db.alog.size.Load()
	}
	db.infoMu.Lock()
	m.Snapshots, m.LastSnapshot, m.LastSnapDur, m.LastSnapBytes = db.snapshots, db.lastSnapAt, db.lastSnapDur, db.lastSnapSize
	db.infoMu.Unlock()
	return m
}

// timedSync fsyncs f, counting its time in db's fsync histogram.
func (db *DB) timedSync(f interface{ Sync() error }) error {
	start := time.Now()
	err := f.Sync()
	db.fsyncs.Observe(time.Since(start))
	return err
}
