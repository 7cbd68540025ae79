package main

// Tests written from PROTOCOL.md 5 ("Expiry") and 6.5 by an outside
// client: an entry past its deadline is gone for every operation, batches
// and guards included, whether or not the sweeper has removed it; the
// deadline options; cache tables; deadlines across SIGKILL and SIGTERM.

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

func nowMs() int64 { return time.Now().UnixMilli() }

// TestOutsideExpiredEntryIsGoneEverywhere: an entry whose deadline has
// passed (by a few milliseconds: the sweeper most likely has not removed
// it) is gone for every read, write, batch and guard.
func TestOutsideExpiredEntryIsGoneEverywhere(t *testing.T) {
	d := daemontest.Start(t)
	c := daemontest.DialHello(t, d.Socket)
	for round := 0; round < 8; round++ {
		name := fmt.Sprintf("d%d", round)
		c.MustCall(t, nil, wire.OpCreateDict, name)
		c.MustCall(t, nil, wire.OpDSet, name, "live", 1)
		at := nowMs() + 30
		c.MustCall(t, nil, wire.OpDSet, name, "dead", 2, map[string]any{"at": at})
		for nowMs() < at+1 {
			time.Sleep(time.Millisecond)
		}
		checks := []struct {
			want string
			op   wire.Op
			args []any
		}{
			{"key_not_found", wire.OpDGet, []any{name, "dead"}},
			{`"dflt"`, wire.OpDGet, []any{name, "dead", "dflt"}},
			{"false", wire.OpDHas, []any{name, "dead"}},
			{"1", wire.OpDLen, []any{name}},
			{"1", wire.OpLen, []any{name}},
			{`["live"]`, wire.OpDKeys, []any{name}},
			{`[1]`, wire.OpDValues, []any{name}},
			{`[["live", 1]]`, wire.OpDItems, []any{name}},
			{`{"live": 1}`, wire.OpDToDict, []any{name}},
			{`[0, [["live", 1]]]`, wire.OpDScan, []any{name, 0, 100}},
			{"false", wire.OpDCAS, []any{name, "dead", 3, 2}},
			{"false", wire.OpDDelIfEq, []any{name, "dead", 2}},
			{"false", wire.OpDExpire, []any{name, "dead", map[string]any{"ttl": 1000}}},
			{"false", wire.OpDPersist, []any{name, "dead"}},
			{"key_not_found", wire.OpDTTL, []any{name, "dead"}},
			{"key_not_found", wire.OpDGetEx, []any{name, "dead", map[string]any{"persist": true}}},
			{"key_not_found", wire.OpDDel, []any{name, "dead"}},
			{"key_not_found", wire.OpDPop, []any{name, "dead"}},
			{"false", wire.OpDSet, []any{name, "dead", 9, map[string]any{"xx": true}}},
			{"guard_failed", wire.OpGuard, []any{name, "eq", "dead", 2}},
			{"null", wire.OpGuard, []any{name, "absent", "dead"}},
			{"null", wire.OpGuard, []any{name, "len", 1}},
			{"guard_failed", wire.OpGuard, []any{name, "cas", "dead", 3, 2}},
			{`[[["live", 1]]]`, wire.OpBatch, []any{[]any{[]any{wire.OpDItems, name}}}},
			{"guard_failed", wire.OpBatch, []any{[]any{
				[]any{wire.OpDSet, name, "x", 1},
				[]any{wire.OpGuard, name, "eq", "dead", 2},
			}}},
			// dpopitem takes the last live entry, not the expired one
			// inserted after it.
			{`["live", 1]`, wire.OpDPopItem, []any{name}},
			{"key_not_found", wire.OpDPopItem, []any{name}},
			{"0", wire.OpDLen, []any{name}},
		}
		for _, ck := range checks {
			if got := call(t, c, ck.op, ck.args...); got != ck.want {
				t.Fatalf("round %d: %s %v, 1 ms or more after the deadline: got %s, want %s", round, ck.op, ck.args, got, ck.want)
			}
		}
		var tables [][]any
		c.MustCall(t, &tables, wire.OpTables)
		for _, tb := range tables {
			if tb[0] == name && tb[2] != uint64(0) {
				t.Fatalf("round %d: tables says %v", round, tb)
			}
		}
		// A write of the key makes a new entry, inserted last, without the
		// old deadline; dincr starts from 0.
		c.MustCall(t, nil, wire.OpDSet, name, "a", 1)
		at = nowMs() + 20
		c.MustCall(t, nil, wire.OpDSet, name, "dead", 2, map[string]any{"at": at})
		c.MustCall(t, nil, wire.OpDSet, name, "b", 1)
		for nowMs() < at+1 {
			time.Sleep(time.Millisecond)
		}
		switch round % 4 {
		case 0:
			expectCall(t, c, "1", wire.OpDIncr, name, "dead")
		case 1:
			expectCall(t, c, "true", wire.OpDSet, name, "dead", 1, map[string]any{"nx": true})
		case 2:
			expectCall(t, c, "1", wire.OpDSetDefault, name, "dead", 1)
		case 3:
			expectCall(t, c, "true", wire.OpDCAS, name, "dead", 1)
		}
		expectCall(t, c, `["a", "b", "dead"]`, wire.OpDKeys, name)
		expectCall(t, c, "null", wire.OpDTTL, name, "dead")
	}
}

// TestOutsideExpiryNeverLate: readers poll while entries reach their
// deadline and the sweeper runs; a request sent at or after an entry's
// deadline (by the test's clock, which is the daemon's) never sees it.
func TestOutsideExpiryNeverLate(t *testing.T) {
	d := daemontest.Start(t)
	setup := daemontest.DialHello(t, d.Socket)
	setup.MustCall(t, nil, wire.OpCreateDict, "d")
	const n = 200
	base := nowMs() + 300
	deadline := func(i int) int64 { return base + int64(i%50)*4 }
	pairs := make([][]any, 0, n)
	for i := 0; i < n; i++ {
		pairs = append(pairs, []any{i, i})
	}
	for i := 0; i < n; i++ {
		setup.MustCall(t, nil, wire.OpDSet, "d", i, i, map[string]any{"at": deadline(i)})
	}
	var wg sync.WaitGroup
	var late atomic.Int64
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			c := daemontest.DialHello(t, d.Socket)
			for {
				sent := nowMs()
				if sent > base+50*4+100 {
					return
				}
				var keys []int
				var err error
				var res wire.Raw
				switch r {
				case 0:
					res, err = c.Call(wire.OpDKeys, "d")
				case 1:
					var items wire.Raw
					items, err = c.Call(wire.OpDScan, "d", 0, 10000)
					if err == nil {
						var page []wire.Raw
						daemontest.Must(t, wire.Unmarshal(items, &page))
						var kv [][]int
						daemontest.Must(t, wire.Unmarshal(page[1], &kv))
						for _, p := range kv {
							keys = append(keys, p[0])
						}
					}
				case 2:
					// dlen must count exactly the keys not yet due.
					res, err = c.Call(wire.OpDLen, "d")
					if err == nil {
						var got int
						daemontest.Must(t, wire.Unmarshal(res, &got))
						after := nowMs()
						lo, hi := 0, 0 // due for sure at sent / possibly at after
						for i := 0; i < n; i++ {
							if deadline(i) > after {
								lo++
							}
							if deadline(i) > sent {
								hi++
							}
						}
						if got < lo || got > hi {
							late.Add(1)
							t.Errorf("dlen %d between %d and %d ms: want %d .. %d", got, sent, after, lo, hi)
						}
					}
					res = nil
				case 3:
					res, err = c.Call(wire.OpBatch, []any{[]any{wire.OpDKeys, "d"}})
					if err == nil {
						var one []wire.Raw
						daemontest.Must(t, wire.Unmarshal(res, &one))
						res = one[0]
					}
				}
				if err != nil {
					t.Errorf("reader %d: %v", r, err)
					return
				}
				if res != nil {
					daemontest.Must(t, wire.Unmarshal(res, &keys))
				}
				for _, k := range keys {
					if deadline(k) <= sent {
						late.Add(1)
						t.Errorf("reader %d: key %d seen in a request sent at %d, its deadline %d", r, k, sent, deadline(k))
					}
				}
			}
		}(r)
	}
	wg.Wait()
	if late.Load() > 0 {
		t.Fatalf("%d late sightings", late.Load())
	}
	expectCall(t, setup, "0", wire.OpDLen, "d")
}

// TestOutsideDeadlineOptions: the ranges and combinations of PROTOCOL.md
// 6.5's table.
func TestOutsideDeadlineOptions(t *testing.T) {
	d := daemontest.Start(t)
	c := daemontest.DialHello(t, d.Socket)
	c.MustCall(t, nil, wire.OpCreateDict, "d")
	const max46, max47 = int64(1) << 46, int64(1) << 47
	for _, tc := range []struct {
		want string
		op   wire.Op
		args []any
	}{
		{"null", wire.OpDSet, []any{"d", "k", 1, map[string]any{"ttl": max46}}},
		{"bad_request", wire.OpDSet, []any{"d", "k", 1, map[string]any{"ttl": max46 + 1}}},
		{"bad_request", wire.OpDSet, []any{"d", "k", 1, map[string]any{"ttl": 0}}},
		{"bad_request", wire.OpDSet, []any{"d", "k", 1, map[string]any{"ttl": -1}}},
		{"bad_request", wire.OpDSet, []any{"d", "k", 1, map[string]any{"ttl": 1.5}}},
		{"null", wire.OpDSet, []any{"d", "k", 1, map[string]any{"at": max47}}},
		{"bad_request", wire.OpDSet, []any{"d", "k", 1, map[string]any{"at": max47 + 1}}},
		{"bad_request", wire.OpDSet, []any{"d", "k", 1, map[string]any{"at": 0}}},
		{"bad_request", wire.OpDSet, []any{"d", "k", 1, map[string]any{"ttl": 5, "at": max47}}},
		{"bad_request", wire.OpDSet, []any{"d", "k", 1, map[string]any{"ttl": 5, "keepttl": true}}},
		{"bad_request", wire.OpDSet, []any{"d", "k", 1, map[string]any{"nx": true, "xx": true}}},
		{"bad_request", wire.OpDSet, []any{"d", "k", 1, map[string]any{"nx": false}}},
		{"bad_request", wire.OpDSet, []any{"d", "k", 1, map[string]any{"keepttl": false}}},
		{"bad_request", wire.OpDSet, []any{"d", "k", 1, map[string]any{"persist": true}}},
		{"bad_request", wire.OpDSet, []any{"d", "k", 1, map[string]any{"ttl": 5, "bogus": 1}}},
		{"bad_request", wire.OpDSet, []any{"d", "k", 1, map[int]any{1: 5}}},
		{"bad_request", wire.OpDSet, []any{"d", "k", 1, []any{"ttl", 5}}},
		{"bad_request", wire.OpDGetEx, []any{"d", "k", map[string]any{"keepttl": true}}},
		{"bad_request", wire.OpDGetEx, []any{"d", "k", map[string]any{"nx": true}}},
		{"bad_request", wire.OpDExpire, []any{"d", "k", map[string]any{"ttl": -max46 - 1}}},
		{"bad_request", wire.OpDExpire, []any{"d", "k", map[string]any{"persist": true}}},
		{"bad_request", wire.OpDUpdate, []any{"d", map[string]int{"x": 1}, map[string]any{"nx": true}}},
		{"bad_request", wire.OpDSetDefault, []any{"d", "k", 0, map[string]any{"nx": true}}},
		{"bad_request", wire.OpDSetDefault, []any{"d", "k", 0, map[string]any{"keepttl": true, "ttl": 5}}},
		{"bad_request", wire.OpExpire, []any{"d", map[string]any{"keepttl": true}}},
		// Journal-only ops are refused, alone and in a batch.
		{"bad_request", wire.OpTimed, []any{nowMs(), []any{wire.OpDSet, "d", "k", 2}}},
		{"bad_request", wire.OpDRemove, []any{"d", "expired", "k"}},
		{"bad_request", wire.OpBatch, []any{[]any{[]any{wire.OpDRemove, "d", "expired", "k"}}}},
		{"bad_request", wire.OpBatch, []any{[]any{[]any{wire.OpTimed, nowMs(), []any{wire.OpDDel, "d", "k"}}}}},
		{"1", wire.OpDGet, []any{"d", "k"}},
		// A deadline of 0 or less, or in the past, removes at once.
		{"true", wire.OpDExpire, []any{"d", "k", map[string]any{"ttl": -max46}}},
		{"false", wire.OpDHas, []any{"d", "k"}},
		{"null", wire.OpDSet, []any{"d", "k", 1}},
		{"true", wire.OpDExpire, []any{"d", "k", map[string]any{"ttl": 0}}},
		{"false", wire.OpDHas, []any{"d", "k"}},
		{"null", wire.OpDSet, []any{"d", "k", 1, map[string]any{"at": 1}}},
		{"false", wire.OpDHas, []any{"d", "k"}},
		{"0", wire.OpDLen, []any{"d"}},
		{"null", wire.OpDSet, []any{"d", "k", 1}},
		{"1", wire.OpDGetEx, []any{"d", "k", map[string]any{"at": 1}}},
		{"false", wire.OpDHas, []any{"d", "k"}},
	} {
		if got := call(t, c, tc.op, tc.args...); got != tc.want {
			t.Errorf("%s %v: got %s, want %s", tc.op, tc.args, got, tc.want)
		}
	}
}

// dttlAbs returns the absolute deadline of key, or 0 for none.
func dttlAbs(t *testing.T, c *daemontest.Conn, table string, key any) int64 {
	t.Helper()
	var at *int64
	c.MustCall(t, &at, wire.OpDTTL, table, key, true)
	if at == nil {
		return 0
	}
	return *at
}

// TestOutsideWhatDeadlineAWriteGives: keepttl, plain writes, dincr,
// dsetdefault and the table's default TTL, read back with dttl absolute.
func TestOutsideWhatDeadlineAWriteGives(t *testing.T) {
	d := daemontest.Start(t)
	c := daemontest.DialHello(t, d.Socket)
	c.MustCall(t, nil, wire.OpCreateDict, "d")
	c.MustCall(t, nil, wire.OpCreateDict, "def", nil, map[string]any{"ttl": 600000})
	at := nowMs() + 3600000
	opt := map[string]any{"at": at}
	keep := map[string]any{"keepttl": true}

	c.MustCall(t, nil, wire.OpDSet, "d", "k", 1, opt)
	c.MustCall(t, nil, wire.OpDSet, "d", "k", 2, keep)
	if got := dttlAbs(t, c, "d", "k"); got != at {
		t.Fatalf("keepttl: deadline %d, want %d", got, at)
	}
	c.MustCall(t, nil, wire.OpDIncr, "d", "k", 5)
	if got := dttlAbs(t, c, "d", "k"); got != at {
		t.Fatalf("dincr: deadline %d, want %d", got, at)
	}
	expectCall(t, c, "7", wire.OpDSetDefault, "d", "k", 0, map[string]any{"ttl": 5})
	if got := dttlAbs(t, c, "d", "k"); got != at {
		t.Fatalf("dsetdefault of a present key changed the deadline to %d", got)
	}
	expectCall(t, c, "true", wire.OpDCAS, "d", "k", 8, 7, keep)
	if got := dttlAbs(t, c, "d", "k"); got != at {
		t.Fatalf("dcas keepttl: deadline %d, want %d", got, at)
	}
	c.MustCall(t, nil, wire.OpDUpdate, "d", map[string]int{"k": 9}, keep)
	if got := dttlAbs(t, c, "d", "k"); got != at {
		t.Fatalf("dupdate keepttl: deadline %d, want %d", got, at)
	}
	expectCall(t, c, "true", wire.OpDSet, "d", "k", 10, map[string]any{"xx": true, "keepttl": true})
	if got := dttlAbs(t, c, "d", "k"); got != at {
		t.Fatalf("dset xx keepttl: deadline %d, want %d", got, at)
	}
	// A plain write removes the deadline.
	c.MustCall(t, nil, wire.OpDSet, "d", "k", 11)
	if got := dttlAbs(t, c, "d", "k"); got != 0 {
		t.Fatalf("plain dset kept deadline %d", got)
	}
	expectCall(t, c, "false", wire.OpDPersist, "d", "k")
	// keepttl on a new key: the table's default (none here).
	c.MustCall(t, nil, wire.OpDSet, "d", "new", 1, keep)
	if got := dttlAbs(t, c, "d", "new"); got != 0 {
		t.Fatalf("keepttl on a new key in a table without default: %d", got)
	}

	// A table with a default TTL: every write without options gives it.
	before := nowMs()
	for _, w := range []struct {
		op   wire.Op
		args []any
	}{
		{wire.OpDSet, []any{"def", "a", 1}},
		{wire.OpDSet, []any{"def", "b", 1, keep}},
		{wire.OpDIncr, []any{"def", "c"}},
		{wire.OpDSetDefault, []any{"def", "e", 1}},
		{wire.OpDUpdate, []any{"def", [][]any{{"f", 1}}}},
		{wire.OpDCAS, []any{"def", "g", 1}},
	} {
		c.MustCall(t, nil, w.op, w.args...)
		key := w.args[1]
		if w.op == wire.OpDUpdate {
			key = "f"
		}
		after := nowMs()
		got := dttlAbs(t, c, "def", key)
		if got < before+600000 || got > after+600000 {
			t.Errorf("%s on a table with ttl 600000: deadline %d, want %d .. %d", w.op, got, before+600000, after+600000)
		}
	}
	// An explicit ttl wins over the default; dgetex persist removes it.
	c.MustCall(t, nil, wire.OpDSet, "def", "a", 1, opt)
	if got := dttlAbs(t, c, "def", "a"); got != at {
		t.Fatalf("explicit at on a default-TTL table: %d", got)
	}
	expectCall(t, c, "1", wire.OpDGetEx, "def", "a", map[string]any{"persist": true})
	expectCall(t, c, "null", wire.OpDTTL, "def", "a")
	// A plain dset on a default-TTL table gives the default again.
	c.MustCall(t, nil, wire.OpDSet, "def", "a", 2)
	if got := dttlAbs(t, c, "def", "a"); got == 0 {
		t.Fatalf("plain dset on a default-TTL table gave no deadline")
	}
}

// TestOutsideDeadlinesAcrossCrashes: with --fsync always, deadlines read
// with dttl absolute are the same to the millisecond after SIGKILL and
// after SIGTERM; what expired while the daemon was down (or was swept
// before) does not come back.
func TestOutsideDeadlinesAcrossCrashes(t *testing.T) {
	for _, how := range []string{"kill", "term", "kill-after-save"} {
		t.Run(how, func(t *testing.T) {
			d := daemontest.Start(t, "--fsync=always", "--snapshot-interval=0")
			c := daemontest.DialHello(t, d.Socket)
			c.MustCall(t, nil, wire.OpCreateDict, "d")
			c.MustCall(t, nil, wire.OpCreateDict, "def", nil, map[string]any{"ttl": 3600000})
			c.MustCall(t, nil, wire.OpCreateList, "tl")
			c.MustCall(t, nil, wire.OpCreateList, "soon")
			want := map[string]int64{}
			for i := 0; i < 50; i++ {
				k := fmt.Sprintf("k%d", i)
				switch i % 5 {
				case 0:
					c.MustCall(t, nil, wire.OpDSet, "d", k, i, map[string]any{"ttl": 3600000 + i})
				case 1:
					c.MustCall(t, nil, wire.OpDSet, "d", k, i, map[string]any{"at": nowMs() + 3600000 + int64(i)})
				case 2:
					c.MustCall(t, nil, wire.OpDSet, "d", k, i)
					c.MustCall(t, nil, wire.OpDExpire, "d", k, map[string]any{"ttl": 7200000})
				case 3:
					c.MustCall(t, nil, wire.OpDSet, "d", k, i, map[string]any{"ttl": 100})
					c.MustCall(t, nil, wire.OpDGetEx, "d", k, map[string]any{"ttl": 5000000})
				case 4:
					c.MustCall(t, nil, wire.OpDSet, "d", k, i, map[string]any{"ttl": 100})
					c.MustCall(t, nil, wire.OpDPersist, "d", k)
				}
				want[k] = dttlAbs(t, c, "d", k)
				c.MustCall(t, nil, wire.OpDIncr, "def", k)
				want["def/"+k] = dttlAbs(t, c, "def", k)
			}
			c.MustCall(t, nil, wire.OpExpire, "tl", map[string]any{"ttl": 3600000})
			var tlAt int64
			c.MustCall(t, &tlAt, wire.OpTTL, "tl", true)
			if how == "kill-after-save" {
				c.MustCall(t, nil, wire.OpSave)
			}
			// Entries and a table that expire soon: gone after the restart,
			// whether the sweeper removed them before the crash or not.
			soon := nowMs() + 150
			for i := 0; i < 20; i++ {
				c.MustCall(t, nil, wire.OpDSet, "d", fmt.Sprintf("soon%d", i), i, map[string]any{"at": soon})
			}
			c.MustCall(t, nil, wire.OpExpire, "soon", map[string]any{"at": soon})
			c.MustCall(t, nil, wire.OpDSet, "d", "swept", 1, map[string]any{"ttl": 1})
			time.Sleep(50 * time.Millisecond)
			expectCall(t, c, "false", wire.OpDHas, "d", "swept")
			switch how {
			case "term":
				d.Stop(t)
			default:
				d.Kill(t)
			}
			for nowMs() <= soon {
				time.Sleep(10 * time.Millisecond)
			}
			d.Restart(t)
			c = daemontest.DialHello(t, d.Socket)
			for k, at := range want {
				table, key := "d", k
				if strings.HasPrefix(k, "def/") {
					table, key = "def", k[4:]
				}
				if got := dttlAbs(t, c, table, key); got != at {
					t.Errorf("%s %s: deadline %d after restart, was %d", table, key, got, at)
				}
			}
			var tl int64
			c.MustCall(t, &tl, wire.OpTTL, "tl", true)
			if tl != tlAt {
				t.Errorf("table deadline %d after restart, was %d", tl, tlAt)
			}
			expectCall(t, c, "false", wire.OpExists, "soon")
			expectCall(t, c, "50", wire.OpDLen, "d")
			expectCall(t, c, "false", wire.OpDHas, "d", "swept")
			expectCall(t, c, "false", wire.OpDHas, "d", "soon0")
			var tables [][]any
			c.MustCall(t, &tables, wire.OpTables)
			if fmt.Sprint(tables) != "[[d dict 50] [def dict 50] [tl list 0]]" {
				t.Errorf("tables after restart: %v", tables)
			}
		})
	}
}

// TestOutsideCacheTable: max_len keeps exactly max_len entries, the least
// recently used go first, an expired one before any, the entries a write
// stores are never its victims, and info counts evictions.
func TestOutsideCacheTable(t *testing.T) {
	d := daemontest.Start(t)
	c := daemontest.DialHello(t, d.Socket)
	c.MustCall(t, nil, wire.OpCreateDict, "c", nil, map[string]any{"max_len": 3})
	// Accesses 3 ms apart: the access clock counts milliseconds.
	for _, k := range []string{"a", "b", "c"} {
		c.MustCall(t, nil, wire.OpDSet, "c", k, k)
		time.Sleep(3 * time.Millisecond)
	}
	// With 3 entries the draws see them all: exact LRU.
	c.MustCall(t, nil, wire.OpDGet, "c", "a")
	time.Sleep(3 * time.Millisecond)
	c.MustCall(t, nil, wire.OpDSet, "c", "d", "d")
	expectCall(t, c, `["a", "c", "d"]`, wire.OpDKeys, "c")
	// An expired entry goes first, even if recently used.
	c.MustCall(t, nil, wire.OpDSet, "c", "c", "c", map[string]any{"ttl": 1})
	time.Sleep(5 * time.Millisecond)
	c.MustCall(t, nil, wire.OpDSet, "c", "e", "e")
	c.MustCall(t, nil, wire.OpDSet, "c", "f", "f")
	expectCall(t, c, "3", wire.OpDLen, "c")
	expectCall(t, c, "true", wire.OpDHas, "c", "f")
	expectCall(t, c, "true", wire.OpDHas, "c", "e")
	// A write of several entries keeps them all when it can.
	c.MustCall(t, nil, wire.OpDUpdate, "c", [][]any{{"x", 1}, {"y", 2}})
	expectCall(t, c, "3", wire.OpDLen, "c")
	expectCall(t, c, "true", wire.OpDHas, "c", "x")
	expectCall(t, c, "true", wire.OpDHas, "c", "y")
	// More entries than max_len in one write: the table still ends at
	// max_len, keeping the last ones written, as deque(maxlen=3).extend.
	expectCall(t, c, "null", wire.OpDUpdate, "c", [][]any{{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}})
	expectCall(t, c, "[3, 4, 5]", wire.OpDKeys, "c")
	expectCall(t, c, "null", wire.OpCreateDict, "c2", [][]int{{1, 1}, {2, 2}, {3, 3}, {4, 4}}, map[string]any{"max_len": 2})
	expectCall(t, c, "[3, 4]", wire.OpDKeys, "c2")
	expectCall(t, c, "[null, null]", wire.OpBatch, []any{
		[]any{wire.OpDUpdate, "c2", [][]int{{5, 5}, {6, 6}, {5, 7}}},
		[]any{wire.OpDSet, "c2", 8, 8},
	})
	expectCall(t, c, "[[6, 6], [8, 8]]", wire.OpDItems, "c2")
	// Options out of range.
	expectCall(t, c, "bad_request", wire.OpCreateDict, "c3", nil, map[string]any{"max_len": 0})
	expectCall(t, c, "bad_request", wire.OpCreateDict, "c3", nil, map[string]any{"max_len": int64(1) << 31})
	expectCall(t, c, "bad_request", wire.OpCreateDict, "c3", nil, map[string]any{"evict": "lfu"})
	expectCall(t, c, "bad_request", wire.OpCreateDict, "c3", nil, map[string]any{"ttl": 0})
	expectCall(t, c, "false", wire.OpExists, "c3")
	var info map[string]any
	c.MustCall(t, &info, wire.OpInfo)
	if ev, _ := info["evicted"].(uint64); ev < 3 {
		t.Errorf("info evicted %v, want at least 3", info["evicted"])
	}
	// Evictions survive a restart as they were: the table is the same.
	keys := call(t, c, wire.OpDKeys, "c")
	d.Kill(t)
	d.Restart(t)
	c = daemontest.DialHello(t, d.Socket)
	expectCall(t, c, keys, wire.OpDKeys, "c")
	// The cache is still a cache after the restart.
	for i := 0; i < 10; i++ {
		c.MustCall(t, nil, wire.OpDSet, "c", fmt.Sprintf("after%d", i), i)
	}
	expectCall(t, c, "3", wire.OpDLen, "c")
}

// TestOutsideLongExpirySoak: entries with deadlines a few ms apart, a
// sweeper racing readers and writers, and SIGKILLs; run with
// CYBERDB_SOAK=1.
func TestOutsideLongExpirySoak(t *testing.T) {
	if os.Getenv("CYBERDB_SOAK") == "" {
		t.Skip("CYBERDB_SOAK=1 runs it")
	}
	d := daemontest.Start(t, "--fsync=always")
	c := daemontest.DialHello(t, d.Socket)
	c.MustCall(t, nil, wire.OpCreateDict, "d")
	for round := 0; round < 20; round++ {
		due := map[int]int64{}
		for i := 0; i < 500; i++ {
			at := nowMs() + int64(i%100)
			c.MustCall(t, nil, wire.OpDSet, "d", round*1000+i, i, map[string]any{"at": at})
			due[round*1000+i] = at
		}
		time.Sleep(time.Duration(round*5) * time.Millisecond)
		d.Kill(t)
		d.Restart(t)
		c = daemontest.DialHello(t, d.Socket)
		sent := nowMs()
		var keys []int
		c.MustCall(t, &keys, wire.OpDKeys, "d")
		for _, k := range keys {
			if due[k] <= sent {
				t.Fatalf("round %d: key %d due at %d seen at %d after a restart", round, k, due[k], sent)
			}
		}
	}
}

// TestOutsideGuardsOnExpiredTables: a table past its deadline is gone for
// guards too (PROTOCOL.md 5: "like a dropped one"), swept or not, alone
// and in a batch, and a batch that creates it again sees the new one.
func TestOutsideGuardsOnExpiredTables(t *testing.T) {
	d := daemontest.Start(t)
	c := daemontest.DialHello(t, d.Socket)
	for round := 0; round < 10; round++ {
		dn, ln := fmt.Sprintf("d%d", round), fmt.Sprintf("l%d", round)
		c.MustCall(t, nil, wire.OpCreateDict, dn, map[string]int{"k": 1})
		c.MustCall(t, nil, wire.OpCreateList, ln, []int{1, 2})
		at := nowMs() + 20
		c.MustCall(t, nil, wire.OpExpire, dn, map[string]any{"at": at})
		c.MustCall(t, nil, wire.OpExpire, ln, map[string]any{"at": at})
		for nowMs() < at+1 {
			time.Sleep(time.Millisecond)
		}
		for _, ck := range []struct {
			want string
			op   wire.Op
			args []any
		}{
			{"guard_failed", wire.OpGuard, []any{dn, "exists"}},
			{"guard_failed", wire.OpGuard, []any{ln, "exists"}},
			{"guard_failed", wire.OpGuard, []any{ln, "len", 2}},
			{"guard_failed", wire.OpGuard, []any{ln, "len", 0}},
			{"guard_failed", wire.OpGuard, []any{dn, "eq", "k", 1}},
			{"guard_failed", wire.OpGuard, []any{dn, "absent", "k"}},
			{"guard_failed", wire.OpBatch, []any{[]any{[]any{wire.OpGuard, dn, "exists"}}}},
			{"no_such_table", wire.OpLMove, []any{ln, ln, "left", "right"}},
			{"no_such_table", wire.OpLRotate, []any{ln}},
			{"no_such_table", wire.OpTTL, []any{dn}},
			{"false", wire.OpExists, []any{ln}},
			{"[null, null, null]", wire.OpBatch, []any{[]any{
				[]any{wire.OpCreateList, ln, []int{7}},
				[]any{wire.OpGuard, ln, "len", 1},
				[]any{wire.OpGuard, ln, "exists"},
			}}},
			{"null", wire.OpTTL, []any{ln}},
		} {
			if got := call(t, c, ck.op, ck.args...); got != ck.want {
				t.Fatalf("round %d: %s %v after the table's deadline: got %s, want %s", round, ck.op, ck.args, got, ck.want)
			}
		}
	}
	// Guards in a batch see the items before them; a failing one rolls
	// back an lmove and an expire.
	c.MustCall(t, nil, wire.OpCreateList, "a", []int{1, 2, 3})
	c.MustCall(t, nil, wire.OpCreateList, "b")
	expectCall(t, c, "guard_failed", wire.OpBatch, []any{
		[]any{wire.OpLMove, "a", "b", "left", "left"},
		[]any{wire.OpExpire, "a", map[string]any{"ttl": 0}},
		[]any{wire.OpGuard, "b", "len", 1},
		[]any{wire.OpGuard, "a", "exists"},
	})
	expectCall(t, c, "[1, 2, 3]", wire.OpLToList, "a")
	expectCall(t, c, "null", wire.OpTTL, "a")
	expectCall(t, c, "[]", wire.OpLToList, "b")
	expectCall(t, c, "bad_request", wire.OpGuard, "a", "len")
	expectCall(t, c, "bad_request", wire.OpGuard, "a", "len", 1.0)
	expectCall(t, c, "bad_request", wire.OpGuard, "a", "nope")
	expectCall(t, c, "wrong_kind", wire.OpGuard, "a", "absent", "k")
	expectCall(t, c, "guard_failed", wire.OpGuard, "missing", "absent", "k")
}
