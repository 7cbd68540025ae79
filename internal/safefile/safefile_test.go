package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open")
	if err := os.WriteFile(open, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o640)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	o := Options{What: "password file", MaxSize: 64, Forbidden: 0o077}

	for _, p := range []string{good, link} {
		b, err := Read(p, o)
		if err != nil || string(b) != "secret\n" {
			t.Errorf("Read(%s) = %q, %v", p, b, err)
		}
	}
	for _, tc := range []struct {
		path string
		o    Options
		want string
	}{
		{fifo, o, "is a FIFO (named pipe), not a regular file"},
		{dir, o, "is a directory"},
		{"/dev/zero", o, "is a device"},
		{open, o, "has mode 0640: group and others must not have access to it; run: chmod 600 " + open},
		{good, Options{What: "f", MaxSize: 3}, "larger than 3 bytes"},
		{filepath.Join(dir, "missing"), o, "no such file"},
	} {
		start := time.Now()
		_, err := Read(tc.path, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Read(%s): %v, want %q", tc.path, err, tc.want)
		}
		if el := time.Since(start); el > time.Second {
			t.Errorf("Read(%s) took %s", tc.path, el)
		}
	}
	if _, err := Read(fifo, o); !errors.Is(err, ErrNotRegular) {
		t.Errorf("FIFO: %v, want ErrNotRegular", err)
	}
	// Others only: group access is fine.
	if _, err := Read(open, Options{What: "f", MaxSize: 64, Forbidden: 0o007}); err != nil {
		t.Errorf("group-readable file with Forbidden 0o007: %v", err)
	}
}

// TestReadFIFOSwappedIn: a FIFO put in place between the check and the
// open is opened without blocking and refused.
func TestReadFIFOSwappedIn(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := readOpen(fifo, Options{What: "f", MaxSize: 8}) // past the check, as if swapped in after it
	if !errors.Is(err, ErrNotRegular) || time.Since(start) > time.Second {
		t.Fatalf("read(fifo) = %v after %s", err, time.Since(start))
	}
}
