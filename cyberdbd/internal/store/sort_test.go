package store

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

func TestListSort(t *testing.T) {
	nan := math.NaN()
	inf := math.Inf(1)
	two63 := bigInt("9223372036854775808")
	// Expected values printed by python3 (sorted(l) and sorted(l, reverse=True)).
	for _, tc := range []struct {
		name      string
		in        []any
		asc, desc string
	}{
		{"empty", []any{}, "[]", "[]"},
		{"ints", []any{3, -1, 2, 0}, "[-1, 0, 2, 3]", "[3, 2, 0, -1]"},
		{"equal numbers keep their order", []any{1, true, 1.0, 0, false, 0.0},
			"[0, false, 0.0, 1, true, 1.0]", "[1, true, 1.0, 0, false, 0.0]"},
		{"exact int and float", []any{bigInt("18446744073709551616"), bigInt("9223372036854775809"), float64(1 << 63), two63,
			bigInt("-18446744073709551616"), -1.5, 1e300, -inf},
			"[-Infinity, -18446744073709551616, -1.5, 9223372036854776000.0, 9223372036854775808, 9223372036854775809, 18446744073709551616, 1.0e+300]",
			"[1.0e+300, 18446744073709551616, 9223372036854775809, 9223372036854776000.0, 9223372036854775808, -1.5, -18446744073709551616, -Infinity]"},
		{"text by code point", []any{"b", "a", "é", "Z", "😀", "ÿ", ""},
			`["", "Z", "a", "b", "\u00e9", "\u00ff", "\ud83d\ude00"]`, `["\ud83d\ude00", "\u00ff", "\u00e9", "b", "a", "Z", ""]`},
		{"bytes", []any{[]byte{0xff}, []byte{}, []byte("a")}, "[h'', h'61', h'ff']", "[h'ff', h'61', h'']"},
		{"arrays", []any{[]any{1, "b"}, []any{1, "a"}, []any{0, "z"}, []any{1}, []any{1, "a", 0}},
			`[[0, "z"], [1], [1, "a"], [1, "a", 0], [1, "b"]]`, `[[1, "b"], [1, "a", 0], [1, "a"], [1], [0, "z"]]`},
		{"arrays equal up to nulls", []any{[]any{nil, 2}, []any{nil, 1}}, "[[null, 1], [null, 2]]", "[[null, 2], [null, 1]]"},
		{"one incomparable", []any{nil}, "[null]", "[null]"},
		{"nested arrays", []any{[]any{[]any{1, 2}, "b"}, []any{[]any{1, 2.0}, "a"}, []any{[]any{1}, "c"}},
			`[[[1], "c"], [[1, 2.0], "a"], [[1, 2], "b"]]`, `[[[1, 2], "b"], [[1, 2.0], "a"], [[1], "c"]]`},
		{"arrays of bytes", []any{[]any{[]any{[]byte("x")}, 1}, []any{[]any{[]byte("x")}, 0}},
			"[[[h'78'], 0], [[h'78'], 1]]", "[[[h'78'], 1], [[h'78'], 0]]"},
		{"nan 1", []any{3, nan, 1, 2}, "[3, NaN, 1, 2]", "[3, NaN, 2, 1]"},
		{"nan 2", []any{3, 1, nan, 2}, "[1, 2, 3, NaN]", "[3, 1, NaN, 2]"},
		{"nan 3", []any{nan, 2, 1}, "[NaN, 1, 2]", "[NaN, 2, 1]"},
		{"nan 4", []any{2, 1, nan}, "[1, 2, NaN]", "[2, 1, NaN]"},
		{"nan 5", []any{1, nan, 0, nan, -1}, "[1, NaN, 0, NaN, -1]", "[1, NaN, 0, NaN, -1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			do(t, s, wire.OpCreateList, "l", tc.in)
			expect(t, do(t, s, wire.OpLSort, "l"), "null")
			expect(t, do(t, s, wire.OpLToList, "l"), tc.asc)
			do(t, s, wire.OpDrop, "l")
			do(t, s, wire.OpCreateList, "l", tc.in)
			expect(t, do(t, s, wire.OpLSort, "l", true), "null")
			expect(t, do(t, s, wire.OpLToList, "l"), tc.desc)
		})
	}
}

func TestListSortTypeError(t *testing.T) {
	long := make([]any, 300)
	for i := range long {
		long[i] = 300 - i
	}
	long[150] = "text"
	for _, in := range [][]any{
		{"a", 1},
		{1, "a"},
		{nil, nil},
		{"a", []byte("a")},
		{map[string]int{}, map[string]int{}},
		{[]any{1, "a"}, []any{1, 3}},
		{[]any{1}, 1},
		{[]any{[]any{1, 2}, "b"}, []any{[]any{[]byte("x")}, 1}},
		{true, "a"},
		{wire.Raw{0xd8, 0x64, 0x01}, 1}, // a tag other than a bignum
		long,
	} {
		s := New()
		do(t, s, wire.OpCreateList, "l", in)
		before := do(t, s, wire.OpLToList, "l")
		fails(t, s, wire.CodeTypeError, wire.OpLSort, "l")
		fails(t, s, wire.CodeTypeError, wire.OpLSort, "l", true)
		expect(t, do(t, s, wire.OpLToList, "l"), before)
	}
	s := New()
	do(t, s, wire.OpCreateList, "l", []any{"a", 1})
	expect(t, fails(t, s, wire.CodeTypeError, wire.OpLSort, "l"),
		`lsort of list table "l": '<' is not supported between integer and text`)
	fails(t, s, wire.CodeBadRequest, wire.OpLSort, "l", 1.0) // the argument is checked before the sort
}

// TestListSortStableLarge sorts long lists of values that compare equal
// but differ (0, 0.0, false...) and checks both directions against a
// stable sort of the original positions.
func TestListSortStableLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pool := []any{0, 0.0, false, 1, 1.0, true, 2, 2.5, -1, -1.0, int64(1) << 62, float64(int64(1) << 62), bigInt("18446744073709551615")}
	value := []float64{0, 0, 0, 1, 1, 1, 2, 2.5, -1, -1, 1 << 62, 1 << 62, 18446744073709551615}
	for _, n := range []int{63, 64, 65, 100, 1000, 5000} {
		idx := make([]int, n)
		in := make([]any, n)
		for i := range idx {
			idx[i] = rng.IntN(len(pool))
			in[i] = pool[idx[i]]
		}
		for _, reverse := range []bool{false, true} {
			order := slices.Clone(idx)
			slices.SortStableFunc(order, func(a, b int) int {
				if reverse {
					a, b = b, a
				}
				return cmpOrdered(value[a], value[b])
			})
			want := make([]any, n)
			for i, k := range order {
				want[i] = pool[k]
			}
			s := New()
			do(t, s, wire.OpCreateList, "l", in)
			do(t, s, wire.OpLSort, "l", reverse)
			expect(t, do(t, s, wire.OpLToList, "l"), wire.Diagnose(raw(t, want)))
		}
	}
}

func TestCompareNumbers(t *testing.T) {
	key := func(v any) sortKey { return decodeKey(string(raw(t, v))) }
	for _, tc := range []struct {
		a, b any
		c    int
	}{
		{1, 2, -1},
		{bigInt("9223372036854775809"), float64(1 << 63), 1},
		{float64(1 << 63), bigInt("9223372036854775807"), 1},
		{int64(1<<53 + 1), float64(1 << 53), 1},
		{int64(-1<<53 - 1), float64(-1 << 53), -1},
		{bigInt("-18446744073709551616"), -1.8446744073709552e19, 0},
		{bigInt("-18446744073709551617"), -1.8446744073709552e19, -1},
		{math.Inf(-1), bigInt("-99999999999999999999999"), -1},
		{2.5, 2, 1},
		{false, 0.0, 0},
		{true, -3, 1},
	} {
		a, b := key(tc.a), key(tc.b)
		if c, ok := cmpNumbers(&a, &b); !ok || c != tc.c {
			t.Errorf("cmp(%v, %v) = %d, %v; want %d", tc.a, tc.b, c, ok, tc.c)
		}
	}
	a, b := key(math.NaN()), key(1)
	if _, ok := cmpNumbers(&a, &b); ok {
		t.Error("NaN compared as ordered")
	}
}

// TestListSortReverseArgument: reverse takes what Python's
// list.sort(reverse=...) takes: a bool, or an integer in C int range
// (any nonzero one is true); a larger integer is Python's OverflowError
// (overflow), any other type its TypeError (bad_request). null is left
// out (false), a deliberate rule of PROTOCOL.md. Checked with python3:
// [3,1,2].sort(reverse=2**31) raises OverflowError, reverse=-2**31 sorts
// descending, reverse=1.0 raises TypeError. Before the fix lsort l 1 was
// refused ("argument 2 must be a boolean").
func TestListSortReverseArgument(t *testing.T) {
	const asc, desc = "[1, 2, 3]", "[3, 2, 1]"
	for _, c := range []struct {
		reverse any
		want    string
	}{
		{true, desc}, {false, asc}, {nil, asc},
		{1, desc}, {0, asc}, {-1, desc}, {2, desc},
		{math.MaxInt32, desc}, {math.MinInt32, desc},
		{wire.Raw{0xc2, 0x41, 0x01}, desc}, // 2(h'01'): a bignum is an int too
		{wire.Raw{0xc2, 0x40}, asc},        // 2(h''): 0
	} {
		s := New()
		newListTable(t, s, "l", 3, 1, 2)
		do(t, s, wire.OpLSort, "l", c.reverse)
		if got := do(t, s, wire.OpLToList, "l"); got != c.want {
			t.Errorf("sort(reverse=%v): got %s, want %s", c.reverse, got, c.want)
		}
	}
	s := New()
	newListTable(t, s, "l", 3, 1, 2)
	for _, r := range []any{int64(math.MaxInt32) + 1, int64(math.MinInt32) - 1, uint64(math.MaxUint64),
		int64(math.MinInt64), bigInt("0x10000000000000000"), bigInt("-0x1000000000000000000")} {
		msg := fails(t, s, wire.CodeOverflow, wire.OpLSort, "l", r)
		expect(t, msg, "lsort: reverse: Python int too large to convert to C int")
	}
	for _, r := range []any{1.0, 0.0, "x", []int{}, map[string]int{}, []byte{}, undef, sd(wire.Raw{0xf5})} {
		fails(t, s, wire.CodeBadRequest, wire.OpLSort, "l", r)
	}
	expect(t, do(t, s, wire.OpLToList, "l"), "[3, 1, 2]")
}
