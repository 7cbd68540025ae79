package libcyberdb

import (
	"context"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Expiry: entries and tables that remove themselves at a deadline
// (PROTOCOL.md 4.5). The daemon keeps deadlines in milliseconds, as
// absolute times that survive restarts; an entry is gone for every
// operation from its deadline on, whether or not the daemon has swept it
// yet. The deadline is judged by the daemon's clock, never the client's.

// WriteOption says what deadline a write gives the entry it stores: TTL,
// ExpireAt or KeepTTL. Without one, a write gives the table's default TTL
// (DefaultTTL) or no deadline, replacing the one the entry had, as Redis's
// SET does.
type WriteOption struct {
	key string
	ms  int64
}

// TTL gives the entry a deadline d from now (rounded down to the
// millisecond, at least 1ms). d must be positive.
func TTL(d time.Duration) WriteOption { return WriteOption{"ttl", durationMS(d)} }

// ExpireAt gives the entry the deadline t; a t in the past (the zero
// Time and times before 1970 included) stores an entry that is gone at
// once, as Dict.ExpireAt does.
func ExpireAt(t time.Time) WriteOption { return WriteOption{"at", max(t.UnixMilli(), 1)} }

// KeepTTL keeps the deadline the entry has (none if it has none); a new
// entry gets the table's default TTL, if any (Redis's KEEPTTL).
func KeepTTL() WriteOption { return WriteOption{"keepttl", 1} }

func durationMS(d time.Duration) int64 {
	ms := d.Milliseconds()
	if d > 0 && ms == 0 {
		ms = 1
	}
	return ms
}

// opts appends options as the one map argument the daemon reads (PROTOCOL.md
// 6.5), encoded directly (no reflection: a Set with a TTL costs what a
// plain one does); extra are more flags (nx). A key given twice is sent
// twice, and the daemon refuses the map.
func (cl *call) opts(opts []WriteOption, extra ...string) *call {
	n := len(extra)
	for _, o := range opts {
		if o.key != "" {
			n++
		}
	}
	cl.args = wire.AppendMapHeader(cl.args, n)
	for _, o := range opts {
		switch o.key {
		case "":
		case "keepttl":
			cl.args = wire.AppendBool(wire.AppendText(cl.args, o.key), true)
		default:
			cl.args = wire.AppendInt(wire.AppendText(cl.args, o.key), o.ms)
		}
	}
	for _, k := range extra {
		cl.args = wire.AppendBool(wire.AppendText(cl.args, k), true)
	}
	cl.nargs++
	return cl
}

// when is the {"ttl"} or {"at"} map of a deadline given as a duration.
func whenTTL(d time.Duration) map[string]any { return map[string]any{"ttl": d.Milliseconds()} }

// Expire gives key the deadline ttl from now and reports whether the key
// exists (EXPIRE). A ttl of 0 or less removes the key at once.
func (d *Dict[K, V]) Expire(ctx context.Context, key K, ttl time.Duration) (bool, error) {
	var ok bool
	err := d.finish(ctx, d.call(wire.OpDExpire).value(key).value(whenTTL(ttl)), &ok)
	return ok, err
}

// ExpireAt gives key the deadline t and reports whether the key exists
// (PEXPIREAT). A deadline in the past removes the key at once.
func (d *Dict[K, V]) ExpireAt(ctx context.Context, key K, t time.Time) (bool, error) {
	var ok bool
	err := d.finish(ctx, d.call(wire.OpDExpire).value(key).value(map[string]any{"at": max(t.UnixMilli(), 1)}), &ok)
	return ok, err
}

// TTL returns the time key has left, and whether it has a deadline at all
// (false: it stays until deleted); ErrNotFound when it is absent (TTL).
func (d *Dict[K, V]) TTL(ctx context.Context, key K) (time.Duration, bool, error) {
	var ms *int64
	err := d.finish(ctx, d.call(wire.OpDTTL).value(key), &ms)
	if err != nil || ms == nil {
		return 0, false, err
	}
	return time.Duration(*ms) * time.Millisecond, true, nil
}

// Deadline returns key's deadline, and whether it has one; ErrNotFound
// when it is absent (PEXPIRETIME).
func (d *Dict[K, V]) Deadline(ctx context.Context, key K) (time.Time, bool, error) {
	var ms *int64
	err := d.finish(ctx, d.call(wire.OpDTTL).value(key).bool(true), &ms)
	if err != nil || ms == nil {
		return time.Time{}, false, err
	}
	return time.UnixMilli(*ms), true, nil
}

// Persist removes key's deadline and reports whether it had one (PERSIST).
func (d *Dict[K, V]) Persist(ctx context.Context, key K) (bool, error) {
	var ok bool
	err := d.finish(ctx, d.call(wire.OpDPersist).value(key), &ok)
	return ok, err
}

// GetEx returns the value at key and moves its deadline to ttl from now,
// in one step: a session that stays while it is used (GETEX PX).
// ErrNotFound when it is absent. ttl must be positive.
func (d *Dict[K, V]) GetEx(ctx context.Context, key K, ttl time.Duration) (V, error) {
	var v V
	err := d.finish(ctx, d.call(wire.OpDGetEx).value(key).value(map[string]any{"ttl": durationMS(ttl)}), &v)
	return v, err
}

// DeleteIfEqual deletes key only if it holds value, and reports whether it
// did: how the holder of a lease lets it go without removing one that
// expired and was taken by someone else meanwhile.
func (d *Dict[K, V]) DeleteIfEqual(ctx context.Context, key K, value V) (bool, error) {
	var ok bool
	err := d.finish(ctx, d.call(wire.OpDDelIfEq).value(key).value(value), &ok)
	return ok, err
}

// ExpireTable gives a whole table, dict or list, the deadline ttl from
// now: it is dropped then, as if by Drop (a rate-limit window, a
// temporary work list). A ttl of 0 or less drops it at once.
func (t tableOps) ExpireTable(ctx context.Context, name string, ttl time.Duration) error {
	return run(ctx, t.x, wire.OpExpire, name, nil, func(cl *call) { cl.text(name).value(whenTTL(ttl)) })
}

// ExpireTableAt gives a whole table the deadline at.
func (t tableOps) ExpireTableAt(ctx context.Context, name string, at time.Time) error {
	return run(ctx, t.x, wire.OpExpire, name, nil, func(cl *call) { cl.text(name).value(map[string]any{"at": max(at.UnixMilli(), 1)}) })
}

// PersistTable removes a table's deadline.
func (t tableOps) PersistTable(ctx context.Context, name string) error {
	return run(ctx, t.x, wire.OpExpire, name, nil, func(cl *call) { cl.text(name).value(map[string]any{"persist": true}) })
}

// TableTTL returns the time a table has left, and whether it has a
// deadline; ErrNoTable when it does not exist.
func (t tableOps) TableTTL(ctx context.Context, name string) (time.Duration, bool, error) {
	var ms *int64
	err := run(ctx, t.x, wire.OpTTL, name, &ms, func(cl *call) { cl.text(name) })
	if err != nil || ms == nil {
		return 0, false, err
	}
	return time.Duration(*ms) * time.Millisecond, true, nil
}

// DefaultTTL makes CreateDict give every entry a deadline d after each
// write that names none (a session or cache table). Writes with TTL,
// ExpireAt or KeepTTL say otherwise; Incr keeps an entry's deadline, so
// the first Incr of a key starts a window of d (a rate limit).
func DefaultTTL(d time.Duration) CreateOption {
	return func(c *createConfig) { c.opts["ttl"] = durationMS(d) }
}

// EvictLRU makes CreateDict create a cache table: over the daemon's
// --max-memory it evicts its least recently used entries (approximately:
// the oldest of a few drawn at random, as Redis does) instead of refusing
// writes. Only such tables ever lose entries to eviction.
func EvictLRU() CreateOption { return func(c *createConfig) { c.opts["evict"] = "lru" } }

// MaxLen makes CreateDict create a cache table of at most n entries: a
// write that adds one more evicts the least recently used (as EvictLRU).
func MaxLen(n int) CreateOption { return func(c *createConfig) { c.opts["max_len"] = n } }
