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

// Log segment format (version 1): a 24-byte header, "CDBLOG\x00\x00", the
// format version (u32 big-endian), 4 reserved zero bytes and the segment's
// number (u64 big-endian, the same as in its file name), then records
// (record.go) whose body is the CBOR array [op, arg...]: one write op
// exactly as the client sent it (a batch as one record).
const (
	logMagic   = "CDBLOG\x00\x00"
	logVersion = 1
	logHeader  = 24
	logPrefix  = "appendonly-"
	logSuffix  = ".log"
)

func segmentName(seq uint64) string { return fmt.Sprintf("%s%010d%s", logPrefix, seq, logSuffix) }

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
	copy(h[:], logMagic)
	binary.BigEndian.PutUint32(h[8:], logVersion)
	binary.BigEndian.PutUint64(h[16:], seq)
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
// across segments.
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

	pmu     sync.Mutex // guards written, synced, curSeq; cond waits on it
	cond    *sync.Cond
	written int64
	synced  int64
	curSeq  uint64

	fileMu sync.Mutex // guards cur, for the everysec syncer
	cur    *segment

	size atomic.Int64 // bytes in the segments of this run, headers included
	done chan struct{}
	stop chan struct{}

	probes logProbes // the watchdog's round trips (probe.go)
}

func newAppendLog(db *DB, dir string, policy Fsync, seg *segment) *appendLog {
	l := &appendLog{dir: dir, policy: policy, db: db, cur: seg, curSeq: seg.seq,
		wake: make(chan struct{}, 1), done: make(chan struct{}), stop: make(chan struct{})}
	l.cond = sync.NewCond(&l.pmu)
	go l.run()
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

// waitSegment blocks until the writer has moved to segment seq.
func (l *appendLog) waitSegment(seq uint64) {
	l.pmu.Lock()
	for l.curSeq < seq {
		l.cond.Wait()
	}
	l.pmu.Unlock()
}

func (l *appendLog) progress(written, synced int64) {
	l.pmu.Lock()
	l.written = max(l.written, written)
	l.synced = max(l.synced, synced)
	l.cond.Broadcast()
	l.pmu.Unlock()
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
				if l.db.failed() == nil {
					failpoint("log-fsync")
					if err := l.cur.f.Sync(); err != nil {
						l.db.fail(l.cur.seq, fmt.Errorf("fsync %s: %w", l.cur.path, err))
					}
				}
				l.cur.f.Close()
				l.fileMu.Unlock()
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
	end := start + int64(len(data))
	if l.policy != FsyncAlways {
		l.progress(end, 0)
		return
	}
	failpoint("log-fsync")
	if err := l.cur.f.Sync(); err != nil {
		l.db.fail(l.cur.seq, fmt.Errorf("fsync %s: %w", l.cur.path, err))
		l.broadcast()
		return
	}
	l.progress(end, end)
}

// switchTo finishes the current segment (fsync, close) and moves to seg,
// whose first record will be at logical offset at.
func (l *appendLog) switchTo(seg *segment, at int64) {
	l.fileMu.Lock()
	old := l.cur
	if l.db.failed() == nil {
		failpoint("log-fsync")
		if err := old.f.Sync(); err != nil {
			l.db.fail(old.seq, fmt.Errorf("fsync %s: %w", old.path, err))
		}
	}
	old.f.Close()
	l.cur = seg
	l.fileMu.Unlock()
	l.size.Add(logHeader)
	// Everything before at is in the old segment, or was dropped after a
	// failure; either way the snapshot being taken covers it.
	l.pmu.Lock()
	l.written, l.synced = max(l.written, at), max(l.synced, at)
	l.curSeq = seg.seq
	l.cond.Broadcast()
	l.pmu.Unlock()
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
		target, synced := l.written, l.synced
		l.pmu.Unlock()
		var err error
		seg := l.cur
		if target > synced && l.db.failed() == nil {
			failpoint("log-fsync")
			err = seg.f.Sync()
		}
		l.fileMu.Unlock()
		if err != nil {
			l.db.fail(seg.seq, fmt.Errorf("fsync %s: %w", seg.path, err))
			l.broadcast()
		} else {
			l.progress(0, target)
		}
	}
}

// close writes what is buffered, fsyncs and closes the current segment.
func (l *appendLog) close() {
	close(l.stop)
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	<-l.done
}
