package persist_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb"
)

// TestDamagedDataDir runs the real daemon, kills it (SIGKILL), damages its
// data dir in each way a disk or a person can, then starts it without
// --recover (it must refuse, naming the file, and change nothing) and with
// it, and checks the data: every acknowledged write that the damage left
// readable is there, and no value is one nobody wrote.
func TestDamagedDataDir(t *testing.T) {
	tpl := damageTemplate(t, 2)
	one := damageTemplate(t, 1) // one snapshot: the log still goes back to segment 1
	cases := []struct {
		tpl     *damageTpl // tpl if nil
		name    string
		damage  func(t *testing.T, dir string)
		refused []string // in the refusal; nil: starts without --recover
		want    string   // the state after the (--recover) start
		logs    []string // in the output of that start
	}{{
		name:    "last-segment-missing",
		damage:  func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, tpl.lastSeg))) },
		refused: []string{tpl.lastSeg, "missing", "MANIFEST"},
		want:    tpl.snapped, // the writes in the lost file are gone; nothing else is
	}, {
		name:    "last-segment-cut-at-a-record",
		damage:  func(t *testing.T, dir string) { truncate(t, filepath.Join(dir, tpl.lastSeg), tpl.lastRecordAt) },
		refused: []string{tpl.lastSeg, "MANIFEST", "cut"},
		want:    tpl.butLast,
	}, {
		name:    "last-segment-bare-header",
		damage:  func(t *testing.T, dir string) { truncate(t, filepath.Join(dir, tpl.lastSeg), 24) },
		refused: []string{tpl.lastSeg, "MANIFEST", "cut"},
		want:    tpl.snapped,
	}, {
		name:    "last-segment-empty",
		damage:  func(t *testing.T, dir string) { truncate(t, filepath.Join(dir, tpl.lastSeg), 0) },
		refused: []string{tpl.lastSeg, "empty", "MANIFEST"},
		want:    tpl.snapped,
	}, {
		name: "last-segment-zeroed-tail",
		damage: func(t *testing.T, dir string) {
			f, err := os.OpenFile(filepath.Join(dir, tpl.lastSeg), os.O_WRONLY|os.O_APPEND, 0)
			must(t, err)
			_, err = f.Write(make([]byte, 4096))
			must(t, err)
			must(t, f.Close())
		},
		want: tpl.final, // a torn tail: trimmed, with a warning
		logs: []string{"cut short", tpl.lastSeg, "offset=" + strconv.Itoa(tpl.lastSegSize), "bytes_dropped=4096"},
	}, {
		name:    "log-header-version-bit",
		damage:  func(t *testing.T, dir string) { flipByte(t, filepath.Join(dir, tpl.lastSeg), 11, 0x04) },
		refused: []string{tpl.lastSeg, "offset 0", "header is damaged"},
		want:    tpl.snapped,
	}, {
		name:    "snapshot-entry",
		damage:  func(t *testing.T, dir string) { flipAfter(t, filepath.Join(dir, "snapshot.cdb"), "ooooo") },
		refused: []string{"snapshot.cdb is damaged at byte offset", "--recover", "snapshot.cdb.bak"},
		want:    tpl.final, // snapshot.cdb.bak and the log after it: exact
		logs:    []string{"loaded snapshot.cdb.bak instead"},
	}, {
		name:    "snapshot-header-version-bit",
		damage:  func(t *testing.T, dir string) { flipByte(t, filepath.Join(dir, "snapshot.cdb"), 11, 0x04) },
		refused: []string{"snapshot.cdb is damaged at byte offset 0", "header is damaged"},
		want:    tpl.final,
		logs:    []string{"loaded snapshot.cdb.bak instead"},
	}, {
		name:    "snapshot-empty",
		damage:  func(t *testing.T, dir string) { truncate(t, filepath.Join(dir, "snapshot.cdb"), 0) },
		refused: []string{"snapshot.cdb", "empty"},
		want:    tpl.final,
		logs:    []string{"loaded snapshot.cdb.bak instead"},
	}, {
		name:    "snapshot-entry-one-snapshot",
		tpl:     &one,
		damage:  func(t *testing.T, dir string) { flipAfter(t, filepath.Join(dir, "snapshot.cdb"), "ooooo") },
		refused: []string{"snapshot.cdb is damaged at byte offset"},
		want:    one.final, // no backup, but the empty state and the whole log: exact
		logs:    []string{"replaying it from the empty state"},
	}, {
		name: "snapshot-and-backup",
		damage: func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, "snapshot.cdb.bak")))
			flipAfter(t, filepath.Join(dir, "snapshot.cdb"), "ooooo")
		},
		refused: []string{"snapshot.cdb is damaged at byte offset"},
		// The tables read whole, with the log: exact. "d" is set aside: the
		// log's incr of its k (4500 in the snapshot) is not replayed onto
		// a table missing part of its entries.
		want: withoutTable(tpl.final, "d"),
		logs: []string{"tables set aside", "tables=[d]"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // daemons mostly wait for their start-up
			dir := filepath.Join(daemontest.ShortTempDir(t), "data")
			from := tpl
			if tc.tpl != nil {
				from = *tc.tpl
			}
			copyTree(t, from.dir, dir)
			tc.damage(t, dir)
			args := []string{"--data-dir=" + dir, "--fsync=always"}
			if tc.refused != nil {
				before := treeDigest(t, dir)
				out, err := startRefused(t, append(args, "--socket="+filepath.Join(filepath.Dir(dir), "x.sock"))...)
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatalf("start without --recover: %v, want a refusal\n%s", err, out)
				}
				for _, w := range append(tc.refused, "--recover") {
					if !strings.Contains(string(out), w) {
						t.Fatalf("the refusal does not say %q:\n%s", w, out)
					}
				}
				if after := treeDigest(t, dir); after != before {
					t.Fatalf("the refused start changed the data dir")
				}
				t.Logf("refused: %s", lastLine(out))
				args = append(args, "--recover")
			}
			d := daemontest.Start(t, args...)
			c := open(t, d)
			got := state(t, c)
			c.Close()
			if got != tc.want {
				t.Fatalf("started with %v:\n%s\nwant\n%s\nits output:\n%s", args[2:], got, tc.want, d.Output())
			}
			if strings.Contains(got, "{{} k 1}") {
				t.Fatalf("an invented value (the incr of a 4500 that was lost): %s", got)
			}
			for _, w := range tc.logs {
				if !strings.Contains(d.Output(), w) {
					t.Fatalf("the output does not say %q:\n%s", w, d.Output())
				}
			}
			// The recovered data dir stands on its own: a kill and a start
			// without --recover give the same.
			d.Kill(t)
			d.Args = slices.DeleteFunc(d.Args, func(a string) bool { return a == "--recover" })
			d.Restart(t)
			c = open(t, d)
			defer c.Close()
			if again := state(t, c); again != got {
				t.Fatalf("after the recovery, a restart gives\n%s\nwant\n%s\n%s", again, got, d.Output())
			}
		})
	}
	t.Run("newer-version", func(t *testing.T) {
		t.Parallel()
		// Only an intact header with a higher version means "newer": then
		// even --recover refuses, and nothing is touched.
		dir := filepath.Join(daemontest.ShortTempDir(t), "data")
		copyTree(t, tpl.dir, dir)
		p := filepath.Join(dir, "snapshot.cdb")
		b, err := os.ReadFile(p)
		must(t, err)
		binary.BigEndian.PutUint32(b[8:], 99)
		binary.BigEndian.PutUint32(b[12:], 0)
		binary.BigEndian.PutUint32(b[12:], crc32.Checksum(b[:16], crc32.MakeTable(crc32.Castagnoli)))
		must(t, os.WriteFile(p, b, 0o600))
		before := treeDigest(t, dir)
		for _, rec := range []string{"--recover=false", "--recover"} {
			out, err := startRefused(t, "--data-dir="+dir, rec, "--socket="+filepath.Join(filepath.Dir(dir), "x.sock"))
			if err == nil || !strings.Contains(string(out), "format version 99") || !strings.Contains(string(out), "newer cyberdbd") {
				t.Fatalf("%s: %v\n%s", rec, err, out)
			}
		}
		if treeDigest(t, dir) != before {
			t.Fatal("the refused starts changed the data dir")
		}
	})
}

// startRefused runs the daemon with args, expecting it to refuse to
// start: one that starts instead is stopped after 10s.
func startRefused(t *testing.T, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, daemontest.Binary(t), args...)
	cmd.Env = daemontest.Env()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return out, fmt.Errorf("it started and served for 10s instead")
	}
	return out, err
}

type damageTpl struct {
	dir          string // a data dir the killed daemon left
	lastSeg      string // the name of its newest log segment
	lastSegSize  int
	lastRecordAt int // where the last record of lastSeg starts

	snapped string // the state in the last snapshot
	butLast string // the state before the last write
	final   string // the state when the daemon was killed
}

// damageTemplate runs the daemon with --fsync always: tables, a snapshot,
// more writes and, if snapshots is 2, a second snapshot (so that there is
// a snapshot.cdb.bak, and segment 1 is gone), then writes in the log
// only, among them the incr of a key from 4500 to 4501, and a kill once
// the MANIFEST says all of the log is on disk.
func damageTemplate(t *testing.T, snapshots int) damageTpl {
	d := daemontest.Start(t, "--fsync=always", "--snapshot-interval=0")
	c := open(t, d)
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "keep", map[string]any{"a": 1}))
	must(t, c.CreateDict(ctx, "d", map[string]any{"k": 4500, "other": strings.Repeat("o", 40)}))
	must(t, c.CreateList(ctx, "l", []any{1, 2, 3}))
	must(t, c.Save(ctx))
	keep := libcyberdb.NewDict[string, int](c, "keep")
	l := libcyberdb.NewList[int](c, "l")
	must(t, keep.Set(ctx, "b", 2))
	_, err := l.Append(ctx, 4)
	must(t, err)
	if snapshots > 1 {
		must(t, c.Save(ctx))
	}
	var tpl damageTpl
	tpl.snapped = state(t, c) // in the second snapshot, if there is one
	if n, err := libcyberdb.NewDict[string, int](c, "d").Incr(ctx, "k", 1); err != nil || n != 4501 {
		t.Fatalf("incr: %d %v", n, err)
	}
	must(t, keep.Set(ctx, "c", 3))
	tpl.butLast = state(t, c)
	_, err = l.Append(ctx, 5)
	must(t, err)
	tpl.final = state(t, c)
	c.Close()

	data := filepath.Join(d.Dir, "cyberdb-data")
	segs, _ := filepath.Glob(filepath.Join(data, "appendonly-*.log"))
	slices.Sort(segs)
	last := segs[len(segs)-1]
	tpl.lastSeg = filepath.Base(last)
	b, err := os.ReadFile(last)
	must(t, err)
	tpl.lastSegSize = len(b)
	for off := 24; off < len(b); off += 8 + int(binary.BigEndian.Uint32(b[off:])) {
		tpl.lastRecordAt = off
	}
	// The MANIFEST records what is on disk of the last segment within
	// 100ms of its fsync (persist.manifestEvery).
	deadline := time.Now().Add(10 * time.Second)
	for {
		seg, durable := manifestDurable(t, data)
		if seg == tpl.lastSeg && durable == int64(len(b)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the MANIFEST says %d bytes of %s are on disk, want %d of %s", durable, seg, len(b), tpl.lastSeg)
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.Kill(t)
	t.Logf("states: in the snapshot:\n%s\nbefore the last write:\n%s\nat the kill:\n%s", tpl.snapped, tpl.butLast, tpl.final)
	tpl.dir = filepath.Join(daemontest.ShortTempDir(t), "template")
	copyTree(t, data, tpl.dir)
	return tpl
}

// manifestDurable reads the MANIFEST (format in manifest.go): the last
// segment and how much of it is on disk, from the newest slot.
func manifestDurable(t *testing.T, dir string) (string, int64) {
	b, err := os.ReadFile(filepath.Join(dir, "MANIFEST"))
	must(t, err)
	var gen, last, durable uint64
	for i := 0; i+512 <= len(b); i += 512 {
		s := b[i : i+512]
		if string(s[:8]) == "CDBMANIF" && binary.BigEndian.Uint64(s[16:]) > gen {
			gen, last, durable = binary.BigEndian.Uint64(s[16:]), binary.BigEndian.Uint64(s[40:]), binary.BigEndian.Uint64(s[48:])
		}
	}
	return fmt.Sprintf("appendonly-%010d.log", last), int64(durable)
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

func truncate(t *testing.T, path string, n int) { must(t, os.Truncate(path, int64(n))) }

func flipByte(t *testing.T, path string, at int, mask byte) {
	b, err := os.ReadFile(path)
	must(t, err)
	b[at] ^= mask
	must(t, os.WriteFile(path, b, 0o600))
}

// flipAfter flips a bit in the middle of the first occurrence of marker.
func flipAfter(t *testing.T, path, marker string) {
	b, err := os.ReadFile(path)
	must(t, err)
	i := bytes.Index(b, []byte(marker))
	if i < 0 {
		t.Fatalf("%q not in %s", marker, path)
	}
	b[i+len(marker)/2] ^= 0x01
	must(t, os.WriteFile(path, b, 0o600))
}

func withoutTable(state, name string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(state, "\n") {
		if !strings.HasPrefix(line, name+"=") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func copyTree(t *testing.T, from, to string) {
	must(t, os.MkdirAll(to, 0o700))
	ents, err := os.ReadDir(from)
	must(t, err)
	for _, e := range ents {
		if !e.Type().IsRegular() || e.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(to, e.Name()), b, 0o600))
	}
}

// treeDigest describes the files of dir but LOCK, contents included.
func treeDigest(t *testing.T, dir string) string {
	ents, err := os.ReadDir(dir)
	must(t, err)
	var b strings.Builder
	for _, e := range ents {
		if e.Name() == "LOCK" {
			continue
		}
		c, err := os.ReadFile(filepath.Join(dir, e.Name()))
		must(t, err)
		b.WriteString(e.Name() + "\x00" + string(c) + "\x00")
	}
	return b.String()
}
