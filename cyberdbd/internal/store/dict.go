package store

import (
	"hash/maphash"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// dict is an insertion-ordered hash table, the representation of a dict
// table.
//
// entries holds the pairs in insertion order. Each entry keeps its key and
// value in one string (the two canonical CBOR items back to back, one
// allocation; the key's end is found by parsing its head) and its seq, the
// insertion number that orders entries and serves as the scan cursor.
// Deleting leaves a tombstone (kv == "": no canonical item is empty) so
// other entries keep their positions; when tombstones outnumber live
// entries the slice is compacted. entries never ends with a tombstone, so
// the last entry is the last inserted (popitem is O(1)).
//
// slots is an open-addressing (linear probing) index over entries: each
// non-zero slot holds a 32-bit hash tag in its high half and the entry's
// position + 1 in its low half. The tag also picks the home slot, so the
// index grows and deletes (backward shift) without rehashing keys.
// Compared with a map[string]int32 it costs about a third of the memory and
// nothing for the garbage collector to scan.
//
// Deadlines and access stamps (expiry.go) live in slices parallel to
// entries, allocated only when needed: dl once an entry of the dict has
// had a deadline (8 bytes an entry; a dict without TTLs pays nothing), lru
// for cache tables. Every change of entries' positions (insert, the
// trailing trim, compact, restore) changes them alike.
type dict struct {
	entries []entry
	slots   []uint64
	seed    maphash.Seed
	live    int     // entries that are not tombstones
	bytes   int64   // len(kv) summed over live entries
	nextSeq uint64  // seq of the next inserted key; seqs start at 1
	arena   kvArena // where kv strings are carved from (kvarena.go)

	dl    []int64  // deadline of each entry, unix ms, 0: none; nil until one had a deadline
	lru   []uint32 // cache tables: each entry's last access (uint32 of unix ms, atomic); else nil
	ttls  int      // live entries with a deadline
	minDL int64    // no live entry's deadline is below this; 0: no live entry has one

	// The sweeper's pass in progress (expiry.go): the seq it goes on
	// from (0: no pass) and the least deadline it has seen.
	sweepSeq uint64
	passMin  int64

	// Cache tables: the best eviction candidates of earlier draws
	// (sweep.go), each named by position and seq so that a moved or
	// removed entry is recognised and left out.
	pool []evictCand

	dictOptions // the table's options (create_dict), kept by dclear
}

type entry struct {
	kv  string // key then value, canonical CBOR; "" for a tombstone
	seq uint64
}

func (e *entry) dead() bool { return e.kv == "" }

// keyLen returns the length of the key at the start of kv.
func keyLen(kv string) int {
	n := wire.ItemLen(kv)
	if n <= 0 {
		panic("store: corrupt dict entry")
	}
	return n
}

func (e *entry) key() string { return e.kv[:keyLen(e.kv)] }
func (e *entry) val() string { return e.kv[keyLen(e.kv):] }

func newDict() *dict { return &dict{seed: maphash.MakeSeed(), nextSeq: 1} }

const minSlots = 8

func tagOf(h uint64) uint64 { return h >> 32 }

// find returns the position of key in entries, or -1.
func (d *dict) find(key []byte) int {
	if d.live == 0 {
		return -1
	}
	tag := tagOf(maphash.Bytes(d.seed, key))
	mask := uint64(len(d.slots) - 1)
	for i := tag & mask; ; i = (i + 1) & mask {
		s := d.slots[i]
		if s == 0 {
			return -1
		}
		if s>>32 == tag {
			pos := int(uint32(s)) - 1
			kv := d.entries[pos].kv
			if len(kv) >= len(key) && kv[:len(key)] == string(key) {
				return pos // a whole item that is a prefix of kv is kv's key
			}
		}
	}
}

// slotOf returns the index of the slot pointing at pos, whose key is key.
func (d *dict) slotOf(key string, pos int) uint64 {
	tag := tagOf(maphash.String(d.seed, key))
	mask := uint64(len(d.slots) - 1)
	for i := tag & mask; ; i = (i + 1) & mask {
		if s := d.slots[i]; s == 0 {
			panic("store: dict index lost a key")
		} else if int(uint32(s))-1 == pos {
			return i
		}
	}
}

// indexAdd adds key at pos to the index; the key must not be indexed.
func (d *dict) indexAdd(key string, pos int) {
	if (d.live+1)*4 > len(d.slots)*3 {
		d.growIndex()
	}
	d.place(tagOf(maphash.String(d.seed, key))<<32 | uint64(pos+1))
}

func (d *dict) place(slot uint64) {
	mask := uint64(len(d.slots) - 1)
	i := (slot >> 32) & mask
	for d.slots[i] != 0 {
		i = (i + 1) & mask
	}
	d.slots[i] = slot
}

func (d *dict) growIndex() {
	n := minSlots
	for (d.live+1)*4 > n*3 {
		n *= 2
	}
	if n < len(d.slots)*2 {
		n = len(d.slots) * 2
	}
	old := d.slots
	d.slots = make([]uint64, n)
	for _, s := range old {
		if s != 0 {
			d.place(s)
		}
	}
}

// indexDel removes slot i, shifting later members of its cluster back so
// that every key stays reachable from its home slot.
func (d *dict) indexDel(i uint64) {
	mask := uint64(len(d.slots) - 1)
	for {
		d.slots[i] = 0
		j := i
		for {
			j = (j + 1) & mask
			s := d.slots[j]
			if s == 0 {
				return
			}
			home := (s >> 32) & mask
			// Move s into the hole at i unless its home lies in (i, j].
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				d.slots[i] = s
				i = j
				break
			}
		}
	}
}

// rebuildIndex indexes entries from scratch (after positions shifted).
func (d *dict) rebuildIndex() {
	n := minSlots
	for d.live*4 > n*3 {
		n *= 2
	}
	d.slots = make([]uint64, n)
	for pos := range d.entries {
		if e := &d.entries[pos]; !e.dead() {
			d.place(tagOf(maphash.String(d.seed, e.key()))<<32 | uint64(pos+1))
		}
	}
}

func joinKV(key, val []byte) string {
	var b strings.Builder
	b.Grow(len(key) + len(val))
	b.Write(key)
	b.Write(val)
	return b.String()
}

// insert appends a new key, which must be absent, and returns its position.
// Its deadline is 0 (none), its access stamp 0.
func (d *dict) insert(key, val []byte) int {
	kv := arenaJoin(&d.arena, key, val)
	pos := len(d.entries)
	d.entries = append(d.entries, entry{kv: kv, seq: d.nextSeq})
	d.growParallel()
	d.nextSeq++
	d.indexAdd(kv[:len(key)], pos)
	d.live++
	d.bytes += int64(len(kv))
	return pos
}

// setVal replaces the value of the live entry at pos, keeping its place.
func (d *dict) setVal(pos int, val []byte) {
	e := &d.entries[pos]
	k := keyLen(e.kv)
	kv := arenaJoin(&d.arena, e.kv[:k], val)
	d.bytes += int64(len(kv) - len(e.kv))
	d.arena.dropped(e.kv)
	e.kv = kv
	d.maybeCompactArena()
}

// setKV stores the whole pair kv at pos (used by undo).
func (d *dict) setKV(pos int, kv string) {
	e := &d.entries[pos]
	d.bytes += int64(len(kv) - len(e.kv))
	d.arena.dropped(e.kv)
	e.kv = kv
}

// maybeCompactArena copies the live kv strings into fresh chunks once the
// arena's garbage exceeds them (kvarena.go). Old chunks stay valid for
// whoever still holds their strings, and are freed when nobody does.
func (d *dict) maybeCompactArena() {
	if g := d.arena.garbage; g < arenaMinGarbage || g < d.bytes {
		return
	}
	d.arena = kvArena{}
	for i := range d.entries {
		if e := &d.entries[i]; !e.dead() && inArena(len(e.kv)) {
			e.kv = arenaJoin(&d.arena, e.kv, nil)
		}
	}
}

// removeAt deletes the live entry at pos.
func (d *dict) removeAt(pos int) {
	e := &d.entries[pos]
	d.indexDel(d.slotOf(e.key(), pos))
	d.live--
	d.bytes -= int64(len(e.kv))
	d.arena.dropped(e.kv)
	e.kv = ""
	d.setDeadline(pos, 0)
	// Keep the invariant: no trailing tombstones.
	n := len(d.entries)
	for n > 0 && d.entries[n-1].dead() {
		n--
	}
	clear(d.entries[n:])
	d.entries = d.entries[:n]
	d.trimParallel(n)
	if dead := len(d.entries) - d.live; dead > 32 && dead > d.live {
		d.compact()
	}
	d.maybeCompactArena()
}

// compact drops the tombstones into a new, right-sized slice and points
// the index at the new positions.
func (d *dict) compact() {
	fresh := make([]entry, 0, d.live+d.live/8)
	remap := make([]uint32, len(d.entries))
	var dl []int64
	var lru []uint32
	if d.dl != nil && d.ttls > 0 {
		dl = make([]int64, 0, cap(fresh))
	}
	if d.lru != nil {
		lru = make([]uint32, 0, cap(fresh))
	}
	for pos, e := range d.entries {
		if !e.dead() {
			remap[pos] = uint32(len(fresh))
			fresh = append(fresh, e)
			if dl != nil {
				dl = append(dl, d.dl[pos])
			}
			if lru != nil {
				lru = append(lru, atomic.LoadUint32(&d.lru[pos]))
			}
		}
	}
	d.dl, d.lru = dl, lru // a dict whose deadlines all went pays nothing again
	if len(d.slots) > minSlots && d.live*8 < len(d.slots) {
		// Mostly emptied (a mass expiry, many deletes): a right-sized
		// index gives the memory back.
		d.entries = fresh
		d.rebuildIndex()
		return
	}
	for i, s := range d.slots {
		if s != 0 {
			d.slots[i] = s&^0xffffffff | uint64(remap[uint32(s)-1]+1)
		}
	}
	d.entries = fresh
}

// restore puts back the pair kv with its original seq, at the position
// its seq gives it (used by undo). The key must be absent.
func (d *dict) restore(kv string, seq uint64) {
	pos := d.seek(seq)
	d.live++
	d.bytes += int64(len(kv))
	if pos < len(d.entries) && d.entries[pos].seq == seq {
		d.entries[pos].kv = kv // revive its tombstone
		d.indexAdd(kv[:keyLen(kv)], pos)
		return
	}
	d.entries = slices.Insert(d.entries, pos, entry{kv: kv, seq: seq})
	if d.dl != nil {
		d.dl = slices.Insert(d.dl, pos, 0)
	}
	if d.lru != nil {
		d.lru = slices.Insert(d.lru, pos, 0)
	}
	if pos == len(d.entries)-1 {
		d.indexAdd(kv[:keyLen(kv)], pos)
		return
	}
	d.rebuildIndex() // later positions shifted; only after a compaction
}

// last returns the position of the last inserted live entry, or -1.
func (d *dict) last() int { return len(d.entries) - 1 }

// seek returns the position of the first entry whose seq is >= seq.
func (d *dict) seek(seq uint64) int {
	pos, _ := slices.BinarySearchFunc(d.entries, seq, func(e entry, s uint64) int {
		switch {
		case e.seq < s:
			return -1
		case e.seq > s:
			return 1
		}
		return 0
	})
	return pos
}

// clone returns a copy sharing the immutable strings: the cheap copy a
// snapshot takes under the table's lock before encoding outside it.
func (d *dict) clone() *dict {
	c := *d
	c.entries = slices.Clone(d.entries)
	c.slots = slices.Clone(d.slots)
	c.dl = slices.Clone(d.dl)
	c.lru = d.cloneLRU()
	c.pool = nil
	c.arena.detach()
	return &c
}

// cloneLRU copies the access stamps, which readers store to concurrently.
func (d *dict) cloneLRU() []uint32 {
	if d.lru == nil {
		return nil
	}
	c := make([]uint32, len(d.lru))
	for i := range d.lru {
		c[i] = atomic.LoadUint32(&d.lru[i])
	}
	return c
}

// growParallel extends dl and lru to the length of entries (after an
// append), with no deadline and a zero stamp.
func (d *dict) growParallel() {
	if d.dl != nil {
		d.dl = append(d.dl, 0)
	}
	if d.lru != nil {
		d.lru = append(d.lru, 0)
	}
}

// trimParallel cuts dl and lru to n entries, as entries was.
func (d *dict) trimParallel(n int) {
	if d.dl != nil {
		d.dl = d.dl[:n]
	}
	if d.lru != nil {
		d.lru = d.lru[:n]
	}
}

// emptied returns an empty dict with d's seed, next seq and options (dclear).
func (d *dict) emptied() dict {
	e := dict{seed: d.seed, nextSeq: d.nextSeq, dictOptions: d.dictOptions}
	if d.evict {
		e.lru = []uint32{}
	}
	return e
}
