package libcyberdb

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestAdmin: the Client's observability and administration methods
// against the real daemon.
func TestAdmin(t *testing.T) {
	t.Parallel()
	_, c := start(t)
	ctx := context.Background()
	must(t, c.SetConfig(ctx, "slowlog-threshold", "1ns"))
	must(t, c.CreateList(ctx, "l", []int{3, 1, 2}))
	must(t, NewList[int](c, "l").Sort(ctx))
	slow, err := c.SlowLog(ctx, 1)
	if err != nil || len(slow) != 1 || slow[0].Op != "lsort" || slow[0].Table != "l" || slow[0].Time.IsZero() ||
		!strings.HasPrefix(slow[0].Client, "pid ") {
		t.Fatalf("SlowLog: %+v, %v", slow, err)
	}
	must(t, c.ResetSlowLog(ctx))
	if n, err := c.SlowLogLen(ctx); err != nil || n != 1 { // the reset itself
		t.Errorf("SlowLogLen after reset: %d, %v", n, err)
	}
	lat, err := c.Latency(ctx, false)
	if err != nil || lat["lsort"].Count != 1 || lat["lsort"].P99 <= 0 {
		t.Errorf("Latency: %+v, %v", lat["lsort"], err)
	}
	settings, err := c.Config(ctx, "slowlog-threshold")
	if err != nil || len(settings) != 1 || settings[0].Value != "1ns" || !settings[0].Live {
		t.Errorf("Config: %+v, %v", settings, err)
	}
	if err := c.SetConfig(ctx, "socket", "/x"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("SetConfig of socket: %v", err)
	}

	// Monitor on a connection of its own; KillClient ends it.
	events := make(chan MonitorEvent, 16)
	done := make(chan error, 1)
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		done <- c.Monitor(mctx, func(ev MonitorEvent) error { events <- ev; return nil })
	}()
	var monID uint64
	for i := 0; monID == 0; i++ {
		cs, err := c.Clients(ctx)
		must(t, err)
		for _, ci := range cs {
			if ci.Monitor {
				monID = ci.ID
			}
		}
		if i == 500 {
			t.Fatal("the monitor never showed in Clients")
		}
		time.Sleep(10 * time.Millisecond)
	}
	must(t, c.CreateDict(ctx, "d", nil))
	for ev := range events {
		if ev.Op == "create_dict" {
			if ev.Table != "d" || ev.Client == "" || ev.Time.IsZero() {
				t.Errorf("monitor event %+v", ev)
			}
			break
		}
	}
	ok, err := c.KillClient(ctx, monID)
	if err != nil || !ok {
		t.Fatalf("KillClient: %v, %v", ok, err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("Monitor after KillClient: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Monitor did not return after KillClient")
	}
	// A cancelled context ends a monitor with nil.
	go func() { done <- c.Monitor(mctx, func(MonitorEvent) error { return nil }) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Monitor after cancel: %v", err)
	}
}
