package libcyberdb_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/cyberdb/cyberdb/libcyberdb"
)

// CyberDB's first example: create a dict table "centre", set its
// "content", and read it back. (These examples run against a daemon that
// the package's TestMain starts and names in $CYBERDB_ADDR.)
func Example() {
	ctx := context.Background()
	c, err := libcyberdb.Open(ctx, "") // $CYBERDB_ADDR, or the daemon's default socket
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if err := c.CreateDict(ctx, "centre", nil); err != nil && !errors.Is(err, libcyberdb.ErrTableExists) {
		log.Fatal(err)
	}
	centre := libcyberdb.NewDict[string, string](c, "centre")
	if err := centre.Set(ctx, "content", "Hello CyberDB!"); err != nil {
		log.Fatal(err)
	}
	content, err := centre.Get(ctx, "content")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(content)
	// Output: Hello CyberDB!
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
