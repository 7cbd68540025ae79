package persist

import (
	"errors"
	"strings"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Records are CBOR arrays. They are split without decoding their items,
// so keys and values stay the exact bytes they were stored as; the CBOR
// library checks each record (wire.SplitArrayInto) before it is split.

var errCBOR = errors.New("malformed CBOR")

// splitArray returns the items of the array that is exactly b, aliasing b,
// appended to dst[:0].
func splitArray(dst []wire.Raw, b []byte) ([]wire.Raw, error) {
	items, err := wire.SplitArrayInto(b, dst)
	if err != nil {
		return items, errCBOR
	}
	return items, nil
}

// uintItem reads item b as an unsigned integer.
func uintItem(b []byte) (uint64, bool) { return wire.ItemUint(b) }

// textItem reads item b as a text string (a copy).
func textItem(b []byte) (string, bool) {
	s, ok := wire.ItemText(b)
	return strings.Clone(s), ok
}
