package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// The deque and queue commands: appendleft, popleft, extendleft, rotate,
// move, and pop's --block and --left (PROTOCOL.md 6.4, 6.6).

func init() {
	for _, c := range []*command{
		{name: "appendleft", group: groupList, args: "TABLE VALUE...", summary: "prepend values to a list, one after the other, and print its new length", min: 2, max: -1,
			ops:  []wire.Op{wire.OpLAppendLeft},
			help: "Python's deque.appendleft for each VALUE, so the last one ends up first; O(1).\nOne VALUE may be \"-\": read from stdin.\n\nExamples:\n  cyberdb appendleft queue urgent\n  cyberdb appendleft queue a b     # the list starts b, a", run: runAppendLeft},
		{name: "popleft", group: groupList, args: "TABLE", summary: "remove and print the first value of a list, in O(1)", min: 1, max: 1,
			ops:  []wire.Op{wire.OpLPopLeft},
			help: "Python's deque.popleft(). Exit status 1 when the list is empty. To wait for a\nvalue, use pop --left --block.\n\nExample:\n  cyberdb popleft queue", run: func(e *env, a []string) error { return call(e, wire.OpLPopLeft, a[0]) }},
		{name: "extendleft", group: groupList, args: "TABLE JSON_ARRAY|-", summary: "prepend every value of a JSON array to a list, one after the other", min: 2, max: 2,
			ops:  []wire.Op{wire.OpLExtendLeft},
			help: "Python's deque.extendleft: the last value ends up first. Prints the new length.\n\nExample:\n  cyberdb extendleft queue '[\"b\", \"a\"]'   # the list starts a, b", run: runExtendLeft},
		{name: "rotate", group: groupList, args: "TABLE [N]", summary: "rotate a list N steps to the right (default 1; negative: to the left)", min: 1, max: 2,
			ops:  []wire.Op{wire.OpLRotate},
			help: "Python's deque.rotate(n): the last N values move to the front.\n\nExamples:\n  cyberdb rotate queue\n  cyberdb rotate queue -2", run: runRotate},
		{name: "move", group: groupList, args: "SRC DST [--from left|right] [--to left|right] [--block DURATION]", summary: "pop a value from SRC and push it onto DST, atomically, and print it", min: 2, max: 8,
			ops: []wire.Op{wire.OpLMove, wire.OpLBMove},
			help: `Redis's LMOVE: by default from the left (front) of SRC to the right (back)
of DST, the move of a reliable queue (a job taken from the queue into a
worker's in-progress list, see the README). SRC and DST may be the same
list. With --block it waits up to DURATION (0: for ever) for SRC to have a
value (Redis's BLMOVE). Exit status 1 when SRC is empty, or stays empty
until the time-out.

Examples:
  cyberdb move jobs jobs:worker1
  cyberdb move jobs jobs:worker1 --block 5s
  cyberdb move jobs jobs --from right --to left   # rotate by one`, run: runMove},
	} {
		register(c)
	}
}

func runAppendLeft(e *env, a []string) error {
	args, err := e.values([]any{a[0]}, a[1:])
	if err != nil {
		return err
	}
	return call(e, wire.OpLAppendLeft, args...)
}

func runExtendLeft(e *env, a []string) error {
	v, err := e.jsonValue("JSON_ARRAY", a[1])
	if err != nil {
		return err
	}
	if _, ok := v.([]any); !ok {
		return usagef("want a JSON array of values, such as '[\"a\", \"b\"]'")
	}
	return call(e, wire.OpLExtendLeft, a[0], v)
}

func runRotate(e *env, a []string) error {
	if len(a) == 1 {
		return call(e, wire.OpLRotate, a[0])
	}
	n, err := intArg("N", a[1])
	if err != nil {
		return err
	}
	return call(e, wire.OpLRotate, a[0], n)
}

func intArg(name, s string) (int64, error) {
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil || fmt.Sprint(n) != strings.TrimPrefix(s, "+") {
		return 0, usagef("%s must be an integer, got %q", name, s)
	}
	return n, nil
}

// errTimedOut is a blocking pop or move that found nothing in time (exit
// status 1).
var errTimedOut = errors.New("nothing to take before the time-out")

// queueFlags takes --block DURATION, --left, --right, --from END and --to
// END out of a command's arguments.
type queueFlags struct {
	block    time.Duration
	hasBlock bool
	left     bool
	from, to string
}

func parseQueueFlags(a []string, move bool) (rest []string, f queueFlags, err error) {
	f.from, f.to = "left", "right"
	end := func(name, v string) (string, error) {
		if v != "left" && v != "right" {
			return "", usagef("%s takes left or right, got %q", name, v)
		}
		return v, nil
	}
	for i := 0; i < len(a); i++ {
		flag, val, hasVal := strings.Cut(a[i], "=")
		needVal := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(a) {
				return "", usagef("%s needs a value", flag)
			}
			i++
			return a[i], nil
		}
		switch {
		case flag == "--block":
			v, err := needVal()
			if err != nil {
				return nil, f, err
			}
			if f.block, err = time.ParseDuration(v); err != nil || f.block < 0 {
				if n, err2 := intArg("--block", v); err2 == nil && n >= 0 {
					f.block = time.Duration(n) * time.Second // seconds, as Redis's BLPOP
				} else {
					return nil, f, usagef("--block takes a duration such as 5s, 500ms or 0 (for ever), got %q", v)
				}
			}
			f.hasBlock = true
		case !move && (a[i] == "--left" || a[i] == "--right"):
			f.left = a[i] == "--left"
		case move && (flag == "--from" || flag == "--to"):
			v, err := needVal()
			if err != nil {
				return nil, f, err
			}
			if v, err = end(flag, v); err != nil {
				return nil, f, err
			}
			if flag == "--from" {
				f.from = v
			} else {
				f.to = v
			}
		default:
			rest = append(rest, a[i])
		}
	}
	return rest, f, nil
}

// blockCall runs a blocking op on a connection of its own, waiting up to
// the block time (0: for ever) plus --timeout, and prints what it took;
// errTimedOut when nothing came.
func blockCall(e *env, f queueFlags, print func(res []wire.Raw) error, op wire.Op, args ...any) error {
	ms := any(nil) // for ever
	ctx, cancel := context.WithCancel(e.parent)
	if f.block > 0 {
		ms = f.block.Milliseconds()
		ctx, cancel = context.WithTimeout(e.parent, f.block+e.timeout)
	}
	defer cancel()
	c, err := e.Client()
	if err != nil {
		return err
	}
	// A pinned connection: without the push extension a blocked request
	// holds its connection, and this one is ours alone.
	conn, err := c.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	res, err := conn.Do(ctx, op, append(args, ms)...)
	if err != nil {
		return err
	}
	if res.IsNull() {
		return errTimedOut
	}
	pair, err := wire.SplitArray(res)
	if err != nil || len(pair) != 2 {
		return fmt.Errorf("unexpected reply %s", wire.Diagnose(res))
	}
	return print(pair)
}

func runPopCmd(e *env, a []string) error {
	rest, f, err := parseQueueFlags(a, false)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return usagef("name the list(s) to pop from")
	}
	if !f.hasBlock {
		if f.left {
			if len(rest) != 1 {
				return usagef("pop --left takes one list (popleft); several lists need --block")
			}
			return call(e, wire.OpLPopLeft, rest[0])
		}
		if len(rest) > 3 {
			return usagef("wrong number of arguments")
		}
		return runPop(e, rest)
	}
	end := "right"
	if f.left {
		end = "left"
	}
	return blockCall(e, f, func(p []wire.Raw) error {
		if len(rest) == 1 {
			return e.print(p[1])
		}
		out := wire.AppendArrayHeader(nil, 2)
		out = append(append(out, p[0]...), p[1]...)
		return e.print(out)
	}, wire.OpLBPop, rest, end)
}

func runMove(e *env, a []string) error {
	rest, f, err := parseQueueFlags(a, true)
	if err != nil {
		return err
	}
	if len(rest) != 2 {
		return usagef("move takes SRC and DST")
	}
	if !f.hasBlock {
		return call(e, wire.OpLMove, rest[0], rest[1], f.from, f.to)
	}
	return blockCall(e, f, func(p []wire.Raw) error { return e.print(p[1]) },
		wire.OpLBMove, rest[0], rest[1], f.from, f.to)
}
