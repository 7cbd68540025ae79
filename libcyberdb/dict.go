package libcyberdb

import (
	"context"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Item is one dict entry. It is encoded as the pair [key, value].
type Item[K, V any] struct {
	_     struct{} `cbor:",toarray"`
	Key   K
	Value V
}

func (Item[K, V]) isItem() {} // see locate

// Dict is a handle on a dict table whose keys are K and values V. It holds
// no data and no connection: create it once (NewDict) and use it from any
// goroutine. Use Dict[any, any] for tables of mixed types; integers then
// decode as int64 or uint64, maps as map[any]any.
//
// Every method is one atomic operation on the daemon, named after Python's
// dict (PROTOCOL.md 6.3 gives the exact rules). Errors match ErrNoTable
// when the table does not exist, ErrWrongKind when it is a list, and the
// per-method errors listed below.
type Dict[K comparable, V any] struct {
	x    executor // asExecutor: the Client or Conn itself, or foreign
	name string
	enc  []byte // the name, encoded
}

// NewDict returns a handle on the dict table name, on a Client or a Conn.
// It does not create the table (see CreateDict).
func NewDict[K comparable, V any](x Executor, name string) *Dict[K, V] {
	return &Dict[K, V]{x: asExecutor(x), name: name, enc: wire.AppendText(nil, name)}
}

// Name is the table's name.
func (d *Dict[K, V]) Name() string { return d.name }

func (d *Dict[K, V]) call(op wire.Op) *call { return newCall(op).raw(d.enc) }

// finish runs cl and decodes its result into out (nil: discard).
func (d *Dict[K, V]) finish(ctx context.Context, cl *call, out any) error {
	err := d.x.exec(ctx, cl)
	if err == nil && out != nil {
		if derr := unmarshal(cl.result, out); derr != nil {
			err = decodeErr(cl.op, d.name, cl.args, cl.nargs, cl.result, out, derr)
		}
	}
	cl.release()
	return err
}

// Get returns the value at key (d[k]); ErrNotFound when it is absent.
func (d *Dict[K, V]) Get(ctx context.Context, key K) (V, error) {
	return finishValue[V](ctx, d.x, d.name, arg(d.call(wire.OpDGet), key)) // fastpath.go
}

// GetOr returns the value at key, or def when the key is absent
// (d.get(k, def)).
func (d *Dict[K, V]) GetOr(ctx context.Context, key K, def V) (V, error) {
	var v V
	err := d.finish(ctx, d.call(wire.OpDGet).value(key).value(def), &v)
	return v, err
}

// Set sets key to value (d[k] = v). An existing key keeps its place in
// the insertion order. Its deadline is what opts say (TTL, ExpireAt,
// KeepTTL); without them the table's default TTL, or none: a plain Set
// removes the deadline the entry had, as Redis's SET does.
func (d *Dict[K, V]) Set(ctx context.Context, key K, value V, opts ...WriteOption) error {
	cl := arg(arg(d.call(wire.OpDSet), key), value)
	if len(opts) > 0 {
		cl.opts(opts)
	}
	return d.finish(ctx, cl, nil)
}

// Delete removes key (del d[k]); ErrNotFound when it is absent.
func (d *Dict[K, V]) Delete(ctx context.Context, key K) error {
	return d.finish(ctx, arg(d.call(wire.OpDDel), key), nil)
}

// Has reports whether key is present (k in d).
func (d *Dict[K, V]) Has(ctx context.Context, key K) (bool, error) {
	var ok bool
	err := d.finish(ctx, d.call(wire.OpDHas).value(key), &ok)
	return ok, err
}

// Len returns the number of entries (len(d)).
func (d *Dict[K, V]) Len(ctx context.Context) (int, error) {
	var n int
	err := d.finish(ctx, d.call(wire.OpDLen), &n)
	return n, err
}

// Keys returns every key in insertion order (list(d.keys())). Use Scan
// for big tables.
func (d *Dict[K, V]) Keys(ctx context.Context) ([]K, error) {
	var ks []K
	err := d.finish(ctx, d.call(wire.OpDKeys), &ks)
	return ks, err
}

// Values returns every value in insertion order (list(d.values())).
func (d *Dict[K, V]) Values(ctx context.Context) ([]V, error) {
	var vs []V
	err := d.finish(ctx, d.call(wire.OpDValues), &vs)
	return vs, err
}

// Items returns every entry in insertion order (list(d.items())).
func (d *Dict[K, V]) Items(ctx context.Context) ([]Item[K, V], error) {
	var items []Item[K, V]
	err := d.finish(ctx, d.call(wire.OpDItems), &items)
	return items, err
}

// Map returns the whole table as a Go map (dict(d)); Go maps have no
// order, use Items to keep it.
func (d *Dict[K, V]) Map(ctx context.Context) (map[K]V, error) {
	var m map[K]V
	err := d.finish(ctx, d.call(wire.OpDToDict), &m)
	if err == nil && m == nil {
		m = map[K]V{}
	}
	return m, err
}

// Pop removes key and returns its value (d.pop(k)); ErrNotFound when it
// is absent.
func (d *Dict[K, V]) Pop(ctx context.Context, key K) (V, error) {
	var v V
	err := d.finish(ctx, d.call(wire.OpDPop).value(key), &v)
	return v, err
}

// PopOr removes key and returns its value, or def when it is absent
// (d.pop(k, def)).
func (d *Dict[K, V]) PopOr(ctx context.Context, key K, def V) (V, error) {
	var v V
	err := d.finish(ctx, d.call(wire.OpDPop).value(key).value(def), &v)
	return v, err
}

// PopItem removes and returns the last inserted entry (d.popitem());
// ErrNotFound when the dict is empty.
func (d *Dict[K, V]) PopItem(ctx context.Context) (K, V, error) {
	var it Item[K, V]
	err := d.finish(ctx, d.call(wire.OpDPopItem), &it)
	return it.Key, it.Value, err
}

// SetDefault returns the value at key, first setting it to def when the
// key is absent (d.setdefault(k, def)). opts (TTL, ExpireAt) give the
// entry it inserts its deadline; an entry already there keeps its own.
func (d *Dict[K, V]) SetDefault(ctx context.Context, key K, def V, opts ...WriteOption) (V, error) {
	var v V
	cl := d.call(wire.OpDSetDefault).value(key).value(def)
	if len(opts) > 0 {
		cl.opts(opts)
	}
	err := d.finish(ctx, cl, &v)
	return v, err
}

// Update sets every entry of m (d.update(m)), atomically, each with the
// deadline opts say, as Set. Go maps have no order: use UpdateItems to
// choose the insertion order of new keys.
func (d *Dict[K, V]) Update(ctx context.Context, m map[K]V, opts ...WriteOption) error {
	if m == nil {
		m = map[K]V{}
	}
	cl := d.call(wire.OpDUpdate).value(m)
	if len(opts) > 0 {
		cl.opts(opts)
	}
	return d.finish(ctx, cl, nil)
}

// UpdateItems sets the entries in order (d.update(pairs)), atomically.
func (d *Dict[K, V]) UpdateItems(ctx context.Context, items ...Item[K, V]) error {
	if items == nil {
		items = []Item[K, V]{}
	}
	return d.finish(ctx, d.call(wire.OpDUpdate).value(items), nil)
}

// Clear removes every entry (d.clear()).
func (d *Dict[K, V]) Clear(ctx context.Context) error {
	return d.finish(ctx, d.call(wire.OpDClear), nil)
}

// Incr adds delta to the number at key, a missing key counting as 0, and
// returns the new value: d[k] = d.get(k, 0) + delta, atomically. Integers
// stay exact; a float on either side gives a float. It fails with
// ErrTypeError when the stored value is not a number, and ErrOverflow
// beyond the CBOR integer range. The entry keeps its deadline (a new one
// gets the table's default TTL), as Redis's INCR.
func (d *Dict[K, V]) Incr(ctx context.Context, key K, delta V) (V, error) {
	return finishValue[V](ctx, d.x, d.name, arg(arg(d.call(wire.OpDIncr), key), delta))
}

// CompareAndSwap sets key to new only if it is present and equal to old
// (equality of canonical CBOR: 1 and 1.0 differ), and reports whether it
// did. The deadline is what opts say, as Set's (KeepTTL to keep it).
func (d *Dict[K, V]) CompareAndSwap(ctx context.Context, key K, old, new V, opts ...WriteOption) (bool, error) {
	var ok bool
	cl := d.call(wire.OpDCAS).value(key).value(new).value(old)
	if len(opts) > 0 {
		cl.opts(opts)
	}
	err := d.finish(ctx, cl, &ok)
	return ok, err
}

// SetIfAbsent sets key to value only if the key is absent (or expired),
// and reports whether it did; with TTL it is Redis's SET NX PX, the way to
// take a lease:
//
//	ok, err := locks.SetIfAbsent(ctx, "job:42", me, libcyberdb.TTL(30*time.Second))
func (d *Dict[K, V]) SetIfAbsent(ctx context.Context, key K, value V, opts ...WriteOption) (bool, error) {
	var ok bool
	var cl *call
	if len(opts) > 0 {
		cl = d.call(wire.OpDSet).value(key).value(value).opts(opts, "nx")
	} else {
		cl = d.call(wire.OpDCAS).value(key).value(value)
	}
	err := d.finish(ctx, cl, &ok)
	return ok, err
}

// Scan pages through the dict in insertion order, pageSize entries per
// round trip (0 means 256), without loading the whole table:
//
//	sc := d.Scan(ctx, 0)
//	for k, v := range sc.All() {
//		...
//	}
//	if err := sc.Err(); err != nil { ... }
//
// An entry present for the whole scan is seen exactly once; entries added
// or removed meanwhile may or may not be.
func (d *Dict[K, V]) Scan(ctx context.Context, pageSize int) *Scanner[K, V] {
	if pageSize <= 0 {
		pageSize = defaultPage
	}
	return &Scanner[K, V]{next: func(yield func(K, V) bool) error {
		var cursor uint64
		for {
			var page struct {
				_     struct{} `cbor:",toarray"`
				Next  uint64
				Items []Item[K, V]
			}
			cl := d.call(wire.OpDScan).uint(cursor).int(pageSize)
			if err := d.finish(ctx, cl, &page); err != nil {
				return err
			}
			for _, it := range page.Items {
				if !yield(it.Key, it.Value) {
					return nil
				}
			}
			if page.Next == 0 {
				return nil
			}
			cursor = page.Next
		}
	}}
}
