//go:build cyberdbtest

package daemon

// Test hooks: compiled only with the cyberdbtest build tag, which the
// binaries the tests build have (internal/daemontest) and releases never
// do: nothing here can be switched on in a deployed daemon.
//
// $CYBERDB_TEST_WEDGE names a part of the daemon to wedge, for the tests
// of the watchdog and of readiness (health.go):
//
//	loop    event loop 0 stops in a round
//	store   the write lock of table "wedged" is held (the table is made)
//	log     the log's writer goroutine stops between rounds
//	fsync   the log's file lock is held, as by a hung everysec fsync
//	reload  every reload blocks
//
// Each SIGUSR1 wedges it, the next releases it, and so on; "start:loop"
// wedges it before the start-up check. Each change is logged ("test hook:
// wedged", "test hook: released"). $CYBERDB_TEST_RELOAD_TIMEOUT replaces
// the reload time limit (reload.go).

import (
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

func (d *Daemon) installTestHooks() {
	if v := os.Getenv("CYBERDB_TEST_RELOAD_TIMEOUT"); v != "" {
		if t, err := time.ParseDuration(v); err == nil {
			reloadTimeout = t
		}
	}
	spec := os.Getenv("CYBERDB_TEST_WEDGE")
	if spec == "" {
		return
	}
	what, atStart := strings.CutPrefix(spec, "start:")
	// mu guards release. Lock order: Daemon.reloadMu (the reload hook
	// runs under it), then mu, then the server's or the store's locks
	// (toggle wedges under mu).
	var mu sync.Mutex
	var release chan struct{} // closed to release the wedge; nil when not wedged
	if what == "reload" {
		d.reloadMu.Lock()
		d.reloadHooks = append(d.reloadHooks, func() error {
			mu.Lock()
			r := release
			mu.Unlock()
			if r != nil {
				<-r
			}
			return nil
		})
		d.reloadMu.Unlock()
	}
	toggle := func() {
		mu.Lock()
		defer mu.Unlock()
		if release != nil {
			close(release)
			release = nil
			d.log.Warn("test hook: released", "part", what)
			return
		}
		release = make(chan struct{})
		var err error
		switch what {
		case "loop":
			err = d.srv.WedgeLoopForTest(0, release)
		case "store":
			err = d.st.HoldTableForTest("wedged", release)
		case "log":
			err = d.data.db.WedgeLogForTest("writer", release)
		case "fsync":
			err = d.data.db.WedgeLogForTest("fsync", release)
		}
		if err != nil {
			d.log.Error("test hook: cannot wedge", "part", what, "err", err)
			return
		}
		d.log.Warn("test hook: wedged", "part", what)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	if atStart {
		toggle()
	}
	go func() {
		for range sig {
			toggle()
		}
	}()
}
