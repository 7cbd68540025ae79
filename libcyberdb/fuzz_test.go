package libcyberdb

import (
	"bytes"
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
