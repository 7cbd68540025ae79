package main

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// FuzzSplitReplies: the bench's event loop splits the daemon's reply
// stream with splitReplies, arriving in pieces. Fed the same bytes cut in
// two at any point, it must see the frames wire.ReadFrame sees reading the
// stream whole: same bodies, same order, and an error exactly where
// ReadFrame finds a frame over the limit.
func FuzzSplitReplies(f *testing.F) {
	frame := func(id uint64, v any) []byte {
		res, _ := wire.Marshal(v)
		return wire.AppendReply(nil, id, res)
	}
	f.Add(append(frame(1, "PONG"), frame(2, 7)...), uint16(3))
	f.Add(wire.AppendError(nil, 0, wire.Errorf(wire.CodeShuttingDown, "bye")), uint16(0))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0xf6}, uint16(5))
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 1, 2}, uint16(1))
	f.Add(append(frame(9, []byte("abc")), 0, 0, 0), uint16(100))
	f.Fuzz(func(t *testing.T, stream []byte, cut uint16) {
		// What ReadFrame sees.
		var want [][]byte
		var wantErr bool
		r := bytes.NewReader(stream)
		for {
			body, err := wire.ReadFrame(r, nil, maxBenchReply)
			if errors.Is(err, wire.ErrEmptyFrame) {
				want = append(want, []byte{})
				continue
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			if err != nil {
				wantErr = true
				break
			}
			want = append(want, body)
		}
		// What splitReplies sees, the stream arriving in two reads.
		var got [][]byte
		collect := func(body []byte) { got = append(got, bytes.Clone(body)) }
		k := 0
		if len(stream) > 0 {
			k = int(cut) % (len(stream) + 1)
		}
		var buf []byte
		var err error
		for _, piece := range [][]byte{stream[:k], stream[k:]} {
			buf = append(buf, piece...)
			if buf, err = splitReplies(buf, collect); err != nil {
				break
			}
			buf = bytes.Clone(buf)
		}
		if (err != nil) != wantErr {
			t.Fatalf("splitReplies error %v; ReadFrame error %v", err, wantErr)
		}
		if len(got) != len(want) {
			t.Fatalf("splitReplies saw %d frames, ReadFrame %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("frame %d: %x, ReadFrame: %x", i, got[i], want[i])
			}
		}
	})
}
