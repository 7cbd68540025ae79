package main

import (
	"strings"
	"testing"
	"time"
)

// TestCLIEvents: watch and subscribe print one JSON line per change or
// message; publish prints the receivers.
func TestCLIEvents(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("", "create", "dict", "flags")
	c.ok("0\n", "publish", "news", `{"a":1}`)

	type result struct {
		out, errs string
		code      int
	}
	watch := make(chan result, 1)
	go func() {
		out, errs, code := c.run("watch", "flags", "--count", "2")
		watch <- result{out, errs, code}
	}()
	sub := make(chan result, 1)
	go func() {
		out, errs, code := c.run("subscribe", "--pattern", "ne*", "--count", "1")
		sub <- result{out, errs, code}
	}()
	// Both are live once a change / a message reaches them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _, _ := c.run("publish", "news", `{"a":1}`)
		if out == "1\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the subscriber never received")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := <-sub
	if r.code != 0 || r.out != `{"channel":"news","pattern":"ne*","data":{"a":1}}`+"\n" {
		t.Fatalf("subscribe: exit %d, %q, %q", r.code, r.out, r.errs)
	}
	for i := 0; ; i++ {
		c.ok("", "set", "flags", "beta", "true")
		select {
		case r := <-watch:
			lines := strings.Split(strings.TrimSpace(r.out), "\n")
			if r.code != 0 || len(lines) != 2 || !strings.Contains(lines[0], `"op":"dset","key":"beta","value":true`) {
				t.Fatalf("watch: exit %d, %q, %q", r.code, r.out, r.errs)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		if i > 200 {
			t.Fatal("watch printed nothing")
		}
	}
}
