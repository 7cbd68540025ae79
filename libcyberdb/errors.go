package libcyberdb

import (
	"errors"
	"fmt"
	"strings"

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
	ErrTooManyConns    = wire.ErrTooManyConns    // the daemon is at --max-conns
	ErrHandshake       = wire.ErrHandshake       // the daemon refused HELLO (unsupported protocol version)
	ErrAuthFailed      = wire.ErrAuthFailed      // wrong or missing password (authenticated listeners)
	ErrForbidden       = wire.ErrForbidden       // the daemon does not allow this peer
	ErrShuttingDown    = wire.ErrShuttingDown    // the daemon is stopping (only seen when retries run out)
	ErrIO              = wire.ErrIO              // the daemon could not make a write durable; nothing was applied
	ErrInternal        = wire.ErrInternal        // a bug in the daemon, logged there
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
	// the handle (say, text stored in a Dict[string, int]).
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

// decodeErr reports a result that does not fit the Go type it is decoded into.
func decodeErr(op wire.Op, table string, raw []byte, into any, err error) error {
	msg := err.Error()
	var we *wire.Error
	if errors.As(err, &we) {
		msg = we.Message
	}
	if table != "" {
		return fmt.Errorf("%w: %s on table %q: %s into %T: %s", ErrDecode, op, table, wire.Diagnose(raw), into, msg)
	}
	return fmt.Errorf("%w: %s: %s into %T: %s", ErrDecode, op, wire.Diagnose(raw), into, msg)
}

// decode unmarshals a result into a fresh T.
func decode[T any](op wire.Op, table string, raw []byte) (T, error) {
	var v T
	if err := unmarshal(raw, &v); err != nil {
		return v, decodeErr(op, table, raw, &v, err)
	}
	return v, nil
}

// unmarshal decodes raw into v with fast paths for common scalar targets.
func unmarshal(raw []byte, v any) error {
	if len(raw) > 0 {
		switch p := v.(type) {
		case *string:
			if t, ok := wire.ItemText(raw); ok {
				*p = strings.Clone(t)
				return nil
			}
		case *int:
			if u, ok := wire.ItemUint(raw); ok && u <= 1<<62 {
				*p = int(u)
				return nil
			}
		case *wire.Raw:
			*p = append((*p)[:0], raw...)
			return nil
		}
	}
	return wire.Unmarshal(raw, v)
}
