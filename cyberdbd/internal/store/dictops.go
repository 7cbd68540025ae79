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

// lookup returns the position of key's entry, or -1 when it is absent or
// past its deadline; a write op that meets an expired entry removes it
// first (journaled), so that what it does next (insert the key anew, at
// the end) is what replay will do.
func (c call) lookup(key []byte) int {
	d := c.t.d
	pos := d.find(key)
	if pos < 0 || !d.expired(pos, c.now) {
		return pos
	}
	if c.write() {
		c.expireAt(pos)
	}
	return -1
}

// put sets key to val: an existing key keeps its place, a new one goes
// last. Its deadline is what w says (newDeadline): a plain write gives
// the table's default TTL or none, removing the one the entry had.
func (c call) put(key, val []byte, w when) {
	d := c.t.d
	if pos := c.lookup(key); pos >= 0 {
		old, oldDL := d.entries[pos].kv, d.deadline(pos)
		dl := c.newDeadline(w, pos)
		d.setVal(pos, val)
		d.setDeadline(pos, dl)
		c.touch(pos)
		c.written(key)
		if c.undo != nil {
			k := old[:len(key)]
			c.undo.add(func() {
				p := d.find([]byte(k))
				d.setKV(p, old)
				d.setDeadline(p, oldDL)
			})
		}
		return
	}
	seq := d.nextSeq
	pos := d.insert(key, val)
	d.setDeadline(pos, c.newDeadline(w, -1))
	c.touch(pos)
	c.written(key)
	if c.undo != nil {
		k := d.entries[pos].kv[:len(key)]
		c.undo.add(func() {
			d.removeAt(d.find([]byte(k)))
			d.nextSeq = seq
		})
	}
}

// setDeadlineUndo changes the deadline of the live entry at pos, for undo.
func (c call) setDeadlineUndo(pos int, dl int64) {
	d := c.t.d
	old := d.deadline(pos)
	d.setDeadline(pos, dl)
	if c.undo != nil {
		k := d.entries[pos].key()
		c.undo.add(func() { d.setDeadline(d.find([]byte(k)), old) })
	}
}

// del removes the live entry at pos.
func (c call) del(pos int) {
	d := c.t.d
	e, dl := d.entries[pos], d.deadline(pos)
	d.removeAt(pos)
	if c.undo != nil {
		c.undo.add(func() {
			d.restore(e.kv, e.seq)
			if dl != 0 {
				d.setDeadline(d.find([]byte(e.key())), dl)
			}
		})
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
	if pos := c.lookup(v[0]); pos >= 0 {
		c.touch(pos)
		return append(out, d.entries[pos].kv[len(v[0]):]...), nil
	}
	if n == 2 { // a default, even null, was given
		return append(out, v[1]...), nil
	}
	return out, errKeyNotFound(c.t.name, v[0])
}

// opDSet: [t, key, value, opts?]. opts: "ttl" or "at" (the entry's
// deadline), "keepttl" (keep the one it has), "nx" (only if absent) or
// "xx" (only if present); with nx or xx the result says whether it set.
func opDSet(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(3, 4); err != nil {
		return out, err
	}
	v, _, err := c.fixed(1, 3)
	if err != nil {
		return out, err
	}
	var w when
	if c.args.Has(3) {
		if w, err = c.parseWhen(3, wTTL|wAt|wKeepTTL|wNX|wXX, 1); err != nil {
			return out, err
		}
	}
	if w.nx || w.xx {
		if present := c.lookup(v[0]) >= 0; present != w.xx {
			return wire.AppendBool(out, false), nil
		}
		c.put(v[0], v[1], w)
		return wire.AppendBool(out, true), nil
	}
	c.put(v[0], v[1], w)
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
	pos := c.lookup(key)
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
	pos := c.lookup(key)
	if pos >= 0 {
		c.touch(pos)
	}
	return wire.AppendBool(out, pos >= 0), nil
}

func opDLen(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(1, 1); err != nil {
		return out, err
	}
	return wire.AppendUint(out, uint64(c.t.d.liveAt(c.now))), nil
}

// dictList appends an array with one item per live entry, made by item.
func dictList(c call, out []byte, item func(out []byte, e *entry) []byte) ([]byte, error) {
	if err := c.args.Want(1, 1); err != nil {
		return out, err
	}
	d := c.t.d
	out = wire.AppendArrayHeader(out, d.liveAt(c.now))
	for i := range d.entries {
		if e := &d.entries[i]; !e.dead() && !d.expired(i, c.now) {
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
	out = wire.AppendMapHeader(out, d.liveAt(c.now))
	for i := range d.entries {
		if e := &d.entries[i]; !e.dead() && !d.expired(i, c.now) {
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
	if pos := c.lookup(v[0]); pos >= 0 {
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
	for pos >= 0 && c.t.d.expired(pos, c.now) {
		c.expireAt(pos) // the entry before it is now the last
		pos = c.t.d.last()
	}
	if pos < 0 {
		return out, wire.Errorf(wire.CodeKeyNotFound, "popitem(): dictionary is empty: dict table %q has no entries", c.t.name)
	}
	out = append(append(out, 0x82), c.t.d.entries[pos].kv...)
	c.del(pos)
	return out, nil
}

// opDSetDefault: [t, key, default?, opts?]; opts ("ttl" or "at") give
// the entry it inserts its deadline; an entry that is there keeps its own.
func opDSetDefault(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 4); err != nil {
		return out, err
	}
	v, n, err := c.fixed(1, 3)
	if err != nil {
		return out, err
	}
	var w when
	if c.args.Has(3) {
		if w, err = c.parseWhen(3, wTTL|wAt, 1); err != nil {
			return out, err
		}
	}
	d := c.t.d
	if pos := c.lookup(v[0]); pos >= 0 {
		c.touch(pos)
		return append(out, d.entries[pos].kv[len(v[0]):]...), nil
	}
	def := nullItem
	if n == 2 {
		def = v[1]
	}
	c.put(v[0], def, w)
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

// opDUpdate: [t, pairs, opts?]; opts ("ttl", "at" or "keepttl") apply to
// every pair, as dset's.
func opDUpdate(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 3); err != nil {
		return out, err
	}
	pairs, err := pairsArg(c.args, 1)
	if err != nil {
		return out, err
	}
	var w when
	if c.args.Has(2) {
		if w, err = c.parseWhen(2, wTTL|wAt|wKeepTTL, 1); err != nil {
			return out, err
		}
	}
	for _, p := range pairs {
		c.put(p[0], p[1], w)
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
	*d = old.emptied()
	if c.undo != nil {
		c.undo.add(func() { *d = old })
	}
	return wire.AppendNull(out), nil
}

// opDCAS: [t, key, new, expected?, opts?]; opts ("ttl", "at" or
// "keepttl", which needs expected given) say the deadline of what it
// stores, as dset's.
func opDCAS(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(3, 5); err != nil {
		return out, err
	}
	v, n, err := c.fixed(1, 4)
	if err != nil {
		return out, err
	}
	var w when
	if c.args.Has(4) {
		if w, err = c.parseWhen(4, wTTL|wAt|wKeepTTL, 1); err != nil {
			return out, err
		}
	}
	d := c.t.d
	pos := c.lookup(v[0])
	if n == 3 { // expected given (null is a value too)
		if pos < 0 || d.entries[pos].kv[len(v[0]):] != string(v[2]) {
			return wire.AppendBool(out, false), nil
		}
	} else if pos >= 0 {
		return wire.AppendBool(out, false), nil
	}
	c.put(v[0], v[1], w)
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
		if d.entries[pos].dead() || d.expired(pos, c.now) {
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

// Expiry ops (expiry.go has the rules).

// opDExpire: [t, key, when] -> bool; when is {"ttl": ms} (0 or less:
// expired at once, as Redis's EXPIRE) or {"at": unix-ms}.
func opDExpire(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(3, 3); err != nil {
		return out, err
	}
	key, err := c.args.Value(1)
	if err != nil {
		return out, err
	}
	w, err := c.parseWhen(2, wTTL|wAt, -maxTTL)
	if err != nil {
		return out, err
	}
	pos := c.lookup(key)
	if pos < 0 {
		return wire.AppendBool(out, false), nil
	}
	c.setDeadlineUndo(pos, w.at)
	return wire.AppendBool(out, true), nil
}

// opDPersist: [t, key] -> bool: whether a deadline was removed.
func opDPersist(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 2); err != nil {
		return out, err
	}
	key, err := c.args.Value(1)
	if err != nil {
		return out, err
	}
	pos := c.lookup(key)
	if pos < 0 || c.t.d.deadline(pos) == 0 {
		return wire.AppendBool(out, false), nil
	}
	c.setDeadlineUndo(pos, 0)
	return wire.AppendBool(out, true), nil
}

// opDTTL: [t, key, absolute?] -> milliseconds left (the deadline in unix
// milliseconds if absolute), null for no deadline; KeyError if absent.
func opDTTL(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 3); err != nil {
		return out, err
	}
	key, err := c.args.Value(1)
	if err != nil {
		return out, err
	}
	abs, err := c.args.Bool(2)
	if err != nil {
		return out, err
	}
	pos := c.lookup(key)
	if pos < 0 {
		return out, errKeyNotFound(c.t.name, key)
	}
	return remaining(out, c.t.d.deadline(pos), c.now, abs), nil
}

// opDGetEx: [t, key, when] -> the value, whose deadline becomes when's:
// {"ttl": ms}, {"at": unix-ms} or {"persist": true}; KeyError if absent.
func opDGetEx(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(3, 3); err != nil {
		return out, err
	}
	key, err := c.args.Value(1)
	if err != nil {
		return out, err
	}
	w, err := c.parseWhen(2, wTTL|wAt|wPersist, 1)
	if err != nil {
		return out, err
	}
	pos := c.lookup(key)
	if pos < 0 {
		return out, errKeyNotFound(c.t.name, key)
	}
	c.setDeadlineUndo(pos, w.at) // persist: w.at is 0
	c.touch(pos)
	return append(out, c.t.d.entries[pos].kv[len(key):]...), nil
}

// opDDelIfEq: [t, key, value] -> bool: deleted, because it held value.
func opDDelIfEq(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(3, 3); err != nil {
		return out, err
	}
	v, _, err := c.fixed(1, 3)
	if err != nil {
		return out, err
	}
	pos := c.lookup(v[0])
	if pos < 0 || c.t.d.entries[pos].kv[len(v[0]):] != string(v[1]) {
		return wire.AppendBool(out, false), nil
	}
	c.del(pos)
	return wire.AppendBool(out, true), nil
}

// opExpire: [t, when] -> null: the deadline of a whole table, dict or
// list: {"ttl": ms} (0 or less: dropped at once), {"at": unix-ms} or
// {"persist": true} (none).
func opExpire(c call, out []byte) ([]byte, error) {
	t := c.t
	if t.kind == kindNone {
		return out, errNoSuchTable(t.name)
	}
	if err := c.args.Want(2, 2); err != nil {
		return out, err
	}
	w, err := c.parseWhen(1, wTTL|wAt|wPersist, -maxTTL)
	if err != nil {
		return out, err
	}
	old := t.expires
	t.expires = w.at
	if c.undo != nil {
		c.undo.add(func() { t.expires = old })
	}
	return wire.AppendNull(out), nil
}

// opTTL: [t, absolute?] -> the table's milliseconds left (its deadline if
// absolute), null for none.
func opTTL(c call, out []byte) ([]byte, error) {
	if c.t.kind == kindNone {
		return out, errNoSuchTable(c.t.name)
	}
	if err := c.args.Want(1, 2); err != nil {
		return out, err
	}
	abs, err := c.args.Bool(1)
	if err != nil {
		return out, err
	}
	return remaining(out, c.t.expires, c.now, abs), nil
}
