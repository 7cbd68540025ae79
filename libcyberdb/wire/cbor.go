package wire

import (
	"bytes"
	"errors"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// Limits applied by the decoder to every frame, before anything is stored.
const (
	MaxArrayElements = 1 << 24 // elements in one array
	MaxMapPairs      = 1 << 24 // pairs in one map
)

var (
	decMode   cbor.DecMode           // every frame from the network
	canonMode cbor.EncMode           // Core Deterministic Encoding (RFC 8949 §4.2.1)
	encMode   cbor.UserBufferEncMode // what clients send: preferred serialization, maps sorted
)

func init() {
	var err error
	decMode, err = cbor.DecOptions{
		MaxNestedLevels:  MaxNesting,
		MaxArrayElements: MaxArrayElements,
		MaxMapPairs:      MaxMapPairs,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthAllowed,
		TagsMd:           cbor.TagsAllowed,
		IntDec:           cbor.IntDecConvertNone,
		MapKeyByteString: cbor.MapKeyByteStringAllowed,
		UTF8:             cbor.UTF8RejectInvalid,
		DefaultMapType:   reflect.TypeOf(map[any]any(nil)),
	}.DecMode()
	if err != nil {
		panic(err)
	}
	canonMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	encOpts := cbor.CoreDetEncOptions()
	encOpts.Time = cbor.TimeRFC3339Nano
	encMode, err = encOpts.UserBufferEncMode()
	if err != nil {
		panic(err)
	}
}

// Unmarshal decodes one CBOR data item with the protocol's limits.
func Unmarshal(data []byte, v any) error {
	if err := decMode.Unmarshal(data, v); err != nil {
		return decodeError(err)
	}
	return nil
}

// Marshal encodes v in canonical form.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// AppendMarshal appends the canonical encoding of v to dst.
func AppendMarshal(dst []byte, v any) ([]byte, error) {
	if r, ok := v.(Raw); ok {
		return append(dst, r...), nil
	}
	buf := bytes.NewBuffer(dst)
	if err := encMode.MarshalToBuffer(v, buf); err != nil {
		return dst, err
	}
	return buf.Bytes(), nil
}

// decodeError turns a CBOR library error into a typed protocol error.
func decodeError(err error) *Error {
	msg := err.Error()
	var (
		maxNest  *cbor.MaxNestedLevelError
		maxArr   *cbor.MaxArrayElementsError
		maxPairs *cbor.MaxMapPairsError
		typeErr  *cbor.UnmarshalTypeError
		keyErr   *cbor.InvalidMapKeyTypeError
		dupErr   *cbor.DupMapKeyError
	)
	switch {
	case errors.As(err, &maxNest), errors.As(err, &maxArr), errors.As(err, &maxPairs):
		return Errorf(CodeTooLarge, "%s", msg)
	case errors.As(err, &typeErr), errors.As(err, &keyErr):
		// Valid CBOR that does not fit a Go type: not malformed.
		return Errorf(CodeBadRequest, "value does not fit: %s", msg)
	case errors.As(err, &dupErr):
		return Errorf(CodeBadRequest, "a map repeats a key: %s", msg)
	}
	return Errorf(CodeBadRequest, "malformed CBOR: %s", msg)
}

// Raw is one encoded CBOR data item. Unlike cbor.RawMessage, decoding into
// a Raw does not copy: it aliases the input, so it is valid only as long as
// the decoded buffer is.
type Raw []byte

// UnmarshalCBOR keeps a reference to data (no copy).
func (r *Raw) UnmarshalCBOR(data []byte) error {
	*r = data
	return nil
}

// MarshalCBOR returns r itself (null when empty).
func (r Raw) MarshalCBOR() ([]byte, error) {
	if len(r) == 0 {
		return []byte{0xf6}, nil
	}
	return r, nil
}

// IsNull reports whether r is CBOR null (or empty). Undefined is not null:
// it is a value of its own (PROTOCOL.md 5), never "left out".
func (r Raw) IsNull() bool { return len(r) == 0 || (len(r) == 1 && r[0] == 0xf6) }

// Canonical returns the Core Deterministic Encoding of the data item raw.
// When raw is already canonical it is returned as is (aliasing raw);
// otherwise a new slice is returned. Items the decoder refuses (malformed,
// too deeply nested, invalid UTF-8, a map repeating a key once keys are in
// canonical form) give a typed error.
//
// Tags are kept as they are, with their content made canonical, except the
// bignum tags 2 and 3, which become plain integers when the value fits
// (RFC 8949 §3.4.3 preferred serialization).
func Canonical(raw []byte) ([]byte, error) {
	if simpleCanonical(raw, true) {
		return raw, nil
	}
	if len(raw) == 0 {
		return nil, Errorf(CodeBadRequest, "malformed CBOR: no data item")
	}
	if err := decMode.Wellformed(raw); err != nil {
		return nil, decodeError(err)
	}
	return appendCanonical(nil, raw)
}

// appendCanonical appends the canonical form of the single well-formed
// item raw. The CBOR library decodes and encodes every scalar and splits
// containers; only the heads of arrays, maps and tags are written here,
// because the library has no way to re-encode a tag 0 or 1 as it was.
func appendCanonical(dst, raw []byte) ([]byte, error) {
	if simpleCanonical(raw, true) {
		return append(dst, raw...), nil
	}
	switch raw[0] >> 5 {
	case 0, 1: // integer with a longer head than needed
		var v big.Int
		if err := decMode.Unmarshal(raw, &v); err != nil {
			return nil, decodeError(err)
		}
		return appendCanonMarshal(dst, &v)
	case 2: // indefinite-length byte string
		var b []byte
		if err := decMode.Unmarshal(raw, &b); err != nil {
			return nil, decodeError(err)
		}
		return append(appendHead(dst, 2, uint64(len(b))), b...), nil
	case 3: // indefinite-length or non-shortest text
		var s string
		if err := decMode.Unmarshal(raw, &s); err != nil {
			return nil, decodeError(err)
		}
		return AppendText(dst, s), nil
	case 4:
		items := splitWellformed(raw, nil)
		dst = AppendArrayHeader(dst, len(items))
		for _, it := range items {
			var err error
			if dst, err = appendCanonical(dst, it); err != nil {
				return nil, err
			}
		}
		return dst, nil
	case 5:
		return appendCanonicalMap(dst, raw)
	case 6:
		_, num, n, ok := ReadHead(raw)
		if !ok {
			return nil, Errorf(CodeBadRequest, "malformed CBOR: bad tag head")
		}
		if num == 0 || num == 1 {
			if err := checkTimeTag(raw); err != nil {
				return nil, err
			}
		}
		if num == 2 || num == 3 {
			var v big.Int
			if err := decMode.Unmarshal(raw, &v); err != nil {
				return nil, decodeError(err)
			}
			return appendCanonMarshal(dst, &v)
		}
		return appendCanonical(appendHead(dst, 6, num), raw[n:])
	default: // 7: floats, and simple values in a two-byte head
		ai := raw[0] & 0x1f
		if ai >= 25 && ai <= 27 {
			var f float64
			if err := decMode.Unmarshal(raw, &f); err != nil {
				return nil, decodeError(err)
			}
			return appendCanonMarshal(dst, f)
		}
		return append(dst, raw...), nil // simple value: one shortest form
	}
}

func appendCanonMarshal(dst []byte, v any) ([]byte, error) {
	b, err := canonMode.Marshal(v)
	if err != nil {
		return nil, Errorf(CodeBadRequest, "value cannot be put in canonical form: %v", err)
	}
	return append(dst, b...), nil
}

// appendCanonicalMap appends a map with canonical keys and values, sorted
// bytewise by key encoding; two keys equal once canonical are an error.
func appendCanonicalMap(dst, raw []byte) ([]byte, error) {
	type pair struct{ k, v []byte }
	var pairs []pair
	err := walkMap(raw, func(k, v Raw) error {
		ck, err := appendCanonical(nil, k)
		if err != nil {
			return err
		}
		cv, err := appendCanonical(nil, v)
		if err != nil {
			return err
		}
		pairs = append(pairs, pair{ck, cv})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(pairs, func(a, b pair) int { return bytes.Compare(a.k, b.k) })
	dst = AppendMapHeader(dst, len(pairs))
	for i, p := range pairs {
		if i > 0 && bytes.Equal(p.k, pairs[i-1].k) {
			return nil, Errorf(CodeBadRequest, "a map repeats the key %s", Diagnose(p.k))
		}
		dst = append(append(dst, p.k...), p.v...)
	}
	return dst, nil
}

// shortestFrom is, by head length, the smallest argument that needs it:
// a head of n bytes whose argument is below shortestFrom[n] is not in
// shortest form.
var shortestFrom = [10]uint64{2: 24, 3: 1 << 8, 5: 1 << 16, 9: 1 << 32}

// simpleCanonical reports whether raw is a single scalar item already in
// canonical form: an integer, a definite-length byte or (valid UTF-8) text
// string with a shortest-form head, or false/true/null/undefined. It is the
// fast path that spares the common key and value a decode and re-encode.
// checkText false skips the UTF-8 check, for text the decoder checked.
func simpleCanonical(raw []byte, checkText bool) bool {
	if len(raw) == 0 {
		return false
	}
	major := raw[0] >> 5
	if major == 7 {
		return len(raw) == 1 && raw[0] >= 0xf4 && raw[0] <= 0xf7
	}
	if major > 3 {
		return false
	}
	_, arg, n, ok := ReadHead(raw)
	if !ok || arg < shortestFrom[n] { // canonical form: shortest heads only
		return false
	}
	switch major {
	case 0, 1:
		return n == len(raw)
	case 2:
		return uint64(len(raw)-n) == arg
	default: // 3: text
		return uint64(len(raw)-n) == arg && (!checkText || utf8.Valid(raw[n:]))
	}
}

// Result encoders. The daemon builds replies by appending to a reused
// buffer; stored values are already canonical CBOR and are appended as is.

// AppendArrayHeader appends the head of a definite-length array of n items.
func AppendArrayHeader(dst []byte, n int) []byte { return appendHead(dst, 4, uint64(n)) }

// AppendMapHeader appends the head of a definite-length map of n pairs.
func AppendMapHeader(dst []byte, n int) []byte { return appendHead(dst, 5, uint64(n)) }

// AppendUint appends an unsigned integer.
func AppendUint(dst []byte, v uint64) []byte { return appendHead(dst, 0, v) }

// AppendInt appends a signed integer.
func AppendInt(dst []byte, v int64) []byte {
	if v >= 0 {
		return appendHead(dst, 0, uint64(v))
	}
	return appendHead(dst, 1, uint64(-(v + 1)))
}

// AppendText appends a text string.
func AppendText(dst []byte, s string) []byte { return append(appendHead(dst, 3, uint64(len(s))), s...) }

// AppendBool appends true or false.
func AppendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 0xf5)
	}
	return append(dst, 0xf4)
}

// AppendNull appends null.
func AppendNull(dst []byte) []byte { return append(dst, 0xf6) }

// SplitArray returns the items of the CBOR array raw, aliasing raw. The
// items are exactly as encoded: unlike decoding into a []Raw with the CBOR
// library, which strips tag 55799 from each element, every tag is kept
// (PROTOCOL.md 5: tags are opaque at every depth). A tagged array, 55799
// included, is not an array.
func SplitArray(raw []byte) ([]Raw, error) {
	if len(raw) == 0 {
		return nil, Errorf(CodeBadRequest, "expected a CBOR array, got nothing")
	}
	if err := decMode.Wellformed(raw); err != nil {
		return nil, decodeError(err)
	}
	if raw[0]>>5 != 4 {
		return nil, Errorf(CodeBadRequest, "expected a CBOR array, got %s", TypeName(raw))
	}
	return splitWellformed(raw, nil), nil
}

// Pairs calls fn for each key/value of raw in encoded order, aliasing raw.
// raw is a CBOR map, or an array of two-element [key, value] arrays. This
// keeps the order the sender chose, which decoding into a Go map would
// lose. A map that repeats a key (compared in canonical form) is an error
// and fn is not called at all; in an array of pairs a repeated key is
// allowed (the later one wins, as in Python's dict(pairs)).
func Pairs(raw []byte, fn func(k, v Raw) error) error {
	if len(raw) == 0 {
		return Errorf(CodeBadRequest, "expected a map or an array of [key, value] pairs, got nothing")
	}
	switch raw[0] >> 5 {
	case 4:
		items, err := SplitArray(raw)
		if err != nil {
			return err
		}
		for i, it := range items {
			kv, err := SplitArray(it)
			if err != nil || len(kv) != 2 {
				return Errorf(CodeBadRequest, "pair %d: expected a [key, value] array of 2 items", i)
			}
			if err := fn(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	case 5:
		if err := decMode.Wellformed(raw); err != nil {
			return decodeError(err)
		}
		if err := distinctKeys(raw); err != nil {
			return err
		}
		return walkMap(raw, fn)
	}
	return Errorf(CodeBadRequest, "expected a map or an array of [key, value] pairs")
}

// WalkMap calls fn for each pair of the map raw, in encoded order, aliasing
// raw, without checking it: raw must be bytes that [Pairs] (or
// [Wellformed], when repeated keys do not matter) accepted before, or a
// copy of them. Walking unchecked bytes may panic. It is for a second pass
// over a map, as a subscriber does over a push message its reader checked.
func WalkMap(raw []byte, fn func(k, v Raw) error) error {
	if len(raw) == 0 || raw[0]>>5 != 5 {
		return Errorf(CodeBadRequest, "expected a map")
	}
	return walkMap(raw, fn)
}

// smallMap is how many keys distinctKeys compares pairwise before it
// builds a set: most maps on the wire (push messages, options, small
// dict updates) have a handful, and a set costs a hash and an allocation
// per key (a third of a subscriber's CPU, issue 16).
const smallMap = 16

// distinctKeys returns an error when the map raw, which Wellformed has
// checked, repeats a key, compared in canonical form.
func distinctKeys(raw []byte) error {
	var small [smallMap]Raw
	keys := small[:0]
	var seen map[string]struct{}
	return walkMap(raw, func(k, _ Raw) error {
		ck, err := Canonical(k)
		if err != nil {
			return err
		}
		if seen == nil {
			for _, o := range keys {
				if bytes.Equal(o, ck) {
					return Errorf(CodeBadRequest, "a map repeats the key %s", Diagnose(ck))
				}
			}
			if len(keys) < smallMap {
				keys = append(keys, ck)
				return nil
			}
			seen = make(map[string]struct{}, 2*smallMap)
			for _, o := range keys {
				seen[string(o)] = struct{}{}
			}
		}
		if _, dup := seen[string(ck)]; dup {
			return Errorf(CodeBadRequest, "a map repeats the key %s", Diagnose(ck))
		}
		seen[string(ck)] = struct{}{}
		return nil
	})
}

// TypeName names the CBOR type of the item that starts raw, for messages
// that must stay short whatever the item's size: "text string", "array",
// "tag 55799", "undefined", ...
func TypeName(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] >> 5 {
	case 0:
		return "unsigned integer"
	case 1:
		return "negative integer"
	case 2:
		return "byte string"
	case 3:
		return "text string"
	case 4:
		return "array"
	case 5:
		return "map"
	case 6:
		if _, num, _, ok := ReadHead(raw); ok {
			switch num {
			case 2:
				return "bignum (tag 2)"
			case 3:
				return "negative bignum (tag 3)"
			}
			return "tag " + strconv.FormatUint(num, 10)
		}
		return "tag"
	}
	switch ai := raw[0] & 0x1f; {
	case raw[0] == 0xf4 || raw[0] == 0xf5:
		return "bool"
	case raw[0] == 0xf6:
		return "null"
	case raw[0] == 0xf7:
		return "undefined"
	case ai >= 25 && ai <= 27:
		return "float"
	case ai == 24 && len(raw) > 1:
		return "simple value " + strconv.Itoa(int(raw[1]))
	case ai < 20:
		return "simple value " + strconv.Itoa(int(ai))
	}
	return "malformed item"
}

// Diagnose returns the CBOR diagnostic notation of raw (RFC 8949 §8), for
// messages and for the command-line client.
func Diagnose(raw []byte) string {
	s, err := cbor.Diagnose(raw)
	if err != nil {
		return "<malformed CBOR>"
	}
	return s
}
