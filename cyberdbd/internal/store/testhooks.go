//go:build cyberdbtest

package store

import (
	"errors"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Test hooks: compiled only with the cyberdbtest build tag, which the
// tests' binaries have (internal/daemontest) and releases never do.

// HoldTableForTest takes the write lock of the dict table name (creating
// it if needed) and keeps it until release is closed, as a stuck op would.
func (s *Store) HoldTableForTest(name string, release <-chan struct{}) error {
	arg, err := wire.Marshal(name)
	if err != nil {
		return err
	}
	if _, err := s.Exec(wire.OpCreateDict, wire.Args{Op: wire.OpCreateDict, Items: []wire.Raw{arg}}, nil); err != nil && !errors.Is(err, wire.ErrTableExists) {
		return err
	}
	t := s.acquire(name, true)
	if t == nil {
		return wire.ErrNoSuchTable
	}
	go func() {
		<-release
		s.release(t, true)
	}()
	return nil
}
