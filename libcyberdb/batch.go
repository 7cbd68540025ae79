package libcyberdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Batch queues operations on any number of tables and applies them with
// Exec as one atomic step (PROTOCOL.md 6.2): no other client sees a state
// between them, and if one fails none is applied. Queue operations through
// a handle's In view; each returns a Future filled by Exec:
//
//	b := c.Batch()
//	n := hits.In(b).Incr("home", 1)      // *Future[int]
//	log.In(b).Append("visit from bob")
//	if err := b.Exec(ctx); err != nil { ... }
//	fmt.Println(n.Value())
//
// A Batch is not safe for concurrent use. It is sent as one request, so a
// write batch whose connection is lost returns ErrConnClosed (applied
// entirely or not at all; which one is unknown) and is not resent.
type Batch struct {
	x       executor
	ops     []byte
	n       int
	setters []func(raw []byte, err error)
	err     error // first error while queuing (an unencodable value)
}

// Len is the number of queued operations.
func (b *Batch) Len() int { return b.n }

// add moves the request built in cl into the batch.
func (b *Batch) add(cl *call, set func(raw []byte, err error)) {
	if cl.encErr != nil && b.err == nil {
		b.err = cl.encErr
	}
	b.ops = wire.AppendArrayHeader(b.ops, 1+cl.nargs)
	b.ops = wire.AppendUint(b.ops, uint64(cl.op))
	b.ops = append(b.ops, cl.args...)
	b.n++
	if set == nil {
		set = func([]byte, error) {}
	}
	b.setters = append(b.setters, set)
	cl.release()
}

// Exec sends the queued operations as one atomic batch and fills their
// Futures. A guard that does not hold (GuardEq, ...) fails it with a
// *GuardError. On error nothing was applied and every Future reports the
// error, whose message names the failing operation ("batch op 2 (dincr):
// ..."); it matches that operation's sentinel (ErrTypeError, ...).
// Afterwards the Batch is empty and can be reused.
func (b *Batch) Exec(ctx context.Context) error {
	setters := b.setters
	ops, n, qerr := b.ops, b.n, b.err
	b.ops, b.n, b.setters, b.err = nil, 0, nil, nil
	fail := func(err error) error {
		for _, s := range setters {
			s(nil, err)
		}
		return err
	}
	if qerr != nil {
		return fail(qerr)
	}
	cl := newCall(wire.OpBatch)
	cl.args = append(wire.AppendArrayHeader(cl.args, n), ops...)
	cl.nargs = 1
	defer cl.release()
	if err := b.x.exec(ctx, cl); err != nil {
		return fail(guardError(err))
	}
	results, err := wire.SplitArray(cl.result)
	if err != nil || len(results) != n {
		return fail(&ProtocolError{Msg: fmt.Sprintf("batch of %d operations answered with %s", n, wire.Diagnose(cl.result))})
	}
	for i, s := range setters {
		s(results[i], nil)
	}
	return nil
}

// CreateDict queues the creation of a dict table (see Client.CreateDict).
func (b *Batch) CreateDict(name string, content any) {
	cl := newCall(wire.OpCreateDict).text(name)
	if content != nil {
		cl.value(content)
	}
	b.add(cl, nil)
}

// CreateList queues the creation of a list table (see Client.CreateList).
func (b *Batch) CreateList(name string, content any) {
	cl := newCall(wire.OpCreateList).text(name)
	if content != nil {
		cl.value(content)
	}
	b.add(cl, nil)
}

// ExpireTable queues Client.ExpireTable: after CreateDict or CreateList,
// a table created with its deadline, atomically.
func (b *Batch) ExpireTable(name string, ttl time.Duration) {
	b.add(newCall(wire.OpExpire).text(name).value(whenTTL(ttl)), nil)
}

// Drop queues the deletion of a table.
func (b *Batch) Drop(name string) { b.add(newCall(wire.OpDrop).text(name), nil) }

// ErrNotExecuted is what a Future reports before its batch's Exec.
var ErrNotExecuted = errors.New("cyberdb: the batch has not been executed")

// Future is the result of one operation queued in a Batch, available
// once Exec has returned.
type Future[T any] struct {
	v    T
	err  error
	done bool
}

// Result returns the operation's result, or the batch's error.
func (f *Future[T]) Result() (T, error) {
	if !f.done {
		return f.v, ErrNotExecuted
	}
	return f.v, f.err
}

// Value returns the result, or T's zero value if the batch failed.
func (f *Future[T]) Value() T { return f.v }

// future queues cl in b and returns a Future decoding its result.
func future[T any](b *Batch, cl *call, table string) *Future[T] {
	f := &Future[T]{}
	op := cl.op
	// What a decode error names: the call's key or index, kept only for
	// the ops whose message uses it (see decodeErr).
	var args []byte
	nargs := 0
	switch op {
	case wire.OpDGet, wire.OpDPop, wire.OpDSetDefault, wire.OpDIncr, wire.OpLGet, wire.OpLPop:
		args, nargs = bytes.Clone(cl.args), cl.nargs
	}
	b.add(cl, func(raw []byte, err error) {
		f.done = true
		if err != nil {
			f.err = err
			return
		}
		if derr := unmarshal(raw, &f.v); derr != nil {
			f.err = decodeErr(op, table, args, nargs, raw, &f.v, derr)
		}
	})
	return f
}

// DictBatch queues a Dict's operations in a Batch; see Dict.In.
type DictBatch[K comparable, V any] struct {
	d *Dict[K, V]
	b *Batch
}

// In returns a view of d whose methods queue operations in b instead of
// running them. The Dict's own Executor is not used: b's is.
func (d *Dict[K, V]) In(b *Batch) DictBatch[K, V] { return DictBatch[K, V]{d, b} }

func (q DictBatch[K, V]) fut(cl *call) *Future[V] { return future[V](q.b, cl, q.d.name) }

// Get queues Dict.Get.
func (q DictBatch[K, V]) Get(key K) *Future[V] { return q.fut(q.d.call(wire.OpDGet).value(key)) }

// GetOr queues Dict.GetOr.
func (q DictBatch[K, V]) GetOr(key K, def V) *Future[V] {
	return q.fut(q.d.call(wire.OpDGet).value(key).value(def))
}

// Set queues Dict.Set, with its deadline options.
func (q DictBatch[K, V]) Set(key K, value V, opts ...WriteOption) {
	cl := q.d.call(wire.OpDSet).value(key).value(value)
	if len(opts) > 0 {
		cl.opts(opts)
	}
	q.b.add(cl, nil)
}

// Expire queues Dict.Expire.
func (q DictBatch[K, V]) Expire(key K, ttl time.Duration) *Future[bool] {
	return future[bool](q.b, q.d.call(wire.OpDExpire).value(key).value(whenTTL(ttl)), q.d.name)
}

// Delete queues Dict.Delete; the batch fails with ErrNotFound if the key is absent.
func (q DictBatch[K, V]) Delete(key K) { q.b.add(q.d.call(wire.OpDDel).value(key), nil) }

// Has queues Dict.Has.
func (q DictBatch[K, V]) Has(key K) *Future[bool] {
	return future[bool](q.b, q.d.call(wire.OpDHas).value(key), q.d.name)
}

// Len queues Dict.Len.
func (q DictBatch[K, V]) Len() *Future[int] { return future[int](q.b, q.d.call(wire.OpDLen), q.d.name) }

// Pop queues Dict.Pop.
func (q DictBatch[K, V]) Pop(key K) *Future[V] { return q.fut(q.d.call(wire.OpDPop).value(key)) }

// SetDefault queues Dict.SetDefault.
func (q DictBatch[K, V]) SetDefault(key K, def V) *Future[V] {
	return q.fut(q.d.call(wire.OpDSetDefault).value(key).value(def))
}

// Update queues Dict.Update.
func (q DictBatch[K, V]) Update(m map[K]V) {
	if m == nil {
		m = map[K]V{}
	}
	q.b.add(q.d.call(wire.OpDUpdate).value(m), nil)
}

// Clear queues Dict.Clear.
func (q DictBatch[K, V]) Clear() { q.b.add(q.d.call(wire.OpDClear), nil) }

// Incr queues Dict.Incr.
func (q DictBatch[K, V]) Incr(key K, delta V) *Future[V] {
	return q.fut(q.d.call(wire.OpDIncr).value(key).value(delta))
}

// CompareAndSwap queues Dict.CompareAndSwap.
func (q DictBatch[K, V]) CompareAndSwap(key K, old, new V) *Future[bool] {
	return future[bool](q.b, q.d.call(wire.OpDCAS).value(key).value(new).value(old), q.d.name)
}

// ListBatch queues a List's operations in a Batch; see List.In.
type ListBatch[V any] struct {
	l *List[V]
	b *Batch
}

// In returns a view of l whose methods queue operations in b.
func (l *List[V]) In(b *Batch) ListBatch[V] { return ListBatch[V]{l, b} }

func (q ListBatch[V]) fut(cl *call) *Future[V] { return future[V](q.b, cl, q.l.name) }

// At queues List.At.
func (q ListBatch[V]) At(i int) *Future[V] { return q.fut(q.l.call(wire.OpLGet).int(i)) }

// SetAt queues List.SetAt.
func (q ListBatch[V]) SetAt(i int, v V) { q.b.add(q.l.call(wire.OpLSet).int(i).value(v), nil) }

// Append queues List.Append; the Future is the new length.
func (q ListBatch[V]) Append(vs ...V) *Future[int] {
	cl := q.l.call(wire.OpLAppend)
	for _, v := range vs {
		cl.value(v)
	}
	return future[int](q.b, cl, q.l.name)
}

// Insert queues List.Insert.
func (q ListBatch[V]) Insert(i int, v V) { q.b.add(q.l.call(wire.OpLInsert).int(i).value(v), nil) }

// Pop queues List.Pop.
func (q ListBatch[V]) Pop() *Future[V] { return q.fut(q.l.call(wire.OpLPop)) }

// Remove queues List.Remove.
func (q ListBatch[V]) Remove(v V) { q.b.add(q.l.call(wire.OpLRemove).value(v), nil) }

// SetSlice queues List.SetSlice.
func (q ListBatch[V]) SetSlice(s Slice, vs []V) {
	if vs == nil {
		vs = []V{}
	}
	q.b.add(q.l.call(wire.OpLSetSlice).slice(s).value(vs), nil)
}

// Contains queues List.Contains.
func (q ListBatch[V]) Contains(v V) *Future[bool] {
	return future[bool](q.b, q.l.call(wire.OpLContains).value(v), q.l.name)
}

// Len queues List.Len.
func (q ListBatch[V]) Len() *Future[int] { return future[int](q.b, q.l.call(wire.OpLLen), q.l.name) }

// Clear queues List.Clear.
func (q ListBatch[V]) Clear() { q.b.add(q.l.call(wire.OpLClear), nil) }
