package store

import (
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// opGuard checks a condition, [t, kind, arg...], and fails with
// guard_failed when it does not hold. In a batch a failed guard undoes
// the batch like any failed op, and the batch's error names it ("batch op
// K (guard): ..."): Redis's WATCH/MULTI/EXEC in one round trip. The kinds:
//
//	"exists"                 table t exists (either kind)
//	"len", n                 table t has n entries or elements
//	"eq", key, value         dict t holds value at key
//	"absent", key            dict t has no key
//	"cas", key, new, exp?    dcas(t, key, new, exp?) set: a compare-and-swap
//	                         whose failure fails the batch
//
// A missing table fails every guard (guard_failed, not no_such_table); a
// list table given to a dict guard is wrong_kind. The dict guards read
// through the dict ops (dget, dcas), so they see exactly what those see.
func opGuard(c call, out []byte) ([]byte, error) {
	a := c.args
	if err := a.Want(2, -1); err != nil {
		return out, err
	}
	kind, err := a.Text(1)
	if err != nil {
		return out, errBadRequest("guard: argument 2 must be the guard's kind: \"exists\", \"len\", \"eq\", \"absent\" or \"cas\"")
	}
	t := c.t
	want := func(lo, hi int) error { return a.Want(lo, hi) }
	failed := func(format string, args ...any) ([]byte, error) {
		return out, wire.Errorf(wire.CodeGuardFailed, "guard failed: "+format, args...)
	}
	switch kind {
	case "exists":
		if err := want(2, 2); err != nil {
			return out, err
		}
		if t.kind == kindNone {
			return failed("table %q does not exist", t.name)
		}
		return wire.AppendNull(out), nil
	case "len":
		if err := want(3, 3); err != nil {
			return out, err
		}
		n, err := a.Int(2)
		if err != nil {
			return out, err
		}
		if t.kind == kindNone {
			return failed("table %q does not exist", t.name)
		}
		if have := t.length(c.now); int64(have) != n {
			return failed("table %q has %d entries or elements, not %d", t.name, have, n)
		}
		return wire.AppendNull(out), nil
	case "eq", "absent", "cas":
	default:
		return out, errBadRequest("guard: unknown kind %q: use \"exists\", \"len\", \"eq\", \"absent\" or \"cas\"", kind)
	}
	switch kind {
	case "eq":
		err = want(4, 4)
	case "absent":
		err = want(3, 3)
	default:
		err = want(4, 5)
	}
	if err != nil {
		return out, err
	}
	key, err := a.Value(2)
	if err != nil {
		return out, err
	}
	if t.kind == kindNone {
		return failed("table %q does not exist", t.name)
	}
	if t.kind != kindDict {
		return out, wire.Errorf(wire.CodeWrongKind, "table %q is a %s; the guard %q needs a dict", t.name, t.kind, kind)
	}
	items := append([]wire.Raw{a.Items[0]}, a.Items[2:]...) // [t, key, ...]
	switch kind {
	case "eq":
		v, err := a.Value(3)
		if err != nil {
			return out, err
		}
		got, err := opDGet(call{s: c.s, t: t, now: c.now, base: c.base, args: wire.Args{Op: wire.OpDGet, Items: items[:2]}}, nil)
		if err != nil {
			if wire.AsError(err).Code == wire.CodeKeyNotFound {
				return failed("key %s is not in dict table %q (expected %s)", show(key), t.name, show(v))
			}
			return out, err
		}
		if string(got) != string(v) {
			return failed("key %s of dict table %q is %s, not %s", show(key), t.name, show(got), show(v))
		}
	case "absent":
		got, err := opDHas(call{s: c.s, t: t, now: c.now, base: c.base, args: wire.Args{Op: wire.OpDHas, Items: items}}, nil)
		if err != nil {
			return out, err
		}
		if len(got) == 1 && got[0] == 0xf5 {
			return failed("key %s is in dict table %q", show(key), t.name)
		}
	case "cas":
		got, err := opDCAS(call{s: c.s, t: t, now: c.now, base: c.base, args: wire.Args{Op: wire.OpDCAS, Items: items}, undo: c.undo}, nil)
		if err != nil {
			return out, err
		}
		if len(got) == 1 && got[0] == 0xf4 {
			return failed("the compare-and-swap of key %s in dict table %q did not set it", show(key), t.name)
		}
	}
	return wire.AppendNull(out), nil
}
