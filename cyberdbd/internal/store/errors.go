package store

import (
	"fmt"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Every error Exec returns is a *wire.Error whose code a client can act on
// and whose message names the table and shows the offending key or value.

// maxShown bounds how much of a key or value a message shows.
const maxShown = 80

// show returns the CBOR diagnostic notation of a stored or received item,
// shortened to about maxShown characters.
func show[T ~string | ~[]byte](raw T) string {
	s := wire.Diagnose([]byte(raw))
	if len(s) > maxShown {
		cut := maxShown
		for cut > 0 && s[cut]&0xc0 == 0x80 { // keep UTF-8 whole
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func errNoSuchTable(name string) *wire.Error {
	return wire.Errorf(wire.CodeNoSuchTable,
		"no table named %q: create it with create_dict or create_list", name)
}

func errTableExists(name string, k kind) *wire.Error {
	return wire.Errorf(wire.CodeTableExists,
		"table %q already exists (a %s): drop it first or pick another name", name, k)
}

func errWrongKind(name string, have kind, op wire.Op) *wire.Error {
	want := kindDict
	if op.IsList() {
		want = kindList
	}
	return wire.Errorf(wire.CodeWrongKind, "table %q is a %s; %s needs a %s", name, have, op, want)
}

func errKeyNotFound(name string, key []byte) *wire.Error {
	return wire.Errorf(wire.CodeKeyNotFound, "key %s not found in dict table %q", show(key), name)
}

func errBadRequest(format string, args ...any) *wire.Error {
	return wire.Errorf(wire.CodeBadRequest, format, args...)
}

// prefixed returns err with its message prefixed, keeping its code.
func prefixed(err error, format string, args ...any) *wire.Error {
	e := wire.AsError(err)
	return &wire.Error{Code: e.Code, Message: fmt.Sprintf(format, args...) + e.Message}
}

func errOutOfMemory(op wire.Op, name string) *wire.Error {
	return wire.Errorf(wire.CodeOutOfMemory,
		"%s on table %q refused: the daemon is over its memory limit (--max-memory); reads, deletes, drops and expiry still work: free memory or raise the limit", op, name)
}
