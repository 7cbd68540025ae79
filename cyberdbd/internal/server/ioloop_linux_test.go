package server

// Tests of what only the event loops (ioloop_linux.go) have.

import (
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// An event loop's connection keeps the buffer of a big request for the
// next one (charged to the partial budget), and lets it go once idle for
// keepIdle: an idle connection holds a small buffer at most.
func TestConnKeptBufferDroppedWhenIdle(t *testing.T) {
	ts := startTestServer(t, ioMode{"loop", 2}, Config{})
	c := ts.dial()
	c.hello(1)
	for id := uint64(2); id < 4; id++ {
		c.send(mustReq(id, wire.OpPing, make([]byte, 512<<10)))
		c.expect(id, wire.CodeOK)
	}
	if used := ts.srv.partial.used.Load(); used < 512<<10 {
		t.Fatalf("partial budget used %d after a 512 KiB request, want its buffer kept and charged", used)
	}
	deadline := time.Now().Add(keepIdle + 5*time.Second)
	for ts.srv.partial.used.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("partial budget still used (%d) %s after the connection went idle", ts.srv.partial.used.Load(), keepIdle+5*time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.send(mustReq(4, wire.OpPing))
	c.expect(4, wire.CodeOK)
}
