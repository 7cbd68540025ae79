package wire

import (
	"errors"
	"fmt"
)

// Code is an error code carried in a reply. Zero means success.
type Code uint16

// Error codes. The numbers are part of the protocol and never change.
const (
	CodeOK              Code = 0
	CodeBadRequest      Code = 1  // malformed frame body, wrong argument count or type
	CodeUnknownOp       Code = 2  // the op number is not one this server knows
	CodeNoSuchTable     Code = 3  // the named table does not exist
	CodeTableExists     Code = 4  // create of a name that is taken
	CodeWrongKind       Code = 5  // a dict operation on a list table or vice versa
	CodeKeyNotFound     Code = 6  // Python's KeyError
	CodeIndexOutOfRange Code = 7  // Python's IndexError
	CodeValueNotFound   Code = 8  // Python's ValueError from list.remove / list.index
	CodeTypeError       Code = 9  // Python's TypeError: incr of text, sort of mixed kinds
	CodeTooLarge        Code = 10 // frame over the maximum size, or a limit on nesting/length
	CodeTooManyConns    Code = 11 // the server is at --max-conns
	CodeHandshake       Code = 12 // HELLO missing, repeated, or of an unsupported version
	CodeAuthFailed      Code = 13 // wrong or missing password
	CodeOverflow        Code = 14 // integer result outside the CBOR integer range
	CodeIdleTimeout     Code = 15 // the connection was idle longer than --idle-timeout
	CodeShuttingDown    Code = 16 // the server is stopping and takes no new requests
	CodeIO              Code = 17 // the server could not make the write durable (disk error)
	CodeInternal        Code = 18 // a bug in the server; the message says what
	CodeForbidden       Code = 19 // the peer is not allowed (uid/gid or address allowlist)
	CodeOutOfMemory     Code = 20 // the daemon is over --max-memory: a write that adds data was refused
	CodeGuardFailed     Code = 21 // a guard of a batch did not hold: nothing was applied
)

var codeNames = [...]string{
	CodeOK:              "ok",
	CodeBadRequest:      "bad_request",
	CodeUnknownOp:       "unknown_op",
	CodeNoSuchTable:     "no_such_table",
	CodeTableExists:     "table_exists",
	CodeWrongKind:       "wrong_kind",
	CodeKeyNotFound:     "key_not_found",
	CodeIndexOutOfRange: "index_out_of_range",
	CodeValueNotFound:   "value_not_found",
	CodeTypeError:       "type_error",
	CodeTooLarge:        "too_large",
	CodeTooManyConns:    "too_many_connections",
	CodeHandshake:       "handshake",
	CodeAuthFailed:      "auth_failed",
	CodeOverflow:        "overflow",
	CodeIdleTimeout:     "idle_timeout",
	CodeShuttingDown:    "shutting_down",
	CodeIO:              "io_error",
	CodeInternal:        "internal",
	CodeForbidden:       "forbidden",
	CodeOutOfMemory:     "out_of_memory",
	CodeGuardFailed:     "guard_failed",
}

// String returns the code's protocol name, e.g. "key_not_found".
func (c Code) String() string {
	if int(c) < len(codeNames) && codeNames[c] != "" {
		return codeNames[c]
	}
	return fmt.Sprintf("code_%d", uint16(c))
}

// Codes returns every defined error code (excluding CodeOK), in numeric order.
func Codes() []Code {
	out := make([]Code, 0, len(codeNames)-1)
	for c := range codeNames {
		if c != 0 && codeNames[c] != "" {
			out = append(out, Code(c))
		}
	}
	return out
}

// Sentinels, one per code, for errors.Is. An *Error matches the sentinel of
// its code: errors.Is(err, wire.ErrKeyNotFound).
var (
	ErrBadRequest      = &Error{Code: CodeBadRequest}
	ErrUnknownOp       = &Error{Code: CodeUnknownOp}
	ErrNoSuchTable     = &Error{Code: CodeNoSuchTable}
	ErrTableExists     = &Error{Code: CodeTableExists}
	ErrWrongKind       = &Error{Code: CodeWrongKind}
	ErrKeyNotFound     = &Error{Code: CodeKeyNotFound}
	ErrIndexOutOfRange = &Error{Code: CodeIndexOutOfRange}
	ErrValueNotFound   = &Error{Code: CodeValueNotFound}
	ErrTypeError       = &Error{Code: CodeTypeError}
	ErrTooLarge        = &Error{Code: CodeTooLarge}
	ErrTooManyConns    = &Error{Code: CodeTooManyConns}
	ErrHandshake       = &Error{Code: CodeHandshake}
	ErrAuthFailed      = &Error{Code: CodeAuthFailed}
	ErrOverflow        = &Error{Code: CodeOverflow}
	ErrIdleTimeout     = &Error{Code: CodeIdleTimeout}
	ErrShuttingDown    = &Error{Code: CodeShuttingDown}
	ErrIO              = &Error{Code: CodeIO}
	ErrInternal        = &Error{Code: CodeInternal}
	ErrForbidden       = &Error{Code: CodeForbidden}
	ErrOutOfMemory     = &Error{Code: CodeOutOfMemory}
	ErrGuardFailed     = &Error{Code: CodeGuardFailed}
)

// Error is an error reply: a code and a message a person can act on.
type Error struct {
	Code    Code
	Message string
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Message
}

// Is reports whether target is an *Error with the same code, so that every
// error of a code matches that code's sentinel.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// AsError converts any error to an *Error: an *Error (possibly wrapped) is
// returned as is; anything else becomes CodeInternal.
func AsError(err error) *Error {
	var we *Error
	if errors.As(err, &we) {
		return we
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}
