package libcyberdb

import (
	"context"
	"testing"

	"github.com/cyberdb/cyberdb/internal/daemontest"
)

// TestDictHotPathsDoNotAllocate keeps the README's claim true:
// Dict[string, V].Get and Set allocate nothing but the returned value (a
// string result is one allocation, its copy; an int is none). The daemon
// is the real binary, in its own process, so only the client's
// allocations are counted: encoding the key and value, the call, its
// write, the reader goroutine's matching of the reply, the decoding.
func TestDictHotPathsDoNotAllocate(t *testing.T) {
	if daemontest.Race {
		t.Skip("under the race detector sync.Pool drops items on purpose, so calls allocate; run without -race")
	}
	_, c := start(t)
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "t", nil))
	ints := NewDict[string, int](c, "t")
	texts := NewDict[string, string](c, "t")
	must(t, ints.Set(ctx, "n", 42))
	must(t, texts.Set(ctx, "s", "value-of-some-length"))

	for _, tc := range []struct {
		name string
		want float64
		fn   func() error
	}{
		{"Dict[string, int].Get", 0, func() error { _, err := ints.Get(ctx, "n"); return err }},
		{"Dict[string, int].Set", 0, func() error { return ints.Set(ctx, "n", 42) }},
		{"Dict[string, string].Get", 1, func() error { _, err := texts.Get(ctx, "s"); return err }},
		{"Dict[string, string].Set", 0, func() error { return texts.Set(ctx, "s", "value-of-some-length") }},
	} {
		for range 10 { // warm up: the call pool, the connection's buffers
			must(t, tc.fn())
		}
		allocs := testing.AllocsPerRun(200, func() { must(t, tc.fn()) })
		if allocs != tc.want {
			t.Errorf("%s: %v allocations per call, want %v", tc.name, allocs, tc.want)
		}
	}
}
