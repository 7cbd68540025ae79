package store

import (
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// TestGiveBackOverMemory: a value taken for a waiter whose connection
// went away goes back to its list even while the store is over its
// memory limit: giving back adds no data (the value was there a moment
// ago), and PROTOCOL.md 6.5 lets pops go on over the limit, so it must
// not be refused with out_of_memory and the value lost.
func TestGiveBackOverMemory(t *testing.T) {
	for _, end := range []string{"left", "right"} {
		s := New()
		newListTable(t, s, "q")
		_, ch := parked(t, s, wire.OpLBPop, []string{"q"}, end)
		do(t, s, wire.OpLAppend, "q", "a", "b")
		var d Delivery
		select {
		case d = <-ch:
		default:
			t.Fatal("no delivery")
		}
		if d.GiveBack == nil {
			t.Fatal("a popped value without GiveBack")
		}
		s.SetOverMemory(true)
		d.GiveBack()
		s.SetOverMemory(false)
		want := `["a", "b"]`
		if got := do(t, s, wire.OpLToList, "q"); got != want {
			t.Fatalf("%s: after the give-back over the memory limit the list is %s, want %s", end, got, want)
		}
	}
}
