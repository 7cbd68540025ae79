package libcyberdb

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

func TestListTyped(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	must(t, c.CreateList(ctx, "l", []int{3, 1, 2}))
	l := NewList[int](c, "l")
	want := func(exp ...int) {
		t.Helper()
		got, err := l.Values(ctx)
		if err != nil || len(got) != len(exp) || len(exp) > 0 && !reflect.DeepEqual(got, exp) {
			t.Fatalf("Values = %v, %v; want %v", got, err, exp)
		}
	}
	want(3, 1, 2)
	if n, err := l.Append(ctx, 4, 5); err != nil || n != 5 {
		t.Fatalf("Append = %d, %v", n, err)
	}
	if n, err := l.Extend(ctx, []int{6}); err != nil || n != 6 {
		t.Fatalf("Extend = %d, %v", n, err)
	}
	if v, err := l.At(ctx, -1); err != nil || v != 6 {
		t.Fatalf("At(-1) = %d, %v", v, err)
	}
	if _, err := l.At(ctx, 6); !errors.Is(err, ErrIndexOutOfRange) {
		t.Fatalf("At(6): %v", err)
	}
	must(t, l.SetAt(ctx, 0, 30))
	if err := l.SetAt(ctx, -7, 0); !errors.Is(err, ErrIndexOutOfRange) {
		t.Fatalf("SetAt(-7): %v", err)
	}
	want(30, 1, 2, 4, 5, 6)
	must(t, l.DeleteAt(ctx, 1))
	if err := l.DeleteAt(ctx, 99); !errors.Is(err, ErrIndexOutOfRange) {
		t.Fatalf("DeleteAt(99): %v", err)
	}
	want(30, 2, 4, 5, 6)
	if s, err := l.Slice(ctx, Span(1, 3)); err != nil || !reflect.DeepEqual(s, []int{2, 4}) {
		t.Fatalf("Slice(1:3) = %v, %v", s, err)
	}
	if s, _ := l.Slice(ctx, From(-2)); !reflect.DeepEqual(s, []int{5, 6}) {
		t.Fatalf("Slice(-2:) = %v", s)
	}
	if s, _ := l.Slice(ctx, Until(2)); !reflect.DeepEqual(s, []int{30, 2}) {
		t.Fatalf("Slice(:2) = %v", s)
	}
	if s, _ := l.Slice(ctx, Slice{}.By(-2)); !reflect.DeepEqual(s, []int{6, 4, 30}) {
		t.Fatalf("Slice(::-2) = %v", s)
	}
	if s, err := l.Slice(ctx, Span(10, 20)); err != nil || s == nil || len(s) != 0 {
		t.Fatalf("Slice(10:20) = %#v, %v", s, err)
	}
	if _, err := l.Slice(ctx, Slice{}.By(0)); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("Slice step 0: %v", err)
	}
	must(t, l.Insert(ctx, 0, 7))
	must(t, l.Insert(ctx, 100, 8)) // clamps: appends
	want(7, 30, 2, 4, 5, 6, 8)
	must(t, l.DeleteSlice(ctx, Span(1, 3)))
	want(7, 4, 5, 6, 8)
	if v, err := l.Pop(ctx); err != nil || v != 8 {
		t.Fatalf("Pop = %d, %v", v, err)
	}
	if v, err := l.PopAt(ctx, 0); err != nil || v != 7 {
		t.Fatalf("PopAt(0) = %d, %v", v, err)
	}
	if _, err := l.PopAt(ctx, 10); !errors.Is(err, ErrIndexOutOfRange) {
		t.Fatalf("PopAt(10): %v", err)
	}
	_, _ = l.Append(ctx, 5)
	if n, err := l.Count(ctx, 5); err != nil || n != 2 {
		t.Fatalf("Count(5) = %d, %v", n, err)
	}
	if i, err := l.IndexOf(ctx, 5); err != nil || i != 1 {
		t.Fatalf("IndexOf(5) = %d, %v", i, err)
	}
	if i, err := l.IndexOf(ctx, 5, 2); err != nil || i != 3 {
		t.Fatalf("IndexOf(5, 2) = %d, %v", i, err)
	}
	if _, err := l.IndexOf(ctx, 5, 2, 3); !errors.Is(err, ErrValueNotFound) {
		t.Fatalf("IndexOf(5, 2, 3): %v", err)
	}
	must(t, l.Remove(ctx, 5))
	if err := l.Remove(ctx, 99); !errors.Is(err, ErrValueNotFound) {
		t.Fatalf("Remove(99): %v", err)
	}
	want(4, 6, 5)
	must(t, l.Reverse(ctx))
	want(5, 6, 4)
	must(t, l.Sort(ctx))
	want(4, 5, 6)
	must(t, l.SortDesc(ctx))
	want(6, 5, 4)
	if n, err := l.Len(ctx); err != nil || n != 3 {
		t.Fatalf("Len = %d, %v", n, err)
	}
	must(t, l.Clear(ctx))
	want()
	if _, err := l.Pop(ctx); !errors.Is(err, ErrIndexOutOfRange) {
		t.Fatalf("Pop on empty: %v", err)
	}

	if _, err := NewList[int](c, "missing").Len(ctx); !errors.Is(err, ErrNoTable) {
		t.Fatalf("Len of missing: %v", err)
	}
	must(t, c.CreateDict(ctx, "adict", nil))
	if _, err := NewList[int](c, "adict").Append(ctx, 1); !errors.Is(err, ErrWrongKind) {
		t.Fatalf("Append to a dict: %v", err)
	}
	if err := c.CreateList(ctx, "l", nil); !errors.Is(err, ErrTableExists) {
		t.Fatalf("CreateList twice: %v", err)
	}
}

func TestListUntyped(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	must(t, c.CreateList(ctx, "m", nil))
	l := NewList[any](c, "m")
	if n, err := l.Append(ctx, 1, "two", []byte{3}, nil, 4.5, []any{"x"}); err != nil || n != 6 {
		t.Fatalf("Append = %d, %v", n, err)
	}
	got, err := l.Values(ctx)
	must(t, err)
	want := []any{uint64(1), "two", []byte{3}, nil, 4.5, []any{"x"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Values = %#v", got)
	}
	if err := l.Sort(ctx); !errors.Is(err, ErrTypeError) {
		t.Fatalf("Sort of mixed kinds: %v", err)
	}
	if got2, _ := l.Values(ctx); !reflect.DeepEqual(got2, want) {
		t.Fatalf("failed Sort changed the list: %#v", got2)
	}
	if i, err := l.IndexOf(ctx, []byte{3}); err != nil || i != 2 {
		t.Fatalf("IndexOf(bytes) = %d, %v", i, err)
	}
	if n, err := l.Count(ctx, 1.0); err != nil || n != 0 {
		t.Fatalf("Count(1.0) = %d, %v (1.0 is not 1)", n, err)
	}
	if v, err := l.At(ctx, 4); err != nil || v != 4.5 {
		t.Fatalf("At(4) = %#v, %v", v, err)
	}
}

func TestListScan(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	vals := make([]int, 250)
	for i := range vals {
		vals[i] = i * 2
	}
	must(t, c.CreateList(ctx, "l", vals))
	for _, page := range []int{0, 1, 10, 50, 249, 250, 251} {
		sc := NewList[int](c, "l").Scan(ctx, page)
		n := 0
		for i, v := range sc.All() {
			if i != n || v != 2*i {
				t.Fatalf("page %d: at %d got %d=%d", page, n, i, v)
			}
			n++
		}
		if sc.Err() != nil || n != len(vals) {
			t.Fatalf("page %d: %d values, %v", page, n, sc.Err())
		}
	}
}

func TestListSetSliceAndContains(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	must(t, c.CreateList(ctx, "l", []int{0, 1, 2, 3, 4, 5}))
	l := NewList[int](c, "l")
	want := func(exp ...int) {
		t.Helper()
		got, err := l.Values(ctx)
		if err != nil || !reflect.DeepEqual(got, exp) {
			t.Fatalf("Values = %v, %v; want %v", got, err, exp)
		}
	}
	must(t, l.SetSlice(ctx, Span(1, 3), []int{10})) // l[1:3] = [10]
	want(0, 10, 3, 4, 5)
	must(t, l.SetSlice(ctx, From(5), []int{6, 7})) // l[5:] = [6, 7]: appends
	want(0, 10, 3, 4, 5, 6, 7)
	must(t, l.SetSlice(ctx, Slice{}.By(-3), []int{-1, -2, -3})) // l[::-3] = [-1, -2, -3]
	want(-3, 10, 3, -2, 5, 6, -1)
	must(t, l.SetSlice(ctx, Until(2), nil)) // l[:2] = []
	want(3, -2, 5, 6, -1)
	if err := l.SetSlice(ctx, Slice{}.By(2), []int{1}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("extended slice of the wrong size: %v", err)
	}
	if err := l.SetSlice(ctx, Slice{}.By(0), nil); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("step 0: %v", err)
	}
	want(3, -2, 5, 6, -1)
	for v, exp := range map[int]bool{3: true, -1: true, 4: false} {
		if ok, err := l.Contains(ctx, v); err != nil || ok != exp {
			t.Fatalf("Contains(%d) = %v, %v", v, ok, err)
		}
	}
	if _, err := NewList[int](c, "nope").Contains(ctx, 1); !errors.Is(err, ErrNoTable) {
		t.Fatalf("Contains on a missing table: %v", err)
	}

	b := c.Batch()
	l.In(b).SetSlice(Span(0, 1), []int{7, 8})
	has := l.In(b).Contains(8)
	must(t, b.Exec(ctx))
	if ok, err := has.Result(); err != nil || !ok {
		t.Fatalf("batch Contains = %v, %v", ok, err)
	}
	want(7, 8, -2, 5, 6, -1)
}
