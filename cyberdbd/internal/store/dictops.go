package store

import (
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Dict operations. Each handler validates all of its arguments before it
// changes anything, so an op that fails leaves its table as it was; a
// change made through put or del is recorded in c.undo for batches.

// Scan page sizes: a count above maxScanCount is clamped to it.
const maxScanCount = 10000

var nullItem = []byte{0xf6}

// put sets key to val: an existing key keeps its place, a new one goes last.
func (c call) put(key, val []byte) {
	d := c.t.d
	if pos := d.find(key); pos >= 0 {
		old := d.entries[pos].kv
		d.setVal(pos, val)
		if c.undo != nil {
			k := old[:len(key)]
			c.undo.add(func() { d.setKV(d.find([]byte(k)), old) })
		}
		return
	}
	seq := d.nextSeq
	pos := d.insert(key, val)
	if c.undo != nil {
		k := d.entries[pos].kv[:len(key)]
		c.undo.add(func() {
			d.removeAt(d.find([]byte(k)))
			d.nextSeq = seq
		})
	}
}

// del removes the live entry at pos.
func (c call) del(pos int) {
	d := c.t.d
	e := d.entries[pos]
	d.removeAt(pos)
	if c.undo != nil {
		c.undo.add(func() { d.restore(e.kv, e.seq) })
	}
}

// values returns the arguments lo..hi-1 that are present, in canonical form.
func (c call) values(lo, hi int) ([][]byte, error) {
	out := make([][]byte, 0, hi-lo)
	for i := lo; i < hi && i < c.args.Len(); i++ {
		v, err := c.args.Value(i)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// fixed is values for at most three arguments, without allocating: n of
// them are present.
func (c call) fixed(lo, hi int) (v [3][]byte, n int, err error) {
	for i := lo; i < hi && i < c.args.Len(); i++ {
		if v[n], err = c.args.Value(i); err != nil {
			return v, 0, err
		}
		n++
	}
	return v, n, nil
}

func opDGet(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 3); err != nil {
		return out, err
	}
	v, n, err := c.fixed(1, 3)
	if err != nil {
		return out, err
	}
	d := c.t.d
	if pos := d.find(v[0]); pos >= 0 {
		return append(out, d.entries[pos].kv[len(v[0]):]...), nil
	}
	if n == 2 { // a default, even null, was given
		return append(out, v[1]...), nil
	}
	return out, errKeyNotFound(c.t.name, v[0])
}

func opDSet(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(3, 3); err != nil {
		return out, err
	}
	v, _, err := c.fixed(1, 3)
	if err != nil {
		return out, err
	}
	c.put(v[0], v[1])
	return wire.AppendNull(out), nil
}

func opDDel(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 2); err != nil {
		return out, err
	}
	key, err := c.args.Value(1)
	if err != nil {
		return out, err
	}
	pos := c.t.d.find(key)
	if pos < 0 {
		return out, errKeyNotFound(c.t.name, key)
	}
	c.del(pos)
	return wire.AppendNull(out), nil
}

func opDHas(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 2); err != nil {
		return out, err
	}
	key, err := c.args.Value(1)
	if err != nil {
		return out, err
	}
	return wire.AppendBool(out, c.t.d.find(key) >= 0), nil
}

func opDLen(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(1, 1); err != nil {
		return out, err
	}
	return wire.AppendUint(out, uint64(c.t.d.live)), nil
}

// dictList appends an array with one item per live entry, made by item.
func dictList(c call, out []byte, item func(out []byte, e *entry) []byte) ([]byte, error) {
	if err := c.args.Want(1, 1); err != nil {
		return out, err
	}
	d := c.t.d
	out = wire.AppendArrayHeader(out, d.live)
	for i := range d.entries {
		if e := &d.entries[i]; !e.dead() {
			out = item(out, e)
		}
	}
	return out, nil
}

func opDKeys(c call, out []byte) ([]byte, error) {
	return dictList(c, out, func(out []byte, e *entry) []byte { return append(out, e.key()...) })
}

func opDValues(c call, out []byte) ([]byte, error) {
	return dictList(c, out, func(out []byte, e *entry) []byte { return append(out, e.val()...) })
}

func opDItems(c call, out []byte) ([]byte, error) {
	return dictList(c, out, func(out []byte, e *entry) []byte { return append(append(out, 0x82), e.kv...) })
}

func opDToDict(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(1, 1); err != nil {
		return out, err
	}
	d := c.t.d
	out = wire.AppendMapHeader(out, d.live)
	for i := range d.entries {
		if e := &d.entries[i]; !e.dead() {
			out = append(out, e.kv...) // a map pair is key then value
		}
	}
	return out, nil
}

func opDPop(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 3); err != nil {
		return out, err
	}
	v, n, err := c.fixed(1, 3)
	if err != nil {
		return out, err
	}
	d := c.t.d
	if pos := d.find(v[0]); pos >= 0 {
		out = append(out, d.entries[pos].kv[len(v[0]):]...)
		c.del(pos)
		return out, nil
	}
	if n == 2 {
		return append(out, v[1]...), nil
	}
	return out, errKeyNotFound(c.t.name, v[0])
}

func opDPopItem(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(1, 1); err != nil {
		return out, err
	}
	pos := c.t.d.last()
	if pos < 0 {
		return out, wire.Errorf(wire.CodeKeyNotFound, "popitem(): dictionary is empty: dict table %q has no entries", c.t.name)
	}
	out = append(append(out, 0x82), c.t.d.entries[pos].kv...)
	c.del(pos)
	return out, nil
}

func opDSetDefault(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 3); err != nil {
		return out, err
	}
	v, n, err := c.fixed(1, 3)
	if err != nil {
		return out, err
	}
	d := c.t.d
	if pos := d.find(v[0]); pos >= 0 {
		return append(out, d.entries[pos].kv[len(v[0]):]...), nil
	}
	def := nullItem
	if n == 2 {
		def = v[1]
	}
	c.put(v[0], def)
	return append(out, def...), nil
}

// pairsArg returns the canonical pairs of argument i, a map or an array of
// [key, value] arrays, in the order given.
func pairsArg(a wire.Args, i int) ([][2][]byte, error) {
	if i >= a.Len() {
		return nil, errBadRequest("%s: argument %d must be a map or an array of [key, value] pairs", a.Op, i+1)
	}
	var pairs [][2][]byte
	err := wire.Pairs(a.Items[i], func(k, v wire.Raw) error {
		ck, err := wire.Canonical(k)
		if err != nil {
			return prefixed(err, "%s: key %d: ", a.Op, len(pairs)+1)
		}
		cv, err := wire.Canonical(v)
		if err != nil {
			return prefixed(err, "%s: value of key %s: ", a.Op, show(ck))
		}
		pairs = append(pairs, [2][]byte{ck, cv})
		return nil
	})
	if err != nil {
		return nil, prefixed(err, "%s: argument %d: ", a.Op, i+1)
	}
	return pairs, nil
}

func opDUpdate(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 2); err != nil {
		return out, err
	}
	pairs, err := pairsArg(c.args, 1)
	if err != nil {
		return out, err
	}
	for _, p := range pairs {
		c.put(p[0], p[1])
	}
	return wire.AppendNull(out), nil
}

func opDClear(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(1, 1); err != nil {
		return out, err
	}
	d := c.t.d
	old := *d
	// A fresh dict rather than a truncated one: the undo step keeps the
	// old slices intact. nextSeq goes on, so cursors never repeat.
	*d = dict{seed: old.seed, nextSeq: old.nextSeq}
	if c.undo != nil {
		c.undo.add(func() { *d = old })
	}
	return wire.AppendNull(out), nil
}

func opDCAS(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(3, 4); err != nil {
		return out, err
	}
	v, n, err := c.fixed(1, 4)
	if err != nil {
		return out, err
	}
	d := c.t.d
	pos := d.find(v[0])
	if n == 3 { // expected given (null is a value too)
		if pos < 0 || d.entries[pos].kv[len(v[0]):] != string(v[2]) {
			return wire.AppendBool(out, false), nil
		}
	} else if pos >= 0 {
		return wire.AppendBool(out, false), nil
	}
	c.put(v[0], v[1])
	return wire.AppendBool(out, true), nil
}

func opDScan(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(3, 3); err != nil {
		return out, err
	}
	cursor, err := c.args.Uint(1)
	if err != nil {
		return out, err
	}
	count, err := c.args.Int(2)
	if err != nil {
		return out, err
	}
	if count <= 0 {
		return out, errBadRequest("dscan: count must be at least 1 (at most %d are returned per call), got %d", maxScanCount, count)
	}
	count = min(count, maxScanCount)
	d := c.t.d
	var page []int
	pos := d.seek(cursor)
	for ; pos < len(d.entries); pos++ {
		if d.entries[pos].dead() {
			continue
		}
		if len(page) == int(count) {
			break
		}
		page = append(page, pos)
	}
	var next uint64 // 0: done
	if pos < len(d.entries) {
		next = d.entries[pos].seq // entries never ends with a tombstone
	}
	out = wire.AppendArrayHeader(wire.AppendUint(append(out, 0x82), next), len(page))
	for _, p := range page {
		out = append(append(out, 0x82), d.entries[p].kv...)
	}
	return out, nil
}
