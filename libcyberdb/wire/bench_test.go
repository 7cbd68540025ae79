package wire

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// The benchmarks of the hand-written hot paths: the item walker, the frame
// splitter, canonicalisation and request decoding. They exist so that the
// speed these paths were written for stays measured (benchstat before and
// after a change); TestHotPathsDoNotAllocate keeps them allocation-free.

// benchBodies are request bodies as clients send them.
func benchBodies(tb testing.TB) map[string][]byte {
	body := func(op Op, args ...any) []byte {
		f, err := AppendRequest(nil, 1234, op, args...)
		if err != nil {
			tb.Fatal(err)
		}
		return f[FrameHeaderSize:]
	}
	nested := map[string]any{
		"name": "a user", "tags": []any{"x", "y", 3, 4.5, true, nil},
		"profile": map[string]any{"age": 42, "langs": []any{"go", "python"}, "score": 1e100},
	}
	return map[string][]byte{
		"get":    body(OpDGet, "t", "key:000000000001"),
		"set":    body(OpDSet, "t", "key:000000000001", strings.Repeat("v", 32)),
		"nested": body(OpDSet, "t", "key:000000000001", nested),
	}
}

// BenchmarkDecodeRequest is what the daemon does with each request before
// the store sees it: validate and split the body, read the table name, and
// put the key (and the value) in canonical form.
func BenchmarkDecodeRequest(b *testing.B) {
	for _, name := range []string{"get", "set", "nested"} {
		body := benchBodies(b)[name]
		b.Run(name, func(b *testing.B) {
			var items []Raw
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				items = decodeAsDaemon(b, body, items)
			}
		})
	}
}

// decodeAsDaemon decodes body into items, reads its table name and puts
// its other arguments in canonical form; it returns items for reuse.
func decodeAsDaemon(tb testing.TB, body []byte, items []Raw) []Raw {
	req, items, err := DecodeRequestInto(body, items)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := req.Args.Text(0); err != nil {
		tb.Fatal(err)
	}
	for i := 1; i < req.Args.Len(); i++ {
		if _, err := req.Args.Value(i); err != nil {
			tb.Fatal(err)
		}
	}
	return items
}

// BenchmarkWalk splits a request body that has passed the well-formedness
// check: the walker alone.
func BenchmarkWalk(b *testing.B) {
	for _, name := range []string{"get", "nested"} {
		body := benchBodies(b)[name]
		if err := Wellformed(body); err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			items := make([]Raw, 0, 8)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				items = splitWellformed(body, items[:0])
			}
		})
	}
}

// BenchmarkItemLen steps over a canonical nested value, as the daemon's
// store does over its entries (strings) and the persistence over its
// records (bytes).
func BenchmarkItemLen(b *testing.B) {
	raw := benchBodies(b)["nested"]
	b.Run("bytes", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if ItemLen(raw) != len(raw) {
				b.Fatal("not one item")
			}
		}
	})
	s := string(raw)
	b.Run("string", func(b *testing.B) {
		b.SetBytes(int64(len(s)))
		for b.Loop() {
			if ItemLen(s) != len(s) {
				b.Fatal("not one item")
			}
		}
	})
}

// BenchmarkCanonical: values already canonical (the common case, a fast
// path), and values the daemon must rewrite.
func BenchmarkCanonical(b *testing.B) {
	cases := []struct {
		name string
		raw  []byte
	}{
		{"text", mustMarshal(b, strings.Repeat("v", 32))},
		{"int", mustMarshal(b, 123456789)},
		{"map-canonical", mustMarshal(b, map[string]any{"a": 1, "b": []any{"x", 2.5}})},
		// {"b": ..., "a": 1} with a non-shortest head on 1: sorted and shortened.
		{"map-rewritten", []byte{0xa2, 0x61, 'b', 0x82, 0x61, 'x', 0xf9, 0x41, 0x00, 0x61, 'a', 0x18, 0x01}},
		{"float64-as-half", []byte{0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Canonical(tc.raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadFrame reads 16 pipelined frames through a bufio.Reader, as
// the client's reader goroutine does.
func BenchmarkReadFrame(b *testing.B) {
	var stream []byte
	for range 16 {
		stream = AppendReply(stream, 7, mustMarshal(b, strings.Repeat("v", 32)))
	}
	src := bytes.NewReader(stream)
	br := bufio.NewReaderSize(src, 64<<10)
	buf := make([]byte, 0, 512)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(stream)
		br.Reset(src)
		for range 16 {
			body, err := ReadFrame(br, buf, DefaultMaxFrame)
			if err != nil {
				b.Fatal(err)
			}
			buf = body[:0]
		}
	}
}

// BenchmarkSplitFrame splits 16 pipelined requests off a buffer, as an
// event loop does after a read.
func BenchmarkSplitFrame(b *testing.B) {
	var stream []byte
	for i := range 16 {
		stream, _ = AppendRequest(stream, uint64(i), OpDGet, "t", "key:000000000001")
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		rest := stream
		for len(rest) > 0 {
			body, r, err := SplitFrame(rest, DefaultMaxFrame)
			if err != nil || body == nil {
				b.Fatal(err)
			}
			rest = r
		}
	}
}
