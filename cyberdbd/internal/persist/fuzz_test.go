package persist

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
)

// Fuzz targets for the three readers: any bytes must give a loaded store
// (or MANIFEST state) or an error, never a panic or a store whose tables
// cannot be read back. Seeds live in testdata/fuzz/: "everyop" and "small"
// are files of format version 1 (cyberdb before the MANIFEST), the "-v2"
// ones of version 2, the "-v3" ones of the current format (deadlines,
// table options, timed and dremove records); CYBERDB_WRITE_FUZZ_SEEDS=1 go
// test -run TestWriteFuzzSeeds regenerates the latter.
//
//	go test -fuzz FuzzSnapshotReader ./cyberdbd/internal/persist
//	go test -fuzz FuzzLogReader ./cyberdbd/internal/persist
//	go test -fuzz FuzzManifest ./cyberdbd/internal/persist

func FuzzSnapshotReader(f *testing.F) {
	f.Add([]byte(snapMagic + "\x00\x00\x00\x01\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, snapshotName)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, salvage := range []bool{false, true} {
			st := store.New()
			_, err := readSnapshot(path, st, salvage)
			if err != nil && !salvage {
				continue
			}
			// Whatever was loaded reads back, and writes and loads the same.
			want := dump(t, st)
			cut, err := st.Freeze(nil)
			if err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			if _, _, err := writeSnapshot(out, cut, snapInfo{LogSegment: 1}); err != nil {
				t.Fatal(err)
			}
			st2 := store.New()
			if _, err := readSnapshot(filepath.Join(out, snapshotName), st2, false); err != nil {
				t.Fatalf("a loaded store's snapshot does not load: %v", err)
			}
			if got := dump(t, st2); got != want {
				t.Fatalf("round trip:\n%s\nwant\n%s", got, want)
			}
		}
	})
}

func FuzzLogReader(f *testing.F) {
	f.Add([]byte(logMagic + "\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, rec := range []bool{false, true} {
			dir := t.TempDir()
			if err := os.WriteFile(segPath(dir, 1), data, 0o600); err != nil {
				t.Fatal(err)
			}
			db := &DB{st: store.New(), log: slog.New(slog.NewTextHandler(io.Discard, nil)), opts: Options{Dir: dir, Recover: rec}}
			_, _ = db.replaySegment(dir, 1, segCheck{last: true})
			_ = dump(t, db.st)
		}
	})
}

func FuzzManifest(f *testing.F) {
	f.Add(manifestState{gen: 1, snap: 3, keep: 2, last: 4, durable: 100}.encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, manifestName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := readManifest(dir)
		if err != nil {
			var de *DamageError
			if !errors.As(err, &de) && !errors.Is(err, ErrFutureVersion) {
				t.Fatalf("neither damage nor a newer format: %v", err)
			}
			return
		}
		if m == nil {
			t.Fatal("an existing MANIFEST read as none")
		}
		// What was read writes and reads back the same.
		out := t.TempDir()
		mm, err := createManifest(out, m.gen, *m)
		if err != nil {
			t.Fatal(err)
		}
		mm.close()
		m2, err := readManifest(out)
		if err != nil || m2 == nil || *m2 != (manifestState{gen: m.gen + 1, snap: m.snap, keep: m.keep, last: m.last, durable: m.durable}) {
			t.Fatalf("round trip: %+v %v, want %+v", m2, err, m)
		}
	})
}

// TestWriteFuzzSeeds writes the seed corpora of the current formats from
// real files.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("CYBERDB_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set CYBERDB_WRITE_FUZZ_SEEDS=1 to regenerate testdata/fuzz")
	}
	snapDir, _ := snapshotDir(t)
	logDir, _ := history(t)
	seeds := map[string][]byte{
		"FuzzSnapshotReader/everyop-v3": readFile(t, filepath.Join(snapDir, snapshotName)),
		"FuzzLogReader/everyop-v3":      readFile(t, segPath(logDir, 1)),
		"FuzzManifest/history":          readFile(t, filepath.Join(logDir, manifestName)),
	}
	small := t.TempDir()
	db, st := mustOpen(t, testOptions(small, nil))
	do(t, st, 11, "d", map[string]any{"k": 1})
	// Expiry: options, deadlines (timed records), a removal (dremove), a table deadline.
	do(t, st, 11, "s", nil, map[string]any{"ttl": 600000, "max_len": 5})
	do(t, st, 21, "s", "a", 1)
	do(t, st, 21, "s", "b", 2, map[string]any{"at": 4102444800000})
	do(t, st, 21, "s", "c", 3, map[string]any{"at": 1})
	do(t, st, 21, "s", "c", 4) // meets c expired: a dremove record first
	do(t, st, 75, "d", map[string]any{"at": 4102444800000})
	db.crash()
	db, _ = mustOpen(t, testOptions(small, nil)) // segment 1 gets its end record
	db.Close()
	seeds["FuzzLogReader/small-v3"] = readFile(t, segPath(small, 1))
	seeds["FuzzSnapshotReader/small-v3"] = readFile(t, filepath.Join(small, snapshotName))
	seeds["FuzzManifest/small"] = readFile(t, filepath.Join(small, manifestName))
	for name, b := range seeds {
		p := filepath.Join("testdata", "fuzz", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
