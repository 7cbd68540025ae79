package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/health"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/server"
)

// Check is the health check each watchdog ping depends on: a round trip
// through every event loop, through the store's write gate, store lock
// and table locks, and through the log's writer and file lock, all at
// once, each within limit. The error names each part that did not answer,
// and what it was waiting for.
func (d *Daemon) Check(limit time.Duration) error {
	ctx, cancel := health.WithLimit(context.Background(), limit)
	defer cancel()
	parts := []struct {
		name  string
		probe func(context.Context) error
	}{
		{"", d.srv.Probe}, // names its loops itself
		{"store: ", d.st.Probe},
		{"", d.data.probe},
	}
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.probe(ctx); err != nil {
				errs[i] = fmt.Errorf("%s%w", p.name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startCheckLimit bounds each attempt of the start-up check.
const startCheckLimit = 5 * time.Second

// waitServing returns once the daemon answers requests: the health check
// passes and a HELLO over each Unix socket is answered, through the accept
// loop and whatever serves the connection. Until then the daemon is not
// ready (no "cyberdbd ready", no READY=1) and says every few seconds what
// it waits for; under systemd, TimeoutStartSec= ends a start that never
// gets there. It returns an error when ctx ends (a stop signal) or a
// listener fails first (the error it failed with).
func waitServing(ctx context.Context, srv *server.Server, unix []net.Listener, check func(time.Duration) error,
	serveErr <-chan error, log *slog.Logger) error {
	start := time.Now()
	lastSaid := start
	for {
		err := check(startCheckLimit)
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, startCheckLimit)
			err = srv.CheckServing(cctx, unix)
			cancel()
		}
		if err == nil {
			return nil
		}
		if time.Since(lastSaid) >= startCheckLimit {
			lastSaid = time.Now()
			log.Warn("not ready yet: requests are not answered", "waiting", time.Since(start).Round(time.Second), "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-serveErr:
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
