// Command cyberdb is the command-line client of cyberdb, as redis-cli is
// Redis's: it runs one operation on the daemon's tables and prints the
// result as JSON. Run "cyberdb --help" for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb"
	flag "github.com/spf13/pflag"
)

// Exit statuses.
const (
	exitOK       = 0
	exitNotFound = 1 // the key, table, value or index is not there
	exitUsage    = 2 // bad command line
	exitFailed   = 3 // the daemon cannot be reached, or answers an error
)

// command is one subcommand. New commands (cyberdb bench, ...) add
// themselves with register from an init function in their own file.
type command struct {
	name    string
	args    string // the arguments, for usage lines: "TABLE KEY"
	summary string // one line, for the command list
	help    string // the rest of "cyberdb CMD --help": details and examples
	min     int    // fewest arguments
	max     int    // most arguments; -1: no limit
	run     func(e *env, args []string) error
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("cyberdb: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// env is what a command runs with.
type env struct {
	ctx    context.Context
	addr   string
	opts   []libcyberdb.Option // --tls-ca, --tls-fingerprint, --password-file (remote.go)
	stdout io.Writer
	stderr io.Writer
	text   bool               // -S/--string: keys and values are text, never JSON
	client *libcyberdb.Client // opened on first use
}

// Client opens the connection to the daemon on first use.
func (e *env) Client() (*libcyberdb.Client, error) {
	if e.client != nil {
		return e.client, nil
	}
	opts := append([]libcyberdb.Option{libcyberdb.WithPoolSize(1), libcyberdb.WithDialTimeout(2 * time.Second), libcyberdb.WithClientName("cyberdb-cli")}, e.opts...)
	c, err := libcyberdb.Open(e.ctx, e.addr, opts...)
	if err != nil {
		return nil, err
	}
	e.client = c
	return c, nil
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(argv []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cyberdb", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(false) // flags after the command name belong to it
	fs.SortFlags = false
	socket := fs.StringP("socket", "s", "", "the daemon's Unix socket `PATH` (default: $CYBERDB_ADDR, else /run/cyberdb/cyberdb.sock if it exists, else ./cyberdb.sock)")
	addr := fs.String("addr", "", "the daemon's address, `ADDR`: unix:///path or a path (same as --socket), or tcp://host:port for a daemon on another host (default $CYBERDB_ADDR)")
	serverUID := fs.String("server-uid", "", "for Unix sockets: talk only to a daemon run by this `USER` (name or uid) or root, checked with SO_PEERCRED; a socket in a world-writable directory must belong to that user too (default $"+libcyberdb.ServerUIDEnv+")")
	remote := addRemoteFlags(fs)
	text := fs.BoolP("string", "S", false, "read every KEY and VALUE as text, exactly as typed, never as JSON (also accepted after the command name)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up on the command after this `duration`")
	help := fs.BoolP("help", "h", false, "show this help")
	_ = fs.MarkHidden("help")
	if err := fs.Parse(argv); err != nil {
		fmt.Fprintf(stderr, "cyberdb: %v\nRun 'cyberdb --help' for usage.\n", err)
		return exitUsage
	}
	args := fs.Args()
	if len(args) > 0 && args[0] == "help" {
		*help = true
		args = args[1:]
	}
	if len(args) == 0 {
		if *help {
			mainUsage(stdout, fs)
			return exitOK
		}
		mainUsage(stderr, fs)
		return exitUsage
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "cyberdb: unknown command %q\nRun 'cyberdb --help' for the list of commands.\n", args[0])
		return exitUsage
	}
	cargs, wantHelp, wantText := splitFlags(args[1:])
	if *help || wantHelp {
		commandUsage(stdout, cmd)
		return exitOK
	}
	if len(cargs) < cmd.min || (cmd.max >= 0 && len(cargs) > cmd.max) {
		fmt.Fprintf(stderr, "cyberdb %s: wrong number of arguments\nusage: cyberdb %s %s\nRun 'cyberdb %s --help' for details.\n", cmd.name, cmd.name, cmd.args, cmd.name)
		return exitUsage
	}
	a := *addr
	if *socket != "" {
		a = *socket
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	opts := remote.options()
	if *serverUID != "" {
		uid, err := libcyberdb.LookupUID(*serverUID)
		if err != nil {
			fmt.Fprintf(stderr, "cyberdb: --server-uid: %v\n", err)
			return exitUsage
		}
		opts = append(opts, libcyberdb.WithServerUID(uid))
	}
	e := &env{ctx: ctx, addr: a, opts: opts, stdout: stdout, stderr: stderr, text: *text || wantText}
	err := cmd.run(e, cargs)
	if e.client != nil {
		e.client.Close()
	}
	code := exitCode(err)
	if err != nil && !errors.Is(err, errNotIn) {
		fmt.Fprintf(stderr, "cyberdb %s: %v\n", cmd.name, message(err))
		if code == exitUsage {
			fmt.Fprintf(stderr, "usage: cyberdb %s %s\n", cmd.name, cmd.args)
		}
	}
	return code
}

// splitFlags removes -h/--help and -S/--string from a command's
// arguments. Anything else, "-1" included, is an argument; "--" ends the
// search.
func splitFlags(args []string) (rest []string, help, text bool) {
	for i, a := range args {
		switch a {
		case "--":
			return append(rest, args[i+1:]...), help, text
		case "-h", "--help":
			help = true
		case "-S", "--string":
			text = true
		default:
			rest = append(rest, a)
		}
	}
	return rest, help, text
}

func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, libcyberdb.ErrNotFound), errors.Is(err, libcyberdb.ErrNoTable), errors.Is(err, errNotIn),
		errors.Is(err, libcyberdb.ErrValueNotFound), errors.Is(err, libcyberdb.ErrIndexOutOfRange):
		return exitNotFound
	}
	return exitFailed
}

// message is the text of err for people: a daemon's error is shown as
// "code: message" without the library's prefixes.
func message(err error) string {
	var we *libcyberdb.Error
	if errors.As(err, &we) && !errors.Is(err, libcyberdb.ErrUnavailable) {
		return we.Error()
	}
	return err.Error()
}

func mainUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `cyberdb: the command-line client of cyberdb. It runs one operation on the
daemon's dict and list tables and prints the result.

Usage:
  cyberdb [flags] COMMAND [ARGS...]
  cyberdb COMMAND --help     (or: cyberdb help COMMAND)

Commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return commands[names[i]].order() < commands[names[j]].order() })
	for _, n := range names {
		c := commands[n]
		fmt.Fprintf(w, "  %-34s %s\n", c.name+" "+c.args, c.summary)
	}
	fmt.Fprintf(w, `
Flags (before the command):
%s
Keys and values are read as JSON when they parse as JSON ('"text"', 42,
'{"a":[1,2]}', true, null) and as plain strings otherwise (hello), so 42 is
the integer 42 and '"42"' the text "42". With -S (--string), before or after
the command name, every KEY and VALUE is read as text, exactly as typed:
'cyberdb -S get users 42' reads the text key "42" that a program wrote. A
value that looks like JSON but does not parse ('{bad json') is stored as text
with a warning on stderr; -S stores it without one. -S does not change
arguments that are JSON by definition (create's content, setslice's
JSON_ARRAY) nor numbers (indices, incr's N).

Results print as JSON, one per line; values JSON cannot show (byte strings,
maps with non-text keys, tags) print in CBOR diagnostic notation (h'00ff').

Exit status: 0 success, 1 key/table/value/index not found (contains: false), 2 usage error,
3 the daemon cannot be reached or answered an error (message on stderr).

Examples:
  cyberdb create dict centre
  cyberdb set centre content "Hello CyberDB!"
  cyberdb get centre content
  cyberdb -s /run/cyberdb/cyberdb.sock tables
  cyberdb --server-uid cyberdb tables   # refuse a socket served by anyone but the daemon's user (or root)
  cyberdb --addr tcp://db1.example.com:9980 --tls-ca cert.pem --password-file ~/.cyberdb-password tables
`, fs.FlagUsages())
}

// order sorts the command list: the order commands were written in the
// issue, then anything registered later, by name.
func (c *command) order() string {
	for i, n := range builtinOrder {
		if n == c.name {
			return fmt.Sprintf("%03d", i)
		}
	}
	return "999" + c.name
}

var builtinOrder = strings.Fields("ping info tables create drop get set del len keys dump incr append at slice setslice contains pop save")

func commandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: cyberdb [flags] %s %s\n\n%s\n", c.name, c.args, c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
}
