// Package store holds cyberdbd's tables in memory and runs every table
// operation of the protocol on them.
//
// # Basics
//
// A [Store] maps names to tables. A table is a dict (insertion-ordered,
// like a Python 3.7+ dict) or a list, and every operation follows what
// Python's dict and list do, down to the edge cases: negative indices,
// slice clamping with None bounds and negative steps, insert beyond
// either end, popitem taking the last inserted pair, an overwritten key
// keeping its place. Where Python raises, the store returns a
// [*wire.Error] with the matching code (KeyError: CodeKeyNotFound,
// IndexError: CodeIndexOutOfRange, ValueError of remove and index:
// CodeValueNotFound, TypeError: CodeTypeError) and a message that names
// the table and shows the offending key or value.
//
// The server calls three things: [Store.Exec] for every op except hello,
// ping, info and save; [Store.Stats] for info; and, once persistence
// exists, [Store.SetJournal]. Persistence loads with [Store.Replay] and
// [Store.Install]; the daemon then runs [Store.RunExpiry].
//
// Keys and values are stored as their canonical CBOR encoding (RFC 8949
// Core Deterministic Encoding, see wire.Canonical), and two keys or two
// values are equal exactly when those bytes are equal. Within a dict,
// entries live in one slice in insertion order (key and value in a single
// string, deletions leaving tombstones until they outnumber live entries)
// with a compact open-addressing index over it; see dict.go. Each entry
// carries its insertion number, the cursor of dscan: a key present for a
// whole scan is returned exactly once, whatever is deleted or compacted
// meanwhile. A list is a slice of encoded values.
//
// # Expiry and eviction
//
// Dict entries and whole tables may have a deadline (expiry.go): from it
// on they are gone for every op, read by the Clock the store was given
// (WithClock; tests use a ManualClock). Reads skip what expired; a write
// that meets it removes it first; the sweeper (sweep.go, RunExpiry)
// removes the rest in bounded steps. Every such removal, and every
// eviction from a cache table, is journaled (dremove records, drops), and
// ops that computed a deadline from the clock are journaled with it
// (their ttl rewritten as "at", or inside a timed record), so that Replay,
// which reads no clock, rebuilds the same tables at any time. While the
// daemon is over its memory limit (SetOverMemory), ops that may add data
// fail with out_of_memory, except on cache tables, which evict.
//
// # Atomicity and locks
//
// Every op is atomic and linearizable: it runs under its table's lock
// (shared for reads, exclusive for writes), and an op that fails has
// changed nothing. A batch locks all its tables first and undoes its
// earlier ops if a later one fails (batch.go).
//
// Lock order, to be followed everywhere:
//
//  0. the write gate (Store.gate): shared by every write op (and batch)
//     for its whole run, exclusive only in Freeze, which takes no table
//     lock while holding it (snapshot.go);
//  1. table locks (table.mu), several only in a batch, in ascending name
//     order;
//  2. then, briefly, the store lock (Store.mu), which guards only the
//     name -> table map.
//
// The store lock is never held while waiting for a table lock or while
// working on a table: an op looks its table up under the store's read
// lock, releases it, then locks the table; if the table was dropped in
// between (table.dropped), it looks again. Drop empties the slot under the
// table lock and takes it out of the map (under the store lock) before
// unlocking. Create and batch claim a free name by putting an empty, already
// locked slot in the map. So a long op on one table (sorting a million
// elements) never stalls ops on other tables, nor the creation or drop of
// other tables, nor Stats and the tables op, which read counters each
// table publishes after every write instead of taking its lock (the
// tables op takes a table's read lock, after the store lock is released,
// only to count a dict in which a deadline may have passed unswept). The
// sweeper takes the locks as a write op does: the gate shared, then one
// table's lock, then briefly the store lock (release). The server keeps
// the same promise for its event loops: it reads a table's published size
// (Store.Size) to send an op that will take long to a worker, so that the
// loop goes on serving ops on other tables meanwhile.
//
// # Persistence hooks
//
// Nothing is persisted here; the seams are: SetJournal's function is
// called after each successful write op, under the locks of the tables it
// changed, with the op and its arguments (a batch once, as a whole), and
// replaying those through Exec is deterministic. Freeze and Cut.Take
// (snapshot.go) give a snapshot every table exactly as it was at one point
// of the journal, copy-on-write: writers pause only while a table's slices
// are copied (the immutable strings are shared), never for encoding or
// disk I/O. TableImage and Install load a snapshot back.
//
// # Caveats
//
//   - 1 and 1.0 are different keys, and different values for lremove,
//     lcount, lindex and dcas, because their encodings differ (Python
//     says 1 == 1.0). "a" and h'61' differ too. Sorting is the exception:
//     it compares numbers by value, as Python does.
//   - In lsort, false and true sort as the numbers 0 and 1 (Python's bool
//     is an int), but everywhere else they are their own values, and
//     dincr refuses them (TypeError).
//   - NaN is unordered in lsort as in Python; the resulting order matches
//     CPython's for lists of fewer than 64 elements and is deterministic
//     but may differ from CPython's for longer ones (see sort.go).
//   - An optional argument given as null counts as absent for dincr's
//     delta, lpop's index and lindex's start and stop; for the default of
//     dget, dpop and dsetdefault and the expected value of dcas, null is a
//     real value, and presence is decided by the argument count.
//   - dscan's count must be at least 1; counts above 10000 are clamped to
//     10000. Its cursor is only meaningful for the table it came from.
//   - Stats and the tables op read each table's published length without
//     its lock: each figure is exact as of that table's last write, but
//     figures of different tables are not one atomic snapshot across a
//     concurrent batch.
//   - Indices, slice bounds and counts must fit in an int64 (else
//     CodeBadRequest); within that range they clamp exactly as Python's.
//   - A dict holds at most about 4 billion entries (32-bit positions in
//     its index).
//   - Stats' Entries counts expired entries the sweeper has not removed
//     yet; every op that reads entries leaves them out.
//   - A cache table's access stamps are the low 32 bits of unix
//     milliseconds: an entry untouched for more than 24 days may look
//     recently used to the eviction sampler.
package store
