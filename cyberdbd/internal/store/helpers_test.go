package store

import (
	"errors"
	"fmt"
	"math/big"
	"sort"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// mkArgs builds request arguments: a wire.Raw is used as is, anything
// else is encoded with wire.Marshal.
func mkArgs(tb testing.TB, op wire.Op, vals ...any) wire.Args {
	tb.Helper()
	a := wire.Args{Op: op}
	for _, v := range vals {
		if r, ok := v.(wire.Raw); ok {
			a.Items = append(a.Items, r)
			continue
		}
		b, err := wire.Marshal(v)
		if err != nil {
			tb.Fatalf("marshal %#v: %v", v, err)
		}
		a.Items = append(a.Items, b)
	}
	return a
}

// raw encodes v.
func raw(tb testing.TB, v any) wire.Raw {
	tb.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		tb.Fatalf("marshal %#v: %v", v, err)
	}
	return b
}

// do runs op and returns its result in diagnostic notation, failing the
// test on error.
func do(tb testing.TB, s *Store, op wire.Op, vals ...any) string {
	tb.Helper()
	out, err := s.Exec(op, mkArgs(tb, op, vals...), nil)
	if err != nil {
		tb.Fatalf("%s %v: %v", op, vals, err)
	}
	return wire.Diagnose(out)
}

// fails runs op, which must fail with code, and returns the error message.
func fails(tb testing.TB, s *Store, code wire.Code, op wire.Op, vals ...any) string {
	tb.Helper()
	prefix := []byte("prefix")
	out, err := s.Exec(op, mkArgs(tb, op, vals...), prefix)
	if err == nil {
		tb.Fatalf("%s %v: got %s, want error %s", op, vals, wire.Diagnose(out[len(prefix):]), code)
	}
	var we *wire.Error
	if !errors.As(err, &we) {
		tb.Fatalf("%s %v: error %v is not a *wire.Error", op, vals, err)
	}
	if we.Code != code {
		tb.Fatalf("%s %v: got error %v, want code %s", op, vals, err, code)
	}
	if string(out) != "prefix" {
		tb.Fatalf("%s %v: failed op changed out to %q", op, vals, out)
	}
	return we.Message
}

func expect(tb testing.TB, got, want string) {
	tb.Helper()
	if got != want {
		tb.Fatalf("got  %s\nwant %s", got, want)
	}
}

// dump is the store's whole observable state (tables, every table's
// content in order, stats), for before/after comparisons.
func dump(tb testing.TB, s *Store) string {
	tb.Helper()
	out := do(tb, s, wire.OpTables)
	s.mu.RLock()
	names := make([]string, 0, len(s.tables))
	for name := range s.tables {
		names = append(names, name)
	}
	s.mu.RUnlock()
	sort.Strings(names)
	for _, n := range names {
		if r, err := s.Exec(wire.OpDToDict, mkArgs(tb, wire.OpDToDict, n), nil); err == nil {
			out += "\n" + n + " " + wire.Diagnose(r)
		} else if r, err := s.Exec(wire.OpLToList, mkArgs(tb, wire.OpLToList, n), nil); err == nil {
			out += "\n" + n + " " + wire.Diagnose(r)
		}
	}
	return out + fmt.Sprintf("\n%+v", s.Stats())
}

func bigInt(s string) *big.Int {
	b, ok := new(big.Int).SetString(s, 0)
	if !ok {
		panic(s)
	}
	return b
}

func newDictTable(tb testing.TB, s *Store, name string, pairs ...any) {
	tb.Helper()
	var content [][2]any
	for i := 0; i+1 < len(pairs); i += 2 {
		content = append(content, [2]any{pairs[i], pairs[i+1]})
	}
	if content == nil {
		do(tb, s, wire.OpCreateDict, name)
		return
	}
	do(tb, s, wire.OpCreateDict, name, content)
}

func newListTable(tb testing.TB, s *Store, name string, items ...any) {
	tb.Helper()
	if items == nil {
		items = []any{}
	}
	do(tb, s, wire.OpCreateList, name, items)
}
