package store

import (
	"fmt"
	"sort"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// A batch [[op, arg...]...] runs its ops in order, all or none: it locks
// every table it names (sorted by name, the lock order), runs the ops with
// an undo log, and on the first failure takes back what the earlier ops
// did, exactly (dict order included), before unlocking. No other op can
// observe a table between two ops of a batch.
//
// Which error a failing batch reports is the first failing item's, in
// item order, whatever the kind of failure (PROTOCOL.md 6.2): every item
// is parsed before anything runs, because the tables must be known to be
// locked, but an item that cannot even be parsed (not an array, an
// unknown op, an op a batch cannot hold, a bad table name) fails only when
// its turn comes, so a failure of an earlier item wins over it. Since a
// failure undoes everything, this is exactly what running the items one
// by one and stopping at the first failure reports.

type batchOp struct {
	op   wire.Op
	args wire.Args
	name string // the table addressed; "" for tables
	dst  string // lmove: the second table
	fn   opFunc
	err  error  // the item cannot run: reported when its turn comes
	what string // the item's name in messages: "dget", "op_99999", "" (no op number)
}

// prefix is what a batch puts before an item's error message.
func (b *batchOp) prefix(k int) string {
	if b.what == "" {
		return fmt.Sprintf("batch op %d: ", k)
	}
	return fmt.Sprintf("batch op %d (%s): ", k, b.what)
}

// batch runs a batch under the gate; lists gets the names of the tables
// it wrote that are lists when it is done (for their waiters).
func (s *Store) batch(args wire.Args, out []byte, now, base int64) (res []byte, lists []string, err error) {
	res, err = s.runBatch(args, out, now, base, &lists)
	return res, lists, err
}

func (s *Store) runBatch(args wire.Args, out []byte, now, base int64, lists *[]string) ([]byte, error) {
	if err := args.Want(1, 1); err != nil {
		return out, err
	}
	raw := args.Items[0]
	if len(raw) == 0 || raw[0]>>5 != 4 {
		return out, errBadRequest("batch: argument 1 must be an array of [op, arg...] arrays, got %s", wire.TypeName(raw))
	}
	items, err := wire.SplitArray(raw)
	if err != nil {
		return out, prefixed(err, "batch: ")
	}
	ops := make([]batchOp, len(items))
	writes := make(map[string]bool) // table name -> some op writes it
	anyWrite := false
	for k, it := range items {
		b := parseBatchOp(it)
		ops[k] = b
		if b.err != nil {
			continue
		}
		if b.name != "" {
			writes[b.name] = writes[b.name] || b.op.IsWrite()
		}
		if b.dst != "" {
			writes[b.dst] = true
		}
		anyWrite = anyWrite || b.op.IsWrite()
	}

	names := make([]string, 0, len(writes))
	for name := range writes {
		names = append(names, name)
	}
	sort.Strings(names)
	tables := make(map[string]*table, len(names))
	held := make(map[*table]bool, len(names))
	locked := make([]bool, len(names))
	var written []*table // in name order, as journalEffects wants them
	for i, name := range names {
		t, w := s.claim(name, writes[name])
		tables[name], held[t], locked[i] = t, true, w
		if w {
			t.capture() // see snapshot.go
			written = append(written, t)
		}
	}
	defer func() {
		for i, name := range names {
			t := tables[name]
			if locked[i] && t.kind == kindList && s.nwait.Load() > 0 {
				*lists = append(*lists, name)
			}
			s.release(t, locked[i])
		}
	}()

	j := s.journal.Load()
	if !anyWrite {
		j = nil
	}
	if j != nil {
		if err := j.precheck(wire.OpBatch); err != nil {
			return out, err
		}
	}
	if s.overMemory.Load() {
		for k := range ops {
			if b := &ops[k]; b.err == nil && b.op.Grows() && !tables[b.name].isCache() {
				return out, errOutOfMemory(wire.OpBatch, b.name)
			}
		}
	}
	type size struct {
		bytes int64
		live  int
	}
	sizes := make(map[*table]size)
	for _, t := range written {
		if t.isCache() {
			sizes[t] = size{t.d.bytes, t.d.live}
		}
	}

	undo := &undoLog{}
	start := len(out)
	out = wire.AppendArrayHeader(out, len(ops))
	for k := range ops {
		b := &ops[k]
		switch {
		case b.err != nil:
			err = b.err
		case b.op == wire.OpTables:
			out, err = s.listTables(b.args, out, held, now)
		default:
			c := call{s: s, t: tables[b.name], args: b.args, undo: undo, now: now, base: base}
			if b.dst != "" {
				c.t2 = tables[b.dst]
			}
			out, err = run(c, b.op, b.fn, out)
		}
		if err != nil {
			undo.rollback() // what expired during the batch included (expireAt)
			discardEffects(written)
			return out[:start], prefixed(err, "%s", b.prefix(k))
		}
	}
	for _, t := range written {
		if sz, ok := sizes[t]; ok && t.isCache() {
			s.evictFor(t, now, sz.bytes, sz.live, true)
		}
	}
	if err := s.journalEffects(j, written, wire.OpBatch, args, true, base); err != nil {
		undo.rollback()
		discardEffects(written)
		return out[:start], err
	}
	return out, nil
}

// parseBatchOp reads one [op, arg...] of a batch; b.err says why the item
// cannot run, checked in the order of a request on its own: the shape,
// the op number, the table name.
func parseBatchOp(raw wire.Raw) (b batchOp) {
	if len(raw) == 0 || raw[0]>>5 != 4 {
		b.err = errBadRequest("expected an array [op, arg...], got %s", wire.TypeName(raw))
		return b
	}
	parts, err := wire.SplitArray(raw)
	if err != nil {
		b.err = err
		return b
	}
	if len(parts) == 0 {
		b.err = errBadRequest("expected an array [op, arg...], got an empty array")
		return b
	}
	op, ok := wire.ItemUint(parts[0])
	if !ok {
		b.err = errBadRequest("expected an array [op, arg...] starting with an op number (an unsigned integer), got %s", wire.TypeName(parts[0]))
		return b
	}
	if op > 0xffff || !wire.Op(op).Known() {
		b.what = fmt.Sprintf("op_%d", op)
		b.err = wire.Errorf(wire.CodeUnknownOp, "unknown op %d (see PROTOCOL.md for the ops of protocol version %d)", op, wire.ProtocolVersion)
		return b
	}
	b.op = wire.Op(op)
	b.what = b.op.String()
	b.args = wire.Args{Op: b.op, Items: parts[1:]}
	switch b.op {
	case wire.OpHello, wire.OpPing, wire.OpInfo, wire.OpSave,
		wire.OpSlowLog, wire.OpLatency, wire.OpMonitor, wire.OpClients, wire.OpKillClient, wire.OpConfigGet, wire.OpConfigSet:
		b.err = errBadRequest("%s cannot be part of a batch: send it on its own", b.op)
		return b
	case wire.OpBatch:
		b.err = errBadRequest("a batch cannot contain another batch: put its ops in the outer batch")
		return b
	case wire.OpTimed, wire.OpDRemove:
		b.err = errBadRequest("%s is written by the daemon to its log, never sent by a client", b.op)
		return b
	case wire.OpLBPop, wire.OpLBMove, wire.OpCancel:
		b.err = errBadRequest("%s cannot be part of a batch: a batch never waits (use lpop, lpopleft or lmove)", b.op)
		return b
	case wire.OpTables:
		return b
	}
	if b.fn = handler(b.op); b.fn == nil {
		b.err = wire.Errorf(wire.CodeInternal, "op %s has no handler in the store", b.op)
		return b
	}
	b.name, b.err = tableName(b.args)
	if b.err == nil && b.op == wire.OpLMove {
		b.dst, b.err = nameArg(b.args, 1)
	}
	return b
}

// execBatch runs a batch under the gate, then hands what it added to
// lists to their waiters.
func (s *Store) execBatch(args wire.Args, out []byte, now, base int64) ([]byte, error) {
	s.gate.RLock()
	res, lists, err := s.batch(args, out, now, base)
	s.gate.RUnlock()
	if err == nil {
		for _, name := range lists {
			s.wake(name)
		}
	}
	return res, err
}
