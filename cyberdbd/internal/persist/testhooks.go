//go:build cyberdbtest

package persist

import "errors"

// Test hooks: compiled only with the cyberdbtest build tag, which the
// tests' binaries have (internal/daemontest) and releases never do.

// WedgeLogForTest blocks a part of the log until release is closed:
// "writer" stops the writer goroutine between rounds, as a write or an
// fsync (--fsync always) hung on a failing disk would; "fsync" holds the
// file lock, as a hung everysec fsync does.
func (db *DB) WedgeLogForTest(what string, release <-chan struct{}) error {
	l := db.alog
	if l == nil {
		return errors.New("no log (--appendonly=false)")
	}
	switch what {
	case "writer":
		l.probes.writer.Do(func() { <-release }, l.kick)
	case "fsync":
		locked := make(chan struct{})
		go func() {
			l.fileMu.Lock()
			close(locked)
			<-release
			l.fileMu.Unlock()
		}()
		<-locked
	default:
		return errors.New("want writer or fsync")
	}
	return nil
}
