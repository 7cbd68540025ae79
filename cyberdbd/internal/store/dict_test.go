package store

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

func TestDictBasics(t *testing.T) {
	s := New()
	newDictTable(t, s, "d", "a", 1, "b", 2, "c", 3)
	expect(t, do(t, s, wire.OpDGet, "d", "b"), "2")
	fails(t, s, wire.CodeKeyNotFound, wire.OpDGet, "d", "zz")
	expect(t, do(t, s, wire.OpDGet, "d", "zz", 9), "9")
	expect(t, do(t, s, wire.OpDGet, "d", "zz", nil), "null") // a null default is a default
	expect(t, do(t, s, wire.OpDGet, "d", "a", nil), "1")

	// Overwriting keeps the key's place; new keys go last.
	expect(t, do(t, s, wire.OpDSet, "d", "a", "one"), "null")
	do(t, s, wire.OpDSet, "d", "e", 5)
	expect(t, do(t, s, wire.OpDItems, "d"), `[["a", "one"], ["b", 2], ["c", 3], ["e", 5]]`)
	expect(t, do(t, s, wire.OpDKeys, "d"), `["a", "b", "c", "e"]`)
	expect(t, do(t, s, wire.OpDValues, "d"), `["one", 2, 3, 5]`)
	expect(t, do(t, s, wire.OpDLen, "d"), "4")
	expect(t, do(t, s, wire.OpDHas, "d", "c"), "true")
	expect(t, do(t, s, wire.OpDHas, "d", "q"), "false")

	expect(t, do(t, s, wire.OpDDel, "d", "b"), "null")
	msg := fails(t, s, wire.CodeKeyNotFound, wire.OpDDel, "d", "b")
	expect(t, msg, `key "b" not found in dict table "d"`)
	do(t, s, wire.OpDSet, "d", "b", 22) // re-inserted keys go last
	expect(t, do(t, s, wire.OpDToDict, "d"), `{"a": "one", "c": 3, "e": 5, "b": 22}`)

	// Keys are compared by encoding: 1, 1.0, true and "1" are four keys.
	for _, k := range []any{1, 1.0, true, "1", []byte("1"), []int{1}} {
		do(t, s, wire.OpDSet, "d", k, fmt.Sprint(k))
	}
	expect(t, do(t, s, wire.OpDLen, "d"), "10")
	expect(t, do(t, s, wire.OpDGet, "d", 1.0), `"1"`)
	expect(t, do(t, s, wire.OpDGet, "d", []int{1}), `"[1]"`)
	expect(t, do(t, s, wire.OpDClear, "d"), "null")
	expect(t, do(t, s, wire.OpDToDict, "d"), "{}")
	expect(t, do(t, s, wire.OpDLen, "d"), "0")
	do(t, s, wire.OpDSet, "d", "x", 1)
	expect(t, do(t, s, wire.OpDItems, "d"), `[["x", 1]]`)
}

func TestDictPop(t *testing.T) {
	s := New()
	newDictTable(t, s, "d", "a", 1, "b", 2, "c", 3)
	expect(t, do(t, s, wire.OpDPop, "d", "b"), "2")
	fails(t, s, wire.CodeKeyNotFound, wire.OpDPop, "d", "b")
	expect(t, do(t, s, wire.OpDPop, "d", "b", "dflt"), `"dflt"`)
	expect(t, do(t, s, wire.OpDPop, "d", "b", nil), "null")
	expect(t, do(t, s, wire.OpDPop, "d", "a", nil), "1")
	expect(t, do(t, s, wire.OpDKeys, "d"), `["c"]`)

	// popitem takes the last inserted pair (LIFO), an overwrite does not move it.
	newDictTable(t, s, "p", "a", 1, "b", 2, "c", 3)
	do(t, s, wire.OpDSet, "p", "a", 10)
	do(t, s, wire.OpDDel, "p", "b")
	do(t, s, wire.OpDSet, "p", "b", 20)
	expect(t, do(t, s, wire.OpDPopItem, "p"), `["b", 20]`)
	expect(t, do(t, s, wire.OpDPopItem, "p"), `["c", 3]`)
	expect(t, do(t, s, wire.OpDPopItem, "p"), `["a", 10]`)
	msg := fails(t, s, wire.CodeKeyNotFound, wire.OpDPopItem, "p")
	if !strings.HasPrefix(msg, "popitem(): dictionary is empty") {
		t.Errorf("message %q", msg)
	}
}

func TestDictSetDefaultAndUpdate(t *testing.T) {
	s := New()
	newDictTable(t, s, "d", "a", 1)
	expect(t, do(t, s, wire.OpDSetDefault, "d", "a", 5), "1")
	expect(t, do(t, s, wire.OpDSetDefault, "d", "b"), "null")
	expect(t, do(t, s, wire.OpDSetDefault, "d", "c", []int{1}), "[1]")
	expect(t, do(t, s, wire.OpDToDict, "d"), `{"a": 1, "b": null, "c": [1]}`)

	// update: existing keys keep their place, new keys go last in the given order.
	do(t, s, wire.OpDUpdate, "d", [][2]any{{"z", 26}, {"a", "A"}, {"y", 25}, {"z", 0}})
	expect(t, do(t, s, wire.OpDToDict, "d"), `{"a": "A", "b": null, "c": [1], "z": 0, "y": 25}`)
	do(t, s, wire.OpDUpdate, "d", wire.Raw{0xa2, 0x61, 'q', 0x01, 0x61, 'b', 0x02})
	expect(t, do(t, s, wire.OpDKeys, "d"), `["a", "b", "c", "z", "y", "q"]`)
	fails(t, s, wire.CodeBadRequest, wire.OpDUpdate, "d", "nope")
	fails(t, s, wire.CodeBadRequest, wire.OpDUpdate, "d", [][]int{{1}})
	// A bad pair anywhere leaves the table untouched.
	fails(t, s, wire.CodeBadRequest, wire.OpDUpdate, "d", wire.Raw{0x82, 0x82, 0x01, 0x02, 0x81, 0x01})
	expect(t, do(t, s, wire.OpDHas, "d", 1), "false")
}

func TestDictIncr(t *testing.T) {
	maxU := raw(t, bigInt("18446744073709551615"))
	minN := raw(t, bigInt("-18446744073709551616"))
	tests := []struct {
		name  string
		start any // nil: key absent
		delta []any
		want  string
		code  wire.Code
	}{
		{name: "missing key, default delta", want: "1"},
		{name: "missing key, delta", delta: []any{5}, want: "5"},
		{name: "missing key, null delta", delta: []any{nil}, want: "1"},
		{name: "missing key, float delta", delta: []any{2.5}, want: "2.5"},
		{name: "int", start: 10, delta: []any{-15}, want: "-5"},
		{name: "int default", start: 10, want: "11"},
		{name: "int plus float", start: 1, delta: []any{0.5}, want: "1.5"},
		{name: "float plus int", start: 1.5, delta: []any{1}, want: "2.5"},
		{name: "float result stays float", start: 1.5, delta: []any{0.5}, want: "2.0"},
		{name: "past int64", start: int64(math.MaxInt64), want: "9223372036854775808"},
		{name: "below int64", start: int64(math.MinInt64), delta: []any{-1}, want: "-9223372036854775809"},
		{name: "max uint", start: maxU, delta: []any{0}, want: "18446744073709551615"},
		{name: "back from max uint", start: maxU, delta: []any{minN}, want: "-1"},
		{name: "min negative", start: minN, delta: []any{0}, want: "-18446744073709551616"},
		{name: "overflow up", start: maxU, code: wire.CodeOverflow},
		{name: "overflow down", start: minN, delta: []any{-1}, code: wire.CodeOverflow},
		{name: "bignum stored", start: bigInt("1180591620717411303424"), delta: []any{-1}, code: wire.CodeOverflow},
		{name: "big float", start: maxU, delta: []any{1.0}, want: "18446744073709552000.0"},
		{name: "text", start: "abc", code: wire.CodeTypeError},
		{name: "bool", start: true, code: wire.CodeTypeError},
		{name: "null", start: wire.Raw{0xf6}, code: wire.CodeTypeError},
		{name: "text delta", start: 1, delta: []any{"1"}, code: wire.CodeTypeError},
		{name: "bool delta", start: 1, delta: []any{true}, code: wire.CodeTypeError},
		{name: "array delta", delta: []any{[]int{1}}, code: wire.CodeTypeError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			newDictTable(t, s, "d")
			if tc.start != nil {
				do(t, s, wire.OpDSet, "d", "k", tc.start)
			}
			before := dump(t, s)
			args := append([]any{"d", "k"}, tc.delta...)
			if tc.code != 0 {
				fails(t, s, tc.code, wire.OpDIncr, args...)
				expect(t, dump(t, s), before)
				return
			}
			expect(t, do(t, s, wire.OpDIncr, args...), tc.want)
			expect(t, do(t, s, wire.OpDGet, "d", "k"), tc.want)
		})
	}
}

func TestDictIncrStoresCanonically(t *testing.T) {
	s := New()
	newDictTable(t, s, "d")
	do(t, s, wire.OpDIncr, "d", "f", 0.25)
	do(t, s, wire.OpDIncr, "d", "f", 0.75)
	// 1.0 is stored as the shortest float, so dcas against 1.0 matches...
	expect(t, do(t, s, wire.OpDCAS, "d", "f", "x", 1.0), "true")
	// ...and an integer result as the shortest integer.
	do(t, s, wire.OpDIncr, "d", "i", 300)
	do(t, s, wire.OpDIncr, "d", "i", -290)
	expect(t, do(t, s, wire.OpDCAS, "d", "i", "y", 10), "true")
}

func TestDictCAS(t *testing.T) {
	s := New()
	newDictTable(t, s, "d", "a", 1)
	// Without expected: set only when absent.
	expect(t, do(t, s, wire.OpDCAS, "d", "a", 2), "false")
	expect(t, do(t, s, wire.OpDCAS, "d", "b", 2), "true")
	expect(t, do(t, s, wire.OpDCAS, "d", "b", 3), "false")
	// With expected: set only when present and equal.
	expect(t, do(t, s, wire.OpDCAS, "d", "a", 5, 2), "false")
	expect(t, do(t, s, wire.OpDCAS, "d", "a", 5, 1.0), "false") // 1.0 is not 1
	expect(t, do(t, s, wire.OpDCAS, "d", "a", 5, 1), "true")
	expect(t, do(t, s, wire.OpDCAS, "d", "zz", 5, nil), "false") // absent is not null
	do(t, s, wire.OpDSet, "d", "n", nil)
	expect(t, do(t, s, wire.OpDCAS, "d", "n", 7, nil), "true")
	expect(t, do(t, s, wire.OpDToDict, "d"), `{"a": 5, "b": 2, "n": 7}`)
	// A non-canonical expected is compared canonically.
	expect(t, do(t, s, wire.OpDCAS, "d", "n", 8, wire.Raw{0x18, 0x07}), "true")
}

// scanAll pages through a dict with dscan, calling between after each page.
func scanAll(t *testing.T, s *Store, name string, count int, between func(page int)) []string {
	t.Helper()
	var keys []string
	cursor := uint64(0)
	for page := 0; ; page++ {
		out, err := s.Exec(wire.OpDScan, mkArgs(t, wire.OpDScan, name, cursor, count), nil)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			_     struct{} `cbor:",toarray"`
			Next  uint64
			Pairs [][2]any
		}
		if err := wire.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Pairs) > count {
			t.Fatalf("page of %d > count %d", len(res.Pairs), count)
		}
		for _, p := range res.Pairs {
			keys = append(keys, p[0].(string))
		}
		if res.Next == 0 {
			return keys
		}
		if res.Next <= cursor {
			t.Fatalf("cursor went from %d to %d", cursor, res.Next)
		}
		cursor = res.Next
		if between != nil {
			between(page)
		}
	}
}

func TestDictScan(t *testing.T) {
	s := New()
	newDictTable(t, s, "d")
	expect(t, do(t, s, wire.OpDScan, "d", 0, 10), "[0, []]")
	for i := range 10 {
		do(t, s, wire.OpDSet, "d", fmt.Sprintf("k%d", i), i)
	}
	expect(t, do(t, s, wire.OpDScan, "d", 0, 3), `[4, [["k0", 0], ["k1", 1], ["k2", 2]]]`)
	expect(t, do(t, s, wire.OpDScan, "d", 4, 100), `[0, [["k3", 3], ["k4", 4], ["k5", 5], ["k6", 6], ["k7", 7], ["k8", 8], ["k9", 9]]]`)
	do(t, s, wire.OpDDel, "d", "k3")
	do(t, s, wire.OpDDel, "d", "k4")
	expect(t, do(t, s, wire.OpDScan, "d", 3, 1), `[6, [["k2", 2]]]`) // cursors are seqs: k2 is 3
	expect(t, do(t, s, wire.OpDScan, "d", 4, 1), `[7, [["k5", 5]]]`) // k3, k4 gone
	// Delete the last key: the page before it ends the scan.
	do(t, s, wire.OpDDel, "d", "k9")
	expect(t, do(t, s, wire.OpDScan, "d", 8, 1), `[9, [["k7", 7]]]`)
	expect(t, do(t, s, wire.OpDScan, "d", 9, 1), `[0, [["k8", 8]]]`)
	fails(t, s, wire.CodeBadRequest, wire.OpDScan, "d", 0, 0)
	fails(t, s, wire.CodeBadRequest, wire.OpDScan, "d", 0, -1)
	fails(t, s, wire.CodeBadRequest, wire.OpDScan, "d", -1, 5)
	fails(t, s, wire.CodeBadRequest, wire.OpDScan, "d", 0)

	// Counts above the maximum are clamped.
	newDictTable(t, s, "big")
	pairs := make([][2]any, maxScanCount+5)
	for i := range pairs {
		pairs[i] = [2]any{i, i}
	}
	do(t, s, wire.OpDUpdate, "big", pairs)
	out, err := s.Exec(wire.OpDScan, mkArgs(t, wire.OpDScan, "big", 0, 1<<40), nil)
	if err != nil {
		t.Fatal(err)
	}
	var res []any
	if err := wire.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if n := len(res[1].([]any)); n != maxScanCount {
		t.Fatalf("page of %d", n)
	}
}

// TestDictScanAcrossChanges deletes and inserts between pages, enough to
// compact the table several times: every key present throughout is
// returned exactly once, in insertion order.
func TestDictScanAcrossChanges(t *testing.T) {
	s := New()
	newDictTable(t, s, "d")
	const n = 2000
	for i := range n {
		do(t, s, wire.OpDSet, "d", fmt.Sprintf("k%04d", i), i)
	}
	// Keys k0000..k0499 (below the scan's progress) and odd keys above
	// 1000 get deleted during the scan; new keys get added.
	stable := map[string]bool{}
	for i := 500; i < n; i++ {
		if i < 1000 || i%2 == 0 {
			stable[fmt.Sprintf("k%04d", i)] = true
		}
	}
	deleted := 0
	keys := scanAll(t, s, "d", 7, func(page int) {
		for range 10 {
			if deleted < 500 {
				do(t, s, wire.OpDDel, "d", fmt.Sprintf("k%04d", deleted))
			} else if k := 1001 + 2*(deleted-500); k < n {
				do(t, s, wire.OpDDel, "d", fmt.Sprintf("k%04d", k))
			}
			deleted++
		}
		do(t, s, wire.OpDSet, "d", fmt.Sprintf("new%d", page), page)
	})
	if deleted < 1000 {
		t.Fatalf("only %d deletes happened during the scan", deleted)
	}
	seen := map[string]int{}
	for _, k := range keys {
		seen[k]++
	}
	for k := range stable {
		if seen[k] != 1 {
			t.Errorf("key %s seen %d times", k, seen[k])
		}
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("key %s seen %d times", k, c)
		}
	}
	if !slices.IsSorted(keys[:len(keys)-countPrefix(keys, "new")]) {
		t.Errorf("old keys out of insertion order")
	}
}

func countPrefix(keys []string, p string) int {
	n := 0
	for _, k := range keys {
		if strings.HasPrefix(k, p) {
			n++
		}
	}
	return n
}

// TestDictModel runs random operations against a simple model of an
// ordered dict, exercising the index's growth, backward-shift deletion,
// tombstones and compaction.
func TestDictModel(t *testing.T) {
	s := New()
	newDictTable(t, s, "d")
	rng := rand.New(rand.NewPCG(1, 2))
	var order []int
	vals := map[int]int{}
	for step := range 20000 {
		k := rng.IntN(300)
		switch op := rng.IntN(10); {
		case op < 5:
			v := rng.IntN(1000)
			do(t, s, wire.OpDSet, "d", k, v)
			if _, ok := vals[k]; !ok {
				order = append(order, k)
			}
			vals[k] = v
		case op < 8:
			if _, ok := vals[k]; ok {
				do(t, s, wire.OpDDel, "d", k)
				delete(vals, k)
				order = slices.DeleteFunc(order, func(x int) bool { return x == k })
			} else {
				fails(t, s, wire.CodeKeyNotFound, wire.OpDDel, "d", k)
			}
		case op < 9:
			if v, ok := vals[k]; ok {
				expect(t, do(t, s, wire.OpDGet, "d", k), fmt.Sprint(v))
			} else {
				expect(t, do(t, s, wire.OpDHas, "d", k), "false")
			}
		default:
			if len(order) > 0 {
				last := order[len(order)-1]
				expect(t, do(t, s, wire.OpDPopItem, "d"), fmt.Sprintf("[%d, %d]", last, vals[last]))
				delete(vals, last)
				order = order[:len(order)-1]
			}
		}
		if step%1000 == 0 || step == 19999 {
			want := make([]string, len(order))
			for i, k := range order {
				want[i] = fmt.Sprintf("[%d, %d]", k, vals[k])
			}
			expect(t, do(t, s, wire.OpDItems, "d"), "["+strings.Join(want, ", ")+"]")
		}
	}
}

// TestDictComplexKeys uses keys whose length has to be parsed out of the
// stored pair: arrays, maps, tags, floats, bytes, long text.
func TestDictComplexKeys(t *testing.T) {
	s := New()
	newDictTable(t, s, "d")
	keys := []any{
		[]any{1, []any{"a", []byte{1}}, map[string]int{"x": 1}},
		map[string]any{"k": []int{1, 2}},
		wire.Raw{0xd8, 0x64, 0x82, 0x01, 0x02}, // tag 100 of [1, 2]
		1.5, 1e300, float32(0.1), []byte("bytes"), strings.Repeat("long", 100),
		-1, uint64(math.MaxUint64), bigInt("-18446744073709551616"), bigInt("99999999999999999999999"),
		nil, false,
	}
	var want []string
	for i, k := range keys {
		do(t, s, wire.OpDSet, "d", k, i)
		want = append(want, wire.Diagnose(raw(t, k)))
	}
	expect(t, do(t, s, wire.OpDKeys, "d"), "["+strings.Join(want, ", ")+"]")
	for i, k := range keys {
		expect(t, do(t, s, wire.OpDGet, "d", k), fmt.Sprint(i))
	}
	for i, k := range keys {
		if i%2 == 0 {
			do(t, s, wire.OpDDel, "d", k)
		}
	}
	var items []string
	for i, k := range keys {
		if i%2 == 1 {
			items = append(items, fmt.Sprintf("[%s, %d]", wire.Diagnose(raw(t, k)), i))
		}
	}
	expect(t, do(t, s, wire.OpDItems, "d"), "["+strings.Join(items, ", ")+"]")
}

// TestDictUndoAfterCompaction undoes deletes after the dict compacted, so
// keys go back between live entries at their original places.
func TestDictUndoAfterCompaction(t *testing.T) {
	s := New()
	newDictTable(t, s, "d")
	for i := range 100 {
		do(t, s, wire.OpDSet, "d", i, i)
	}
	before := dump(t, s)
	var batch []any
	for _, i := range []int{50, 3, 97} {
		batch = append(batch, sub(wire.OpDDel, "d", i))
	}
	for i := 10; i < 90; i++ { // enough tombstones to compact
		if i != 50 {
			batch = append(batch, sub(wire.OpDDel, "d", i))
		}
	}
	batch = append(batch, sub(wire.OpDSet, "d", "new", 1), sub(wire.OpDPopItem, "d"), sub(wire.OpDPopItem, "d"))
	batch = append(batch, sub(wire.OpDDel, "d", "missing"))
	fails(t, s, wire.CodeKeyNotFound, wire.OpBatch, batch)
	expect(t, dump(t, s), before)
	for i := range 100 {
		expect(t, do(t, s, wire.OpDGet, "d", i), fmt.Sprint(i))
	}
	expect(t, do(t, s, wire.OpDScan, "d", 51, 2), "[53, [[50, 50], [51, 51]]]")
}

func TestClone(t *testing.T) {
	s := New()
	newDictTable(t, s, "d", "a", 1, "b", 2)
	newListTable(t, s, "l", 1, 2)
	s.mu.RLock()
	dt, lt := s.tables["d"], s.tables["l"]
	s.mu.RUnlock()
	dt.mu.RLock()
	dc := dt.d.clone()
	dt.mu.RUnlock()
	lt.mu.RLock()
	lc := lt.l.clone()
	lt.mu.RUnlock()
	do(t, s, wire.OpDSet, "d", "a", 10)
	do(t, s, wire.OpDDel, "d", "b")
	do(t, s, wire.OpLSet, "l", 0, 10)
	do(t, s, wire.OpLAppend, "l", 3)
	if dc.live != 2 || dc.entries[0].val() != "\x01" || dc.find([]byte("\x61b")) != 1 {
		t.Errorf("dict clone changed: %+v", dc)
	}
	if len(lc.items) != 2 || lc.items[0] != "\x01" || lc.bytes != 2 {
		t.Errorf("list clone changed: %+v", lc)
	}
}

// TestDictIncrIntTooBigForFloat: int + float converts the int to a float
// first, and Python raises OverflowError ("int too large to convert to
// float") when it rounds beyond the largest float. Before the fix dincr
// stored inf (then nan on the next dincr). Expected results from python3.
func TestDictIncrIntTooBigForFloat(t *testing.T) {
	maxF := bigInt("0x" + "f" + strings.Repeat("f", 12) + "8" + strings.Repeat("0", 242)) // 2**1024 - 2**971, the largest float
	tie := new(big.Int).Add(maxF, new(big.Int).Lsh(big.NewInt(1), 970))                   // rounds to 2**1024
	below := new(big.Int).Sub(tie, big.NewInt(1))                                         // rounds down to the largest float
	if f, _ := new(big.Float).SetInt(maxF).Float64(); f != math.MaxFloat64 {
		t.Fatalf("test setup: %v is not the largest float", f)
	}
	for _, c := range []struct {
		start, delta any
		want         string // "" for overflow
	}{
		{bigInt("0x1" + strings.Repeat("0", 275)), 1.0, ""}, // 2**1100 + 1.0
		{1.0, bigInt("0x1" + strings.Repeat("0", 275)), ""},
		{tie, 1.0, ""},
		{new(big.Int).Neg(tie), -1.0, ""},
		{-0.5, tie, ""},
		{maxF, 1.0, "1.7976931348623157e+308"},
		{below, 0.0, "1.7976931348623157e+308"},
		{new(big.Int).Neg(below), 1.0, "-1.7976931348623157e+308"},
		{1e308, 1e308, "Infinity"}, // float + float: inf, as in Python
		{math.Inf(1), math.Inf(-1), "NaN"},
	} {
		s := New()
		newDictTable(t, s, "d", "k", c.start)
		before := dump(t, s)
		if c.want == "" {
			msg := fails(t, s, wire.CodeOverflow, wire.OpDIncr, "d", "k", c.delta)
			if !strings.Contains(msg, "int too large to convert to float") {
				t.Errorf("dincr %v + %v: message %q", c.start, c.delta, msg)
			}
			if after := dump(t, s); after != before {
				t.Errorf("a failed dincr changed the table:\n%s\nwas\n%s", after, before)
			}
			continue
		}
		expect(t, do(t, s, wire.OpDIncr, "d", "k", c.delta), c.want)
	}
}
