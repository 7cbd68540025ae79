package daemon

import (
	"errors"
	"fmt"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/options"
)

// reloadTimeout bounds a reload. Each file it reads has a shorter limit
// of its own (safefile), so only something else hanging (a user or group
// lookup on a hung directory service) takes it this long.
var reloadTimeout = 30 * time.Second

// Reload asks for the configuration to be read again (Config.Reparse) and
// what can change live to be applied: the log level, and the TCP
// listener's certificate, key, client CA, password and --password-change.
// A setting that changed but needs a restart is logged as such (under
// systemd a restart refuses no client); on an error the daemon carries on
// with the settings it has. Reload returns at once: reloads run one at a
// time once the daemon is ready, and requests that come while one is
// pending are one.
func (d *Daemon) Reload() {
	select {
	case d.reloads <- struct{}{}:
	default:
	}
}

// watchReloads runs the reloads asked for, telling the Notifier, until
// Shutdown.
//
// A reload that has not finished within reloadTimeout is reported as
// failed (the daemon goes on with the settings it has) and left to finish.
// A request that comes while it still runs is not silently dropped: it is
// reported as failed at once, saying why, and a reload runs as soon as the
// stuck one ends, so the latest files are applied then.
func (d *Daemon) watchReloads() {
	var (
		done    chan error       // the reload in flight; nil when none
		since   time.Time        // when it started
		timeout <-chan time.Time // its time limit; nil once reported
		queued  bool             // a request came meanwhile
	)
	start := func() {
		d.notify.Reloading()
		done, since = make(chan error, 1), time.Now()
		go func(done chan<- error) { done <- d.reload() }(done)
		timeout = time.After(reloadTimeout)
	}
	for {
		select {
		case <-d.stopReloads:
			return
		case <-d.reloads:
			if done == nil {
				start()
				continue
			}
			queued = true
			if timeout != nil {
				d.log.Info("SIGHUP during a reload: another reload follows it")
				continue
			}
			// The one in flight was reported as failed: this request
			// gets its answer now.
			err := fmt.Errorf("the reload started %s ago has not finished: this one will run when it does", time.Since(since).Round(time.Second))
			d.log.Error("reload postponed", "err", err)
			d.notify.Reloading()
			d.notify.Reloaded(err)
		case err := <-done:
			if timeout != nil {
				d.notify.Reloaded(err)
			} else {
				d.log.Warn("the reload that timed out has finished", "took", time.Since(since).Round(time.Millisecond), "err", err)
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
			d.log.Error("reload failed", "err", err)
			d.notify.Reloaded(err)
		}
	}
}

// reload reads the configuration again and applies it.
func (d *Daemon) reload() error {
	d.log.Info("reloading configuration (SIGHUP)")
	if d.reparse == nil {
		err := errors.New("the daemon was given no way to read its configuration again (daemon.Config.Reparse)")
		d.log.Error("reload failed; keeping the current settings", "err", err)
		return err
	}
	o, err := d.reparse()
	if err != nil {
		d.log.Error("reload failed; keeping the current settings", "err", err)
		return err
	}
	return d.apply(o)
}

// apply applies what can change live of o, and logs what changed: as
// applied, or as needing a restart. The settings in effect are compared
// with o as typed values (options.Changes).
func (d *Daemon) apply(o *options.Options) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	now := *d.applied // what is in effect once this reload is done
	var errs []error
	if d.level != nil {
		d.level.Set(o.LogLevel)
		now.LogLevel = o.LogLevel
	}
	if d.tcp != nil {
		if err := d.tcp.reload(o); err != nil {
			errs = append(errs, fmt.Errorf("%v: %w", tcpSettings, err))
		} else {
			now.TLSCert, now.TLSKey, now.TLSClientCA = o.TLSCert, o.TLSKey, o.TLSClientCA
			now.PasswordFile, now.PasswordChange = o.PasswordFile, o.PasswordChange
		}
	}
	d.mem.SetLimit(o.MemoryLimit())
	now.MaxMemory = o.MaxMemory
	d.st.SetTrackingMaxKeys(int64(o.TrackingMaxKeys))
	now.TrackingMaxKeys = o.TrackingMaxKeys
	d.srv.SetSlowLog(o.SlowLogThreshold, o.SlowLogLen)
	now.SlowLogThreshold, now.SlowLogLen = o.SlowLogThreshold, o.SlowLogLen
	d.srv.SetLatencyTracking(o.LatencyTracking)
	now.LatencyTracking = o.LatencyTracking
	for _, hook := range d.reloadHooks {
		if err := hook(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range options.Changes(d.applied, &now) {
		d.log.Info("setting changed", "setting", c.Setting, "from", c.From, "to", c.To)
	}
	for _, c := range options.Changes(&now, o) {
		d.log.Warn("setting changed but needs a restart to take effect (systemctl restart cyberdbd refuses no client)",
			"setting", c.Setting, "running_with", c.From, "new", c.To)
	}
	d.applied = &now
	if err := errors.Join(errs...); err != nil {
		d.log.Error("reload failed in part", "err", err)
		return err
	}
	d.log.Info("configuration reloaded")
	return nil
}
