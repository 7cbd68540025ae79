// Command cyberdb is the command-line client of cyberdb, as redis-cli is
// Redis's: it runs one operation on the daemon's tables and prints the
// result as JSON; with no command it reads commands, from an interactive
// prompt on a terminal or one per line from stdin. Run "cyberdb --help"
// for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cyberdb/cyberdb/internal/buildinfo"
	"github.com/cyberdb/cyberdb/libcyberdb"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
	flag "github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=..." (the
// Makefile does); otherwise it comes from the module's build info.
var version = ""

func buildVersion() string { return buildinfo.Version(version) }

// Exit statuses.
const (
	exitOK       = 0
	exitNotFound = 1 // the key, table, value or index is not there; a true/false answer is false
	exitUsage    = 2 // bad command line
	exitFailed   = 3 // the daemon cannot be reached, or answers an error
)

// command is one subcommand. The table of commands is in commands.go;
// a command in a file of its own (cyberdb bench) registers itself from an
// init function.
type command struct {
	name    string
	group   string // the heading it is listed under in --help: one of groups, or a new one
	args    string // the arguments, for usage lines: "TABLE KEY"
	summary string // one line, for the command list
	help    string // the rest of "cyberdb CMD --help": details and examples
	min     int    // fewest arguments
	max     int    // most arguments; -1: no limit
	// ops are the protocol operations the command stands for
	// (TestEveryOpHasACommand checks that every op has one).
	ops []wire.Op
	// ownFlags: the command parses its arguments' flags itself (bench:
	// its -h is the host), so -h, --help and -S are not taken out first.
	ownFlags bool
	run      func(e *env, args []string) error
}

// The groups of commands, in the order --help lists them. A command of
// another group is listed after these, under its own heading.
const (
	groupServer = "the server"
	groupTables = "tables"
	groupDict   = "dict tables"
	groupList   = "list tables"
	groupBench  = "benchmarks"
)

var groups = []string{groupServer, groupTables, groupDict, groupList, groupEvents, groupBench}

var (
	commands    = map[string]*command{}
	commandList []*command // in the order registered: the order of --help within a group
)

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("cyberdb: command registered twice: " + c.name)
	}
	if c.group == "" {
		panic("cyberdb: command without a group: " + c.name)
	}
	commands[c.name] = c
	commandList = append(commandList, c)
}

// env is what commands run with: the connection and the output, which
// last for a whole session (one command, or every line of the line
// modes), and the state of the command being run.
type env struct {
	addr       string
	opts       []libcyberdb.Option // --tls-ca, --tls-fingerprint, --password-file (remote.go)
	globalArgs []string            // the flags before the command, as given (for bench's workers)
	timeout    time.Duration
	baseText   bool // -S before the command
	raw        bool // --raw: text results printed as they are
	stdout     io.Writer
	stderr     io.Writer
	client     *libcyberdb.Client // opened on first use
	// where starts each error message: "cyberdb " for one command,
	// "cyberdb: line 3: " for stdin's lines, "(error) " at the prompt.
	where string

	// The command being run.
	ctx       context.Context
	parent    context.Context // ctx's parent, without --timeout
	text      bool            // -S/--string: keys and values are text, never JSON
	stdin     io.Reader       // what "-" reads; nil when stdin carries commands
	stdinUsed bool
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

func (e *env) close() {
	if e.client != nil {
		e.client.Close()
		e.client = nil
	}
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cyberdb", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(false) // flags after the command name belong to it
	fs.SortFlags = false
	socket := fs.StringP("socket", "s", "", "the daemon's Unix socket `PATH` (default: $CYBERDB_ADDR, else /run/cyberdb/cyberdb.sock if it exists, else ./cyberdb.sock)")
	addr := fs.String("addr", "", "the daemon's address, `ADDR`: unix:///path or a path (same as --socket), or tcp://host:port for a daemon on another host (default $CYBERDB_ADDR)")
	serverUID := fs.String("server-uid", "", "for Unix sockets: talk only to a daemon run by this `USER` (name or uid) or root, checked with SO_PEERCRED; a socket in a world-writable directory must belong to that user too (default $"+libcyberdb.ServerUIDEnv+")")
	remote := addRemoteFlags(fs)
	text := fs.BoolP("string", "S", false, "read every KEY and VALUE as text, exactly as typed, never as JSON (also accepted after the command name)")
	raw := fs.Bool("raw", false, "print results that are text as the text itself, without JSON's quotes and escapes (for shell variables); other results stay JSON")
	timeout := fs.Duration("timeout", 30*time.Second, "give up on a command after this `duration`")
	showVersion := fs.BoolP("version", "v", false, "print cyberdb's version and exit")
	help := fs.BoolP("help", "h", false, "show this help")
	_ = fs.MarkHidden("help")
	if err := fs.Parse(argv); err != nil {
		fmt.Fprintf(stderr, "cyberdb: %v\nRun 'cyberdb --help' for usage.\n", err)
		return exitUsage
	}
	args := fs.Args()
	if *showVersion {
		fmt.Fprintln(stdout, "cyberdb", buildVersion())
		return exitOK
	}
	if len(args) > 0 && args[0] == "help" {
		*help = true
		args = args[1:]
	}
	if *help {
		if len(args) == 0 {
			mainUsage(stdout, fs)
			return exitOK
		}
		cmd, ok := commands[args[0]]
		if !ok {
			fmt.Fprintf(stderr, "cyberdb: unknown command %q\nRun 'cyberdb --help' for the list of commands.\n", args[0])
			return exitUsage
		}
		commandUsage(stdout, cmd)
		return exitOK
	}
	a := *addr
	if *socket != "" {
		a = *socket
	}
	opts := remote.options()
	if *serverUID != "" {
		uid, err := libcyberdb.LookupUID(*serverUID)
		if err != nil {
			fmt.Fprintf(stderr, "cyberdb: --server-uid: %v\n", err)
			return exitUsage
		}
		opts = append(opts, libcyberdb.WithServerUID(uid))
	}
	e := &env{addr: a, opts: opts, globalArgs: argv[:len(argv)-len(fs.Args())], timeout: *timeout,
		baseText: *text, raw: *raw, stdout: stdout, stderr: stderr}
	defer e.close()
	if len(args) == 0 {
		// No command: read them, as redis-cli does.
		if f, ok := isTTY(stdin, stdout); ok {
			return e.interactive(f)
		}
		return e.script(stdin)
	}
	e.where = "cyberdb "
	code, _ := e.exec(context.Background(), args, stdin)
	return code
}

// exec runs one command line, argv = COMMAND ARGS..., and reports its exit
// status, after printing any error on stderr. stdin is what "-" reads.
func (e *env) exec(parent context.Context, argv []string, stdin io.Reader) (int, error) {
	name := argv[0]
	cmd, ok := commands[name]
	if !ok {
		err := usagef("unknown command %q", name)
		if e.where == "cyberdb " {
			fmt.Fprintf(e.stderr, "cyberdb: unknown command %q\nRun 'cyberdb --help' for the list of commands.\n", name)
		} else {
			fmt.Fprintf(e.stderr, "%sunknown command %q (help lists the commands)\n", e.where, name)
		}
		return exitUsage, err
	}
	cargs, wantHelp, wantText := argv[1:], false, false
	if !cmd.ownFlags {
		cargs, wantHelp, wantText = splitFlags(argv[1:])
	}
	if wantHelp {
		commandUsage(e.stdout, cmd)
		return exitOK, nil
	}
	if len(cargs) < cmd.min || (cmd.max >= 0 && len(cargs) > cmd.max) {
		err := usagef("wrong number of arguments")
		if e.where == "cyberdb " {
			fmt.Fprintf(e.stderr, "cyberdb %s: wrong number of arguments\nusage: cyberdb %s %s\nRun 'cyberdb %s --help' for details.\n", cmd.name, cmd.name, cmd.args, cmd.name)
		} else {
			fmt.Fprintf(e.stderr, "%s%s: wrong number of arguments; usage: %s %s\n", e.where, cmd.name, cmd.name, cmd.args)
		}
		return exitUsage, err
	}
	ctx, cancel := context.WithTimeout(parent, e.timeout)
	defer cancel()
	e.parent = parent // a blocking pop waits longer than --timeout
	e.ctx, e.text, e.stdin, e.stdinUsed = ctx, e.baseText || wantText, stdin, false
	err := cmd.run(e, cargs)
	code := exitCode(err)
	if err != nil && !errors.Is(err, errFalse) {
		fmt.Fprintf(e.stderr, "%s%s: %s\n", e.where, cmd.name, cliMessage(cmd.name, err))
		if code == exitUsage && e.where == "cyberdb " {
			fmt.Fprintf(e.stderr, "usage: cyberdb %s %s\n", cmd.name, cmd.args)
		} else if code == exitUsage {
			fmt.Fprintf(e.stderr, "%susage: %s %s\n", e.where, cmd.name, cmd.args)
		}
	}
	return code, err
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
	case errors.Is(err, libcyberdb.ErrNotFound), errors.Is(err, libcyberdb.ErrNoTable), errors.Is(err, errFalse),
		errors.Is(err, errTimedOut), errors.Is(err, libcyberdb.ErrGuardFailed),
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
daemon's dict and list tables and prints the result; without a command it
reads commands, at a prompt on a terminal or one per line from stdin.

Usage:
  cyberdb [flags] COMMAND [ARGS...]
  cyberdb [flags]            (a prompt on a terminal; else commands from stdin)
  cyberdb COMMAND --help     (or: cyberdb help COMMAND)

`)
	listCommands(w)
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

A VALUE or JSON argument given as "-" is read from stdin, all of it,
newlines included: 'cyberdb set users bob - < bob.json'. Read as text (-S),
or as JSON or text as above; bytes that are not UTF-8 make a byte string.
The text "-" itself is written as JSON: '"-"'.

Results print as JSON, one per line; values JSON cannot show (byte strings,
maps with non-text keys, tags) print in CBOR diagnostic notation (h'00ff').
With --raw, a result that is text prints as the text itself: 'name=$(cyberdb
--raw get users bob)'.

Without a command, on a terminal, cyberdb opens a prompt showing the
daemon's address: type commands as on the command line (without
"cyberdb"), with line editing and a history (Up and Down), kept in
~/.cyberdb_history ($CYBERDB_HISTFILE; /dev/null keeps none). An error is
printed and the prompt stays; help lists the commands; quit, exit, Ctrl-D or
Ctrl-C at the prompt leaves, and Ctrl-C during a command stops it. When
stdin is not a terminal, each line of it is a command ('cyberdb < script'):
words are split and quoted as in sh ('...', "...", \), a word starting with
# starts a comment, and blank lines are skipped; every line runs, an error
is printed on stderr with its line number, and reading stops at quit or exit,
or when the daemon cannot be reached.

Exit status: 0 success; 1 key/table/value/index not found, or a true/false
answer (exists, has, contains, cas) is false; 2 usage error; 3 the daemon
cannot be reached or answered an error (message on stderr). Commands read
from stdin exit with the highest status of their lines (0 when every line
succeeded). The prompt exits 0.

Examples:
  cyberdb create dict centre
  cyberdb set centre content "Hello CyberDB!"
  cyberdb get centre content
  cyberdb --raw get centre content
  cyberdb -s /run/cyberdb/cyberdb.sock tables
  cyberdb --server-uid cyberdb tables   # refuse a socket served by anyone but the daemon's user (or root)
  cyberdb --addr tcp://db1.example.com:9980 --tls-ca cert.pem --password-file ~/.cyberdb-password tables
  printf 'set centre a 1\nincr centre a\n' | cyberdb
`, fs.FlagUsages())
}

// listCommands writes the commands under one heading per group.
func listCommands(w io.Writer) {
	var names []string
	for _, c := range commandList {
		if !slices.Contains(names, c.group) && !slices.Contains(groups, c.group) {
			names = append(names, c.group)
		}
	}
	slices.Sort(names)
	for i, g := range append(slices.Clone(groups), names...) {
		first := true
		for _, c := range commandList {
			if c.group != g {
				continue
			}
			if first {
				if i > 0 {
					fmt.Fprintln(w)
				}
				fmt.Fprintf(w, "Commands for %s:\n", g)
				first = false
			}
			// Two spaces at least between a command and its summary: the
			// manual page's generator (packaging/gendoc) splits there.
			term := strings.TrimSpace(c.name + " " + c.args)
			fmt.Fprintf(w, "  %s%s%s\n", term, strings.Repeat(" ", max(2, 38-len(term))), c.summary)
		}
	}
}

func commandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: cyberdb [flags] %s %s\n\n%s\n", c.name, c.args, c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
}
