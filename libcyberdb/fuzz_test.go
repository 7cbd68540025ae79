package libcyberdb

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// FuzzDecodeReply feeds the client's reply decoder, and its fast paths
// for strings and ints, arbitrary bytes: they never panic and always
// agree with the CBOR library's decoding when both succeed.
func FuzzDecodeReply(f *testing.F) {
	for _, res := range [][]byte{{0xf6}, {0x63, 'a', 'b', 'c'}, {0x19, 0x01, 0x00}, {0x78, 0x01, 'x'}, {0x61, 0xff}, {0x1b, 0x40, 0, 0, 0, 0, 0, 0, 1}} {
		f.Add(wire.AppendReply(nil, 3, res)[wire.FrameHeaderSize:])
	}
	f.Add(wire.AppendError(nil, 9, wire.Errorf(wire.CodeTypeError, "no"))[wire.FrameHeaderSize:])
	f.Add([]byte{0x83, 0x01, 0x00, 0x61})
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := decodeReply(body)
		if r, werr := wire.DecodeReply(body); werr == nil && r.Code == wire.CodeOK && err == nil {
			if !bytes.Equal(res, r.Result) {
				t.Fatalf("decodeReply result %x, wire.DecodeReply %x", res, r.Result)
			}
		}
		var s, s2 string
		if unmarshal(body, &s) == nil && wire.Unmarshal(body, &s2) == nil && s != s2 {
			t.Fatalf("string: fast %q, library %q", s, s2)
		}
		if v, ok := decodeFast[string](body); ok && wire.Unmarshal(body, &s2) == nil && v != s2 {
			t.Fatalf("decodeFast string %q, library %q", v, s2)
		}
		var n, n2 int
		if unmarshal(body, &n) == nil && wire.Unmarshal(body, &n2) == nil && n != n2 {
			t.Fatalf("int: fast %d, library %d", n, n2)
		}
		if v, ok := decodeFast[int](body); ok && wire.Unmarshal(body, &n2) == nil && v != n2 {
			t.Fatalf("decodeFast int %d, library %d", v, n2)
		}
	})
}

// FuzzDecodeError feeds the typed-read error path arbitrary results for a
// few handle types: it never panics, always gives a *DecodeError that
// matches ErrDecode, and its message stays short whatever the input.
func FuzzDecodeError(f *testing.F) {
	enc := func(v any) []byte { b, _ := wire.Marshal(v); return b }
	f.Add(enc([]any{[]any{"a", 1}, []any{"b", "x"}}))
	f.Add(enc(map[string]any{"k": []any{1, "two"}}))
	f.Add(enc([]any{1, 2, map[string]int{"deep": 3}}))
	f.Add(enc([]any{0, []any{[]any{"k", []any{1, "v"}}}}))
	f.Add([]byte{0xa2, 0xd9, 0xd9, 0xf7, 0x61, 'k', 0x01, 0x61, 'k', 0x02})
	f.Add([]byte{0x82, 0x01})
	f.Add(enc(strings.Repeat("x", 200)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		check := func(into any) {
			err := wire.Unmarshal(raw, into)
			if err == nil {
				return
			}
			derr := decodeErr(wire.OpDItems, strings.Repeat("t", 255), []byte{0x61, 'k'}, 1, raw, into, err)
			var de *DecodeError
			if !errors.As(derr, &de) || !errors.Is(derr, ErrDecode) {
				t.Fatalf("decodeErr(%x) = %T %v", raw, derr, derr)
			}
			if n := len(derr.Error()); n > 1000 {
				t.Fatalf("decodeErr(%x): %d characters: %.300s", raw, n, derr.Error())
			}
		}
		check(new([]Item[string, int64]))
		check(new(map[string][]int))
		check(new([]int))
		check(new(struct {
			_     struct{} `cbor:",toarray"`
			Next  uint64
			Items []Item[int, []string]
		}))
		check(new(string))
	})
}

// FuzzPushFrame feeds the reader's push-frame recogniser and the blocking
// result decoder arbitrary bodies: they never panic; a frame taken as a
// push message is [0, 0, map] whose "push" is text, and its msg is that
// map.
func FuzzPushFrame(f *testing.F) {
	enc := func(v any) []byte { b, _ := wire.Marshal(v); return b }
	f.Add(enc([]any{0, 0, map[string]any{"push": "invalidate", "keys": []string{"a"}}}))
	f.Add(enc([]any{0, 0, map[string]any{"push": 7}}))
	f.Add(enc([]any{0, 0, map[string]any{"kind": "x"}}))
	f.Add(enc([]any{0, 16, "shutting down"}))
	f.Add(enc([]any{3, 0, []any{"q", 1}}))
	f.Add([]byte{0x83, 0x00, 0x00, 0xa1})
	f.Add(enc([]any{0, 0, map[string]any{"push": "message", "sub": 1, "channel": "c", "data": "d"}}))
	// "push" and "channel" with longer heads than needed: the same keys.
	f.Add([]byte{0x83, 0, 0, 0xa3, 0x78, 4, 'p', 'u', 's', 'h', 0x67, 'm', 'e', 's', 's', 'a', 'g', 'e',
		0x79, 0, 7, 'c', 'h', 'a', 'n', 'n', 'e', 'l', 0x61, 'c', 0x64, 'd', 'a', 't', 'a', 0x01})
	f.Fuzz(func(t *testing.T, body []byte) {
		if kind, msg, ok := pushMessage(body); ok {
			r, err := wire.DecodeReply(body)
			if err != nil || r.ID != 0 || r.Err != nil || !bytes.Equal(r.Result, msg) {
				t.Fatalf("pushMessage(%x) = %q, %x; wire.DecodeReply: %+v, %v", body, kind, msg, r, err)
			}
			var m map[string]any
			if wire.Unmarshal(msg, &m) == nil {
				if k, isText := m["push"].(string); !isText || k != kind {
					t.Fatalf("pushMessage(%x) kind %q, map says %v", body, kind, m["push"])
				}
			}
			// The subscriber's second pass walks a copy without checking
			// it again: it must agree with a decoding of the whole map.
			pm, ok := parseMessage(append(wire.Raw(nil), msg...))
			var raw map[string]wire.Raw
			if ok && wire.Unmarshal(msg, &raw) == nil {
				ch, _ := wire.ItemText(raw["channel"])
				if pm.Channel != ch || !bytes.Equal(pm.Data, raw["data"]) {
					t.Fatalf("parseMessage(%x) = %q, %x; the map has %q, %x", msg, pm.Channel, pm.Data, ch, raw["data"])
				}
			}
		}
		// The blocking result decoder on arbitrary results.
		cl := newCall(wire.OpLBPop)
		_, _, _ = decodePair[int](cl, "", body)
		_, _, _ = decodePair[wire.Raw](cl, "q", body)
		_, _, _ = decodePair[map[string][]int](cl, "", body)
		cl.release()
	})
}
