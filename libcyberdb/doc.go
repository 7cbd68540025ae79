// Package libcyberdb is the Go client of cyberdb: it lets the processes
// of one machine share dict and list tables, held by the cyberdbd daemon,
// as if they were local maps and slices, with Python's semantics for every
// operation.
//
// # Basics
//
// Open one Client per process and share it between all goroutines:
//
//	c, err := libcyberdb.Open(ctx, "") // $CYBERDB_ADDR, else the daemon's default socket
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer c.Close()
//
//	// Every worker process makes sure the table exists; the first creates it.
//	if err := c.CreateDict(ctx, "centre", nil, libcyberdb.IfNotExists()); err != nil {
//		log.Fatal(err)
//	}
//	centre := libcyberdb.NewDict[string, string](c, "centre")
//	if err := centre.Set(ctx, "content", "Hello CyberDB!"); err != nil {
//		log.Fatal(err)
//	}
//	content, err := centre.Get(ctx, "content") // "Hello CyberDB!"
//
// Tables are created explicitly, never by a first write: a misspelt name
// fails with ErrNoTable instead of quietly making a new table.
//
// The address is a Unix socket path, bare or as unix:///path; an empty one
// means $CYBERDB_ADDR, else /run/cyberdb/cyberdb.sock (the systemd
// service's) when it exists, else ./cyberdb.sock (the daemon run by hand).
//
// # Tables as Go values
//
// NewDict[K, V] and NewList[V] return handles: a name and a Client (or
// Conn), no data. Every method is one atomic operation on the daemon,
// named after Python's (PROTOCOL.md lists each with its Python
// equivalent):
//
//	c.CreateDict(ctx, "counts", nil, libcyberdb.IfNotExists())
//	counts := libcyberdb.NewDict[string, int](c, "counts")
//	n, err := counts.Incr(ctx, "visits", 1) // atomic across processes
//	ok, err := counts.CompareAndSwap(ctx, "state", 1, 2)
//	v, err := counts.GetOr(ctx, "missing", 0)
//
//	c.CreateList(ctx, "queue", nil, libcyberdb.IfNotExists())
//	queue := libcyberdb.NewList[string](c, "queue")
//	queue.Append(ctx, "job1", "job2")
//	last, err := queue.At(ctx, -1) // negative indices count from the end
//	page, err := queue.Slice(ctx, libcyberdb.Span(0, 10))
//	rev, err := queue.Slice(ctx, libcyberdb.Slice{}.By(-1)) // queue[::-1]
//
// Keys and values are CBOR: any Go value the CBOR encoder takes (numbers,
// strings, []byte, slices, maps, structs). For tables of mixed types use
// Dict[any, any] and List[any]: integers then decode as int64 or uint64,
// maps as map[any]any. Keys are equal when their canonical CBOR encodings
// are, so unlike Python, 1 and 1.0 are different keys.
//
// Big tables are read in pages with Scan, an iterator for range-over-func
// whose error is read after the loop:
//
//	sc := counts.Scan(ctx, 500)
//	for k, v := range sc.All() {
//		fmt.Println(k, v)
//	}
//	if err := sc.Err(); err != nil {
//		log.Fatal(err)
//	}
//
// Table management: CreateDict, CreateList (with optional content, and
// IfNotExists to accept a table that is already there), Drop, Exists,
// Tables; and the server: Ping, Info, Save.
//
// # Expiry, caches and locks
//
// Entries can remove themselves at a deadline judged by the daemon's
// clock: Set (and Update, SetDefault, CompareAndSwap, SetIfAbsent) take
// TTL, ExpireAt or KeepTTL; a plain Set removes the entry's deadline, as
// Redis's SET. Dict.Expire, ExpireAt, TTL, Deadline, Persist, GetEx (a
// sliding session) and DeleteIfEqual work on one key; Client.ExpireTable,
// TableTTL and PersistTable on a whole table. CreateDict takes DefaultTTL
// (every entry's deadline unless the write says otherwise), and EvictLRU
// or MaxLen for a cache table, the only kind that loses entries to
// eviction. Lock is a lease on a key: TryAcquire or Acquire, Renew,
// Release, with the limits its documentation gives. An expired entry is
// gone for every operation at once, before the daemon reclaims its memory.
//
// The examples of this documentation and of the README run as written:
// each is part of a runnable example (example_test.go), which a test keeps
// in step with the text.
//
// # Errors
//
// Errors answered by the daemon are *Error values (code and message) and
// match the sentinels with errors.Is: ErrNotFound (a missing key, Python's
// KeyError), ErrNoTable, ErrTableExists, ErrWrongKind, ErrIndexOutOfRange,
// ErrValueNotFound, ErrTypeError, ErrOverflow, ErrTooLarge, ErrBadRequest.
// The client's own: ErrUnavailable (no daemon), ErrConnClosed (a write
// whose connection was lost before the reply: it may or may not have been
// applied), ErrClosed, ErrDecode (a stored value does not fit the handle's
// Go type; errors.As gives a *DecodeError naming the table, the key or
// index and both types), *EncodeError.
//
// A message's way out names this package's methods ("create it with
// Client.CreateDict or Client.CreateList"): the daemon's hints, which name
// protocol ops, are rewritten for the typed API; Do returns them as sent.
// A user who may not open the socket (say, outside group cyberdb with the
// packaged daemon's /run/cyberdb) gets ErrUnavailable with the directory,
// its mode and group, and the command that adds the user to the group.
//
// # Connections, pipelining and retries
//
// A Client keeps at most WithPoolSize connections (DefaultPoolSize, 4), and
// every connection carries any number of concurrent calls: a writer
// goroutine sends whatever calls are queued in one write and a reader
// goroutine matches the replies, so concurrency becomes pipelining and
// hundreds of goroutines share a handful of connections. A Client used by
// one goroutine at a time keeps one connection; more are opened only when
// all are busy. Sizing rule: processes × pool size must stay well under
// the daemon's --max-conns (default 10000); 32 worker processes × 4 = 128.
//
// Every call honours its context: when it ends, the call returns its error
// at once and its reply, if any, is discarded when it arrives. A
// connection that dies is dropped and replaced by the next call that needs
// one; opening a connection retries for a while (WithDialTimeout) while the
// daemon is starting, so calls ride through a restart. The rules follow
// PROTOCOL.md ("Shutdown and safe retries"): a request never written is
// resent; after the daemon's shutting_down frame (a graceful stop or
// restart), every request without a reply was not executed and is resent
// whatever it is, so a restart fails no call; when a connection is lost
// without that frame (the daemon crashed), read-only requests are resent
// and writes fail with ErrConnClosed. A resend goes to another connection
// of the pool, and after a few (a crash kills them all, and a call may
// reach one before the pool has noticed) once more to a connection opened
// for it, which waits for the daemon to be back: so within the dial
// time-out a crash and restart fail no read. A daemon at its connection
// limits (--max-conns) refuses a new connection with too_many_connections
// before anything is executed: opening a connection retries that too,
// with a randomised backoff, so a burst of clients over the limit waits
// for room, and fails with ErrTooManyConns (and ErrUnavailable) only if
// none comes within the dial time-out.
//
// WithIdleTimeout closes connections that carried no call for a while
// (CyberDB's time_out), WithMaxLifetime retires old ones; Stats reports the
// pool's state and counters. On a tcp:// daemon whose password changes,
// the sessions of the old one end with a frame that, like shutting_down,
// says the requests without a reply were not executed: they are resent on
// a new connection, which reads the password file again.
//
// # Blocking pops and work queues
//
// List.PopWait, List.MoveWait and Client.PopWait wait for a value (Redis's
// BLPOP, BRPOP, BLMOVE) without holding up the other calls on their
// connection: every connection negotiates the protocol's push extension
// (PROTOCOL.md 3.1), so the daemon parks a blocking request and its reply,
// matched by id, comes after the replies to later calls. A context that
// ends cancels the wait on the daemon (a value handed over at that moment
// is returned, not dropped). A blocking call whose connection is lost
// without a shutting_down frame is not resent: it may have taken a value.
// Queue is the reliable-queue pattern on top: jobs move atomically into a
// per-worker in-progress list, Ack removes them, and Recover requeues the
// jobs of workers whose lease ran out; see its documentation for the
// exact guarantees.
//
// # In a service
//
// No call waits forever: one whose context has no deadline is bounded by
// WithTimeout (DefaultTimeout, 10 s), and fails with an error matching
// context.DeadlineExceeded if a hung daemon does not answer (a blocking pop is
// bounded by its own time-out and its context instead). WithDialer
// replaces net.Dialer; WithOnConnect runs a function on each new
// connection before it carries calls; WithHealthCheck PINGs a connection
// idle for a while before its next call. WithHooks installs middleware
// around each dial, call and pipelined write (Hook), on which the
// otelcyberdb module builds OpenTelemetry tracing.
//
// For tests, package cyberdbtest runs a real daemon inside the test
// process (cyberdbtest.New(t)), with FastForward for its expiry clock;
// and since the handles accept any Executor (one method, Do), a unit test
// can give them a fake (see ExampleExecutor).
//
// # Who serves the socket
//
// A Unix socket's path says nothing about who listens on it: in a
// directory other users can write (/tmp), another user may be there first.
// WithServerUID (or $CYBERDB_SERVER_UID) makes the client check the
// listener's user (SO_PEERCRED) before it sends anything, and refuse a
// socket file another user owns in a world-writable directory; the error
// wraps ErrUntrustedServer.
//
// # Pinned connections and batches
//
// c.Conn(ctx) holds one connection for the caller's exclusive use, like
// CyberDB's proxy; the same handles work on it (NewDict(conn, ...)), and
// Close returns it to the pool. c.Batch() queues operations on any tables
// through each handle's In view and applies them atomically with Exec, all
// or nothing; each queued operation returns a Future holding its result
// after Exec.
//
// # Caveats
//
// Dict.Map returns a Go map, which has no order; Items and Scan keep the
// dict's insertion order. A write that fails with ErrConnClosed may have
// been applied: repeat it only if it is idempotent (Set, Delete) or after
// checking. Large reads (Keys, Values, Items, Map, List.Values) load the
// whole table into one reply; use Scan for big tables.
package libcyberdb
