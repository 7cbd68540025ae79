package persist

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// crash stops db as a killed process would leave it: no snapshot, the log
// as written to the OS so far, the lock released.
func (db *DB) crash() {
	close(db.stop)
	<-db.stopped
	db.closed = true
	db.st.SetJournal(nil)
	if db.alog != nil {
		db.alog.close()
	}
	db.man.close()
	db.lock.Close()
}

func testOptions(dir string, logs io.Writer) Options {
	if logs == nil {
		logs = io.Discard
	}
	return Options{Dir: dir, AppendOnly: true, Fsync: FsyncAlways, Logger: slog.New(slog.NewTextHandler(logs, nil))}
}

// mustOpen opens dir into a new store.
func mustOpen(tb testing.TB, opts Options) (*DB, *store.Store) {
	tb.Helper()
	st := store.New()
	db, err := Open(st, opts)
	if err != nil {
		tb.Fatalf("Open %s: %v", opts.Dir, err)
	}
	return db, st
}

// op is one request: op and its arguments as Go values.
type op struct {
	op   wire.Op
	args []any
}

func args(tb testing.TB, o wire.Op, vals ...any) wire.Args {
	tb.Helper()
	a := wire.Args{Op: o}
	for _, v := range vals {
		b, err := wire.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		a.Items = append(a.Items, b)
	}
	return a
}

func do(tb testing.TB, st *store.Store, o wire.Op, vals ...any) {
	tb.Helper()
	if _, err := st.Exec(o, args(tb, o, vals...), nil); err != nil {
		tb.Fatalf("%s %v: %v", o, vals, err)
	}
}

func sub(o wire.Op, vals ...any) []any { return append([]any{uint64(o)}, vals...) }

// everyOp is a history touching every kind of write op, batches, drops
// and re-creates included.
var everyOp = []op{
	{wire.OpCreateDict, []any{"d", map[string]any{"a": 1, "b": "two"}}},
	{wire.OpDSet, []any{"d", "c", []any{1, 2.5, nil, true}}},
	{wire.OpDIncr, []any{"d", "n", 5}},
	{wire.OpDIncr, []any{"d", "n"}},
	{wire.OpDDel, []any{"d", "a"}},
	{wire.OpDSet, []any{"d", "a", "again"}},
	{wire.OpDPop, []any{"d", "b"}},
	{wire.OpDSetDefault, []any{"d", "s", 7}},
	{wire.OpDUpdate, []any{"d", map[string]any{"u": 1, "v": 2}}},
	{wire.OpDCAS, []any{"d", "u", 10, 1}},
	{wire.OpDPopItem, []any{"d"}},
	{wire.OpCreateList, []any{"l", []any{3, 1, 2}}},
	{wire.OpLAppend, []any{"l", "x", "y"}},
	{wire.OpLExtend, []any{"l", []any{9, 8}}},
	{wire.OpLInsert, []any{"l", 0, "first"}},
	{wire.OpLSet, []any{"l", -1, "last"}},
	{wire.OpLDel, []any{"l", 1}},
	{wire.OpLPop, []any{"l"}},
	{wire.OpLRemove, []any{"l", "x"}},
	{wire.OpLReverse, []any{"l"}},
	{wire.OpCreateList, []any{"nums", []any{5, 3, 9, 1}}},
	{wire.OpLSort, []any{"nums"}},
	{wire.OpLDelSlice, []any{"nums", 0, 1}},
	{wire.OpLSetSlice, []any{"nums", 1, 2, nil, []any{"grown", "by", "three"}}},
	{wire.OpLSetSlice, []any{"nums", nil, nil, -2, []any{"e0", "e1", "e2"}}},
	{wire.OpBatch, []any{[]any{sub(wire.OpDSet, "d", "batch", 1), sub(wire.OpLAppend, "l", "b"), sub(wire.OpCreateDict, "nb")}}},
	{wire.OpCreateDict, []any{"gone"}},
	{wire.OpDrop, []any{"gone"}},
	{wire.OpCreateList, []any{"gone", []any{"reborn"}}},
	{wire.OpCreateDict, []any{"cleared", map[string]any{"k": 1}}},
	{wire.OpDClear, []any{"cleared"}},
	{wire.OpCreateList, []any{"lcleared", []any{1}}},
	{wire.OpLClear, []any{"lcleared"}},
}

func apply(tb testing.TB, st *store.Store, ops []op) {
	tb.Helper()
	for _, o := range ops {
		do(tb, st, o.op, o.args...)
	}
}

// dump renders every table, in order, entries in their order, with dict
// insertion numbers (dscan cursors).
func dump(tb testing.TB, st *store.Store) string {
	tb.Helper()
	out, err := st.Exec(wire.OpTables, wire.Args{}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	var tables [][]any
	if err := wire.Unmarshal(out, &tables); err != nil {
		tb.Fatal(err)
	}
	var b strings.Builder
	for _, t := range tables {
		name := t[0].(string)
		if t[1] == "dict" {
			res, err := st.Exec(wire.OpDScan, args(tb, wire.OpDScan, name, 0, 10000), nil)
			if err != nil {
				tb.Fatal(err)
			}
			fmt.Fprintf(&b, "%s=dict %s\n", name, wire.Diagnose(res))
		} else {
			res, err := st.Exec(wire.OpLToList, args(tb, wire.OpLToList, name), nil)
			if err != nil {
				tb.Fatal(err)
			}
			fmt.Fprintf(&b, "%s=list %s\n", name, wire.Diagnose(res))
		}
	}
	return b.String()
}

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func writeFile(tb testing.TB, path string, b []byte) {
	tb.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// copyDir copies the regular files of from into a new temp dir.
func copyDir(tb testing.TB, from string) string {
	tb.Helper()
	to := tb.TempDir()
	ents, _ := os.ReadDir(from)
	for _, e := range ents {
		if e.Type().IsRegular() {
			writeFile(tb, filepath.Join(to, e.Name()), readFile(tb, filepath.Join(from, e.Name())))
		}
	}
	return to
}

// forgetDurable rewrites the MANIFEST of dir as a kill right after the
// last writes leaves it: not yet saying how much of the last segment is on
// disk (it lags by up to manifestEvery). A clean close, and crash, record
// it.
func forgetDurable(tb testing.TB, dir string) {
	tb.Helper()
	m, err := readManifest(dir)
	if err != nil || m == nil {
		tb.Fatalf("read MANIFEST: %v %v", m, err)
	}
	st := *m
	st.durable = logHeader
	mm, err := createManifest(dir, m.gen, st)
	if err != nil {
		tb.Fatal(err)
	}
	mm.close()
}
