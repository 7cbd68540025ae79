package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// The expiry commands: deadlines of dict entries and of whole tables.
func init() {
	for _, c := range []*command{
		{name: "expire", group: groupDict, args: "TABLE [KEY] TTL", summary: "give KEY of a dict (or, without KEY, a whole table) a deadline TTL from now", min: 2, max: 3,
			ops: []wire.Op{wire.OpDExpire, wire.OpExpire},
			help: `TTL is a duration: 30s, 10m, 1h30m, 250ms, or a number of seconds (30, 1.5).
With KEY, prints true, or false with exit status 1 when there is no such
key; a TTL of 0 or less removes the key at once. Without KEY the table,
dict or list, is dropped at its deadline.

Examples:
  cyberdb expire sessions abc123 30m
  cyberdb expire ratelimit:10:42 60     # a whole table, in 60 seconds`, run: runExpire},
		{name: "ttl", group: groupDict, args: "TABLE [KEY]", summary: "print the seconds KEY of a dict (or a whole table) has left: a number, or null for no deadline", min: 1, max: 2,
			ops: []wire.Op{wire.OpDTTL, wire.OpTTL},
			help: `Prints a JSON number of seconds, to the millisecond (29.5), or null when the
key or table has no deadline. Exit status 1 when there is no such key (or
table).

Examples:
  cyberdb ttl sessions abc123
  1799.208
  cyberdb ttl sessions
  null`, run: runTTL},
		{name: "persist", group: groupDict, args: "TABLE [KEY]", summary: "remove the deadline of KEY of a dict (or of a whole table)", min: 1, max: 2,
			ops: []wire.Op{wire.OpDPersist},
			help: `With KEY, prints true when a deadline was removed, false (exit status 1) when
the key has none or is absent.

Examples:
  cyberdb persist sessions abc123
  cyberdb persist ratelimit:10:42`, run: runPersist},
		{name: "getex", group: groupDict, args: "TABLE KEY TTL", summary: "print the value at KEY of a dict and move its deadline to TTL from now", min: 3, max: 3,
			ops: []wire.Op{wire.OpDGetEx},
			help: `A sliding session: each read pushes the deadline back. TTL as for expire.
Exit status 1 when the key is missing.

Example:
  cyberdb getex sessions abc123 30m`, run: runGetEx},
		{name: "delifeq", group: groupDict, args: "TABLE KEY VALUE|-", summary: "delete KEY of a dict only if it holds VALUE; print true or false", min: 3, max: 3,
			ops: []wire.Op{wire.OpDDelIfEq},
			help: `How a lease is let go: only by the holder whose token is still there.
Exit status 1 (false) when the key is absent or holds another value.

Example:
  cyberdb delifeq locks deploy alice-7f3a`, run: runDelIfEq},
	} {
		register(c)
	}
}

// parseTTL reads a duration: Go's syntax (30s, 1h30m, 250ms) or a number
// of seconds.
func parseTTL(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) && math.Abs(f) < 1e11 {
		return time.Duration(f * float64(time.Second)), nil
	}
	return 0, usagef("%q is not a duration: want 30s, 10m, 1h30m, 250ms, or a number of seconds", s)
}

// ttlMap is the "when" map of a TTL (PROTOCOL.md 4.5).
func ttlMap(d time.Duration) map[string]any { return map[string]any{"ttl": d.Milliseconds()} }

// cutFlags takes the flags named in valued (which take a value: --ttl 30s
// or --ttl=30s) and bare (--keepttl) out of args, wherever they are.
func cutFlags(args []string, valued, bare []string) (rest []string, vals map[string]string, err error) {
	vals = map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		switch {
		case contains(valued, name):
			if !hasVal {
				if i+1 >= len(args) {
					return nil, nil, usagef("%s needs a value", name)
				}
				i++
				val = args[i]
			}
			vals[name] = val
		case contains(bare, a):
			vals[a] = ""
		default:
			rest = append(rest, a)
		}
	}
	return rest, vals, nil
}

// runSet is set, with --ttl, --keepttl, --nx and --xx.
func runSet(e *env, a []string) error {
	rest, f, err := cutFlags(a, []string{"--ttl"}, []string{"--keepttl", "--nx", "--xx"})
	if err != nil {
		return err
	}
	if len(rest) != 3 {
		return usagef("want TABLE KEY VALUE [--ttl TTL] [--keepttl] [--nx|--xx]")
	}
	v, err := e.value(rest[2])
	if err != nil {
		return err
	}
	args := []any{rest[0], e.arg(rest[1]), v}
	opts := map[string]any{}
	if s, ok := f["--ttl"]; ok {
		d, err := parseTTL(s)
		if err != nil {
			return err
		}
		if d.Milliseconds() < 1 {
			return usagef("--ttl %s: a TTL must be at least 1ms", s)
		}
		opts["ttl"] = d.Milliseconds()
	}
	for _, k := range []string{"keepttl", "nx", "xx"} {
		if _, ok := f["--"+k]; ok {
			opts[k] = true
		}
	}
	if len(opts) > 0 {
		args = append(args, opts)
	}
	if opts["nx"] != nil || opts["xx"] != nil {
		return boolCall(e, wire.OpDSet, args...)
	}
	return call(e, wire.OpDSet, args...)
}

// createOptions reads create's --ttl, --evict and --max-len.
func createOptions(vals map[string]string) ([]libcyberdb.CreateOption, error) {
	var opts []libcyberdb.CreateOption
	if s, ok := vals["--ttl"]; ok {
		d, err := parseTTL(s)
		if err != nil {
			return nil, err
		}
		if d.Milliseconds() < 1 {
			return nil, usagef("--ttl %s: the default TTL must be at least 1ms", s)
		}
		opts = append(opts, libcyberdb.DefaultTTL(d))
	}
	if s, ok := vals["--evict"]; ok {
		if s != "lru" {
			return nil, usagef("--evict %s: the eviction policy is lru", s)
		}
		opts = append(opts, libcyberdb.EvictLRU())
	}
	if s, ok := vals["--max-len"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, usagef("--max-len %s: want a number of entries, at least 1", s)
		}
		opts = append(opts, libcyberdb.MaxLen(n))
	}
	return opts, nil
}

func runExpire(e *env, a []string) error {
	d, err := parseTTL(a[len(a)-1])
	if err != nil {
		return err
	}
	if len(a) == 2 {
		return call(e, wire.OpExpire, a[0], ttlMap(d))
	}
	return boolCall(e, wire.OpDExpire, a[0], e.arg(a[1]), ttlMap(d))
}

func runTTL(e *env, a []string) error {
	c, err := e.Client()
	if err != nil {
		return err
	}
	var res wire.Raw
	if len(a) == 1 {
		res, err = c.Do(e.ctx, wire.OpTTL, a[0])
	} else {
		res, err = c.Do(e.ctx, wire.OpDTTL, a[0], e.arg(a[1]))
	}
	if err != nil {
		return err
	}
	if res.IsNull() {
		fmt.Fprintln(e.stdout, "null")
		return nil
	}
	var ms int64
	if err := wire.Unmarshal(res, &ms); err != nil {
		return fmt.Errorf("ttl: the daemon answered %s, not a number of milliseconds", wire.Diagnose(res))
	}
	fmt.Fprintln(e.stdout, strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64))
	return nil
}

func runPersist(e *env, a []string) error {
	if len(a) == 1 {
		return call(e, wire.OpExpire, a[0], map[string]any{"persist": true})
	}
	return boolCall(e, wire.OpDPersist, a[0], e.arg(a[1]))
}

func runGetEx(e *env, a []string) error {
	d, err := parseTTL(a[2])
	if err != nil {
		return err
	}
	if d.Milliseconds() < 1 {
		return usagef("getex: a TTL must be at least 1ms")
	}
	return call(e, wire.OpDGetEx, a[0], e.arg(a[1]), ttlMap(d))
}

func runDelIfEq(e *env, a []string) error {
	v, err := e.value(a[2])
	if err != nil {
		return err
	}
	return boolCall(e, wire.OpDDelIfEq, a[0], e.arg(a[1]), v)
}
