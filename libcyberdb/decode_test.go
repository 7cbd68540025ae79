package libcyberdb

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// A typed read whose value does not fit the Go type fails with a
// *DecodeError that names the table, the key or index, the Go type and
// the CBOR type, and stays short whatever the table's size. Before the
// fix the error carried the whole result in diagnostic notation (about a
// megabyte for 50,000 entries), called valid data "malformed CBOR", and
// never named the key.

const decodeErrMax = 600 // characters: short, whatever the table size

func checkDecodeErr(t *testing.T, what string, err error, op wire.Op, table string, key any, index int, goType, cborType string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	msg := err.Error()
	if len(msg) > decodeErrMax {
		t.Fatalf("%s: error of %d characters: %.300s...", what, len(msg), msg)
	}
	if strings.Contains(msg, "malformed") {
		t.Errorf("%s: valid data called malformed: %s", what, msg)
	}
	if !errors.Is(err, ErrDecode) {
		t.Errorf("%s: %v does not match ErrDecode", what, err)
	}
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("%s: %T %v is not a *DecodeError", what, err, err)
	}
	if de.Op != op || de.Table != table || de.CBORType != cborType || de.GoType == nil || de.GoType.String() != goType {
		t.Errorf("%s: got op %s table %q Go type %v CBOR type %q; want %s %q %s %q (%s)",
			what, de.Op, de.Table, de.GoType, de.CBORType, op, table, goType, cborType, msg)
	}
	if key != nil {
		want, _ := wire.Marshal(key)
		if string(de.Key) != string(want) {
			t.Errorf("%s: key %s, want %s (%s)", what, wire.Diagnose(de.Key), wire.Diagnose(want), msg)
		}
		if !strings.Contains(msg, wire.Diagnose(want)) {
			t.Errorf("%s: the message does not name the key %s: %s", what, wire.Diagnose(want), msg)
		}
	} else if de.Key != nil {
		t.Errorf("%s: key %s, want none", what, wire.Diagnose(de.Key))
	}
	if index >= 0 {
		if !de.HasIndex || de.Index != index {
			t.Errorf("%s: index %d (%v), want %d (%s)", what, de.Index, de.HasIndex, index, msg)
		}
		if !strings.Contains(msg, fmt.Sprintf("index %d", index)) && !strings.Contains(msg, fmt.Sprintf("element %d of the slice", index)) {
			t.Errorf("%s: the message does not name index %d: %s", what, index, msg)
		}
	}
	for _, s := range []string{fmt.Sprintf("%q", table), goType, cborType} {
		if !strings.Contains(msg, s) {
			t.Errorf("%s: the message does not say %s: %s", what, s, msg)
		}
	}
}

func TestDecodeErrorIsShortAndNamesTheSpot(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	const n = 50000
	pairs := make([][2]any, 0, n)
	for i := range n {
		pairs = append(pairs, [2]any{fmt.Sprintf("key%05d", i), i})
	}
	pairs[31234][1] = "not a number " + strings.Repeat("x", 1000)
	must(t, c.CreateDict(ctx, "big", pairs))
	d := NewDict[string, int64](c, "big")

	_, err := d.Items(ctx)
	checkDecodeErr(t, "Items", err, wire.OpDItems, "big", "key31234", -1, "int64", "text string")
	_, err = d.Map(ctx)
	checkDecodeErr(t, "Map", err, wire.OpDToDict, "big", "key31234", -1, "int64", "text string")
	_, err = d.Values(ctx)
	checkDecodeErr(t, "Values", err, wire.OpDValues, "big", nil, 31234, "int64", "text string")
	_, err = d.Get(ctx, "key31234")
	checkDecodeErr(t, "Get", err, wire.OpDGet, "big", "key31234", -1, "int64", "text string")
	_, err = d.GetOr(ctx, "key31234", 0)
	checkDecodeErr(t, "GetOr", err, wire.OpDGet, "big", "key31234", -1, "int64", "text string")
	sc := d.Scan(ctx, 1000)
	for range sc.All() {
	}
	checkDecodeErr(t, "Scan", sc.Err(), wire.OpDScan, "big", "key31234", -1, "int64", "text string")

	// A key that does not fit K.
	must(t, NewDict[any, any](c, "big").Set(ctx, 77, 1))
	_, err = NewDict[string, any](c, "big").Keys(ctx)
	checkDecodeErr(t, "Keys", err, wire.OpDKeys, "big", 77, n, "string", "unsigned integer")

	// Batch results.
	b := c.Batch()
	f := d.In(b).Get("key31234")
	must(t, b.Exec(ctx))
	_, err = f.Result()
	checkDecodeErr(t, "batch Get", err, wire.OpDGet, "big", "key31234", -1, "int64", "text string")

	// Lists: the index.
	items := make([]any, n)
	for i := range items {
		items[i] = i
	}
	items[40001] = map[string]any{"deep": strings.Repeat("y", 5000)}
	must(t, c.CreateList(ctx, "biglist", items))
	l := NewList[int](c, "biglist")
	_, err = l.Values(ctx)
	checkDecodeErr(t, "list Values", err, wire.OpLToList, "biglist", nil, 40001, "int", "map")
	_, err = l.At(ctx, 40001)
	checkDecodeErr(t, "At", err, wire.OpLGet, "biglist", nil, 40001, "int", "map")
	_, err = l.Slice(ctx, From(40000))
	checkDecodeErr(t, "Slice", err, wire.OpLSlice, "biglist", nil, 1, "int", "map") // the position in the slice
	lsc := l.Scan(ctx, 700)
	for range lsc.All() {
	}
	checkDecodeErr(t, "list Scan", lsc.Err(), wire.OpLRange, "biglist", nil, 40001, "int", "map")
	b = c.Batch()
	lf := l.In(b).At(-9999) // 40001
	must(t, b.Exec(ctx))
	_, err = lf.Result()
	checkDecodeErr(t, "batch At", err, wire.OpLGet, "biglist", nil, -9999, "int", "map")

	// Nested: the element deep inside does not fit, the outer index is named.
	must(t, c.CreateList(ctx, "nested", []any{[]any{1, 2}, []any{3, "four"}}))
	_, err = NewList[[]int](c, "nested").Values(ctx)
	checkDecodeErr(t, "nested", err, wire.OpLToList, "nested", nil, 1, "int", "text string")
	var de *DecodeError
	if errors.As(err, &de); de.Value != `"four"` {
		t.Errorf("nested: value %q, want \"four\"", de.Value)
	}
}

func TestDecodeErrorMessage(t *testing.T) {
	e := &DecodeError{Op: wire.OpDGet, Table: "users", Key: wire.AppendText(nil, "bob"),
		GoType: reflect.TypeOf(int64(0)), CBORType: "text string", Value: `"carol"`}
	const want = `cyberdb: cannot decode value: dget on table "users", key "bob": the value is a text string ("carol"), which does not fit int64`
	if got := e.Error(); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// TestLocate checks the element locate blames, without a daemon.
func TestLocate(t *testing.T) {
	enc := func(v any) []byte {
		b, err := wire.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Two keys Go cannot tell apart: 55799("k") and "k" both decode as
	// the string "k". No element is to blame: the map as a whole is, and
	// the library's reason is kept, without "malformed".
	raw := wire.Raw{0xa2, 0xd9, 0xd9, 0xf7, 0x61, 'k', 0x01, 0x61, 'k', 0x02}
	var m map[string]int
	err := wire.Unmarshal(raw, &m)
	if err == nil {
		t.Fatal("duplicate Go keys decoded")
	}
	derr := decodeErr(wire.OpDToDict, "t", nil, 0, raw, &m, err)
	var de *DecodeError
	if !errors.As(derr, &de) || de.Key != nil || de.CBORType != "map" || de.Detail == "" || strings.Contains(derr.Error(), "malformed") {
		t.Fatalf("duplicate Go keys: %v (%+v)", derr, de)
	}
	// A struct field deep in a list of items.
	type point struct {
		_    struct{} `cbor:",toarray"`
		X, Y int
	}
	raw = enc([]any{[]any{"a", []any{1, 2}}, []any{"b", []any{3, "y"}}})
	var items []Item[string, point]
	err = wire.Unmarshal(raw, &items)
	derr = decodeErr(wire.OpDItems, "t", nil, 0, raw, &items, err)
	if !errors.As(derr, &de) || string(de.Key) != "\x61b" || de.KeyItself || de.Value != `"y"` || de.GoType.String() != "int" {
		t.Fatalf("nested struct: %v (%+v)", derr, de)
	}
	// A key that does not fit K in items.
	raw = enc([]any{[]any{"a", 1}, []any{2, 2}})
	var kitems []Item[string, int]
	err = wire.Unmarshal(raw, &kitems)
	derr = decodeErr(wire.OpDItems, "t", nil, 0, raw, &kitems, err)
	if !errors.As(derr, &de) || string(de.Key) != "\x02" || !de.KeyItself || !strings.Contains(derr.Error(), "the key is an unsigned integer (2)") {
		t.Fatalf("key misfit: %v (%+v)", derr, de)
	}
	// A result that is not even the right container.
	var ints []int
	raw = enc("text")
	derr = decodeErr(wire.OpLToList, "t", nil, 0, raw, &ints, wire.Unmarshal(raw, &ints))
	if !errors.As(derr, &de) || de.HasIndex || de.CBORType != "text string" || de.GoType.String() != "[]int" {
		t.Fatalf("wrong container: %v (%+v)", derr, de)
	}
}

// TestDecodeErrorDeepValue: a valid value nested deeper than diagnostic
// notation shows is not called malformed.
func TestDecodeErrorDeepValue(t *testing.T) {
	raw := []byte{}
	for range 50 {
		raw = append(raw, 0x81)
	}
	raw = append(raw, 0x61, 'x')
	var v []int
	derr := decodeErr(wire.OpLToList, "t", nil, 0, raw, &v, wire.Unmarshal(raw, &v))
	if msg := derr.Error(); strings.Contains(msg, "malformed") || !strings.Contains(msg, "index 0") {
		t.Fatalf("deep value: %s", msg)
	}
}
