package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"
)

// reloaders re-read the configuration on SIGHUP (systemctl reload) and
// apply what can change while the daemon runs. Each part of the daemon
// that can reload registers itself with add, naming the flags it owns;
// today that is the log level, later the TLS certificate and the password
// file. A reload parses the command line and the --config file again
// exactly as at start; a setting that changed but that no reloader owns is
// logged as needing a restart (under systemd a restart refuses no client).
type reloaders struct {
	log   *slog.Logger
	parse func() (*config, error)
	sig   chan os.Signal

	mu      sync.Mutex
	list    []reloader
	applied map[string]string // the settings in effect, by flag name
}

type reloader struct {
	flags []string
	apply func(*config) error
}

// newReloaders starts catching SIGHUP, so that from here on a SIGHUP does
// not kill the daemon (its default action); signals are handled once
// watch is called. parse is how a reload reads the configuration again.
func newReloaders(cfg *config, log *slog.Logger, parse func() (*config, error)) *reloaders {
	r := &reloaders{log: log, parse: parse, sig: make(chan os.Signal, 1), applied: maps.Clone(cfg.settings)}
	signal.Notify(r.sig, syscall.SIGHUP)
	return r
}

// parseCommandLine re-reads the daemon's own command line and config file.
func parseCommandLine() (*config, error) { return parseFlags(os.Args[1:], io.Discard) }

// add registers apply, run at each reload with the new configuration; it
// owns the named flags.
func (r *reloaders) add(apply func(*config) error, flags ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, reloader{flags: flags, apply: apply})
}

// reloadTimeout bounds a reload. Each file it reads has a shorter limit
// of its own (safefile), so only something else hanging (a user or group
// lookup on a hung directory service) takes it this long.
var reloadTimeout = 30 * time.Second

// watch reloads on each SIGHUP, telling systemd through n, until stop.
//
// A reload that has not finished within reloadTimeout is reported as
// failed (the daemon goes on with the settings it has) and left to finish.
// A SIGHUP that comes while it still runs is not silently dropped: it is
// reported as failed at once, saying why, and a reload runs as soon as
// the stuck one ends, so the latest files are applied then.
func (r *reloaders) watch(n *notifier) {
	go func() {
		var (
			done    chan error       // the reload in flight; nil when none
			since   time.Time        // when it started
			timeout <-chan time.Time // its time limit; nil once reported
			queued  bool             // a SIGHUP came meanwhile
		)
		start := func() {
			n.reloading()
			done, since = make(chan error, 1), time.Now()
			go func(done chan<- error) { done <- r.reload() }(done)
			timeout = time.After(reloadTimeout)
		}
		for {
			select {
			case _, ok := <-r.sig:
				if !ok {
					return
				}
				if done == nil {
					start()
					continue
				}
				queued = true
				if timeout != nil {
					r.log.Info("SIGHUP during a reload: another reload follows it")
					continue
				}
				// The one in flight was reported as failed: this SIGHUP
				// gets its answer now.
				err := fmt.Errorf("the reload started %s ago has not finished: this one will run when it does", time.Since(since).Round(time.Second))
				r.log.Error("reload postponed", "err", err)
				n.reloading()
				n.reloaded(err)
			case err := <-done:
				if timeout != nil {
					n.reloaded(err)
				} else {
					r.log.Warn("the reload that timed out has finished", "took", time.Since(since).Round(time.Millisecond), "err", err)
				}
				done, timeout = nil, nil
				if queued {
					queued = false
					start()
				}
			case <-timeout:
				timeout = nil
				err := fmt.Errorf("reload did not finish within %s; still serving with the previous settings "+
					"(a file on a hung file system? a user or group lookup that hangs?)", reloadTimeout)
				r.log.Error("reload failed", "err", err)
				n.reloaded(err)
			}
		}
	}()
}

// stop stops catching SIGHUP.
func (r *reloaders) stop() {
	signal.Stop(r.sig)
	close(r.sig)
}

// reload reads the configuration again and applies it. On an error the
// daemon carries on with the settings it has.
func (r *reloaders) reload() error {
	r.log.Info("reloading configuration (SIGHUP)")
	cfg, err := r.parse()
	if err != nil {
		r.log.Error("reload failed; keeping the current settings", "err", err)
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	owned := map[string]bool{}
	var errs []error
	for _, rl := range r.list {
		if err := rl.apply(cfg); err != nil {
			errs = append(errs, fmt.Errorf("%v: %w", rl.flags, err))
			continue
		}
		for _, f := range rl.flags {
			owned[f] = true
			if r.applied[f] != cfg.settings[f] {
				r.log.Info("setting changed", "setting", f, "from", r.applied[f], "to", cfg.settings[f])
				r.applied[f] = cfg.settings[f]
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.settings)) {
		if !owned[name] && r.applied[name] != cfg.settings[name] {
			r.log.Warn("setting changed but needs a restart to take effect (systemctl restart cyberdbd refuses no client)",
				"setting", name, "running_with", r.applied[name], "new", cfg.settings[name])
		}
	}
	if err := errors.Join(errs...); err != nil {
		r.log.Error("reload failed in part", "err", err)
		return err
	}
	r.log.Info("configuration reloaded")
	return nil
}

// reloadLogLevel is the reloader of --log-level.
func reloadLogLevel(cfg *config) error {
	logLevel.Set(cfg.logLevel)
	return nil
}
