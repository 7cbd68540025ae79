package libcyberdb

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// The read cache (issue 16; PROTOCOL.md 6.8, "Tracking").
//
// A CachedDict keeps the values its process read in the Client's memory
// and serves later reads of the same keys without a round trip. Its
// misses are read on one connection of the Client dedicated to them, with
// tracking on: the daemon registers each key read there, under the
// table's lock and atomically with the read, and pushes an invalidation
// on that connection when the key changes (once per read).
//
// Coherence rule (the crossing race of Redis 6's client-side caching):
// every cacheable read in flight has a token. An invalidation of its key
// (or of its table, or "lost") that the connection's reader sees while the
// read is in flight poisons the token, and a poisoned read's value is
// returned to its caller but never stored. Since the reader hands push
// messages over in wire order before the replies that follow them, an
// invalidation sent before the read's reply poisons it, and one sent
// after it removes what was stored. This process's own writes (any write
// through the Client, any handle) invalidate locally before they are sent
// and again when they are answered, and a read that starts while a write
// of its table is in flight is not stored: so once a write is
// acknowledged, no older value of it is in the cache. When the
// invalidation stream breaks (the connection is lost, or the daemon says
// "lost"), the cache is emptied before the next read is served.
//
// Bounds: at most cacheMaxEntries entries and cacheMaxBytes bytes of keys
// and values (WithCache); past either, entries drawn at random go.

// Default bounds of the read cache.
const (
	DefaultCacheEntries = 100_000
	DefaultCacheBytes   = 64 << 20
)

// cacheEntryOverhead is what an entry costs besides its key and value, in
// round figures: its map slot and strings.
const cacheEntryOverhead = 64

// cache is a Client's read cache; nil until the first CachedDict.
type cache struct {
	p          *pool
	maxEntries int
	maxBytes   int64

	// mu guards everything below. Lock order: mu is taken by the reader
	// goroutine of the tracking connection (push hook): never call the
	// daemon while holding it.
	mu       sync.Mutex
	tables   map[string]*tableCache
	entries  int
	bytes    int64
	pending  map[string][]*readToken // reads in flight, by table
	writing  map[string]int          // this process's writes in flight, by table
	writeAll int                     // batches in flight: every table
	conn     *conn                   // the tracking connection; nil: dial one at the next miss
	gen      uint64                  // bumped when the stream breaks: a read of an older gen is not stored
	dialMu   sync.Mutex              // one dial at a time

	hits, misses, invalidations, dropped atomic.Uint64
}

// tableCache is one table's cached entries: CBOR key -> CBOR value.
// Its own lock, so that hits on different tables do not contend.
type tableCache struct {
	mu sync.RWMutex
	m  map[string]string
}

// readToken is a cacheable read in flight.
type readToken struct {
	key      string // CBOR
	poisoned bool   // guarded by cache.mu
	gen      uint64
}

// testHookBeforeStore, when set (tests), runs after a miss's reply came
// and before the cache decides whether to store it.
var testHookBeforeStore func(table, key string)

func (p *pool) readCache() *cache {
	if c := p.cache.Load(); c != nil {
		return c
	}
	c := &cache{p: p, maxEntries: p.cfg.cacheEntries, maxBytes: p.cfg.cacheBytes,
		tables: map[string]*tableCache{}, pending: map[string][]*readToken{}, writing: map[string]int{}}
	if c.maxEntries <= 0 {
		c.maxEntries = DefaultCacheEntries
	}
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultCacheBytes
	}
	if p.cache.CompareAndSwap(nil, c) {
		return c
	}
	return p.cache.Load()
}

// tableFor returns table's tableCache, made on first use.
func (c *cache) tableFor(table string) *tableCache {
	c.mu.Lock()
	defer c.mu.Unlock()
	tc := c.tables[table]
	if tc == nil {
		tc = &tableCache{m: map[string]string{}}
		c.tables[table] = tc
	}
	return tc
}

// has and get look key (CBOR) up in tc.
func (c *cache) has(tc *tableCache, key []byte) bool {
	_, ok := c.get(tc, key)
	return ok
}

func (c *cache) get(tc *tableCache, key []byte) (string, bool) {
	tc.mu.RLock()
	v, ok := tc.m[string(key)]
	tc.mu.RUnlock()
	return v, ok
}

// begin registers a read of key in flight.
func (c *cache) begin(table string, key []byte) *readToken {
	c.mu.Lock()
	defer c.mu.Unlock()
	tok := &readToken{key: string(key), gen: c.gen}
	// A write of this process in flight: the read may see the value
	// before it, and be answered after it; not stored.
	tok.poisoned = c.writeAll > 0 || c.writing[table] > 0
	c.pending[table] = append(c.pending[table], tok)
	return tok
}

// end finishes a read: its value (CBOR; ok false: nothing to store, e.g.
// an error) is stored unless the read was poisoned.
func (c *cache) end(tc *tableCache, table string, tok *readToken, val []byte, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := c.pending[table]
	for i, t := range ts {
		if t == tok {
			ts = append(ts[:i], ts[i+1:]...)
			break
		}
	}
	if len(ts) == 0 {
		delete(c.pending, table)
	} else {
		c.pending[table] = ts
	}
	if !ok || tok.poisoned || tok.gen != c.gen || c.conn == nil {
		return
	}
	size := int64(len(tok.key)+len(val)) + cacheEntryOverhead
	if size > c.maxBytes/4 {
		return // one entry may not take most of the cache
	}
	tc.mu.Lock()
	if old, had := tc.m[tok.key]; had {
		c.bytes -= int64(len(tok.key)+len(old)) + cacheEntryOverhead
		c.entries--
	}
	tc.m[tok.key] = string(val)
	tc.mu.Unlock()
	c.entries++
	c.bytes += size
	c.shrinkLocked()
}

// shrinkLocked evicts entries drawn at random (map order) until the
// cache is within its bounds. c.mu is held.
func (c *cache) shrinkLocked() {
	for c.entries > c.maxEntries || c.bytes > c.maxBytes {
		for _, tc := range c.tables {
			tc.mu.Lock()
			for k, v := range tc.m {
				delete(tc.m, k)
				c.entries--
				c.bytes -= int64(len(k)+len(v)) + cacheEntryOverhead
				c.dropped.Add(1)
				break
			}
			tc.mu.Unlock()
			if c.entries <= c.maxEntries && c.bytes <= c.maxBytes {
				return
			}
		}
		if c.entries <= 0 {
			return
		}
	}
}

// invalidateLocked removes key (CBOR; nil: every key) of table and
// poisons the reads of it in flight. c.mu is held.
func (c *cache) invalidateLocked(table string, key []byte) {
	for _, t := range c.pending[table] {
		if key == nil || t.key == string(key) {
			t.poisoned = true
		}
	}
	tc := c.tables[table]
	if tc == nil {
		return
	}
	tc.mu.Lock()
	if key == nil {
		for k, v := range tc.m {
			c.entries--
			c.bytes -= int64(len(k)+len(v)) + cacheEntryOverhead
		}
		clear(tc.m)
	} else if v, had := tc.m[string(key)]; had {
		delete(tc.m, string(key))
		c.entries--
		c.bytes -= int64(len(key)+len(v)) + cacheEntryOverhead
	}
	tc.mu.Unlock()
}

// resetLocked empties the cache and poisons every read in flight: the
// invalidation stream broke. c.mu is held.
func (c *cache) resetLocked() {
	c.gen++
	for _, ts := range c.pending {
		for _, t := range ts {
			t.poisoned = true
		}
	}
	for _, tc := range c.tables {
		tc.mu.Lock()
		clear(tc.m)
		tc.mu.Unlock()
	}
	c.entries, c.bytes = 0, 0
}

// onPush is the tracking connection's push hook (its reader goroutine).
func (c *cache) onPush(cn *conn, kind string, msg wire.Raw) {
	switch kind {
	case "invalidate":
		var m struct {
			Table string     `cbor:"table"`
			Keys  []wire.Raw `cbor:"keys"`
		}
		if wire.Unmarshal(msg, &m) != nil {
			return
		}
		c.mu.Lock()
		if c.conn == cn {
			if m.Keys == nil {
				c.invalidateLocked(m.Table, nil)
			}
			for _, k := range m.Keys {
				c.invalidateLocked(m.Table, k)
			}
		}
		c.mu.Unlock()
		c.invalidations.Add(1)
	case "lost":
		c.mu.Lock()
		if c.conn == cn {
			c.resetLocked()
		}
		c.mu.Unlock()
		c.invalidations.Add(1)
	}
}

// onLost: the tracking connection ended; its registrations are gone.
func (c *cache) onLost(cn *conn, err error) {
	c.mu.Lock()
	if c.conn == cn {
		c.conn = nil
		c.resetLocked()
	}
	c.mu.Unlock()
}

// tracking returns the tracking connection, dialing one (and turning
// tracking on) when there is none.
func (c *cache) tracking(ctx context.Context) (*conn, error) {
	c.mu.Lock()
	cn := c.conn
	c.mu.Unlock()
	if cn != nil && !cn.unusable.Load() {
		return cn, nil
	}
	c.dialMu.Lock()
	defer c.dialMu.Unlock()
	c.mu.Lock()
	cn = c.conn
	c.mu.Unlock()
	if cn != nil && !cn.unusable.Load() {
		return cn, nil
	}
	h := &pushHooks{push: c.onPush, lost: c.onLost}
	cn, err := c.p.pushConn(ctx, h)
	if err != nil {
		return nil, err
	}
	cl := newCall(wire.OpTracking).bool(true)
	err = cn.exec(ctx, cl)
	cl.release()
	if err != nil {
		cn.retire()
		return nil, err
	}
	c.mu.Lock()
	c.resetLocked() // nothing read before is covered by this connection's tracking
	c.conn = cn
	c.mu.Unlock()
	return cn, nil
}

// localWrite is called by the pool before a write call is sent (done
// false) and once it is answered (done true): the keys it may change are
// invalidated, and reads of their tables starting meanwhile are not
// stored. A batch invalidates what its writes name, each as the call
// alone would; one whose ops cannot all be told invalidates everything.
func (c *cache) localWrite(cl *call, done bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl.op != wire.OpBatch {
		table, key, whole := writeTarget(cl.op, cl.args, cl.nargs)
		c.writeLocked(table, key, whole, done)
		return
	}
	if !batchTargets(cl.args, func(table string, key []byte, whole bool) {
		c.writeLocked(table, key, whole, done)
	}) {
		c.writeLocked("", nil, true, done)
	}
}

// writeLocked notes one write's start or end: of key in table, or of
// the whole table, or (table "") of anything. Must hold mu.
func (c *cache) writeLocked(table string, key []byte, whole, done bool) {
	switch {
	case table == "":
		if !done {
			c.writeAll++
		} else {
			c.writeAll--
		}
		for t := range c.tables {
			c.invalidateLocked(t, nil)
		}
		for t := range c.pending {
			c.invalidateLocked(t, nil)
		}
		return
	case !done:
		c.writing[table]++
	default:
		if c.writing[table]--; c.writing[table] <= 0 {
			delete(c.writing, table)
		}
	}
	if whole {
		key = nil
	}
	c.invalidateLocked(table, key)
}

// writeTarget says what a write op with the arguments args (nargs CBOR
// items) changes: table and key (CBOR), or the whole table, or (table "")
// anything.
func writeTarget(op wire.Op, args []byte, nargs int) (table string, key []byte, whole bool) {
	if nargs == 0 {
		return "", nil, true
	}
	n := wire.ItemLen(args)
	if n <= 0 {
		return "", nil, true
	}
	t, ok := wire.ItemText(args[:n])
	if !ok {
		return "", nil, true
	}
	switch op {
	case wire.OpDSet, wire.OpDDel, wire.OpDPop, wire.OpDSetDefault, wire.OpDIncr, wire.OpDCAS,
		wire.OpDExpire, wire.OpDPersist, wire.OpDGetEx, wire.OpDDelIfEq:
		rest := args[n:]
		if k := wire.ItemLen(rest); k > 0 {
			return t, rest[:k], false
		}
	case wire.OpLMove:
		return "", nil, true // two tables (lists: never cached)
	}
	return t, nil, true
}

// batchTargets calls fn with the write target of each of the batch's
// ops that writes (args: the batch call's one argument, the array of
// [op, arg...] requests); false when the array cannot be read, and fn
// must not be trusted to have seen every write.
func batchTargets(args []byte, fn func(table string, key []byte, whole bool)) bool {
	ops, err := wire.SplitArray(args)
	if err != nil {
		return false
	}
	for _, raw := range ops {
		major, n, hl, ok := wire.ReadHead(raw)
		if !ok || major != 4 || n == 0 {
			return false
		}
		body := raw[hl:]
		k := wire.ItemLen(body)
		if k <= 0 {
			return false
		}
		code, ok := wire.ItemUint(body[:k])
		if !ok || code > 0xffff {
			return false
		}
		op := wire.Op(code)
		if !op.IsWrite() || op == wire.OpGuard {
			continue // reads and guards change nothing
		}
		table, key, whole := writeTarget(op, body[k:], int(n)-1)
		fn(table, key, whole)
	}
	return true
}

// CachedDict is a Dict whose Get and GetOr are served from the Client's
// read cache when they can (the repository's README, "The read cache's
// guarantees", says what they are). Every other method is the Dict's,
// and every write of this Client, through any handle, keeps the cache
// right.
type CachedDict[K comparable, V any] struct {
	*Dict[K, V]
	c  *cache
	tc *tableCache
}

// NewCachedDict returns a cached handle on the dict table name. The
// Client's cache is bounded by WithCache (default DefaultCacheEntries
// entries, DefaultCacheBytes bytes). It needs a daemon that speaks the
// push extension.
func NewCachedDict[K comparable, V any](c *Client, name string) *CachedDict[K, V] {
	ca := c.p.readCache()
	return &CachedDict[K, V]{Dict: NewDict[K, V](c, name), c: ca, tc: ca.tableFor(name)}
}

// Get returns the value at key, from the cache when it holds it;
// ErrNotFound when the key is absent (absence is not cached).
func (d *CachedDict[K, V]) Get(ctx context.Context, key K) (V, error) {
	// The key is encoded on the stack: nothing that keeps it is called
	// on a hit (a miss encodes it again), so a hit allocates only the
	// value it returns (TestCachedGetAllocs).
	var buf [64]byte
	kb, ok := appendScalar(buf[:0], any(key))
	if !ok {
		return d.miss(ctx, key)
	}
	d.tc.mu.RLock()
	raw, hit := d.tc.m[string(kb)]
	d.tc.mu.RUnlock()
	if hit {
		d.c.hits.Add(1)
		return decodeCached[V](raw, d.name, kb)
	}
	return d.miss(ctx, key)
}

// GetOr returns the value at key, or def when it is absent.
func (d *CachedDict[K, V]) GetOr(ctx context.Context, key K, def V) (V, error) {
	v, err := d.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return def, nil
	}
	return v, err
}

// decodeCached decodes a cached value, of key (CBOR) in table. raw is
// read in place: decoding copies what it keeps. A value that does not fit
// V fails as Dict.Get's does: a *DecodeError naming the table and key.
func decodeCached[V any](raw, table string, key []byte) (V, error) {
	b := unsafe.Slice(unsafe.StringData(raw), len(raw))
	if v, ok := decodeFast[V](b); ok {
		return v, nil
	}
	var v V
	if err := unmarshal(b, &v); err != nil {
		args := append(wire.AppendText(nil, table), key...)
		return v, decodeErr(wire.OpDGet, table, args, 2, bytes.Clone(b), &v, err)
	}
	return v, nil
}

// miss reads key (CBOR) on the tracking connection and stores it unless
// an invalidation crossed it.
func (d *CachedDict[K, V]) miss(ctx context.Context, key K) (V, error) {
	var zero V
	kb, err := appendValue(nil, key)
	if err != nil {
		return zero, err
	}
	if !d.c.has(d.tc, kb) {
		d.c.misses.Add(1)
	} else if v, ok := d.c.get(d.tc, kb); ok { // a key that is not a scalar
		d.c.hits.Add(1)
		return decodeCached[V](v, d.name, kb)
	}
	cn, err := d.c.tracking(ctx)
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			return d.Dict.Get(ctx, key) // a daemon without push: no cache
		}
		return zero, err
	}
	tok := d.c.begin(d.name, kb)
	cl := newCall(wire.OpDGet).raw(d.enc).raw(kb)
	err = cn.exec(ctx, cl)
	if err != nil {
		cl.release()
		d.c.end(d.tc, d.name, tok, nil, false)
		if errors.Is(err, ErrConnClosed) {
			return d.Dict.Get(ctx, key) // the tracking connection was lost: read uncached
		}
		return zero, err
	}
	if testHookBeforeStore != nil {
		testHookBeforeStore(d.name, string(kb))
	}
	d.c.end(d.tc, d.name, tok, cl.result, true)
	v, derr := decodeCached[V](string(cl.result), d.name, kb)
	cl.release()
	return v, derr
}
