package libcyberdb

import (
	"context"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Slice is Python's slice(start, stop, step): a nil bound is None.
// Build one with Span, From, Until, or Slice{} (the whole list), and
// change the step with By:
//
//	l[1:3]     Span(1, 3)
//	l[-2:]     From(-2)
//	l[:5]      Until(5)
//	l[::-1]    Slice{}.By(-1)
//	l[1:9:2]   Span(1, 9).By(2)
type Slice struct {
	Start, Stop, Step *int
}

// Span is the slice [start:stop].
func Span(start, stop int) Slice { return Slice{Start: &start, Stop: &stop} }

// From is the slice [start:].
func From(start int) Slice { return Slice{Start: &start} }

// Until is the slice [:stop].
func Until(stop int) Slice { return Slice{Stop: &stop} }

// By returns s with the given step (0 is refused by the daemon with ErrBadRequest).
func (s Slice) By(step int) Slice { s.Step = &step; return s }

func (cl *call) optInt(p *int) *call {
	if p == nil {
		return cl.null()
	}
	return cl.int(*p)
}

func (cl *call) slice(s Slice) *call { return cl.optInt(s.Start).optInt(s.Stop).optInt(s.Step) }

// List is a handle on a list table of values V. It holds no data and no
// connection: create it once (NewList) and use it from any goroutine. Use
// List[any] for lists of mixed types.
//
// Every method is one atomic operation on the daemon, named after Python's
// list (PROTOCOL.md 6.4 gives the exact rules): negative indices count from
// the end, slices clamp, Insert clamps. Errors match ErrNoTable when the
// table does not exist, ErrWrongKind when it is a dict, and the per-method
// errors listed below.
type List[V any] struct {
	x    executor // asExecutor: the Client or Conn itself, or foreign
	name string
	enc  []byte
}

// NewList returns a handle on the list table name, on a Client or a Conn.
// It does not create the table (see CreateList).
func NewList[V any](x Executor, name string) *List[V] {
	return &List[V]{x: asExecutor(x), name: name, enc: wire.AppendText(nil, name)}
}

// Name is the table's name.
func (l *List[V]) Name() string { return l.name }

func (l *List[V]) call(op wire.Op) *call { return newCall(op).raw(l.enc) }

func (l *List[V]) finish(ctx context.Context, cl *call, out any) error {
	err := l.x.exec(ctx, cl)
	if err == nil && out != nil {
		if derr := unmarshal(cl.result, out); derr != nil {
			err = decodeErr(cl.op, l.name, cl.args, cl.nargs, cl.result, out, derr)
		}
	}
	cl.release()
	return err
}

// At returns the value at index i (l[i]); ErrIndexOutOfRange outside
// -len .. len-1.
func (l *List[V]) At(ctx context.Context, i int) (V, error) {
	var v V
	err := l.finish(ctx, l.call(wire.OpLGet).int(i), &v)
	return v, err
}

// SetAt replaces the value at index i (l[i] = v); ErrIndexOutOfRange.
func (l *List[V]) SetAt(ctx context.Context, i int, v V) error {
	return l.finish(ctx, l.call(wire.OpLSet).int(i).value(v), nil)
}

// DeleteAt removes the value at index i (del l[i]); ErrIndexOutOfRange.
func (l *List[V]) DeleteAt(ctx context.Context, i int) error {
	return l.finish(ctx, l.call(wire.OpLDel).int(i), nil)
}

// Slice returns l[start:stop:step].
func (l *List[V]) Slice(ctx context.Context, s Slice) ([]V, error) {
	var vs []V
	err := l.finish(ctx, l.call(wire.OpLSlice).slice(s), &vs)
	if err == nil && vs == nil {
		vs = []V{}
	}
	return vs, err
}

// DeleteSlice removes l[start:stop:step] (del l[start:stop:step]).
func (l *List[V]) DeleteSlice(ctx context.Context, s Slice) error {
	return l.finish(ctx, l.call(wire.OpLDelSlice).slice(s), nil)
}

// SetSlice replaces l[start:stop:step] with vs (l[start:stop:step] = vs).
// With no step (or step 1) the list grows or shrinks to fit vs, and a
// stop before start inserts at start; with any other step it is an
// extended slice assignment, and vs must have exactly as many values as
// the slice selects, else ErrBadRequest (Python's ValueError). A step of
// 0 is ErrBadRequest too.
//
//	l[1:3] = ["a"]      l.SetSlice(ctx, Span(1, 3), []string{"a"})
//	l[len(l):] = vs     l.SetSlice(ctx, From(n), vs)      (appends)
//	l[::2] = vs         l.SetSlice(ctx, Slice{}.By(2), vs)
func (l *List[V]) SetSlice(ctx context.Context, s Slice, vs []V) error {
	if vs == nil {
		vs = []V{}
	}
	return l.finish(ctx, l.call(wire.OpLSetSlice).slice(s).value(vs), nil)
}

// Contains reports whether some value equals v (v in l), stopping at the
// first match. Equality is of canonical CBOR: 1 and 1.0 differ.
func (l *List[V]) Contains(ctx context.Context, v V) (bool, error) {
	var ok bool
	err := l.finish(ctx, l.call(wire.OpLContains).value(v), &ok)
	return ok, err
}

// Append appends the values, atomically, and returns the new length.
func (l *List[V]) Append(ctx context.Context, vs ...V) (int, error) {
	cl := l.call(wire.OpLAppend)
	for _, v := range vs {
		cl.value(v)
	}
	var n int
	err := l.finish(ctx, cl, &n)
	return n, err
}

// Extend appends every value of vs (l.extend(vs)) and returns the new length.
func (l *List[V]) Extend(ctx context.Context, vs []V) (int, error) {
	if vs == nil {
		vs = []V{}
	}
	var n int
	err := l.finish(ctx, l.call(wire.OpLExtend).value(vs), &n)
	return n, err
}

// Insert inserts v before index i (l.insert(i, v)); i past the end
// appends, before the start prepends.
func (l *List[V]) Insert(ctx context.Context, i int, v V) error {
	return l.finish(ctx, l.call(wire.OpLInsert).int(i).value(v), nil)
}

// Pop removes and returns the last value (l.pop()); ErrIndexOutOfRange
// when the list is empty.
func (l *List[V]) Pop(ctx context.Context) (V, error) {
	var v V
	err := l.finish(ctx, l.call(wire.OpLPop), &v)
	return v, err
}

// PopAt removes and returns the value at index i (l.pop(i));
// ErrIndexOutOfRange.
func (l *List[V]) PopAt(ctx context.Context, i int) (V, error) {
	var v V
	err := l.finish(ctx, l.call(wire.OpLPop).int(i), &v)
	return v, err
}

// Remove removes the first value equal to v (l.remove(v));
// ErrValueNotFound when there is none.
func (l *List[V]) Remove(ctx context.Context, v V) error {
	return l.finish(ctx, l.call(wire.OpLRemove).value(v), nil)
}

// Count returns how many values equal v (l.count(v)).
func (l *List[V]) Count(ctx context.Context, v V) (int, error) {
	var n int
	err := l.finish(ctx, l.call(wire.OpLCount).value(v), &n)
	return n, err
}

// IndexOf returns the index of the first value equal to v
// (l.index(v[, start[, stop]])): bounds are an optional start and stop.
// ErrValueNotFound when there is none.
func (l *List[V]) IndexOf(ctx context.Context, v V, bounds ...int) (int, error) {
	cl := l.call(wire.OpLIndex).value(v)
	for _, b := range bounds[:min(len(bounds), 2)] {
		cl.int(b)
	}
	var i int
	err := l.finish(ctx, cl, &i)
	return i, err
}

// Reverse reverses the list in place (l.reverse()).
func (l *List[V]) Reverse(ctx context.Context) error {
	return l.finish(ctx, l.call(wire.OpLReverse), nil)
}

// Sort sorts the list in place, stable and ascending (l.sort()). Numbers
// compare with numbers, text with text, bytes with bytes, arrays
// element-wise; other mixtures fail with ErrTypeError and leave the list
// unchanged.
func (l *List[V]) Sort(ctx context.Context) error {
	return l.finish(ctx, l.call(wire.OpLSort).bool(false), nil)
}

// SortDesc sorts the list in place, stable and descending
// (l.sort(reverse=True)).
func (l *List[V]) SortDesc(ctx context.Context) error {
	return l.finish(ctx, l.call(wire.OpLSort).bool(true), nil)
}

// Clear removes every value (l.clear()).
func (l *List[V]) Clear(ctx context.Context) error {
	return l.finish(ctx, l.call(wire.OpLClear), nil)
}

// Values returns the whole list (list(l)). Use Scan for big tables.
func (l *List[V]) Values(ctx context.Context) ([]V, error) {
	var vs []V
	err := l.finish(ctx, l.call(wire.OpLToList), &vs)
	if err == nil && vs == nil {
		vs = []V{}
	}
	return vs, err
}

// Len returns the number of values (len(l)).
func (l *List[V]) Len(ctx context.Context) (int, error) {
	var n int
	err := l.finish(ctx, l.call(wire.OpLLen), &n)
	return n, err
}

// Scan pages through the list from index 0, pageSize values per round
// trip (0 means 256), yielding each index and value; see Scanner. Values
// inserted or removed during the scan shift the later pages.
func (l *List[V]) Scan(ctx context.Context, pageSize int) *Scanner[int, V] {
	if pageSize <= 0 {
		pageSize = defaultPage
	}
	return &Scanner[int, V]{next: func(yield func(int, V) bool) error {
		for start := 0; ; start += pageSize {
			var page []V
			if err := l.finish(ctx, l.call(wire.OpLRange).int(start).int(pageSize), &page); err != nil {
				return err
			}
			for i, v := range page {
				if !yield(start+i, v) {
					return nil
				}
			}
			if len(page) < pageSize {
				return nil
			}
		}
	}}
}
