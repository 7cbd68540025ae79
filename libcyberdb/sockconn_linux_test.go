package libcyberdb

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sockPair returns the two ends of a Unix socket connection, the first
// taken over by a sockConn.
func sockPair(t *testing.T) (*sockConn, net.Conn) {
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
	s, err := newSockConn(nc, rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); peer.Close() })
	return s, peer
}

// TestSockConn: what net.Conn does, sockConn does: whole writes larger
// than the socket's buffer (waiting for room), reads that wait,
// deadlines that cut a read and lose nothing, EOF, Close during a read
// or a write (net.ErrClosed), a peer gone (EPIPE, as nothingWritten
// knows it), CloseWrite, and no descriptor left behind.
func TestSockConn(t *testing.T) {
	t.Run("big write and read", func(t *testing.T) {
		s, peer := sockPair(t)
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: many socket buffers
		done := make(chan error, 1)
		go func() {
			n, err := s.Write(big)
			if err == nil && n != len(big) {
				err = io.ErrShortWrite
			}
			done <- err
		}()
		time.Sleep(20 * time.Millisecond) // the writer waits for room
		got, err := io.ReadAll(io.LimitReader(peer, int64(len(big))))
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("peer read %d bytes (%v), want the %d written", len(got), err, len(big))
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if s.armed {
			t.Fatal("the socket is still watched for room after the write")
		}
		go func() {
			time.Sleep(20 * time.Millisecond)
			peer.Write(big)
		}()
		got, err = io.ReadAll(io.LimitReader(s, int64(len(big))))
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("read %d bytes (%v), want %d", len(got), err, len(big))
		}
	})
	t.Run("deadline", func(t *testing.T) {
		s, peer := sockPair(t)
		s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		var b [8]byte
		if n, err := s.Read(b[:]); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read past its deadline: %d, %v; want os.ErrDeadlineExceeded", n, err)
		}
		s.SetReadDeadline(time.Time{})
		peer.Write([]byte("abc"))
		if n, err := s.Read(b[:]); err != nil || string(b[:n]) != "abc" {
			t.Fatalf("read after the deadline's reset: %q, %v", b[:n], err)
		}
		// A deadline set during a read cuts it (interrupt's way).
		go func() {
			time.Sleep(20 * time.Millisecond)
			s.SetReadDeadline(time.Unix(1, 0))
		}()
		if _, err := s.Read(b[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read cut by a past deadline: %v", err)
		}
	})
	t.Run("EOF", func(t *testing.T) {
		s, peer := sockPair(t)
		peer.Write([]byte("x"))
		peer.Close()
		got, err := io.ReadAll(s)
		if err != nil || string(got) != "x" {
			t.Fatalf("ReadAll: %q, %v; want \"x\" and nil (EOF)", got, err)
		}
	})
	t.Run("close during a read", func(t *testing.T) {
		s, _ := sockPair(t)
		closed := make(chan error, 1)
		go func() {
			time.Sleep(20 * time.Millisecond)
			closed <- s.Close()
		}()
		var b [8]byte
		if _, err := s.Read(b[:]); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read cut by Close: %v; want net.ErrClosed", err)
		}
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Close(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("second Close: %v; want net.ErrClosed", err)
		}
		if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after Close: %v; want net.ErrClosed", err)
		}
	})
	t.Run("close during a write waiting for room", func(t *testing.T) {
		s, _ := sockPair(t)
		done := make(chan error, 1)
		go func() {
			_, err := s.Write(make([]byte, 8<<20)) // nobody reads
			done <- err
		}()
		time.Sleep(30 * time.Millisecond)
		s.Close()
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("write cut by Close: %v; want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not end a write waiting for room")
		}
	})
	t.Run("peer gone", func(t *testing.T) {
		s, peer := sockPair(t)
		peer.Close()
		_, err := s.Write([]byte("hello"))
		if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("write to a closed peer: %v; want EPIPE or ECONNRESET", err)
		}
		if !nothingWritten(0, err) {
			t.Fatalf("nothingWritten does not recognise %v", err)
		}
		var n int
		var perr error
		if err := s.Control(func(fd uintptr) { n, perr = peekFD(fd) }); err != nil || n != 0 || perr != nil {
			t.Fatalf("peek of a closed peer: %d, %v, %v; want 0 (the end)", n, perr, err)
		}
	})
	t.Run("CloseWrite", func(t *testing.T) {
		s, peer := sockPair(t)
		s.Write([]byte("bye"))
		if err := s.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(peer)
		if err != nil || string(got) != "bye" {
			t.Fatalf("peer read %q, %v; want \"bye\" then EOF", got, err)
		}
	})
	t.Run("no descriptor left", func(t *testing.T) {
		before := len(fdList(t))
		for range 20 {
			s, peer := sockPair(t)
			s.Close()
			peer.Close()
		}
		runtime.GC()
		if after := len(fdList(t)); after > before {
			t.Fatalf("%d descriptors open after 20 connections came and went, %d before", after, before)
		}
	})
	t.Run("close racing a read and a write", func(t *testing.T) {
		// Close at any moment of a read and a write in progress (in a
		// callback, waiting, or between): both end, nothing leaks.
		before := len(fdList(t))
		for i := range 100 {
			s, peer := sockPair(t)
			go io.Copy(io.Discard, peer) // drains, so the write makes progress
			done := make(chan struct{}, 2)
			go func() {
				var b [512]byte
				for {
					if _, err := s.Read(b[:]); err != nil {
						break
					}
				}
				done <- struct{}{}
			}()
			go func() {
				buf := make([]byte, 64<<10)
				for {
					if _, err := s.Write(buf); err != nil {
						break
					}
				}
				done <- struct{}{}
			}()
			time.Sleep(time.Duration(i%10) * 100 * time.Microsecond)
			s.Close()
			for range 2 {
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					t.Fatalf("iteration %d: a read or a write did not end after Close", i)
				}
			}
			peer.Close()
		}
		if after := len(fdList(t)); after > before {
			t.Fatalf("%d descriptors open after 100 closes racing I/O, %d before", after, before)
		}
	})
	t.Run("lost unclosed", func(t *testing.T) {
		// A sockConn dropped without Close closes its socket when
		// collected, as a net.Conn would: the daemon sees the end.
		path := filepath.Join(t.TempDir(), "s")
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		func() {
			nc, err := net.Dial("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			rc, _ := nc.(*net.UnixConn).SyscallConn()
			if _, err := newSockConn(nc, rc); err != nil {
				t.Fatal(err)
			}
		}()
		peer, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		done := make(chan error, 1)
		go func() {
			var b [1]byte
			_, err := peer.Read(b[:])
			done <- err
		}()
		for i := 0; ; i++ {
			runtime.GC()
			select {
			case err := <-done:
				if !errors.Is(err, io.EOF) {
					t.Fatalf("peer read %v; want EOF", err)
				}
				return
			case <-time.After(50 * time.Millisecond):
			}
			if i == 100 {
				t.Fatal("a sockConn lost unclosed still holds its socket after 100 collections")
			}
		}
	})
	t.Run("addresses", func(t *testing.T) {
		s, _ := sockPair(t)
		if a := s.RemoteAddr(); a == nil || !strings.HasSuffix(a.String(), "/s") {
			t.Fatalf("RemoteAddr: %v", a)
		}
	})
}
