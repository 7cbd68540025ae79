package libcyberdb

import (
	"context"
	"strings"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// The typed handles' hot paths without allocations, one copy of each.
// Passing a key or a value to call.value boxes it in an interface that
// escapes (to the CBOR library), and decoding into a V through unmarshal
// makes the V escape: one allocation each, per call. appendScalar and
// decodeScalar encode and decode the common scalar types directly; the
// interfaces they take do not escape, so the generic arg and decodeFast
// box their values on the stack. The general paths (appendValue,
// unmarshal) start with the same two functions, so both give the same
// encoding and the same errors. TestDictHotPathsDoNotAllocate keeps it so.

// appendScalar appends v when it is a string, an integer of a common type
// or a bool; ok is false, and dst unchanged, for anything else.
func appendScalar(dst []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case string:
		return wire.AppendText(dst, x), true
	case int:
		return wire.AppendInt(dst, int64(x)), true
	case int64:
		return wire.AppendInt(dst, x), true
	case int32:
		return wire.AppendInt(dst, int64(x)), true
	case uint64:
		return wire.AppendUint(dst, x), true
	case uint:
		return wire.AppendUint(dst, uint64(x)), true
	case uint32:
		return wire.AppendUint(dst, uint64(x)), true
	case bool:
		return wire.AppendBool(dst, x), true
	}
	return dst, false
}

// decodeScalar decodes raw into v when v is a *string or an *int and raw
// is a plain text string or unsigned integer; false means "use the
// library" (which refuses what these refuse, or handles it).
func decodeScalar(raw []byte, v any) bool {
	switch p := v.(type) {
	case *string:
		if t, ok := wire.ItemText(raw); ok {
			*p = strings.Clone(t)
			return true
		}
	case *int:
		if u, ok := wire.ItemUint(raw); ok && u <= 1<<62 {
			*p = int(u)
			return true
		}
	}
	return false
}

// arg appends v as one argument, like call.value.
func arg[T any](cl *call, v T) *call {
	if args, ok := appendScalar(cl.args, any(v)); ok {
		cl.args = args
		cl.nargs++
		return cl
	}
	return cl.value(v)
}

// decodeFast decodes raw into a V when decodeScalar can; ok is false
// otherwise, and the caller then uses unmarshal.
func decodeFast[V any](raw []byte) (v V, ok bool) {
	ok = decodeScalar(raw, &v)
	return v, ok
}

// finishValue runs cl and decodes its result as a V.
func finishValue[V any](ctx context.Context, x executor, table string, cl *call) (V, error) {
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
