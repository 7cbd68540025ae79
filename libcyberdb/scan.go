package libcyberdb

import "iter"

// defaultPage is the page size of Scan when none is given.
const defaultPage = 256

// Scanner pages through a table. Range over All, then check Err: a
// range-over-func loop cannot return an error, so the scanner keeps it.
//
//	sc := l.Scan(ctx, 500)
//	for i, v := range sc.All() {
//		...
//	}
//	if err := sc.Err(); err != nil { ... }
//
// Each call of All starts a new pass from the beginning.
type Scanner[K, V any] struct {
	next func(yield func(K, V) bool) error
	err  error
}

// All yields the entries (for a Dict, key and value; for a List, index
// and value), fetching one page per round trip. The loop ends early, with
// Err set, when a page cannot be read.
func (s *Scanner[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		s.err = s.next(yield)
	}
}

// Err is the error that ended the last pass of All, or nil.
func (s *Scanner[K, V]) Err() error { return s.err }
