package store

import (
	"sort"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// A batch [[op, arg...]...] runs its ops in order, all or none: it locks
// every table it names (sorted by name, the lock order), runs the ops with
// an undo log, and on the first failure takes back what the earlier ops
// did, exactly (dict order included), before unlocking. No other op can
// observe a table between two ops of a batch.

type batchOp struct {
	op   wire.Op
	args wire.Args
	name string // the table addressed; "" for tables
	fn   opFunc
}

func (s *Store) batch(args wire.Args, out []byte) ([]byte, error) {
	if err := args.Want(1, 1); err != nil {
		return out, err
	}
	raw := args.Items[0]
	if len(raw) == 0 || raw[0]>>5 != 4 {
		return out, errBadRequest("batch: argument 1 must be an array of [op, arg...] arrays")
	}
	items, err := wire.SplitArray(raw)
	if err != nil {
		return out, prefixed(err, "batch: ")
	}
	ops := make([]batchOp, len(items))
	writes := make(map[string]bool) // table name -> some op writes it
	anyWrite := false
	for k, it := range items {
		b, err := parseBatchOp(it)
		if err != nil {
			return out, prefixed(err, "batch op %d (%s): ", k, b.op)
		}
		ops[k] = b
		if b.name != "" {
			writes[b.name] = writes[b.name] || b.op.IsWrite()
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
	for i, name := range names {
		t, w := s.claim(name, writes[name])
		tables[name], held[t], locked[i] = t, true, w
		if w {
			t.capture() // see snapshot.go
		}
	}
	defer func() {
		for i, name := range names {
			s.release(tables[name], locked[i])
		}
	}()

	undo := &undoLog{}
	start := len(out)
	out = wire.AppendArrayHeader(out, len(ops))
	for k, b := range ops {
		if b.op == wire.OpTables {
			out, err = s.listTables(b.args, out, held)
		} else {
			c := call{t: tables[b.name], args: b.args, undo: undo}
			out, err = run(c, b.op, b.fn, out)
		}
		if err != nil {
			undo.rollback()
			return out[:start], prefixed(err, "batch op %d (%s): ", k, b.op)
		}
	}
	if j := s.journal.Load(); anyWrite && j != nil {
		if err := j.precheck(wire.OpBatch); err != nil {
			undo.rollback()
			return out[:start], err
		}
		if err := record(j.record, wire.OpBatch, args); err != nil {
			undo.rollback()
			return out[:start], err
		}
	}
	return out, nil
}

// parseBatchOp reads one [op, arg...] of a batch.
func parseBatchOp(raw wire.Raw) (batchOp, error) {
	var b batchOp
	if len(raw) == 0 || raw[0]>>5 != 4 {
		return b, errBadRequest("expected an array [op, arg...]")
	}
	parts, err := wire.SplitArray(raw)
	if err != nil {
		return b, err
	}
	var op uint64
	if len(parts) == 0 || len(parts[0]) == 0 || parts[0][0]>>5 != 0 || wire.Unmarshal(parts[0], &op) != nil {
		return b, errBadRequest("expected an array [op, arg...] starting with an op number")
	}
	if op > 0xffff {
		return b, wire.Errorf(wire.CodeUnknownOp, "unknown op %d", op)
	}
	b.op = wire.Op(op)
	b.args = wire.Args{Op: b.op, Items: parts[1:]}
	switch b.op {
	case wire.OpHello, wire.OpPing, wire.OpInfo, wire.OpSave:
		return b, errBadRequest("%s cannot be part of a batch: send it on its own", b.op)
	case wire.OpBatch:
		return b, errBadRequest("a batch cannot contain another batch: put its ops in the outer batch")
	case wire.OpTables:
		return b, nil
	}
	if b.fn = handler(b.op); b.fn == nil {
		return b, wire.Errorf(wire.CodeUnknownOp, "unknown op %d", op)
	}
	b.name, err = tableName(b.args)
	return b, err
}
