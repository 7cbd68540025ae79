package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"golang.org/x/term"
)

// keys is a fake terminal: what is typed, and what is shown.
type keys struct {
	in io.Reader
	daemontest.Buffer
}

func (k *keys) Read(p []byte) (int, error) { return k.in.Read(p) }

// session runs the prompt over typed keys, as on a terminal, with the
// history in histFile; it returns what the terminal showed.
func session(t *testing.T, socket, histFile, typed string) string {
	t.Helper()
	t.Setenv(HistoryEnv, histFile)
	k := &keys{in: strings.NewReader(typed)}
	e := &env{addr: socket, timeout: 10 * time.Second, stdout: k, stderr: k}
	defer e.close()
	tm := term.NewTerminal(k, "")
	h := openHistory(k)
	defer h.close()
	tm.History = h
	if code := e.prompt(tm, nil); code != 0 {
		t.Errorf("the prompt exited %d", code)
	}
	return k.String()
}

// TestPrompt drives the interactive loop through x/term's Terminal, as a
// terminal would: the prompt shows the address, errors do not end it,
// help works, Up recalls a line, and the history is kept in a file for
// the next session.
func TestPrompt(t *testing.T) {
	d := daemontest.Start(t)
	hist := filepath.Join(t.TempDir(), "history")
	const up = "\x1b[A"
	shown := session(t, d.Socket, hist,
		"create dict t\r"+
			"set t k 'hello world'\r"+
			"get t k\r"+
			up+"\r"+ // get t k, again
			"get t nope\r"+ // an error: the prompt stays
			"bogus\r"+
			"help get\r"+
			"get 'unclosed\r"+
			"\r"+
			"quit\r"+
			"get t k\r") // never read: quit left
	for _, want := range []string{
		"cyberdb " + d.Socket + "> ",
		"(error) get: key_not_found",
		`(error) unknown command "bogus"`,
		"usage: cyberdb [flags] get TABLE KEY [DEFAULT]",
		"(error) a ' is not closed",
	} {
		if !strings.Contains(shown, want) {
			t.Errorf("the terminal does not show %q:\n%s", want, shown)
		}
	}
	if n := strings.Count(shown, `"hello world"`); n != 2 {
		t.Errorf("get ran %d times, want 2 (once recalled with Up):\n%s", n, shown)
	}
	b, err := os.ReadFile(hist)
	if err != nil {
		t.Fatal(err)
	}
	want := "create dict t\nset t k 'hello world'\nget t k\nget t nope\nbogus\nhelp get\nget 'unclosed\nquit\n"
	if string(b) != want {
		t.Errorf("history file:\n%s\nwant:\n%s", b, want)
	}

	// The next session starts with that history: Up twice is "get 'unclosed", Up three times "help get".
	shown = session(t, d.Socket, hist, up+up+up+"\r")
	if !strings.Contains(shown, "usage: cyberdb [flags] get") {
		t.Errorf("the history was not loaded:\n%s", shown)
	}

	// No daemon: the prompt says so, and commands fail without leaving.
	shown = session(t, d.Socket+".none", filepath.Join(t.TempDir(), "h"), "ping\rping\r")
	if !strings.Contains(shown, "not connected> ") || strings.Count(shown, "cannot connect") != 3 {
		t.Errorf("without a daemon:\n%s", shown)
	}
}

// TestHistoryBounded: the file is cut back to the last historyMax lines
// once it has grown to twice that.
func TestHistoryBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h")
	t.Setenv(HistoryEnv, path)
	var b strings.Builder
	for i := range 2*historyMax + 5 {
		b.WriteString("ping " + strings.Repeat("x", i%7) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	h := openHistory(io.Discard)
	h.Add("ping last")
	h.Add("ping last") // a repeat is not kept
	h.Add("   ")
	h.close()
	if h.Len() != historyMax || h.At(0) != "ping last" {
		t.Fatalf("len %d, last %q", h.Len(), h.At(0))
	}
	data, _ := os.ReadFile(path)
	if n := strings.Count(string(data), "\n"); n != historyMax+1 {
		t.Fatalf("the file has %d lines, want %d", n, historyMax+1)
	}
	// /dev/null keeps nothing, and complains of nothing.
	t.Setenv(HistoryEnv, os.DevNull)
	var warn bytes.Buffer
	h = openHistory(&warn)
	h.Add("ping")
	h.close()
	if warn.Len() > 0 {
		t.Fatalf("warning with /dev/null: %s", warn.String())
	}
}
