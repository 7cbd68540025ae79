// Package safefile reads the small files cyberdb is pointed at by its
// users (passwords, TLS certificates and keys, the daemon's config file)
// without trusting what the path names. A path may name a FIFO, whose
// open blocks until some writer comes (a daemon that never starts, a
// reload that never ends, a signal ignored meanwhile), a device that never
// ends (/dev/zero), or a file on a hung network file system. Read checks
// the type before it opens, opens without blocking, checks the type again
// on what it opened (the path may have been replaced in between), reads
// at most a given size, and gives up after a time limit.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// DefaultTimeout bounds a Read when Options.Timeout is 0: a local file is
// read in microseconds, so only a hung file system takes longer.
const DefaultTimeout = 5 * time.Second

// Options say what is read and what is accepted.
type Options struct {
	// What names the file in messages: "password file", "--tls-key".
	What string
	// MaxSize is the most bytes accepted; a larger file is an error.
	MaxSize int64
	// Forbidden are permission bits that must be clear: 0o077 refuses a
	// file that group or others may access, 0o007 one that others may.
	// Checked on the file opened.
	Forbidden fs.FileMode
	// Timeout bounds the whole read; 0 means DefaultTimeout.
	Timeout time.Duration
}

// ErrNotRegular is wrapped by the error of a path that does not name a
// regular file.
var ErrNotRegular = errors.New("not a regular file")

// Read returns the content of the regular file at path, as o says.
func Read(path string, o Options) ([]byte, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := read(path, o)
		done <- result{b, err}
	}()
	t := time.NewTimer(o.Timeout)
	defer t.Stop()
	select {
	case r := <-done:
		return r.b, r.err
	case <-t.C:
		// The goroutine is left to finish whenever the file system lets
		// it; the caller goes on.
		return nil, fmt.Errorf("%s %s: not read within %s (is it on a hung network file system?)", o.What, path, o.Timeout)
	}
}

func read(path string, o Options) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.What, err)
	}
	if err := checkType(path, fi, o); err != nil {
		return nil, err
	}
	return readOpen(path, o)
}

// readOpen opens path without blocking, so that should it have become a
// FIFO since it was checked the open returns at once, and reads it after
// checking what it opened.
func readOpen(path string, o Options) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.What, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.What, err)
	}
	if err := checkType(path, fi, o); err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&o.Forbidden != 0 {
		return nil, &ModeError{What: o.What, Path: path, Mode: perm, Forbidden: o.Forbidden}
	}
	b, err := io.ReadAll(io.LimitReader(f, o.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.What, err)
	}
	if int64(len(b)) > o.MaxSize {
		return nil, fmt.Errorf("%s %s is larger than %d bytes", o.What, path, o.MaxSize)
	}
	return b, nil
}

// ModeError is the error of a file that group or others may access when
// Options.Forbidden says they must not.
type ModeError struct {
	What, Path      string
	Mode, Forbidden fs.FileMode
}

func (e *ModeError) Error() string {
	who := "group and others"
	if e.Forbidden&0o070 == 0 {
		who = "others"
	}
	return fmt.Sprintf("%s %s has mode %04o: %s must not have access to it; run: chmod %o %s",
		e.What, e.Path, e.Mode, who, e.Mode&^e.Forbidden, e.Path)
}

func checkType(path string, fi fs.FileInfo, o Options) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	kind := "a special file"
	switch t := fi.Mode().Type(); {
	case t&fs.ModeDir != 0:
		kind = "a directory"
	case t&fs.ModeNamedPipe != 0:
		kind = "a FIFO (named pipe)"
	case t&fs.ModeSocket != 0:
		kind = "a socket"
	case t&fs.ModeDevice != 0:
		kind = "a device"
	}
	return fmt.Errorf("%s %s is %s, %w: give the path of a plain file", o.What, path, kind, ErrNotRegular)
}
