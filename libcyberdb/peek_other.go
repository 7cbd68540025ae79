//go:build !unix

package libcyberdb

import "errors"

// canPeek: without a way to look at a quiet connection, the reader
// goroutine reads every connection all the time (readside.go).
const canPeek = false

func peekFD(uintptr) (int, error) { return -1, errors.ErrUnsupported }
