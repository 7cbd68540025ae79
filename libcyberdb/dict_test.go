package libcyberdb

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDictTyped(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "counts", nil))
	d := NewDict[string, int](c, "counts")
	if d.Name() != "counts" {
		t.Fatalf("Name = %q", d.Name())
	}

	must(t, d.Set(ctx, "a", 1))
	must(t, d.Set(ctx, "b", 2))
	must(t, d.Set(ctx, "c", 3))
	if v, err := d.Get(ctx, "b"); err != nil || v != 2 {
		t.Fatalf("Get(b) = %v, %v", v, err)
	}
	if _, err := d.Get(ctx, "zz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(zz) err = %v, want ErrNotFound", err)
	} else if !strings.Contains(err.Error(), `"zz"`) {
		t.Fatalf("error %q does not keep the server's message", err)
	}
	if v, err := d.GetOr(ctx, "zz", 42); err != nil || v != 42 {
		t.Fatalf("GetOr = %v, %v", v, err)
	}
	if ok, err := d.Has(ctx, "a"); err != nil || !ok {
		t.Fatalf("Has(a) = %v, %v", ok, err)
	}
	if ok, err := d.Has(ctx, "zz"); err != nil || ok {
		t.Fatalf("Has(zz) = %v, %v", ok, err)
	}
	if n, err := d.Len(ctx); err != nil || n != 3 {
		t.Fatalf("Len = %v, %v", n, err)
	}
	if ks, err := d.Keys(ctx); err != nil || !reflect.DeepEqual(ks, []string{"a", "b", "c"}) {
		t.Fatalf("Keys = %v, %v", ks, err)
	}
	if vs, err := d.Values(ctx); err != nil || !reflect.DeepEqual(vs, []int{1, 2, 3}) {
		t.Fatalf("Values = %v, %v", vs, err)
	}
	items, err := d.Items(ctx)
	must(t, err)
	if len(items) != 3 || items[2].Key != "c" || items[2].Value != 3 {
		t.Fatalf("Items = %+v", items)
	}
	if m, err := d.Map(ctx); err != nil || !reflect.DeepEqual(m, map[string]int{"a": 1, "b": 2, "c": 3}) {
		t.Fatalf("Map = %v, %v", m, err)
	}

	// Setting an existing key keeps its place; re-adding moves it last.
	must(t, d.Set(ctx, "a", 10))
	must(t, d.Delete(ctx, "b"))
	if err := d.Delete(ctx, "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete(b) again: %v", err)
	}
	must(t, d.Set(ctx, "b", 20))
	if ks, _ := d.Keys(ctx); !reflect.DeepEqual(ks, []string{"a", "c", "b"}) {
		t.Fatalf("order after updates = %v", ks)
	}

	if v, err := d.Pop(ctx, "c"); err != nil || v != 3 {
		t.Fatalf("Pop(c) = %v, %v", v, err)
	}
	if _, err := d.Pop(ctx, "c"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Pop(c) again: %v", err)
	}
	if v, err := d.PopOr(ctx, "c", -1); err != nil || v != -1 {
		t.Fatalf("PopOr = %v, %v", v, err)
	}
	if k, v, err := d.PopItem(ctx); err != nil || k != "b" || v != 20 {
		t.Fatalf("PopItem = %v, %v, %v", k, v, err)
	}
	if v, err := d.SetDefault(ctx, "a", 99); err != nil || v != 10 {
		t.Fatalf("SetDefault(a) = %v, %v", v, err)
	}
	if v, err := d.SetDefault(ctx, "n", 7); err != nil || v != 7 {
		t.Fatalf("SetDefault(n) = %v, %v", v, err)
	}
	must(t, d.Update(ctx, map[string]int{"x": 1}))
	must(t, d.UpdateItems(ctx, Item[string, int]{Key: "y", Value: 2}, Item[string, int]{Key: "z", Value: 3}))
	if ks, _ := d.Keys(ctx); !reflect.DeepEqual(ks, []string{"a", "n", "x", "y", "z"}) {
		t.Fatalf("keys after Update = %v", ks)
	}

	if v, err := d.Incr(ctx, "hits", 5); err != nil || v != 5 {
		t.Fatalf("Incr = %v, %v", v, err)
	}
	if v, err := d.Incr(ctx, "hits", -2); err != nil || v != 3 {
		t.Fatalf("Incr = %v, %v", v, err)
	}
	if ok, err := d.CompareAndSwap(ctx, "hits", 4, 100); err != nil || ok {
		t.Fatalf("CAS with wrong old = %v, %v", ok, err)
	}
	if ok, err := d.CompareAndSwap(ctx, "hits", 3, 100); err != nil || !ok {
		t.Fatalf("CAS = %v, %v", ok, err)
	}
	if ok, err := d.SetIfAbsent(ctx, "hits", 1); err != nil || ok {
		t.Fatalf("SetIfAbsent(present) = %v, %v", ok, err)
	}
	if ok, err := d.SetIfAbsent(ctx, "new", 1); err != nil || !ok {
		t.Fatalf("SetIfAbsent(absent) = %v, %v", ok, err)
	}

	must(t, d.Clear(ctx))
	if n, _ := d.Len(ctx); n != 0 {
		t.Fatalf("Len after Clear = %d", n)
	}
	if _, _, err := d.PopItem(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("PopItem on empty: %v", err)
	}
	if m, err := d.Map(ctx); err != nil || m == nil || len(m) != 0 {
		t.Fatalf("Map of empty = %v, %v", m, err)
	}
}

func TestDictErrors(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	d := NewDict[string, int](c, "nope")
	if _, err := d.Get(ctx, "a"); !errors.Is(err, ErrNoTable) {
		t.Fatalf("Get on missing table: %v", err)
	}
	must(t, c.CreateList(ctx, "alist", nil))
	if err := NewDict[string, int](c, "alist").Set(ctx, "a", 1); !errors.Is(err, ErrWrongKind) {
		t.Fatalf("Set on a list: %v", err)
	}
	must(t, c.CreateDict(ctx, "d", map[string]any{"text": "hello", "n": 1}))
	if err := c.CreateDict(ctx, "d", nil); !errors.Is(err, ErrTableExists) {
		t.Fatalf("CreateDict twice: %v", err)
	}
	d = NewDict[string, int](c, "d")
	if _, err := d.Incr(ctx, "text", 1); !errors.Is(err, ErrTypeError) {
		t.Fatalf("Incr of text: %v", err)
	}
	// A value that does not fit the handle's type.
	if _, err := d.Get(ctx, "text"); !errors.Is(err, ErrDecode) {
		t.Fatalf("Get text into int: %v", err)
	}
	var we *Error
	if _, err := NewDict[string, any](c, "d").Incr(ctx, "n", uint64(1<<64-1)); !errors.As(err, &we) || we.Code.String() != "overflow" || !errors.Is(err, ErrOverflow) {
		t.Fatalf("Incr overflow: %v", err)
	}
	// Values Go cannot encode are refused before anything is sent.
	var ee *EncodeError
	if err := NewDict[string, any](c, "d").Set(ctx, "ch", make(chan int)); !errors.As(err, &ee) {
		t.Fatalf("Set(chan): %v", err)
	}
}

func TestDictUntyped(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "mixed", []Item[any, any]{{Key: 1, Value: "one"}, {Key: "two", Value: 2.5}}))
	d := NewDict[any, any](c, "mixed")
	must(t, d.Set(ctx, []byte("k"), map[string]any{"a": []any{1, "x"}}))
	must(t, d.Set(ctx, int64(-5), nil))
	must(t, d.Set(ctx, 1.0, true)) // 1.0 and 1 are different keys
	if v, err := d.Get(ctx, 1); err != nil || v != "one" {
		t.Fatalf("Get(1) = %#v, %v", v, err)
	}
	if v, err := d.Get(ctx, 1.0); err != nil || v != true {
		t.Fatalf("Get(1.0) = %#v, %v", v, err)
	}
	if v, err := d.Get(ctx, "two"); err != nil || v != 2.5 {
		t.Fatalf("Get(two) = %#v, %v", v, err)
	}
	v, err := d.Get(ctx, []byte("k"))
	must(t, err)
	m, ok := v.(map[any]any)
	if !ok || !reflect.DeepEqual(m["a"], []any{uint64(1), "x"}) {
		t.Fatalf("Get(h'6b') = %#v", v)
	}
	if v, err := d.Get(ctx, -5); err != nil || v != nil {
		t.Fatalf("Get(-5) = %#v, %v", v, err)
	}
	if v, err := d.GetOr(ctx, "none", nil); err != nil || v != nil {
		t.Fatalf("GetOr(nil) = %#v, %v", v, err)
	}
	if n, err := d.Len(ctx); err != nil || n != 5 {
		t.Fatalf("Len = %d, %v", n, err)
	}
	ks, err := d.Keys(ctx)
	must(t, err)
	if len(ks) != 5 || ks[0] != uint64(1) || ks[1] != "two" || !reflect.DeepEqual(ks[2], []byte("k")) || ks[3] != int64(-5) || ks[4] != 1.0 {
		t.Fatalf("Keys = %#v", ks)
	}
	if v, err := d.Incr(ctx, "two", 1); err != nil || v != 3.5 {
		t.Fatalf("Incr float = %#v, %v", v, err)
	}
}

func TestDictScan(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "big", nil))
	d := NewDict[int, int](c, "big")
	const n = 1000
	items := make([]Item[int, int], n)
	for i := range items {
		items[i] = Item[int, int]{Key: i, Value: i * i}
	}
	must(t, d.UpdateItems(ctx, items...))
	sc := d.Scan(ctx, 37)
	next := 0
	for k, v := range sc.All() {
		if k != next || v != k*k {
			t.Fatalf("entry %d: %d=%d", next, k, v)
		}
		next++
	}
	must(t, sc.Err())
	if next != n {
		t.Fatalf("scanned %d entries, want %d", next, n)
	}
	// Breaking out early, then a second pass from the start.
	seen := 0
	for range sc.All() {
		seen++
		if seen == 5 {
			break
		}
	}
	if seen != 5 || sc.Err() != nil {
		t.Fatalf("early break: %d, %v", seen, sc.Err())
	}
	// The error is kept for after the loop.
	sc = NewDict[int, int](c, "missing").Scan(ctx, 0)
	for range sc.All() {
		t.Fatal("yielded from a missing table")
	}
	if !errors.Is(sc.Err(), ErrNoTable) {
		t.Fatalf("Err = %v", sc.Err())
	}
}
