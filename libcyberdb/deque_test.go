package libcyberdb

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

func TestListDeque(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	must(t, c.CreateList(ctx, "d", []int{1, 2, 3}))
	must(t, c.CreateList(ctx, "e", nil))
	d, e := NewList[int](c, "d"), NewList[int](c, "e")
	want := func(l *List[int], exp ...int) {
		t.Helper()
		got, err := l.Values(ctx)
		if err != nil || !reflect.DeepEqual(got, append([]int{}, exp...)) {
			t.Fatalf("%s = %v, %v; want %v", l.Name(), got, err, exp)
		}
	}
	if n, err := d.AppendLeft(ctx, 0, -1); err != nil || n != 5 {
		t.Fatalf("AppendLeft = %d, %v", n, err)
	}
	want(d, -1, 0, 1, 2, 3)
	if v, err := d.PopLeft(ctx); err != nil || v != -1 {
		t.Fatalf("PopLeft = %d, %v", v, err)
	}
	if n, err := d.ExtendLeft(ctx, []int{8, 9}); err != nil || n != 6 {
		t.Fatalf("ExtendLeft = %d, %v", n, err)
	}
	want(d, 9, 8, 0, 1, 2, 3)
	must(t, d.Rotate(ctx, 2))
	want(d, 2, 3, 9, 8, 0, 1)
	if v, err := d.Move(ctx, e, Left, Right); err != nil || v != 2 {
		t.Fatalf("Move = %d, %v", v, err)
	}
	want(e, 2)
	if _, err := NewList[int](c, "x").PopLeft(ctx); !errors.Is(err, ErrNoTable) {
		t.Fatalf("PopLeft of a missing table: %v", err)
	}
	must(t, c.CreateList(ctx, "empty", nil))
	if _, err := NewList[int](c, "empty").PopLeft(ctx); !errors.Is(err, ErrIndexOutOfRange) {
		t.Fatalf("PopLeft of an empty list: %v", err)
	}
	b := c.Batch()
	n := d.In(b).AppendLeft(7)
	p := e.In(b).PopLeft()
	m := d.In(b).Move(e, Right, Left)
	d.In(b).Rotate(-1)
	must(t, b.Exec(ctx))
	if n.Value() != 6 || p.Value() != 2 || m.Value() != 1 {
		t.Fatalf("batch: %d %d %d", n.Value(), p.Value(), m.Value())
	}
	want(d, 3, 9, 8, 0, 7)
}

func TestBatchGuards(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "acct", map[string]int{"alice": 30, "bob": 5}))
	acct := NewDict[string, int](c, "acct")

	b := c.Batch()
	acct.In(b).GuardEq("alice", 30)
	acct.In(b).GuardAbsent("carol")
	b.GuardExists("acct")
	b.GuardLen("acct", 2)
	acct.In(b).Set("alice", 20)
	bob := acct.In(b).Incr("bob", 10)
	must(t, b.Exec(ctx))
	if bob.Value() != 15 {
		t.Fatalf("bob = %d", bob.Value())
	}

	b = c.Batch()
	acct.In(b).Set("carol", 1)
	acct.In(b).GuardEq("alice", 30) // it is 20 now
	acct.In(b).Incr("bob", 10)
	err := b.Exec(ctx)
	var ge *GuardError
	if !errors.Is(err, ErrGuardFailed) || !errors.As(err, &ge) || ge.Index != 1 {
		t.Fatalf("Exec = %v (%#v); want a *GuardError at index 1", err, ge)
	}
	if ok, _ := acct.Has(ctx, "carol"); ok {
		t.Fatal("a failed guard let an earlier Set through")
	}

	b = c.Batch()
	acct.In(b).GuardCompareAndSwap("alice", 20, 25)
	acct.In(b).Incr("bob", 1)
	must(t, b.Exec(ctx))
	b = c.Batch()
	acct.In(b).GuardCompareAndSwap("alice", 20, 99)
	acct.In(b).Incr("bob", 1)
	if err := b.Exec(ctx); !errors.As(err, &ge) || ge.Index != 0 {
		t.Fatalf("a failed CAS guard: %v", err)
	}
	if v, _ := acct.Get(ctx, "alice"); v != 25 {
		t.Fatalf("alice = %d", v)
	}
	if v, _ := acct.Get(ctx, "bob"); v != 16 {
		t.Fatalf("bob = %d", v)
	}
}
