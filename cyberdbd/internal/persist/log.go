package persist

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Log segment format (version 3): a 24-byte header, "CDBLOG\x00\x00", the
// format version (u32 big-endian), the header's CRC-32C (header.go) and
// the segment's number (u64 big-endian, the same as in its file name),
// then records (record.go) whose body is the CBOR array [op, arg...]: one
// write op exactly as the client sent it (a batch as one record), or one
// of the journal-only ops the store writes (store/expiry.go): a timed
// record [78, unix-ms, [op, arg...]] for an op that computed a deadline
// from the clock, a dremove record [79, table, reason, key...] for
// entries the daemon expired or evicted. Version 3 added those and the
// expiry ops (70-76), which is all that differs from version 2. A
// segment the log has moved on from ends with its end record, [0, offset]
// (op 0 is no op), offset being where that record starts: a segment
// without it was cut. Version 1 (cyberdb before the MANIFEST) had zeros
// instead of the checksum and no end records; it is still read.
const (
	logMagic   = "CDBLOG\x00\x00"
	logVersion = 3
	logHeader  = 24
	logPrefix  = "appendonly-"
	logSuffix  = ".log"

	sealOp = 0 // the op of a segment's end record
)

// manifestEvery is the longest the MANIFEST lags behind what is on disk
// of the last log segment: a cut of that segment is detected unless it
// only removes what was fsynced in the last manifestEvery.
const manifestEvery = 100 * time.Millisecond

// appendSeal appends the end record of a segment whose records end at off.
func appendSeal(dst []byte, off int64) []byte {
	var start int
	dst, start = beginRecord(dst)
	dst = wire.AppendArrayHeader(dst, 2)
	dst = wire.AppendUint(dst, sealOp)
	dst = wire.AppendUint(dst, uint64(off))
	return endRecord(dst, start)
}

func segmentName(seq uint64) string { return fmt.Sprintf("%s%010d%s", logPrefix, seq, logSuffix) }

func segPath(dir string, seq uint64) string { return filepath.Join(dir, segmentName(seq)) }

// parseSegmentName returns the number of a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	if !strings.HasPrefix(name, logPrefix) || !strings.HasSuffix(name, logSuffix) {
		return 0, false
	}
	n, err := strconv.ParseUint(name[len(logPrefix):len(name)-len(logSuffix)], 10, 64)
	return n, err == nil && n > 0
}

// Fsync is the --fsync policy.
type Fsync int

const (
	FsyncEverySec Fsync = iota // fsync in the background each second
	FsyncAlways                // fsync before replying, one fsync for every write queued meanwhile
	FsyncNo                    // leave it to the OS
)

func (f Fsync) String() string {
	switch f {
	case FsyncAlways:
		return "always"
	case FsyncNo:
		return "no"
	}
	return "everysec"
}

// ParseFsync reads always, everysec or no.
func ParseFsync(s string) (Fsync, error) {
	switch s {
	case "always":
		return FsyncAlways, nil
	case "everysec":
		return FsyncEverySec, nil
	case "no":
		return FsyncNo, nil
	}
	return 0, fmt.Errorf("want always, everysec or no")
}

type segment struct {
	seq  uint64
	path string
	f    *os.File
}

// createSegment creates segment seq with its header, durably.
func createSegment(dir string, seq uint64) (*segment, error) {
	path := filepath.Join(dir, segmentName(seq))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create log segment: %w", err)
	}
	var h [logHeader]byte
	binary.BigEndian.PutUint64(h[16:], seq)
	putHeader(h[:], logMagic, logVersion)
	fail := func(err error) (*segment, error) {
		f.Close()
		os.Remove(path) // so that the number can be used again
		return nil, err
	}
	if _, err := f.Write(h[:]); err != nil {
		return fail(fmt.Errorf("write %s: %w", path, err))
	}
	failpoint("log-create")
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("fsync %s: %w", path, err))
	}
	if err := syncDir(dir); err != nil {
		return fail(err)
	}
	return &segment{seq: seq, path: path, f: f}, nil
}

// appendLog is the append-only log being written. Write ops append their
// records to buf under mu (the journal call, under their table locks: no
// system call there); one writer goroutine moves buf to the current
// segment with write(2) and, for --fsync always, fsyncs after each write,
// so that one fsync covers every record appended meanwhile (group
// commit). A connection that executed writes calls wait before it sends
// their replies: it blocks until everything appended so far is written
// (and, for always, fsynced).
//
// Offsets are logical: the count of record bytes appended since start,
// across segments; segOff, segWritten and segSynced are offsets in the
// current segment's file, for its end record and the MANIFEST.
//
// Lock order: fileMu, then pmu; mu is never held with another. The
// MANIFEST's lock is taken with none of them held.
type appendLog struct {
	dir    string
	policy Fsync
	db     *DB // for fail and failed

	mu       sync.Mutex
	buf      []byte
	appended int64
	next     *segment // a rotation to do once rotateAt is written
	rotateAt int64
	closing  bool
	wake     chan struct{}

	pmu        sync.Mutex // guards written, synced, curSeq, namedSeq, segWritten, segSynced; cond waits on it
	cond       *sync.Cond
	written    int64
	synced     int64
	curSeq     uint64
	namedSeq   uint64 // the segment switchTo finished with: the MANIFEST names it (unless the log failed)
	segWritten int64  // bytes of segment curSeq written to the OS
	segSynced  int64  // bytes of segment curSeq fsynced

	fileMu sync.Mutex // guards cur, for the everysec syncer
	cur    *segment

	segOff int64 // bytes in cur's file; the writer goroutine's own

	durable chan struct{} // wakes keepDurable when more of cur is fsynced

	size       atomic.Int64 // bytes in the segments of this run, headers included
	done       chan struct{}
	stop       chan struct{}
	keeperDone chan struct{}

	probes logProbes // the watchdog's round trips (probe.go)
}

func newAppendLog(db *DB, dir string, policy Fsync, seg *segment) *appendLog {
	l := &appendLog{dir: dir, policy: policy, db: db, cur: seg, curSeq: seg.seq, namedSeq: seg.seq,
		segOff: logHeader, segWritten: logHeader, segSynced: logHeader,
		wake: make(chan struct{}, 1), durable: make(chan struct{}, 1),
		done: make(chan struct{}), stop: make(chan struct{}), keeperDone: make(chan struct{})}
	l.cond = sync.NewCond(&l.pmu)
	go l.run()
	go l.keepDurable()
	if policy == FsyncEverySec {
		go l.syncEverySecond()
	}
	return l
}

// append records one write op. It runs under the op's table locks.
func (l *appendLog) append(op wire.Op, args wire.Args) {
	l.mu.Lock()
	var start int
	l.buf, start = beginRecord(l.buf)
	l.buf = wire.AppendArrayHeader(l.buf, 1+len(args.Items))
	l.buf = wire.AppendUint(l.buf, uint64(op))
	for _, it := range args.Items {
		l.buf = append(l.buf, it...)
	}
	l.buf = endRecord(l.buf, start)
	l.appended += int64(len(l.buf) - start)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// rotate makes every record appended from now on go to seg. The caller
// holds the store's write gate, so no op is between its change and its
// record.
func (l *appendLog) rotate(seg *segment) {
	l.mu.Lock()
	l.next, l.rotateAt = seg, l.appended
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// wait blocks until every record appended before the call is written (for
// always: fsynced), or the log has failed.
func (l *appendLog) wait() error {
	l.mu.Lock()
	target := l.appended
	l.mu.Unlock()
	l.pmu.Lock()
	defer l.pmu.Unlock()
	for {
		if err := l.db.failed(); err != nil {
			return err
		}
		done := l.written
		if l.policy == FsyncAlways {
			done = l.synced
		}
		if done >= target {
			return nil
		}
		l.cond.Wait()
	}
}

// waitSegment blocks until the writer has moved to segment seq: the
// segment before it has its end record, and the MANIFEST names seq.
func (l *appendLog) waitSegment(seq uint64) {
	l.pmu.Lock()
	for l.namedSeq < seq {
		l.cond.Wait()
	}
	l.pmu.Unlock()
}

// progress records what is written and fsynced: logical offsets, and
// offsets in the current segment's file.
func (l *appendLog) progress(written, synced, segWritten, segSynced int64) {
	l.pmu.Lock()
	l.written = max(l.written, written)
	l.synced = max(l.synced, synced)
	l.segWritten = max(l.segWritten, segWritten)
	more := segSynced > l.segSynced
	l.segSynced = max(l.segSynced, segSynced)
	l.cond.Broadcast()
	l.pmu.Unlock()
	if more {
		select {
		case l.durable <- struct{}{}:
		default:
		}
	}
}

// broadcast wakes the waiters (after a failure).
func (l *appendLog) broadcast() {
	l.pmu.Lock()
	l.cond.Broadcast()
	l.pmu.Unlock()
}

func (l *appendLog) run() {
	defer close(l.done)
	var spare []byte
	for {
		<-l.wake
		l.mu.Lock()
		data, end := l.buf, l.appended
		l.buf = spare[:0]
		next, rotateAt := l.next, l.rotateAt
		l.next = nil
		closing := l.closing
		l.mu.Unlock()
		start := end - int64(len(data))
		if next != nil {
			k := rotateAt - start
			l.writeOut(data[:k], start)
			l.switchTo(next, rotateAt)
			l.writeOut(data[k:], rotateAt)
		} else {
			l.writeOut(data, start)
		}
		spare = data
		l.probes.writer.Run()
		if closing {
			l.mu.Lock()
			empty := len(l.buf) == 0 && l.next == nil
			l.mu.Unlock()
			if empty {
				l.fileMu.Lock()
				cur := l.cur
				synced := l.db.failed() == nil
				if synced {
					failpoint("log-fsync")
					if err := l.db.timedSync(cur.f); err != nil {
						l.db.fail(cur.seq, fmt.Errorf("fsync %s: %w", cur.path, err))
						synced = false
					}
				}
				cur.f.Close()
				l.fileMu.Unlock()
				if synced {
					// A clean stop leaves the MANIFEST exact.
					l.setDurable(cur.seq, l.segOff)
				}
				return
			}
		}
	}
}

// writeOut writes data, which starts at logical offset start, to the
// current segment. After a failure, data is dropped: the log is refused
// until a snapshot (which covers it) succeeds.
func (l *appendLog) writeOut(data []byte, start int64) {
	if len(data) == 0 {
		return
	}
	if l.db.failed() != nil {
		l.broadcast()
		return
	}
	if _, err := l.cur.f.Write(data); err != nil {
		l.db.fail(l.cur.seq, fmt.Errorf("write %s: %w", l.cur.path, err))
		l.broadcast()
		return
	}
	l.size.Add(int64(len(data)))
	l.segOff += int64(len(data))
	end := start + int64(len(data))
	if l.policy != FsyncAlways {
		l.progress(end, 0, l.segOff, 0)
		return
	}
	failpoint("log-fsync")
	if err := l.db.timedSync(l.cur.f); err != nil {
		l.db.fail(l.cur.seq, fmt.Errorf("fsync %s: %w", l.cur.path, err))
		l.broadcast()
		return
	}
	l.progress(end, end, l.segOff, l.segOff)
}

// switchTo finishes the current segment (its end record, fsync, close),
// makes the MANIFEST name seg as the last segment, and moves to seg, whose
// first record will be at logical offset at. No record goes to seg before
// the MANIFEST names it, so a segment the MANIFEST does not name holds
// none.
func (l *appendLog) switchTo(seg *segment, at int64) {
	l.fileMu.Lock()
	old := l.cur
	if l.db.failed() == nil {
		seal := appendSeal(nil, l.segOff)
		if _, err := old.f.Write(seal); err != nil {
			l.db.fail(old.seq, fmt.Errorf("write %s: %w", old.path, err))
		} else {
			l.size.Add(int64(len(seal)))
			failpoint("log-fsync")
			if err := l.db.timedSync(old.f); err != nil {
				l.db.fail(old.seq, fmt.Errorf("fsync %s: %w", old.path, err))
			}
		}
	}
	old.f.Close()
	l.cur = seg
	l.segOff = logHeader
	// Everything before at is in the old segment, or was dropped after a
	// failure; either way the snapshot being taken covers it.
	l.pmu.Lock()
	l.written, l.synced = max(l.written, at), max(l.synced, at)
	l.curSeq = seg.seq
	l.segWritten, l.segSynced = logHeader, logHeader
	l.pmu.Unlock()
	l.fileMu.Unlock()
	l.size.Add(logHeader)
	if l.db.failed() == nil {
		if err := l.db.man.set(func(m *manifestState) { m.last, m.durable = seg.seq, logHeader }); err != nil {
			l.db.fail(seg.seq, err)
		}
	}
	l.pmu.Lock()
	l.namedSeq = seg.seq
	l.cond.Broadcast()
	l.pmu.Unlock()
}

// setDurable records in the MANIFEST that n bytes of segment seq are on
// disk, if seq is still the last segment.
func (l *appendLog) setDurable(seq uint64, n int64) {
	err := l.db.man.set(func(m *manifestState) {
		if m.last == seq && n > m.durable {
			m.durable = n
		}
	})
	if err != nil {
		l.db.fail(seq, err)
		l.broadcast()
	}
}

// keepDurable writes to the MANIFEST how much of the last segment is on
// disk, at most every manifestEvery (the writer and the everysec syncer
// wake it after their fsyncs), so that a later cut of the segment is
// detected. It is not on the path of any reply.
func (l *appendLog) keepDurable() {
	defer close(l.keeperDone)
	var last time.Time
	for {
		select {
		case <-l.stop:
			return
		case <-l.durable:
		}
		if wait := manifestEvery - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-l.stop:
				t.Stop()
				return
			case <-t.C:
			}
		}
		l.pmu.Lock()
		seq, n := l.curSeq, l.segSynced
		l.pmu.Unlock()
		if l.db.failed() == nil {
			l.setDurable(seq, n)
		}
		last = time.Now()
	}
}

// syncEverySecond is the everysec policy's background fsync.
func (l *appendLog) syncEverySecond() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.fileMu.Lock()
		l.pmu.Lock()
		target, synced, segTarget := l.written, l.synced, l.segWritten
		l.pmu.Unlock()
		var err error
		seg := l.cur
		if target > synced && l.db.failed() == nil {
			failpoint("log-fsync")
			err = l.db.timedSync(seg.f)
		}
		if err == nil {
			// Under fileMu: cur is still seg, so segTarget is its offset.
			l.progress(0, target, 0, segTarget)
		}
		l.fileMu.Unlock()
		if err != nil {
			l.db.fail(seg.seq, fmt.Errorf("fsync %s: %w", seg.path, err))
			l.broadcast()
		}
	}
}

// close writes what is buffered, fsyncs and closes the current segment.
func (l *appendLog) close() {
	close(l.stop)
	<-l.keeperDone
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	<-l.done
}
