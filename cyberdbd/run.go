package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/server"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
)

// shutdownGrace is how long requests in flight may take after a stop signal.
const shutdownGrace = 10 * time.Second

// run serves until ctx is cancelled (a signal) or a listener fails.
func run(ctx context.Context, cfg *config, log *slog.Logger) error {
	// From here on SIGHUP reloads (reload.go) instead of killing the daemon.
	reload := newReloaders(cfg, log, parseCommandLine)
	defer reload.stop()
	reload.add(reloadLogLevel, "log-level")
	// What systemd hears (notify.go); sd.progress reports long start-up work.
	sd := newNotifier(log)

	st := store.New()
	data := &dataDir{} // persist.go: the data dir, opened below
	srv := server.New(server.Config{
		Version:     buildVersion(),
		MaxConns:    cfg.maxConns,
		IdleTimeout: cfg.idleTimeout,
		MaxFrame:    cfg.maxFrame,
		IOLoops:     cfg.ioLoops,

		PartialTimeout:   cfg.partialTimeout,
		MaxPartialMemory: cfg.maxPartialMemory,
		OutputLimit:      &cfg.outputLimit,
		MaxOutputMemory:  cfg.maxOutputMemory,
		Logger:           log,
		AllowUIDs:        cfg.allowUIDs,
		AllowGIDs:        cfg.allowGIDs,
		Durable:          data.durable,
		Save:             data.save,
		Info:             data.info,
	}, st)
	// --gc-percent, and memory returned after bursts and drops: memflags.go
	setupMemory(ctx, cfg, log, func() (int64, int) { return st.Stats().Bytes, srv.Conns() })

	// systemd's sockets (socket activation), or the one at --socket.
	ls, err := openListeners(cfg)
	if err != nil {
		return err
	}
	// The TCP listener, if --tcp or systemd's "tcp" socket (tcp.go).
	tcp, err := setupTCP(cfg, ls, reload, srv, log)
	if err != nil {
		ls.Close()
		return err
	}
	// Lock the data dir, load the snapshot and replay the log (persist.go).
	// Clients that connect meanwhile wait in the listen backlog.
	if err := data.open(cfg, st, log, sd); err != nil {
		ls.Close()
		return err
	}
	defer data.close(log) // after Shutdown: the snapshot at clean shutdown
	serveErr := make(chan error, len(ls.Unix)+len(ls.TCP))
	for _, l := range ls.Unix {
		go func() { serveErr <- srv.Serve(l) }()
	}
	for _, l := range ls.TCP {
		go func() { serveErr <- srv.ServeTCP(l, tcp.config) }()
	}
	installTestHooks(srv, st, data, reload, log) // test builds only (testhooks.go); nothing in a release

	// Ready only once requests are answered (health.go): every event
	// loop, the store and the log's writer, and a HELLO over each Unix
	// socket.
	check := healthCheck(srv, st, data)
	err = waitServing(ctx, srv, ls.Unix, check, serveErr, log)
	if err == nil {
		log.Info("cyberdbd ready", "version", buildVersion(), "socket", ls.String(), "mode", ls.checkModes(cfg, log),
			"max_conns", cfg.maxConns, "idle_timeout", cfg.idleTimeout, "max_frame", cfg.maxFrame)
		// Readiness: the one place READY=1 goes to systemd (notify.go).
		sd.ready(func() string { return serverStatus(srv, st) }, check)
		reload.watch(sd)
		select {
		case <-ctx.Done():
		case err = <-serveErr:
		}
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, server.ErrServerClosed) {
		sd.stopping()
		_ = srv.Shutdown(context.Background())
		return err
	}
	log.Info("stopping: finishing requests in flight")
	sd.stopping()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("connections closed before their requests finished", "err", err)
	}
	data.close(log) // the snapshot at clean shutdown, once no request runs
	log.Info("cyberdbd stopped")
	return nil
}
