package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// TestEveryOpHasACommand: each operation of the protocol has a command
// (HELLO is the handshake every command makes). A new op fails this test
// until its command is in the table.
func TestEveryOpHasACommand(t *testing.T) {
	covered := map[wire.Op]string{}
	for _, c := range commandList {
		for _, op := range c.ops {
			covered[op] = c.name
		}
	}
	for _, op := range wire.Ops() {
		if _, ok := covered[op]; !ok && op != wire.OpHello && !op.JournalOnly() {
			t.Errorf("op %s has no command: add one to the table in commands.go, with %s in its ops", op, op)
		}
	}
	for _, c := range commandList {
		if !strings.Contains(c.help, "Example") {
			t.Errorf("%s --help has no example", c.name)
		}
	}
}

// TestCLIDictCommands runs each dict command against the real daemon.
func TestCLIDictCommands(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("", "create", "dict", "d", `[["a", 1], ["b", 2]]`)
	c.ok("true\n", "has", "d", "a")
	out, _, code := c.run("has", "d", "zz")
	if out != "false\n" || code != 1 {
		t.Fatalf("has of a missing key: %q, exit %d; want false, 1", out, code)
	}
	c.ok("0\n", "get", "d", "zz", "0") // a default
	c.ok("null\n", "get", "d", "zz", "null")
	c.ok("1\n2\n", "values", "d")
	c.ok("[\"a\",1]\n[\"b\",2]\n", "items", "d")
	c.ok("{\"a\":1,\"b\":2}\n", "todict", "d")
	c.ok("7\n", "setdefault", "d", "c", "7")
	c.ok("7\n", "setdefault", "d", "c", "8") // already there
	c.ok("null\n", "setdefault", "d", "n")
	c.ok("[\"n\",null]\n", "popitem", "d")
	c.ok("", "update", "d", `{"a": 10, "e": 5}`)
	c.ok("", "update", "d", `[[1, "one"]]`)
	c.ok("[\"a\",10]\n[\"b\",2]\n[\"c\",7]\n[\"e\",5]\n[1,\"one\"]\n", "dump", "d")
	c.fails(2, "JSON object", "update", "d", "42")
	c.fails(2, "not JSON", "update", "d", "{bad")

	// cas: true when it set, false (exit 1) when it did not.
	c.ok("true\n", "cas", "d", "a", "11", "10")
	out, _, code = c.run("cas", "d", "a", "12", "10")
	if out != "false\n" || code != 1 {
		t.Fatalf("cas with a stale value: %q, exit %d; want false, 1", out, code)
	}
	c.ok("true\n", "cas", "d", "lock", "me") // absent: taken
	out, _, code = c.run("cas", "d", "lock", "you")
	if out != "false\n" || code != 1 {
		t.Fatalf("cas of a present key without EXPECTED: %q, exit %d", out, code)
	}

	// scan: the next cursor, then the page.
	out, _, code = c.run("scan", "d", "0", "2")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || lines[0] == "0" || lines[1] != `["a",11]` {
		t.Fatalf("scan d 0 2: exit %d\n%s", code, out)
	}
	var all []string
	for cursor := "0"; ; {
		out, _, _ := c.run("scan", "d", cursor, "2")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		all = append(all, lines[1:]...)
		if cursor = lines[0]; cursor == "0" {
			break
		}
	}
	if len(all) != 6 {
		t.Fatalf("a whole scan gave %d entries: %q", len(all), all)
	}
	c.fails(2, "cursor", "scan", "d", "x")

	// pop on a dict: the key, or its default.
	c.ok("5\n", "pop", "d", "e")
	c.fails(1, "key_not_found", "pop", "d", "e")
	c.ok("\"gone\"\n", "pop", "d", "e", "gone")
	c.ok("\"one\"\n", "pop", "d", "1") // 1 is not an index here: d is a dict
	c.fails(2, "give the KEY", "pop", "d")

	c.ok("true\n", "contains", "d", "a") // a key of a dict
	c.ok("", "clear", "d")
	c.ok("0\n", "len", "d")
	c.fails(1, "key_not_found", "popitem", "d")
	c.ok("true\n", "exists", "d")
	out, _, code = c.run("exists", "nope")
	if out != "false\n" || code != 1 {
		t.Fatalf("exists of a missing table: %q, exit %d", out, code)
	}
}

// TestCLIListCommands runs each list command against the real daemon.
func TestCLIListCommands(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("", "create", "list", "l", `[3, 1, 2]`)
	c.ok("", "sort", "l")
	c.ok("[1,2,3]\n", "tolist", "l")
	c.ok("", "sort", "l", "--reverse")
	c.ok("[3,2,1]\n", "tolist", "l")
	c.fails(2, "--reverse", "sort", "l", "backwards")
	c.ok("", "reverse", "l")
	c.ok("5\n", "extend", "l", `[2, "x"]`)
	c.fails(2, "JSON array", "extend", "l", `{"a": 1}`)
	c.ok("2\n", "count", "l", "2")
	c.ok("1\n", "index", "l", "2")
	c.ok("3\n", "index", "l", "2", "2")
	c.fails(1, "value_not_found", "index", "l", "2", "4")
	c.ok("", "insert", "l", "0", "first")
	c.ok("", "insert", "l", "100", "last") // clamped, as Python
	c.ok("", "setat", "l", "1", "one")
	c.fails(1, "index_out_of_range", "setat", "l", "99", "x")
	c.ok("", "delat", "l", "2")
	c.fails(1, "index_out_of_range", "delat", "l", "99")
	c.ok("\"first\"\n\"one\"\n3\n2\n\"x\"\n\"last\"\n", "dump", "l")
	c.ok("3\n2\n", "range", "l", "2", "2")
	c.ok("\"last\"\n2\n\"one\"\n", "-S", "slice", "l", "null", "null", "-2") // -S does not change numbers
	c.ok("", "delslice", "l", "0", "2")
	c.ok("[3,2,\"x\",\"last\"]\n", "tolist", "l")
	c.ok("", "delslice", "l", "null", "null", "2")
	c.ok("[2,\"last\"]\n", "tolist", "l")
	c.ok("", "remove", "l", "2")
	c.fails(1, "value_not_found", "remove", "l", "2")
	c.ok("\"last\"\n", "values", "l")
	c.ok("", "clear", "l")
	c.ok("0\n", "len", "l")
	c.fails(1, "index_out_of_range", "pop", "l")
	c.ok("\"PONG\"\n", "ping")
	c.ok("\"hello\"\n", "ping", "hello")

	// A batch: all or nothing, its results as one array.
	c.ok("[null,null,1,2]\n", "batch", `[["create_dict", "b"], ["dset", "b", "k", 1], ["lappend", "l", "a"], ["lappend", "l", "b"]]`)
	c.fails(1, "no_such_table", "batch", `[["create_dict", "c"], ["dset", "nope", "k", 1]]`)
	if out, _, code := c.run("exists", "c"); out != "false\n" || code != 1 { // undone
		t.Fatalf("a failed batch left its table: %q, exit %d", out, code)
	}
	c.ok("[null,1]\n", "batch", `[["dset", "b", "k", 1], ["dincr", "b", "n"]]`)
	c.fails(3, "batch op 1 (dincr)", "batch", `[["dset", "b", "k", 2], ["dincr", "b", "k", "x"]]`)
	c.ok("1\n", "get", "b", "k") // the failed batch changed nothing
	c.fails(2, "no op is named", "batch", `[["frobnicate"]]`)
	c.fails(2, "JSON array", "batch", `{}`)
}

// TestCLIHints: the daemon's hints name protocol ops; the CLI's name its
// commands. Before the fix "cyberdb get nope k" said "create it with
// create_dict or create_list".
func TestCLIHints(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	_, errs, _ := c.run("incr", "hits", "/home")
	if !strings.Contains(errs, "create it with 'cyberdb create dict hits' or 'cyberdb create list hits'") || strings.Contains(errs, "create_dict") {
		t.Errorf("no such table: %q", errs)
	}
	_, errs, _ = c.run("get", "my table", "k")
	if !strings.Contains(errs, "'cyberdb create dict 'my table''") && !strings.Contains(errs, `cyberdb create dict 'my table'`) {
		t.Errorf("a name that needs quoting: %q", errs)
	}
	c.ok("", "create", "list", "q")
	_, errs, _ = c.run("get", "q", "k")
	if !strings.Contains(errs, `table "q" is a list; cyberdb get works on a dict`) || strings.Contains(errs, "dget") {
		t.Errorf("wrong kind: %q", errs)
	}
	c.ok("", "create", "dict", "hits", "--if-not-exists")
	c.ok("", "create", "dict", "hits", `{"a": 1}`, "--if-not-exists") // there: left as it is
	c.ok("0\n", "len", "hits")
	c.fails(3, "table_exists", "create", "dict", "hits")
	c.fails(3, `table "q" is a list, not a dict`, "create", "dict", "q", "--if-not-exists")
	c.fails(2, "reserved", "create", "dict", "_cyberdb.mine")
}

// TestCLIRawAndStdin: --raw prints text as it is; "-" reads a value from
// stdin, exactly, as JSON or text (-S), or bytes when not UTF-8.
func TestCLIRawAndStdin(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("", "create", "dict", "d")
	c.ok("", "set", "d", "t", `"two\nlines \"quoted\""`)
	c.ok("\"two\\nlines \\\"quoted\\\"\"\n", "get", "d", "t")
	c.ok("two\nlines \"quoted\"\n", "--raw", "get", "d", "t")
	c.ok("\"t\"\n", "keys", "d")
	c.ok("t\n", "--raw", "keys", "d")
	c.ok("", "set", "d", "n", "42")
	c.ok("42\n", "--raw", "get", "d", "n") // not text: JSON as always

	stdin := func(in string, args ...string) {
		t.Helper()
		if out, errs, code := c.runIn(in, args...); code != 0 || out != "" {
			t.Fatalf("%v < %q: exit %d, %q %q", args, in, code, out, errs)
		}
	}
	stdin(`{"k": [1, 2]}`+"\n", "set", "d", "j", "-")
	c.ok("{\"k\":[1,2]}\n", "get", "d", "j")
	stdin("hello\n", "-S", "set", "d", "s", "-") // all of it, the newline too
	c.ok("\"hello\\n\"\n", "get", "d", "s")
	stdin("plain text", "set", "d", "p", "-")
	c.ok("\"plain text\"\n", "get", "d", "p")
	stdin("\xff\x00", "set", "d", "b", "-")
	c.ok("h'ff00'\n", "get", "d", "b")
	stdin(`[1, 2, 3]`, "create", "list", "l", "-")
	c.ok("[1,2,3]\n", "tolist", "l")
	if out, _, code := c.runIn(`[4, 5]`, "extend", "l", "-"); code != 0 || out != "5\n" {
		t.Fatalf("extend - : %q, exit %d", out, code)
	}
	if out, _, code := c.runIn(`"-"`, "append", "l", "-"); code != 0 || out != "6\n" {
		t.Fatalf("append - : %q, exit %d", out, code)
	}
	c.ok("\"-\"\n", "at", "l", "-1")
	if _, errs, code := c.runIn("x", "append", "l", "-", "-"); code != 2 || !strings.Contains(errs, `only one argument can be "-"`) {
		t.Fatalf("two dashes: exit %d, %q", code, errs)
	}
	if _, errs, code := c.runIn("{bad", "update", "d", "-"); code != 2 || !strings.Contains(errs, "not JSON") {
		t.Fatalf("bad JSON from stdin: exit %d, %q", code, errs)
	}
}

// TestCLIScript: with no command and stdin not a terminal, each line is a
// command; the exit status is the highest of the lines'.
func TestCLIScript(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	script := `# a comment, then a blank line

create dict s
set s "a key" '{"x": 1}'   # a comment after a command
get s "a key"
incr s n 2
`
	if out, errs, code := c.runIn(script); code != 0 || out != "{\"x\":1}\n2\n" || errs != "" {
		t.Fatalf("script: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	for _, tc := range []struct {
		script string
		code   int
		out    string
		err    string
	}{
		{"get s nope\nget s n\n", 1, "2\n", "cyberdb: line 1: get: key_not_found"},
		{"has s nope\n", 1, "false\n", ""},
		{"get s nope\nfrobnicate\nget s n\n", 2, "2\n", "cyberdb: line 2: unknown command \"frobnicate\""},
		{"set s\n", 2, "", "cyberdb: line 1: set: wrong number of arguments; usage: set TABLE KEY VALUE|-"},
		{"get s 'open\n", 2, "", "cyberdb: line 1: a ' is not closed"},
		{"incr s a-text\nset s t x\nincr s t\nget s n\n", 3, "1\n2\n", "cyberdb: line 3: incr: type_error"},
		{"get s n\nquit\nget s n\n", 0, "2\n", ""},
		{"set s d -\n", 2, "", `carries the commands`},
	} {
		out, errs, code := c.runIn(tc.script)
		if code != tc.code || out != tc.out || !strings.Contains(errs, tc.err) {
			t.Errorf("script %q: exit %d, stdout %q, stderr %q; want %d, %q, %q", tc.script, code, out, errs, tc.code, tc.out, tc.err)
		}
	}
	// The daemon gone: one error, not one per line.
	dead := &cli{t: t, bin: c.bin, socket: c.socket + ".none"}
	_, errs, code := dead.runIn("ping\nping\nping\n")
	if code != 3 || strings.Count(errs, "cannot connect") != 1 || !strings.Contains(errs, "stopping") {
		t.Fatalf("no daemon: exit %d, stderr %q", code, errs)
	}
}

func TestSplitLine(t *testing.T) {
	for in, want := range map[string][]string{
		`set t k v`:                     {"set", "t", "k", "v"},
		"  get\tt  k  ":                 {"get", "t", "k"},
		`set t k '{"a": [1, 2]}'`:       {"set", "t", "k", `{"a": [1, 2]}`},
		`set t "a b" "x\"y\\z\n$"`:      {"set", "t", "a b", `x"y\z\n$`},
		`set t k\ 2 v`:                  {"set", "t", "k 2", "v"},
		`slice q '' 2`:                  {"slice", "q", "", "2"},
		`get t k # why`:                 {"get", "t", "k"},
		`set t k#2 v`:                   {"set", "t", "k#2", "v"},
		`# all comment`:                 nil,
		``:                              nil,
		`set t a'b c'd`:                 {"set", "t", "ab cd"},
		`set t "it's" 'say "hi"'`:       {"set", "t", "it's", `say "hi"`},
		"set t k h\xc3\xa9llo":          {"set", "t", "k", "h\xc3\xa9llo"},
		`append q '' ""`:                {"append", "q", "", ""},
		`get t "#not a comment"`:        {"get", "t", "#not a comment"},
		`get t \#also-not`:              {"get", "t", "#also-not"},
		`get 't'"k"`:                    {"get", "tk"},
		`set t k "a\b"`:                 {"set", "t", "k", `a\b`},
		`set t k "\$HOME \` + "`" + `"`: {"set", "t", "k", "$HOME `"},
	} {
		got, err := splitLine(in)
		if err != nil || strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Errorf("splitLine(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`get 't`, `get "t`, `get t\`} {
		if _, err := splitLine(in); err == nil {
			t.Errorf("splitLine(%q): no error", in)
		}
	}
}

func TestCLIVersion(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	for _, flag := range []string{"--version", "-v"} {
		out, err := exec.Command(bin, flag).Output()
		if err != nil || !strings.HasPrefix(string(out), "cyberdb ") || strings.Count(string(out), "\n") != 1 {
			t.Errorf("cyberdb %s: %q, %v", flag, out, err)
		}
	}
	// The Makefile sets it.
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version=1.2.3-test", "-o", dir+"/cyberdb", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if out, err := exec.Command(dir+"/cyberdb", "--version").Output(); err != nil || string(out) != "cyberdb 1.2.3-test\n" {
		t.Errorf("with -X main.version: %q, %v", out, err)
	}
}

// TestCLIExpiry runs the expiry commands against the real daemon.
func TestCLIExpiry(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("", "create", "dict", "s", "--ttl", "10m")
	c.ok("", "set", "s", "k", "v")
	out, _, code := c.run("ttl", "s", "k")
	if code != 0 || !strings.HasPrefix(out, "599.") && out != "600\n" {
		t.Fatalf("ttl of a key with the table's default: %q (exit %d)", out, code)
	}
	c.ok("", "set", "s", "k", "v", "--ttl", "30s")
	out, _, _ = c.run("ttl", "s", "k")
	if !strings.HasPrefix(out, "29.") && out != "30\n" {
		t.Fatalf("ttl after --ttl 30s: %q", out)
	}
	c.ok("", "set", "s", "k", "w", "--keepttl")
	out, _, _ = c.run("ttl", "s", "k")
	if !strings.HasPrefix(out, "29.") && out != "30\n" {
		t.Fatalf("ttl after --keepttl: %q", out)
	}
	c.ok("true\n", "persist", "s", "k")
	c.ok("null\n", "ttl", "s", "k")
	if out, _, code := c.run("ttl", "s", "missing"); code != 1 {
		t.Fatalf("ttl of a missing key: %q, exit %d, want 1", out, code)
	}
	c.ok("true\n", "expire", "s", "k", "90")
	out, _, _ = c.run("ttl", "s", "k")
	if !strings.HasPrefix(out, "89.") && out != "90\n" {
		t.Fatalf("ttl after expire 90: %q", out)
	}
	if out, _, code := c.run("expire", "s", "missing", "1m"); out != "false\n" || code != 1 {
		t.Fatalf("expire of a missing key: %q, exit %d", out, code)
	}
	c.ok(`"w"`+"\n", "getex", "s", "k", "1h")
	c.ok("true\n", "set", "s", "lock", "me", "--nx", "--ttl", "30s")
	if out, _, code := c.run("set", "s", "lock", "you", "--nx", "--ttl", "30s"); out != "false\n" || code != 1 {
		t.Fatalf("a second --nx: %q, exit %d", out, code)
	}
	if _, _, code := c.run("delifeq", "s", "lock", "you"); code != 1 {
		t.Fatal("delifeq of another value succeeded")
	}
	c.ok("true\n", "delifeq", "s", "lock", "me")
	c.ok("null\n", "ttl", "s")
	c.ok("", "expire", "s", "1h")
	out, _, _ = c.run("ttl", "s")
	if !strings.HasPrefix(out, "3599.") && out != "3600\n" {
		t.Fatalf("ttl of the table: %q", out)
	}
	c.ok("", "persist", "s")
	c.ok("null\n", "ttl", "s")
	c.ok("", "create", "dict", "cache", "--evict", "lru", "--max-len", "2")
	for _, k := range []string{"a", "b", "c"} {
		c.ok("", "set", "cache", k, "1")
	}
	c.ok("2\n", "len", "cache")
	if _, _, code := c.run("create", "list", "l", "--ttl", "1m"); code != 2 {
		t.Fatalf("create list --ttl: exit %d, want 2 (usage)", code)
	}
	if _, _, code := c.run("expire", "s", "k", "soon"); code != 2 {
		t.Fatalf("a TTL that is no duration: exit %d, want 2", code)
	}
}

// TestCLIInfoSorted: info's keys, and those of the objects in it, print
// in alphabetical order (the daemon's canonical CBOR order, shortest
// first, read as no order at all); a table's own order is kept.
func TestCLIInfoSorted(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("", "create", "dict", "d", `[["zz", 1], ["a", 2]]`)
	c.ok("{\"zz\":1,\"a\":2}\n", "todict", "d")
	out, errOut, code := c.run("info")
	if code != 0 {
		t.Fatalf("info: exit %d: %s", code, errOut)
	}
	var keys []string
	dec := json.NewDecoder(strings.NewReader(out))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("info: %q", out)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	if len(keys) < 10 || !slices.IsSorted(keys) {
		t.Fatalf("info's keys are not in order: %q", keys)
	}
	if got, want := sortMaps(wire.Raw{0xa2, 0x61, 'b', 0xa2, 0x61, 'y', 1, 0x61, 'x', 2, 0x61, 'a', 0x80}), []byte{0xa2, 0x61, 'a', 0x80, 0x61, 'b', 0xa2, 0x61, 'x', 2, 0x61, 'y', 1}; !bytes.Equal(got, want) {
		t.Fatalf("sortMaps: % x, want % x", got, want)
	}
}
