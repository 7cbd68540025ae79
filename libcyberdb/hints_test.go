package libcyberdb

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// TestGoHints: the daemon's hints name protocol ops ("create it with
// create_dict"), which a Go programmer has never seen; the typed API names
// its methods instead, and Do keeps the daemon's text. Before the fix the
// handles' errors said "create it with create_dict or create_list".
func TestGoHints(t *testing.T) {
	t.Parallel()
	_, c := start(t)
	ctx := context.Background()

	_, err := NewDict[string, int](c, "hits").Incr(ctx, "/home", 1)
	if !errors.Is(err, ErrNoTable) || !strings.Contains(err.Error(), "create it with Client.CreateDict or Client.CreateList") ||
		strings.Contains(err.Error(), "create_dict") {
		t.Errorf("Incr on a missing table: %v", err)
	}
	must(t, c.CreateList(ctx, "q", nil))
	_, err = NewDict[string, int](c, "q").Get(ctx, "k")
	if !errors.Is(err, ErrWrongKind) || !strings.HasSuffix(err.Error(), `table "q" is a list; Dict.Get needs a dict (open this table with NewList)`) {
		t.Errorf("Dict.Get on a list: %v", err)
	}
	must(t, c.CreateDict(ctx, "d", nil))
	if err := NewList[int](c, "d").Sort(ctx); !strings.HasSuffix(err.Error(), "List.Sort needs a list (open this table with NewDict)") {
		t.Errorf("List.Sort on a dict: %v", err)
	}
	// In a batch, the failing operation's hint too.
	b := c.Batch()
	NewDict[string, int](c, "nope").In(b).Set("k", 1)
	if err := b.Exec(ctx); !errors.Is(err, ErrNoTable) || !strings.Contains(err.Error(), "Client.CreateDict") {
		t.Errorf("batch: %v", err)
	}
	// Do is the raw API: the daemon's words.
	if _, err := c.Do(ctx, wire.OpDGet, "nope", "k"); !errors.Is(err, ErrNoTable) || !strings.Contains(err.Error(), "create_dict") {
		t.Errorf("Do: %v", err)
	}
	// A message without a known hint is left alone.
	plain := &wire.Error{Code: wire.CodeKeyNotFound, Message: `key "k" not found in dict table "d"`}
	if got := goHints(plain); got != error(plain) {
		t.Errorf("goHints changed %v into %v", plain, got)
	}
}

// TestGoMethodsComplete: every op that a handle or the Client sends has a
// Go name for the hints (a new op must add one).
func TestGoMethodsComplete(t *testing.T) {
	for _, op := range wire.Ops() {
		if _, ok := goMethods[op]; !ok && op != wire.OpHello && !op.JournalOnly() {
			t.Errorf("op %s has no entry in goMethods (hints.go)", op)
		}
	}
}

// TestIfNotExists: many processes creating the same table at start-up all
// succeed and it is created once; the other kind is ErrWrongKind; without
// the option a taken name is ErrTableExists, as before.
func TestIfNotExists(t *testing.T) {
	t.Parallel()
	_, c := start(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.CreateDict(ctx, "shared", map[string]int{"by": i}, IfNotExists())
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, err := NewDict[string, int](c, "shared").Len(ctx); err != nil || n != 1 {
		t.Fatalf("len %d, %v; want the content of one creation", n, err)
	}
	if err := c.CreateDict(ctx, "shared", nil); !errors.Is(err, ErrTableExists) {
		t.Errorf("CreateDict without IfNotExists: %v", err)
	}
	if err := c.CreateList(ctx, "shared", nil, IfNotExists()); !errors.Is(err, ErrWrongKind) ||
		!strings.Contains(err.Error(), `table "shared" is a dict, not a list`) {
		t.Errorf("CreateList over a dict: %v", err)
	}
	// On a pinned connection too.
	pc, err := c.Conn(ctx)
	must(t, err)
	defer pc.Close()
	must(t, pc.CreateList(ctx, "l", []int{1}, IfNotExists()))
	must(t, pc.CreateList(ctx, "l", []int{2}, IfNotExists()))
	if v, err := NewList[int](pc, "l").Values(ctx); err != nil || len(v) != 1 || v[0] != 1 {
		t.Errorf("list %v, %v: want [1], the first content only", v, err)
	}
}

// TestPermissionAdvice: what a user who may not open the socket is told,
// in each case. (The CLI's tests run the real thing as another user.)
func TestPermissionAdvice(t *testing.T) {
	base := permFacts{blocked: "/run/cyberdb", mode: 0o750, owner: "cyberdb", group: "cyberdb", user: "alice"}
	out := base.advice()
	for _, want := range []string{"/run/cyberdb is mode 0750", "group cyberdb", "user alice is not in group cyberdb",
		"sudo usermod -aG cyberdb alice", "log in again"} {
		if !strings.Contains(out, want) {
			t.Errorf("advice %q lacks %q", out, want)
		}
	}
	late := base
	late.listedInIt = true
	if out := late.advice(); !strings.Contains(out, "after this session started: log in again, or run 'newgrp cyberdb'") {
		t.Errorf("member not yet in this session: %q", out)
	}
	in := base
	in.inGroup = true
	if out := in.advice(); !strings.Contains(out, "--socket-mode") {
		t.Errorf("member with a closed mode: %q", out)
	}
}
