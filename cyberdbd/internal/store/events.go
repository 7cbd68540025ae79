package store

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Watches and read-cache tracking (PROTOCOL.md 6.8, 6.9).
//
// Both are derived from one place: the journal records a write op makes
// (record, called by journalEffects and by a blocking pop handed to a
// waiter). A record describes its change exactly, so it is also what a
// watcher is told, and which keys a tracking connection must forget.
// record runs while the op holds the locks of the tables it changed, so
// the events of one table are produced in the order its changes were
// applied, and an invalidation is queued before the writer's reply is.
//
// Nobody watching or tracking costs a write one atomic load (s.hooked).
//
// Locks: hmu guards watches and is a leaf taken under table locks; a
// table's tmu guards its tracking registrations, taken under the table's
// lock (shared by the read that registers, exclusive by the write that
// invalidates). Sink.Push is called under both kinds of lock and must not
// call back into the store.

// Sink is where the pushes of a subscription go: a connection's bounded
// push queue (the server's). Push queues whole push frames for
// subscription sub and reports whether they fit: false means the queue was
// over its bound, the subscription is lost, and the sink has told its
// client so (a "lost" push); the store then forgets the subscription.
type Sink interface {
	Push(sub uint64, frames []byte) bool
}

// Watch is a subscription to the changes of one table, optionally only of
// one key or of the text keys starting with a prefix.
type Watch struct {
	Sub    uint64
	Sink   Sink
	Table  string
	Key    []byte // the canonical CBOR of the key watched; nil: every key
	Prefix string // with HasPrefix: text keys starting with Prefix
	// HasPrefix says Prefix is set (an empty prefix is every text key).
	HasPrefix bool
	Values    bool // events carry the value a key has after the change
	gone      atomic.Bool
}

// Tracker is a connection's read-cache tracking: the keys it read with
// ExecTracked are invalidated (pushed once) when they change.
type Tracker struct {
	Sub  uint64
	Sink Sink
	// gen counts the times the tracker lost its registrations at once
	// (its queue overflowed, or it stopped): a registration made under an
	// older gen is dead.
	gen    atomic.Uint64
	closed atomic.Bool
}

type trackReg struct {
	tr  *Tracker
	gen uint64
}

// hookCount says how many watches and trackers exist: record's whole cost
// when it is 0.
func (s *Store) hookCount() int64 { return s.hooked.Load() }

// AddWatch starts w and returns what the table's change counter is now
// (PROTOCOL.md: the seq of the next event is greater) and whether the
// table exists. Events for w are produced from the next change on.
func (s *Store) AddWatch(w *Watch) (seq uint64, exists bool) {
	w.Table = strings.Clone(w.Table)
	// Registered under the table's lock, so that no change falls between
	// the seq read and the registration.
	t, locked := s.claim(w.Table, true)
	s.hmu.Lock()
	if s.watches == nil {
		s.watches = make(map[string][]*Watch)
	}
	s.watches[w.Table] = append(s.watches[w.Table], w)
	s.hmu.Unlock()
	s.hooked.Add(1)
	seq, exists = t.seq, t.kind != kindNone
	s.release(t, locked)
	return seq, exists
}

// RemoveWatch stops w; it reports whether w was watching.
func (s *Store) RemoveWatch(w *Watch) bool {
	if w.gone.Swap(true) {
		return false
	}
	s.hmu.Lock()
	ws := s.watches[w.Table]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(s.watches, w.Table)
	} else {
		s.watches[w.Table] = ws
	}
	s.hmu.Unlock()
	s.hooked.Add(-1)
	return true
}

// StartTracking makes tr live: reads through ExecTracked register keys.
func (s *Store) StartTracking(tr *Tracker) { s.hooked.Add(1) }

// StopTracking ends tr: its registrations are dead (they are dropped
// when their key next changes, or with their table).
func (s *Store) StopTracking(tr *Tracker) {
	if tr.closed.Swap(true) {
		return
	}
	tr.gen.Add(1)
	s.hooked.Add(-1)
}

// ResetTracking forgets every key tr registered: the client emptied its
// cache (its queue overflowed and it was sent "lost").
func (tr *Tracker) reset() { tr.gen.Add(1) }

// ExecTracked is Exec of a read for tr: a dget that succeeds registers its
// key for tr under the table's lock, atomically with the read, so that a
// write of the key after it queues an invalidation for tr (once). Any
// other op runs as Exec.
func (s *Store) ExecTracked(op wire.Op, args wire.Args, out []byte, tr *Tracker) ([]byte, error) {
	return s.ExecTrackedAt(op, args, out, tr, time.Time{})
}

// ExecTrackedAt is ExecTracked deciding expiry at t, as ExecAt.
func (s *Store) ExecTrackedAt(op wire.Op, args wire.Args, out []byte, tr *Tracker, at time.Time) ([]byte, error) {
	if op != wire.OpDGet || tr == nil || tr.closed.Load() {
		return s.ExecAt(op, args, out, at)
	}
	args.Op = op
	name, err := tableName(args)
	if err != nil {
		return out, err
	}
	t := s.acquire(name, false)
	if t == nil {
		return out, errNoSuchTable(name)
	}
	now := s.nowAt(at)
	added := false // a key new to t.track: the cap may be passed
	res, err := s.execOn(t, nil, op, opDGet, args, out, now, now, true)
	if err == nil || wire.AsError(err).Code == wire.CodeKeyNotFound {
		// (A miss is cacheable too: the client may keep "absent".)
		key, kerr := args.Value(1)
		if kerr == nil {
			gen := tr.gen.Load()
			t.tmu.Lock()
			if t.track == nil {
				t.track = make(map[string][]trackReg)
			}
			regs, had := t.track[string(key)]
			dup := false
			for i := range regs {
				if regs[i].tr == tr {
					regs[i].gen, dup = gen, true
					break
				}
			}
			if !dup {
				t.track[string(key)] = append(regs, trackReg{tr, gen})
			}
			if !had {
				added = s.trackKeyAdded(t)
			}
			t.tmu.Unlock()
		}
	}
	s.release(t, false)
	if added {
		// Over the cap: forget other keys (this one may go too), their
		// invalidations queued first. After the table's lock is given
		// back: trimTracking takes other tables' tmu, one at a time.
		s.trimTracking(trimBudget)
	}
	return res, err
}

// keyOps are the dict write ops whose argument 2 is the one key they
// change.
var keyOps = [256]bool{
	wire.OpDSet: true, wire.OpDDel: true, wire.OpDPop: true, wire.OpDSetDefault: true,
	wire.OpDIncr: true, wire.OpDCAS: true, wire.OpDExpire: true, wire.OpDPersist: true,
	wire.OpDGetEx: true, wire.OpDDelIfEq: true,
}

// valueOps are the key ops after which the key may hold a value.
var valueOps = [256]bool{
	wire.OpDSet: true, wire.OpDSetDefault: true, wire.OpDIncr: true, wire.OpDCAS: true,
	wire.OpDExpire: true, wire.OpDPersist: true, wire.OpDGetEx: true,
}

// change is one table's part of a record: the keys it names (or, with
// all, the whole table) and how to describe it.
type change struct {
	t    *table
	op   wire.Op
	args []wire.Raw // after the table name
	keys [][]byte   // the keys changed; nil with all
	all  bool       // the change may touch any key (clear, drop, popitem, list ops...)
	name string     // the event's "op": the op's name, or "expired"/"evicted"
	pair bool       // dupdate: args[0] holds the keys, with their values
}

// emit produces the events and invalidations of one journal record,
// whose tables are among held (locked). Called only when hooks exist.
func (s *Store) emit(held []*table, op wire.Op, args wire.Args) {
	var chs []change
	s.changes(held, op, args, &chs)
	if len(chs) == 0 {
		return
	}
	// Invalidations first: they are what a cached read races with.
	s.invalidate(chs)
	s.hmu.Lock()
	n := len(s.watches)
	s.hmu.Unlock()
	if n == 0 {
		return
	}
	// One Push per watch per record: the events of a batch arrive
	// together, in batch order.
	type pending struct {
		w   *Watch
		buf []byte
	}
	var out []pending
	for _, ch := range chs {
		s.hmu.Lock()
		ws := s.watches[ch.t.name]
		s.hmu.Unlock()
		for _, w := range ws {
			if w.gone.Load() {
				continue
			}
			k := -1
			for i := range out {
				if out[i].w == w {
					k = i
				}
			}
			if k < 0 {
				out = append(out, pending{w: w})
				k = len(out) - 1
			}
			out[k].buf = appendEvents(out[k].buf, w, ch)
		}
	}
	for _, p := range out {
		if len(p.buf) > 0 && !p.w.Sink.Push(p.w.Sub, p.buf) {
			s.RemoveWatch(p.w)
		}
	}
}

// changes splits a record into its tables' changes.
func (s *Store) changes(held []*table, op wire.Op, args wire.Args, chs *[]change) {
	find := func(name string) *table {
		for _, t := range held {
			if t.name == name {
				return t
			}
		}
		return nil
	}
	items := args.Items
	switch op {
	case wire.OpTimed:
		if len(items) != 2 {
			return
		}
		inner, err := wire.SplitArray(items[1])
		if err != nil || len(inner) == 0 {
			return
		}
		iop, _ := wire.ItemUint(inner[0])
		s.changes(held, wire.Op(iop), wire.Args{Op: wire.Op(iop), Items: inner[1:]}, chs)
		return
	case wire.OpBatch:
		if len(items) != 1 {
			return
		}
		ops, err := wire.SplitArray(items[0])
		if err != nil {
			return
		}
		for _, it := range ops {
			inner, err := wire.SplitArray(it)
			if err != nil || len(inner) == 0 {
				continue
			}
			iop, _ := wire.ItemUint(inner[0])
			if o := wire.Op(iop); o.IsWrite() && o != wire.OpGuard && o != wire.OpBatch {
				s.changes(held, o, wire.Args{Op: o, Items: inner[1:]}, chs)
			}
		}
		return
	}
	if len(items) == 0 {
		return
	}
	name, err := (wire.Args{Items: items}).Text(0)
	if err != nil {
		return
	}
	t := find(name)
	if t == nil {
		return
	}
	ch := change{t: t, op: op, args: items[1:], name: op.String()}
	switch {
	case keyOps[op] && len(items) > 1:
		ch.keys = [][]byte{items[1]}
	case op == wire.OpDUpdate && len(items) > 1:
		pairs, err := pairsArg(wire.Args{Op: op, Items: items}, 1)
		if err != nil {
			return
		}
		for _, p := range pairs {
			ch.keys = append(ch.keys, p[0])
		}
		ch.pair = true
	case op == wire.OpDRemove && len(items) > 2:
		ch.name, _ = (wire.Args{Items: items}).Text(1)
		for _, k := range items[2:] {
			ch.keys = append(ch.keys, k)
		}
	case op == wire.OpLMove && len(items) > 1:
		ch.all = true
		*chs = append(*chs, ch)
		if dst, err := (wire.Args{Items: items}).Text(1); err == nil && dst != name {
			if t2 := find(dst); t2 != nil {
				*chs = append(*chs, change{t: t2, op: op, args: items[1:], name: op.String(), all: true})
			}
		}
		return
	default:
		ch.all = true
	}
	*chs = append(*chs, ch)
}

// invalidate queues the invalidations of chs on the trackers that
// registered their keys, and forgets those registrations.
func (s *Store) invalidate(chs []change) {
	type inval struct {
		tr   *Tracker
		t    *table
		keys [][]byte // nil: every key of t
		all  bool
	}
	var todo []inval
	add := func(tr *Tracker, t *table, key []byte) {
		for i := range todo {
			if todo[i].tr == tr && todo[i].t == t {
				if key == nil {
					todo[i].all, todo[i].keys = true, nil
				} else if !todo[i].all {
					todo[i].keys = append(todo[i].keys, key)
				}
				return
			}
		}
		v := inval{tr: tr, t: t, all: key == nil}
		if key != nil {
			v.keys = [][]byte{key}
		}
		todo = append(todo, v)
	}
	for _, ch := range chs {
		t := ch.t
		t.tmu.Lock()
		if len(t.track) == 0 {
			t.tmu.Unlock()
			continue
		}
		if ch.all {
			for _, regs := range t.track {
				for _, r := range regs {
					if !r.tr.closed.Load() && r.gen == r.tr.gen.Load() {
						add(r.tr, t, nil)
					}
				}
			}
			s.trackKeysRemoved(t, len(t.track))
			t.track = nil // a map does not shrink: let a big one go
		} else {
			for _, key := range ch.keys {
				regs, ok := t.track[string(key)]
				if !ok {
					continue
				}
				delete(t.track, string(key))
				s.trackKeysRemoved(t, 1)
				for _, r := range regs {
					if !r.tr.closed.Load() && r.gen == r.tr.gen.Load() {
						add(r.tr, t, key)
					}
				}
			}
		}
		t.tmu.Unlock()
	}
	for _, v := range todo {
		v.tr.invalidate(v.t.name, v.keys, v.all)
	}
}

// invalidate queues on tr's connection the push that says keys of table
// (with all: every key of it) are no longer registered:
// {"push": "invalidate", "sub", "table", "keys": [k...] | null}.
func (tr *Tracker) invalidate(table string, keys [][]byte, all bool) {
	var b []byte
	b, start := wire.BeginReply(b, 0)
	b = wire.AppendMapHeader(b, 4)
	b = wire.AppendText(b, "push")
	b = wire.AppendText(b, "invalidate")
	b = wire.AppendText(b, "sub")
	b = wire.AppendUint(b, tr.Sub)
	b = wire.AppendText(b, "table")
	b = wire.AppendText(b, table)
	b = wire.AppendText(b, "keys")
	if all {
		b = wire.AppendNull(b)
	} else {
		b = wire.AppendArrayHeader(b, len(keys))
		for _, k := range keys {
			b = append(b, k...)
		}
	}
	b = wire.EndFrame(b, start)
	if !tr.Sink.Push(tr.Sub, b) {
		tr.reset() // the client was told "lost": it empties its cache
	}
}

// matches says whether the watch wants key (nil: a change of the whole
// table, which every watch of the table gets).
func (w *Watch) matches(key []byte) bool {
	switch {
	case key == nil:
		return true
	case w.Key != nil:
		return string(w.Key) == string(key)
	case w.HasPrefix:
		s, err := (wire.Args{Items: []wire.Raw{key}}).Text(0)
		return err == nil && strings.HasPrefix(s, w.Prefix)
	}
	return true
}

// appendEvents appends the events of ch that w wants, as push frames:
// {"push": "event", "sub", "table", "seq", "op", "key"?, "value"?, "args"?}.
func appendEvents(b []byte, w *Watch, ch change) []byte {
	t := ch.t
	one := func(key []byte, value []byte, hasValue bool, args []wire.Raw) {
		n := 5
		if key != nil {
			n++
		}
		if hasValue {
			n++
		}
		if args != nil {
			n++
		}
		var start int
		b, start = wire.BeginReply(b, 0)
		b = wire.AppendMapHeader(b, n)
		b = wire.AppendText(b, "push")
		b = wire.AppendText(b, "event")
		b = wire.AppendText(b, "sub")
		b = wire.AppendUint(b, w.Sub)
		b = wire.AppendText(b, "table")
		b = wire.AppendText(b, t.name)
		b = wire.AppendText(b, "seq")
		b = wire.AppendUint(b, t.seq)
		b = wire.AppendText(b, "op")
		b = wire.AppendText(b, ch.name)
		if key != nil {
			b = wire.AppendText(b, "key")
			b = append(b, key...)
		}
		if hasValue {
			b = wire.AppendText(b, "value")
			b = append(b, value...)
		}
		if args != nil {
			b = wire.AppendText(b, "args")
			b = wire.AppendArrayHeader(b, len(args))
			for _, a := range args {
				b = append(b, a...)
			}
		}
		b = wire.EndFrame(b, start)
	}
	if ch.all || ch.keys == nil {
		if w.matches(nil) {
			one(nil, nil, false, ch.args)
		}
		return b
	}
	for i, key := range ch.keys {
		if !w.matches(key) {
			continue
		}
		var val []byte
		has := false
		if w.Values && (valueOps[ch.op] || ch.pair) && t.kind == kindDict {
			if pos := t.d.find(key); pos >= 0 {
				val, has = []byte(t.d.entries[pos].val()), true
			}
		}
		var args []wire.Raw
		if !ch.pair && ch.op != wire.OpDRemove && len(ch.args) > 1 {
			args = ch.args[1:] // after the key
		}
		_ = i
		one(key, val, has, args)
	}
	return b
}

// hookState is the part of Store for watches and tracking.
type hookState struct {
	hooked  atomic.Int64 // watches and trackers alive
	born    atomic.Int64 // tables created (table.seq)
	hmu     sync.Mutex   // guards watches; a leaf
	watches map[string][]*Watch

	// The tracking cap (tracking.go): trackMax is --tracking-max-keys
	// (0: none); trackKeys counts the keys of every table's track map
	// (a key read by several connections once, as Redis's
	// tracking_total_keys); trackEvicted, the keys the cap made the
	// store forget. trmu guards trackTables, the tables whose track map
	// is not empty: a leaf, taken under a table's tmu.
	trackMax     atomic.Int64
	trackKeys    atomic.Int64
	trackEvicted atomic.Int64
	trmu         sync.Mutex
	trackTables  map[*table]struct{}
}
