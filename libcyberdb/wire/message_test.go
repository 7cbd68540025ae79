package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRequestRoundTrip(t *testing.T) {
	f, err := AppendRequest(nil, 42, OpDSet, "users", map[string]any{"a": 1}, []any{1, "x", nil})
	if err != nil {
		t.Fatal(err)
	}
	body, err := ReadFrame(bytes.NewReader(f), nil, DefaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	req, err := DecodeRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	if req.ID != 42 || req.Op != OpDSet || req.Args.Len() != 3 {
		t.Fatalf("got %+v", req)
	}
	if s, err := req.Args.Text(0); err != nil || s != "users" {
		t.Fatalf("Text(0) = %q, %v", s, err)
	}
	if _, err := req.Args.Int(0); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("Int of text: %v", err)
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	deep := strings.Repeat("\x81", MaxNesting+2) + "\x01"
	for _, tc := range []struct {
		name   string
		body   []byte
		code   Code
		wantID uint64
	}{
		{"not cbor", []byte{0xff}, CodeBadRequest, 0},
		{"trailing bytes keeps id", []byte{0x82, 1, 2, 3}, CodeBadRequest, 1},
		{"not an array", mustMarshal(t, "hi"), CodeBadRequest, 0},
		{"too short keeps id", mustMarshal(t, []any{1}), CodeBadRequest, 1},
		{"op beyond 16 bits is unknown", mustMarshal(t, []any{3, uint64(1) << 40}), CodeUnknownOp, 3},
		{"deep value keeps id", append([]byte{0x83, 0x18, 0x2a, 2}, append(bytes.Repeat([]byte{0x81}, MaxNesting+1), 1)...), CodeTooLarge, 42},
		{"bignum id refused", []byte{0x82, 0xc2, 0x41, 0x01, 0x02}, CodeBadRequest, 0},
		{"bad id", mustMarshal(t, []any{"x", 1}), CodeBadRequest, 0},
		{"bad op keeps id", mustMarshal(t, []any{7, "dget"}), CodeBadRequest, 7},
		{"too deep", []byte(deep), CodeTooLarge, 0},
	} {
		req, err := DecodeRequest(tc.body)
		var we *Error
		if !errors.As(err, &we) || we.Code != tc.code {
			t.Errorf("%s: err = %v, want code %s", tc.name, err, tc.code)
		}
		if req.ID != tc.wantID {
			t.Errorf("%s: id = %d, want %d", tc.name, req.ID, tc.wantID)
		}
	}
}

// Validity (not well-formedness) problems inside arguments are found when
// the argument is read, with a message naming the op and the argument.
func TestArgValidity(t *testing.T) {
	req, err := DecodeRequest([]byte{0x84, 1, 21, 0xa2, 0x61, 'a', 1, 0x61, 'a', 2, 0x61, 0xff})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := req.Args.Value(0); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "dset: argument 1") {
		t.Errorf("duplicate map key: %v", err)
	}
	if _, err := req.Args.Text(1); !errors.Is(err, ErrBadRequest) {
		t.Errorf("invalid UTF-8: %v", err)
	}
	if _, err := req.Args.Value(1); !errors.Is(err, ErrBadRequest) {
		t.Errorf("invalid UTF-8 value: %v", err)
	}
	// A flat request (the decoder's fast path checks its text, and Text
	// and Value then trust it): invalid UTF-8 still fails both.
	req, err = DecodeRequest([]byte{0x84, 1, 21, 0x61, 'a', 0x62, 'b', 0xff})
	if err != nil {
		t.Fatal(err)
	}
	if req.Args.textChecked {
		t.Error("a request with invalid UTF-8 text is marked checked")
	}
	if _, err := req.Args.Text(1); !errors.Is(err, ErrBadRequest) {
		t.Errorf("flat, invalid UTF-8: %v", err)
	}
	if _, err := req.Args.Value(1); !errors.Is(err, ErrBadRequest) {
		t.Errorf("flat, invalid UTF-8 value: %v", err)
	}
	req, err = DecodeRequest([]byte{0x84, 1, 21, 0x61, 'a', 0x62, 0xc3, 0xa9})
	if err != nil || !req.Args.textChecked {
		t.Fatalf("flat, valid: %v, checked %v", err, req.Args.textChecked)
	}
	if s, err := req.Args.Text(1); err != nil || s != "é" {
		t.Errorf("flat, valid text: %q, %v", s, err)
	}
	if v, err := req.Args.Value(1); err != nil || string(v) != "\x62\xc3\xa9" {
		t.Errorf("flat, valid value: %x, %v", v, err)
	}
}

func TestReplyRoundTrip(t *testing.T) {
	f := AppendReply(nil, 9, mustMarshal(t, []any{1, 2}))
	f = AppendError(f, 10, Errorf(CodeKeyNotFound, "key %q not found", "k"))
	r := bytes.NewReader(f)
	b1, _ := ReadFrame(r, nil, 1<<20)
	rep, err := DecodeReply(b1)
	if err != nil || rep.ID != 9 || rep.Code != CodeOK || !bytes.Equal(rep.Result, mustMarshal(t, []any{1, 2})) {
		t.Fatalf("ok reply: %+v %v", rep, err)
	}
	b2, _ := ReadFrame(r, nil, 1<<20)
	rep, err = DecodeReply(b2)
	if err != nil || rep.ID != 10 || !errors.Is(rep.Err, ErrKeyNotFound) || errors.Is(rep.Err, ErrNoSuchTable) {
		t.Fatalf("error reply: %+v %v", rep, err)
	}
	if rep.Err.Error() != `key_not_found: key "k" not found` {
		t.Fatalf("message: %q", rep.Err.Error())
	}
}

func TestCanonical(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in, out []byte
	}{
		{"small int", []byte{0x01}, []byte{0x01}},
		{"non-shortest int", []byte{0x18, 0x01}, []byte{0x01}},
		{"uint64 max", []byte{0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []byte{0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"negative", []byte{0x38, 0x63}, []byte{0x38, 0x63}},
		{"float64 1.5 -> float16", []byte{0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}, []byte{0xf9, 0x3e, 0x00}},
		{"float 1.0 stays float", []byte{0xfa, 0x3f, 0x80, 0, 0}, []byte{0xf9, 0x3c, 0x00}},
		{"indefinite text", []byte{0x7f, 0x61, 'a', 0x61, 'b', 0xff}, []byte{0x62, 'a', 'b'}},
		{"indefinite array", []byte{0x9f, 1, 2, 0xff}, []byte{0x82, 1, 2}},
		{"map sorted", []byte{0xa2, 0x61, 'b', 1, 0x61, 'a', 2}, []byte{0xa2, 0x61, 'a', 2, 0x61, 'b', 1}},
		{"null", []byte{0xf6}, []byte{0xf6}},
		{"text", []byte{0x62, 'h', 'i'}, []byte{0x62, 'h', 'i'}},
		{"bytes", []byte{0x42, 0, 1}, []byte{0x42, 0, 1}},
		{"tag 1 kept", []byte{0xc1, 0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}, []byte{0xc1, 0xf9, 0x3e, 0x00}},
		{"tag 0 kept", append([]byte{0xc0, 0x74}, "2020-01-01T00:00:00Z"...), append([]byte{0xc0, 0x74}, "2020-01-01T00:00:00Z"...)},
		{"other tag, content canonical", []byte{0xd8, 0x20, 0x9f, 0x18, 0x05, 0xff}, []byte{0xd8, 0x20, 0x81, 0x05}},
		{"bignum that fits", []byte{0xc2, 0x42, 0x00, 0x01}, []byte{0x01}},
		{"negative bignum that fits", []byte{0xc3, 0x41, 0x00}, []byte{0x20}},
		{"bignum beyond uint64 stays", []byte{0xc2, 0x49, 1, 0, 0, 0, 0, 0, 0, 0, 0}, []byte{0xc2, 0x49, 1, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"nested map keys sorted", []byte{0x81, 0xa2, 0x18, 0x02, 0xf6, 0x01, 0xf6}, []byte{0x81, 0xa2, 0x01, 0xf6, 0x02, 0xf6}},
		{"simple value", []byte{0xf0}, []byte{0xf0}},
		{"NaN", []byte{0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1}, []byte{0xf9, 0x7e, 0x00}},
	} {
		got, err := Canonical(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !bytes.Equal(got, tc.out) {
			t.Errorf("%s: Canonical(%x) = %x, want %x", tc.name, tc.in, got, tc.out)
		}
	}
	for _, bad := range [][]byte{
		{}, {0x61}, {0x61, 0xff}, {0x1c}, {0xa2, 1, 1, 1, 2},
		{0xa2, 0x01, 0x01, 0x18, 0x01, 0x02}, // 1 and 1 in a longer head: the same key
		{0x82, 0x01, 0x61, 0xff},             // invalid UTF-8 inside an array
		{0xa1, 0x61, 0xff, 0x01},             // ... and as a map key
	} {
		if _, err := Canonical(bad); err == nil {
			t.Errorf("Canonical(%x) accepted malformed input", bad)
		}
	}
}

func TestPairsKeepOrder(t *testing.T) {
	// A map encoded with keys out of canonical order: Pairs must keep it.
	m := []byte{0xa3, 0x61, 'z', 1, 0x61, 'a', 2, 0x61, 'm', 3}
	indef := []byte{0xbf, 0x61, 'z', 1, 0x61, 'a', 2, 0x61, 'm', 3, 0xff}
	pairs := mustMarshal(t, [][]any{{"z", 1}, {"a", 2}, {"m", 3}})
	for _, in := range [][]byte{m, indef, pairs} {
		var keys []string
		err := Pairs(in, func(k, v Raw) error {
			var s string
			if err := Unmarshal(k, &s); err != nil {
				return err
			}
			keys = append(keys, s)
			return nil
		})
		if err != nil || strings.Join(keys, "") != "zam" {
			t.Fatalf("Pairs(%x) = %v, %v", in, keys, err)
		}
	}
	for _, bad := range [][]byte{{0x01}, {0xa1, 1}, mustMarshal(t, []any{[]any{1}}), {0xa2, 1, 1, 1, 2}} {
		if err := Pairs(bad, func(k, v Raw) error { return nil }); err == nil {
			t.Errorf("Pairs(%x) accepted bad input", bad)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	seed := func(op Op, args ...any) []byte {
		b, _ := AppendRequest(nil, 1, op, args...)
		return b[FrameHeaderSize:]
	}
	f.Add(seed(OpHello, 1, map[string]any{}))
	f.Add(seed(OpDSet, "t", "k", []any{1, 2.5, "x", nil, true}))
	f.Add(seed(OpDUpdate, "t", map[any]any{"a": 1, 2: []byte{1}}))
	f.Add(seed(OpLSlice, "t", nil, -1, -2))
	f.Add([]byte{0x9f, 1, 2, 0x7f, 0x61, 'a', 0xff, 0xff})
	f.Add([]byte{0x83, 1, 21, 0xbf, 0x61, 'z', 1, 0xff})
	// Tag 55799 at several depths, undefined, bignum and tagged indices.
	f.Add([]byte{0x84, 1, 0x18, 46, 0x61, 't', 0x82, 0xd9, 0xd9, 0xf7, 0x61, 'b', 0x81, 0xd9, 0xd9, 0xf7, 0xf7})
	f.Add([]byte{0x85, 1, 0x18, 43, 0x61, 't', 0xf7, 0xc2, 0x41, 0x01, 0xd9, 0xd9, 0xf7, 0x00})
	f.Add([]byte{0xd9, 0xd9, 0xf7, 0x82, 1, 2})
	f.Add(seed(OpLSetSlice, "t", nil, -1, 2, []any{1, "x"}))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRequest(body)
		if op, ok := PeekRequestOp(body); ok && err == nil && op != req.Op {
			t.Fatalf("PeekRequestOp(%x) = %s, DecodeRequest says %s", body, op, req.Op)
		}
		if err != nil {
			if AsError(err).Code == CodeInternal {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		for i := range req.Args.Items {
			_, _ = req.Args.Text(i)
			_, _ = req.Args.Int(i)
			_, _, _ = req.Args.OptInt(i)
			_, _ = req.Args.Uint(i)
			_, _ = req.Args.Bool(i)
			_ = Pairs(req.Args.Items[i], func(k, v Raw) error { return nil })
			if items, err := SplitArray(req.Args.Items[i]); err == nil {
				for _, it := range items {
					if err := Wellformed(it); err != nil {
						t.Fatalf("SplitArray(%x) gave the malformed item %x", req.Args.Items[i], it)
					}
				}
			}
			_, _ = DecodeNumber(req.Args.Items[i])
			c, err := req.Args.Value(i)
			if err != nil {
				continue
			}
			c2, err := Canonical(c)
			if err != nil || !bytes.Equal(c, c2) {
				t.Fatalf("Canonical not idempotent on %x: %x, %v", c, c2, err)
			}
		}
	})
}

func TestPeekReply(t *testing.T) {
	for _, tc := range []struct {
		frame []byte
		id    uint64
		code  Code
	}{
		{AppendReply(nil, 7, []byte{0xf6}), 7, CodeOK},
		{AppendReply(nil, 1<<40, []byte{0x01}), 1 << 40, CodeOK},
		{AppendError(nil, 300, Errorf(CodeKeyNotFound, "x")), 300, CodeKeyNotFound},
	} {
		id, code, ok := PeekReply(tc.frame[FrameHeaderSize:])
		if !ok || id != tc.id || code != tc.code {
			t.Errorf("PeekReply(%x) = %d, %s, %v", tc.frame, id, code, ok)
		}
	}
	for _, bad := range [][]byte{{}, {0x83}, {0x82, 1, 0}, {0x83, 0x61, 'a', 0}, {0x83, 1, 0x61}} {
		if _, _, ok := PeekReply(bad); ok {
			t.Errorf("PeekReply(%x) accepted", bad)
		}
	}
}

func TestPeekRequestOp(t *testing.T) {
	for _, tc := range []struct {
		id uint64
		op Op
	}{{1, OpSave}, {1 << 40, OpDGet}, {23, OpPing}, {24, OpHello}} {
		f, _ := AppendRequest(nil, tc.id, tc.op)
		if op, ok := PeekRequestOp(f[FrameHeaderSize:]); !ok || op != tc.op {
			t.Errorf("PeekRequestOp(%x) = %s, %v; want %s", f, op, ok, tc.op)
		}
	}
	for _, bad := range [][]byte{{}, {0x82}, {0x81, 1, 4}, {0x82, 1, 0x61}, {0x83, 0x61, 'a', 4}, {0x82, 1, 0x19, 1, 0}, {0x9f, 1, 4, 0xff}} {
		if op, ok := PeekRequestOp(bad); ok {
			t.Errorf("PeekRequestOp(%x) = %s, want not ok", bad, op)
		}
	}
}

// FuzzDecodeReply: what a client reads from a daemon (or from anything
// that answers on its address) never panics, and the no-reflection peek
// agrees with the full decoder.
func FuzzDecodeReply(f *testing.F) {
	f.Add(AppendReply(nil, 1, []byte{0xf6})[FrameHeaderSize:])
	f.Add(AppendReply(nil, 1<<40, []byte{0x82, 0x01, 0x61, 'x'})[FrameHeaderSize:])
	f.Add(AppendError(nil, 7, Errorf(CodeKeyNotFound, "key"))[FrameHeaderSize:])
	f.Add([]byte{0x83, 0xf6, 0x0b, 0x60})
	f.Add([]byte{0x83, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeReply(body)
		id, code, ok := PeekReply(body)
		if err != nil || !ok {
			return
		}
		if id != r.ID || code != r.Code {
			t.Fatalf("PeekReply says id %d code %d, DecodeReply id %d code %d", id, code, r.ID, r.Code)
		}
		if (code == CodeOK) != (r.Err == nil) {
			t.Fatalf("code %d but Err %v", code, r.Err)
		}
	})
}

func TestOpTable(t *testing.T) {
	for o := range 1 << 16 {
		op := Op(o)
		i := op.info()
		if o >= len(opTable) && (op.Known() || op.IsWrite() || op.IsDict() || op.IsList()) {
			t.Fatalf("op %d beyond the table is known, a write or addresses a table", o)
		}
		if !op.Known() && (i.write || i.kind != kindNone || op.String() != fmt.Sprintf("op_%d", o)) {
			t.Fatalf("unknown op %d has flags or a name: %+v, %s", o, i, op)
		}
		if op.IsDict() && op.IsList() {
			t.Fatalf("%s is both a dict and a list op", op)
		}
	}
	if !OpDSet.IsWrite() || OpDGet.IsWrite() || !OpLAppend.IsWrite() || OpPing.IsWrite() ||
		!OpLSetSlice.IsWrite() || OpLContains.IsWrite() {
		t.Fatal("IsWrite misclassifies dset, dget, lappend, ping, lsetslice or lcontains")
	}
	if !OpDScan.IsDict() || OpDScan.IsList() || !OpLContains.IsList() || !OpLSetSlice.IsList() || OpCreateList.IsList() || OpBatch.IsDict() {
		t.Fatal("IsDict/IsList misclassify dscan, lcontains, lsetslice, create_list or batch")
	}
	if got := len(Ops()); got != 79 { // 66, 80-85 (issue 16) and 90-96 (issue 17)
		t.Fatalf("Ops() has %d ops, want 79", got)
	}
	for o := range Op(256) {
		if (o.Grows() && !o.IsWrite()) || (o.JournalOnly() && !o.IsWrite()) {
			t.Fatalf("%s grows or is journal-only but is no write op", o)
		}
	}
	if !OpDSet.Grows() || OpDDel.Grows() || !OpLAppend.Grows() || OpDExpire.Grows() || !OpTimed.JournalOnly() || OpDSet.JournalOnly() {
		t.Fatal("Grows/JournalOnly misclassify dset, ddel, lappend, dexpire, timed or dset")
	}
	for _, r := range []struct{ lo, hi Op }{{69, 69}, {77, 77}, {86, 89}, {97, 99}} {
		for o := r.lo; o <= r.hi; o++ {
			if o.Known() {
				t.Fatalf("op %d is in a range reserved for later issues", o)
			}
		}
	}
}

// TestUndefinedIsPresent: only null means "left out"; undefined is a
// value, and the typed accessors refuse it like any other wrong type.
func TestUndefinedIsPresent(t *testing.T) {
	a := Args{Op: OpLSlice, Items: []Raw{{0xf6}, {0xf7}}}
	if a.Has(0) || !a.Has(1) || a.Has(2) {
		t.Fatalf("Has: null %v, undefined %v, absent %v; want false, true, false", a.Has(0), a.Has(1), a.Has(2))
	}
	if !Raw([]byte{0xf6}).IsNull() || Raw([]byte{0xf7}).IsNull() {
		t.Fatal("IsNull: null must be null, undefined must not")
	}
	if _, ok, err := a.OptInt(0); ok || err != nil {
		t.Fatalf("OptInt(null) = %v, %v; want left out", ok, err)
	}
	if _, _, err := a.OptInt(1); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("OptInt(undefined) = %v; want bad_request", err)
	}
	if _, err := a.Int(1); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("Int(undefined) = %v; want bad_request", err)
	}
	if _, err := a.Uint(1); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("Uint(undefined) = %v; want bad_request", err)
	}
	if _, err := a.Text(1); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("Text(undefined) = %v; want bad_request", err)
	}
	if _, err := a.Bool(1); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("Bool(undefined) = %v; want bad_request", err)
	}
	if v, err := a.Value(1); err != nil || string(v) != "\xf7" {
		t.Fatalf("Value(undefined) = %x, %v; want f7", v, err)
	}
}

// TestTag55799Opaque: tag 55799 is kept at every depth, like any tag.
// Before the fix, SplitArray (the library's []Raw decoding) dropped it
// from array elements, and Canonical with it.
func TestTag55799Opaque(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"d9d9f76162", "d9d9f76162"},                         // 55799("b")
		{"81d9d9f76162", "81d9d9f76162"},                     // [55799("b")]
		{"9fd9d9f76162ff", "81d9d9f76162"},                   // [_ 55799("b")]
		{"818181d9d9f76162", "818181d9d9f76162"},             // [[[55799("b")]]]
		{"d86581d9d9f76162", "d86581d9d9f76162"},             // 101([55799("b")])
		{"a1d9d9f7616b81d9d9f701", "a1d9d9f7616b81d9d9f701"}, // {55799("k"): [55799(1)]}
		{"d9d9f7c24101", "d9d9f701"},                         // 55799(2(h'01')): the bignum inside becomes 1
		{"d9d9f7d9d9f7f7", "d9d9f7d9d9f7f7"},                 // 55799(55799(undefined))
	} {
		in, _ := hex.DecodeString(c.in)
		got, err := Canonical(in)
		if err != nil || hex.EncodeToString(got) != c.want {
			t.Errorf("Canonical(%s) = %x, %v; want %s", Diagnose(in), got, err, c.want)
		}
	}
	in, _ := hex.DecodeString("82d9d9f7616201")
	items, err := SplitArray(in)
	if err != nil || len(items) != 2 || hex.EncodeToString(items[0]) != "d9d9f76162" {
		t.Fatalf("SplitArray([55799(\"b\"), 1]) = %x, %v", items, err)
	}
	in, _ = hex.DecodeString("d9d9f7820102")
	if _, err := SplitArray(in); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("SplitArray(55799([1, 2])) = %v; want bad_request: a tagged array is not an array", err)
	}
	if _, err := SplitArray([]byte{0x82, 0x01}); err == nil {
		t.Fatal("SplitArray of a truncated array succeeded")
	}
	if _, err := SplitArray([]byte{0x81, 0x01, 0x02}); err == nil {
		t.Fatal("SplitArray with trailing bytes succeeded")
	}
	body, _ := hex.DecodeString("830700d9d9f76162")
	r, err := DecodeReply(body)
	if err != nil || hex.EncodeToString(r.Result) != "d9d9f76162" {
		t.Fatalf("DecodeReply([7, 0, 55799(\"b\")]) result %x, %v", r.Result, err)
	}
}

func TestTypeName(t *testing.T) {
	for h, want := range map[string]string{
		"00": "unsigned integer", "20": "negative integer", "40": "byte string", "60": "text string",
		"80": "array", "a0": "map", "c24101": "bignum (tag 2)", "c34101": "negative bignum (tag 3)",
		"d9d9f700": "tag 55799", "f4": "bool", "f5": "bool", "f6": "null", "f7": "undefined",
		"f93c00": "float", "fb3ff8000000000000": "float", "e0": "simple value 0", "f820": "simple value 32", "": "nothing",
	} {
		b, _ := hex.DecodeString(h)
		if got := TypeName(b); got != want {
			t.Errorf("TypeName(%s) = %q, want %q", h, got, want)
		}
	}
}

// TestIntArgs: an integer argument is read by value, whatever its
// encoding: shortest or not, plain or bignum.
func TestIntArgs(t *testing.T) {
	for h, want := range map[string]int64{
		"00": 0, "17": 23, "1817": 23, "1b0000000000000005": 5, "20": -1, "3b7fffffffffffffff": math.MinInt64,
		"1b7fffffffffffffff": math.MaxInt64, "c24101": 1, "c240": 0, "c34100": -1, "c2487fffffffffffffff": math.MaxInt64,
		"c3487fffffffffffffff": math.MinInt64,
	} {
		b, _ := hex.DecodeString(h)
		got, err := Args{Op: OpLGet, Items: []Raw{b}}.Int(0)
		if err != nil || got != want {
			t.Errorf("Int(%s) = %d, %v; want %d", h, got, err, want)
		}
	}
	for _, h := range []string{"1b8000000000000000", "3b8000000000000000", "c2488000000000000000", "c349010000000000000000",
		"f93c00", "f5", "f6", "f7", "6131", "d9d9f701", "c1", "80"} {
		b, _ := hex.DecodeString(h)
		if got, err := (Args{Op: OpLGet, Items: []Raw{b}}).Int(0); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Int(%s) = %d, %v; want bad_request", h, got, err)
		}
	}
	for h, want := range map[string]uint64{"00": 0, "1bffffffffffffffff": math.MaxUint64, "c248ffffffffffffffff": math.MaxUint64} {
		b, _ := hex.DecodeString(h)
		if got, err := (Args{Op: OpDScan, Items: []Raw{b}}).Uint(0); err != nil || got != want {
			t.Errorf("Uint(%s) = %d, %v; want %d", h, got, err, want)
		}
	}
	for _, h := range []string{"20", "c34100", "c249010000000000000000", "f93c00", "f7", "d9d9f701"} {
		b, _ := hex.DecodeString(h)
		if got, err := (Args{Op: OpDScan, Items: []Raw{b}}).Uint(0); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Uint(%s) = %d, %v; want bad_request", h, got, err)
		}
	}
}

// TestPairsRepeatedKeys: a repeated key is found wherever it is, below
// and past the pairwise comparison's smallMap keys, and in whatever form
// (a text key with a longer head than needed is the same key).
func TestPairsRepeatedKeys(t *testing.T) {
	build := func(n, dupAt, dupOf int, longHead bool) []byte {
		m := []byte{0xb8, byte(n)}
		for i := range n {
			j := i
			if i == dupAt {
				j = dupOf
			}
			key := fmt.Sprintf("k%02d", j)
			if longHead && i == dupAt {
				m = append(m, 0x78, byte(len(key)))
			} else {
				m = append(m, 0x60|byte(len(key)))
			}
			m = append(m, key...)
			m = append(m, byte(i%24))
		}
		return m
	}
	for _, n := range []int{1, 2, 3, smallMap - 1, smallMap, smallMap + 1, 2*smallMap + 3} {
		calls := 0
		if err := Pairs(build(n, -1, 0, false), func(k, v Raw) error { calls++; return nil }); err != nil || calls != n {
			t.Fatalf("%d distinct keys: %v, %d calls", n, err, calls)
		}
		for dupAt := 1; dupAt < n; dupAt++ {
			for _, dupOf := range []int{0, dupAt - 1, dupAt / 2} {
				for _, long := range []bool{false, true} {
					calls := 0
					err := Pairs(build(n, dupAt, dupOf, long), func(k, v Raw) error { calls++; return nil })
					if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "repeats the key") || calls != 0 {
						t.Fatalf("%d keys, key %d repeats key %d (long head %v): err %v, %d calls; want a bad_request naming the repeat, no call", n, dupAt, dupOf, long, err, calls)
					}
				}
			}
		}
	}
}

// TestPairsAllocs: a small map of text keys is checked without allocating.
func TestPairsAllocs(t *testing.T) {
	m := []byte{0xa4, 0x64, 'p', 'u', 's', 'h', 0x67, 'm', 'e', 's', 's', 'a', 'g', 'e',
		0x67, 'c', 'h', 'a', 'n', 'n', 'e', 'l', 0x61, 'c', 0x64, 'd', 'a', 't', 'a', 0x41, 'x', 0x61, 'z', 0}
	if err := Pairs(m, func(k, v Raw) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = Pairs(m, func(k, v Raw) error { return nil }) }); n != 0 {
		t.Fatalf("Pairs of a 4-key map: %v allocations, want 0", n)
	}
}

// FuzzSplitFlat: splitFlat, the one-pass check and split of flat requests,
// accepts nothing the library's Wellformed refuses, and splits what it
// accepts exactly as splitWellformed does; and a flat request decodes the
// same as through the library.
func FuzzSplitFlat(f *testing.F) {
	enc := func(v any) []byte { b, _ := Marshal(v); return b }
	f.Add(enc([]any{1, 2, "t", "k", "v"}))
	f.Add(enc([]any{7, 20, "t", []byte{1, 2}, -5, 1.5, true, false, nil}))
	f.Add([]byte{0x83, 0x01, 0x02, 0x63, 0xff, 0xfe, 0xfd})       // invalid UTF-8
	f.Add([]byte{0x83, 0x01, 0x02, 0xf8, 0x10})                   // a 2-byte simple value under 32
	f.Add([]byte{0x83, 0x01, 0x02, 0xe0})                         // simple value 0
	f.Add([]byte{0x83, 0x01, 0x02, 0x7f, 0x61, 'a', 0xff})        // indefinite text
	f.Add([]byte{0x82, 0x01, 0x02, 0x00})                         // a byte after the array
	f.Add([]byte{0x83, 0x01, 0x02, 0xfb, 0, 0, 0, 0, 0, 0, 0, 0}) // a float64
	f.Add([]byte{0x83, 0x01, 0x02, 0x5a, 0xff, 0xff, 0xff, 0xff}) // a byte string longer than the frame
	f.Fuzz(func(t *testing.T, body []byte) {
		items, ok := splitFlat(body, nil)
		if !ok {
			return
		}
		if err := decMode.Wellformed(body); err != nil {
			t.Fatalf("splitFlat accepted %x, which the library refuses: %v", body, err)
		}
		if body[0]>>5 != 4 {
			t.Fatalf("splitFlat accepted %x, not an array", body)
		}
		want := splitWellformed(body, nil)
		if len(items) != len(want) {
			t.Fatalf("splitFlat(%x): %d items, splitWellformed %d", body, len(items), len(want))
		}
		for i := range want {
			if !bytes.Equal(items[i], want[i]) {
				t.Fatalf("splitFlat(%x) item %d = %x, splitWellformed %x", body, i, items[i], want[i])
			}
		}
	})
}
