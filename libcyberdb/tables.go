package libcyberdb

import (
	"context"
	"errors"
	"fmt"

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
type tableOps struct{ x executor }

// run executes a call built by fill and decodes its result into out (nil:
// ignore it).
func run(ctx context.Context, x executor, op wire.Op, table string, out any, fill func(*call)) error {
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
// the dict's insertion order. It fails with ErrTableExists, unless
// IfNotExists is given.
func (t tableOps) CreateDict(ctx context.Context, name string, content any, opts ...CreateOption) error {
	return t.create(ctx, wire.OpCreateDict, name, content, opts)
}

// CreateList creates an empty list table, or one holding content (a Go
// slice). It fails with ErrTableExists, unless IfNotExists is given.
func (t tableOps) CreateList(ctx context.Context, name string, content any, opts ...CreateOption) error {
	return t.create(ctx, wire.OpCreateList, name, content, opts)
}

// CreateOption changes what CreateDict and CreateList do.
type CreateOption func(*createConfig)

type createConfig struct {
	ifNotExists bool
	opts        map[string]any // create_dict's options (expiry.go)
}

// IfNotExists makes CreateDict and CreateList succeed when a table of the
// name and kind asked for already exists, leaving it as it is (content is
// used only when the table is created). It is how each of several worker
// processes makes sure, at start-up, that the tables it uses are there:
//
//	c.CreateDict(ctx, "hits", nil, libcyberdb.IfNotExists())
//
// A table of the other kind fails with ErrWrongKind. Tables are never
// created implicitly by a write: a typo in a name gives ErrNoTable rather
// than a new table, and whether a name is a dict or a list is decided once.
func IfNotExists() CreateOption { return func(c *createConfig) { c.ifNotExists = true } }

func (t tableOps) create(ctx context.Context, op wire.Op, name string, content any, opts []CreateOption) error {
	cc := createConfig{opts: map[string]any{}}
	for _, o := range opts {
		o(&cc)
	}
	if len(cc.opts) > 0 && op == wire.OpCreateList {
		return &Error{Code: wire.CodeBadRequest, Message: fmt.Sprintf(
			"create list %q: DefaultTTL, EvictLRU and MaxLen are options of dict tables (a list table's deadline is ExpireTable's)", name)}
	}
	fill := func(cl *call) {
		cl.text(name)
		switch {
		case len(cc.opts) > 0 && content == nil:
			cl.null().value(cc.opts)
		case len(cc.opts) > 0:
			cl.value(content).value(cc.opts)
		case content != nil:
			cl.value(content)
		}
	}
	lenOp, kind, other := wire.OpDLen, KindDict, KindList
	if op == wire.OpCreateList {
		lenOp, kind, other = wire.OpLLen, KindList, KindDict
	}
	for attempt := 0; ; attempt++ {
		err := run(ctx, t.x, op, name, nil, fill)
		if err == nil || !cc.ifNotExists || !errors.Is(err, ErrTableExists) {
			return err
		}
		// The name is taken: by a table of this kind? (Two round trips
		// only when it exists, which is the rare case at start-up.)
		err = run(ctx, t.x, lenOp, name, nil, func(cl *call) { cl.text(name) })
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrWrongKind):
			return &Error{Code: wire.CodeWrongKind, Message: fmt.Sprintf(
				"table %q is a %s, not a %s: drop it first or pick another name", name, other, kind)}
		case !errors.Is(err, ErrNoTable) || attempt >= 3:
			return err
		}
		// Dropped in between: create it again.
	}
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
