package persist

import (
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// deadlines renders every entry's deadline and every table's TTL and
// options, read with the absolute forms of dttl and ttl.
func deadlines(tb testing.TB, st *store.Store) string {
	tb.Helper()
	s := dump(tb, st)
	for _, name := range []string{"sessions", "cache", "work"} {
		out, err := st.Exec(wire.OpTTL, args(tb, wire.OpTTL, name, true), nil)
		s += name + " ttl " + wire.Diagnose(out) + errText(err) + "\n"
	}
	for _, k := range []string{"s1", "s2", "s3", "gone"} {
		out, err := st.Exec(wire.OpDTTL, args(tb, wire.OpDTTL, "sessions", k, true), nil)
		s += k + " " + wire.Diagnose(out) + errText(err) + "\n"
	}
	return s
}

func errText(err error) string {
	if err != nil {
		return " " + wire.AsError(err).Code.String()
	}
	return ""
}

// TestDeadlinesSurviveRestart: deadlines, table TTLs and dict options come
// back exactly from the log alone (a crash), from a snapshot, and from a
// snapshot plus the log after it; what expired while the daemon was down
// is gone when it starts.
func TestDeadlinesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	db, st := mustOpen(t, testOptions(dir, nil))
	now := time.Now().UnixMilli()
	do(t, st, wire.OpCreateDict, "sessions", nil, map[string]any{"ttl": 3_600_000})
	do(t, st, wire.OpDSet, "sessions", "s1", "a")                                   // the default TTL, from the clock: a timed record
	do(t, st, wire.OpDSet, "sessions", "s2", "b", map[string]any{"at": now + 7777}) // an absolute deadline
	do(t, st, wire.OpDSet, "sessions", "gone", "c", map[string]any{"ttl": 50})      // expires while down
	do(t, st, wire.OpCreateDict, "cache", nil, map[string]any{"evict": "lru", "max_len": 10})
	do(t, st, wire.OpCreateList, "work", []any{1, 2})
	do(t, st, wire.OpExpire, "work", map[string]any{"ttl": 3_600_000})
	want := deadlines(t, st)
	db.crash()
	time.Sleep(60 * time.Millisecond) // "gone" expires while the daemon is down
	wantAfter := deadlines(t, st)     // the same store, read now: gone is gone
	if wantAfter == want {
		t.Fatal("the entry with 50ms left did not expire")
	}

	db, st = mustOpen(t, testOptions(dir, nil)) // the log alone
	if got := deadlines(t, st); got != wantAfter {
		t.Fatalf("after a crash:\n%s\nwant\n%s", got, wantAfter)
	}
	do(t, st, wire.OpDSet, "sessions", "s3", "d", map[string]any{"ttl": 100_000})
	wantAfter = deadlines(t, st)
	if err := db.Save(); err != nil {
		t.Fatal(err)
	}
	do(t, st, wire.OpDGetEx, "sessions", "s2", map[string]any{"ttl": 200_000}) // in the log after the snapshot
	wantAfter = deadlines(t, st)
	db.Close()
	db, st = mustOpen(t, testOptions(dir, nil)) // snapshot and log
	if got := deadlines(t, st); got != wantAfter {
		t.Fatalf("after a snapshot and a clean stop:\n%s\nwant\n%s", got, wantAfter)
	}
	st.SweepExpired()
	if got := deadlines(t, st); got != wantAfter {
		t.Fatalf("after the first sweep:\n%s\nwant\n%s", got, wantAfter)
	}
	for i := range 11 { // the cache table kept its max_len
		do(t, st, wire.OpDSet, "cache", i, i)
	}
	if out, _ := st.Exec(wire.OpDLen, args(t, wire.OpDLen, "cache"), nil); wire.Diagnose(out) != "10" {
		t.Fatalf("the cache table holds %s entries, want its max_len 10", wire.Diagnose(out))
	}
	db.Close()
}

// TestOpTablesTimed: --recover sets aside the tables of a timed record's
// op that fails on replay, as it does for the op on its own.
func TestOpTablesTimed(t *testing.T) {
	inner := args(t, wire.OpDSet, "s", "k", 1).Items
	plain := opTables(wire.OpDSet, inner)
	rec := wire.AppendArrayHeader(nil, 1+len(inner))
	rec = wire.AppendUint(rec, uint64(wire.OpDSet))
	for _, it := range inner {
		rec = append(rec, it...)
	}
	timed := opTables(wire.OpTimed, []wire.Raw{wire.AppendInt(nil, 1), rec})
	if len(plain) != 1 || plain[0] != "s" || len(timed) != 1 || timed[0] != "s" {
		t.Fatalf("tables of dset %v, of the timed dset %v", plain, timed)
	}
	batch := args(t, wire.OpBatch, []any{[]any{uint64(wire.OpDSet), "a", 1, 2}, []any{uint64(wire.OpLAppend), "b", 1}}).Items
	brec := append(wire.AppendArrayHeader(nil, 2), wire.AppendUint(nil, uint64(wire.OpBatch))...)
	brec = append(brec, batch[0]...)
	if got := opTables(wire.OpTimed, []wire.Raw{wire.AppendInt(nil, 1), brec}); len(got) != 2 {
		t.Fatalf("tables of a timed batch: %v", got)
	}
}
