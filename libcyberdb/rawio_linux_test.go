package libcyberdb

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// rawPair returns the two ends of a Unix socket connection, the first
// wrapped in a rawIO.
func rawPair(t *testing.T) (*rawIO, net.Conn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	nc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	peer := <-acc
	if peer == nil {
		t.Fatal("accept failed")
	}
	rc, err := nc.(*net.UnixConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	r := newRawIO(nc, rc).(*rawIO)
	t.Cleanup(func() { nc.Close(); peer.Close() })
	return r, peer
}

// TestRawIO: what net.Conn's Read and Write do, rawIO does: whole writes
// larger than the socket's buffer (waiting for room), reads that wait,
// deadlines, EOF, Close, and a peer gone (EPIPE, seen by errors.Is).
func TestRawIO(t *testing.T) {
	t.Run("big write and read", func(t *testing.T) {
		r, peer := rawPair(t)
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: many socket buffers
		done := make(chan error, 1)
		go func() {
			n, err := r.Write(big)
			if err == nil && n != len(big) {
				err = io.ErrShortWrite
			}
			done <- err
		}()
		got, err := io.ReadAll(io.LimitReader(peer, int64(len(big))))
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("peer read %d bytes (%v), want the %d written", len(got), err, len(big))
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// And back: a read waits for the peer's bytes.
		go func() {
			time.Sleep(20 * time.Millisecond)
			peer.Write(big)
		}()
		got, err = io.ReadAll(io.LimitReader(r, int64(len(big))))
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("read %d bytes (%v), want %d", len(got), err, len(big))
		}
	})
	t.Run("deadline", func(t *testing.T) {
		r, peer := rawPair(t)
		r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		var b [8]byte
		if n, err := r.Read(b[:]); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read past its deadline: %d, %v; want os.ErrDeadlineExceeded", n, err)
		}
		// Reset, the read goes on and loses nothing.
		r.SetReadDeadline(time.Time{})
		peer.Write([]byte("abc"))
		if n, err := r.Read(b[:]); err != nil || string(b[:n]) != "abc" {
			t.Fatalf("read after the deadline's reset: %q, %v", b[:n], err)
		}
	})
	t.Run("EOF", func(t *testing.T) {
		r, peer := rawPair(t)
		peer.Write([]byte("x"))
		peer.Close()
		got, err := io.ReadAll(r)
		if err != nil || string(got) != "x" {
			t.Fatalf("ReadAll: %q, %v; want \"x\" and nil (EOF)", got, err)
		}
	})
	t.Run("close during a read", func(t *testing.T) {
		r, _ := rawPair(t)
		go func() {
			time.Sleep(20 * time.Millisecond)
			r.Close()
		}()
		var b [8]byte
		if _, err := r.Read(b[:]); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read cut by Close: %v; want net.ErrClosed", err)
		}
	})
	t.Run("peer gone", func(t *testing.T) {
		r, peer := rawPair(t)
		peer.Close()
		time.Sleep(10 * time.Millisecond)
		var err error
		for range 3 { // the first write may land in the buffer before the reset is seen
			if _, err = r.Write([]byte("hello")); err != nil {
				break
			}
		}
		if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("write to a closed peer: %v; want EPIPE or ECONNRESET", err)
		}
		if !nothingWritten(0, err) {
			t.Fatalf("nothingWritten does not recognise %v", err)
		}
	})
}
