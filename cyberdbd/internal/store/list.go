package store

import (
	"slices"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// list is the representation of a list table: the canonical CBOR of each
// element, in order, in a slice with free room at both ends, so that it is
// a deque: append and pop at either end are O(1) (amortized), and an
// insert or delete near either end moves only the elements on that side.
//
// items is the list. buf, when it is not nil and still backs items, is
// the whole array, with off free (zeroed) slots before items[0]: room to
// prepend into. Code that appends to items directly may make Go move it to
// a new array; anchor notices (the capacities no longer add up) and starts
// again from items, so only the ops that use the front room need to know
// about buf.
type list struct {
	items []string
	buf   []string
	off   int
	bytes int64 // len summed over items
}

func newList(items []string) *list {
	l := &list{items: items}
	for _, s := range items {
		l.bytes += int64(len(s))
	}
	return l
}

// anchor makes buf and off describe items' array again and returns the
// free room before items[0].
func (l *list) anchor() int {
	if l.buf == nil || cap(l.buf) != l.off+cap(l.items) {
		l.buf, l.off = l.items[:cap(l.items)], 0 // whole length: pushFront indexes it
	}
	return l.off
}

// reserve makes room for front more elements before items[0] and back
// more after the last, moving the elements to a new array when either is
// short. The new array keeps at most about len(items) free slots at each
// end, so memory stays within a few times the content, and growth is
// geometric, so a run of pushes at either end costs O(1) each.
func (l *list) reserve(front, back int) {
	n := len(l.items)
	f, b := l.anchor(), cap(l.items)-n
	if f >= front && b >= back {
		return
	}
	nf, nb := min(f, max(n, 4)), min(b, max(n, 4))
	if f < front {
		nf = max(front, n, 4)
	}
	if b < back {
		nb = max(back, n, 4)
	}
	buf := make([]string, nf+n+nb)
	copy(buf[nf:], l.items)
	l.buf, l.off, l.items = buf, nf, buf[nf:nf+n]
}

func (l *list) pushFront(v string) {
	l.reserve(1, 0)
	l.off--
	l.buf[l.off] = v
	l.items = l.buf[l.off : l.off+len(l.items)+1]
	l.bytes += int64(len(v))
}

func (l *list) popFront() string {
	l.anchor()
	v := l.items[0]
	l.items[0] = ""
	l.items = l.items[1:]
	l.off++
	l.bytes -= int64(len(v))
	return v
}

func (l *list) pushBack(v string) {
	l.reserve(0, 1)
	l.items = append(l.items, v)
	l.bytes += int64(len(v))
}

func (l *list) popBack() string {
	n := len(l.items) - 1
	v := l.items[n]
	l.items[n] = ""
	l.items = l.items[:n]
	l.bytes -= int64(len(v))
	return v
}

// insertAt inserts v before element i, moving the shorter side.
func (l *list) insertAt(i int, v string) {
	n := len(l.items)
	if i < n/2 {
		l.reserve(1, 0)
		l.off--
		l.items = l.buf[l.off : l.off+n+1]
		copy(l.items[:i], l.items[1:i+1])
	} else {
		l.reserve(0, 1)
		l.items = l.items[:n+1]
		copy(l.items[i+1:], l.items[i:n])
	}
	l.items[i] = v
	l.bytes += int64(len(v))
}

// deleteAt removes element i, moving the shorter side; the vacated slot
// is cleared.
func (l *list) deleteAt(i int) string {
	v := l.items[i]
	if i < len(l.items)/2 {
		l.anchor()
		copy(l.items[1:i+1], l.items[:i])
		l.items[0] = ""
		l.items = l.items[1:]
		l.off++
	} else {
		l.items = slices.Delete(l.items, i, i+1) // clears the vacated slot
	}
	l.bytes -= int64(len(v))
	return v
}

// rotate moves the last k elements to the front (k > 0) or the first -k
// to the back, like collections.deque.rotate: O(min(|k|, len)).
func (l *list) rotate(k int) {
	n := len(l.items)
	if n == 0 {
		return
	}
	k %= n
	if k < 0 {
		k += n
	}
	if k == 0 {
		return
	}
	if k <= n/2 { // the last k to the front
		l.reserve(k, 0)
		copy(l.buf[l.off-k:l.off], l.items[n-k:])
		clear(l.items[n-k:])
		l.off -= k
		l.items = l.buf[l.off : l.off+n]
		return
	}
	j := n - k // the first j to the back
	l.reserve(0, j)
	all := l.items[:n+j]
	copy(all[n:], all[:j])
	clear(all[:j])
	l.items = all[j:]
	l.off += j
}

func (l *list) truncate(n int) {
	for _, v := range l.items[n:] {
		l.bytes -= int64(len(v))
	}
	clear(l.items[n:])
	l.items = l.items[:n]
}

// clone returns a copy sharing the immutable strings (see dict.clone).
func (l *list) clone() *list { return &list{items: slices.Clone(l.items), bytes: l.bytes} }

// List operations. As for dicts, every handler validates its arguments
// before it changes anything and records its change in c.undo.

func (c call) listIndex(i int, what string) (int, error) {
	raw, err := c.args.Int(i)
	if err != nil {
		return 0, err
	}
	n := len(c.t.l.items)
	idx, ok := itemIndex(raw, n)
	if !ok {
		return 0, wire.Errorf(wire.CodeIndexOutOfRange, "%s: index %d, list table %q has %d element(s)", what, raw, c.t.name, n)
	}
	return idx, nil
}

// removeAt deletes element i, recording the undo step.
func (c call) removeAt(i int) string {
	l := c.t.l
	v := l.deleteAt(i)
	if c.undo != nil {
		c.undo.add(func() { l.insertAt(i, v) })
	}
	return v
}

// appendValues appends vs, recording the undo step.
func (c call) appendValues(vs [][]byte) {
	l := c.t.l
	n0 := len(l.items)
	l.reserve(0, len(vs))
	for _, v := range vs {
		l.items = append(l.items, string(v))
		l.bytes += int64(len(v))
	}
	if c.undo != nil {
		c.undo.add(func() { l.truncate(n0) })
	}
}

// replaceItems makes items the list's content. With an undo log the old
// slice is kept whole for the undo step, so items must not share it.
func (c call) replaceItems(items []string) {
	l := c.t.l
	old := *l
	*l = *newList(items)
	if c.undo != nil {
		c.undo.add(func() { *l = old })
	}
}

func opLGet(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 2); err != nil {
		return out, err
	}
	i, err := c.listIndex(1, "list index out of range")
	if err != nil {
		return out, err
	}
	return append(out, c.t.l.items[i]...), nil
}

func opLSet(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(3, 3); err != nil {
		return out, err
	}
	v, err := c.args.Value(2)
	if err != nil {
		return out, err
	}
	i, err := c.listIndex(1, "list assignment index out of range")
	if err != nil {
		return out, err
	}
	l := c.t.l
	old := l.items[i]
	l.items[i] = string(v)
	l.bytes += int64(len(v) - len(old))
	if c.undo != nil {
		c.undo.add(func() {
			l.bytes += int64(len(old) - len(l.items[i]))
			l.items[i] = old
		})
	}
	return wire.AppendNull(out), nil
}

func opLDel(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 2); err != nil {
		return out, err
	}
	i, err := c.listIndex(1, "list assignment index out of range")
	if err != nil {
		return out, err
	}
	c.removeAt(i)
	return wire.AppendNull(out), nil
}

func opLSlice(c call, out []byte) ([]byte, error) {
	items := c.t.l.items
	s, err := sliceArgs(c.args, len(items))
	if err != nil {
		return out, err
	}
	out = wire.AppendArrayHeader(out, s.n)
	for k := 0; k < s.n; k++ {
		out = append(out, items[s.index(k)]...)
	}
	return out, nil
}

func opLDelSlice(c call, out []byte) ([]byte, error) {
	l := c.t.l
	s, err := sliceArgs(c.args, len(l.items))
	if err != nil {
		return out, err
	}
	if s.n == 0 {
		return wire.AppendNull(out), nil
	}
	// Mark the doomed indices, then keep the others in order.
	lo, hi := s.index(0), s.index(s.n-1)
	if lo > hi {
		lo, hi = hi, lo
	}
	step := s.step
	if step < 0 {
		step = -step
	}
	doomed := func(i int) bool { return i >= lo && i <= hi && int64(i-lo)%step == 0 }
	var kept []string
	if c.undo != nil {
		kept = make([]string, 0, len(l.items)-s.n)
	} else {
		kept = l.items[:0] // in place: only ever writes behind the read position
	}
	for i, v := range l.items {
		if !doomed(i) {
			kept = append(kept, v)
		}
	}
	if c.undo == nil {
		clear(l.items[len(kept):])
	}
	c.replaceItems(kept)
	return wire.AppendNull(out), nil
}

// opLSetSlice is Python's l[start:stop:step] = values. With step None or
// 1 it is list_ass_slice: l[lo:hi] is replaced, whatever the sizes, where
// hi is never below lo (l[5:2] = v inserts at 5). With any other step it
// is an extended slice: each selected element is replaced in turn, and
// the sizes must match (Python's ValueError, with its message).
func opLSetSlice(c call, out []byte) ([]byte, error) {
	a := c.args
	if err := a.Want(5, 5); err != nil {
		return out, err
	}
	b, err := readBounds(a)
	if err != nil {
		return out, err
	}
	if b.hasStep && b.step == 0 { // before the values' type, as Python
		return out, errBadRequest("slice step cannot be zero")
	}
	vs, err := arrayArg(a, 4)
	if err != nil {
		return out, err
	}
	l := c.t.l
	s, err := b.resolve(len(l.items))
	if err != nil {
		return out, err
	}
	if s.step != 1 {
		if len(vs) != s.n {
			return out, errBadRequest("attempt to assign sequence of size %d to extended slice of size %d", len(vs), s.n)
		}
		c.assignEach(s, vs)
		return wire.AppendNull(out), nil
	}
	lo := int(s.start)
	c.replaceRange(lo, lo+s.n, vs)
	return wire.AppendNull(out), nil
}

// replaceRange replaces items[lo:hi] with vs, recording the undo step.
func (c call) replaceRange(lo, hi int, vs [][]byte) {
	l := c.t.l
	if hi == lo && len(vs) == 0 {
		return
	}
	strs := make([]string, len(vs))
	delta := int64(0)
	for i, v := range vs {
		strs[i] = string(v)
		delta += int64(len(v))
	}
	for _, v := range l.items[lo:hi] {
		delta -= int64(len(v))
	}
	if c.undo == nil {
		l.items = slices.Replace(l.items, lo, hi, strs...)
		l.bytes += delta
		return
	}
	// The undo step keeps the old slice whole: build a new one.
	old := *l
	items := make([]string, 0, len(l.items)-(hi-lo)+len(strs))
	items = append(append(append(items, l.items[:lo]...), strs...), l.items[hi:]...)
	*l = list{items: items, bytes: old.bytes + delta}
	c.undo.add(func() { *l = old })
}

// assignEach sets the n elements of the extended slice s to vs, in
// order, recording the undo step.
func (c call) assignEach(s sliceSpec, vs [][]byte) {
	if s.n == 0 {
		return
	}
	l := c.t.l
	var old []string
	if c.undo != nil {
		old = make([]string, s.n)
	}
	for k, v := range vs {
		i := s.index(k)
		if old != nil {
			old[k] = l.items[i]
		}
		l.bytes += int64(len(v) - len(l.items[i]))
		l.items[i] = string(v)
	}
	if c.undo != nil {
		c.undo.add(func() {
			for k, v := range old {
				i := s.index(k)
				l.bytes += int64(len(v) - len(l.items[i]))
				l.items[i] = v
			}
		})
	}
}

// opLContains is Python's value in l: canonical equality, stopping at the
// first match.
func opLContains(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 2); err != nil {
		return out, err
	}
	v, err := c.args.Value(1)
	if err != nil {
		return out, err
	}
	return wire.AppendBool(out, slices.Contains(c.t.l.items, string(v))), nil
}

func opLAppend(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, -1); err != nil {
		return out, err
	}
	vs, err := c.values(1, c.args.Len())
	if err != nil {
		return out, err
	}
	c.appendValues(vs)
	return wire.AppendUint(out, uint64(len(c.t.l.items))), nil
}

// arrayArg returns the canonical items of argument i, an array.
func arrayArg(a wire.Args, i int) ([][]byte, error) {
	if i >= a.Len() || len(a.Items[i]) == 0 || a.Items[i][0]>>5 != 4 {
		return nil, errBadRequest("%s: argument %d must be an array of values", a.Op, i+1)
	}
	items, err := wire.SplitArray(a.Items[i])
	if err != nil {
		return nil, prefixed(err, "%s: argument %d: ", a.Op, i+1)
	}
	vs := make([][]byte, len(items))
	for k, it := range items {
		if vs[k], err = wire.Canonical(it); err != nil {
			return nil, prefixed(err, "%s: argument %d, element %d: ", a.Op, i+1, k)
		}
	}
	return vs, nil
}

func opLExtend(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 2); err != nil {
		return out, err
	}
	vs, err := arrayArg(c.args, 1)
	if err != nil {
		return out, err
	}
	c.appendValues(vs)
	return wire.AppendUint(out, uint64(len(c.t.l.items))), nil
}

func opLInsert(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(3, 3); err != nil {
		return out, err
	}
	raw, err := c.args.Int(1)
	if err != nil {
		return out, err
	}
	v, err := c.args.Value(2)
	if err != nil {
		return out, err
	}
	l := c.t.l
	i := clampBound(raw, len(l.items))
	l.insertAt(i, string(v))
	if c.undo != nil {
		c.undo.add(func() { l.deleteAt(i) })
	}
	return wire.AppendNull(out), nil
}

func opLPop(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(1, 2); err != nil {
		return out, err
	}
	raw, has, err := c.args.OptInt(1)
	if err != nil {
		return out, err
	}
	n := len(c.t.l.items)
	if n == 0 {
		return out, wire.Errorf(wire.CodeIndexOutOfRange, "pop from empty list: list table %q is empty", c.t.name)
	}
	i := n - 1
	if has {
		var ok bool
		if i, ok = itemIndex(raw, n); !ok {
			return out, wire.Errorf(wire.CodeIndexOutOfRange, "pop index out of range: index %d, list table %q has %d element(s)", raw, c.t.name, n)
		}
	}
	return append(out, c.removeAt(i)...), nil
}

func opLRemove(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 2); err != nil {
		return out, err
	}
	v, err := c.args.Value(1)
	if err != nil {
		return out, err
	}
	i := slices.Index(c.t.l.items, string(v))
	if i < 0 {
		return out, wire.Errorf(wire.CodeValueNotFound, "list.remove(x): x not in list: %s is not in list table %q", show(v), c.t.name)
	}
	c.removeAt(i)
	return wire.AppendNull(out), nil
}

func opLCount(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 2); err != nil {
		return out, err
	}
	v, err := c.args.Value(1)
	if err != nil {
		return out, err
	}
	n := 0
	for _, it := range c.t.l.items {
		if it == string(v) {
			n++
		}
	}
	return wire.AppendUint(out, uint64(n)), nil
}

func opLIndex(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 4); err != nil {
		return out, err
	}
	v, err := c.args.Value(1)
	if err != nil {
		return out, err
	}
	items := c.t.l.items
	start, stop := 0, len(items)
	if raw, has, err := c.args.OptInt(2); err != nil {
		return out, err
	} else if has {
		start = clampBound(raw, len(items))
	}
	if raw, has, err := c.args.OptInt(3); err != nil {
		return out, err
	} else if has {
		stop = clampBound(raw, len(items))
	}
	for i := start; i < stop; i++ {
		if items[i] == string(v) {
			return wire.AppendUint(out, uint64(i)), nil
		}
	}
	return out, wire.Errorf(wire.CodeValueNotFound, "%s is not in list table %q (searched indices %d to %d)", show(v), c.t.name, start, stop)
}

func opLReverse(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(1, 1); err != nil {
		return out, err
	}
	l := c.t.l
	slices.Reverse(l.items)
	if c.undo != nil {
		c.undo.add(func() { slices.Reverse(l.items) })
	}
	return wire.AppendNull(out), nil
}

func opLClear(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(1, 1); err != nil {
		return out, err
	}
	c.replaceItems(nil)
	return wire.AppendNull(out), nil
}

func opLToList(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(1, 1); err != nil {
		return out, err
	}
	out = wire.AppendArrayHeader(out, len(c.t.l.items))
	for _, v := range c.t.l.items {
		out = append(out, v...)
	}
	return out, nil
}

func opLLen(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(1, 1); err != nil {
		return out, err
	}
	return wire.AppendUint(out, uint64(len(c.t.l.items))), nil
}

func opLRange(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(3, 3); err != nil {
		return out, err
	}
	start, err := c.args.Int(1)
	if err != nil {
		return out, err
	}
	count, err := c.args.Int(2)
	if err != nil {
		return out, err
	}
	if start < 0 || count < 0 {
		return out, errBadRequest("lrange: start and count must not be negative, got start %d, count %d", start, count)
	}
	items := c.t.l.items
	lo := int(min(start, int64(len(items))))
	hi := lo + int(min(count, int64(len(items)-lo)))
	out = wire.AppendArrayHeader(out, hi-lo)
	for _, v := range items[lo:hi] {
		out = append(out, v...)
	}
	return out, nil
}
