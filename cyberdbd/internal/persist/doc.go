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
//	snapshot.cdb                the newest snapshot (replaced by rename, never modified in place)
//	snapshot.cdb.bak            the one before it
//	snapshot.cdb.tmp            a snapshot being written (removed at start if a crash left it)
//	appendonly-NNNNNNNNNN.log   log segments; the snapshot says from which one to replay
//	*.damaged-TIME              files --recover moved aside (never deleted)
//
// The formats are described next to their code: snapshot.go (a header with
// magic and format version, then CBOR records and a trailer with counts)
// and log.go (a header naming the segment, then one record per write op:
// the CBOR array [op, arg...] as the client sent it). Every record is
// [len u32][crc32c u32][body] (record.go).
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
// snapshot.cdb, and the directory fsynced. Only then are the log segments
// it covers removed. A crash at any point leaves either the old snapshot
// with its whole log, or the new one (failpoints before every fsync and
// rename test exactly that: failpoint.go).
//
// # Recovery
//
//   - A log segment whose last record is cut short (a crash in the middle
//     of a write) is loaded up to its last whole record, with a warning
//     naming the file and offset, and truncated there so that the log
//     continues cleanly (Redis's aof-load-truncated). A record is only
//     taken as cut short if no whole, valid record follows it.
//   - Any other damage (a checksum mismatch, a malformed record, a damaged
//     or empty snapshot, a missing segment, a log op that fails on replay)
//     stops the start with an error naming the file, the byte offset and
//     the way out: Options.Recover (--recover) loads everything valid
//     before the damage, renames the damaged file (and, for the log, the
//     segments after it) to *.damaged-TIME, logs how many bytes were
//     dropped, and takes a snapshot so that the recovered state stands on
//     its own. Nothing is dropped silently and nothing is invented.
//   - A file in a newer format (ErrFutureVersion) stops the start even
//     with --recover: a newer cyberdbd can read it.
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
//     old ones go when a snapshot covers them.
//   - Snapshot keys and values are checked to be well-formed CBOR when
//     loaded, not re-canonicalised: the checksums vouch for them.
//   - A byte flipped in a header's version field reads as a newer format.
package persist
