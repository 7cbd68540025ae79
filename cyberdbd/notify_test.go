package main

import (
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
)

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
	n := newNotifier(slog.Default())
	n.progress("loading snapshot\n(3 of 4 GiB)", 90*time.Second)
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
	n = newNotifier(slog.Default())
	for range 2 {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if k, err = c.Read(buf); err != nil || string(buf[:k]) != "WATCHDOG=1" {
			t.Fatalf("before READY: %q, %v; want WATCHDOG=1", buf[:k], err)
		}
	}
	n.ready(func() string { return "ok" }, nil)
	n.stopping()

	// Outside systemd, nothing is sent and nothing fails.
	t.Setenv("NOTIFY_SOCKET", "")
	n = newNotifier(slog.Default())
	n.progress("loading", time.Second)
	n.ready(func() string { return "x" }, nil)
	n.stopping()
}
