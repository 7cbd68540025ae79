package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb"
)

// TestMain removes the binaries the tests built when they end.
func TestMain(m *testing.M) { daemontest.Main(m) }

// buildCLI builds the cyberdb binary once for all the tests.
func buildCLI(t *testing.T) string {
	t.Helper()
	return daemontest.BuildTool(t, "./libcyberdb/cmd/cyberdb")
}

// cli runs the built cyberdb binary against a daemon.
type cli struct {
	t      *testing.T
	bin    string
	socket string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	d := daemontest.Start(t)
	return &cli{t: t, bin: buildCLI(t), socket: d.Socket}
}

// run returns stdout, stderr and the exit status.
func (c *cli) run(args ...string) (string, string, int) {
	c.t.Helper()
	return c.runIn("", args...)
}

// runIn is run with stdin.
func (c *cli) runIn(stdin string, args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(c.bin, append([]string{"-s", c.socket}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	// A -race binary otherwise sleeps a second at exit (atexit_sleep_ms).
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// ok runs a command that must succeed and print want.
func (c *cli) ok(want string, args ...string) {
	c.t.Helper()
	out, errs, code := c.run(args...)
	if code != 0 || out != want {
		c.t.Fatalf("cyberdb %s: exit %d, stdout %q, stderr %q; want stdout %q", strings.Join(args, " "), code, out, errs, want)
	}
}

// fails runs a command that must exit with code and say msg on stderr.
func (c *cli) fails(code int, msg string, args ...string) {
	c.t.Helper()
	out, errs, got := c.run(args...)
	if got != code || !strings.Contains(errs, msg) || out != "" {
		c.t.Fatalf("cyberdb %s: exit %d, stdout %q, stderr %q; want exit %d and %q", strings.Join(args, " "), got, out, errs, code, msg)
	}
}

func TestCLI(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("\"PONG\"\n", "ping")
	c.ok("", "create", "dict", "centre")
	c.ok("", "set", "centre", "content", "Hello CyberDB!")
	c.ok("\"Hello CyberDB!\"\n", "get", "centre", "content")
	c.ok("", "set", "centre", "42", `{"a":[1,2.5,"x"],"b":null,"c":true}`)
	c.ok("{\"a\":[1,2.5,\"x\"],\"b\":null,\"c\":true}\n", "get", "centre", "42")
	c.fails(1, "key_not_found", "get", "centre", `"42"`) // the text key "42" is another key
	c.ok("", "set", "centre", `"42"`, "1.0")
	c.ok("1.0\n", "get", "centre", `"42"`)
	c.ok("\"content\"\n42\n\"42\"\n", "keys", "centre")
	c.ok("[\"content\",\"Hello CyberDB!\"]\n[42,{\"a\":[1,2.5,\"x\"],\"b\":null,\"c\":true}]\n[\"42\",1.0]\n", "dump", "centre")
	c.ok("3\n", "len", "centre")
	c.ok("", "del", "centre", "42")
	c.fails(1, "key_not_found", "del", "centre", "42")
	c.fails(1, "no_such_table", "get", "nope", "k")
}

func TestCLICommands(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.fails(1, "no_such_table", "incr", "counts", "x")
	c.ok("", "create", "dict", "counts", `{"hits": 1}`)
	c.ok("2\n", "incr", "counts", "hits")
	c.ok("-3\n", "incr", "counts", "hits", "-5")
	c.ok("0.5\n", "incr", "counts", "ratio", "0.5")
	c.fails(2, "not a number", "incr", "counts", "hits", "many")
	c.ok("", "set", "counts", "name", "bob")
	c.fails(3, "type_error", "incr", "counts", "name")

	c.ok("", "create", "list", "q", `[1, 2]`)
	c.ok("4\n", "append", "q", "three", `{"four":4}`)
	c.ok("1\n", "at", "q", "0")
	c.ok("{\"four\":4}\n", "at", "q", "-1")
	c.fails(1, "index_out_of_range", "at", "q", "10")
	c.fails(2, "want an integer", "at", "q", "x")
	c.ok("2\n\"three\"\n", "slice", "q", "1", "3")
	c.ok("\"three\"\n{\"four\":4}\n", "slice", "q", "-2", "null")
	c.ok("1\n2\n", "slice", "q", "", "2")
	c.ok("1\n2\n\"three\"\n{\"four\":4}\n", "dump", "q")
	c.ok("{\"four\":4}\n", "pop", "q")
	c.ok("1\n", "pop", "q", "0")
	c.ok("2\n", "len", "q")
	c.ok("{\"name\":\"counts\",\"kind\":\"dict\",\"len\":3}\n{\"name\":\"q\",\"kind\":\"list\",\"len\":2}\n", "tables")
	c.fails(3, "table_exists", "create", "list", "q")
	c.fails(2, "kind is dict or list", "create", "set", "x")
	c.fails(2, "not JSON", "create", "list", "x", "[1,")
	c.ok("", "drop", "q")
	c.fails(1, "no_such_table", "drop", "q")
	c.fails(3, "wrong_kind", "at", "counts", "0")

	// Values JSON cannot show print in CBOR diagnostic notation.
	cl, err := libcyberdb.Open(context.Background(), c.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.CreateDict(context.Background(), "raw", nil); err != nil {
		t.Fatal(err)
	}
	d := libcyberdb.NewDict[any, any](cl, "raw")
	ctx := context.Background()
	if err := d.Set(ctx, "b", []byte{0, 0xff}); err != nil {
		t.Fatal(err)
	}
	if err := d.Set(ctx, "m", map[int]string{1: "one"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Set(ctx, []byte("k"), "bytes key"); err != nil {
		t.Fatal(err)
	}
	c.ok("h'00ff'\n", "get", "raw", "b")
	c.ok("{1: \"one\"}\n", "get", "raw", "m")
	c.ok("[\"b\", h'00ff']\n[\"m\", {1: \"one\"}]\n[h'6b', \"bytes key\"]\n", "dump", "raw")
}

func TestCLIUsage(t *testing.T) {
	t.Parallel()
	c := &cli{t: t, bin: buildCLI(t), socket: filepath.Join(t.TempDir(), "none.sock")}
	out, _, code := c.run("--help")
	if code != 0 || !strings.Contains(out, "Commands for dict tables:") || !strings.Contains(out, "slice TABLE START STOP") {
		t.Fatalf("--help: exit %d\n%s", code, out)
	}
	for name := range commands {
		out, _, code := c.run(name, "--help")
		if code != 0 || !strings.Contains(out, "usage: cyberdb [flags] "+name) || !strings.Contains(out, "Example") {
			t.Errorf("%s --help: exit %d\n%s", name, code, out)
		}
	}
	if out, _, code := c.run("help", "get"); code != 0 || !strings.Contains(out, "get TABLE KEY") {
		t.Errorf("help get: exit %d\n%s", code, out)
	}
	c.fails(2, "unknown command", "frobnicate")
	c.fails(2, "wrong number of arguments", "get", "t")
	c.fails(2, "wrong number of arguments", "ping", "x", "y")
	c.fails(2, "unknown flag", "--bogus", "ping")
	// No command and an empty stdin: no commands to run.
	if out, errs, code := c.run(); code != 0 || out != "" || errs != "" {
		t.Fatalf("no command, empty stdin: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// The daemon is not running.
	c.fails(3, "is cyberdbd running?", "ping")
}

// TestCLIText: keys and values are read as JSON when they parse as JSON,
// so without a way to force text, "cyberdb get users 42" could not reach
// the text key "42" a program wrote, and "cyberdb set users 42 carol"
// silently made a second key. -S/--string reads every KEY and VALUE as
// text; a value that looks like broken JSON is stored as text with a
// warning on stderr. Before the fix -S was an unknown flag.
func TestCLIText(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	cl, err := libcyberdb.Open(context.Background(), c.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if err := cl.CreateDict(ctx, "users", map[string]string{"42": "alice"}); err != nil {
		t.Fatal(err)
	}
	c.fails(1, "key_not_found", "get", "users", "42") // the integer 42
	c.ok("\"alice\"\n", "-S", "get", "users", "42")
	c.ok("\"alice\"\n", "--string", "get", "users", "42")
	c.ok("\"alice\"\n", "get", "-S", "users", "42") // after the command name too
	c.ok("", "-S", "set", "users", "42", "carol")
	c.ok("1\n", "len", "users") // no second key
	c.ok("\"carol\"\n", "-S", "get", "users", "42")
	c.ok("", "-S", "set", "users", "7", "true")
	c.ok("\"true\"\n", "-S", "get", "users", "7")    // the text "true", not the bool
	c.ok("", "set", "users", "-S", "--", "-S", "-S") // after --, -S is an argument: key and value "-S"
	c.ok("[\"42\",\"carol\"]\n[\"7\",\"true\"]\n[\"-S\",\"-S\"]\n", "dump", "users")

	// A value that looks like broken JSON is stored as text, with a warning.
	out, errs, code := c.run("set", "users", "bad", "{bad json")
	if code != 0 || out != "" || !strings.Contains(errs, "warning") || !strings.Contains(errs, "not valid JSON") ||
		!strings.Contains(errs, "-S") {
		t.Fatalf("set of broken JSON: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	c.ok("\"{bad json\"\n", "get", "users", "bad")
	for _, v := range []string{"[1, 2", `"unterminated`, "{}x"} {
		if _, errs, _ := c.run("set", "users", "v", v); !strings.Contains(errs, "warning") {
			t.Errorf("set %q: no warning, stderr %q", v, errs)
		}
	}
	for _, args := range [][]string{{"-S", "set", "users", "bad", "{bad json"}, {"set", "users", "plain", "hello world"}, {"set", "users", "n", "42"}} {
		if _, errs, code := c.run(args...); code != 0 || errs != "" {
			t.Errorf("%v: exit %d, stderr %q; want no warning", args, code, errs)
		}
	}

	// --help says which rule applies.
	out, _, _ = c.run("--help")
	if !strings.Contains(out, "-S, --string") || !strings.Contains(out, "as text") {
		t.Errorf("--help does not explain -S:\n%s", out)
	}
	out, _, _ = c.run("get", "--help")
	if !strings.Contains(out, "-S") {
		t.Errorf("get --help does not mention -S:\n%s", out)
	}
}

func TestCLISetSliceContains(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("", "create", "list", "q", `[0, 1, 2, 3, 4, 5]`)
	c.ok("", "setslice", "q", "1", "3", `["a"]`) // q[1:3] = ["a"]
	c.ok("0\n\"a\"\n3\n4\n5\n", "slice", "q", "null", "null")
	c.ok("", "setslice", "q", "null", "null", "-2", `[50, 30, 0]`) // q[::-2]
	c.ok("0\n\"a\"\n30\n4\n50\n", "dump", "q")
	c.ok("", "setslice", "q", "", "2", `[]`) // q[:2] = []
	c.ok("30\n4\n50\n", "dump", "q")
	c.ok("", "setslice", "q", "None", "None", `[{"k": [1]}, "x"]`)
	c.ok("{\"k\":[1]}\n\"x\"\n", "dump", "q")
	c.fails(3, "attempt to assign sequence of size 1 to extended slice of size 2", "setslice", "q", "null", "null", "-1", "[9]")
	c.fails(3, "attempt to assign sequence of size 2 to extended slice of size 1", "setslice", "q", "0", "1", "2", "[9, 8]")
	c.fails(3, "slice step cannot be zero", "setslice", "q", "0", "1", "0", "[]")
	c.fails(2, "JSON array", "setslice", "q", "0", "1", "x")
	c.fails(2, "JSON array", "setslice", "q", "0", "1", `{"a": 1}`)
	c.fails(2, "want an integer", "setslice", "q", "a", "1", "[]")
	c.fails(2, "wrong number of arguments", "setslice", "q", "0", "[]")
	c.fails(1, "no_such_table", "setslice", "nope", "0", "1", "[]")

	c.ok("true\n", "contains", "q", "x")
	c.ok("true\n", "contains", "q", `{"k": [1]}`)
	out, _, code := c.run("contains", "q", "y")
	if out != "false\n" || code != 1 {
		t.Fatalf("contains of a missing value: stdout %q, exit %d; want false, 1", out, code)
	}
	c.ok("true\n", "-S", "contains", "q", "x")
	c.fails(1, "no_such_table", "contains", "nope", "x")
}
