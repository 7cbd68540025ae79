package systemd

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
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
	level := new(slog.LevelVar)
	log := slog.New(NewLogHandler(f, level)).With("conn", 7)
	log.Debug("hidden")
	log.Warn("careful", "n", 1)
	level.Set(slog.LevelDebug)
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
	slog.New(NewLogHandler(g, slog.LevelInfo)).Info("plain")
	data, _ = os.ReadFile(g.Name())
	if !strings.HasPrefix(string(data), "time=") || !strings.Contains(string(data), "level=INFO msg=plain") {
		t.Fatalf("plain line: %q", data)
	}
}

// TestNotifyProgress: start-up work reports its progress and extends the
// start time-out, on one line whatever the message holds.
func TestNotifyProgress(t *testing.T) {
	path := filepath.Join(daemontest.ShortTempDir(t), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	n := NewNotifier(slog.Default())
	n.Progress("loading snapshot\n(3 of 4 GiB)", 90*time.Second)
	buf := make([]byte, 512)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(buf[:k]), "STATUS=loading snapshot (3 of 4 GiB)\nEXTEND_TIMEOUT_USEC=90000000"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}

	// With a watchdog, pings start before READY=1: loading data must not
	// trip it (start-up has TimeoutStartSec= instead).
	t.Setenv("WATCHDOG_USEC", "100000")
	n = NewNotifier(slog.Default())
	for range 2 {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if k, err = c.Read(buf); err != nil || string(buf[:k]) != "WATCHDOG=1" {
			t.Fatalf("before READY: %q, %v; want WATCHDOG=1", buf[:k], err)
		}
	}
	n.Ready(func() string { return "ok" }, nil)
	n.Stopping()

	// Outside systemd, nothing is sent and nothing fails.
	t.Setenv("NOTIFY_SOCKET", "")
	n = NewNotifier(slog.Default())
	n.Progress("loading", time.Second)
	n.Ready(func() string { return "x" }, nil)
	n.Stopping()
}

// TestNoActivation: with no $LISTEN_FDS for this process, no sockets.
func TestNoActivation(t *testing.T) {
	t.Setenv("LISTEN_PID", "1")
	t.Setenv("LISTEN_FDS", "1")
	ls, err := Listeners()
	if err != nil || ls.Activated || len(ls.Unix)+len(ls.TCP) != 0 {
		t.Fatalf("%+v, %v", ls, err)
	}
}
