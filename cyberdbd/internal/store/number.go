package store

import (
	"math"
	"math/big"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// dincr follows Python's + on numbers: int + int is an exact int, anything
// with a float is a float. Integers span the CBOR range [-2^64, 2^64-1]
// (bignum tags outside it are read but a result there is an overflow).
// bool is not a number here (unlike Python), because a stored true is a
// different value from 1 everywhere else in cyberdb.

var (
	cborIntMax = new(big.Int).SetUint64(math.MaxUint64)                // 2^64-1
	cborIntMin = new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), 64)) // -2^64
)

// addNumbers returns the canonical encoding of a + b.
func addNumbers(a, b []byte) ([]byte, error) {
	if x, ok := wire.ItemInt(a); ok {
		if y, ok := wire.ItemInt(b); ok {
			if s := x + y; (s > x) == (y > 0) {
				return wire.AppendInt(nil, s), nil
			}
		}
	}
	na, _ := wire.DecodeNumber(a)
	nb, _ := wire.DecodeNumber(b)
	if na.IsFloat || nb.IsFloat {
		fa, oka := toFloat(na)
		fb, okb := toFloat(nb)
		if !oka || !okb {
			// Python converts the int first, and refuses one whose
			// nearest float is beyond the largest: the sum is not
			// computed, and the value stays as it was.
			return nil, wire.Errorf(wire.CodeOverflow, "int too large to convert to float (an integer of about 2^%d)",
				max(bitLen(na), bitLen(nb))-1)
		}
		sum := fa + fb
		enc, err := wire.Marshal(sum)
		if err != nil {
			return nil, wire.Errorf(wire.CodeInternal, "encoding float %v: %v", sum, err)
		}
		return enc, nil
	}
	sum := new(big.Int).Add(na.Int, nb.Int)
	if sum.Cmp(cborIntMin) < 0 || sum.Cmp(cborIntMax) > 0 {
		return nil, wire.Errorf(wire.CodeOverflow,
			"result %s is outside the CBOR integer range [-2^64, 2^64-1]", sum)
	}
	return appendBigInt(nil, sum), nil
}

// appendBigInt appends v, which must be within the CBOR integer range.
func appendBigInt(dst []byte, v *big.Int) []byte {
	if v.Sign() >= 0 {
		return wire.AppendUint(dst, v.Uint64())
	}
	m := new(big.Int).Neg(v)
	m.Sub(m, big.NewInt(1)) // a negative integer n is encoded as -1-n
	start := len(dst)
	dst = wire.AppendUint(dst, m.Uint64())
	dst[start] |= 1 << 5 // major type 1
	return dst
}

// toFloat is Python's float(n); ok is false where Python raises
// OverflowError: an integer whose nearest float (ties to even) is beyond
// the largest finite one.
func toFloat(n wire.Number) (f float64, ok bool) {
	if n.IsFloat {
		return n.Float, true
	}
	f, _ = new(big.Float).SetInt(n.Int).Float64() // nearest, ties to even, as Python's float(int)
	return f, !math.IsInf(f, 0)
}

func bitLen(n wire.Number) int {
	if n.IsFloat {
		return 0
	}
	return n.Int.BitLen()
}

func isNumber(raw []byte) bool {
	_, ok := wire.DecodeNumber(raw)
	return ok
}

func opDIncr(c call, out []byte) ([]byte, error) {
	if err := c.args.Want(2, 3); err != nil {
		return out, err
	}
	key, err := c.args.Value(1)
	if err != nil {
		return out, err
	}
	delta := []byte{0x01}
	if c.args.Has(2) { // null, like absent, means 1
		if delta, err = c.args.Value(2); err != nil {
			return out, err
		}
		if !isNumber(delta) {
			return out, wire.Errorf(wire.CodeTypeError, "dincr: delta must be a number (integer or float), got %s", show(delta))
		}
	}
	d := c.t.d
	cur := []byte{0x00} // a missing key counts as 0
	if pos := c.lookup(key); pos >= 0 {
		cur = []byte(d.entries[pos].kv[len(key):])
		if !isNumber(cur) {
			return out, wire.Errorf(wire.CodeTypeError,
				"dincr: key %s in dict table %q holds %s, which is not a number", show(key), c.t.name, show(cur))
		}
	}
	sum, err := addNumbers(cur, delta)
	if err != nil {
		return out, prefixed(err, "dincr of key %s in dict table %q: ", show(key), c.t.name)
	}
	c.put(key, sum, when{keepTTL: true}) // a counter keeps its deadline, as Redis's INCR
	return append(out, sum...), nil
}
