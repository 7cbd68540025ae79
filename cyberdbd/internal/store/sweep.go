package store

import (
	"cmp"
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Removing what expired, evicting from cache tables, and journaling both.

// Reasons a dremove record gives.
const (
	reasonExpired = "expired"
	reasonEvicted = "evicted"
)

// dremoveChunk is the most keys one dremove record holds.
const dremoveChunk = 1024

// expireAt removes the live entry at pos of the table's dict, whose
// deadline has passed, for the journal to record. The table's lock is
// held for writing. Never in replay (nothing expires there).
//
// In a batch that fails, the removal is undone with the rest (c.undo):
// the entry may have expired only because an earlier op of the batch
// moved its deadline, and the batch's effects, removals included, are
// then neither kept nor journaled.
func (c call) expireAt(pos int) { c.s.expireEntry(c.t, pos, c.undo) }

// expireEntry is expireAt; it takes no *call, which would make every
// call escape to the heap.
func (s *Store) expireEntry(t *table, pos int, undo *undoLog) {
	d := t.d
	e, dl := d.entries[pos], d.deadline(pos)
	key := e.key()
	d.removeAt(pos)
	t.fxExpired = append(t.fxExpired, key)
	s.expired.Add(1)
	if undo != nil {
		n := len(t.fxExpired) - 1
		undo.add(func() {
			d.restore(e.kv, e.seq)
			d.setDeadline(d.find([]byte(key)), dl)
			if len(t.fxExpired) > n {
				t.fxExpired = t.fxExpired[:n]
			}
			s.expired.Add(-1)
		})
	}
}

// expireTable drops the table, whose deadline has passed; a drop record
// goes to the journal first (fxDropped). Its lock is held for writing.
// undo, if not nil, records how to take it back (as expireAt's).
func (s *Store) expireTable(t *table, undo *undoLog) {
	k, d, l, e := t.kind, t.d, t.l, t.expires
	t.kind, t.d, t.l, t.expires = kindNone, nil, nil, 0
	t.fxDropped = true
	s.expiredTables.Add(1)
	if undo != nil {
		undo.add(func() {
			t.kind, t.d, t.l, t.expires = k, d, l, e
			t.fxDropped = false
			s.expiredTables.Add(-1)
		})
	}
}

// discardEffects forgets what a batch that was rolled back did: its undo
// steps took back the removals too.
func discardEffects(tables []*table) {
	for _, t := range tables {
		t.fxDropped, t.fxTimed, t.fxAt = false, 0, t.fxAt[:0]
		t.fxExpired, t.fxEvicted, t.fxWritten = t.fxExpired[:0], t.fxEvicted[:0], t.fxWritten[:0]
	}
}

// journalEffects writes what the write op that ran on tables did to the
// journal j (nil: none) and resets their effects: for each table, its
// drop if it expired, then its expired keys; then the op itself if ok
// (inside a timed record if it computed a deadline from the clock);
// then the keys evicted. It returns the first journal error.
func (s *Store) journalEffects(j *journal, tables []*table, op wire.Op, args wire.Args, ok bool, base int64) error {
	var err error
	keep := func(e error) {
		if err == nil {
			err = e
		}
	}
	hooked := s.hookCount() > 0
	var held []*table // the tables for emit; nil: nobody watches or tracks
	if hooked {
		held = tables
	}
	timed := 0
	for _, t := range tables {
		if ok || t.fxDropped || len(t.fxExpired) > 0 || len(t.fxEvicted) > 0 {
			t.seq++
		}
		timed += t.fxTimed
		if j != nil || hooked {
			if t.fxDropped {
				keep(s.record(j, held, wire.OpDrop, wire.Args{Op: wire.OpDrop, Items: []wire.Raw{wire.AppendText(nil, t.name)}}))
			}
			keep(s.journalRemove(j, held, t.name, reasonExpired, t.fxExpired))
		}
		t.fxDropped, t.fxExpired = false, t.fxExpired[:0]
	}
	if (j != nil || hooked) && ok && err == nil {
		switch t := tables[0]; {
		case timed == 0:
			keep(s.record(j, held, op, args))
		case timed == 1 && len(tables) == 1 && op != wire.OpBatch && len(t.fxAt) > 0:
			keep(s.record(j, held, op, t.rewriteAt(args)))
		default:
			keep(s.record(j, held, wire.OpTimed, t.timedArgs(op, args, base)))
		}
	}
	for _, t := range tables {
		t.fxTimed, t.fxAt = 0, t.fxAt[:0]
	}
	for _, t := range tables {
		if j != nil || hooked {
			keep(s.journalRemove(j, held, t.name, reasonEvicted, t.fxEvicted))
		}
		t.fxEvicted, t.fxWritten = t.fxEvicted[:0], t.fxWritten[:0]
	}
	return err
}

// rewriteAt returns args with argument fxAtArg replaced by fxAt, in the
// table's scratch (its lock is held; the journal copies what it keeps).
func (t *table) rewriteAt(args wire.Args) wire.Args {
	items := append(t.rewriteItems[:0], args.Items...)
	items[t.fxAtArg] = t.fxAt
	t.rewriteItems = items
	return wire.Args{Op: args.Op, Items: items}
}

// timedArgs are the arguments of a timed record, [base, [op, arg...]],
// encoded in the table's scratch buffer (its lock is held; the journal
// copies what it keeps).
func (t *table) timedArgs(op wire.Op, args wire.Args, base int64) wire.Args {
	b := wire.AppendInt(t.timedBuf[:0], base)
	n := len(b)
	b = wire.AppendArrayHeader(b, 1+len(args.Items))
	b = wire.AppendUint(b, uint64(op))
	for _, it := range args.Items {
		b = append(b, it...)
	}
	if cap(b) <= 4<<10 {
		t.timedBuf = b
	}
	t.timedItems = [2]wire.Raw{b[:n], b[n:]}
	return wire.Args{Op: wire.OpTimed, Items: t.timedItems[:]}
}

// journalRemove journals keys of table name as dremove records.
func (s *Store) journalRemove(j *journal, held []*table, name, reason string, keys []string) error {
	for len(keys) > 0 {
		n := min(len(keys), dremoveChunk)
		items := make([]wire.Raw, 0, 2+n)
		items = append(items, wire.AppendText(nil, name), wire.AppendText(nil, reason))
		for _, k := range keys[:n] {
			items = append(items, wire.Raw(k))
		}
		if err := s.record(j, held, wire.OpDRemove, wire.Args{Op: wire.OpDRemove, Items: items}); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// opDRemove replays a dremove record: [t, reason, key...]. A key already
// gone is passed over.
func opDRemove(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, -1); err != nil {
		return out, err
	}
	if r, _ := c.args.Text(1); r != reasonExpired && r != reasonEvicted {
		return out, errBadRequest("dremove: argument 2 must be %q or %q", reasonExpired, reasonEvicted)
	}
	d := c.t.d
	for i := 2; i < c.args.Len(); i++ {
		key, err := c.args.Value(i)
		if err != nil {
			return out, err
		}
		if pos := d.find(key); pos >= 0 {
			d.removeAt(pos)
		}
	}
	return wire.AppendNull(out), nil
}

// Eviction. A cache table (create_dict with "evict" or "max_len") keeps
// an access stamp per entry (dict.lru, the low 32 bits of the unix
// milliseconds of its last read or write) and, like Redis, evicts the
// least recently used of a few entries drawn at random rather than
// keeping an exact order (which would make every read a write).

// evictSamples is how many entries an eviction draws (Redis's default).
const evictSamples = 5

// entryOverhead is what an entry costs beyond its key and value: its
// entry (24 bytes), its index slot (8 bytes at a load of 3/4 to 3/8) and
// access stamp, in round figures.
const entryOverhead = 48

// touch records an access to the entry at pos of a cache table. Readers
// hold the table's lock shared: the stamp is stored atomically, and only
// when it changes, so that a hot entry does not bounce its cache line.
func (c *call) touch(pos int) {
	d := c.t.d
	if d.lru == nil || c.now == noClock {
		return
	}
	stamp := uint32(c.now)
	if atomic.LoadUint32(&d.lru[pos]) != stamp {
		atomic.StoreUint32(&d.lru[pos], stamp)
	}
}

// written notes a key the op stored in a cache table: the op's own
// eviction passes over it.
func (c *call) written(key []byte) {
	if c.t.d.evict && c.now != noClock {
		c.t.fxWritten = append(c.t.fxWritten, string(key))
	}
}

// evictFor evicts from the cache table t after a write: while it holds
// more than its max_len, and, when the store is over its memory limit and
// the write may add data (grows), as many bytes as the write added
// (bytes0 and live0 are the table's size before it), so that a cache
// never grows over the limit. Entries the write stored stay. Its lock is
// held for writing.
func (s *Store) evictFor(t *table, now int64, bytes0 int64, live0 int, grows bool) {
	d := t.d
	if now == noClock {
		return
	}
	var need int64
	if grows && s.overMemory.Load() {
		need = d.bytes - bytes0 + entryOverhead*int64(d.live-live0)
	}
	for (d.maxLen > 0 && d.live > d.maxLen) || need > 0 {
		pos := d.victim(now, t.fxWritten)
		if pos < 0 {
			s.evictOwn(t, now)
			return
		}
		kv := d.entries[pos].kv
		need -= int64(len(kv)) + entryOverhead
		if d.expired(pos, now) {
			s.expireEntry(t, pos, nil) // no undo: the op succeeded
			continue
		}
		t.fxEvicted = append(t.fxEvicted, kv[:keyLen(kv)])
		d.removeAt(pos)
		s.evicted.Add(1)
	}
}

// evictOwn is evictFor's last resort, when only entries the write stored
// are left and the table still holds more than its max_len: a write that
// alone stores more than max_len entries keeps the last max_len it
// stored, as Python's deque(maxlen=n).extend does, rather than leave the
// table over its bound.
func (s *Store) evictOwn(t *table, now int64) {
	d := t.d
	for _, k := range t.fxWritten {
		if d.maxLen == 0 || d.live <= d.maxLen {
			return
		}
		pos := d.find([]byte(k))
		if pos < 0 {
			continue // written twice: gone already
		}
		if d.expired(pos, now) {
			s.expireEntry(t, pos, nil)
			continue
		}
		kv := d.entries[pos].kv
		t.fxEvicted = append(t.fxEvicted, kv[:keyLen(kv)])
		d.removeAt(pos)
		s.evicted.Add(1)
	}
}

// victim picks the entry to evict: an expired one if the draw meets one,
// else the least recently used of evictSamples live entries drawn at
// random and of the best candidates earlier draws left in d.pool (as
// Redis's eviction pool: an entry read a while ago is not evicted while
// an older one was seen), leaving out the keys in keep; -1 if there is
// none.
func (d *dict) victim(now int64, keep []string) int {
	n := len(d.entries)
	if n == 0 {
		return -1
	}
	kept := func(pos int) bool {
		k := d.entries[pos].key()
		for _, w := range keep {
			if w == k {
				return true
			}
		}
		return false
	}
	drawn := 0
	// A table of few entries is looked at whole: drawing five at random
	// from three (with replacement) misses the least recently used one
	// an eighth of the time, and a small cache is where users check.
	// Few live entries, not few slots: removals leave tombstones (at most
	// 32 or as many as the live entries, removeAt), and drawing among
	// them made a small cache's choice random again.
	small := d.live <= 2*evictSamples
	for tries := 0; (small && tries < n) || (!small && tries < 8*evictSamples && drawn < evictSamples); tries++ {
		pos := tries
		if !small {
			pos = rand.IntN(n)
		}
		if d.entries[pos].dead() || kept(pos) {
			continue
		}
		if d.expired(pos, now) {
			return pos
		}
		drawn++
		seq := d.entries[pos].seq
		if !slices.ContainsFunc(d.pool, func(c evictCand) bool { return c.seq == seq }) {
			d.pool = append(d.pool, evictCand{pos: pos, seq: seq})
		}
	}
	// The pool: entries still where they were, oldest access first.
	stamp := uint32(now)
	age := func(pos int) uint32 {
		if d.lru == nil {
			return 0
		}
		return stamp - atomic.LoadUint32(&d.lru[pos])
	}
	d.pool = slices.DeleteFunc(d.pool, func(c evictCand) bool {
		return c.pos >= n || d.entries[c.pos].seq != c.seq || d.entries[c.pos].dead() || kept(c.pos)
	})
	slices.SortFunc(d.pool, func(a, b evictCand) int { return cmp.Compare(age(b.pos), age(a.pos)) })
	if len(d.pool) > evictPool {
		d.pool = d.pool[:evictPool]
	}
	if len(d.pool) > 0 {
		pos := d.pool[0].pos
		d.pool = slices.Delete(d.pool, 0, 1)
		return pos
	}
	for pos := range d.entries { // the draw met only tombstones and kept keys
		if !d.entries[pos].dead() && !kept(pos) {
			return pos
		}
	}
	return -1
}

// evictPool is how many candidates a cache table keeps between evictions.
const evictPool = 16

// evictCand is an eviction candidate: an entry's position and its seq,
// which tells whether the position still holds it.
type evictCand struct {
	pos int
	seq uint64
}

// The sweeper. Each round (every sweepEvery) it looks at the tables whose
// earliest deadline (table.pubNext) has come and, for each, drops the
// table if its own deadline passed, else passes over the dict's entries
// from the first to the last, removing those expired, in steps: each step
// holds the write gate shared and the table's lock for at most
// sweepChecks entries looked at or sweepRemovals removed, journals its
// removals as one dremove record, and lets other goroutines run before
// the next. A pass ends with the least deadline left as the dict's minDL,
// so the table is not looked at again before then. So a dict costs the
// sweeper nothing until a deadline comes; a million entries expiring at
// once are removed in about a thousand steps of well under a millisecond
// each, during which other tables are served as usual and this one's
// clients wait at most a step.

const (
	sweepEvery    = 100 * time.Millisecond
	sweepChecks   = 1 << 14
	sweepRemovals = 1 << 10
)

// RunExpiry removes expired entries and tables in the background until
// ctx ends. Call it once the store is loaded (after recovery): the first
// round runs at once, so what expired while the daemon was down goes
// first.
//
// It returns soon after ctx ends, between two steps: stop it, and wait
// for it to return, before the journal closes.
func (s *Store) RunExpiry(ctx context.Context) {
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	for {
		s.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// SweepExpired runs one round of the sweeper now, to its end: every table
// whose deadline or one of whose entries' deadlines has come is dropped
// or passed over. RunExpiry calls it; tests with a ManualClock call it
// after moving the clock.
func (s *Store) SweepExpired() { s.sweep(context.Background()) }

func (s *Store) sweep(ctx context.Context) {
	now := s.now()
	var due []*table
	s.mu.RLock()
	for _, t := range s.tables {
		if expiredAt(t.pubNext.Load(), now) {
			due = append(due, t)
		}
	}
	s.mu.RUnlock()
	sort.Slice(due, func(i, j int) bool { return due[i].name < due[j].name })
	for _, t := range due {
		for s.sweepStep(t) && ctx.Err() == nil {
			runtime.Gosched()
		}
	}
}

// sweepStep does one bounded step of the sweep of t and reports whether
// the pass goes on.
func (s *Store) sweepStep(t *table) (more bool) {
	s.gate.RLock()
	defer s.gate.RUnlock()
	t.mu.Lock()
	defer s.release(t, true)
	if t.dropped || t.kind == kindNone {
		return false
	}
	now := s.now()
	j := s.journal.Load()
	if j != nil && j.precheck(wire.OpDRemove) != nil {
		return false // the disk failed: removals could not be journaled; reads still hide them
	}
	t.capture()
	if t.expiredAt(now) {
		s.expireTable(t, nil)
		_ = s.journalEffects(j, []*table{t}, wire.OpDRemove, wire.Args{}, false, 0)
		return false
	}
	d := t.d
	if t.kind != kindDict || (d.sweepSeq == 0 && !d.due(now)) {
		return false
	}
	if d.sweepSeq == 0 {
		d.sweepSeq, d.passMin = 1, 0
	}
	pos := d.seek(d.sweepSeq)
	for checks := 0; pos < len(d.entries) && checks < sweepChecks && len(t.fxExpired) < sweepRemovals; checks++ {
		e := &d.entries[pos]
		if e.dead() {
			pos++
			continue
		}
		dl := d.deadline(pos)
		if !expiredAt(dl, now) {
			if dl != 0 && (d.passMin == 0 || dl < d.passMin) {
				d.passMin = dl
			}
			pos++
			continue
		}
		seq := e.seq
		s.expireEntry(t, pos, nil)
		if pos < len(d.entries) && d.entries[pos].seq == seq {
			pos++ // a tombstone now, in its place
		} else {
			pos = d.seek(seq + 1) // a compaction moved the entries
		}
	}
	if pos < len(d.entries) {
		d.sweepSeq = d.entries[pos].seq
		more = true
	} else {
		d.sweepSeq, d.minDL = 0, d.passMin
		if d.ttls == 0 {
			d.minDL = 0
		}
	}
	_ = s.journalEffects(j, []*table{t}, wire.OpDRemove, wire.Args{}, false, 0)
	return more
}
