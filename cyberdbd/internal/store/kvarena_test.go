package store

import (
	"fmt"
	"testing"
)

// The arena's strings must never change: a copy of the entries (as a
// snapshot takes) keeps reading what it copied while the dict overwrites,
// deletes and compacts, and a clone and its original never share a chunk.
func TestArenaStringsStayImmutable(t *testing.T) {
	d := newDict()
	key := func(i int) []byte { return []byte(fmt.Sprintf("\x70key:%012d", i)) } // text(16)
	val := func(i, gen int) []byte { return []byte(fmt.Sprintf("\x78\x20%016d%016d", i, gen)) }
	const n = 3000
	for i := range n {
		d.insert(key(i), val(i, 0))
	}
	frozen := append([]entry(nil), d.entries...) // what image() copies
	clone := d.clone()
	for gen := 1; gen <= 20; gen++ { // 20 x 3000 x 51 bytes of garbage: several compactions
		for i := range n {
			if i%7 == 0 && gen == 10 {
				d.removeAt(d.find(key(i)))
				continue
			}
			if pos := d.find(key(i)); pos >= 0 {
				d.setVal(pos, val(i, gen))
			}
		}
		clone.insert(key(n+gen), val(n+gen, gen)) // appends to its own chunks
	}
	if d.arena.garbage >= d.bytes+arenaMinGarbage {
		t.Fatalf("arena never compacted: garbage %d, live %d", d.arena.garbage, d.bytes)
	}
	for i := range n {
		want := string(key(i)) + string(val(i, 0))
		if frozen[i].kv != want {
			t.Fatalf("copied entry %d changed: %q", i, frozen[i].kv)
		}
		if pos := clone.find(key(i)); pos < 0 || clone.entries[pos].kv != want {
			t.Fatalf("clone entry %d changed", i)
		}
		pos := d.find(key(i))
		if i%7 == 0 {
			if pos >= 0 {
				t.Fatalf("deleted key %d still there", i)
			}
			continue
		}
		if pos < 0 || d.entries[pos].val() != string(val(i, 20)) {
			t.Fatalf("entry %d: got pos %d", i, pos)
		}
	}
	for gen := 1; gen <= 20; gen++ {
		if pos := clone.find(key(n + gen)); pos < 0 || clone.entries[pos].val() != string(val(n+gen, gen)) {
			t.Fatalf("clone's own entry %d lost", gen)
		}
	}
	// Big pairs get their own allocation and count as no arena garbage.
	big := make([]byte, arenaMaxItem+10)
	big[0], big[1], big[2] = 0x59, byte((len(big)-3)>>8), byte(len(big)-3)
	pos := d.insert(key(-1), big)
	g := d.arena.garbage
	d.setVal(pos, val(0, 0))
	if d.arena.garbage != g {
		t.Fatalf("a big pair counted as arena garbage")
	}
}
