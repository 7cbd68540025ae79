package main

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cyberdb/cyberdb/libcyberdb"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// scanPage is how many entries keys, items, values and dump read per
// round trip.
const scanPage = 500

// The command table: one entry per command, in the order --help lists
// them within their group. Adding a command is adding an entry here (or,
// from a file of its own, a register call in an init function) and its
// run function; TestEveryOpHasACommand fails until every protocol op has
// one.
func init() {
	for _, c := range []*command{
		// The server.
		{name: "ping", group: groupServer, args: "[PAYLOAD]", summary: "check that the daemon answers (prints \"PONG\", or PAYLOAD echoed)", max: 1,
			ops:  []wire.Op{wire.OpPing},
			help: "Example:\n  cyberdb ping", run: runPing},
		{name: "info", group: groupServer, summary: "print the daemon's status: version, uptime, connections, tables, memory, op counts", max: 0,
			ops:  []wire.Op{wire.OpInfo},
			help: "The result is one JSON object (PROTOCOL.md, op info), its keys in alphabetical order.\n\nExample:\n  cyberdb info", run: runInfo},
		{name: "save", group: groupServer, summary: "make the daemon write a durable snapshot of every table now", max: 0,
			ops:  []wire.Op{wire.OpSave},
			help: "Fails (exit 3) when the daemon runs without a data directory.\n\nExample:\n  cyberdb save", run: simple(wire.OpSave)},

		// Tables of either kind.
		{name: "tables", group: groupTables, summary: "list the tables, one per line: {\"name\":...,\"kind\":...,\"len\":...}", max: 0,
			ops:  []wire.Op{wire.OpTables},
			help: "Example:\n  cyberdb tables\n  {\"name\":\"centre\",\"kind\":\"dict\",\"len\":1}", run: runTables},
		{name: "create", group: groupTables, args: "dict|list NAME [JSON|-] [--if-not-exists] [--ttl TTL] [--evict lru] [--max-len N]", summary: "create a table, optionally with content", min: 2, max: 10,
			ops: []wire.Op{wire.OpCreateDict, wire.OpCreateList},
			help: `The content of a dict is a JSON object or an array of [key, value] pairs
(whose order becomes the insertion order); the content of a list is a JSON
array; "-" reads it from stdin. Fails (exit 3) when the name is taken,
unless --if-not-exists is given: then a table of that kind that is already
there is left as it is (its content is not replaced) and the command
succeeds, so every script or worker can run it. Names starting with
"` + reservedPrefix + `" are reserved for cyberdb's own tools (cyberdb bench).

A dict's options: --ttl TTL gives every entry a deadline TTL after each
write that names none (a session table: 30s, 10m, 1h, or seconds);
--evict lru makes a cache table, which loses its least recently used
entries instead of refusing writes over the daemon's --max-memory;
--max-len N a cache table of at most N entries.

Examples:
  cyberdb create dict centre
  cyberdb create dict users '{"bob": {"age": 42}}'
  cyberdb create list queue '[1, 2, 3]'
  cyberdb create dict hits --if-not-exists
  cyberdb create list jobs - < jobs.json
  cyberdb create dict sessions --ttl 30m
  cyberdb create dict pages --evict lru --max-len 10000`, run: runCreate},
		{name: "exists", group: groupTables, args: "NAME", summary: "print whether a table exists (true or false)", min: 1, max: 1,
			ops:  []wire.Op{wire.OpExists},
			help: "Exit status 0 when it does (true), 1 when it does not (false).\n\nExample:\n  cyberdb exists centre", run: runExists},
		{name: "drop", group: groupTables, args: "NAME", summary: "delete a table", min: 1, max: 1,
			ops:  []wire.Op{wire.OpDrop},
			help: "Exit status 1 when there is no such table.\n\nExample:\n  cyberdb drop centre", run: runDrop},
		{name: "len", group: groupTables, args: "TABLE", summary: "print the number of entries of a dict or values of a list", min: 1, max: 1,
			ops:  []wire.Op{wire.OpLen, wire.OpDLen, wire.OpLLen},
			help: "Example:\n  cyberdb len centre", run: func(e *env, a []string) error { return call(e, wire.OpLen, a[0]) }},
		{name: "dump", group: groupTables, args: "TABLE", summary: "print a whole table, one entry per line: [key,value] for a dict, values for a list", min: 1, max: 1,
			help: "Reads the table in pages, however big it is.\n\nExamples:\n  cyberdb dump centre\n  [\"content\",\"Hello CyberDB!\"]\n  cyberdb dump queue", run: runDump},
		{name: "clear", group: groupTables, args: "TABLE", summary: "remove every entry of a dict or value of a list", min: 1, max: 1,
			ops:  []wire.Op{wire.OpDClear, wire.OpLClear},
			help: "The table stays, empty (drop deletes it).\n\nExample:\n  cyberdb clear queue", run: runClear},
		{name: "batch", group: groupTables, args: "JSON|-", summary: "run operations atomically, all or none, and print their results as a JSON array", min: 1, max: 1,
			ops: []wire.Op{wire.OpBatch, wire.OpGuard},
			help: `JSON is an array of operations, each an array of a protocol op's name (as
in PROTOCOL.md section 6: dset, dincr, lappend, create_dict, ...) and its
arguments, as JSON values; "-" reads them from stdin, either as one such
array or as JSON lines: one operation per line (blank lines and lines
starting with # are skipped). Either all of them are applied, at one
instant, or none is; a failure names the operation ("batch op 1 (dincr):
...").

Guards make the batch conditional (PROTOCOL.md 6.7): ["guard", TABLE, KIND,
ARG...] with KIND "exists", "len" N, "eq" KEY VALUE, "absent" KEY, or "cas"
KEY NEW EXPECTED (a compare-and-swap that fails the batch when it does not
set). If one does not hold, nothing is applied, the message names it, and
the exit status is 1.

Examples:
  cyberdb batch '[["dset", "users", "bob", 1], ["lappend", "log", "bob joined"]]'
  [null,1]
  cyberdb batch - < ops.json
  printf '%s\n' '["guard", "acct", "eq", "alice", 30]' '["dset", "acct", "alice", 20]' \
      '["dincr", "acct", "bob", 10]' | cyberdb batch -`, run: runBatch},

		// Dict tables.
		{name: "get", group: groupDict, args: "TABLE KEY [DEFAULT]", summary: "print the value at KEY of a dict (or DEFAULT when it is absent)", min: 2, max: 3,
			ops:  []wire.Op{wire.OpDGet},
			help: "KEY is read as JSON when it parses as JSON, else as text; with -S always as text.\nExit status 1 when the key (without DEFAULT) or the table is missing.\n\nExamples:\n  cyberdb get centre content\n  cyberdb get counts 42         # the integer key 42\n  cyberdb get counts '\"42\"'     # the text key \"42\"\n  cyberdb -S get counts 42      # the text key \"42\" too\n  cyberdb get counts visits 0   # 0 when there is no such key",
			run:  dictOp(wire.OpDGet, 1, 1)},
		{name: "set", group: groupDict, args: "TABLE KEY VALUE|- [--ttl TTL] [--keepttl] [--nx|--xx]", summary: "set KEY of a dict to VALUE", min: 3, max: 6,
			ops:  []wire.Op{wire.OpDSet},
			help: "KEY and VALUE are read as JSON when they parse as JSON, else as text (with a warning\nwhen VALUE looks like broken JSON); with -S both are always text. VALUE \"-\" reads the\nvalue from stdin, all of it, newlines included (bytes that are not UTF-8 make a byte string).\n\n--ttl TTL gives the entry a deadline (30s, 10m, 1h, 250ms, or seconds); without it the\nentry gets the table's default TTL or none, losing the deadline it had unless --keepttl.\n--nx sets only an absent key, --xx only a present one: then true or false is printed\n(false: exit status 1).\n\nExamples:\n  cyberdb set centre content \"Hello CyberDB!\"\n  cyberdb set users bob '{\"age\": 42, \"tags\": [\"a\"]}'\n  cyberdb -S set users 42 carol   # the text key \"42\", the text \"carol\"\n  cyberdb set users bob - < bob.json\n  printf %s \"$NOTE\" | cyberdb -S set notes today -\n  cyberdb set sessions abc123 '{\"user\": 7}' --ttl 30m\n  cyberdb set locks deploy alice --nx --ttl 30s   # a lease",
			run:  runSet},
		{name: "del", group: groupDict, args: "TABLE KEY", summary: "delete KEY from a dict", min: 2, max: 2,
			ops:  []wire.Op{wire.OpDDel},
			help: "Exit status 1 when the key is missing.\n\nExample:\n  cyberdb del centre content", run: dictOp(wire.OpDDel, 1, 0)},
		{name: "has", group: groupDict, args: "TABLE KEY", summary: "print whether KEY is in a dict (true or false)", min: 2, max: 2,
			ops:  []wire.Op{wire.OpDHas},
			help: "Exit status 0 when it is (true), 1 when it is not (false).\n\nExample:\n  cyberdb has centre content", run: runBool(wire.OpDHas)},
		{name: "keys", group: groupDict, args: "TABLE", summary: "print the keys of a dict, one per line, in insertion order", min: 1, max: 1,
			ops:  []wire.Op{wire.OpDKeys},
			help: "Reads the dict in pages, however big it is.\n\nExample:\n  cyberdb keys centre", run: runKeys},
		{name: "values", group: groupDict, args: "TABLE", summary: "print the values of a dict (or a list), one per line, in order", min: 1, max: 1,
			ops:  []wire.Op{wire.OpDValues},
			help: "Reads the table in pages, however big it is.\n\nExample:\n  cyberdb values centre", run: runValues},
		{name: "items", group: groupDict, args: "TABLE", summary: "print the entries of a dict, one [key,value] per line, in insertion order", min: 1, max: 1,
			ops:  []wire.Op{wire.OpDItems},
			help: "Reads the dict in pages, however big it is.\n\nExample:\n  cyberdb items centre\n  [\"content\",\"Hello CyberDB!\"]", run: runItems},
		{name: "todict", group: groupDict, args: "TABLE", summary: "print a whole dict as one JSON object, in insertion order", min: 1, max: 1,
			ops:  []wire.Op{wire.OpDToDict},
			help: "One reply: for big dicts use items, which reads in pages. A dict with keys\nthat are not text prints in CBOR diagnostic notation.\n\nExample:\n  cyberdb todict centre\n  {\"content\":\"Hello CyberDB!\"}", run: func(e *env, a []string) error { return call(e, wire.OpDToDict, a[0]) }},
		{name: "popitem", group: groupDict, args: "TABLE", summary: "remove the last inserted entry of a dict and print it as [key,value]", min: 1, max: 1,
			ops:  []wire.Op{wire.OpDPopItem},
			help: "Exit status 1 when the dict is empty.\n\nExample:\n  cyberdb popitem centre", run: func(e *env, a []string) error { return call(e, wire.OpDPopItem, a[0]) }},
		{name: "setdefault", group: groupDict, args: "TABLE KEY [DEFAULT|-]", summary: "set KEY to DEFAULT (null) unless present; print the value now at KEY", min: 2, max: 3,
			ops:  []wire.Op{wire.OpDSetDefault},
			help: "Python's d.setdefault(k, default).\n\nExample:\n  cyberdb setdefault config retries 3", run: dictOp(wire.OpDSetDefault, 1, 1)},
		{name: "update", group: groupDict, args: "TABLE JSON|-", summary: "set every entry of a JSON object (or array of [key, value] pairs) in a dict", min: 2, max: 2,
			ops:  []wire.Op{wire.OpDUpdate},
			help: "Python's d.update(content); atomic: all of it or, on error, none. \"-\" reads the\nJSON from stdin.\n\nExamples:\n  cyberdb update users '{\"bob\": 1, \"carol\": 2}'\n  cyberdb update users '[[1, \"one\"], [2, \"two\"]]'   # non-text keys",
			run:  runUpdate},
		{name: "incr", group: groupDict, args: "TABLE KEY [N]", summary: "add N (default 1) to the number at KEY of a dict and print the result", min: 2, max: 3,
			ops:  []wire.Op{wire.OpDIncr},
			help: "A missing key counts as 0. Exit status 3 (type_error) when the value is not a number.\n\nExamples:\n  cyberdb incr counts visits\n  cyberdb incr counts visits -5\n  cyberdb incr stats ratio 0.5",
			run:  runIncr},
		{name: "cas", group: groupDict, args: "TABLE KEY NEW [EXPECTED]", summary: "compare and swap: set KEY to NEW only if its value is EXPECTED (or it is absent); print true or false", min: 3, max: 4,
			ops: []wire.Op{wire.OpDCAS},
			help: `Without EXPECTED, KEY is set only when it is absent. Exit status 0 when it
was set (true), 1 when it was not (false), so scripts can retry.

Examples:
  cyberdb cas locks deploy alice           # take the lock if nobody has it
  cyberdb cas config version 8 7           # 7 -> 8, unless someone else changed it`, run: runCAS},
		{name: "scan", group: groupDict, args: "TABLE [CURSOR [COUNT]]", summary: "print one page of a dict: the next cursor, then up to COUNT [key,value] lines", min: 1, max: 3,
			ops: []wire.Op{wire.OpDScan},
			help: `Start with CURSOR 0 (the default); the first line printed is the cursor
of the next page, 0 when the scan is complete. COUNT defaults to 500 (the
daemon returns at most 10000 per page). keys, items and dump page through
a whole dict by themselves.

Example:
  cyberdb scan users 0 100`, run: runScan},

		// List tables.
		{name: "at", group: groupList, args: "TABLE INDEX", summary: "print the value at INDEX of a list (negative counts from the end)", min: 2, max: 2,
			ops:  []wire.Op{wire.OpLGet},
			help: "Exit status 1 when the index is outside the list.\n\nExamples:\n  cyberdb at queue 0\n  cyberdb at queue -1", run: indexOp(wire.OpLGet, false)},
		{name: "setat", group: groupList, args: "TABLE INDEX VALUE|-", summary: "set the value at INDEX of a list (l[i] = v)", min: 3, max: 3,
			ops:  []wire.Op{wire.OpLSet},
			help: "Exit status 1 when the index is outside the list.\n\nExample:\n  cyberdb setat queue -1 done", run: indexOp(wire.OpLSet, true)},
		{name: "delat", group: groupList, args: "TABLE INDEX", summary: "delete the value at INDEX of a list (del l[i])", min: 2, max: 2,
			ops:  []wire.Op{wire.OpLDel},
			help: "Exit status 1 when the index is outside the list.\n\nExample:\n  cyberdb delat queue 0", run: indexOp(wire.OpLDel, false)},
		{name: "slice", group: groupList, args: "TABLE START STOP [STEP]", summary: "print list[START:STOP:STEP], one value per line", min: 3, max: 4,
			ops:  []wire.Op{wire.OpLSlice},
			help: "START, STOP and STEP may be negative, or null (or None, or empty) for Python's None.\n\nExamples:\n  cyberdb slice queue 0 10\n  cyberdb slice queue -3 null     # the last three\n  cyberdb slice queue null null -1   # reversed",
			run:  runSlice},
		{name: "setslice", group: groupList, args: "TABLE START STOP [STEP] JSON_ARRAY|-", summary: "assign list[START:STOP:STEP] = JSON_ARRAY, as Python does", min: 4, max: 5,
			ops: []wire.Op{wire.OpLSetSlice},
			help: `START, STOP and STEP are integers, negative ones counting from the end, or
null (or None, or empty) for Python's None. Without STEP (or with STEP 1) the
slice is replaced and the list grows or shrinks; with any other STEP the
array must have exactly as many values as the slice selects (else exit 3,
bad_request). JSON_ARRAY is always JSON, even with -S; "-" reads it from stdin.

Examples:
  cyberdb setslice queue 1 3 '["a"]'          # queue[1:3] = ["a"]
  cyberdb setslice queue null 0 '[0, 1]'      # queue[:0] = [0, 1]: prepend
  cyberdb setslice queue null null -1 '[3, 2, 1]'   # queue[::-1] = [3, 2, 1]
  cyberdb setslice queue null null '[]'       # queue[:] = []: clear`, run: runSetSlice},
		{name: "delslice", group: groupList, args: "TABLE START STOP [STEP]", summary: "delete list[START:STOP:STEP], as Python's del does", min: 3, max: 4,
			ops:  []wire.Op{wire.OpLDelSlice},
			help: "Bounds as for slice.\n\nExamples:\n  cyberdb delslice queue 0 2         # del queue[0:2]\n  cyberdb delslice queue null null 2   # every other value", run: runDelSlice},
		{name: "append", group: groupList, args: "TABLE VALUE...", summary: "append values to a list and print its new length", min: 2, max: -1,
			ops:  []wire.Op{wire.OpLAppend},
			help: "One VALUE may be \"-\": read from stdin.\n\nExamples:\n  cyberdb append queue job1 job2\n  cyberdb append queue '{\"id\": 7}'", run: runAppend},
		{name: "extend", group: groupList, args: "TABLE JSON_ARRAY|-", summary: "append every value of a JSON array to a list and print its new length", min: 2, max: 2,
			ops:  []wire.Op{wire.OpLExtend},
			help: "\"-\" reads the array from stdin.\n\nExamples:\n  cyberdb extend queue '[\"job3\", \"job4\"]'\n  cyberdb extend queue - < jobs.json", run: runExtend},
		{name: "insert", group: groupList, args: "TABLE INDEX VALUE|-", summary: "insert VALUE before INDEX of a list (clamped, as Python's insert)", min: 3, max: 3,
			ops:  []wire.Op{wire.OpLInsert},
			help: "Examples:\n  cyberdb insert queue 0 urgent   # at the front\n  cyberdb insert queue -1 x       # before the last", run: indexOp(wire.OpLInsert, true)},
		{name: "pop", group: groupList, args: "TABLE [INDEX | KEY [DEFAULT]] | TABLE... [--left] --block DURATION", summary: "remove and print the last value of a list (or the one at INDEX), or KEY of a dict; or wait for one", min: 1, max: -1,
			ops: []wire.Op{wire.OpLPop, wire.OpDPop, wire.OpLBPop, wire.OpCancel},
			help: `On a list, Python's l.pop([i]); on a dict, d.pop(k[, default]). Exit status
1 when the list is empty, the index is outside it, or the key is absent
(without DEFAULT). --left pops the first value instead (popleft).

With --block DURATION it waits up to DURATION (0: for ever; a bare number
is seconds) for one of the lists to have a value, trying them in the order
given (Redis's BRPOP, or BLPOP with --left): it prints the value, or
["list", value] when several lists are named. Waiters are served first come,
first served. Exit status 1 when the time-out ends with nothing. Ctrl-C
stops the wait: the daemon cancels the request, and the lists keep their
values.

Examples:
  cyberdb pop queue
  cyberdb pop queue 0
  cyberdb pop queue --left
  cyberdb pop jobs --left --block 5s
  cyberdb pop urgent normal --left --block 0
  cyberdb pop sessions abc123
  cyberdb pop sessions abc123 null   # null when there is no such key`, run: runPopCmd},
		{name: "remove", group: groupList, args: "TABLE VALUE", summary: "remove the first occurrence of VALUE from a list", min: 2, max: 2,
			ops:  []wire.Op{wire.OpLRemove},
			help: "Exit status 1 when the value is not in the list.\n\nExample:\n  cyberdb remove queue job1", run: func(e *env, a []string) error { return call(e, wire.OpLRemove, a[0], e.arg(a[1])) }},
		{name: "count", group: groupList, args: "TABLE VALUE", summary: "print how many times VALUE is in a list", min: 2, max: 2,
			ops:  []wire.Op{wire.OpLCount},
			help: "Example:\n  cyberdb count queue job1", run: func(e *env, a []string) error { return call(e, wire.OpLCount, a[0], e.arg(a[1])) }},
		{name: "index", group: groupList, args: "TABLE VALUE [START [STOP]]", summary: "print the index of the first VALUE in a list (within START:STOP)", min: 2, max: 4,
			ops:  []wire.Op{wire.OpLIndex},
			help: "Exit status 1 when the value is not there.\n\nExamples:\n  cyberdb index queue job1\n  cyberdb index queue job1 5", run: runIndex},
		{name: "contains", group: groupList, args: "TABLE VALUE", summary: "print whether VALUE is in a list (or, for a dict, is a key): true or false", min: 2, max: 2,
			ops:  []wire.Op{wire.OpLContains},
			help: "Exit status 0 when it is (true), 1 when it is not (false), so scripts can test it.\n\nExamples:\n  cyberdb contains queue job1\n  cyberdb contains queue '{\"id\": 7}'\n  cyberdb -S contains queue 42   # the text \"42\"", run: runContains},
		{name: "reverse", group: groupList, args: "TABLE", summary: "reverse a list in place", min: 1, max: 1,
			ops:  []wire.Op{wire.OpLReverse},
			help: "Example:\n  cyberdb reverse queue", run: func(e *env, a []string) error { return call(e, wire.OpLReverse, a[0]) }},
		{name: "sort", group: groupList, args: "TABLE [--reverse]", summary: "sort a list in place, stably, as Python does", min: 1, max: 2,
			ops:  []wire.Op{wire.OpLSort},
			help: "Numbers sort with numbers, text with text; a list mixing them fails (exit 3,\ntype_error) and is left as it was.\n\nExamples:\n  cyberdb sort scores\n  cyberdb sort scores --reverse", run: runSort},
		{name: "tolist", group: groupList, args: "TABLE", summary: "print a whole list as one JSON array", min: 1, max: 1,
			ops:  []wire.Op{wire.OpLToList},
			help: "One reply: for big lists use dump or range, which read in pages.\n\nExample:\n  cyberdb tolist queue\n  [\"job1\",\"job2\"]", run: func(e *env, a []string) error { return call(e, wire.OpLToList, a[0]) }},
		{name: "range", group: groupList, args: "TABLE START COUNT", summary: "print up to COUNT values of a list from index START, one per line", min: 3, max: 3,
			ops:  []wire.Op{wire.OpLRange},
			help: "For paging: START 0, COUNT, 2*COUNT, ... until fewer than COUNT come back.\n\nExample:\n  cyberdb range queue 100 50", run: runRange},
	} {
		register(c)
	}
}

// call runs op and prints its result: nothing for the ops whose result is
// always null (set, del, create, ...); a value, null included, otherwise.
func call(e *env, op wire.Op, args ...any) error {
	c, err := e.Client()
	if err != nil {
		return err
	}
	res, err := c.Do(e.ctx, op, args...)
	if err != nil {
		return err
	}
	if res.IsNull() && nothingOps[op] {
		return nil
	}
	return e.print(res)
}

// nothingOps answer null whenever they succeed (PROTOCOL.md section 6).
var nothingOps = map[wire.Op]bool{
	wire.OpSave: true, wire.OpCreateDict: true, wire.OpCreateList: true, wire.OpDrop: true,
	wire.OpDSet: true, wire.OpDDel: true, wire.OpDUpdate: true, wire.OpDClear: true,
	wire.OpLSet: true, wire.OpLDel: true, wire.OpLDelSlice: true, wire.OpLInsert: true, wire.OpLRemove: true,
	wire.OpLReverse: true, wire.OpLSort: true, wire.OpLClear: true, wire.OpLSetSlice: true, wire.OpExpire: true,
	wire.OpLRotate: true,
}

// runInfo prints info's object with its keys (and those of the objects
// in it) in alphabetical order: the daemon sends them in CBOR's canonical
// order, shortest first, which reads as no order at all.
func runInfo(e *env, _ []string) error {
	c, err := e.Client()
	if err != nil {
		return err
	}
	res, err := c.Do(e.ctx, wire.OpInfo)
	if err != nil {
		return err
	}
	return e.print(sortMaps(res))
}

// sortMaps returns raw with the keys of every map whose keys are all text
// in alphabetical order; raw as it is when it holds no such map, or when
// it cannot be read.
func sortMaps(raw []byte) []byte {
	switch {
	case len(raw) == 0:
		return raw
	case raw[0]>>5 == 4:
		items, err := wire.SplitArray(raw)
		if err != nil {
			return raw
		}
		out := wire.AppendArrayHeader(nil, len(items))
		for _, it := range items {
			out = append(out, sortMaps(it)...)
		}
		return out
	case raw[0]>>5 != 5:
		return raw
	}
	type pair struct {
		key      string
		k, value []byte
	}
	var pairs []pair
	err := wire.Pairs(raw, func(k, v wire.Raw) error {
		key, ok := wire.ItemText(k)
		if !ok {
			return errStop
		}
		pairs = append(pairs, pair{key, k, sortMaps(v)})
		return nil
	})
	if err != nil {
		return raw
	}
	slices.SortFunc(pairs, func(a, b pair) int { return strings.Compare(a.key, b.key) })
	out := wire.AppendMapHeader(nil, len(pairs))
	for _, p := range pairs {
		out = append(append(out, p.k...), p.value...)
	}
	return out
}

func simple(op wire.Op) func(*env, []string) error {
	return func(e *env, _ []string) error { return call(e, op) }
}

func runPing(e *env, a []string) error {
	if len(a) == 1 {
		return call(e, wire.OpPing, e.arg(a[0]))
	}
	return call(e, wire.OpPing)
}

// dictOp runs op on TABLE with keys KEY arguments (JSON or text) and then
// up to values VALUE arguments (which may be "-").
func dictOp(op wire.Op, keys, values int) func(*env, []string) error {
	return func(e *env, a []string) error {
		args := []any{a[0]}
		for i, s := range a[1:] {
			if i < keys {
				args = append(args, e.arg(s))
				continue
			}
			v, err := e.value(s)
			if err != nil {
				return err
			}
			args = append(args, v)
		}
		return call(e, op, args...)
	}
}

// runBool runs an op whose result is a bool, printed; false exits 1.
func runBool(op wire.Op) func(*env, []string) error {
	return func(e *env, a []string) error {
		args := []any{a[0]}
		for _, s := range a[1:] {
			args = append(args, e.arg(s))
		}
		return boolCall(e, op, args...)
	}
}

func boolCall(e *env, op wire.Op, args ...any) error {
	c, err := e.Client()
	if err != nil {
		return err
	}
	res, err := c.Do(e.ctx, op, args...)
	if err != nil {
		return err
	}
	if err := e.print(res); err != nil {
		return err
	}
	if bytes.Equal(res, []byte{0xf4}) {
		return errFalse
	}
	return nil
}

// errFalse makes a command that printed false exit with status 1; it
// prints nothing more.
var errFalse = errors.New("false")

// eitherKind runs the command's dict form and, on a list, its list form
// (or the reverse). A wrong_kind failure changes nothing, so trying the
// other form is safe; it costs a round trip for the second kind only.
func eitherKind(first, second func() error) error {
	err := first()
	if errors.Is(err, libcyberdb.ErrWrongKind) {
		return second()
	}
	return err
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

// reservedPrefix starts the names of the tables cyberdb's own tools make
// (cyberdb bench): create refuses them, so no user's table is one.
const reservedPrefix = "_cyberdb."

func runCreate(e *env, a []string) error {
	rest, flags, err := cutFlags(a, []string{"--ttl", "--evict", "--max-len"}, []string{"--if-not-exists"})
	if err != nil {
		return err
	}
	_, ifNotExists := flags["--if-not-exists"]
	if len(rest) < 2 || len(rest) > 3 {
		return usagef("want dict|list NAME [JSON]")
	}
	opts, err := createOptions(flags)
	if err != nil {
		return err
	}
	if len(opts) > 0 && rest[0] == "list" {
		return usagef("--ttl, --evict and --max-len are options of dict tables (a table's own deadline: cyberdb expire TABLE TTL)")
	}
	kind, name := rest[0], rest[1]
	if kind != "dict" && kind != "list" {
		return usagef("the kind is dict or list, not %q", kind)
	}
	if strings.HasPrefix(name, reservedPrefix) {
		return usagef("names starting with %q are reserved for cyberdb's own tools; pick another name", reservedPrefix)
	}
	var content any
	if len(rest) == 3 {
		v, err := e.jsonValue("content", rest[2])
		if err != nil {
			return err
		}
		content = v
	}
	c, err := e.Client()
	if err != nil {
		return err
	}
	if ifNotExists {
		opts = append(opts, libcyberdb.IfNotExists())
	}
	if kind == "dict" {
		return c.CreateDict(e.ctx, name, content, opts...)
	}
	return c.CreateList(e.ctx, name, content, opts...)
}

func runExists(e *env, a []string) error { return boolCall(e, wire.OpExists, a[0]) }

func runDrop(e *env, a []string) error { return call(e, wire.OpDrop, a[0]) }

func runClear(e *env, a []string) error {
	return eitherKind(func() error { return call(e, wire.OpDClear, a[0]) }, func() error { return call(e, wire.OpLClear, a[0]) })
}

func runBatch(e *env, a []string) error {
	items, err := batchItems(e, a[0])
	if err != nil {
		return err
	}
	ops := make([]any, len(items))
	for i, it := range items {
		op, ok := it.([]any)
		if !ok || len(op) == 0 {
			return usagef("operation %d is not an array [\"opname\", arg...]", i)
		}
		name, ok := op[0].(string)
		if !ok {
			return usagef("operation %d does not start with an op name such as \"dset\"", i)
		}
		code, ok := opsByName[name]
		if !ok {
			return usagef("operation %d: no op is named %q (PROTOCOL.md section 6 lists them)", i, name)
		}
		ops[i] = append([]any{uint64(code)}, op[1:]...)
	}
	return call(e, wire.OpBatch, ops)
}

// opsByName maps the protocol's op names to ops.
var opsByName = func() map[string]wire.Op {
	m := map[string]wire.Op{}
	for _, op := range wire.Ops() {
		m[op.String()] = op
	}
	return m
}()

func runIncr(e *env, a []string) error {
	args := []any{a[0], e.arg(a[1])}
	if len(a) == 3 {
		n, _ := parseJSON(a[2])
		switch n.(type) {
		case int64, uint64, float64:
		default:
			if _, big := n.(interface{ Sign() int }); !big {
				return usagef("N %q is not a number", a[2])
			}
		}
		args = append(args, n)
	}
	return call(e, wire.OpDIncr, args...)
}

func runCAS(e *env, a []string) error {
	args, err := e.values([]any{a[0], e.arg(a[1])}, a[2:])
	if err != nil {
		return err
	}
	return boolCall(e, wire.OpDCAS, args...)
}

func runUpdate(e *env, a []string) error {
	v, err := e.jsonValue("the content", a[1])
	if err != nil {
		return err
	}
	switch v.(type) {
	case map[string]any, []any:
	default:
		return usagef("want a JSON object or an array of [key, value] pairs")
	}
	return call(e, wire.OpDUpdate, a[0], v)
}

// indexOp runs op on TABLE INDEX, and VALUE when withValue.
func indexOp(op wire.Op, withValue bool) func(*env, []string) error {
	return func(e *env, a []string) error {
		i, err := parseInt("INDEX", a[1])
		if err != nil {
			return err
		}
		args := []any{a[0], i}
		if withValue {
			v, err := e.value(a[2])
			if err != nil {
				return err
			}
			args = append(args, v)
		}
		return call(e, op, args...)
	}
}

// runPop is a list's pop, or a dict's: on a list when the argument is an
// index (or absent), on a dict otherwise, and on the other kind when the
// daemon says the table is of it.
func runPop(e *env, a []string) error {
	dictPop := func() error {
		if len(a) == 1 {
			return usagef("%q is a dict: give the KEY to remove (or use popitem for the last entry)", a[0])
		}
		args := []any{a[0], e.arg(a[1])}
		if len(a) == 3 {
			v, err := e.value(a[2])
			if err != nil {
				return err
			}
			args = append(args, v)
		}
		return call(e, wire.OpDPop, args...)
	}
	if len(a) == 3 {
		return dictPop()
	}
	listPop := func() error { return call(e, wire.OpLPop, a[0]) }
	if len(a) == 2 {
		i, err := strconv.Atoi(a[1])
		if err != nil {
			return dictPop() // not an index: a key
		}
		listPop = func() error { return call(e, wire.OpLPop, a[0], i) }
	}
	return eitherKind(listPop, dictPop)
}

func runIndex(e *env, a []string) error {
	args := []any{a[0], e.arg(a[1])}
	for i, name := range []string{"START", "STOP"}[:len(a)-2] {
		b, err := bound(name, a[2+i])
		if err != nil {
			return err
		}
		args = append(args, b)
	}
	return call(e, wire.OpLIndex, args...)
}

func runSort(e *env, a []string) error {
	if len(a) == 2 {
		if a[1] != "--reverse" && a[1] != "-r" {
			return usagef("unexpected %q; the option is --reverse", a[1])
		}
		return call(e, wire.OpLSort, a[0], true)
	}
	return call(e, wire.OpLSort, a[0])
}

func runRange(e *env, a []string) error {
	start, err := parseInt("START", a[1])
	if err != nil {
		return err
	}
	count, err := parseInt("COUNT", a[2])
	if err != nil {
		return err
	}
	return items(e, wire.OpLRange, a[0], start, count)
}

func runExtend(e *env, a []string) error {
	v, err := e.jsonValue("JSON_ARRAY", a[1])
	if err != nil {
		return err
	}
	if _, ok := v.([]any); !ok {
		return usagef("the values are not a JSON array such as '[1, \"two\"]'")
	}
	return call(e, wire.OpLExtend, a[0], v)
}

// bound reads a slice bound: an integer, or null, None or empty for None.
func bound(name, s string) (any, error) {
	if s == "" || s == "null" || s == "None" {
		return nil, nil
	}
	return parseInt(name, s)
}

// bounds reads START STOP [STEP].
func bounds(a []string) ([]any, error) {
	var out []any
	for i, name := range []string{"START", "STOP", "STEP"}[:len(a)] {
		b, err := bound(name, a[i])
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func runSlice(e *env, a []string) error {
	b, err := bounds(a[1:])
	if err != nil {
		return err
	}
	return items(e, wire.OpLSlice, append([]any{a[0]}, b...)...)
}

func runDelSlice(e *env, a []string) error {
	b, err := bounds(a[1:])
	if err != nil {
		return err
	}
	return call(e, wire.OpLDelSlice, append([]any{a[0]}, b...)...)
}

// items runs op and prints each item of its array result on a line.
func items(e *env, op wire.Op, args ...any) error {
	c, err := e.Client()
	if err != nil {
		return err
	}
	res, err := c.Do(e.ctx, op, args...)
	if err != nil {
		return err
	}
	_, err = printItems(e, res)
	return err
}

func runSetSlice(e *env, a []string) error {
	b, err := bounds(a[1 : len(a)-1])
	if err != nil {
		return err
	}
	for len(b) < 3 {
		b = append(b, nil)
	}
	last := a[len(a)-1]
	vals, err := e.jsonValue("the values", last)
	if _, isArray := vals.([]any); err != nil || !isArray {
		if last == "-" && err != nil {
			return err
		}
		return usagef("the values %s are not a JSON array such as '[1, \"two\"]'", shortArg(last))
	}
	return call(e, wire.OpLSetSlice, a[0], b[0], b[1], b[2], vals)
}

func runContains(e *env, a []string) error {
	return eitherKind(func() error { return boolCall(e, wire.OpLContains, a[0], e.arg(a[1])) },
		func() error { return boolCall(e, wire.OpDHas, a[0], e.arg(a[1])) })
}

// printItems prints each item of a CBOR array on its own line and says
// how many there were.
func printItems(e *env, raw []byte) (int, error) {
	items, err := wire.SplitArray(raw)
	if err != nil {
		return 0, err
	}
	for _, it := range items {
		if err := e.print(it); err != nil {
			return 0, err
		}
	}
	return len(items), nil
}

func runKeys(e *env, a []string) error {
	return scanDict(e, a[0], func(kv []wire.Raw) error { return e.print(kv[0]) })
}

func runItems(e *env, a []string) error {
	return scanDict(e, a[0], func(kv []wire.Raw) error { return e.print(pair(kv)) })
}

func pair(kv []wire.Raw) []byte {
	return append(append(wire.AppendArrayHeader(nil, 2), kv[0]...), kv[1]...)
}

func runValues(e *env, a []string) error {
	return eitherKind(func() error { return scanDict(e, a[0], func(kv []wire.Raw) error { return e.print(kv[1]) }) },
		func() error { return scanList(e, a[0]) })
}

func runDump(e *env, a []string) error {
	return eitherKind(func() error { return runItems(e, a) }, func() error { return scanList(e, a[0]) })
}

// scanList prints a list one value per line, paging with lrange.
func scanList(e *env, table string) error {
	c, err := e.Client()
	if err != nil {
		return err
	}
	for start := 0; ; start += scanPage {
		res, err := c.Do(e.ctx, wire.OpLRange, table, start, scanPage)
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

// dscanPage is one reply of dscan.
type dscanPage struct {
	_     struct{} `cbor:",toarray"`
	Next  uint64
	Items []wire.Raw
}

func dscan(e *env, table string, cursor uint64, count int) (*dscanPage, error) {
	c, err := e.Client()
	if err != nil {
		return nil, err
	}
	res, err := c.Do(e.ctx, wire.OpDScan, table, cursor, count)
	if err != nil {
		return nil, err
	}
	var page dscanPage
	if err := wire.Unmarshal(res, &page); err != nil {
		return nil, fmt.Errorf("malformed dscan reply %s: %w", wire.Diagnose(res), err)
	}
	return &page, nil
}

// scanDict pages through a dict with dscan, calling fn with each [key, value].
func scanDict(e *env, table string, fn func(kv []wire.Raw) error) error {
	var cursor uint64
	for {
		page, err := dscan(e, table, cursor, scanPage)
		if err != nil {
			return err
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

func runScan(e *env, a []string) error {
	var cursor uint64
	count := scanPage
	if len(a) > 1 {
		c, err := strconv.ParseUint(a[1], 10, 64)
		if err != nil {
			return usagef("CURSOR %q: want the cursor a scan printed (0 to start)", a[1])
		}
		cursor = c
	}
	if len(a) > 2 {
		n, err := parseInt("COUNT", a[2])
		if err != nil {
			return err
		}
		count = n
	}
	page, err := dscan(e, a[0], cursor, count)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, page.Next)
	for _, it := range page.Items {
		if err := e.print(it); err != nil {
			return err
		}
	}
	return nil
}

func runAppend(e *env, a []string) error {
	args, err := e.values([]any{a[0]}, a[1:])
	if err != nil {
		return err
	}
	return call(e, wire.OpLAppend, args...)
}

// batchItems reads batch's operations: a JSON array of them, or, from
// stdin, also JSON lines, one operation per line.
func batchItems(e *env, arg string) ([]any, error) {
	text := arg
	if arg == "-" {
		b, err := e.readStdin()
		if err != nil {
			return nil, err
		}
		text = string(b)
	}
	bad := usagef("want a JSON array of operations such as '[[\"dset\", \"t\", \"k\", 1]]', or JSON lines from stdin, one operation a line")
	if v, err := parseJSON(text); err == nil {
		items, ok := v.([]any)
		if !ok {
			return nil, bad
		}
		if len(items) == 0 || arg != "-" {
			return items, nil
		}
		if _, nested := items[0].([]any); nested {
			return items, nil // one array of operations
		}
		return []any{items}, nil // one line: one operation
	} else if arg != "-" {
		return nil, usagef("the batch %s is not JSON: %v", shortArg(text), err)
	}
	var items []any
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := parseJSON(line)
		if err != nil {
			return nil, usagef("line %d of the batch is not JSON: %v", n+1, err)
		}
		if _, ok := v.([]any); !ok {
			return nil, usagef("line %d of the batch is not an operation [\"opname\", arg...]", n+1)
		}
		items = append(items, v)
	}
	if items == nil {
		return nil, bad
	}
	return items, nil
}
