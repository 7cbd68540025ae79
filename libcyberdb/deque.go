package libcyberdb

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// A list table is a deque (PROTOCOL.md 6.4): appending and popping at
// either end cost O(1) whatever its length. These are Python's
// collections.deque operations, under its names.

// End is an end of a list: Left (the front, index 0) or Right (the back).
type End bool

const (
	Left  End = true
	Right End = false
)

func (e End) String() string {
	if e == Left {
		return "left"
	}
	return "right"
}

// AppendLeft prepends the values one after the other (d.appendleft(v) for
// each, so the last ends up first) and returns the new length.
func (l *List[V]) AppendLeft(ctx context.Context, vs ...V) (int, error) {
	cl := l.call(wire.OpLAppendLeft)
	for _, v := range vs {
		cl.value(v)
	}
	var n int
	err := l.finish(ctx, cl, &n)
	return n, err
}

// ExtendLeft prepends every value of vs, one after the other
// (d.extendleft(vs): the last of vs ends up first), and returns the new
// length.
func (l *List[V]) ExtendLeft(ctx context.Context, vs []V) (int, error) {
	if vs == nil {
		vs = []V{}
	}
	var n int
	err := l.finish(ctx, l.call(wire.OpLExtendLeft).value(vs), &n)
	return n, err
}

// PopLeft removes and returns the first value (d.popleft()), in O(1);
// ErrIndexOutOfRange when the list is empty.
func (l *List[V]) PopLeft(ctx context.Context) (V, error) {
	var v V
	err := l.finish(ctx, l.call(wire.OpLPopLeft), &v)
	return v, err
}

// Rotate moves the last n values to the front (d.rotate(n)); a negative n
// moves the first -n to the back.
func (l *List[V]) Rotate(ctx context.Context, n int) error {
	return l.finish(ctx, l.call(wire.OpLRotate).int(n), nil)
}

// Move pops a value from end from of l and pushes it onto end to of dst,
// atomically (Redis's LMOVE), and returns it. dst may be l itself.
// ErrIndexOutOfRange when l is empty.
func (l *List[V]) Move(ctx context.Context, dst *List[V], from, to End) (V, error) {
	var v V
	err := l.finish(ctx, l.call(wire.OpLMove).raw(dst.enc).text(from.String()).text(to.String()), &v)
	return v, err
}

// AppendLeft queues List.AppendLeft; the Future is the new length.
func (q ListBatch[V]) AppendLeft(vs ...V) *Future[int] {
	cl := q.l.call(wire.OpLAppendLeft)
	for _, v := range vs {
		cl.value(v)
	}
	return future[int](q.b, cl, q.l.name)
}

// PopLeft queues List.PopLeft.
func (q ListBatch[V]) PopLeft() *Future[V] { return q.fut(q.l.call(wire.OpLPopLeft)) }

// Rotate queues List.Rotate.
func (q ListBatch[V]) Rotate(n int) { q.b.add(q.l.call(wire.OpLRotate).int(n), nil) }

// Move queues List.Move.
func (q ListBatch[V]) Move(dst *List[V], from, to End) *Future[V] {
	return q.fut(q.l.call(wire.OpLMove).raw(dst.enc).text(from.String()).text(to.String()))
}

// Guards make a Batch conditional (PROTOCOL.md 6.7): if a guard does not
// hold when its turn comes, Exec applies nothing and returns a
// *GuardError naming it (errors.Is(err, ErrGuardFailed)). Queue guards
// before the operations they protect, so that they check the state the
// batch starts from: Redis's WATCH/MULTI/EXEC without retries across
// round trips.
//
//	b := c.Batch()
//	acct.In(b).GuardEq("alice", 30)        // still what we read
//	acct.In(b).Set("alice", 20)
//	acct.In(b).Incr("bob", 10)
//	err := b.Exec(ctx)                     // *GuardError if alice changed

// ErrGuardFailed is what a batch whose guard did not hold matches.
var ErrGuardFailed = wire.ErrGuardFailed

// GuardError is the error of a batch whose guard did not hold: nothing of
// the batch was applied.
type GuardError struct {
	Index int    // the guard's position among the batch's operations, from 0
	Err   *Error // the daemon's error: "batch op K (guard): guard failed: ..."
}

func (e *GuardError) Error() string { return "cyberdb: " + e.Err.Message }

// Is matches ErrGuardFailed.
func (e *GuardError) Is(target error) bool { return target == ErrGuardFailed }

// Unwrap returns the daemon's error.
func (e *GuardError) Unwrap() error { return e.Err }

// guardError turns a batch's guard_failed error into a *GuardError; the
// index is read from the "batch op K (guard): " prefix PROTOCOL.md 6.2
// specifies.
func guardError(err error) error {
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeGuardFailed {
		return err
	}
	ge := &GuardError{Index: -1, Err: we}
	if rest, ok := strings.CutPrefix(we.Message, "batch op "); ok {
		if k, _, ok := strings.Cut(rest, " "); ok {
			if i, err := strconv.Atoi(k); err == nil {
				ge.Index = i
			}
		}
	}
	return ge
}

func guardCall(table, kind string) *call { return newCall(wire.OpGuard).text(table).text(kind) }

// GuardExists queues a guard: the table exists (either kind).
func (b *Batch) GuardExists(table string) { b.add(guardCall(table, "exists"), nil) }

// GuardLen queues a guard: the table has exactly n entries or elements.
func (b *Batch) GuardLen(table string, n int) { b.add(guardCall(table, "len").int(n), nil) }

// GuardEq queues a guard: the dict holds value at key.
func (q DictBatch[K, V]) GuardEq(key K, value V) {
	q.b.add(guardCall(q.d.name, "eq").value(key).value(value), nil)
}

// GuardAbsent queues a guard: the dict has no entry key.
func (q DictBatch[K, V]) GuardAbsent(key K) { q.b.add(guardCall(q.d.name, "absent").value(key), nil) }

// GuardCompareAndSwap queues Dict.CompareAndSwap as a guard: it sets key to
// new if it holds old, and if it does not, the whole batch fails.
func (q DictBatch[K, V]) GuardCompareAndSwap(key K, old, new V) {
	q.b.add(guardCall(q.d.name, "cas").value(key).value(new).value(old), nil)
}

// GuardLen queues a guard: the list has exactly n elements.
func (q ListBatch[V]) GuardLen(n int) { q.b.add(guardCall(q.l.name, "len").int(n), nil) }
