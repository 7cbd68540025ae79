package store

import (
	"math"
	"math/big"
	"slices"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// lsort follows Python's list.sort, which compares with < only:
//
//   - Numbers compare by value across integers, bignums and floats, exactly
//     (2^63+1 > 2^63 as a float, though float(2^63+1) == 2^63). false and
//     true sort as 0 and 1, as Python's bool is an int.
//   - Text compares by code point (the same as UTF-8 byte order), bytes
//     bytewise; arrays lexicographically, element by element, as Python
//     lists (elements are first tested with ==, which never fails).
//   - Any other pair (text with a number, null with null, maps, tags other
//     than bignums) has no order: the sort fails with a type error and
//     leaves the list as it was. As in Python, only pairs the algorithm
//     actually compares matter: a one-element list of null sorts fine.
//   - NaN is neither less nor greater than anything, as in Python, so a
//     list holding NaN comes out in an order that depends on the algorithm.
//     For fewer than 64 elements the algorithm is CPython's (a run count
//     plus binary insertion), so the order is CPython's too; longer lists
//     are merged differently and may place NaN elsewhere than CPython does.
//   - The sort is stable, and reverse=true is Python's: the list is
//     reversed, sorted stably, and reversed again, so equal elements keep
//     their original order rather than being reversed.

type keyKind uint8

const (
	kInt   keyKind = iota // n holds an int64
	kFloat                // n holds float64 bits
	kBig                  // ext.big
	kText                 // s
	kBytes                // s
	kArray                // ext.arr
	kOther                // s holds the raw item: incomparable
)

// sortKey is a decoded value, as much as ordering needs.
type sortKey struct {
	s    string
	ext  *keyExt
	n    uint64
	kind keyKind
}

type keyExt struct {
	big *big.Int
	arr []sortKey
}

// decodeKey decodes the canonical item s.
func decodeKey(s string) sortKey {
	major, arg, next, ok := wire.ReadHead(s)
	if !ok {
		return sortKey{kind: kOther, s: s}
	}
	switch major {
	case 0, 1:
		if arg <= math.MaxInt64 {
			v := int64(arg)
			if major == 1 {
				v = -1 - v
			}
			return sortKey{kind: kInt, n: uint64(v)}
		}
		b := new(big.Int).SetUint64(arg)
		if major == 1 {
			b.Neg(b).Sub(b, big.NewInt(1))
		}
		return sortKey{kind: kBig, ext: &keyExt{big: b}}
	case 2:
		return sortKey{kind: kBytes, s: s[next:]}
	case 3:
		return sortKey{kind: kText, s: s[next:]}
	case 4:
		arr := make([]sortKey, 0, min(arg, 1024))
		for i := uint64(0); i < arg; i++ {
			n := wire.ItemLen(s[next:])
			if n < 0 {
				return sortKey{kind: kOther, s: s}
			}
			arr = append(arr, decodeKey(s[next:next+n]))
			next += n
		}
		return sortKey{kind: kArray, ext: &keyExt{arr: arr}}
	case 6:
		if arg == 2 || arg == 3 {
			if m, _, n, ok := wire.ReadHead(s[next:]); ok && m == 2 {
				b := new(big.Int).SetBytes([]byte(s[next+n:]))
				if arg == 3 {
					b.Neg(b).Sub(b, big.NewInt(1))
				}
				return sortKey{kind: kBig, ext: &keyExt{big: b}}
			}
		}
	case 7:
		switch s {
		case "\xf4":
			return sortKey{kind: kInt, n: 0}
		case "\xf5":
			return sortKey{kind: kInt, n: 1}
		}
		if f, ok := wire.ItemFloat(s); ok {
			return sortKey{kind: kFloat, n: math.Float64bits(f)}
		}
	}
	return sortKey{kind: kOther, s: s}
}

func (k *sortKey) isNumber() bool { return k.kind <= kBig }

// kindName names k's kind in error messages.
func (k *sortKey) kindName() string {
	switch k.kind {
	case kInt, kBig:
		return "integer"
	case kFloat:
		return "float"
	case kText:
		return "text"
	case kBytes:
		return "bytes"
	case kArray:
		return "array"
	}
	switch {
	case k.s == "\xf6":
		return "null"
	case k.s == "\xf7":
		return "undefined"
	case len(k.s) > 0 && k.s[0]>>5 == 5:
		return "map"
	case len(k.s) > 0 && k.s[0]>>5 == 6:
		return "tagged value"
	}
	return "simple value"
}

func (k *sortKey) bigInt() *big.Int {
	if k.kind == kBig {
		return k.ext.big
	}
	return big.NewInt(int64(k.n))
}

// cmpNumbers compares two numbers exactly; ordered is false when either is NaN.
func cmpNumbers(a, b *sortKey) (c int, ordered bool) {
	switch {
	case a.kind == kInt && b.kind == kInt:
		x, y := int64(a.n), int64(b.n)
		return cmpOrdered(x, y), true
	case a.kind == kFloat && b.kind == kFloat:
		x, y := math.Float64frombits(a.n), math.Float64frombits(b.n)
		if math.IsNaN(x) || math.IsNaN(y) {
			return 0, false
		}
		return cmpOrdered(x, y), true
	case a.kind == kFloat:
		c, ok := cmpNumbers(b, a)
		return -c, ok
	case b.kind == kFloat: // a is an integer
		f := math.Float64frombits(b.n)
		switch {
		case math.IsNaN(f):
			return 0, false
		case math.IsInf(f, 1):
			return -1, true
		case math.IsInf(f, -1):
			return 1, true
		}
		if a.kind == kInt && int64(a.n) > -1<<53 && int64(a.n) < 1<<53 {
			return cmpOrdered(float64(int64(a.n)), f), true // exact
		}
		x := new(big.Float).SetInt(a.bigInt()) // exact: precision grows to fit
		return x.Cmp(new(big.Float).SetFloat64(f)), true
	}
	return a.bigInt().Cmp(b.bigInt()), true
}

func cmpOrdered[T int64 | float64](x, y T) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// equal is Python's ==, which never fails: values of unrelated kinds are
// simply unequal.
func equal(a, b *sortKey) bool {
	if a.isNumber() && b.isNumber() {
		c, ok := cmpNumbers(a, b)
		return ok && c == 0
	}
	if a.kind != b.kind {
		return false
	}
	if a.kind == kArray {
		x, y := a.ext.arr, b.ext.arr
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(&x[i], &y[i]) {
				return false
			}
		}
		return true
	}
	return a.s == b.s // text, bytes, or the raw bytes of anything else
}

// less is Python's a < b; it fails for kinds that have no order.
func less(a, b *sortKey) (bool, error) {
	switch {
	case a.kind == kInt && b.kind == kInt: // the common cases first
		return int64(a.n) < int64(b.n), nil
	case a.kind == kText && b.kind == kText:
		return a.s < b.s, nil
	}
	if a.isNumber() && b.isNumber() {
		c, ok := cmpNumbers(a, b)
		return ok && c < 0, nil
	}
	if a.kind == b.kind {
		switch a.kind {
		case kText, kBytes:
			return a.s < b.s, nil
		case kArray:
			x, y := a.ext.arr, b.ext.arr
			for i := 0; i < len(x) && i < len(y); i++ {
				if !equal(&x[i], &y[i]) {
					return less(&x[i], &y[i])
				}
			}
			return len(x) < len(y), nil
		}
	}
	return false, wire.Errorf(wire.CodeTypeError, "'<' is not supported between %s and %s", a.kindName(), b.kindName())
}

// reverseArg reads lsort's reverse as Python's list.sort(reverse=...)
// does: a bool, or an integer (any nonzero one is true) that fits a C int;
// a bigger integer is Python's OverflowError, any other type its
// TypeError. Absent or null is false (PROTOCOL.md: null is left out).
func reverseArg(a wire.Args, i int) (bool, error) {
	if !a.Has(i) {
		return false, nil
	}
	raw := a.Items[i]
	switch raw[0] {
	case 0xf4:
		return false, nil
	case 0xf5:
		return true, nil
	}
	if major := raw[0] >> 5; major <= 1 || raw[0] == 0xc2 || raw[0] == 0xc3 {
		if n, ok := wire.DecodeNumber(raw); ok && !n.IsFloat {
			if !n.Int.IsInt64() || n.Int.Int64() < math.MinInt32 || n.Int.Int64() > math.MaxInt32 {
				return false, wire.Errorf(wire.CodeOverflow, "%s: reverse: Python int too large to convert to C int", a.Op)
			}
			return n.Int.Sign() != 0, nil
		}
	}
	return false, errBadRequest("%s: argument %d (reverse) must be a boolean or an integer, got %s", a.Op, i+1, wire.TypeName(raw))
}

// sortItem is one element being sorted: its key and its stored encoding.
type sortItem struct {
	key sortKey
	val string
}

// testHookSort, when set, runs while lsort holds its table's lock, after
// the keys are decoded and before they are sorted.
var testHookSort func()

func opLSort(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(1, 2); err != nil {
		return out, err
	}
	reverse, err := reverseArg(c.args, 1)
	if err != nil {
		return out, err
	}
	l := c.t.l
	items := make([]sortItem, len(l.items))
	for i, v := range l.items {
		items[i] = sortItem{key: decodeKey(v), val: v}
	}
	if testHookSort != nil {
		testHookSort()
	}
	var failed error
	lt := func(a, b *sortItem) bool {
		if failed != nil {
			return false
		}
		r, err := less(&a.key, &b.key)
		if err != nil {
			failed = err
		}
		return r
	}
	if reverse {
		slices.Reverse(items)
	}
	stableSort(items, lt)
	if failed != nil {
		return out, prefixed(failed, "lsort of list table %q: ", c.t.name)
	}
	if reverse {
		slices.Reverse(items)
	}
	sorted := l.items
	if c.undo != nil {
		sorted = make([]string, len(items)) // keep the old order for the undo step
	}
	for i := range items {
		sorted[i] = items[i].val
	}
	if c.undo != nil {
		c.replaceItems(sorted)
	}
	return wire.AppendNull(out), nil
}

// stableSort sorts xs stably using lt alone. Lists shorter than 64 are
// sorted exactly as CPython's listsort does; longer ones in runs of 32
// sorted that way, then merged bottom-up.
func stableSort(xs []sortItem, lt func(a, b *sortItem) bool) {
	const run = 32
	n := len(xs)
	if n < 64 {
		sortRun(xs, lt)
		return
	}
	for lo := 0; lo < n; lo += run {
		sortRun(xs[lo:min(lo+run, n)], lt)
	}
	buf := make([]sortItem, n) // a left half is shorter than n
	for width := run; width < n; width *= 2 {
		for lo := 0; lo+width < n; lo += 2 * width {
			merge(xs[lo:min(lo+2*width, n)], width, buf, lt)
		}
	}
}

// sortRun is CPython's treatment of a short list: count the natural run at
// the start (reversing it if strictly descending), then binary-insert the
// remaining elements.
func sortRun(xs []sortItem, lt func(a, b *sortItem) bool) {
	n := len(xs)
	if n < 2 {
		return
	}
	k := 2
	if lt(&xs[1], &xs[0]) {
		for k < n && lt(&xs[k], &xs[k-1]) {
			k++
		}
		slices.Reverse(xs[:k])
	} else {
		for k < n && !lt(&xs[k], &xs[k-1]) {
			k++
		}
	}
	for i := k; i < n; i++ {
		lo, hi := 0, i
		for lo < hi { // the pivot stays at xs[i] while we search
			mid := lo + (hi-lo)>>1
			if lt(&xs[i], &xs[mid]) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		pivot := xs[i]
		copy(xs[lo+1:i+1], xs[lo:i])
		xs[lo] = pivot
	}
}

// merge merges the sorted xs[:mid] and xs[mid:] stably: an element of the
// right half goes first only when it is less than the left one.
func merge(xs []sortItem, mid int, buf []sortItem, lt func(a, b *sortItem) bool) {
	left := buf[:mid]
	copy(left, xs[:mid])
	i, j, k := 0, mid, 0
	for i < len(left) && j < len(xs) {
		if lt(&xs[j], &left[i]) {
			xs[k] = xs[j]
			j++
		} else {
			xs[k] = left[i]
			i++
		}
		k++
	}
	copy(xs[k:], left[i:])
	clear(left)
}
