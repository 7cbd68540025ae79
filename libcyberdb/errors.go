package libcyberdb

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Error is an error answered by the daemon: a code and a message naming
// the table, key or index involved. Every Error matches the sentinel of its
// code with errors.Is, so callers test errors.Is(err, ErrNotFound) and
// still print the server's message.
type Error = wire.Error

// Errors the daemon answers. Each is the wire package's sentinel for its
// code, so errors.Is works for errors from either package.
var (
	ErrNotFound        = wire.ErrKeyNotFound     // a missing dict key; PopItem on an empty dict (Python's KeyError)
	ErrNoTable         = wire.ErrNoSuchTable     // the table does not exist
	ErrTableExists     = wire.ErrTableExists     // CreateDict/CreateList of a name that is taken
	ErrWrongKind       = wire.ErrWrongKind       // a dict operation on a list table or the reverse
	ErrIndexOutOfRange = wire.ErrIndexOutOfRange // a list index outside the list; Pop of an empty list (IndexError)
	ErrValueNotFound   = wire.ErrValueNotFound   // Remove/IndexOf of a value not in the list (ValueError)
	ErrTypeError       = wire.ErrTypeError       // Incr of a non-number; Sort of incomparable values (TypeError)
	ErrOverflow        = wire.ErrOverflow        // Incr beyond the CBOR integer range (OverflowError)
	ErrTooLarge        = wire.ErrTooLarge        // a request over the server's max_frame, nesting or size limits
	ErrBadRequest      = wire.ErrBadRequest      // arguments the server refuses (e.g. a slice step of 0, bad table name)
	ErrTooManyConns    = wire.ErrTooManyConns    // the daemon stayed at --max-conns (or a TCP limit) for the whole dial time-out
	ErrHandshake       = wire.ErrHandshake       // the daemon refused HELLO (unsupported protocol version)
	ErrAuthFailed      = wire.ErrAuthFailed      // wrong or missing password (authenticated listeners)
	ErrForbidden       = wire.ErrForbidden       // the daemon does not allow this peer
	ErrShuttingDown    = wire.ErrShuttingDown    // the daemon is stopping (only seen when retries run out)
	ErrIO              = wire.ErrIO              // the daemon could not make a write durable; nothing was applied
	ErrInternal        = wire.ErrInternal        // a bug in the daemon, logged there
	ErrOutOfMemory     = wire.ErrOutOfMemory     // the daemon is over --max-memory: a write that adds data was refused (cache tables evict instead)
)

// Errors of the client itself.
var (
	// ErrConnClosed: the connection was lost after a request was sent and
	// before its reply. Read-only operations are resent automatically, so
	// this is only returned for writes, which may or may not have been
	// applied: check before repeating one that is not idempotent.
	ErrConnClosed = errors.New("cyberdb: connection lost before the reply; the request may or may not have been applied")

	// ErrClosed: the Client (or Conn) has been closed.
	ErrClosed = errors.New("cyberdb: client is closed")

	// ErrUnavailable: no connection to the daemon could be made (it is not
	// running, the socket path is wrong, or it did not come up in time).
	// The error wraps the cause from the system, such as ENOENT.
	ErrUnavailable = errors.New("cyberdb: daemon unavailable")

	// ErrDecode: a value read from the daemon does not fit the Go type of
	// the handle (say, text stored in a Dict[string, int]). The error is a
	// *DecodeError, which says where.
	ErrDecode = errors.New("cyberdb: cannot decode value")
)

// EncodeError reports a Go value that cannot be encoded as CBOR (a
// channel, a func). Nothing was sent.
type EncodeError struct {
	Value any
	Err   error
}

func (e *EncodeError) Error() string {
	return fmt.Sprintf("cyberdb: cannot encode %T as CBOR: %v", e.Value, e.Err)
}

func (e *EncodeError) Unwrap() error { return e.Err }

// ProtocolError reports a reply that breaks the protocol: a bug in the
// client or the daemon. The connection that carried it is closed.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "cyberdb: protocol error: " + e.Msg }

// DecodeError reports a value read from the daemon that does not fit the
// Go type it is decoded into: say, text stored in a Dict[string, int64].
// It matches ErrDecode with errors.Is; errors.As gives the details. The
// message names the table, the key or index and both types, and shows
// only the offending value (shortened), never the whole result, so it
// stays short whatever the table's size.
type DecodeError struct {
	Op    wire.Op // the operation whose result did not fit
	Table string  // the table

	// Key is the dict key (its CBOR) whose entry did not fit, or the key
	// that did not fit K itself (KeyItself); nil when there is none, as
	// in a dict's Values, where the Index is given instead.
	Key       wire.Raw
	KeyItself bool

	// Index, when HasIndex, is where the value was: a list index (At,
	// PopAt, list Values and Scan), the position in the result (Slice,
	// Keys, a dict's Values), or the index argument as given (At(-1)
	// reports -1).
	Index    int
	HasIndex bool

	GoType   reflect.Type // the Go type the value was to be decoded into
	CBORType string       // the CBOR type it has: "text string", "map", "tag 55799", ...
	Value    string       // the value in CBOR diagnostic notation, shortened
	Detail   string       // why, when the types alone do not say (a duplicate Go map key)
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString(ErrDecode.Error())
	b.WriteString(": ")
	b.WriteString(e.Op.String())
	if e.Table != "" {
		fmt.Fprintf(&b, " on table %s", shorten(strconv.Quote(e.Table)))
	}
	if e.Key != nil {
		fmt.Fprintf(&b, ", key %s", shorten(wire.Diagnose(e.Key)))
	}
	switch {
	case e.HasIndex && e.Op == wire.OpLSlice:
		fmt.Fprintf(&b, ", element %d of the slice", e.Index)
	case e.HasIndex:
		fmt.Fprintf(&b, ", index %d", e.Index)
	}
	what := "the value"
	if e.KeyItself {
		what = "the key"
	}
	article := "a"
	if strings.ContainsRune("aeiou", rune(e.CBORType[0])) {
		article = "an"
	}
	fmt.Fprintf(&b, ": %s is %s %s (%s), which does not fit %v", what, article, e.CBORType, e.Value, e.GoType)
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", shorten(e.Detail))
	}
	return b.String()
}

// Unwrap makes a DecodeError match ErrDecode.
func (e *DecodeError) Unwrap() error { return ErrDecode }

// maxShown bounds what an error shows of a key, a value or a name.
const maxShown = 80

func shorten(s string) string {
	if len(s) <= maxShown {
		return s
	}
	cut := maxShown
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// showValue is raw in diagnostic notation, shortened. The notation has a
// nesting limit of its own (32 levels), below the protocol's: a deeper
// value, which is valid, is not shown rather than called malformed.
func showValue(raw []byte) string {
	s := wire.Diagnose(raw)
	if s == "<malformed CBOR>" {
		return "nested too deeply to show"
	}
	return shorten(s)
}

// decodeErr reports a result raw that did not decode into into: it finds
// the element that does not fit (see locate) and what the call addressed
// (args: its encoded arguments, nargs of them).
func decodeErr(op wire.Op, table string, args []byte, nargs int, raw []byte, into any, err error) error {
	t := reflect.TypeOf(into)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if werr := wire.Wellformed(raw); werr != nil {
		// Not valid data that does not fit: broken data (a daemon bug).
		return &DecodeError{Op: op, Table: table, GoType: t, CBORType: "malformed item", Value: wire.Diagnose(raw),
			Detail: libraryReason(werr)}
	}
	loc := locate(raw, t, spot{})
	e := &DecodeError{Op: op, Table: table, GoType: loc.t, CBORType: wire.TypeName(loc.raw), Value: showValue(loc.raw)}
	e.Key, e.KeyItself = loc.key, loc.keyItself
	e.Index, e.HasIndex = loc.index, loc.hasIndex
	if !loc.found {
		e.Detail = libraryReason(err)
	}
	// What the call addressed: the key of a dict op, the index of a list op.
	if a := callArgs(args, nargs); len(a) > 1 {
		switch op {
		case wire.OpDGet, wire.OpDPop, wire.OpDSetDefault, wire.OpDIncr:
			if e.Key == nil {
				e.Key = wire.Raw(bytes.Clone(a[1]))
			}
		case wire.OpLGet, wire.OpLPop:
			if i, ok := argInt(a[1]); ok && !e.HasIndex {
				e.Index, e.HasIndex = i, true
			}
		case wire.OpLRange:
			if i, ok := argInt(a[1]); ok && e.HasIndex {
				e.Index += i // the page's start
			}
		}
	}
	if op == wire.OpDKeys && loc.hasIndex { // the elements are keys
		e.Key, e.KeyItself = loc.elem, true
	}
	if e.Key != nil && op.IsDict() && op != wire.OpDKeys {
		e.HasIndex = false // the key says where; a position says nothing more
	}
	return e
}

// callArgs splits a call's encoded arguments.
func callArgs(args []byte, nargs int) []wire.Raw {
	if nargs == 0 {
		return nil
	}
	items, err := wire.SplitArray(append(wire.AppendArrayHeader(nil, nargs), args...))
	if err != nil {
		return nil
	}
	return items
}

func argInt(raw wire.Raw) (int, bool) {
	var i int
	return i, wire.Unmarshal(raw, &i) == nil
}

// libraryReason is the CBOR library's reason, without the wire package's
// prefixes: for the rare misfit locate cannot pin on one element.
func libraryReason(err error) string {
	var we *wire.Error
	if errors.As(err, &we) {
		return we.Message
	}
	return err.Error()
}

// spot is where in a result a misfit is.
type spot struct {
	raw       []byte       // the element that does not fit
	t         reflect.Type // the Go type it was to fit
	key       wire.Raw     // the nearest enclosing dict key (or the key itself)
	keyItself bool
	index     int    // the outermost array position
	hasIndex  bool   //
	elem      []byte // the element at index
	found     bool   // false: no single element is to blame
}

// itemType is implemented by Item, whose [key, value] pairs name their key.
type itemType interface{ isItem() }

var itemIface = reflect.TypeFor[itemType]()

// locate walks raw along the Go type t, decoding each element on its own,
// down to the innermost element that does not fit. Only the error path
// runs it, so decoding elements twice costs nothing that matters.
func locate(raw []byte, t reflect.Type, at spot) spot {
	at.raw, at.t = raw, t
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	major := byte(0xff)
	if len(raw) > 0 {
		major = raw[0] >> 5
	}
	switch {
	case major == 4 && (t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8 || t.Kind() == reflect.Array):
		items, err := wire.SplitArray(raw)
		if err != nil {
			break
		}
		for i, it := range items {
			if !fits(it, t.Elem()) {
				next := at
				if !next.hasIndex {
					next.index, next.hasIndex, next.elem = i, true, it
				}
				return locate(it, t.Elem(), next)
			}
		}
	case major == 5 && t.Kind() == reflect.Map:
		var found *spot
		_ = wire.Pairs(raw, func(k, v wire.Raw) error {
			if !fits(k, t.Key()) {
				s := at
				s.raw, s.t, s.key, s.keyItself, s.found = k, t.Key(), k, true, true
				found = &s
				return errStop
			}
			if !fits(v, t.Elem()) {
				s := at
				s.key = k
				s = locate(v, t.Elem(), s)
				found = &s
				return errStop
			}
			return nil
		})
		if found != nil {
			return *found
		}
	case major == 4 && t.Kind() == reflect.Struct:
		items, err := wire.SplitArray(raw)
		if err != nil {
			break
		}
		isItem := reflect.PointerTo(t).Implements(itemIface)
		k := 0
		for f := range t.NumField() {
			sf := t.Field(f)
			if !sf.IsExported() || k >= len(items) {
				continue
			}
			it := items[k]
			k++
			if fits(it, sf.Type) {
				continue
			}
			next := at
			if isItem {
				next.key = items[0]
				next.keyItself = sf.Name == "Key"
				if next.keyItself {
					next.raw, next.t, next.found = it, sf.Type, true
					return next
				}
			}
			return locate(it, sf.Type, next)
		}
	}
	// A leaf, or a container none of whose elements is to blame.
	at.found = !fits(raw, t) && !containerOf(major, t)
	return at
}

// containerOf reports whether raw of the given major type is a container
// that t decodes element by element: if locate found no element to blame
// in it, the misfit is the container as a whole (a duplicate Go map key).
func containerOf(major byte, t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return major == 4 && t.Elem().Kind() != reflect.Uint8
	case reflect.Map:
		return major == 5
	case reflect.Struct:
		return major == 4
	}
	return false
}

// fits reports whether raw decodes into a fresh value of type t.
func fits(raw []byte, t reflect.Type) bool {
	return wire.Unmarshal(raw, reflect.New(t).Interface()) == nil
}

var errStop = errors.New("stop")

// decode unmarshals a result into a fresh T.
func decode[T any](op wire.Op, table string, raw []byte) (T, error) {
	var v T
	if err := unmarshal(raw, &v); err != nil {
		return v, decodeErr(op, table, nil, 0, raw, &v, err)
	}
	return v, nil
}

// unmarshal decodes raw into v with fast paths for common scalar targets.
func unmarshal(raw []byte, v any) error {
	if decodeScalar(raw, v) { // fastpath.go
		return nil
	}
	if p, ok := v.(*wire.Raw); ok && len(raw) > 0 {
		*p = append((*p)[:0], raw...)
		return nil
	}
	return wire.Unmarshal(raw, v)
}
