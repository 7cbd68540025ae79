package wire

import (
	"bytes"
	"math"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// libraryItemLen is the length of the first item of b as the CBOR library
// finds it, or -1 when the library refuses it.
func libraryItemLen(b []byte) int {
	var first cbor.RawMessage
	rest, err := decMode.UnmarshalFirst(b, &first)
	if err != nil {
		return -1
	}
	return len(b) - len(rest)
}

// checkWalker: the walker reads b as the library does, and reads a string
// as it reads the same bytes.
func checkWalker(t *testing.T, b []byte) {
	t.Helper()
	definite, any := ItemLen(b), itemLen(b, true)
	if s := ItemLen(string(b)); s != definite {
		t.Fatalf("ItemLen(%x): %d on bytes, %d on a string", b, definite, s)
	}
	if want := libraryItemLen(b); want >= 0 {
		if any != want {
			t.Fatalf("itemLen(%x, indef) = %d, the library's item is %d bytes", b, any, want)
		}
		if definite != -1 && definite != want {
			t.Fatalf("ItemLen(%x) = %d, the library's item is %d bytes", b, definite, want)
		}
	}
	m1, a1, n1, ok1 := ReadHead(b)
	m2, a2, n2, ok2 := ReadHead(string(b))
	if m1 != m2 || a1 != a2 || n1 != n2 || ok1 != ok2 {
		t.Fatalf("ReadHead(%x) differs on bytes and on a string", b)
	}
}

var walkerSeeds = [][]byte{
	{0x00}, {0x18, 0x18}, {0x19, 0x01, 0x00}, {0x1b, 1, 2, 3, 4, 5, 6, 7, 8}, {0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	{0x63, 'a', 'b', 'c'}, {0x7f, 0x61, 'a', 0x61, 'b', 0xff}, {0x5f, 0x41, 1, 0xff},
	{0x83, 1, 0x82, 2, 3, 0xa1, 0x61, 'k', 0xf6}, {0x9f, 1, 0x9f, 0xff, 0xff}, {0xbf, 0x61, 'a', 1, 0xff},
	{0xc2, 0x49, 1, 0, 0, 0, 0, 0, 0, 0, 0}, {0xd9, 0xd9, 0xf7, 0x80}, {0xf9, 0x3c, 0x00}, {0xfa, 0x7f, 0x80, 0, 0},
	{0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}, {0xf4}, {0xf7}, {0xf8, 0x20},
	// Truncated, reserved, stray break, absurd counts.
	{0x19, 0x01}, {0x1c}, {0xff}, {0x62, 'a'}, {0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	{0xbb, 0x80, 0, 0, 0, 0, 0, 0, 0}, {0x9f, 0x01}, {0xc1}, {},
}

func TestWalker(t *testing.T) {
	for _, b := range walkerSeeds {
		checkWalker(t, b)
	}
	// A map claiming 2^63 pairs: doubling the count must not wrap to 0.
	if n := ItemLen([]byte{0xbb, 0x80, 0, 0, 0, 0, 0, 0, 0}); n != -1 {
		t.Fatalf("a map of 2^63 pairs and no bytes: ItemLen = %d", n)
	}
	if n := ItemLen([]byte{0x9f, 0xff}); n != -1 {
		t.Fatalf("ItemLen of an indefinite-length array = %d, want -1", n)
	}
	if n := itemLen([]byte{0x9f, 0xff}, true); n != 2 {
		t.Fatalf("itemLen of an empty indefinite-length array = %d, want 2", n)
	}
}

// FuzzItemLen: the walker never panics on any bytes, agrees with the CBOR
// library wherever the library accepts the item, and reads strings as it
// reads byte slices.
func FuzzItemLen(f *testing.F) {
	for _, b := range walkerSeeds {
		f.Add(b)
	}
	f.Fuzz(checkWalker)
}

// halfToFloat is the decoder the daemon's store had before it used
// x448/float16: ItemFloat must agree with it on every half.
func halfToFloat(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	frac := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(frac, -24)
	case 0x1f:
		if frac != 0 {
			return math.NaN()
		}
		return sign * math.Inf(1)
	}
	return sign * math.Ldexp(frac+1024, exp-25)
}

func TestItemFloat(t *testing.T) {
	for h := range 1 << 16 {
		raw := []byte{0xf9, byte(h >> 8), byte(h)}
		got, ok := ItemFloat(raw)
		if !ok {
			t.Fatalf("ItemFloat(%x) refused", raw)
		}
		var lib float64
		if err := Unmarshal(raw, &lib); err != nil {
			t.Fatal(err)
		}
		for _, want := range []float64{halfToFloat(uint16(h)), lib} {
			if math.IsNaN(want) != math.IsNaN(got) || !math.IsNaN(got) && math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("ItemFloat(%x) = %v, want %v", raw, got, want)
			}
		}
		if s, _ := ItemFloat(string(raw)); math.Float64bits(s) != math.Float64bits(got) {
			t.Fatalf("ItemFloat(%x) differs on a string", raw)
		}
	}
	for _, v := range []float64{1.5, -0.0, math.Inf(-1), 1e300, float64(float32(0.1))} {
		raw := mustMarshal(t, v)
		if got, ok := ItemFloat(raw); !ok || math.Float64bits(got) != math.Float64bits(v) {
			t.Errorf("ItemFloat(%x) = %v, %v; want %v", raw, got, ok, v)
		}
	}
	for _, raw := range [][]byte{{0xf4}, {0xf8, 0x20}, {0x01}, {0xf9, 0x3c}, {0xfa, 0, 0, 0, 0, 0}} {
		if _, ok := ItemFloat(raw); ok {
			t.Errorf("ItemFloat(%x) accepted", raw)
		}
	}
}

func TestItemInt(t *testing.T) {
	for _, v := range []int64{0, 23, 24, -1, -24, -25, 1 << 40, math.MaxInt64, math.MinInt64} {
		raw := mustMarshal(t, v)
		if got, ok := ItemInt(raw); !ok || got != v {
			t.Errorf("ItemInt(%x) = %d, %v; want %d", raw, got, ok, v)
		}
	}
	// Non-shortest heads are integers too; out of range, bignums and
	// trailing bytes are not.
	if got, ok := ItemInt([]byte{0x39, 0x00, 0x05}); !ok || got != -6 {
		t.Errorf("ItemInt(39 0005) = %d, %v", got, ok)
	}
	for _, raw := range [][]byte{mustMarshal(t, uint64(math.MaxInt64)+1), {0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0}, {0xc2, 0x41, 1}, {0x01, 0x01}, {0xf5}} {
		if got, ok := ItemInt(raw); ok {
			t.Errorf("ItemInt(%x) = %d, want not ok", raw, got)
		}
	}
}

// TestReplyHead: the id, the code and the rest, or not ok.
func TestReplyHead(t *testing.T) {
	body := AppendReply(nil, 1<<40, []byte{0x63, 'a', 'b', 'c'})[FrameHeaderSize:]
	id, code, rest, ok := ReplyHead(body)
	if !ok || id != 1<<40 || code != 0 || !bytes.Equal(rest, []byte{0x63, 'a', 'b', 'c'}) {
		t.Fatalf("ReplyHead(%x) = %d, %d, %x, %v", body, id, code, rest, ok)
	}
	// A code beyond 16 bits is read as sent (PeekReply refuses it).
	big := []byte{0x83, 1, 0x1a, 0, 1, 0, 0, 0x60}
	if _, code, _, ok := ReplyHead(big); !ok || code != 1<<16 {
		t.Fatalf("ReplyHead(%x) = code %d, %v", big, code, ok)
	}
	if _, _, ok := PeekReply(big); ok {
		t.Fatalf("PeekReply(%x) accepted a code beyond 16 bits", big)
	}
	for _, bad := range [][]byte{{0x83, 1, 0}, {0x83, 0x18, 5, 0}, {0x83, 0x61, 'a', 0, 0xf6}, {0x82, 1, 0, 0xf6}} {
		if _, _, _, ok := ReplyHead(bad); ok {
			t.Errorf("ReplyHead(%x) accepted", bad)
		}
	}
}

// TestShortestHeads: simpleCanonical's shortest-form check agrees with
// HeadLen on every head length, at the edges where a longer head starts
// to be needed.
func TestShortestHeads(t *testing.T) {
	for _, v := range []uint64{0, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, math.MaxUint64} {
		for _, n := range []int{1, 2, 3, 5, 9} {
			var raw []byte
			switch n {
			case 1:
				if v >= 24 {
					continue
				}
				raw = []byte{byte(v)}
			case 2:
				if v > math.MaxUint8 {
					continue
				}
				raw = []byte{0x18, byte(v)}
			case 3:
				if v > math.MaxUint16 {
					continue
				}
				raw = []byte{0x19, byte(v >> 8), byte(v)}
			case 5:
				if v > math.MaxUint32 {
					continue
				}
				raw = []byte{0x1a, byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
			case 9:
				raw = []byte{0x1b, byte(v >> 56), byte(v >> 48), byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
			}
			if got, want := simpleCanonical(raw, true), n == HeadLen(v); got != want {
				t.Errorf("simpleCanonical(%x) = %v, want %v", raw, got, want)
			}
		}
	}
}
