package libcyberdb

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// recorder is a user's Executor that wraps a Client: it records the ops
// and forwards them with the arguments the handles gave it.
type recorder struct {
	mu  sync.Mutex
	ops []wire.Op
	c   *Client
}

func (r *recorder) Do(ctx context.Context, op wire.Op, args ...any) (wire.Raw, error) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
	return r.c.Do(ctx, op, args...)
}

// TestForeignExecutor: handles on an Executor of the user's send the
// same arguments as on a Client (the encoded arguments are split one per
// wire.Raw and sent again as they are), with options, several values and
// nested ones, and the errors come back matching the sentinels.
func TestForeignExecutor(t *testing.T) {
	ctx := context.Background()
	_, c := start(t)
	r := &recorder{c: c}
	if err := c.CreateDict(ctx, "fx", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateList(ctx, "fl", nil); err != nil {
		t.Fatal(err)
	}
	d := NewDict[string, map[string]int](r, "fx")
	if err := d.Set(ctx, "a", map[string]int{"x": 1}, TTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if v, err := d.Get(ctx, "a"); err != nil || v["x"] != 1 {
		t.Fatalf("get: %v, %v", v, err)
	}
	if _, err := d.Get(ctx, "b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get of a missing key: %v", err)
	}
	if ttl, ok, err := d.TTL(ctx, "a"); err != nil || !ok || ttl < 59*time.Minute {
		t.Errorf("ttl: %v %v %v", ttl, ok, err)
	}
	l := NewList[int](r, "fl")
	if _, err := l.Append(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Extend(ctx, []int{1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := l.Insert(ctx, -1, 9); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Slice(ctx, Span(0, 10)); err != nil || !slices.Equal(got, []int{3, 1, 9, 2}) {
		t.Errorf("slice: %v, %v", got, err)
	}
	if _, err := NewDict[string, int](r, "nothere").Get(ctx, "k"); !errors.Is(err, ErrNoTable) {
		t.Errorf("missing table: %v", err)
	}
	want := []wire.Op{wire.OpDSet, wire.OpDGet, wire.OpDGet, wire.OpDTTL, wire.OpLAppend, wire.OpLExtend, wire.OpLInsert, wire.OpLSlice, wire.OpDGet}
	if !slices.Equal(r.ops, want) {
		t.Errorf("ops through the Executor:\n got %v\nwant %v", r.ops, want)
	}
}
