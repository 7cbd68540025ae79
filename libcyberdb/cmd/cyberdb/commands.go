package main

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cyberdb/cyberdb/libcyberdb"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// scanPage is how many entries keys and dump read per round trip.
const scanPage = 500

func init() {
	for _, c := range []*command{
		{name: "ping", args: "", summary: "check that the daemon answers (prints \"PONG\")", max: 0,
			help: "Example:\n  cyberdb ping", run: simple(wire.OpPing, nil)},
		{name: "info", args: "", summary: "print the daemon's status: version, uptime, connections, tables, memory, op counts", max: 0,
			help: "The result is one JSON object (PROTOCOL.md, op info).\n\nExample:\n  cyberdb info", run: simple(wire.OpInfo, nil)},
		{name: "tables", args: "", summary: "list the tables, one per line: {\"name\":...,\"kind\":...,\"len\":...}", max: 0,
			help: "Example:\n  cyberdb tables\n  {\"name\":\"centre\",\"kind\":\"dict\",\"len\":1}", run: runTables},
		{name: "create", args: "dict|list NAME [JSON]", summary: "create a table, optionally with content", min: 2, max: 3,
			help: `The content of a dict is a JSON object or an array of [key, value] pairs
(whose order becomes the insertion order); the content of a list is a JSON
array. Fails (exit 3) when the name is taken.

Examples:
  cyberdb create dict centre
  cyberdb create dict users '{"bob": {"age": 42}}'
  cyberdb create list queue '[1, 2, 3]'`, run: runCreate},
		{name: "drop", args: "NAME", summary: "delete a table", min: 1, max: 1,
			help: "Exit status 1 when there is no such table.\n\nExample:\n  cyberdb drop centre", run: runDrop},
		{name: "get", args: "TABLE KEY", summary: "print the value at KEY of a dict", min: 2, max: 2,
			help: "KEY is read as JSON when it parses as JSON, else as text; with -S always as text.\nExit status 1 when the key or the table is missing.\n\nExamples:\n  cyberdb get centre content\n  cyberdb get counts 42         # the integer key 42\n  cyberdb get counts '\"42\"'     # the text key \"42\"\n  cyberdb -S get counts 42      # the text key \"42\" too",
			run:  dictOp(wire.OpDGet, 1)},
		{name: "set", args: "TABLE KEY VALUE", summary: "set KEY of a dict to VALUE", min: 3, max: 3,
			help: "KEY and VALUE are read as JSON when they parse as JSON, else as text (with a warning\nwhen VALUE looks like broken JSON); with -S both are always text.\n\nExamples:\n  cyberdb set centre content \"Hello CyberDB!\"\n  cyberdb set users bob '{\"age\": 42, \"tags\": [\"a\"]}'\n  cyberdb -S set users 42 carol   # the text key \"42\", the text \"carol\"",
			run:  dictOp(wire.OpDSet, 2)},
		{name: "del", args: "TABLE KEY", summary: "delete KEY from a dict", min: 2, max: 2,
			help: "Exit status 1 when the key is missing.\n\nExample:\n  cyberdb del centre content", run: dictOp(wire.OpDDel, 1)},
		{name: "len", args: "TABLE", summary: "print the number of entries of a dict or values of a list", min: 1, max: 1,
			help: "Example:\n  cyberdb len centre", run: func(e *env, a []string) error { return call(e, wire.OpLen, a[0]) }},
		{name: "keys", args: "TABLE", summary: "print the keys of a dict, one per line, in insertion order", min: 1, max: 1,
			help: "Reads the dict in pages, however big it is.\n\nExample:\n  cyberdb keys centre", run: runKeys},
		{name: "dump", args: "TABLE", summary: "print a whole table, one entry per line: [key,value] for a dict, values for a list", min: 1, max: 1,
			help: "Reads the table in pages, however big it is.\n\nExamples:\n  cyberdb dump centre\n  [\"content\",\"Hello CyberDB!\"]\n  cyberdb dump queue", run: runDump},
		{name: "incr", args: "TABLE KEY [N]", summary: "add N (default 1) to the number at KEY of a dict and print the result", min: 2, max: 3,
			help: "A missing key counts as 0. Exit status 3 (type_error) when the value is not a number.\n\nExamples:\n  cyberdb incr counts visits\n  cyberdb incr counts visits -5\n  cyberdb incr stats ratio 0.5",
			run:  runIncr},
		{name: "append", args: "TABLE VALUE...", summary: "append values to a list and print its new length", min: 2, max: -1,
			help: "Examples:\n  cyberdb append queue job1 job2\n  cyberdb append queue '{\"id\": 7}'", run: runAppend},
		{name: "at", args: "TABLE INDEX", summary: "print the value at INDEX of a list (negative counts from the end)", min: 2, max: 2,
			help: "Exit status 1 when the index is outside the list.\n\nExamples:\n  cyberdb at queue 0\n  cyberdb at queue -1", run: runAt},
		{name: "slice", args: "TABLE START STOP", summary: "print list[START:STOP], one value per line", min: 3, max: 3,
			help: "START and STOP may be negative, or null (or empty) for Python's None.\n\nExamples:\n  cyberdb slice queue 0 10\n  cyberdb slice queue -3 null     # the last three",
			run:  runSlice},
		{name: "setslice", args: "TABLE START STOP [STEP] JSON_ARRAY", summary: "assign list[START:STOP:STEP] = JSON_ARRAY, as Python does", min: 4, max: 5,
			help: `START, STOP and STEP are integers, negative ones counting from the end, or
null (or None, or empty) for Python's None. Without STEP (or with STEP 1) the
slice is replaced and the list grows or shrinks; with any other STEP the
array must have exactly as many values as the slice selects (else exit 3,
bad_request). JSON_ARRAY is always JSON, even with -S.

Examples:
  cyberdb setslice queue 1 3 '["a"]'          # queue[1:3] = ["a"]
  cyberdb setslice queue null 0 '[0, 1]'      # queue[:0] = [0, 1]: prepend
  cyberdb setslice queue null null -1 '[3, 2, 1]'   # queue[::-1] = [3, 2, 1]
  cyberdb setslice queue null null '[]'       # queue[:] = []: clear`, run: runSetSlice},
		{name: "contains", args: "TABLE VALUE", summary: "print whether VALUE is in a list (true or false)", min: 2, max: 2,
			help: "Exit status 0 when it is (true), 1 when it is not (false), so scripts can test it.\n\nExamples:\n  cyberdb contains queue job1\n  cyberdb contains queue '{\"id\": 7}'\n  cyberdb -S contains queue 42   # the text \"42\"", run: runContains},
		{name: "pop", args: "TABLE [INDEX]", summary: "remove and print the last value of a list, or the one at INDEX", min: 1, max: 2,
			help: "Exit status 1 when the list is empty or the index is outside it.\n\nExamples:\n  cyberdb pop queue\n  cyberdb pop queue 0", run: runPop},
		{name: "save", args: "", summary: "make the daemon write a durable snapshot of every table now", max: 0,
			help: "Fails (exit 3) when the daemon runs without a data directory.\n\nExample:\n  cyberdb save", run: simple(wire.OpSave, nil)},
	} {
		register(c)
	}
}

// call runs op and prints its result (nothing for null).
func call(e *env, op wire.Op, args ...any) error {
	c, err := e.Client()
	if err != nil {
		return err
	}
	res, err := c.Do(e.ctx, op, args...)
	if err != nil {
		return err
	}
	if res.IsNull() {
		return nil
	}
	return printValue(e.stdout, res)
}

func simple(op wire.Op, _ []any) func(*env, []string) error {
	return func(e *env, _ []string) error { return call(e, op) }
}

// dictOp runs op on TABLE with n JSON-or-text arguments.
func dictOp(op wire.Op, n int) func(*env, []string) error {
	return func(e *env, a []string) error {
		args := []any{a[0]}
		for _, s := range a[1 : 1+n] {
			args = append(args, e.arg(s))
		}
		return call(e, op, args...)
	}
}

func runTables(e *env, _ []string) error {
	c, err := e.Client()
	if err != nil {
		return err
	}
	ts, err := c.Tables(e.ctx)
	if err != nil {
		return err
	}
	for _, t := range ts {
		fmt.Fprintf(e.stdout, "{\"name\":%s,\"kind\":%q,\"len\":%d}\n", jsonString(t.Name), t.Kind, t.Len)
	}
	return nil
}

func jsonString(s string) string {
	var b bytes.Buffer
	writeJSONString(&b, s)
	return b.String()
}

func runCreate(e *env, a []string) error {
	var op wire.Op
	switch a[0] {
	case "dict":
		op = wire.OpCreateDict
	case "list":
		op = wire.OpCreateList
	default:
		return usagef("create: the kind is dict or list, not %q", a[0])
	}
	args := []any{a[1]}
	if len(a) == 3 {
		v, err := parseJSON(a[2])
		if err != nil {
			return usagef("create: content %q is not JSON: %v", a[2], err)
		}
		args = append(args, v)
	}
	return call(e, op, args...)
}

func runDrop(e *env, a []string) error { return call(e, wire.OpDrop, a[0]) }

func runIncr(e *env, a []string) error {
	args := []any{a[0], e.arg(a[1])}
	if len(a) == 3 {
		n, _ := parseJSON(a[2])
		switch n.(type) {
		case int64, uint64, float64:
		default:
			if _, big := n.(interface{ Sign() int }); !big {
				return usagef("incr: N %q is not a number", a[2])
			}
		}
		args = append(args, n)
	}
	return call(e, wire.OpDIncr, args...)
}

func runAppend(e *env, a []string) error {
	args := []any{a[0]}
	for _, s := range a[1:] {
		args = append(args, e.arg(s))
	}
	return call(e, wire.OpLAppend, args...)
}

func runAt(e *env, a []string) error {
	i, err := parseInt("INDEX", a[1])
	if err != nil {
		return err
	}
	return call(e, wire.OpLGet, a[0], i)
}

func runPop(e *env, a []string) error {
	if len(a) == 1 {
		return call(e, wire.OpLPop, a[0])
	}
	i, err := parseInt("INDEX", a[1])
	if err != nil {
		return err
	}
	return call(e, wire.OpLPop, a[0], i)
}

// bound reads a slice bound: an integer, or null, None or empty for None.
func bound(name, s string) (any, error) {
	if s == "" || s == "null" || s == "None" {
		return nil, nil
	}
	return parseInt(name, s)
}

func runSlice(e *env, a []string) error {
	start, err := bound("START", a[1])
	if err != nil {
		return err
	}
	stop, err := bound("STOP", a[2])
	if err != nil {
		return err
	}
	c, err := e.Client()
	if err != nil {
		return err
	}
	res, err := c.Do(e.ctx, wire.OpLSlice, a[0], start, stop)
	if err != nil {
		return err
	}
	_, err = printItems(e, res)
	return err
}

func runSetSlice(e *env, a []string) error {
	var bounds [3]any
	for i, name := range []string{"START", "STOP", "STEP"}[:len(a)-2] {
		b, err := bound(name, a[1+i])
		if err != nil {
			return err
		}
		bounds[i] = b
	}
	vals, err := parseJSON(a[len(a)-1])
	if _, isArray := vals.([]any); err != nil || !isArray {
		return usagef("setslice: the values %s are not a JSON array such as '[1, \"two\"]'", shortArg(a[len(a)-1]))
	}
	return call(e, wire.OpLSetSlice, a[0], bounds[0], bounds[1], bounds[2], vals)
}

func runContains(e *env, a []string) error {
	c, err := e.Client()
	if err != nil {
		return err
	}
	res, err := c.Do(e.ctx, wire.OpLContains, a[0], e.arg(a[1]))
	if err != nil {
		return err
	}
	if err := printValue(e.stdout, res); err != nil {
		return err
	}
	if string(res) == "\xf4" {
		return errNotIn
	}
	return nil
}

// errNotIn makes contains exit with status 1 when the value is absent; it
// prints nothing more (false is already on stdout).
var errNotIn = errors.New("the value is not in the list")

// printItems prints each item of a CBOR array on its own line and says
// how many there were.
func printItems(e *env, raw []byte) (int, error) {
	items, err := wire.SplitArray(raw)
	if err != nil {
		return 0, err
	}
	for _, it := range items {
		if err := printValue(e.stdout, it); err != nil {
			return 0, err
		}
	}
	return len(items), nil
}

func runKeys(e *env, a []string) error {
	return scanDict(e, a[0], func(kv []wire.Raw) error { return printValue(e.stdout, kv[0]) })
}

func runDump(e *env, a []string) error {
	err := scanDict(e, a[0], func(kv []wire.Raw) error {
		return printValue(e.stdout, append(append(wire.AppendArrayHeader(nil, 2), kv[0]...), kv[1]...))
	})
	if !errors.Is(err, libcyberdb.ErrWrongKind) {
		return err
	}
	// A list: page through it with lrange.
	c, err := e.Client()
	if err != nil {
		return err
	}
	for start := 0; ; start += scanPage {
		res, err := c.Do(e.ctx, wire.OpLRange, a[0], start, scanPage)
		if err != nil {
			return err
		}
		n, err := printItems(e, res)
		if err != nil {
			return err
		}
		if n < scanPage {
			return nil
		}
	}
}

// scanDict pages through a dict with dscan, calling fn with each [key, value].
func scanDict(e *env, table string, fn func(kv []wire.Raw) error) error {
	c, err := e.Client()
	if err != nil {
		return err
	}
	var cursor uint64
	for {
		res, err := c.Do(e.ctx, wire.OpDScan, table, cursor, scanPage)
		if err != nil {
			return err
		}
		var page struct {
			_     struct{} `cbor:",toarray"`
			Next  uint64
			Items []wire.Raw
		}
		if err := wire.Unmarshal(res, &page); err != nil {
			return fmt.Errorf("malformed dscan reply %s: %w", wire.Diagnose(res), err)
		}
		for _, it := range page.Items {
			kv, err := wire.SplitArray(it)
			if err != nil || len(kv) != 2 {
				return fmt.Errorf("malformed dscan entry %s", wire.Diagnose(it))
			}
			if err := fn(kv); err != nil {
				return err
			}
		}
		if page.Next == 0 {
			return nil
		}
		cursor = page.Next
	}
}
