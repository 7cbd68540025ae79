package persist

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// The paths --recover takes when the snapshot is damaged (loadBase), each
// checked on the data: the exact state when the backup or the whole log
// allows it, and otherwise only tables whose state really existed.

// threeSnapshots writes tables, takes three snapshots with writes in
// between, then writes more (in the log only) and crashes. The dict "d"
// ends with k = 4501 by an incr in the log, from 4500 in the snapshot.
func threeSnapshots(t *testing.T, logOps ...op) (dir, want string) {
	t.Helper()
	dir = t.TempDir()
	db, st := mustOpen(t, testOptions(dir, nil))
	do(t, st, wire.OpCreateDict, "a", map[string]any{"x": 1})
	do(t, st, wire.OpCreateDict, "d", map[string]any{"k": 4499, "other": strings.Repeat("o", 40)})
	do(t, st, wire.OpCreateList, "z", []any{1, 2})
	for i := range 3 {
		if err := db.Save(); err != nil {
			t.Fatal(err)
		}
		do(t, st, wire.OpLAppend, "z", 10+i)
	}
	do(t, st, wire.OpDIncr, "d", "k") // 4500, in the last snapshot
	if err := db.Save(); err != nil {
		t.Fatal(err)
	}
	do(t, st, wire.OpDIncr, "d", "k") // 4501, in the log only
	do(t, st, wire.OpDSet, "a", "y", 2)
	do(t, st, wire.OpLAppend, "z", 99)
	apply(t, st, logOps)
	want = dump(t, st)
	db.crash()
	return dir, want
}

// flipIn flips a byte of the file at path just after the first occurrence
// of marker.
func flipIn(t *testing.T, path, marker string) {
	t.Helper()
	b := readFile(t, path)
	i := bytes.Index(b, []byte(marker))
	if i < 0 {
		t.Fatalf("%q not in %s", marker, path)
	}
	b[i+len(marker)/2] ^= 0x20
	writeFile(t, path, b)
}

func recoverOpen(t *testing.T, dir string) (*DB, *store.Store, string) {
	t.Helper()
	var logs daemontest.Buffer
	opts := testOptions(dir, &logs)
	opts.Recover = true
	db, st := mustOpen(t, opts)
	return db, st, logs.String()
}

// refused checks that a start without --recover fails with a damage error
// naming file, and changes no file.
func refused(t *testing.T, dir, file string) {
	t.Helper()
	before := dirFiles(t, dir)
	_, err := Open(store.New(), testOptions(dir, nil))
	if !errors.As(err, new(*DamageError)) || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "--recover") {
		t.Fatalf("Open = %v, want a damage error naming %s and --recover", err, file)
	}
	if after := dirFiles(t, dir); after != before {
		t.Fatalf("the refused start changed the data dir:\n%s\nwas\n%s", after, before)
	}
}

// dirFiles describes the files of dir but LOCK.
func dirFiles(t *testing.T, dir string) string {
	ents, _ := os.ReadDir(dir)
	var b strings.Builder
	for _, e := range ents {
		if e.Name() != lockName {
			b.WriteString(e.Name() + " " + string(readFile(t, filepath.Join(dir, e.Name()))) + "\n")
		}
	}
	return b.String()
}

func TestRecoverFromBackup(t *testing.T) {
	dir, want := threeSnapshots(t)
	// The log the backup needs is kept, the one before it is not.
	if _, err := os.Stat(segPath(dir, 1)); err == nil {
		t.Fatal("segment 1 is still there after three snapshots")
	}
	for _, damage := range []struct {
		name string
		do   func(path string)
	}{
		{"entry", func(p string) { flipIn(t, p, "other") }},
		{"version", func(p string) { b := readFile(t, p); b[11] ^= 0x02; writeFile(t, p, b) }},
		{"empty", func(p string) { writeFile(t, p, nil) }},
		{"missing", func(p string) { os.Remove(p) }},
	} {
		t.Run(damage.name, func(t *testing.T) {
			dir := copyDir(t, dir)
			damage.do(filepath.Join(dir, snapshotName))
			refused(t, dir, snapshotName)
			db, st, logs := recoverOpen(t, dir)
			if got := dump(t, st); got != want {
				t.Fatalf("recovered\n%s\nwant\n%s", got, want)
			}
			if !strings.Contains(logs, "loaded "+backupName+" instead") {
				t.Fatalf("the log does not say the backup was used:\n%s", logs)
			}
			db.crash()
			db, st = mustOpen(t, testOptions(dir, nil)) // and it stands on its own
			if got := dump(t, st); got != want {
				t.Fatalf("after the recovery, a restart gives\n%s\nwant\n%s", got, want)
			}
			db.Close()
		})
	}
}

// TestRecoverWholeTables: the snapshot and its backup are both unusable,
// and the log no longer goes back to segment 1: the tables of the damaged
// snapshot that are whole are loaded and the log replayed onto them; the
// damaged table is set aside, never rebuilt with the log's ops on a part
// of it (the incr of a lost 4500 would give 1).
func TestRecoverWholeTables(t *testing.T) {
	dir, want := threeSnapshots(t)
	os.Remove(filepath.Join(dir, backupName))
	flipIn(t, filepath.Join(dir, snapshotName), "other")
	refused(t, dir, snapshotName)
	db, st, logs := recoverOpen(t, dir)
	defer db.Close()
	got := dump(t, st)
	if wantLess := dropLine(want, "d="); got != wantLess {
		t.Fatalf("recovered\n%s\nwant every table but d, exact:\n%s", got, wantLess)
	}
	if !strings.Contains(logs, "tables set aside") || !strings.Contains(logs, "tables=[d]") {
		t.Fatalf("the log does not name the table set aside:\n%s", logs)
	}
}

// A batch that touches a table set aside fails on replay: the other
// tables it touches are set aside too, rather than miss its ops.
func TestRecoverBatchSetsAside(t *testing.T) {
	dir, want := threeSnapshots(t,
		op{wire.OpBatch, []any{[]any{sub(wire.OpDIncr, "d", "k"), sub(wire.OpLAppend, "z", 100)}}},
		op{wire.OpCreateDict, []any{"new", map[string]any{"n": 1}}},
		op{wire.OpDIncr, []any{"new", "n"}},
	)
	os.Remove(filepath.Join(dir, backupName))
	flipIn(t, filepath.Join(dir, snapshotName), "other")
	db, st, _ := recoverOpen(t, dir)
	defer db.Close()
	if got, wantLess := dump(t, st), dropLine(dropLine(want, "d="), "z="); got != wantLess {
		t.Fatalf("recovered\n%s\nwant\n%s", got, wantLess)
	}
}

// When even the snapshot's first record is lost, no table of it is
// loaded; the tables the log creates are rebuilt whole.
func TestRecoverNoSnapshotInfo(t *testing.T) {
	dir, want := threeSnapshots(t,
		op{wire.OpCreateDict, []any{"new", map[string]any{"n": 1}}},
		op{wire.OpDIncr, []any{"new", "n"}},
		op{wire.OpDrop, []any{"a"}},
		op{wire.OpCreateList, []any{"a", []any{"again"}}},
	)
	os.Remove(filepath.Join(dir, backupName))
	flipIn(t, filepath.Join(dir, snapshotName), "log_segment")
	db, st, _ := recoverOpen(t, dir)
	defer db.Close()
	var rebuilt []string
	for _, line := range strings.SplitAfter(want, "\n") {
		if strings.HasPrefix(line, "new=") || strings.HasPrefix(line, "a=") {
			rebuilt = append(rebuilt, line)
		}
	}
	if got := dump(t, st); got != strings.Join(rebuilt, "") {
		t.Fatalf("recovered\n%s\nwant only the tables the log rebuilds:\n%s", got, strings.Join(rebuilt, ""))
	}
}

func dropLine(s, prefix string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(line, prefix) {
			b.WriteString(line)
		}
	}
	return b.String()
}

// TestReadVersion1 loads a data dir written by cyberdb before format 2
// (the release on main when the format changed: snapshot, backup and a log
// segment of version 1, no MANIFEST), then goes on writing in the current
// format.
func TestReadVersion1(t *testing.T) { loadOldFormat(t, "v1-datadir") }

// loadOldFormat loads testdata/fixture, a data dir of an older format,
// checks that it holds testdata/fixture.want without a warning, then
// writes in the current format (a log record, then a snapshot) and
// checks that each loads.
func loadOldFormat(t *testing.T, fixture string) {
	dir := copyDir(t, filepath.Join("testdata", fixture))
	want := string(readFile(t, filepath.Join("testdata", fixture+".want")))
	var logs daemontest.Buffer
	db, st := mustOpen(t, testOptions(dir, &logs))
	if got := dump(t, st); got != want {
		t.Fatalf("loaded\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("warnings loading %s:\n%s", fixture, logs.String())
	}
	do(t, st, wire.OpDSet, "d", "now", true)
	want = dump(t, st)
	db.crash()
	db, st = mustOpen(t, testOptions(dir, nil))
	if got := dump(t, st); got != want {
		t.Fatalf("after writing in the current format:\n%s\nwant\n%s", got, want)
	}
	if err := db.Save(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, st = mustOpen(t, testOptions(dir, nil))
	defer db.Close()
	if got := dump(t, st); got != want {
		t.Fatalf("after a snapshot in the current format:\n%s\nwant\n%s", got, want)
	}
}

// TestSegmentWithoutEndRecord: a segment the log moved on from that lost
// its end record (cut at a record boundary) is damage.
func TestSegmentWithoutEndRecord(t *testing.T) {
	src, states := history(t) // segment 1
	db, st := mustOpen(t, testOptions(src, nil))
	do(t, st, wire.OpCreateDict, "later") // segment 2; segment 1 got its end record
	db.crash()
	full := readFile(t, segPath(src, 1))
	ends := recordEnds(t, full)
	for _, cut := range []int{ends[len(ends)-2], ends[len(ends)-3]} { // without the end record; and one op less
		dir := copyDir(t, src)
		writeFile(t, segPath(dir, 1), full[:cut])
		refused(t, dir, segmentName(1))
		db, st, _ := recoverOpen(t, dir)
		whole := 0
		for whole < len(ends) && ends[whole] <= cut {
			whole++
		}
		if got := dump(t, st); got != states[whole] {
			t.Fatalf("cut at %d: recovered\n%s\nwant\n%s", cut, got, states[whole])
		}
		db.Close()
	}
}

func TestManifestDamage(t *testing.T) {
	src, states := history(t)
	want := states[len(states)-1]
	mp := filepath.Join(src, manifestName)
	full := readFile(t, mp)
	t.Run("one-slot", func(t *testing.T) {
		// A torn write of one slot: the other is used.
		dir := copyDir(t, src)
		b := append([]byte(nil), full...)
		for i := 0; i < 2; i++ {
			if s := b[i*manifestSlot : (i+1)*manifestSlot]; !allZero(s) {
				s[20] ^= 1 // the newest written: history wrote several
				break
			}
		}
		writeFile(t, filepath.Join(dir, manifestName), b)
		db, st := mustOpen(t, testOptions(dir, nil))
		defer db.Close()
		if got := dump(t, st); got != want {
			t.Fatalf("got\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("both-slots", func(t *testing.T) {
		dir := copyDir(t, src)
		b := append([]byte(nil), full...)
		b[20] ^= 1
		b[manifestSlot+20] ^= 1
		writeFile(t, filepath.Join(dir, manifestName), b)
		refused(t, dir, manifestName)
		db, st, logs := recoverOpen(t, dir)
		defer db.Close()
		if got := dump(t, st); got != want || !strings.Contains(logs, "MANIFEST is damaged") {
			t.Fatalf("got\n%s\nwant\n%s\nlogs:\n%s", got, want, logs)
		}
	})
	t.Run("missing", func(t *testing.T) {
		dir := copyDir(t, src)
		os.Remove(filepath.Join(dir, manifestName))
		_, err := Open(store.New(), testOptions(dir, nil))
		if err == nil || !strings.Contains(err.Error(), "MANIFEST is missing") || !strings.Contains(err.Error(), "--recover") {
			t.Fatalf("Open = %v", err)
		}
		db, st, _ := recoverOpen(t, dir)
		defer db.Close()
		if got := dump(t, st); got != want {
			t.Fatalf("got\n%s\nwant\n%s", got, want)
		}
	})
}

// TestUnnamedSegment: a segment after the MANIFEST's last one is left by a
// crash that created it: removed when it holds no record, damage when it
// does.
func TestUnnamedSegment(t *testing.T) {
	src, states := history(t)
	want := states[len(states)-1]
	t.Run("header-only", func(t *testing.T) {
		dir := copyDir(t, src)
		seg, err := createSegment(dir, 2)
		if err != nil {
			t.Fatal(err)
		}
		seg.f.Close()
		db, st := mustOpen(t, testOptions(dir, nil))
		if got := dump(t, st); got != want {
			t.Fatalf("got\n%s\nwant\n%s", got, want)
		}
		do(t, st, wire.OpCreateDict, "after")
		want := dump(t, st)
		db.crash()
		db, st = mustOpen(t, testOptions(dir, nil))
		defer db.Close()
		if got := dump(t, st); got != want {
			t.Fatalf("second start: got\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("with-records", func(t *testing.T) {
		dir := copyDir(t, src)
		b := readFile(t, segPath(dir, 1))
		b[23] = 2 // segment 2's number, in a valid header
		putHeader(b[:logHeader], logMagic, logVersion)
		writeFile(t, segPath(dir, 2), b)
		refused(t, dir, segmentName(2))
		db, st, _ := recoverOpen(t, dir)
		defer db.Close()
		if got := dump(t, st); got != want {
			t.Fatalf("got\n%s\nwant\n%s", got, want)
		}
	})
}

// TestZeroedTail: zeros after the last record (a filesystem's leftovers
// after a power cut) are a torn tail: trimmed, with a warning naming the
// file, the offset and the bytes dropped.
func TestZeroedTail(t *testing.T) {
	src, states := history(t)
	want := states[len(states)-1]
	p := segPath(src, 1)
	size := len(readFile(t, p))
	writeFile(t, p, append(readFile(t, p), make([]byte, 4096)...))
	var logs daemontest.Buffer
	db, st := mustOpen(t, testOptions(src, &logs))
	defer db.Close()
	if got := dump(t, st); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	for _, w := range []string{"level=WARN", segmentName(1), "offset=" + strconv.Itoa(size), "bytes_dropped=4096"} {
		if !strings.Contains(logs.String(), w) {
			t.Fatalf("the warning lacks %q:\n%s", w, logs.String())
		}
	}
}

// TestReadVersion2 loads a data dir written in format 2 (the release on
// main before format 3 added deadlines: snapshot, backup, two log segments
// and a MANIFEST), then goes on writing in the current format. The fixture
// was made by CYBERDB_WRITE_V2_FIXTURE=1 go test -run TestReadVersion2 on
// that release; the generator stays so that the history is reproducible.
func TestReadVersion2(t *testing.T) {
	if os.Getenv("CYBERDB_WRITE_V2_FIXTURE") != "" {
		writeV2Fixture(t, filepath.Join("testdata", "v2-datadir"))
	}
	loadOldFormat(t, "v2-datadir")
}

// writeV2Fixture makes testdata/v2-datadir: everyOp, a snapshot, more ops,
// a second snapshot (so there is a backup), more ops left in the log, and
// a crash (no snapshot at the end).
func writeV2Fixture(t *testing.T, fixture string) {
	dir := t.TempDir()
	db, st := mustOpen(t, testOptions(dir, nil))
	apply(t, st, everyOp)
	if err := db.Save(); err != nil {
		t.Fatal(err)
	}
	do(t, st, wire.OpDSet, "d", "after-first-snapshot", 1)
	do(t, st, wire.OpLAppend, "l", "after-first-snapshot")
	if err := db.Save(); err != nil {
		t.Fatal(err)
	}
	do(t, st, wire.OpDIncr, "d", "n", 100)
	do(t, st, wire.OpCreateDict, "late", map[string]any{"k": []any{"v", 1}})
	do(t, st, wire.OpDDel, "d", "c")
	want := dump(t, st)
	db.crash()
	if err := os.RemoveAll(fixture); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(fixture, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == lockName {
			continue
		}
		writeFile(t, filepath.Join(fixture, e.Name()), readFile(t, filepath.Join(dir, e.Name())))
	}
	writeFile(t, fixture+".want", []byte(want))
}
