package libcyberdb

import (
	"context"
	"strings"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// The typed handles' hot paths without allocations. Passing a key or a
// value to call.value boxes it in an interface, and decoding into a V
// through unmarshal makes the V escape: one allocation each, per call.
// These generic helpers encode and decode the common scalar types
// directly (the interface conversions in their type switches do not
// escape) and fall back to the general path for everything else, with the
// same encoding and the same errors.

// arg appends v as one argument, like call.value.
func arg[T any](cl *call, v T) *call {
	switch x := any(v).(type) {
	case string:
		cl.args = wire.AppendText(cl.args, x)
	case int:
		cl.args = wire.AppendInt(cl.args, int64(x))
	case int64:
		cl.args = wire.AppendInt(cl.args, x)
	case uint64:
		cl.args = wire.AppendUint(cl.args, x)
	case bool:
		cl.args = wire.AppendBool(cl.args, x)
	default:
		return cl.value(v)
	}
	cl.nargs++
	return cl
}

// decodeFast decodes raw into a V when V is string or int and raw is
// exactly what unmarshal's fast path accepts; ok is false otherwise, and
// the caller then uses unmarshal.
func decodeFast[V any](raw []byte) (v V, ok bool) {
	if len(raw) == 0 {
		return v, false
	}
	switch any(v).(type) {
	case string:
		if t, ok := wire.ItemText(raw); ok {
			return any(strings.Clone(t)).(V), true
		}
	case int:
		if u, ok := wire.ItemUint(raw); ok && u <= 1<<62 {
			return any(int(u)).(V), true
		}
	}
	return v, false
}

// finishValue runs cl and decodes its result as a V.
func finishValue[V any](ctx context.Context, x Executor, table string, cl *call) (V, error) {
	err := x.exec(ctx, cl)
	if err != nil {
		cl.release()
		var zero V
		return zero, err
	}
	if v, ok := decodeFast[V](cl.result); ok {
		cl.release()
		return v, nil
	}
	var v V
	if derr := unmarshal(cl.result, &v); derr != nil {
		err = decodeErr(cl.op, table, cl.args, cl.nargs, cl.result, &v, derr)
	}
	cl.release()
	return v, err
}
