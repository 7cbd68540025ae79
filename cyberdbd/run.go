package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/daemon"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/memtrim"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/options"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/systemd"
)

// run assembles the daemon and serves until ctx ends (SIGINT, SIGTERM) or
// a socket fails. What belongs to the process is done here: signals, the
// garbage collector, and systemd's sockets and notifications.
func run(ctx context.Context, o *options.Options, level *slog.LevelVar, log *slog.Logger) error {
	// From here on SIGHUP reloads instead of killing the daemon (its
	// default action); reloads are served once the daemon is ready.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// Before the data loads, which is when the heap grows most.
	if !o.KeepGOGC {
		debug.SetGCPercent(o.GCPercent)
	}
	// What systemd hears: progress while loading, READY=1, watchdog pings.
	sd := systemd.NewNotifier(log)
	// The sockets of the .socket units, if systemd started us.
	passed, err := systemd.Listeners()
	if err != nil {
		return err
	}
	// The sockets, the TCP listener, the store, and the data dir loaded.
	d, err := daemon.New(daemon.Config{
		Options:   o,
		Version:   buildVersion(),
		Logger:    log,
		LogLevel:  level,
		Unix:      passed.Unix,
		TCP:       passed.TCP,
		Metrics:   passed.Metrics,
		Activated: passed.Activated,
		Notifier:  sd,
		// A reload reads the same command line and --config file again.
		Reparse: func() (*options.Options, error) { return options.Parse(os.Args[1:], io.Discard) },
	})
	if err != nil {
		return err
	}
	// Memory goes back to the OS after bursts, drops and clients leaving.
	go memtrim.Run(ctx, log, time.Second, d.Activity)
	go func() {
		for range hup {
			d.Reload()
		}
	}()
	return d.Run(ctx)
}
