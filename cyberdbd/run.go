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
	st := store.New()
	srv := server.New(server.Config{
		Version:     buildVersion(),
		MaxConns:    cfg.maxConns,
		IdleTimeout: cfg.idleTimeout,
		MaxFrame:    cfg.maxFrame,
		Logger:      log,
	}, st)

	l, err := server.ListenUnix(cfg.socket, cfg.socketMode)
	if err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(l) }()
	log.Info("cyberdbd ready", "version", buildVersion(), "socket", cfg.socket, "mode", cfg.socketMode.String(),
		"max_conns", cfg.maxConns, "idle_timeout", cfg.idleTimeout, "max_frame", cfg.maxFrame)

	select {
	case <-ctx.Done():
		log.Info("stopping: finishing requests in flight")
	case err := <-serveErr:
		if !errors.Is(err, server.ErrServerClosed) {
			_ = srv.Shutdown(context.Background())
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("connections closed before their requests finished", "err", err)
	}
	log.Info("cyberdbd stopped")
	return nil
}
