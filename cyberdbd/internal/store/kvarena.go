package store

import "unsafe"

// kvArena hands out a dict's kv strings (key and value back to back)
// carved from shared chunks instead of one allocation each.
//
// Why: a million 16-byte keys with 32-byte values make 51-byte kv strings,
// which the allocator rounds up to 64 bytes, and a million small objects
// for the garbage collector to find. Carved from 64 KiB chunks they cost
// their length, in about 800 objects without pointers.
//
// Safety: a string handed out is never written again. The arena only
// appends to its current chunk within its capacity (append never moves
// it), so bytes below the chunk's length are immutable, and strings keep
// their chunk alive by themselves: a snapshot's copy of the entries, or an
// undo closure, can hold old strings for as long as it likes, across
// compactions (which copy the live strings into new chunks and drop the
// arena's reference to the old ones; the collector frees a chunk once no
// string points into it).
//
// Overwritten and deleted strings leave garbage in their chunks; the dict
// counts it (garbage) and compacts when it exceeds the live bytes, so a
// dict's arena holds at most about twice its live data, like a garbage
// collector's heap with GOGC=100.
type kvArena struct {
	chunk   []byte // the current chunk; chunk[:len] is handed out
	garbage int64  // bytes of dead arena strings, in any chunk
}

const (
	arenaChunk   = 64 << 10 // the largest chunk
	arenaFirst   = 256      // a new dict's first chunk: small tables stay small
	arenaMaxItem = 2 << 10  // bigger pairs get their own allocation
	// arenaMinGarbage keeps small dicts from compacting over a few bytes.
	arenaMinGarbage = 256 << 10
)

// inArena reports whether a kv string of this length comes from an arena
// (or might: strings made elsewhere are counted as if they did, which only
// makes compaction a little early).
func inArena(n int) bool { return n <= arenaMaxItem }

// arenaJoin returns key then val as one immutable string from a.
func arenaJoin[K string | []byte](a *kvArena, key K, val []byte) string {
	n := len(key) + len(val)
	if !inArena(n) || n == 0 {
		b := make([]byte, 0, n)
		b = append(append(b, key...), val...)
		return unsafe.String(unsafe.SliceData(b), n)
	}
	if cap(a.chunk)-len(a.chunk) < n {
		size := min(max(2*cap(a.chunk), arenaFirst), arenaChunk)
		for size < n {
			size *= 2
		}
		a.chunk = make([]byte, 0, size)
	}
	start := len(a.chunk)
	a.chunk = append(append(a.chunk, key...), val...)
	return unsafe.String(&a.chunk[start], n)
}

// dropped counts the kv string s as garbage.
func (a *kvArena) dropped(s string) {
	if inArena(len(s)) {
		a.garbage += int64(len(s))
	}
}

// detach makes a copy's arena start a new chunk, so that the copy and the
// original never append into the same one.
func (a *kvArena) detach() { a.chunk = nil }
