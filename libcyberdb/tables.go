package libcyberdb

import (
	"context"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Kind is a table's kind: KindDict or KindList.
type Kind string

// Table kinds.
const (
	KindDict Kind = "dict"
	KindList Kind = "list"
)

// TableInfo describes one table, as listed by Tables.
type TableInfo struct {
	_    struct{} `cbor:",toarray"`
	Name string
	Kind Kind
	Len  int
}

// tableOps are the server and table-management operations, shared by
// Client and Conn.
type tableOps struct{ x Executor }

// run executes a call built by fill and decodes its result into out (nil:
// ignore it).
func run(ctx context.Context, x Executor, op wire.Op, table string, out any, fill func(*call)) error {
	cl := newCall(op)
	if fill != nil {
		fill(cl)
	}
	err := x.exec(ctx, cl)
	if err == nil && out != nil {
		if derr := unmarshal(cl.result, out); derr != nil {
			err = decodeErr(op, table, cl.args, cl.nargs, cl.result, out, derr)
		}
	}
	cl.release()
	return err
}

// Ping checks that the daemon answers.
func (t tableOps) Ping(ctx context.Context) error {
	return run(ctx, t.x, wire.OpPing, "", nil, nil)
}

// Info returns the daemon's INFO map (PROTOCOL.md 6.1): version, uptime,
// connections, tables, entries, memory, op counts, and more.
func (t tableOps) Info(ctx context.Context) (map[string]any, error) {
	var m map[string]any
	err := run(ctx, t.x, wire.OpInfo, "", &m, nil)
	return m, err
}

// Save asks the daemon for a durable snapshot of every table and returns
// once it is on disk. A daemon without a data directory answers
// ErrBadRequest.
func (t tableOps) Save(ctx context.Context) error {
	return run(ctx, t.x, wire.OpSave, "", nil, nil)
}

// CreateDict creates an empty dict table, or one holding content: a Go
// map, or a slice of Item (or of [key, value] pairs) whose order becomes
// the dict's insertion order. It fails with ErrTableExists.
func (t tableOps) CreateDict(ctx context.Context, name string, content any) error {
	return run(ctx, t.x, wire.OpCreateDict, name, nil, func(cl *call) {
		cl.text(name)
		if content != nil {
			cl.value(content)
		}
	})
}

// CreateList creates an empty list table, or one holding content (a Go
// slice). It fails with ErrTableExists.
func (t tableOps) CreateList(ctx context.Context, name string, content any) error {
	return run(ctx, t.x, wire.OpCreateList, name, nil, func(cl *call) {
		cl.text(name)
		if content != nil {
			cl.value(content)
		}
	})
}

// Drop deletes a table. It fails with ErrNoTable.
func (t tableOps) Drop(ctx context.Context, name string) error {
	return run(ctx, t.x, wire.OpDrop, name, nil, func(cl *call) { cl.text(name) })
}

// Exists reports whether a table exists.
func (t tableOps) Exists(ctx context.Context, name string) (bool, error) {
	var ok bool
	err := run(ctx, t.x, wire.OpExists, name, &ok, func(cl *call) { cl.text(name) })
	return ok, err
}

// Tables lists every table, sorted by name.
func (t tableOps) Tables(ctx context.Context) ([]TableInfo, error) {
	var ts []TableInfo
	err := run(ctx, t.x, wire.OpTables, "", &ts, nil)
	return ts, err
}

// Batch starts a batch of operations on this Client or Conn, applied
// atomically by Exec.
func (t tableOps) Batch() *Batch { return &Batch{x: t.x} }
