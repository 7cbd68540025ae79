package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCLIQueueCommands runs the deque and queue commands against the real
// daemon: appendleft, popleft, extendleft, rotate, pop --left, pop
// --block (at once, after a wait, time-out: exit 1), move [--block], and
// batch with JSON lines and guards.
func TestCLIQueueCommands(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("", "create", "list", "q", "[1, 2]")
	c.ok("4\n", "appendleft", "q", "a", "b")
	c.ok(`["b","a",1,2]`+"\n", "tolist", "q")
	c.ok(`"b"`+"\n", "popleft", "q")
	c.ok("5\n", "extendleft", "q", `["y", "x"]`)
	c.ok("", "rotate", "q", "-2")
	c.ok(`["a",1,2,"x","y"]`+"\n", "tolist", "q")
	c.ok(`"a"`+"\n", "pop", "q", "--left")
	c.ok("2\n", "pop", "q", "1") // an index, as before
	c.ok("", "create", "list", "done")
	c.ok(`1`+"\n", "move", "q", "done")
	c.ok(`"y"`+"\n", "move", "q", "done", "--from", "right", "--to", "left", "--block", "1s")
	c.ok(`["y",1]`+"\n", "tolist", "done")
	c.ok(`"x"`+"\n", "pop", "q", "--block", "1s", "--left")
	c.ok("", "create", "list", "e")
	c.fails(1, "empty", "popleft", "e")
	start := time.Now()
	c.fails(1, "nothing to take before the time-out", "pop", "e", "q", "--block", "200ms")
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("pop --block 200ms returned after %s", d)
	}
	c.fails(1, "nothing to take", "move", "e", "q", "--block", "100ms")
	c.fails(2, "--block takes a duration", "pop", "e", "--block", "soon")

	// A pop that waits, then gets what another command appends.
	cmd := exec.Command(c.bin, "-s", c.socket, "pop", "e", "q", "--left", "--block", "10s")
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	c.ok("1\n", "append", "q", "job")
	if err := cmd.Wait(); err != nil || out.String() != `["q","job"]`+"\n" {
		t.Fatalf("pop --block: %v, %q", err, out.String())
	}

	// batch: JSON lines, with guards.
	c.ok("", "create", "dict", "acct", `{"alice": 30, "bob": 5}`)
	lines := "# move 10 if alice still has 30\n" +
		`["guard", "acct", "eq", "alice", 30]` + "\n" +
		`["dset", "acct", "alice", 20]` + "\n\n" +
		`["dincr", "acct", "bob", 10]` + "\n"
	if out, errs, code := c.runIn(lines, "batch", "-"); code != 0 || out != "[null,null,15]\n" {
		t.Fatalf("batch of JSON lines: %d %q %q", code, out, errs)
	}
	if _, errs, code := c.runIn(lines, "batch", "-"); code != 1 || !strings.Contains(errs, "batch op 0 (guard): guard failed") {
		t.Fatalf("batch with a failing guard: exit %d, %q", code, errs)
	}
	c.ok("20\n", "get", "acct", "alice")
	if out, errs, code := c.runIn(`["dincr", "acct", "bob", 1]`, "batch", "-"); code != 0 || out != "[16]\n" {
		t.Fatalf("batch of one JSON line: %d %q %q", code, out, errs)
	}
}
