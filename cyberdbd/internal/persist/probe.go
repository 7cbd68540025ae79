package persist

import (
	"context"
	"errors"
	"fmt"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/health"
)

// logProbes are the watchdog's round trips through the log (DB.Probe).
type logProbes struct {
	writer health.Queue  // run by the writer goroutine after each round of writes
	files  health.Waiter // takes fileMu, which a (--fsync everysec) fsync holds
}

// Probe is the watchdog's round trip through the append-only log
// (cyberdbd's health check): the writer goroutine must run a round, which
// with --fsync always includes its fsync, and fileMu, held by the
// everysec fsync and by segment rotation, must be free for an instant,
// before ctx ends. A write or fsync hung on a failing disk fails it: the
// daemon is then restarted by systemd's watchdog rather than left
// accepting writes it cannot make durable, or none at all. Without the
// log there is nothing to probe.
func (db *DB) Probe(ctx context.Context) error {
	l := db.alog
	if l == nil {
		return nil
	}
	wdone := make(chan error, 1)
	go func() { wdone <- l.probes.writer.RoundTrip(ctx, l.kick) }()
	ferr := l.probes.files.Wait(ctx, func(step func(string)) {
		step("the log file lock (held by an fsync?)")
		l.fileMu.Lock()
		l.fileMu.Unlock() // held for an instant: having had it is the point
	})
	werr := <-wdone
	if werr != nil {
		werr = fmt.Errorf("the log writer %w", werr)
	}
	if ferr != nil {
		ferr = fmt.Errorf("the log: %w", ferr)
	}
	return errors.Join(werr, ferr)
}

// kick wakes the writer goroutine for a round.
func (l *appendLog) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}
