package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestJournalLog: when stderr is the journal ($JOURNAL_STREAM names it),
// each line carries its syslog priority and no time; otherwise lines are
// plain. The level can change while running (a reload).
func TestJournalLog(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	log := slog.New(newLogHandler(f, slog.LevelInfo)).With("conn", 7)
	log.Debug("hidden")
	log.Warn("careful", "n", 1)
	logLevel.Set(slog.LevelDebug)
	log.Debug("shown")
	log.Error("broken")
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	want := "<4>level=WARN msg=careful conn=7 n=1\n<7>level=DEBUG msg=shown conn=7\n<3>level=ERROR msg=broken conn=7\n"
	if string(data) != want {
		t.Fatalf("journal lines:\n%s\nwant:\n%s", data, want)
	}

	t.Setenv("JOURNAL_STREAM", "1:2")
	g, err := os.Create(filepath.Join(t.TempDir(), "log2"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	slog.New(newLogHandler(g, slog.LevelInfo)).Info("plain")
	data, _ = os.ReadFile(g.Name())
	if !strings.HasPrefix(string(data), "time=") || !strings.Contains(string(data), "level=INFO msg=plain") {
		t.Fatalf("plain line: %q", data)
	}
}
