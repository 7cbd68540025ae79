package store

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

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

	// Blocking pops (block.go). wmu guards waits; it is a leaf, never held
	// while a table lock is taken or a waiter is delivered. nwait counts
	// the waiters still waiting, written under wmu, read without it.
	wmu   sync.Mutex
	waits map[string]*waitQueue
	nwait atomic.Int64
}

// Stats is what the INFO op reports about the data.
type Stats struct {
	Tables  int   // number of tables
	Entries int64 // dict entries plus list elements, over all tables
	Bytes   int64 // encoded size of the keys and values held (not counting overhead)
}

// New returns an empty store.
func New() *Store {
	return &Store{tables: make(map[string]*table), waits: make(map[string]*waitQueue)}
}

// call is one op running on a table whose lock its caller holds.
type call struct {
	t    *table
	t2   *table // lmove: the destination (may be t)
	args wire.Args
	undo *undoLog // nil: nothing to record
}

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
// op then changed nothing. Exec handles every op of the protocol except
// hello, ping, info and save, which belong to the server (they give
// CodeBadRequest here); an op the protocol does not define gives
// CodeUnknownOp.
//
// args may alias a request buffer: Exec copies what it keeps.
func (s *Store) Exec(op wire.Op, args wire.Args, out []byte) ([]byte, error) {
	args.Op = op
	switch op {
	case wire.OpHello, wire.OpPing, wire.OpInfo, wire.OpSave:
		return out, errBadRequest("%s is answered by the server, not by the store", op)
	case wire.OpTables:
		return s.listTables(args, out, nil)
	case wire.OpBatch:
		return s.execBatch(args, out)
	case wire.OpLMove:
		return s.move(args, out)
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
	res, err := s.exec1(op, fn, name, args, out)
	if err == nil && op.IsWrite() && (op.IsList() || op == wire.OpCreateList) {
		s.wake(name) // after the unlocks: serving waiters locks the table again
	}
	return res, err
}

// exec1 is Exec of an op on one table, under the gate and the table lock.
func (s *Store) exec1(op wire.Op, fn opFunc, name string, args wire.Args, out []byte) ([]byte, error) {
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
	return s.execOn(t, nil, op, fn, args, out)
}

// execOn runs op on the locked table t (and t2, lmove's destination),
// journaling it when it writes.
func (s *Store) execOn(t, t2 *table, op wire.Op, fn opFunc, args wire.Args, out []byte) ([]byte, error) {
	write := op.IsWrite()
	c := call{t: t, t2: t2, args: args}
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
	res, err := run(c, op, fn, out)
	if err != nil {
		return out, err
	}
	if j != nil {
		if err := record(j.record, op, args); err != nil {
			if c.undo == nil {
				// A checked journal failed anyway: the op stays applied,
				// and the caller is told it may not be durable.
				return out, err
			}
			c.undo.rollback()
			return out, err
		}
	}
	return res, nil
}

// run checks that the table has the kind op needs, then runs it.
func run(c call, op wire.Op, fn opFunc, out []byte) ([]byte, error) {
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

// tableName returns argument 0 as a table name.
func tableName(a wire.Args) (string, error) {
	var name string
	var err error
	if len(a.Items) > 0 && len(a.Items[0]) > 0 && a.Items[0][0]>>5 == 3 && a.Items[0][0]&0x1f < 24 &&
		len(a.Items[0]) == 1+int(a.Items[0][0]&0x1f) && utf8.Valid(a.Items[0][1:]) {
		name = string(a.Items[0][1:]) // the common short name, without a decoder
	} else {
		name, err = a.Text(0)
	}
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
			t := &table{name: name}
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
	for _, t := range s.tables {
		if kind(t.pubKind.Load()) == kindNone {
			continue
		}
		st.Tables++
		st.Entries += t.pubLen.Load()
		st.Bytes += t.pubBytes.Load()
	}
	return st
}

// listTables answers the tables op: [[name, kind, len]...] sorted by name.
// Tables in held (locked by the running batch) are read directly, so a
// batch sees its own changes; the others report their published figures.
func (s *Store) listTables(a wire.Args, out []byte, held map[*table]bool) ([]byte, error) {
	if err := a.Want(0, 0); err != nil {
		return out, err
	}
	type row struct {
		name string
		kind kind
		n    int64
	}
	var rows []row
	s.mu.RLock()
	for name, t := range s.tables {
		r := row{name: name}
		if held[t] {
			r.kind, r.n = t.kind, int64(t.length())
		} else {
			r.kind, r.n = kind(t.pubKind.Load()), t.pubLen.Load()
		}
		if r.kind != kindNone {
			rows = append(rows, r)
		}
	}
	s.mu.RUnlock()
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
	if err := a.Want(1, 2); err != nil {
		return out, err
	}
	t := c.t
	if t.kind != kindNone {
		return out, errTableExists(t.name, t.kind)
	}
	var d *dict
	var l *list
	if a.Op == wire.OpCreateDict {
		d = newDict()
		if a.Has(1) {
			pairs, err := pairsArg(a, 1)
			if err != nil {
				return out, err
			}
			tmp := call{t: &table{d: d}}
			for _, p := range pairs {
				tmp.put(p[0], p[1]) // later duplicates overwrite, as dict(pairs)
			}
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
		l = newList(items)
	}
	if d != nil {
		t.kind, t.d = kindDict, d
	} else {
		t.kind, t.l = kindList, l
	}
	if c.undo != nil {
		c.undo.add(func() { t.kind, t.d, t.l = kindNone, nil, nil })
	}
	return wire.AppendNull(out), nil
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
	k, d, l := t.kind, t.d, t.l
	t.kind, t.d, t.l = kindNone, nil, nil // release takes the empty slot out of the map
	if c.undo != nil {
		c.undo.add(func() { t.kind, t.d, t.l = k, d, l })
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
	return wire.AppendUint(out, uint64(c.t.length())), nil
}
