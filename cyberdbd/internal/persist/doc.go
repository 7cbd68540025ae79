// Package persist makes cyberdbd's tables durable: snapshots plus an
// append-only log in a data dir, recovery at start, and the group commit
// that lets --fsync always reply only once a write is on disk.
//
// # Basics
//
// [Open] locks the data dir, loads the newest snapshot, replays the log
// after it and starts a new log segment; from then on every write op of the
// store is appended to the log (the store's journal hook, called under the
// table locks) before its reply is sent: the server calls [DB.Wait] before
// sending the replies of write ops, once per pipelined burst. [DB.Save]
// takes a snapshot now; snapshots are also taken every
// Options.SnapshotInterval and by [DB.Close] at clean shutdown.
//
// Files in the data dir:
//
//	LOCK                        flock'ed while a daemon runs; holds its pid
//	MANIFEST                    which log segments must exist, and how much of the last one is on disk
//	snapshot.cdb                the newest snapshot (replaced by rename, never modified in place)
//	snapshot.cdb.bak            the one before it
//	snapshot.cdb.tmp            a snapshot being written (removed at start if a crash left it)
//	appendonly-NNNNNNNNNN.log   log segments, from the one snapshot.cdb.bak starts at to the one being written
//	*.damaged-TIME              files --recover moved aside (never deleted)
//
// The formats are described next to their code: header.go (every file
// starts with a magic, its format version and, since version 2, a CRC-32C
// of the header), snapshot.go (then CBOR records and a trailer with
// counts), log.go (then one record per write op: the CBOR array [op,
// arg...] as the client sent it; a segment the log has moved on from
// ends with an end record) and manifest.go (two checksummed slots,
// written in turn). Every record is [len u32][crc32c u32][body]
// (record.go). Format version 2 added header checksums, end records and
// the MANIFEST; version 3 (expiry) adds table options and entry deadlines
// to snapshots and the journal-only records (timed, dremove) to the log.
// This version reads data dirs of versions 1 and 2 (testdata/v1-datadir,
// testdata/v2-datadir) and writes version 3.
//
// Deadlines are absolute: a snapshot or a log replayed later holds
// entries whose deadline passed meanwhile, as they were; the store hides
// them from that moment, and its sweeper removes them (journaled) once the
// daemon runs. Replay itself never reads the clock (store.Replay).
//
// # Fsync policies and group commit
//
// Appending a record only copies it into a buffer (no system call under
// the table locks). One writer goroutine moves the buffer to the segment
// with write(2) and, for FsyncAlways, fsyncs right after: records appended
// while it was busy go out together with one fsync, so 50 concurrent
// writers share fsyncs (see BenchmarkWrite). Wait returns once everything
// appended before the call is written to the OS (FsyncEverySec, FsyncNo)
// or fsynced (FsyncAlways). So under every policy an acknowledged write
// survives a crash of the process; FsyncEverySec (a background fsync each
// second) can lose about the last second (at worst two) to an OS crash or a
// power cut, FsyncNo whatever the OS had not flushed (typically up to 30s
// on Linux), FsyncAlways nothing. Without the log (AppendOnly false, the
// model of the Python CyberDB) the writes since the last snapshot are lost
// by any crash.
//
// # Snapshots and the lock protocol
//
// A snapshot must be exactly the state after some position of the log,
// and the log must start a new segment there. store.Freeze provides that
// moment: the store's write gate is held shared by every write op from
// before it locks its tables until after its journal call, and Freeze
// takes it exclusively, so no op is between changing a table and logging
// it. Under the gate the snapshot only switches the log to a segment it
// created beforehand (a pointer swap under the log's mutex) and marks
// every table as pending: microseconds (freeze-us in
// BenchmarkSnapshotPause1M). Each table is then copied copy-on-write:
// by the snapshot when it gets to it, or by the first writer that reaches
// it before (under the table lock that writer holds anyway). The copy
// shares the immutable key and value strings and copies only the slices:
// about 20ms for a 1M-entry dict, paid only by writers of that table
// (first-write-ms). Encoding and all disk I/O happen outside every lock.
// One consequence: Freeze waits for the write ops already running, so a
// long one (lsort of a huge list) delays the cut, and writes arriving
// meanwhile wait with it.
//
// A snapshot is written to snapshot.cdb.tmp, fsynced, the current snapshot
// is hard-linked as snapshot.cdb.bak, the new one renamed over
// snapshot.cdb, and the directory fsynced. Only then does the MANIFEST
// record it, and are the log segments before the one snapshot.cdb.bak
// starts at removed: the log is kept back to the previous snapshot (to
// segment 1 until the second snapshot: the empty data dir is the first
// "previous snapshot"), so that a damaged snapshot.cdb can be replaced by
// the backup and the log after it, exactly. A crash at any point leaves
// either the old snapshot with its whole log, or the new one (failpoints
// before every fsync and rename test exactly that: failpoint.go).
//
// # The MANIFEST
//
// A log that ends early looks like a log that ends: without a record of
// what must exist, a deleted last segment, or one cut at a record
// boundary, would load without a word and lose acknowledged writes. The
// MANIFEST records the last segment and how much of it is on disk, and
// every segment before the last ends with an end record (written, with
// its fsync, when the log moves to a new segment, and by the start for
// the segment a crash left open). It is updated, with an fsync: when the
// log moves to a new segment (before any record goes to it), when a
// snapshot is on disk, and at most every 100ms (manifestEvery) when more
// of the last segment was fsynced, by a goroutine of its own that no
// reply waits for; and at a clean shutdown. So at start:
//
//   - every segment from the one to replay to the MANIFEST's last must
//     exist;
//   - a segment before the last must end with its end record;
//   - the last must hold at least the bytes the MANIFEST says were on
//     disk. What it cannot vouch for is the last 100ms of fsynced writes
//     before a crash: a cut of those looks like the crash.
//
// A segment after the MANIFEST's last one was created by a start or a
// snapshot that crashed before naming it: it holds no record (none is
// written to a segment before the MANIFEST names it) and is removed.
//
// # Recovery
//
// What each kind of damage leads to (recover.go is the exact rule):
//
//   - The last log segment ends inside a record, or with zeros (a crash in
//     the middle of a write; zeros a filesystem can leave past the end of
//     a file after a power cut), past what the MANIFEST says was on disk:
//     loaded up to its last whole record, with a warning naming the file,
//     the offset and the bytes dropped, and truncated there so that the
//     log continues cleanly (Redis's aof-load-truncated). A record is only
//     taken as cut short if no whole, valid record follows it.
//   - Any other damage stops the start with an error naming the file, the
//     byte offset (or that it is missing) and the way out, and changes
//     nothing: a checksum mismatch in a record or a header, a malformed
//     record, a missing segment (named by the MANIFEST, or a gap), a
//     segment cut below what the MANIFEST says was on disk (at a record
//     boundary, to its bare header, to nothing), a segment before the
//     last without its end record, a damaged, empty or missing snapshot,
//     a damaged or missing MANIFEST (missing: when the segments are of
//     format 2), a log op that fails on replay.
//   - A header with a higher version and an intact checksum is a file of a
//     newer cyberdbd (ErrFutureVersion): the start stops even with
//     --recover. A header whose checksum does not match is damage, even if
//     its version reads as higher.
//
// Options.Recover (--recover) never invents a value: every table it serves
// holds a state that table really had. It moves each damaged file aside
// (renamed *.damaged-TIME, never deleted), logs what it loaded and
// dropped, and takes a snapshot before serving, so that the recovered
// state stands on its own.
//
//   - Damage in the log: the records before the damage are loaded (the
//     state after some position of the log: one that existed), the
//     damaged segment and those after it are moved aside.
//   - Damage to snapshot.cdb (or snapshot.cdb missing, or empty): the first
//     of these that can be had is loaded instead. (1) snapshot.cdb.bak and
//     the log after it, when no segment from the one it starts at is
//     missing: the exact state, with the log intact. (2) The empty state
//     and the log from segment 1, when it is all there (until a second
//     snapshot): exact too. (3) The tables of the damaged snapshot that
//     can be read whole (a record whose checksum does not match is skipped
//     with the rest of its table; reading resumes at the next table), with
//     the log after the snapshot replayed onto them. A table the damage
//     cuts short is set aside, not served in part with the log replayed
//     onto it (that is how an incr of a lost 4500 became 1). An op that
//     fails on replay sets aside every table it touches that is there (a
//     batch too: its other tables would miss its ops). A table the log
//     creates is rebuilt whole from its create. If even the snapshot's
//     first record is lost, no table of it is loaded, and the log is
//     replayed from its first segment on that rule.
//   - A damaged MANIFEST: the log is loaded without it (so this once, a
//     missing or cut last segment cannot be told).
//
// # Disk errors
//
// A failed write or fsync of the log (or, without the log, a failed
// snapshot) makes every later write op fail with io_error, with a message
// naming the file and the error, while reads go on (Redis's
// stop-writes-on-bgsave-error). Connections waiting in Wait for the
// failed records get the error and are closed without those replies,
// since those writes may not be durable. A snapshot is retried every 10s
// (or run 'cyberdb save'); once one taken after the failure succeeds, it
// holds everything and writes are accepted again. info reports
// last_fsync_error and writes_refused.
//
// # Caveats
//
//   - Every start begins a new log segment, and every snapshot another;
//     old ones go when the snapshot after the one that covers them is on
//     disk, so the log on disk spans two snapshot intervals.
//   - Snapshot keys and values are checked to be well-formed CBOR when
//     loaded, not re-canonicalised: the checksums vouch for them.
//   - Data dirs of format version 1 have no MANIFEST and no end records:
//     their segments are checked from the first start of this version on.
package persist
