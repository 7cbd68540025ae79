package libcyberdb_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb"
	"github.com/cyberdb/cyberdb/libcyberdb/cyberdbtest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// CyberDB's first example, as the package documentation has it: create a
// dict table "centre", set its "content", and read it back. (These
// examples run against a daemon that the package's TestMain starts and
// names in $CYBERDB_ADDR; TestSnippets checks that the code shown in the
// documentation and the README is the code here.)
func Example() {
	ctx := context.Background()
	c, err := libcyberdb.Open(ctx, "") // $CYBERDB_ADDR, else the daemon's default socket
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Every worker process makes sure the table exists; the first creates it.
	if err := c.CreateDict(ctx, "centre", nil, libcyberdb.IfNotExists()); err != nil {
		log.Fatal(err)
	}
	centre := libcyberdb.NewDict[string, string](c, "centre")
	if err := centre.Set(ctx, "content", "Hello CyberDB!"); err != nil {
		log.Fatal(err)
	}
	content, err := centre.Get(ctx, "content") // "Hello CyberDB!"
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(content)
	// Output: Hello CyberDB!
}

// The README's example.
func Example_readme() {
	ctx := context.Background()
	defer func() {
		c, _ := libcyberdb.Open(ctx, "")
		c.Drop(ctx, "hits")
		c.Close()
	}()

	c, err := libcyberdb.Open(ctx, "") // $CYBERDB_ADDR, else /run/cyberdb/cyberdb.sock or ./cyberdb.sock
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Each worker process makes sure the tables it uses exist: the first one creates them.
	if err := c.CreateDict(ctx, "centre", nil, libcyberdb.IfNotExists()); err != nil {
		log.Fatal(err)
	}
	centre := libcyberdb.NewDict[string, string](c, "centre")
	if err := centre.Set(ctx, "content", "Hello CyberDB!"); err != nil {
		log.Fatal(err)
	}
	content, err := centre.Get(ctx, "content") // errors.Is(err, libcyberdb.ErrNotFound) when absent
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(content) // Hello CyberDB!

	if err := c.CreateDict(ctx, "hits", nil, libcyberdb.IfNotExists()); err != nil {
		log.Fatal(err)
	}
	hits := libcyberdb.NewDict[string, int](c, "hits")
	n, err := hits.Incr(ctx, "/home", 1) // atomic across all processes
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n) // 1
	// Output:
	// Hello CyberDB!
	// 1
}

// The package documentation's tour of the handles.
func Example_handles() {
	ctx := context.Background()
	c, err := libcyberdb.Open(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	defer c.Drop(ctx, "counts")
	defer c.Drop(ctx, "queue")

	c.CreateDict(ctx, "counts", nil, libcyberdb.IfNotExists())
	counts := libcyberdb.NewDict[string, int](c, "counts")
	n, err := counts.Incr(ctx, "visits", 1) // atomic across processes
	ok, err := counts.CompareAndSwap(ctx, "state", 1, 2)
	v, err := counts.GetOr(ctx, "missing", 0)

	c.CreateList(ctx, "queue", nil, libcyberdb.IfNotExists())
	queue := libcyberdb.NewList[string](c, "queue")
	queue.Append(ctx, "job1", "job2")
	last, err := queue.At(ctx, -1) // negative indices count from the end
	page, err := queue.Slice(ctx, libcyberdb.Span(0, 10))
	rev, err := queue.Slice(ctx, libcyberdb.Slice{}.By(-1)) // queue[::-1]
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, ok, v, last, page, rev)

	sc := counts.Scan(ctx, 500)
	for k, v := range sc.All() {
		fmt.Println(k, v)
	}
	if err := sc.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// 1 false 0 job2 [job1 job2] [job2 job1]
	// visits 1
}

// IfNotExists lets every process create the tables it needs, whichever
// starts first; a table of the other kind is an error.
func ExampleIfNotExists() {
	ctx := context.Background()
	c, err := libcyberdb.Open(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	defer c.Drop(ctx, "example-jobs")

	for range 3 { // three workers starting
		if err := c.CreateList(ctx, "example-jobs", []string{"first"}, libcyberdb.IfNotExists()); err != nil {
			log.Fatal(err)
		}
	}
	n, _ := libcyberdb.NewList[string](c, "example-jobs").Len(ctx)
	fmt.Println("created once, length", n)

	err = c.CreateDict(ctx, "example-jobs", nil, libcyberdb.IfNotExists())
	fmt.Println(errors.Is(err, libcyberdb.ErrWrongKind), err)
	// Output:
	// created once, length 1
	// true wrong_kind: table "example-jobs" is a list, not a dict: drop it first or pick another name
}

// A daemon on another host, from the README's "Remote hosts" (compiled,
// not run: there is no db1 here).
func ExampleWithTLSCAFile() {
	ctx := context.Background()
	c, err := libcyberdb.Open(ctx, "tcp://db1.example.com:9980",
		libcyberdb.WithTLSCAFile("/etc/myapp/cyberdb-cert.pem"), // or WithTLSFingerprint("5d41...")
		libcyberdb.WithPasswordFile("/etc/myapp/cyberdb-password"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

func ExampleDict() {
	ctx := context.Background()
	c, err := libcyberdb.Open(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	defer c.Drop(ctx, "example-counts")

	if err := c.CreateDict(ctx, "example-counts", nil); err != nil {
		log.Fatal(err)
	}
	counts := libcyberdb.NewDict[string, int](c, "example-counts")
	counts.Set(ctx, "apples", 3)
	n, _ := counts.Incr(ctx, "apples", 2) // atomic, whoever else is counting
	fmt.Println("apples:", n)

	_, err = counts.Get(ctx, "pears")
	fmt.Println("pears missing:", errors.Is(err, libcyberdb.ErrNotFound))
	pears, _ := counts.GetOr(ctx, "pears", 0)
	fmt.Println("pears:", pears)

	swapped, _ := counts.CompareAndSwap(ctx, "apples", 5, 0)
	fmt.Println("swapped:", swapped)
	// Output:
	// apples: 5
	// pears missing: true
	// pears: 0
	// swapped: true
}

func ExampleList() {
	ctx := context.Background()
	c, err := libcyberdb.Open(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	defer c.Drop(ctx, "example-queue")

	if err := c.CreateList(ctx, "example-queue", []string{"a", "b"}); err != nil {
		log.Fatal(err)
	}
	q := libcyberdb.NewList[string](c, "example-queue")
	q.Append(ctx, "c", "d")
	last, _ := q.At(ctx, -1)
	mid, _ := q.Slice(ctx, libcyberdb.Span(1, 3))
	rev, _ := q.Slice(ctx, libcyberdb.Slice{}.By(-1))
	first, _ := q.PopAt(ctx, 0)
	fmt.Println(last, mid, rev, first)
	// Output: d [b c] [d c b a] a
}

func ExampleDict_Scan() {
	ctx := context.Background()
	c, err := libcyberdb.Open(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	defer c.Drop(ctx, "example-scan")

	c.CreateDict(ctx, "example-scan", []libcyberdb.Item[string, int]{{Key: "x", Value: 1}, {Key: "y", Value: 2}, {Key: "z", Value: 3}})
	d := libcyberdb.NewDict[string, int](c, "example-scan")
	sc := d.Scan(ctx, 2) // two entries per round trip
	for k, v := range sc.All() {
		fmt.Println(k, v)
	}
	if err := sc.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// x 1
	// y 2
	// z 3
}

func ExampleBatch() {
	ctx := context.Background()
	c, err := libcyberdb.Open(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	defer c.Drop(ctx, "example-hits")
	defer c.Drop(ctx, "example-log")

	hits := libcyberdb.NewDict[string, int](c, "example-hits")
	visits := libcyberdb.NewList[string](c, "example-log")

	b := c.Batch()
	b.CreateDict("example-hits", nil)
	b.CreateList("example-log", nil)
	n := hits.In(b).Incr("/home", 1)
	length := visits.In(b).Append("bob visited /home")
	if err := b.Exec(ctx); err != nil { // all or nothing
		log.Fatal(err)
	}
	fmt.Println(n.Value(), length.Value())
	// Output: 1 1
}

func ExampleClient_Conn() {
	ctx := context.Background()
	c, err := libcyberdb.Open(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// A pinned connection (CyberDB's proxy): the same handles work on it.
	conn, err := c.Conn(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close() // back to the pool
	defer conn.Drop(ctx, "example-pinned")

	conn.CreateDict(ctx, "example-pinned", map[string]int{"a": 1})
	d := libcyberdb.NewDict[string, int](conn, "example-pinned")
	v, _ := d.Get(ctx, "a")
	fmt.Println(v)
	// Output: 1
}

// The README's "Sessions, caches, rate limits and locks": a session that
// slides, a cache table, a rate limit, a lock.
func Example_expiry() {
	ctx := context.Background()
	c, err := libcyberdb.Open(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	defer func() {
		for _, t := range []string{"sessions", "pages", "ratelimit", "locks"} {
			c.Drop(ctx, t)
		}
	}()
	sessionID, page, ip := "s-7f3a", "/home", "203.0.113.9"
	render := func() string { return "<html>...</html>" }
	if err := c.CreateDict(ctx, "locks", nil, libcyberdb.IfNotExists()); err != nil {
		log.Fatal(err)
	}

	// Sessions: every entry of the table lives 30 minutes after its last write.
	if err := c.CreateDict(ctx, "sessions", nil, libcyberdb.DefaultTTL(30*time.Minute), libcyberdb.IfNotExists()); err != nil {
		log.Fatal(err)
	}
	sessions := libcyberdb.NewDict[string, map[string]any](c, "sessions")
	if err := sessions.Set(ctx, sessionID, map[string]any{"user": "bob"}); err != nil {
		log.Fatal(err)
	}
	// Reading a session pushes its deadline back: it ends 30 minutes after the last request.
	s, err := sessions.GetEx(ctx, sessionID, 30*time.Minute)
	if errors.Is(err, libcyberdb.ErrNotFound) {
		fmt.Println("expired: log in again")
	}
	fmt.Println(s["user"]) // bob

	// A cache: at most 10000 pages, the least recently used go first.
	if err := c.CreateDict(ctx, "pages", nil, libcyberdb.MaxLen(10000), libcyberdb.IfNotExists()); err != nil {
		log.Fatal(err)
	}
	pages := libcyberdb.NewDict[string, string](c, "pages")
	html, err := pages.Get(ctx, page)
	if errors.Is(err, libcyberdb.ErrNotFound) {
		html = render()
		err = pages.Set(ctx, page, html, libcyberdb.TTL(time.Minute))
	}
	if err != nil {
		log.Fatal(err)
	}

	// A rate limit: 100 requests per IP per minute, counted from the IP's first request.
	if err := c.CreateDict(ctx, "ratelimit", nil, libcyberdb.DefaultTTL(time.Minute), libcyberdb.IfNotExists()); err != nil {
		log.Fatal(err)
	}
	hits, err := libcyberdb.NewDict[string, int](c, "ratelimit").Incr(ctx, ip, 1) // Incr keeps the deadline
	if err != nil {
		log.Fatal(err)
	}
	if hits > 100 {
		fmt.Println("429 Too Many Requests")
	}

	// A lock with a lease: released by its holder, or by itself after 30 seconds.
	lk := libcyberdb.NewLock(c, "locks", "nightly-report", 30*time.Second)
	if ok, err := lk.TryAcquire(ctx); err != nil || !ok {
		return // another worker runs it
	}
	defer lk.Release(context.WithoutCancel(ctx))
	// ... work, calling lk.Renew(ctx) every 10 seconds; false means the lease is lost
	fmt.Println("got the lock")
	// Output:
	// bob
	// got the lock
}

// Example_queue is the README's reliable-queue pattern.
func Example_queue() {
	ctx := context.Background()
	c, err := libcyberdb.Open(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	defer func() {
		tables, _ := c.Tables(ctx)
		for _, t := range tables {
			if strings.HasPrefix(t.Name, "emails") {
				c.Drop(ctx, t.Name)
			}
		}
	}()
	send := func(job string) error { return nil }
	turns := 2
	running := func() bool { turns--; return turns >= 0 } // until SIGTERM, in a real worker

	// A producer.
	q := libcyberdb.NewQueue[string](c, "emails")
	if err := q.Create(ctx); err != nil {
		log.Fatal(err)
	}
	if err := q.Put(ctx, "welcome:bob", "welcome:alice"); err != nil {
		log.Fatal(err)
	}

	// A worker process: a lease of 30 s, renewed while it waits; if the
	// process dies, its job goes back to the queue 30 s later.
	w, err := q.Worker(ctx, "", 30*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	for running() {
		job, ok, err := w.Take(ctx, 5*time.Second) // blocks up to 5 s: BLMOVE
		if err != nil {
			log.Fatal(err)
		}
		if !ok {
			continue // nothing to do yet
		}
		if err := send(job); err != nil {
			continue // not acknowledged: redone after Recover
		}
		fmt.Println("sent", job)
		if err := w.Ack(ctx, job); err != nil {
			log.Println(err) // ErrLeaseLost: it stalled past its lease
		}
	}

	// Anyone, every few seconds: requeue the jobs of dead workers.
	if _, err := q.Recover(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// sent welcome:bob
	// sent welcome:alice
}

// events is the README's events snippet, compiled with the examples: its
// loops run until ctx ends. TestSubscribePublish, TestWatch and
// TestCachedGet run the same calls.
func events(ctx context.Context, c *libcyberdb.Client) error {
	// Publish/subscribe: fire and forget, like Redis's.
	n, err := c.Publish(ctx, "config", map[string]any{"flag": "on"})
	fmt.Println("received by", n, "subscriptions", err)
	for m, err := range c.Subscribe(ctx, "config") { // or c.PSubscribe(ctx, "news.*")
		if errors.Is(err, libcyberdb.ErrLost) {
			continue // this subscriber was too slow: messages were dropped; it goes on
		}
		if err != nil {
			return err // ctx ended
		}
		fmt.Println(m.Channel, string(m.Data))
	}

	// Watching a table (or one key: WatchKey(k); text keys with a prefix: WatchPrefix(p)).
	flags := libcyberdb.NewDict[string, string](c, "flags")
	for ev, err := range flags.Watch(ctx, libcyberdb.WatchValues(), libcyberdb.WatchResync()) {
		if err != nil {
			return err
		}
		if ev.Resynced { // events may have been missed (daemon restart, too slow): ev.Snapshot is the table now
			reload(ev.Snapshot)
			continue
		}
		fmt.Println(ev.Seq, ev.Op, ev.Key, ev.Value) // "dset", "ddel", "dincr", "expired", "evicted", "dclear", "drop"...
	}

	// The read cache: Get served from this process's memory, kept coherent by the daemon.
	cached := libcyberdb.NewCachedDict[string, string](c, "flags")
	mode, err := cached.Get(ctx, "mode") // a round trip the first time, then ~200 ns
	fmt.Println(mode, err)
	return nil
}

// reload stands for what a program does with a table re-read after a
// resync.
func reload(map[string]string) {}

// fakeDicts is a fake daemon for unit tests: dict tables in a map. It
// implements the two operations the code under test uses, and fails on
// the others.
type fakeDicts map[string]map[string]string

func (f fakeDicts) Do(ctx context.Context, op wire.Op, args ...any) (wire.Raw, error) {
	var table, key, value string
	for i, dst := range []*string{&table, &key, &value}[:min(len(args), 3)] {
		if err := wire.Unmarshal(args[i].(wire.Raw), dst); err != nil {
			return nil, err
		}
	}
	switch op {
	case wire.OpDSet:
		if f[table] == nil {
			f[table] = map[string]string{}
		}
		f[table][key] = value
		return wire.Marshal(nil)
	case wire.OpDGet:
		v, ok := f[table][key]
		if !ok {
			return nil, libcyberdb.ErrNotFound
		}
		return wire.Marshal(v)
	}
	return nil, fmt.Errorf("fakeDicts: %s not implemented", op)
}

// A handle on a fake Executor, for a unit test that needs no daemon (a
// test that wants the real one starts it with cyberdbtest.New).
func ExampleExecutor() {
	ctx := context.Background()
	sessions := libcyberdb.NewDict[string, string](fakeDicts{}, "sessions")
	sessions.Set(ctx, "alice", "f3a9")
	v, err := sessions.Get(ctx, "alice")
	fmt.Println(v, err)
	_, err = sessions.Get(ctx, "bob")
	fmt.Println(errors.Is(err, libcyberdb.ErrNotFound))
	// Output:
	// f3a9 <nil>
	// true
}

// A Client set up for a service: a bound on calls without a deadline,
// tables made on every new connection, and a hook that logs slow calls
// (the README's "In a service" example).
func Example_service() {
	ctx := context.Background()
	slowCalls := libcyberdb.Hook{
		Call: func(next libcyberdb.CallFunc) libcyberdb.CallFunc {
			return func(ctx context.Context, call *libcyberdb.Call) error {
				start := time.Now()
				err := next(ctx, call)
				// A blocking pop or move (PopWait, MoveWait, Queue's Take)
				// waits for data by design: not slow.
				if took := time.Since(start); took > 50*time.Millisecond && !call.Op().IsBlocking() {
					slog.Warn("slow cyberdb call", "op", call.Op(), "table", call.Table(), "took", took, "err", err)
				}
				return err
			}
		},
	}
	c, err := libcyberdb.Open(ctx, "",
		libcyberdb.WithTimeout(2*time.Second), // calls whose context has no deadline (default 10 s)
		libcyberdb.WithOnConnect(func(ctx context.Context, cn *libcyberdb.Conn) error {
			// Each new connection, after a restart of the daemon too.
			return cn.CreateDict(ctx, "hits", nil, libcyberdb.IfNotExists())
		}),
		libcyberdb.WithHooks(slowCalls),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	defer c.Drop(ctx, "hits")

	n, err := libcyberdb.NewDict[string, int](c, "hits").Incr(ctx, "/home", 1)
	fmt.Println(n, err)
	// Output: 1 <nil>
}

// countHit is the code under test in TestCountHit.
func countHit(ctx context.Context, c *libcyberdb.Client, page string) (int, error) {
	if err := c.CreateDict(ctx, "hits", nil, libcyberdb.IfNotExists()); err != nil {
		return 0, err
	}
	return libcyberdb.NewDict[string, int](c, "hits").Incr(ctx, page, 1)
}

// The README's test with a daemon of its own (package cyberdbtest).
func TestCountHit(t *testing.T) {
	db := cyberdbtest.New(t) // a real daemon on a temporary socket, stopped when the test ends
	ctx := context.Background()
	for want := 1; want <= 3; want++ {
		if n, err := countHit(ctx, db.Client, "/home"); err != nil || n != want {
			t.Fatalf("countHit: %d, %v; want %d", n, err, want)
		}
	}
}
