package persist

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// lockName is the lock file in the data dir. It holds the pid of the
// daemon that has it locked (flock, released by the kernel when that
// process ends, however it ends).
const lockName = "LOCK"

// ErrLocked is returned (wrapped) by Open when another process holds the
// data dir.
var ErrLocked = errors.New("data dir is locked")

type lockedError struct{ dir, holder string }

func (e *lockedError) Error() string {
	return fmt.Sprintf("data dir %s is locked by %s: another cyberdbd is running", e.dir, e.holder)
}

func (e *lockedError) Is(target error) bool { return target == ErrLocked }

// lockDir creates dir (0700) if needed and takes its exclusive lock.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		holder := "another process"
		if pid, perr := strconv.Atoi(string(bytes.TrimSpace(b[:n]))); perr == nil && pid > 0 {
			holder = "pid " + strconv.Itoa(pid)
		}
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &lockedError{dir: dir, holder: holder}
		}
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
