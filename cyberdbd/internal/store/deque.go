package store

import (
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// The collections.deque operations of a list table (PROTOCOL.md 6.4):
// appendleft, popleft, extendleft and rotate, O(1) at either end (list.go),
// and lmove, the atomic pop from one list and push onto another (Redis's
// LMOVE) on which reliable queues are built.

// pushFrontValues prepends vs one by one (so the last ends up first, as
// deque.extendleft), recording the undo step.
func (c call) pushFrontValues(vs [][]byte) {
	l := c.t.l
	l.reserve(len(vs), 0)
	for _, v := range vs {
		l.pushFront(string(v))
	}
	if c.undo != nil {
		n := len(vs)
		c.undo.add(func() {
			for range n {
				l.popFront()
			}
		})
	}
}

func opLAppendLeft(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, -1); err != nil {
		return out, err
	}
	vs, err := c.values(1, c.args.Len())
	if err != nil {
		return out, err
	}
	c.pushFrontValues(vs)
	return wire.AppendUint(out, uint64(len(c.t.l.items))), nil
}

func opLExtendLeft(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 2); err != nil {
		return out, err
	}
	vs, err := arrayArg(c.args, 1)
	if err != nil {
		return out, err
	}
	c.pushFrontValues(vs)
	return wire.AppendUint(out, uint64(len(c.t.l.items))), nil
}

func errEmptyDeque(op wire.Op, name string) *wire.Error {
	return wire.Errorf(wire.CodeIndexOutOfRange, "pop from an empty deque: %s of list table %q, which is empty", op, name)
}

func opLPopLeft(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(1, 1); err != nil {
		return out, err
	}
	l := c.t.l
	if len(l.items) == 0 {
		return out, errEmptyDeque(wire.OpLPopLeft, c.t.name)
	}
	v := l.popFront()
	if c.undo != nil {
		c.undo.add(func() { l.pushFront(v) })
	}
	return append(out, v...), nil
}

// opLRotate is deque.rotate(n): n > 0 moves the last n elements to the
// front, n < 0 the first -n to the back; n defaults to 1.
func opLRotate(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(1, 2); err != nil {
		return out, err
	}
	raw, has, err := c.args.OptInt(1)
	if err != nil {
		return out, err
	}
	if !has {
		raw = 1
	}
	l := c.t.l
	n := int64(len(l.items))
	if n == 0 {
		return wire.AppendNull(out), nil
	}
	k := int(raw % n) // in -n+1 .. n-1: no overflow for any int64
	l.rotate(k)
	if c.undo != nil {
		c.undo.add(func() { l.rotate(-k) })
	}
	return wire.AppendNull(out), nil
}

// endArg reads argument i, an end of a list: "left" or "right".
func endArg(a wire.Args, i int) (left bool, err error) {
	s, err := a.Text(i)
	if err == nil {
		switch s {
		case "left":
			return true, nil
		case "right":
			return false, nil
		}
	}
	return false, errBadRequest("%s: argument %d must be \"left\" or \"right\" (an end of the list)", a.Op, i+1)
}

// opLMove pops from one end of c.t and pushes onto an end of c.t2 (the
// same table or another, both locked by the caller): [src, dst, from, to].
func opLMove(c call, out []byte) ([]byte, error) {
	a := c.args
	if err := a.Want(4, 4); err != nil {
		return out, err
	}
	from, err := endArg(a, 2)
	if err != nil {
		return out, err
	}
	to, err := endArg(a, 3)
	if err != nil {
		return out, err
	}
	src, dst := c.t.l, c.t2.l
	if len(src.items) == 0 {
		return out, wire.Errorf(wire.CodeIndexOutOfRange, "lmove: list table %q is empty", c.t.name)
	}
	v := moveValue(src, dst, from, to)
	if c.undo != nil {
		c.undo.add(func() { moveValue(dst, src, to, from) })
	}
	return append(out, v...), nil
}

// moveValue pops from one end of src and pushes onto an end of dst.
func moveValue(src, dst *list, fromLeft, toLeft bool) string {
	var v string
	if fromLeft {
		v = src.popFront()
	} else {
		v = src.popBack()
	}
	if toLeft {
		dst.pushFront(v)
	} else {
		dst.pushBack(v)
	}
	return v
}
