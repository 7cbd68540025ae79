package main

// The line modes: with no command, cyberdb reads commands, one per line,
// from an interactive prompt on a terminal (redis-cli's habits: the
// daemon's address in the prompt, line editing and a history kept across
// sessions, errors printed without leaving) or from stdin when it is not
// a terminal (a script; the exit status is the worst of its lines).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/cyberdb/cyberdb/libcyberdb"
	"golang.org/x/term"
)

// splitLine splits a command line into words as sh does, without
// expansions: blanks separate words; '...' keeps everything; "..." keeps
// everything but \" \\ \$ \` (a backslash before anything else stays);
// outside quotes a backslash keeps the next character; a word starting
// with # starts a comment that runs to the end of the line.
func splitLine(line string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case ch == '#' && !inWord:
			return words, nil
		case ch == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("a ' is not closed")
			}
			w.WriteString(line[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte("\"\\$`", line[i+1]) >= 0 {
					i++
				}
				w.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, errors.New(`a " is not closed`)
			}
			inWord = true
		case ch == '\\':
			if i+1 == len(line) {
				return nil, errors.New(`a \ ends the line (commands are one per line)`)
			}
			i++
			w.WriteByte(line[i])
			inWord = true
		default:
			w.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// maxLine bounds one line of a script: a command with a big JSON value
// fits, as it would in a frame.
const maxLine = 64 << 20

// script runs the commands of r, one per line, and returns the highest
// exit status among them.
func (e *env) script(r io.Reader) int {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	worst := exitOK
	for n := 1; sc.Scan(); n++ {
		e.where = fmt.Sprintf("cyberdb: line %d: ", n)
		argv, err := splitLine(sc.Text())
		if err != nil {
			fmt.Fprintf(e.stderr, "%s%v\n", e.where, err)
			worst = max(worst, exitUsage)
			continue
		}
		if len(argv) == 0 {
			continue
		}
		switch argv[0] {
		case "quit", "exit":
			return worst
		case "help":
			e.help(argv[1:])
			continue
		}
		code, err := e.exec(context.Background(), argv, nil)
		worst = max(worst, code)
		if errors.Is(err, libcyberdb.ErrUnavailable) {
			// Every later line would wait for the daemon in vain.
			fmt.Fprintf(e.stderr, "%sstopping: the daemon cannot be reached\n", e.where)
			return exitFailed
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(e.stderr, "cyberdb: reading commands from stdin: %v\n", err)
		return max(worst, exitFailed)
	}
	return worst
}

// help is the line modes' help: the commands, or one command's usage.
func (e *env) help(args []string) {
	if len(args) > 0 {
		if c, ok := commands[args[0]]; ok {
			commandUsage(e.stdout, c)
			return
		}
		fmt.Fprintf(e.stderr, "%sunknown command %q\n", e.where, args[0])
	}
	fmt.Fprint(e.stdout, `Type a command as on the command line, without "cyberdb": get centre content.
help COMMAND shows its usage; quit, exit or Ctrl-D leaves. Up and Down browse
the history; Ctrl-C stops a running command.

`)
	listCommands(e.stdout)
}

// lineReader is the prompt's source of lines: an x/term Terminal.
type lineReader interface {
	ReadLine() (string, error)
	SetPrompt(string)
}

// isTTY reports whether the prompt can run: stdin and stdout are both a
// terminal.
func isTTY(stdin io.Reader, stdout io.Writer) (*os.File, bool) {
	in, ok := stdin.(*os.File)
	out, ok2 := stdout.(*os.File)
	if !ok || !ok2 || !term.IsTerminal(int(in.Fd())) || !term.IsTerminal(int(out.Fd())) {
		return nil, false
	}
	return in, true
}

// interactive runs the prompt on the terminal tty.
func (e *env) interactive(tty *os.File) int {
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{tty, e.stdout}, "")
	h := openHistory(e.stderr)
	defer h.close()
	t.History = h
	// Ctrl-C during a command stops the command; at the prompt the
	// terminal is raw, and x/term reads it as the end of input.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	return e.prompt(&rawTerminal{fd: int(tty.Fd()), t: t}, sigs)
}

// rawTerminal puts the terminal in raw mode only while a line is read, so
// that commands run with the terminal as usual (Ctrl-C sends SIGINT,
// output needs no carriage returns).
type rawTerminal struct {
	fd int
	t  *term.Terminal
}

func (r *rawTerminal) ReadLine() (string, error) {
	old, err := term.MakeRaw(r.fd)
	if err != nil {
		return "", err
	}
	defer term.Restore(r.fd, old)
	if w, h, err := term.GetSize(r.fd); err == nil && w > 0 && h > 0 { // 0x0: a terminal that never said
		r.t.SetSize(w, h)
	}
	return r.t.ReadLine()
}

func (r *rawTerminal) SetPrompt(p string) { r.t.SetPrompt(p) }

// prompt is the interactive loop: it reads lines from lr until quit,
// exit, or the end of input (Ctrl-D, or Ctrl-C at the prompt), runs each
// as a command and prints any error without leaving. A signal on sigs
// (nil in tests) stops the command running.
func (e *env) prompt(lr lineReader, sigs <-chan os.Signal) int {
	e.where = "(error) "
	// Connect now, as redis-cli does, so the prompt says whether the
	// daemon is there.
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	e.ctx = ctx
	if _, err := e.Client(); err != nil {
		fmt.Fprintf(e.stderr, "(error) %s\n", cliMessage("", err))
	}
	cancel()
	for {
		lr.SetPrompt(e.promptText())
		line, err := lr.ReadLine()
		if err != nil {
			fmt.Fprintln(e.stdout)
			if errors.Is(err, io.EOF) {
				return exitOK
			}
			fmt.Fprintf(e.stderr, "cyberdb: reading from the terminal: %v\n", err)
			return exitFailed
		}
		argv, err := splitLine(line)
		if err != nil {
			fmt.Fprintf(e.stderr, "(error) %v\n", err)
			continue
		}
		if len(argv) == 0 {
			continue
		}
		switch argv[0] {
		case "quit", "exit":
			return exitOK
		case "help":
			e.help(argv[1:])
			continue
		}
		ctx, stop := interruptible(sigs)
		e.exec(ctx, argv, nil)
		stop()
	}
}

// interruptible returns a context that a signal on sigs cancels.
func interruptible(sigs <-chan os.Signal) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	if sigs == nil {
		return ctx, cancel
	}
	for len(sigs) > 0 { // a Ctrl-C typed before this command
		<-sigs
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-done:
		}
	}()
	return ctx, func() { close(done); cancel() }
}

// promptText is redis-cli's prompt: the daemon's address, or "not
// connected" until a connection is made.
func (e *env) promptText() string {
	if e.client == nil {
		return "not connected> "
	}
	addr, err := libcyberdb.ResolveAddr(e.addr)
	if err != nil {
		addr = e.addr
	}
	return "cyberdb " + addr + "> "
}

// History: the prompt's lines, kept in a file across sessions, as
// redis-cli keeps ~/.rediscli_history.

// HistoryEnv names the history file; /dev/null keeps none.
const HistoryEnv = "CYBERDB_HISTFILE"

// historyMax is how many lines the history keeps.
const historyMax = 1000

// history is an x/term History that also appends each line to a file.
type history struct {
	lines  []string // oldest first
	f      *os.File // nil: not saved
	stderr io.Writer
}

func historyPath() string {
	if p, ok := os.LookupEnv(HistoryEnv); ok {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cyberdb_history")
}

// openHistory loads the history file (its last historyMax lines, which
// it rewrites when it has grown to twice that) and opens it for appending.
func openHistory(stderr io.Writer) *history {
	h := &history{stderr: stderr}
	path := historyPath()
	if path == "" {
		return h
	}
	if b, err := os.ReadFile(path); err == nil {
		all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(all) == 1 && all[0] == "" {
			all = nil
		}
		h.lines = all[max(0, len(all)-historyMax):]
		if len(all) > 2*historyMax {
			tmp := path + ".tmp"
			if os.WriteFile(tmp, []byte(strings.Join(h.lines, "\n")+"\n"), 0o600) == nil {
				_ = os.Rename(tmp, path)
			}
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "cyberdb: warning: the history will not be saved: %v (set $%s to another file)\n", err, HistoryEnv)
		return h
	}
	h.f = f
	return h
}

// Add records a line typed at the prompt, unless it is blank or repeats
// the one before.
func (h *history) Add(line string) {
	if strings.TrimSpace(line) == "" || len(h.lines) > 0 && h.lines[len(h.lines)-1] == line {
		return
	}
	h.lines = append(h.lines, line)
	if len(h.lines) > historyMax {
		h.lines = h.lines[len(h.lines)-historyMax:]
	}
	if h.f != nil {
		if _, err := h.f.WriteString(line + "\n"); err != nil {
			fmt.Fprintf(h.stderr, "cyberdb: warning: the history is not saved any more: %v\n", err)
			h.f.Close()
			h.f = nil
		}
	}
}

func (h *history) Len() int { return len(h.lines) }

// At returns the idx-th most recent line (0: the last).
func (h *history) At(idx int) string { return h.lines[len(h.lines)-1-idx] }

func (h *history) close() {
	if h.f != nil {
		h.f.Close()
	}
}
