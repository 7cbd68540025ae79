package cyberdbtest_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb"
	"github.com/cyberdb/cyberdb/libcyberdb/cyberdbtest"
)

// TestNew: the daemon answers through the Client and through a second
// client on Addr, FastForward expires an entry and shortens a TTL, and the
// cleanup stops the daemon and removes its socket.
func TestNew(t *testing.T) {
	ctx := context.Background()
	var addr string
	t.Run("server", func(t *testing.T) {
		db := cyberdbtest.New(t)
		addr = db.Addr
		if err := db.Client.CreateDict(ctx, "sessions", nil); err != nil {
			t.Fatal(err)
		}
		sessions := libcyberdb.NewDict[string, string](db.Client, "sessions")
		if err := sessions.Set(ctx, "alice", "token", libcyberdb.TTL(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := sessions.Set(ctx, "bob", "token", libcyberdb.TTL(3*time.Hour)); err != nil {
			t.Fatal(err)
		}

		other, err := libcyberdb.Open(ctx, db.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if v, err := libcyberdb.NewDict[string, string](other, "sessions").Get(ctx, "alice"); err != nil || v != "token" {
			t.Fatalf("second client: %q, %v", v, err)
		}

		before := db.Now()
		db.FastForward(2 * time.Hour)
		if d := db.Now().Sub(before); d < 2*time.Hour {
			t.Errorf("Now moved %v", d)
		}
		if _, err := sessions.Get(ctx, "alice"); !errors.Is(err, libcyberdb.ErrNotFound) {
			t.Errorf("alice after 2h of a 1h TTL: %v, want ErrNotFound", err)
		}
		ttl, _, err := sessions.TTL(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		if ttl > time.Hour || ttl < 50*time.Minute {
			t.Errorf("bob's TTL after 2h of 3h: %v, want about 1h", ttl)
		}
	})
	if _, err := os.Stat(addr); !os.IsNotExist(err) {
		t.Errorf("the socket %s is still there after the test: %v", addr, err)
	}
	if _, err := libcyberdb.Open(ctx, addr, libcyberdb.WithDialTimeout(200*time.Millisecond)); err == nil {
		t.Error("the daemon still answers after the test")
	}
}

// TestFlags: WithFlags reaches the daemon; --socket is refused with a
// message saying what to do.
func TestFlags(t *testing.T) {
	db := cyberdbtest.New(t, cyberdbtest.WithFlags("--max-conns=3"))
	info, err := db.Client.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := info["max_connections"]; got != uint64(3) && got != int64(3) {
		t.Errorf("max_connections in INFO: %v (%T)", got, got)
	}
	if _, err := cyberdbtest.Start(cyberdbtest.WithFlags("--socket=/tmp/x.sock")); err == nil || !strings.Contains(err.Error(), "Config.Socket") {
		t.Errorf("--socket: %v", err)
	}
}

// TestDataDir: a second Server on the same data dir finds the first one's
// data (its shutdown snapshot).
func TestDataDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := cyberdbtest.Start(cyberdbtest.WithDataDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Client.CreateList(ctx, "jobs", []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2 := cyberdbtest.New(t, cyberdbtest.WithDataDir(dir))
	if n, err := libcyberdb.NewList[string](db2.Client, "jobs").Len(ctx); err != nil || n != 2 {
		t.Fatalf("after a restart on the same data dir: len %d, %v", n, err)
	}
}
