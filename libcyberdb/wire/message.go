package wire

import (
	"math"
	"math/big"
	"unicode/utf8"
)

// Request is a decoded request frame: [id, op, arg...]. Args alias the
// frame body.
type Request struct {
	ID   uint64
	Op   Op
	Args Args
}

// DecodeRequest decodes a request frame body. On error the returned
// Request still carries the id when it could be read, so the error reply
// can name it.
func DecodeRequest(body []byte) (Request, error) {
	req, _, err := DecodeRequestInto(body, nil)
	return req, err
}

// DecodeRequestInto is DecodeRequest reusing items (its length is ignored)
// for the request's items, so that a connection decodes without
// allocating; it returns the slice to pass next time. The request's Args
// alias body; text from Args.Text aliases it too.
func DecodeRequestInto(body []byte, items []Raw) (Request, []Raw, error) {
	req, err := decodeRequest(body, &items)
	return req, items[:0], err
}

func decodeRequest(body []byte, itemsp *[]Raw) (Request, error) {
	items, flat := splitFlat(body, (*itemsp)[:0])
	if !flat {
		if err := decMode.Wellformed(body); err != nil {
			return Request{ID: peekID(body)}, decodeError(err)
		}
		if body[0]>>5 != 4 {
			return Request{}, Errorf(CodeBadRequest, "a request is an array [id, op, arg...]")
		}
		items = splitWellformed(body, items[:0])
	}
	*itemsp = items
	if len(items) < 2 {
		return Request{ID: peekID(body)}, Errorf(CodeBadRequest, "a request is an array [id, op, arg...] of at least 2 items, got %d", len(items))
	}
	var req Request
	var ok bool
	if req.ID, ok = ItemUint(items[0]); !ok {
		return Request{}, Errorf(CodeBadRequest, "request id must be an unsigned integer")
	}
	op, ok := ItemUint(items[1])
	if !ok {
		return req, Errorf(CodeBadRequest, "op must be an unsigned integer (see PROTOCOL.md)")
	}
	if op > math.MaxUint16 {
		return req, Errorf(CodeUnknownOp, "unknown op %d (see PROTOCOL.md for the ops of protocol version %d)", op, ProtocolVersion)
	}
	req.Op = Op(op)
	req.Args = Args{Op: req.Op, Items: items[2:], textChecked: flat}
	return req, nil
}

// peekID reads the id of a request whose body failed to decode as a whole
// (bad nesting deep inside, an invalid item after the id), so that its
// error reply can still carry it. It returns 0 when the body does not start
// with an array head followed by an unsigned integer.
func peekID(body []byte) uint64 {
	if len(body) < 2 || body[0]>>5 != 4 {
		return 0
	}
	rest := body[1:]
	if body[0]&0x1f != 31 {
		_, _, n, ok := ReadHead(body)
		if !ok {
			return 0
		}
		rest = body[n:]
	}
	if major, id, _, ok := ReadHead(rest); ok && major == 0 {
		return id
	}
	return 0
}

// AppendRequest appends a whole request frame [id, op, args...] to dst.
// Each arg is encoded with Marshal (a Raw is appended as is).
func AppendRequest(dst []byte, id uint64, op Op, args ...any) ([]byte, error) {
	dst, start := BeginFrame(dst)
	dst = AppendArrayHeader(dst, 2+len(args))
	dst = AppendUint(dst, id)
	dst = AppendUint(dst, uint64(op))
	for _, a := range args {
		var err error
		if dst, err = AppendMarshal(dst, a); err != nil {
			return dst[:start], err
		}
	}
	return EndFrame(dst, start), nil
}

// BeginReply appends the frame header and [id, 0, ...] of a success reply;
// append the result item, then call EndFrame(dst, start).
func BeginReply(dst []byte, id uint64) ([]byte, int) {
	dst, start := BeginFrame(dst)
	dst = append(dst, 0x83) // array of 3
	dst = AppendUint(dst, id)
	dst = append(dst, 0x00) // code 0
	return dst, start
}

// AppendReply appends a whole success reply frame with an encoded result.
func AppendReply(dst []byte, id uint64, result []byte) []byte {
	dst, start := BeginReply(dst, id)
	dst = append(dst, result...)
	return EndFrame(dst, start)
}

// AppendError appends a whole error reply frame [id, code, message].
func AppendError(dst []byte, id uint64, e *Error) []byte {
	dst, start := BeginFrame(dst)
	dst = append(dst, 0x83)
	dst = AppendUint(dst, id)
	dst = AppendUint(dst, uint64(e.Code))
	dst = AppendText(dst, e.Message)
	return EndFrame(dst, start)
}

// Reply is a decoded reply frame. Result aliases the frame body.
type Reply struct {
	ID     uint64
	Code   Code
	Result Raw    // when Code == CodeOK
	Err    *Error // when Code != CodeOK
}

// DecodeReply decodes a reply frame body.
func DecodeReply(body []byte) (Reply, error) {
	items, err := SplitArray(body) // keeps tags: a result 55799(x) stays 55799(x)
	if err != nil {
		return Reply{}, err
	}
	if len(items) != 3 {
		return Reply{}, Errorf(CodeBadRequest, "a reply is an array [id, code, result] of 3 items, got %d", len(items))
	}
	var r Reply
	if !items[0].IsNull() {
		if err := Unmarshal(items[0], &r.ID); err != nil {
			return Reply{}, Errorf(CodeBadRequest, "reply id must be an unsigned integer")
		}
	}
	var code uint64
	if err := Unmarshal(items[1], &code); err != nil || code > math.MaxUint16 {
		return Reply{}, Errorf(CodeBadRequest, "reply code must be an unsigned integer")
	}
	r.Code = Code(code)
	if r.Code == CodeOK {
		r.Result = items[2]
		return r, nil
	}
	var msg string
	if err := Unmarshal(items[2], &msg); err != nil {
		return Reply{}, Errorf(CodeBadRequest, "error reply message must be text")
	}
	r.Err = &Error{Code: r.Code, Message: msg}
	return r, nil
}

// Args are a request's arguments, with typed accessors whose errors name
// the op and the argument's position.
type Args struct {
	Op    Op
	Items []Raw

	// textChecked: every text item is known to be valid UTF-8, because
	// the decoder checked it (splitFlat). Text and Value need not check
	// again: on pipelined sets that was 2.6% of the daemon's CPU.
	textChecked bool
}

// Len is the number of arguments.
func (a Args) Len() int { return len(a.Items) }

// Has reports whether argument i is present and not null: an optional
// argument that is absent or null is "left out". Undefined is present, and
// an accessor then refuses it like any other value of the wrong type.
func (a Args) Has(i int) bool { return i < len(a.Items) && !a.Items[i].IsNull() }

// Want checks that there are between lo and hi arguments (hi < 0: no upper bound).
func (a Args) Want(lo, hi int) error {
	n := len(a.Items)
	if n >= lo && (hi < 0 || n <= hi) {
		return nil
	}
	switch {
	case lo == hi:
		return Errorf(CodeBadRequest, "%s takes %d argument(s), got %d", a.Op, lo, n)
	case hi < 0:
		return Errorf(CodeBadRequest, "%s takes at least %d argument(s), got %d", a.Op, lo, n)
	}
	return Errorf(CodeBadRequest, "%s takes %d to %d arguments, got %d", a.Op, lo, hi, n)
}

func (a Args) argErr(i int, what string) *Error {
	return Errorf(CodeBadRequest, "%s: argument %d must be %s", a.Op, i+1, what)
}

// Text returns argument i as a text string (table names). The string may
// alias the request buffer: clone it (strings.Clone) to keep it.
func (a Args) Text(i int) (string, error) {
	if i >= len(a.Items) || len(a.Items[i]) == 0 || a.Items[i][0]>>5 != 3 {
		return "", a.argErr(i, "a text string")
	}
	if a.textChecked {
		if s, ok := itemText(a.Items[i], false); ok {
			return s, nil
		}
	} else if s, ok := ItemText(a.Items[i]); ok {
		return s, nil
	}
	var s string
	if err := Unmarshal(a.Items[i], &s); err != nil {
		return "", a.argErr(i, "a valid UTF-8 text string")
	}
	return s, nil
}

// Int returns argument i as an int64 (indices, counts). Only the value
// counts: a bignum (tag 2 or 3) is an integer like any other, in range or
// not; anything else (bool, float, null, undefined, another tag) is not.
func (a Args) Int(i int) (int64, error) {
	if i >= len(a.Items) || len(a.Items[i]) == 0 {
		return 0, a.argErr(i, "an integer")
	}
	raw := a.Items[i]
	if v, ok := ItemInt(raw); ok {
		return v, nil
	}
	if raw[0]>>5 > 1 && raw[0] != 0xc2 && raw[0] != 0xc3 {
		return 0, a.argErr(i, "an integer")
	}
	if n, ok := DecodeNumber(raw); ok && !n.IsFloat && n.Int.IsInt64() {
		return n.Int.Int64(), nil
	}
	return 0, a.argErr(i, "an integer in the int64 range")
}

// OptInt returns argument i as an int64; ok is false when it is absent or null
// (Python's None in a slice).
func (a Args) OptInt(i int) (v int64, ok bool, err error) {
	if !a.Has(i) {
		return 0, false, nil
	}
	v, err = a.Int(i)
	return v, err == nil, err
}

// Uint returns argument i as a uint64 (cursors); a bignum (tag 2) whose
// value fits is one too.
func (a Args) Uint(i int) (uint64, error) {
	if i < len(a.Items) {
		if u, ok := ItemUint(a.Items[i]); ok {
			return u, nil
		}
		if raw := a.Items[i]; len(raw) > 0 && raw[0] == 0xc2 {
			if n, ok := DecodeNumber(raw); ok && n.Int.IsUint64() {
				return n.Int.Uint64(), nil
			}
		}
	}
	return 0, a.argErr(i, "an unsigned integer")
}

// Bool returns argument i as a bool; absent or null is false.
func (a Args) Bool(i int) (bool, error) {
	if !a.Has(i) {
		return false, nil
	}
	switch a.Items[i][0] {
	case 0xf4:
		return false, nil
	case 0xf5:
		return true, nil
	}
	return false, a.argErr(i, "a boolean")
}

// Value returns argument i in canonical form (a key or a value to store).
// The result may alias the request; copy it to keep it.
func (a Args) Value(i int) ([]byte, error) {
	if i >= len(a.Items) {
		return nil, a.argErr(i, "present")
	}
	if a.textChecked && simpleCanonical(a.Items[i], false) {
		return a.Items[i], nil
	}
	v, err := Canonical(a.Items[i])
	if err != nil {
		e := AsError(err)
		return nil, Errorf(e.Code, "%s: argument %d: %s", a.Op, i+1, e.Message)
	}
	return v, nil
}

// Number is a decoded CBOR number: an integer in the CBOR range
// [-2^64, 2^64-1] or a float.
type Number struct {
	IsFloat bool
	Int     *big.Int // when !IsFloat
	Float   float64  // when IsFloat
}

// DecodeNumber decodes a canonical or non-canonical CBOR integer, bignum or
// float. ok is false for anything else (text, bool, ...).
func DecodeNumber(raw []byte) (n Number, ok bool) {
	if len(raw) == 0 {
		return n, false
	}
	switch raw[0] >> 5 {
	case 0, 1:
		var b big.Int
		if err := Unmarshal(raw, &b); err != nil {
			return n, false
		}
		return Number{Int: &b}, true
	case 6:
		if raw[0] == 0xc2 || raw[0] == 0xc3 {
			var b big.Int
			if err := Unmarshal(raw, &b); err != nil {
				return n, false
			}
			return Number{Int: &b}, true
		}
	case 7:
		ai := raw[0] & 0x1f
		if ai >= 25 && ai <= 27 {
			var f float64
			if err := Unmarshal(raw, &f); err != nil {
				return n, false
			}
			return Number{IsFloat: true, Float: f}, true
		}
	}
	return n, false
}

// maxFlat is the most items splitFlat takes: far below MaxArrayElements,
// so that it never accepts an array the library would refuse.
const maxFlat = 64

// splitFlat is Wellformed and splitWellformed in one pass, for the
// requests most clients send: a definite-length array of at most maxFlat
// items that are each an integer, a definite-length byte or (valid UTF-8)
// text string, false, true, null, undefined or a float. It appends the
// items to items and reports true when body is such an array and nothing
// more; anything else (nesting, tags, indefinite lengths, other simple
// values, a malformed or truncated item, bytes after the array) is false,
// and the caller checks body with the library, which says what is wrong.
// It accepts nothing that Wellformed refuses (FuzzSplitFlat). On
// pipelined gets and sets, the two passes were 17% of the daemon's CPU.
func splitFlat(body []byte, items []Raw) ([]Raw, bool) {
	major, n, off, ok := ReadHead(body)
	if !ok || major != 4 || n > maxFlat {
		return items, false
	}
	for range n {
		major, arg, hl, ok := ReadHead(body[off:])
		if !ok {
			return items, false
		}
		end := off + hl
		switch major {
		case 0, 1:
		case 2, 3:
			if arg > uint64(len(body)-end) {
				return items, false
			}
			end += int(arg)
			if major == 3 && !utf8.Valid(body[off+hl:end]) {
				return items, false
			}
		case 7:
			if ai := body[off] & 0x1f; ai < 20 || ai == 24 {
				return items, false // unassigned simple values: the library decides
			}
		default:
			return items, false
		}
		items = append(items, body[off:end:end])
		off = end
	}
	return items, off == len(body)
}
