package store

import (
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// TestTouch: Touch reads and changes nothing, whatever it is given: keys
// present or not, a missing table, a list, an empty dict, more keys than
// it looks at, a table a writer holds (it does not wait).
func TestTouch(t *testing.T) {
	s := New()
	do(t, s, wire.OpCreateDict, "d", map[string]int{"a": 1, "b": 2})
	do(t, s, wire.OpCreateDict, "empty", map[string]int{})
	do(t, s, wire.OpCreateList, "l", []int{1})
	key := func(k string) []byte { return wire.AppendText(nil, k) }
	var keys [][]byte
	for range 40 {
		keys = append(keys, key("a"), key("zz"), wire.AppendInt(nil, 7), []byte{})
	}
	before := dump(t, s)
	if s.Touch("d", keys) == 0 {
		t.Error("Touch of present keys read nothing")
	}
	for _, name := range []string{"nope", "empty", "l"} {
		if x := s.Touch(name, keys); x != 0 {
			t.Errorf("Touch of %s: %d, want 0", name, x)
		}
	}
	tb := s.acquire("d", true)
	done := make(chan uint64)
	go func() { done <- s.Touch("d", keys) }()
	if x := <-done; x != 0 {
		t.Errorf("Touch of a table a writer holds: %d, want 0 (skipped)", x)
	}
	s.release(tb, true)
	expect(t, dump(t, s), before)
}
