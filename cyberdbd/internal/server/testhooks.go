//go:build cyberdbtest

package server

import (
	"errors"
	"time"
)

// Test hooks: compiled only with the cyberdbtest build tag, which the
// tests' binaries have (internal/daemontest) and releases never do.

// WedgeLoopForTest blocks event loop i in a round until release is
// closed, as a loop stuck in a request would be. It waits up to 5s for
// the loops to start.
func (s *Server) WedgeLoopForTest(i int, release <-chan struct{}) error {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s.mu.Lock()
		loops, off := s.loops, s.loopsOff
		s.mu.Unlock()
		switch {
		case i < len(loops):
			loops[i].do(func() { <-release })
			return nil
		case off || time.Now().After(deadline):
			return errors.New("no such event loop (--io-loops=0?)")
		}
	}
}
