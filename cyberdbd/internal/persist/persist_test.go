package persist

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

func TestRoundTripEveryOp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		clean bool // Close (snapshot) rather than crash
		aof   bool
		save  int // take a snapshot after this many ops (-1: never)
	}{
		{"clean", true, true, -1},
		{"crash-log-only", false, true, -1},
		{"crash-snapshot-then-log", false, true, 12},
		{"snapshots-only", true, false, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions(dir, nil)
			opts.AppendOnly = tc.aof
			db, st := mustOpen(t, opts)
			for i, o := range everyOp {
				if i == tc.save {
					if err := db.Save(); err != nil {
						t.Fatal(err)
					}
				}
				do(t, st, o.op, o.args...)
				if err := db.Wait(); err != nil {
					t.Fatal(err)
				}
			}
			want := dump(t, st)
			if tc.clean {
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				db.crash()
			}
			db2, st2 := mustOpen(t, opts)
			if got := dump(t, st2); got != want {
				t.Fatalf("after restart:\n%s\nwant:\n%s", got, want)
			}
			// The loaded state goes on being logged and reloaded.
			do(t, st2, wire.OpDSet, "d", "after", 1)
			want = dump(t, st2)
			db2.crash()
			db3, st3 := mustOpen(t, opts)
			defer db3.Close()
			if !tc.aof {
				return // snapshots only: the write after the restart is lost, as documented
			}
			if got := dump(t, st3); got != want {
				t.Fatalf("after second restart:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestLockedDataDir(t *testing.T) {
	dir := t.TempDir()
	db, _ := mustOpen(t, testOptions(dir, nil))
	defer db.Close()
	_, err := Open(store.New(), testOptions(dir, nil))
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "is locked by pid ") || !strings.Contains(err.Error(), "another cyberdbd is running") {
		t.Fatalf("second Open: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 && !strings.HasPrefix(dir, os.TempDir()) {
		t.Fatalf("data dir: %v %v", fi, err)
	}
	sub := filepath.Join(dir, "new", "data")
	db2, _ := mustOpen(t, testOptions(sub, nil))
	defer db2.Close()
	if fi, err := os.Stat(sub); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("created data dir: %v %v", fi, err)
	}
}

// history writes everyOp with fsync always and crashes, leaving one log
// segment; it returns the dir and the state after each op (states[k]: k
// ops applied).
func history(t *testing.T) (dir string, states []string) {
	dir = t.TempDir()
	db, st := mustOpen(t, testOptions(dir, nil))
	states = append(states, dump(t, st))
	for _, o := range everyOp {
		do(t, st, o.op, o.args...)
		states = append(states, dump(t, st))
	}
	db.crash()
	return dir, states
}

// recordEnds returns the offsets just past each record of a segment.
func recordEnds(t *testing.T, b []byte) []int {
	var ends []int
	for off := logHeader; off < len(b); {
		n := int(uint32(b[off])<<24 | uint32(b[off+1])<<16 | uint32(b[off+2])<<8 | uint32(b[off+3]))
		off += recHeaderSize + n
		ends = append(ends, off)
	}
	return ends
}

func TestLogCutAtEveryByte(t *testing.T) {
	src, states := history(t)
	full := readFile(t, segPath(src, 1))
	ends := recordEnds(t, full)
	if len(ends) != len(everyOp) {
		t.Fatalf("%d records for %d ops", len(ends), len(everyOp))
	}
	for cut := 0; cut <= len(full); cut++ {
		dir := copyDir(t, src)
		writeFile(t, segPath(dir, 1), full[:cut])
		forgetDurable(t, dir) // a kill before the MANIFEST said how much is on disk
		var logs daemontest.Buffer
		if cut < logHeader {
			// The MANIFEST names the segment: its header was on disk.
			_, err := Open(store.New(), testOptions(dir, &logs))
			var de *DamageError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), "MANIFEST") {
				t.Fatalf("cut at %d, inside the header of a segment the MANIFEST names: %v", cut, err)
			}
			continue
		}
		db, st := mustOpen(t, testOptions(dir, &logs))
		whole := 0
		for whole < len(ends) && ends[whole] <= cut {
			whole++
		}
		if got := dump(t, st); got != states[whole] {
			t.Fatalf("cut at %d: state after %d ops expected, got\n%s\nwant\n%s", cut, whole, got, states[whole])
		}
		boundary := cut == len(full) || (whole > 0 && ends[whole-1] == cut) || (whole == 0 && cut == logHeader)
		if !boundary && !strings.Contains(logs.String(), "level=WARN") {
			t.Fatalf("cut at %d: no warning; logs:\n%s", cut, logs.String())
		}
		if !boundary {
			if !strings.Contains(logs.String(), segmentName(1)) || !strings.Contains(logs.String(), "cut short") {
				t.Fatalf("cut at %d: the warning names no file: %s", cut, logs.String())
			}
			// Cut back to the last whole record, then given its end
			// record (the log goes on in segment 2).
			fi, _ := os.Stat(segPath(dir, 1))
			want := int64(logHeader)
			if whole > 0 {
				want = int64(ends[whole-1])
			}
			if want += int64(len(appendSeal(nil, want))); fi.Size() != want {
				t.Fatalf("cut at %d: segment is %d bytes, want %d", cut, fi.Size(), want)
			}
		}
		if cut%4 != 0 && cut != len(full) {
			db.crash()
			continue
		}
		// Writes go on, and a second start sees everything without warning.
		do(t, st, wire.OpCreateDict, "post")
		want := dump(t, st)
		db.crash()
		logs = daemontest.Buffer{}
		db, st = mustOpen(t, testOptions(dir, &logs))
		if got := dump(t, st); got != want {
			t.Fatalf("cut at %d, second start: got\n%s\nwant\n%s", cut, got, want)
		}
		if strings.Contains(logs.String(), "level=WARN") {
			t.Fatalf("cut at %d, second start warns: %s", cut, logs.String())
		}
		db.crash()
	}
}

// TestLogCutBelowDurable: a last segment cut anywhere below what the
// MANIFEST says was on disk (at a record boundary, to its bare header, to
// nothing) is damage: refused, and --recover loads what is left.
func TestLogCutBelowDurable(t *testing.T) {
	src, states := history(t) // crash records the whole segment as on disk
	full := readFile(t, segPath(src, 1))
	ends := recordEnds(t, full)
	cuts := []int{0, 10, logHeader}
	for i := range len(ends) - 1 {
		cuts = append(cuts, ends[i])
	}
	cuts = append(cuts, len(full)-1)
	for _, cut := range cuts {
		dir := copyDir(t, src)
		writeFile(t, segPath(dir, 1), full[:cut])
		_, err := Open(store.New(), testOptions(dir, nil))
		var de *DamageError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), segmentName(1)) || !strings.Contains(err.Error(), "MANIFEST") ||
			!strings.Contains(err.Error(), "--recover") {
			t.Fatalf("cut at %d of %d: Open = %v", cut, len(full), err)
		}
		if got := readFile(t, segPath(dir, 1)); len(got) != cut {
			t.Fatalf("cut at %d: the refused start changed the segment", cut)
		}
		opts := testOptions(dir, nil)
		opts.Recover = true
		db, st := mustOpen(t, opts)
		whole := 0
		for whole < len(ends) && ends[whole] <= cut {
			whole++
		}
		if got := dump(t, st); got != states[whole] {
			t.Fatalf("cut at %d: --recover loaded\n%s\nwant the state after %d ops\n%s", cut, got, whole, states[whole])
		}
		db.Close()
	}
}

func TestLogDamageRefusedThenRecovered(t *testing.T) {
	src, states := history(t)
	full := readFile(t, segPath(src, 1))
	ends := recordEnds(t, full)
	// A byte flipped in every record but the last (whose length, if hit,
	// may look like a write cut short), and in the header.
	positions := []int{0, 9, 11, 13, 17} // the header: its checksum makes a flipped version bit damage
	for i := 0; i < len(ends)-1; i++ {
		start := logHeader
		if i > 0 {
			start = ends[i-1]
		}
		positions = append(positions, start+1+i%3, start+5+i%3, start+recHeaderSize, (start+ends[i])/2, ends[i]-1)
	}
	for _, pos := range positions {
		dir := copyDir(t, src)
		b := append([]byte(nil), full...)
		b[pos] ^= 0x40
		writeFile(t, segPath(dir, 1), b)
		_, err := Open(store.New(), testOptions(dir, nil))
		var de *DamageError
		if !errors.As(err, &de) {
			t.Fatalf("flip at %d: Open = %v, want a DamageError", pos, err)
		}
		if !strings.Contains(err.Error(), segmentName(1)) || !strings.Contains(err.Error(), "--recover") || !strings.Contains(err.Error(), "offset") {
			t.Fatalf("flip at %d: message %q", pos, err)
		}
		// Refusing changed nothing.
		if got := readFile(t, segPath(dir, 1)); string(got) != string(b) {
			t.Fatalf("flip at %d: refused start changed the segment", pos)
		}
		// --recover loads the records before the damage and moves the
		// segment aside.
		opts := testOptions(dir, nil)
		opts.Recover = true
		var logs daemontest.Buffer
		opts.Logger = testOptions(dir, &logs).Logger
		db, st := mustOpen(t, opts)
		whole := 0
		for whole < len(ends) && int64(ends[whole]) <= de.Offset {
			whole++
		}
		if got := dump(t, st); got != states[whole] {
			t.Fatalf("flip at %d (damage at %d): recovered\n%s\nwant state after %d ops\n%s", pos, de.Offset, got, whole, states[whole])
		}
		if !strings.Contains(logs.String(), "bytes_dropped") {
			t.Fatalf("flip at %d: recovery does not say what was dropped: %s", pos, logs.String())
		}
		moved, _ := filepath.Glob(segPath(dir, 1) + ".damaged-*")
		if len(moved) != 1 || string(readFile(t, moved[0])) != string(b) {
			t.Fatalf("flip at %d: damaged segment not kept aside: %v", pos, moved)
		}
		want := dump(t, st)
		db.crash()
		db, st = mustOpen(t, testOptions(dir, nil)) // no --recover needed any more
		if got := dump(t, st); got != want {
			t.Fatalf("flip at %d: after recovery, restart gives\n%s\nwant\n%s", pos, got, want)
		}
		db.Close()
	}
}

// snapshotDir returns a data dir holding a snapshot of everyOp (and an
// empty log segment after it) and the state.
func snapshotDir(t *testing.T) (string, string) {
	dir := t.TempDir()
	db, st := mustOpen(t, testOptions(dir, nil))
	apply(t, st, everyOp)
	want := dump(t, st)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, want
}

func TestSnapshotDamage(t *testing.T) {
	src, want := snapshotDir(t)
	full := readFile(t, filepath.Join(src, snapshotName))
	if db, st := mustOpen(t, testOptions(copyDir(t, src), nil)); dump(t, st) != want {
		t.Fatal("snapshot does not load")
	} else {
		db.Close()
	}
	for pos := 0; pos < len(full); pos++ {
		dir := copyDir(t, src)
		b := append([]byte(nil), full...)
		b[pos] ^= 0x01
		writeFile(t, filepath.Join(dir, snapshotName), b)
		_, err := Open(store.New(), testOptions(dir, nil))
		var de *DamageError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), snapshotName) || !strings.Contains(err.Error(), "--recover") {
			t.Fatalf("flip at %d: Open = %v, want a DamageError naming the file and --recover", pos, err)
		}
		if pos%23 != 0 {
			continue // --recover on a sample of positions
		}
		opts := testOptions(dir, nil)
		opts.Recover = true
		db, st := mustOpen(t, opts)
		// One snapshot was taken, so the log from segment 1 is still
		// there (until the next one): replayed from the empty state, it
		// gives the exact state.
		if got := dump(t, st); got != want {
			t.Fatalf("flip at %d: --recover loaded\n%s\nwant\n%s", pos, got, want)
		}
		moved, _ := filepath.Glob(filepath.Join(dir, snapshotName) + ".damaged-*")
		if len(moved) != 1 {
			t.Fatalf("flip at %d: damaged snapshot not moved aside: %v", pos, moved)
		}
		db.Close()
		db, _ = mustOpen(t, testOptions(dir, nil))
		db.Close()
	}
}

func TestEmptyFiles(t *testing.T) {
	t.Run("snapshot", func(t *testing.T) {
		src, want := snapshotDir(t)
		writeFile(t, filepath.Join(src, snapshotName), nil)
		_, err := Open(store.New(), testOptions(src, nil))
		if !strings.Contains(fmt64(err), "is empty") || !strings.Contains(fmt64(err), "--recover") {
			t.Fatalf("empty snapshot: %v", err)
		}
		opts := testOptions(src, nil)
		opts.Recover = true
		db, st := mustOpen(t, opts)
		if got := dump(t, st); got != want { // the log from segment 1 is kept until a second snapshot
			t.Fatalf("empty snapshot, --recover:\n%s\nwant\n%s", got, want)
		}
		db.Close()
	})
	t.Run("last-segment", func(t *testing.T) {
		src, states := history(t)
		writeFile(t, segPath(src, 1), nil)
		_, err := Open(store.New(), testOptions(src, nil))
		if !errors.As(err, new(*DamageError)) || !strings.Contains(err.Error(), "MANIFEST") {
			t.Fatalf("empty last segment: %v", err)
		}
		opts := testOptions(src, nil)
		opts.Recover = true
		db, st := mustOpen(t, opts)
		if dump(t, st) != states[0] {
			t.Fatalf("empty last segment, --recover: %q", dump(t, st))
		}
		db.Close()
	})
	t.Run("last-segment-no-manifest", func(t *testing.T) {
		// Without a MANIFEST (a data dir of an older cyberdbd) an empty
		// last segment is one a crash left while creating it.
		src, states := history(t)
		writeFile(t, segPath(src, 1), nil)
		os.Remove(filepath.Join(src, manifestName))
		var logs daemontest.Buffer
		db, st := mustOpen(t, testOptions(src, &logs))
		if dump(t, st) != states[0] || !strings.Contains(logs.String(), "level=WARN") {
			t.Fatalf("empty last segment: %q %s", dump(t, st), logs.String())
		}
		db.Close()
	})
	t.Run("middle-segment", func(t *testing.T) {
		src, _ := history(t) // segment 1
		db, st := mustOpen(t, testOptions(src, nil))
		do(t, st, wire.OpCreateDict, "later") // segment 2
		db.crash()
		writeFile(t, segPath(src, 1), nil)
		_, err := Open(store.New(), testOptions(src, nil))
		if !errors.As(err, new(*DamageError)) {
			t.Fatalf("empty middle segment: %v", err)
		}
	})
	t.Run("missing-segment", func(t *testing.T) {
		src, _ := history(t)
		db, _ := mustOpen(t, testOptions(src, nil))
		db.crash()
		db, _ = mustOpen(t, testOptions(src, nil))
		db.crash()
		os.Remove(segPath(src, 2))
		_, err := Open(store.New(), testOptions(src, nil))
		if !strings.Contains(fmt64(err), "missing") {
			t.Fatalf("missing segment: %v", err)
		}
	})
}

func fmt64(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestFutureVersion(t *testing.T) {
	src, _ := snapshotDir(t)
	p := filepath.Join(src, snapshotName)
	b := readFile(t, p)
	// A flipped bit in the version is damage, with the file and offset.
	b[11] ^= 0x04
	writeFile(t, p, b)
	_, err := Open(store.New(), testOptions(src, nil))
	var de *DamageError
	if !errors.As(err, &de) || errors.Is(err, ErrFutureVersion) || de.File != p || !strings.Contains(err.Error(), "offset 0") {
		t.Fatalf("flipped version bit: %v", err)
	}
	// An intact header of a newer version is not.
	b[11] ^= 0x04
	putHeader(b[:snapHeader], snapMagic, snapVersion+1)
	writeFile(t, p, b)
	for _, rec := range []bool{false, true} {
		opts := testOptions(src, nil)
		opts.Recover = rec
		_, err := Open(store.New(), opts)
		if !errors.Is(err, ErrFutureVersion) || !strings.Contains(err.Error(), "newer cyberdbd") {
			t.Fatalf("recover=%v: %v", rec, err)
		}
	}
	if string(readFile(t, p)) != string(b) {
		t.Fatal("the newer snapshot was changed")
	}
	// A log segment of a newer format, too.
	src, _ = history(t)
	b = readFile(t, segPath(src, 1))
	b[11] ^= 0x01
	writeFile(t, segPath(src, 1), b)
	if _, err := Open(store.New(), testOptions(src, nil)); !errors.As(err, new(*DamageError)) || errors.Is(err, ErrFutureVersion) {
		t.Fatalf("log segment, flipped version bit: %v", err)
	}
	b[11] ^= 0x01
	putHeader(b[:logHeader], logMagic, logVersion+1)
	writeFile(t, segPath(src, 1), b)
	if _, err := Open(store.New(), testOptions(src, nil)); !errors.Is(err, ErrFutureVersion) {
		t.Fatalf("log segment: %v", err)
	}
	// And the MANIFEST.
	src, _ = history(t)
	mp := filepath.Join(src, manifestName)
	b = readFile(t, mp)
	for i := 0; i < 2; i++ {
		if s := b[i*manifestSlot : (i+1)*manifestSlot]; !allZero(s) {
			putHeader(s, manifestMagic, manifestVersion+1)
		}
	}
	writeFile(t, mp, b)
	if _, err := Open(store.New(), testOptions(src, nil)); !errors.Is(err, ErrFutureVersion) {
		t.Fatalf("MANIFEST: %v", err)
	}
}

// TestCrashAtEachFailpoint stops the process's work at each failpoint (by
// panicking out of it, in process: the daemon test does it with SIGKILL)
// and checks that what is on disk then loads to the state of the writes
// done before.
func TestCrashAtEachFailpoint(t *testing.T) {
	for _, name := range FailpointNames {
		if name == "recover-truncate" {
			continue // TestRecoverTruncateFailpoint
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			db, st := mustOpen(t, testOptions(dir, nil))
			apply(t, st, everyOp[:10])
			if err := db.Save(); err != nil {
				t.Fatal(err)
			}
			apply(t, st, everyOp[10:])
			if err := db.Wait(); err != nil { // acknowledged
				t.Fatal(err)
			}
			want := dump(t, st)
			// The goroutine reaching the failpoint stops there for good
			// (in process; the daemon test kills the process).
			hit := make(chan struct{})
			var once sync.Once
			setFailpoint(func(n string) {
				if n == name {
					once.Do(func() { close(hit); runtime.Goexit() })
				}
			})
			go func() {
				if name == "log-fsync" {
					do(t, st, wire.OpCreateDict, "unacked") // its fsync crashes: never acknowledged
					db.Wait()
				} else {
					db.Save()
				}
			}()
			select {
			case <-hit:
			case <-time.After(10 * time.Second):
				t.Fatalf("failpoint %s not reached", name)
			}
			setFailpoint(nil)
			db.stopForTest()
			db2, st2 := mustOpen(t, testOptions(dir, nil))
			got := strings.ReplaceAll(dump(t, st2), "unacked=dict {_ 0: [0, []]}\n", "") // may or may not be there
			got = strings.ReplaceAll(got, "unacked=dict [0, []]\n", "")
			if got != want {
				t.Fatalf("after a crash at %s:\n%s\nwant\n%s", name, got, want)
			}
			db2.Close()
		})
	}
}

// stopForTest releases what a crashed (panicked) DB holds, without
// writing anything more.
func (db *DB) stopForTest() {
	if db.alog != nil {
		db.alog.mu.Lock()
		db.alog.buf = nil // a crash loses what was not written
		db.alog.mu.Unlock()
	}
	db.crash()
}

func TestRecoverTruncateFailpoint(t *testing.T) {
	src, states := history(t)
	full := readFile(t, segPath(src, 1))
	writeFile(t, segPath(src, 1), full[:len(full)-3])
	forgetDurable(t, src)
	setFailpoint(func(n string) {
		if n == "recover-truncate" {
			panic(n)
		}
	})
	func() {
		defer func() { recover() }()
		Open(store.New(), testOptions(src, nil))
	}()
	setFailpoint(nil)
	// The crashed start left its lock behind in this process: a new
	// process would not see it, so take a copy of the dir.
	dir := copyDir(t, src)
	os.Remove(filepath.Join(dir, lockName))
	db, st := mustOpen(t, testOptions(dir, nil))
	defer db.Close()
	if got := dump(t, st); got != states[len(states)-2] {
		t.Fatalf("got\n%s\nwant\n%s", got, states[len(states)-2])
	}
}

// TestDiskErrorRefusesWrites makes an fsync of the log fail: the write
// waiting for it gets an error, later writes fail with io_error naming the
// file, reads go on, and a snapshot lets writes in again.
func TestDiskErrorRefusesWrites(t *testing.T) {
	dir := t.TempDir()
	db, st := mustOpen(t, testOptions(dir, nil))
	defer db.Close()
	do(t, st, wire.OpCreateDict, "d")
	if err := db.Wait(); err != nil {
		t.Fatal(err)
	}
	setFailpoint(func(n string) {
		if n == "log-fsync" {
			db.alog.cur.f.Close() // the fsync that follows fails
		}
	})
	do(t, st, wire.OpDSet, "d", "k", 1)
	err := db.Wait()
	setFailpoint(nil)
	if err == nil || !strings.Contains(err.Error(), segmentName(1)) {
		t.Fatalf("Wait after a failed fsync: %v", err)
	}
	_, err = st.Exec(wire.OpDSet, args(t, wire.OpDSet, "d", "k", 2), nil)
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeIO || !strings.Contains(we.Message, "file already closed") {
		t.Fatalf("write after the failure: %v", err)
	}
	if _, err := st.Exec(wire.OpDGet, args(t, wire.OpDGet, "d", "k"), nil); err != nil {
		t.Fatalf("read after the failure: %v", err)
	}
	m := map[string]any{}
	db.Info(m)
	if m["last_fsync_error"] == "" || m["writes_refused"] == "" {
		t.Fatalf("info: %v", m)
	}
	if err := db.Save(); err != nil {
		t.Fatal(err)
	}
	do(t, st, wire.OpDSet, "d", "k", 3)
	if err := db.Wait(); err != nil {
		t.Fatal(err)
	}
	want := dump(t, st)
	db.crash()
	db, st = mustOpen(t, testOptions(dir, nil))
	if got := dump(t, st); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// TestSnapshotsDuringWrites takes snapshots while writers append to their
// lists and to one shared list: after a crash, snapshot plus log must give
// each list exactly once every append (a cut that did not match its log
// segment would lose or repeat some).
func TestSnapshotsDuringWrites(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir, nil)
	opts.Fsync = FsyncNo
	db, st := mustOpen(t, opts)
	const writers, n = 8, 400
	do(t, st, wire.OpCreateList, "shared")
	for w := range writers {
		do(t, st, wire.OpCreateList, "w"+string(rune('a'+w)))
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := "w" + string(rune('a'+w))
			for i := 1; i <= n; i++ {
				do(t, st, wire.OpLAppend, name, i)
				do(t, st, wire.OpBatch, []any{sub(wire.OpLAppend, "shared", w), sub(wire.OpLAppend, name, -i)})
			}
		}()
	}
	for range 10 {
		if err := db.Save(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if err := db.Wait(); err != nil {
		t.Fatal(err)
	}
	want := dump(t, st)
	db.crash()
	db, st = mustOpen(t, opts)
	defer db.Close()
	if got := dump(t, st); got != want {
		t.Fatalf("after snapshots during writes and a crash:\n%.300s\nwant\n%.300s", got, want)
	}
}
