package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb"
)

var (
	buildOnce sync.Once
	binDir    string
)

// buildCLI builds the cyberdb binary once for all the tests.
func buildCLI(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() { binDir, _ = os.MkdirTemp("", "cyberdb-cli-") })
	mu.Lock()
	defer mu.Unlock()
	bin := filepath.Join(binDir, "cyberdb")
	if _, err := os.Stat(bin); err != nil {
		bin = daemontest.BuildTool(t, "./libcyberdb/cmd/cyberdb", binDir)
	}
	return bin
}

var mu sync.Mutex

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
	cmd := exec.Command(c.bin, append([]string{"-s", c.socket}, args...)...)
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
	if code != 0 || !strings.Contains(out, "Commands:") || !strings.Contains(out, "slice TABLE START STOP") {
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
	c.fails(2, "wrong number of arguments", "ping", "x")
	c.fails(2, "unknown flag", "--bogus", "ping")
	_, errs, code := c.run()
	if code != 2 || !strings.Contains(errs, "Commands:") {
		t.Fatalf("no command: exit %d\n%s", code, errs)
	}
	// The daemon is not running.
	c.fails(3, "is cyberdbd running?", "ping")
}
