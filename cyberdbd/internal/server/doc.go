// Package server is cyberdbd's network side: it accepts connections on the
// daemon's listeners, reads request frames, enforces the limits
// (--max-conns, --max-frame, --idle-timeout, nesting, and what one client
// may make the daemon hold), runs the handshake (and, on TCP, TLS and the
// password), and hands table operations to the store.
//
// # Two ways to serve a connection
//
// Unix-socket connections are served by event loops by default
// (Config.IOLoops, --io-loops: one loop per 4 CPUs, at least one, on
// Linux; ioloop_linux.go). Each loop is one goroutine with its own epoll
// set, parked in Go's poller when idle, as Redis serves its clients: a
// round reads at most once from each readable connection, runs the whole
// requests read, and writes the replies of every connection of the round
// together, after one Config.Durable call covering all their writes. So a
// request costs at most one read and one write system call, and no
// goroutine switch. Under --fsync always (Config.DurableSlow) that call
// runs off the loop: the connections that wrote wait for it, the others'
// replies go out at once.
//
// # Slow requests
//
// A request expected to take more than about 250 µs (cost.go: an op whose
// cost grows with its table, on a big table; a request carrying many
// items; a save) does not run on its loop, which would hold up every other
// connection of the loop for as long: it runs on the server's worker pool
// (workers.go), bounded to the processors the loops leave, and is answered
// in order on its own connection, whose later requests wait for it
// (startOffLoop). The estimate reads the op, the frame's size and the
// table's published size, without decoding or locking.
//
// A connection gets a goroutine of its own (conn.serve) instead when
// IOLoops is 0, on TCP (TLS needs a goroutine's blocking reads), on
// systems other than Linux, and when the loops cannot be started or a
// loop cannot take a connection (its socket has no descriptor): then it
// is logged and served all the same. That goroutine reads a frame,
// executes it and queues the reply; queued replies are flushed when no
// further request is already buffered, so a pipelining client gets many
// replies per write.
//
// Both models behave the same on the wire (the tests and the fuzz target
// run every case in both): replies come in request order, and the limits
// below hold in both.
//
// # Limits
//
// What one connection may make the daemon hold (limits.go): a frame before
// HELLO has succeeded may be MaxHelloFrame (4 KiB) bytes, and a larger one
// is refused after its 4-byte header; a buffer grows with the bytes that
// arrive, never to the size a header announces; frames still arriving
// share one budget (Config.MaxPartialMemory: a connection whose frame does
// not fit is not read until it does) and must be finished within
// Config.PartialTimeout; unread replies are bounded per connection
// (Config.OutputLimit, as Redis's client-output-buffer-limit) and in all
// (Config.MaxOutputMemory). On an event loop a slow request runs on the
// worker pool (above), and a connection gets at most 64 KiB of requests
// run per round (those carrying items counted four times), so one client
// holds its loop for about 2 ms at the very worst.
//
// # Bad input
//
// A body that is not valid CBOR, or not a valid request, gets an error reply
// and the connection stays usable. A frame header declaring more than
// --max-frame bytes gets an error frame and the connection is closed: the
// stream cannot be resynchronised without reading the body. Nothing a peer
// sends can crash the daemon or delay other connections.
//
// # What the daemon is doing
//
// Every request is timed where it completes (observe.go): per-op latency
// histograms (package latency), the slow log, and, while someone
// monitors, a push to each monitor (monitor.go), bounded per monitor and
// dropped with a lost push when its client does not keep up. clients and
// kill_client reach a loop's connections through the loop (ioLoop.do), so
// that only the loop touches them. Live settings (config_get, config_set)
// are the daemon's (Config.Settings).
//
// # Shutdown
//
// [Server.Shutdown] stops accepting, lets every request already read finish
// and its reply be written, sends each connection a shutting_down frame,
// then closes the connections.
//
// # Locks
//
// A connection's state belongs to the one goroutine that serves it (its
// own, its event loop's, or, while a request runs off the loop, that
// request's); other goroutines touch only its socket's deadlines
// (conn.interrupt) and atomics. The mutexes, in the order they may be
// taken:
//
//  1. Server.mu: listeners, the goroutine-served connections, the loops;
//  2. ioLoop.mu: a loop's connections, which accept adds to;
//  3. leaves, under which nothing is locked: ioLoop.savedMu (requests
//     run off the loop, handed back), ioLoop.syncMu (a Durable call's
//     result), workPool.mu (its queue), ioLoop.wmu (the loop's eventfd),
//     memBudget.mu (the partial budget's waiters), throttle.mu and
//     logLimiter.mu (TCP logins, rate-limited warnings), health.Queue's,
//     slowLog.mu; procs's lock (internal/procs: Borrow and Return), which
//     is taken only by workers and goroutine-served connections, never
//     by a loop, because a Borrow holds it while GOMAXPROCS waits for a
//     collection cycle to end;
//  4. observer.monMu (the monitors; clients takes it under Server.mu),
//     then monitorSub.mu; neither is held while waiting for a loop, and
//     clients and kill_client hold Server.mu and ioLoop.mu only to look
//     connections up, never while they wait for a loop's round.
//
// None is held while a request runs, so no lock of the store or of
// persistence is ever taken under one of them, and none of them is taken
// under a lock of the store or of persistence.
package server
