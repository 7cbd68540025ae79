package daemontest

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"time"
)

// Helpers that the tests of several packages share.

// Buffer collects what a process or a logger writes, for a test that
// reads it as it comes: Write and String may be called from any
// goroutine.
type Buffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Must fails the test if err is not nil.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Open opens a client with open (libcyberdb.Open, or any function of its
// shape) on addr within 10 seconds, fails the test if it cannot, and
// closes the client when the test ends. It is generic so that this package
// need not import libcyberdb, whose own tests use it:
//
//	c := daemontest.Open(t, libcyberdb.Open, d.Socket)
func Open[C io.Closer, O any](t testing.TB, open func(context.Context, string, ...O) (C, error), addr string, opts ...O) C {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := open(ctx, addr, opts...)
	if err != nil {
		t.Fatalf("open %q: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Hammer calls work from n goroutines at once, each in a loop: goroutine
// g (0 to n-1) calls work(g, i) with i = 0, 1, 2, ... until work returns
// false or stop is called. stop waits for the goroutines to return; it may
// be called more than once. Tests use it to keep a daemon busy while it is
// restarted, killed or flooded.
func Hammer(n int, work func(g, i int) bool) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				if !work(g, i) {
					return
				}
			}
		}()
	}
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}
