package server

import (
	"testing"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// costServer is a server over a store with a list "big" of n elements, a
// dict "bigd" of n entries and a list "small" of 10.
func costServer(t testing.TB, n int) *Server {
	st := store.New()
	exec := func(op wire.Op, args ...any) {
		f, err := wire.AppendRequest(nil, 1, op, args...)
		if err != nil {
			t.Fatal(err)
		}
		body, _, _ := wire.SplitFrame(f, -1)
		req, _, err := wire.DecodeRequestInto(body, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Exec(req.Op, req.Args, nil); err != nil {
			t.Fatal(err)
		}
	}
	vals := make([]int, n)
	m := make(map[int]int, n)
	for i := range vals {
		vals[i] = i
		m[i] = i
	}
	exec(wire.OpCreateList, "big", vals)
	exec(wire.OpCreateDict, "bigd", m)
	exec(wire.OpCreateList, "small", vals[:10])
	return New(Config{}, st)
}

func requestBody(t testing.TB, op wire.Op, args ...any) []byte {
	f, err := wire.AppendRequest(nil, 7, op, args...)
	if err != nil {
		t.Fatal(err)
	}
	body, _, _ := wire.SplitFrame(f, -1)
	return body
}

// Issue 17 §1: which requests leave the event loop, decided from the op,
// the frame and the table's published size.
func TestSlowRequest(t *testing.T) {
	s := costServer(t, 100_000)
	bigItems := make([]int, 2000) // about 5 KiB: over itemsFrame
	for i := range bigItems {
		bigItems[i] = 1000 + i
	}
	for _, tc := range []struct {
		name string
		body []byte
		slow bool
	}{
		{"dget", requestBody(t, wire.OpDGet, "bigd", 1), false},
		{"lget on a big list", requestBody(t, wire.OpLGet, "big", 5), false},
		{"lsort big", requestBody(t, wire.OpLSort, "big"), true},
		{"lsort small", requestBody(t, wire.OpLSort, "small"), false},
		{"lsort missing", requestBody(t, wire.OpLSort, "nope"), false},
		{"ltolist big", requestBody(t, wire.OpLToList, "big"), true},
		{"ditems big", requestBody(t, wire.OpDItems, "bigd"), true},
		{"drop big", requestBody(t, wire.OpDrop, "bigd"), true},
		{"drop small", requestBody(t, wire.OpDrop, "small"), false},
		{"lrange 10", requestBody(t, wire.OpLRange, "big", 0, 10), false},
		{"lrange 100000", requestBody(t, wire.OpLRange, "big", 0, 100000), true},
		{"dscan 10", requestBody(t, wire.OpDScan, "bigd", 0, 10), false},
		{"dscan 10000", requestBody(t, wire.OpDScan, "bigd", 0, 10000), true},
		{"lextend 5 KiB", requestBody(t, wire.OpLExtend, "small", bigItems), true},
		{"lextend small", requestBody(t, wire.OpLExtend, "small", bigItems[:10]), false},
		{"dset 5 KiB value", requestBody(t, wire.OpDSet, "bigd", 1, make([]byte, 5<<10)), false},
		{"dset 100 KiB value", requestBody(t, wire.OpDSet, "bigd", 1, make([]byte, 100<<10)), true},
		{"batch of gets", requestBody(t, wire.OpBatch, []any{[]any{wire.OpDGet, "bigd", 1}, []any{wire.OpLLen, "big"}}), false},
		{"batch with lsort big", requestBody(t, wire.OpBatch, []any{[]any{wire.OpDGet, "bigd", 1}, []any{wire.OpLSort, "big"}}), true},
		{"save without a data dir", requestBody(t, wire.OpSave), false},
		{"not a request", []byte{0xa0}, false},
	} {
		if got := s.slowRequest(tc.body); got != tc.slow {
			t.Errorf("%s: slowRequest = %v, want %v", tc.name, got, tc.slow)
		}
	}
}

// The decision is on every request's path: it must not allocate.
func TestSlowRequestAllocs(t *testing.T) {
	s := costServer(t, 10)
	body := requestBody(t, wire.OpLSort, "big")
	get := requestBody(t, wire.OpDGet, "bigd", 1)
	if n := testing.AllocsPerRun(100, func() { s.slowRequest(body); s.slowRequest(get) }); n != 0 {
		t.Errorf("slowRequest allocates %v times", n)
	}
}

// slowRequest walks bytes no decoder has checked yet: it must never
// panic, whatever they are.
func FuzzSlowRequest(f *testing.F) {
	s := costServer(f, 1000)
	f.Add(requestBody(f, wire.OpLSort, "big"))
	f.Add(requestBody(f, wire.OpLRange, "big", 0, 500))
	f.Add(requestBody(f, wire.OpDScan, "bigd", 3, 500))
	f.Add(requestBody(f, wire.OpBatch, []any{[]any{wire.OpLSort, "big"}, []any{wire.OpDItems, "bigd"}}))
	f.Add([]byte{0x83, 0x01, 0x10, 0x9f, 0x82, 0x18, 0x35})
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > offLoopFrame {
			return
		}
		s.slowRequest(body)
	})
}
