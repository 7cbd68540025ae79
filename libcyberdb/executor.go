package libcyberdb

import (
	"context"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Executor is what table handles (NewDict, NewList, NewLock) run their
// operations on: a *Client (calls go to the shared pool) or a *Conn
// (calls go to one pinned connection), or, in a test, a fake of your own.
//
// Do runs one protocol operation (PROTOCOL.md section 6). When a handle
// calls an Executor other than a *Client or a *Conn, each of args is one
// argument already encoded as a CBOR item, a wire.Raw (decode it with
// wire.Unmarshal), and Do returns the result as one CBOR item (build it
// with wire.Marshal). Errors are returned to the handle's caller as they
// are, so a fake returns the package's sentinels (ErrNotFound, ErrNoTable,
// ...) where the daemon would fail. See ExampleExecutor.
//
// Tests that want the real thing start a daemon with package cyberdbtest.
type Executor interface {
	Do(ctx context.Context, op wire.Op, args ...any) (wire.Raw, error)
}

// executor is what the handles call: *Client and *Conn send a call
// already encoded, with no copy and no allocation (fastpath.go); any
// other Executor is adapted by foreign.
type executor interface {
	exec(ctx context.Context, cl *call) error
}

// asExecutor returns x itself when it is a *Client or *Conn, else x
// adapted to exec. The handles resolve it once, when they are made, so
// that their calls cost no type assertion.
func asExecutor(x Executor) executor {
	if ix, ok := x.(executor); ok {
		return ix
	}
	return foreign{x}
}

// foreign runs calls on an Executor of the user's: it splits the call's
// encoded arguments into one wire.Raw each and calls Do.
type foreign struct{ x Executor }

func (f foreign) exec(ctx context.Context, cl *call) error {
	if cl.encErr != nil {
		return cl.encErr
	}
	args := make([]any, 0, cl.nargs)
	for rest := cl.args; len(rest) > 0 && len(args) < cl.nargs; {
		n := wire.ItemLen(rest)
		if n <= 0 || n > len(rest) {
			return &ProtocolError{Msg: "cannot split the arguments of " + cl.op.String()}
		}
		args = append(args, wire.Raw(rest[:n:n]))
		rest = rest[n:]
	}
	res, err := f.x.Do(ctx, cl.op, args...)
	if err != nil {
		return err
	}
	if len(res) == 0 {
		res = wire.Raw{0xf6} // a nil result is null
	}
	cl.result = res
	return nil
}
