package store

import (
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/health"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// MaxNameLen is the longest table name, in bytes.
const MaxNameLen = 255

// Store holds the named tables. Its methods are safe for concurrent use.
type Store struct {
	mu      sync.RWMutex // guards tables (the map only; see doc.go for the lock order)
	tables  map[string]*table
	journal atomic.Pointer[journal]
	// gate is held shared by every write op, from before it locks its
	// tables until after its journal call, and exclusively by Freeze
	// (snapshot.go) to find a moment when no write is half done.
	gate sync.RWMutex

	probe health.Waiter // the watchdog's round trips through the locks (probe.go)

	clock  Clock // the one source of time (expiry.go)
	system bool  // clock is the system clock: ExecAt may take the caller's reading
	// Counted as they happen (never by Replay): entries removed because
	// their deadline passed, tables dropped because theirs did, entries
	// evicted from cache tables.
	expired, expiredTables, evicted atomic.Int64
	overMemory                      atomic.Bool // over --max-memory (SetOverMemory)

	// Blocking pops (block.go). wmu guards waits; it is a leaf, never held
	// while a table lock is taken or a waiter is delivered. nwait counts
	// the waiters still waiting, written under wmu, read without it.
	wmu   sync.Mutex
	waits map[string]*waitQueue
	nwait atomic.Int64

	hookState // watches and read-cache tracking (events.go)
}

// Stats is what the INFO op reports about the data.
type Stats struct {
	Tables  int   // number of tables
	Entries int64 // dict entries plus list elements, over all tables (expired ones not yet swept included)
	Bytes   int64 // encoded size of the keys and values held (not counting overhead)

	Expired       int64 // entries removed because their deadline passed, since start
	ExpiredTables int64 // tables dropped because their deadline passed, since start
	Evicted       int64 // entries cache tables evicted, since start
	TTLs          int64 // entries with a deadline

	TrackingKeys    int64 // keys registered by read-cache tracking, over all connections (each once)
	TrackingEvicted int64 // registered keys forgotten (and invalidated) for --tracking-max-keys, since start
}

// Option configures a Store.
type Option func(*Store)

// WithClock makes the store read the time from c (tests: a ManualClock).
func WithClock(c Clock) Option { return func(s *Store) { s.clock = c } }

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{tables: make(map[string]*table), waits: make(map[string]*waitQueue), clock: systemClock{}}
	s.trackMax.Store(DefaultTrackingMaxKeys)
	for _, o := range opts {
		o(s)
	}
	_, s.system = s.clock.(systemClock)
	return s
}

// now reads the store's clock, in unix milliseconds.
func (s *Store) now() int64 { return s.clock.Now().UnixMilli() }

// SetOverMemory tells the store whether the daemon is over --max-memory:
// while it is, ops that may add data (wire.Op.Grows) are refused with
// CodeOutOfMemory, except on cache tables, which evict instead.
func (s *Store) SetOverMemory(over bool) { s.overMemory.Store(over) }

// OverMemory reports what SetOverMemory last said.
func (s *Store) OverMemory() bool { return s.overMemory.Load() }

// call is one op running on a table whose lock its caller holds.
type call struct {
	s    *Store
	t    *table
	t2   *table // lmove: the destination (may be t)
	args wire.Args
	undo *undoLog // nil: nothing to record
	// now is the clock reading expiry is decided at (noClock in replay:
	// nothing expires); base the one deadlines are computed from (the
	// same live; a timed record's in replay, else 0: none can be).
	now, base int64
}

// write reports whether the op may change its table (and so removes the
// expired entries it meets).
func (c *call) write() bool { return c.args.Op.IsWrite() }

type opFunc func(c call, out []byte) ([]byte, error)

// handlers holds every op that addresses one table, indexed by op.
var handlers [256]opFunc // every op number is below 256 (wire/ops.go)

func init() {
	for op, fn := range map[wire.Op]opFunc{
		wire.OpCreateDict: opCreate, wire.OpCreateList: opCreate, wire.OpExists: opExists,
		wire.OpDrop: opDrop, wire.OpLen: opLen,

		wire.OpDGet: opDGet, wire.OpDSet: opDSet, wire.OpDDel: opDDel, wire.OpDHas: opDHas,
		wire.OpDLen: opDLen, wire.OpDKeys: opDKeys, wire.OpDValues: opDValues, wire.OpDItems: opDItems,
		wire.OpDPop: opDPop, wire.OpDPopItem: opDPopItem, wire.OpDSetDefault: opDSetDefault,
		wire.OpDUpdate: opDUpdate, wire.OpDClear: opDClear, wire.OpDToDict: opDToDict,
		wire.OpDIncr: opDIncr, wire.OpDCAS: opDCAS, wire.OpDScan: opDScan,

		wire.OpLGet: opLGet, wire.OpLSet: opLSet, wire.OpLDel: opLDel, wire.OpLSlice: opLSlice,
		wire.OpLDelSlice: opLDelSlice, wire.OpLAppend: opLAppend, wire.OpLExtend: opLExtend,
		wire.OpLInsert: opLInsert, wire.OpLPop: opLPop, wire.OpLRemove: opLRemove,
		wire.OpLCount: opLCount, wire.OpLIndex: opLIndex, wire.OpLReverse: opLReverse,
		wire.OpLSort: opLSort, wire.OpLClear: opLClear, wire.OpLToList: opLToList,
		wire.OpLLen: opLLen, wire.OpLRange: opLRange, wire.OpLSetSlice: opLSetSlice, wire.OpLContains: opLContains,

		wire.OpDExpire: opDExpire, wire.OpDPersist: opDPersist, wire.OpDTTL: opDTTL, wire.OpDGetEx: opDGetEx,
		wire.OpDDelIfEq: opDDelIfEq, wire.OpExpire: opExpire, wire.OpTTL: opTTL, wire.OpDRemove: opDRemove,

		wire.OpLAppendLeft: opLAppendLeft, wire.OpLPopLeft: opLPopLeft, wire.OpLExtendLeft: opLExtendLeft,
		wire.OpLRotate: opLRotate, wire.OpLMove: opLMove, wire.OpGuard: opGuard,
	} {
		handlers[op] = fn
	}
}

func handler(op wire.Op) opFunc {
	if int(op) < len(handlers) {
		return handlers[op]
	}
	return nil
}

// Exec runs one operation and appends its encoded CBOR result item to out.
// On error out is returned unchanged and the error is a *wire.Error; the
// op then changed nothing (but what it found expired is gone: it was
// already, to every op). Exec handles every op of the protocol except
// hello, ping, info and save, which belong to the server (they give
// CodeBadRequest here), and the journal-only ops, which only Replay takes;
// an op the protocol does not define gives CodeUnknownOp.
//
// args may alias a request buffer: Exec copies what it keeps.
func (s *Store) Exec(op wire.Op, args wire.Args, out []byte) ([]byte, error) {
	return s.ExecAt(op, args, out, time.Time{})
}

// ExecAt is Exec deciding expiry at t, a reading of the system clock
// (clock.Now) that the caller has just taken: a server that times its
// requests reads the clock once for both, where it read it twice (7% of
// its CPU on pipelined gets). A zero t, or a store on another clock
// (WithClock), reads the store's clock.
func (s *Store) ExecAt(op wire.Op, args wire.Args, out []byte, t time.Time) ([]byte, error) {
	if op.JournalOnly() {
		return out, errBadRequest("%s is written by the daemon to its log, never sent by a client", op)
	}
	now := s.nowAt(t)
	return s.exec(op, args, out, now, now)
}

// nowAt is t in unix milliseconds when t is a reading of the store's
// clock (see ExecAt), else now().
func (s *Store) nowAt(t time.Time) int64 {
	if s.system && !t.IsZero() {
		return t.UnixMilli()
	}
	return s.now()
}

// Replay runs one op read back from the journal: any write op, the
// journal-only ones included, with no clock (nothing expires; a timed
// record gives the clock reading its op computed deadlines from). So
// replaying a journal gives the same tables whenever it runs.
func (s *Store) Replay(op wire.Op, args wire.Args, out []byte) ([]byte, error) {
	if op != wire.OpTimed {
		return s.exec(op, args, out, noClock, 0)
	}
	args.Op = op
	if err := args.Want(2, 2); err != nil {
		return out, err
	}
	base, err := args.Int(0)
	if err != nil || base < 1 || base > maxDeadline {
		return out, errBadRequest("timed: argument 1 must be a time in unix milliseconds")
	}
	inner, err := wire.SplitArray(args.Items[1])
	if err != nil || len(inner) == 0 {
		return out, errBadRequest("timed: argument 2 must be an array [op, arg...]")
	}
	iop, ok := wire.ItemUint(inner[0])
	if !ok || iop > 0xffff || !wire.Op(iop).IsWrite() || wire.Op(iop).JournalOnly() {
		return out, errBadRequest("timed: argument 2 must start with the number of a write op")
	}
	return s.exec(wire.Op(iop), wire.Args{Op: wire.Op(iop), Items: inner[1:]}, out, noClock, base)
}

func (s *Store) exec(op wire.Op, args wire.Args, out []byte, now, base int64) ([]byte, error) {
	args.Op = op
	switch op {
	case wire.OpHello, wire.OpPing, wire.OpInfo, wire.OpSave,
		wire.OpSlowLog, wire.OpLatency, wire.OpMonitor, wire.OpClients, wire.OpKillClient, wire.OpConfigGet, wire.OpConfigSet:
		return out, errBadRequest("%s is answered by the server, not by the store", op)
	case wire.OpTables:
		return s.listTables(args, out, nil, now)
	case wire.OpBatch:
		return s.execBatch(args, out, now, base)
	case wire.OpLMove:
		return s.move(args, out, now, base)
	case wire.OpPublish, wire.OpSubscribe, wire.OpPSubscribe, wire.OpUnsubscribe, wire.OpWatch, wire.OpTracking:
		return out, errBadRequest("%s is answered by the server (it needs a connection), not by the store", op)
	case wire.OpLBPop, wire.OpLBMove, wire.OpCancel:
		return out, errBadRequest("%s is answered by the server (Store.Block), not by Exec", op)
	}
	fn := handler(op)
	if fn == nil {
		return out, wire.Errorf(wire.CodeUnknownOp, "unknown op %d (see PROTOCOL.md for the ops of protocol version %d)", uint16(op), wire.ProtocolVersion)
	}
	name, err := tableName(args)
	if err != nil {
		return out, err
	}
	res, err := s.exec1(op, fn, name, args, out, now, base)
	if err == nil && op.IsWrite() && (op.IsList() || op == wire.OpCreateList) {
		s.wake(name) // after the unlocks: serving waiters locks the table again
	}
	return res, err
}

// exec1 is Exec of an op on one table, under the gate and the table lock.
func (s *Store) exec1(op wire.Op, fn opFunc, name string, args wire.Args, out []byte, now, base int64) ([]byte, error) {
	write := op.IsWrite()
	if write {
		s.gate.RLock()
		defer s.gate.RUnlock()
	}
	var t *table
	if op == wire.OpCreateDict || op == wire.OpCreateList || op == wire.OpGuard {
		t, _ = s.claim(name, true) // a guard on a missing table fails as a guard
	} else if t = s.acquire(name, write); t == nil {
		if op == wire.OpExists {
			if err := args.Want(1, 1); err != nil {
				return out, err
			}
			return wire.AppendBool(out, false), nil
		}
		return out, errNoSuchTable(name)
	}
	if write {
		t.capture() // a snapshot is being taken: keep its copy first
	}
	defer s.release(t, write)
	return s.execOn(t, nil, op, fn, args, out, now, base, true)
}

// execOn runs op on the locked table t (and t2, lmove's destination),
// journaling it, and what it found expired or evicted, when it writes.
//
// limit applies --max-memory (SetOverMemory); only giving a popped value
// back (giveBack), which adds nothing that was not there a moment ago,
// goes without it.
func (s *Store) execOn(t, t2 *table, op wire.Op, fn opFunc, args wire.Args, out []byte, now, base int64, limit bool) ([]byte, error) {
	write := op.IsWrite()
	c := call{s: s, t: t, t2: t2, args: args, now: now, base: base}
	j := s.journal.Load()
	if !write {
		j = nil
	}
	if j != nil {
		if err := j.precheck(op); err != nil {
			return out, err
		}
		if j.check == nil {
			c.undo = &undoLog{} // record may fail after the op ran
		}
	}
	create := op == wire.OpCreateDict || op == wire.OpCreateList
	if limit && write && op.Grows() && s.overMemory.Load() && !t.isCache() && (create || !t.expiredAt(now)) {
		// (A write to an expired table gets no_such_table, as if it were gone.)
		return out, errOutOfMemory(op, t.name)
	}
	var bytes0 int64
	var live0 int
	if t.isCache() {
		bytes0, live0 = t.d.bytes, t.d.live
	}
	res, err := run(c, op, fn, out)
	if !write {
		return res, err
	}
	if err == nil && t.isCache() {
		s.evictFor(t, now, bytes0, live0, op.Grows())
	}
	tables := []*table{t}
	if t2 != nil && t2 != t {
		tables = append(tables, t2)
	}
	if jerr := s.journalEffects(j, tables, op, args, err == nil, base); jerr != nil && err == nil {
		if c.undo != nil {
			c.undo.rollback()
			discardEffects(tables)
			return out, jerr
		}
		return out, jerr // a checked journal failed anyway: the op stays applied
	}
	if err != nil {
		return out, err
	}
	return res, nil
}

// run checks that the table has the kind op needs, then runs it. A table
// past its deadline is no table: a read finds none, a write drops it first
// (journaled as a drop) and, if it is a create, makes a new one.
func run(c call, op wire.Op, fn opFunc, out []byte) ([]byte, error) {
	if c.t.kind != kindNone && c.t.expiredAt(c.now) {
		if !c.write() {
			if op == wire.OpExists {
				return opExists(call{t: &table{}, args: c.args}, out)
			}
			return out, errNoSuchTable(c.t.name)
		}
		c.s.expireTable(c.t, c.undo)
	}
	if c.t2 != nil && c.t2 != c.t && c.t2.kind != kindNone && c.t2.expiredAt(c.now) {
		c.s.expireTable(c.t2, c.undo) // lmove's destination: a write, always
	}
	if op.IsDict() || op.IsList() {
		want := kindDict
		if op.IsList() {
			want = kindList
		}
		switch c.t.kind {
		case want:
		case kindNone:
			return out, errNoSuchTable(c.t.name)
		default:
			return out, errWrongKind(c.t.name, c.t.kind, op)
		}
		if c.t2 != nil && c.t2.kind != kindList { // lmove's destination
			if c.t2.kind == kindNone {
				return out, errNoSuchTable(c.t2.name)
			}
			return out, errWrongKind(c.t2.name, c.t2.kind, op)
		}
	}
	return fn(c, out)
}

// tableName returns argument 0 as a table name. It aliases the request
// (wire.Args.Text, which reads a plain text item without a decoder): clone
// it to keep it.
func tableName(a wire.Args) (string, error) {
	name, err := a.Text(0)
	if err != nil {
		return "", errBadRequest("%s: argument 1 must be the table name, a text string", a.Op)
	}
	if name == "" || len(name) > MaxNameLen {
		return "", errBadRequest("%s: a table name is 1 to %d bytes of text, got %d bytes", a.Op, MaxNameLen, len(name))
	}
	return name, nil
}

func (t *table) lock(write bool) {
	if write {
		t.mu.Lock()
	} else {
		t.mu.RLock()
	}
}

func (t *table) unlock(write bool) {
	if write {
		t.mu.Unlock()
	} else {
		t.mu.RUnlock()
	}
}

func (s *Store) lookup(name string) *table {
	s.mu.RLock()
	t := s.tables[name]
	s.mu.RUnlock()
	return t
}

// acquire locks the table named name and returns it, or returns nil when
// there is no such table. The store lock is held only for the map lookup,
// never while waiting for the table.
func (s *Store) acquire(name string, write bool) *table {
	for {
		t := s.lookup(name)
		if t == nil {
			return nil
		}
		t.lock(write)
		if !t.dropped {
			return t
		}
		t.unlock(write) // dropped while we waited: look again
	}
}

// claim locks the slot for name, creating an empty one (kind kindNone)
// when the name is free, so that a create or a batch owns the name while
// it works. locked tells how it is locked: a new slot always for writing
// (release removes it again if it is still empty).
func (s *Store) claim(name string, write bool) (t *table, locked bool) {
	for {
		if t := s.acquire(name, write); t != nil {
			return t, write
		}
		s.mu.Lock()
		if s.tables[name] == nil {
			name = strings.Clone(name) // it may alias the request (wire.Args.Text)
			// seq starts above every seq an earlier table of the name
			// reached (2^32 changes each): a watcher's seq never goes back.
			t := &table{name: name, seq: uint64(s.born.Add(1)) << 32}
			t.mu.Lock() // nobody else can see t yet: this never waits
			s.tables[name] = t
			s.mu.Unlock()
			return t, true
		}
		s.mu.Unlock()
	}
}

// release publishes a written table's counters and unlocks it; a slot
// left empty (dropped, or never created) leaves the map first.
func (s *Store) release(t *table, write bool) {
	if !write {
		t.mu.RUnlock()
		return
	}
	t.publish()
	if t.kind == kindNone && !t.dropped {
		t.dropped = true
		s.untrackTable(t)
		s.mu.Lock()
		if s.tables[t.name] == t {
			delete(s.tables, t.name)
		}
		s.mu.Unlock()
	}
	t.mu.Unlock()
}

// Stats returns the counts INFO reports. It takes no table lock: each
// table's figures are those published by its last completed write.
func (s *Store) Stats() Stats {
	var st Stats
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now()
	for _, t := range s.tables {
		if kind(t.pubKind.Load()) == kindNone || expiredAt(t.pubExpires.Load(), now) {
			continue
		}
		st.Tables++
		st.Entries += t.pubLen.Load()
		st.Bytes += t.pubBytes.Load()
		st.TTLs += t.pubTTLs.Load()
	}
	st.Expired, st.ExpiredTables, st.Evicted = s.expired.Load(), s.expiredTables.Load(), s.evicted.Load()
	st.TrackingKeys, st.TrackingEvicted = s.trackKeys.Load(), s.trackEvicted.Load()
	return st
}

// listTables answers the tables op: [[name, kind, len]...] sorted by name.
// Tables in held (locked by the running batch) are read directly, so a
// batch sees its own changes; the others report their published figures,
// except a dict in which a deadline may have passed and not been swept:
// it is counted under its read lock, so that no expired entry is counted.
// Tables past their own deadline are left out.
func (s *Store) listTables(a wire.Args, out []byte, held map[*table]bool, now int64) ([]byte, error) {
	if err := a.Want(0, 0); err != nil {
		return out, err
	}
	type row struct {
		name  string
		kind  kind
		n     int64
		count *table // count under its lock
	}
	var rows []row
	s.mu.RLock()
	for name, t := range s.tables {
		r := row{name: name}
		if held[t] {
			if t.expiredAt(now) {
				continue
			}
			r.kind, r.n = t.kind, int64(t.length(now))
		} else {
			if expiredAt(t.pubExpires.Load(), now) {
				continue
			}
			r.kind, r.n = kind(t.pubKind.Load()), t.pubLen.Load()
			if next := t.pubNext.Load(); r.kind == kindDict && expiredAt(next, now) {
				r.count = t
			}
		}
		if r.kind != kindNone {
			rows = append(rows, r)
		}
	}
	s.mu.RUnlock()
	for i := range rows {
		if t := rows[i].count; t != nil {
			// The store lock is released: taking a table lock is in order.
			t.mu.RLock()
			if t.dropped || t.kind != kindDict || t.expiredAt(now) {
				rows[i].kind = kindNone
			} else {
				rows[i].n = int64(t.length(now))
			}
			t.mu.RUnlock()
		}
	}
	rows = slices.DeleteFunc(rows, func(r row) bool { return r.kind == kindNone })
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	out = wire.AppendArrayHeader(out, len(rows))
	for _, r := range rows {
		out = append(out, 0x83)
		out = wire.AppendText(out, r.name)
		out = wire.AppendText(out, r.kind.String())
		out = wire.AppendUint(out, uint64(r.n))
	}
	return out, nil
}

// Table operations. They run on a claimed or acquired slot, which may be
// empty (kindNone) inside a batch or for a create.

func opCreate(c call, out []byte) ([]byte, error) {
	a := c.args
	dictOp := a.Op == wire.OpCreateDict
	hi := 2
	if dictOp {
		hi = 3
	}
	if err := a.Want(1, hi); err != nil {
		return out, err
	}
	t := c.t
	if t.kind != kindNone {
		return out, errTableExists(t.name, t.kind)
	}
	if dictOp {
		var opts dictOptions
		if a.Has(2) {
			var err error
			if opts, err = parseDictOptions(a, 2); err != nil {
				return out, err
			}
		}
		var pairs [][2][]byte
		if a.Has(1) {
			var err error
			if pairs, err = pairsArg(a, 1); err != nil {
				return out, err
			}
		}
		d := newDict()
		d.dictOptions = opts
		if opts.evict {
			d.lru = []uint32{}
		}
		t.kind, t.d, t.expires = kindDict, d, 0
		fill := c
		fill.undo = nil // the undo step below takes the whole table back
		for _, p := range pairs {
			fill.put(p[0], p[1], when{}) // later duplicates overwrite, as dict(pairs)
		}
	} else {
		var items []string
		if a.Has(1) {
			vs, err := arrayArg(a, 1)
			if err != nil {
				return out, err
			}
			items = make([]string, len(vs))
			for i, v := range vs {
				items[i] = string(v)
			}
		}
		t.kind, t.l, t.expires = kindList, newList(items), 0
	}
	if c.undo != nil {
		c.undo.add(func() { t.kind, t.d, t.l = kindNone, nil, nil })
	}
	return wire.AppendNull(out), nil
}

// parseDictOptions reads create_dict's options, argument i: a map with
// the keys "ttl" (the default TTL of entries, ms), "evict" ("lru") and
// "max_len" (a cache table's most entries; implies "evict": "lru").
func parseDictOptions(a wire.Args, i int) (o dictOptions, err error) {
	raw := a.Items[i]
	bad := func(format string, args ...any) (dictOptions, error) {
		return dictOptions{}, errBadRequest("create_dict: argument %d: "+format, append([]any{i + 1}, args...)...)
	}
	if len(raw) == 0 || raw[0]>>5 != 5 {
		return bad(`must be a map of options ("ttl", "evict", "max_len"), got %s`, wire.TypeName(raw))
	}
	err = wire.Pairs(raw, func(k, v wire.Raw) error {
		name, _ := wire.Args{Items: []wire.Raw{k}}.Text(0) // any encoding of text
		item := wire.Args{Op: a.Op, Items: []wire.Raw{v}}
		switch name {
		case "ttl":
			n, err := item.Int(0)
			if err != nil || n < 1 || n > maxTTL {
				_, err := bad(`"ttl" (the default TTL of entries) must be 1 to %d milliseconds, got %s`, int64(maxTTL), wire.Diagnose(v))
				return err
			}
			o.defTTL = n
		case "evict":
			s, err := item.Text(0)
			if err != nil || s != "lru" {
				_, err := bad(`"evict" must be "lru" (the only eviction policy), got %s`, wire.Diagnose(v))
				return err
			}
			o.evict = true
		case "max_len":
			n, err := item.Int(0)
			if err != nil || n < 1 || n > math.MaxInt32 {
				_, err := bad(`"max_len" must be 1 to %d entries, got %s`, math.MaxInt32, wire.Diagnose(v))
				return err
			}
			o.maxLen, o.evict = int(n), true
		default:
			_, err := bad(`unknown option %s (create_dict takes "ttl", "evict" and "max_len")`, wire.Diagnose(k))
			return err
		}
		return nil
	})
	if err != nil {
		return dictOptions{}, err
	}
	return o, nil
}

// opDrop and opLen check that the table exists before their argument
// count, as Exec does for every other op (PROTOCOL.md's order of checks):
// in a batch the table is claimed even when it is missing.
func opDrop(c call, out []byte) ([]byte, error) {
	t := c.t
	if t.kind == kindNone {
		return out, errNoSuchTable(t.name)
	}
	if err := c.args.Want(1, 1); err != nil {
		return out, err
	}
	k, d, l, e := t.kind, t.d, t.l, t.expires
	t.kind, t.d, t.l, t.expires = kindNone, nil, nil, 0 // release takes the empty slot out of the map
	if c.undo != nil {
		c.undo.add(func() { t.kind, t.d, t.l, t.expires = k, d, l, e })
	}
	return wire.AppendNull(out), nil
}

func opExists(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(1, 1); err != nil {
		return out, err
	}
	return wire.AppendBool(out, c.t.kind != kindNone), nil
}

func opLen(c call, out []byte) ([]byte, error) {
	if c.t.kind == kindNone {
		return out, errNoSuchTable(c.t.name)
	}
	if err := c.args.Want(1, 1); err != nil {
		return out, err
	}
	return wire.AppendUint(out, uint64(c.t.length(c.now))), nil
}
