// Package embed runs a cyberdbd inside a Go process, for tests.
//
// It is the daemon of the cyberdbd command, assembled the same way (the
// same options, store, persistence and server), listening on a Unix
// socket, without what belongs to a process: no signals, no systemd, no
// change to the default logger or the garbage collector. Package
// libcyberdb/cyberdbtest wraps it for tests in one line; use this
// package directly to run a daemon beside a program's own tests in other
// shapes (several daemons, a restart, a chosen data dir).
//
//	s, err := embed.Start(ctx, embed.Config{})
//	...
//	defer s.Close()
//	c, err := libcyberdb.Open(ctx, s.Socket())
//
// Caveats: the daemon shares the process with its clients, so a test of
// crashes or of memory limits wants the real binary instead; and the
// expiry clock is the Server's (FastForward), not the system's.
package embed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/daemon"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/options"
)

// Config is what Start needs; its zero value runs a daemon with the
// defaults on a new temporary socket and data dir.
type Config struct {
	// Socket is the Unix socket to listen on; "": cyberdb.sock in a new
	// temporary directory, removed by Close.
	Socket string
	// DataDir holds the snapshot and the log; "": a new temporary
	// directory, removed by Close. Give one to keep data over a restart.
	DataDir string
	// Flags are cyberdbd's command-line flags (see cyberdbd --help), e.g.
	// "--max-conns=10", "--idle-timeout=1s". They must not set --socket
	// or --data-dir: use the fields above.
	Flags []string
	// Logger receives the daemon's log; nil: discarded.
	Logger *slog.Logger
	// Clock is where the daemon reads the time for expiry; nil: the
	// system clock. FastForward moves the daemon's time ahead of it.
	Clock interface{ Now() time.Time }
}

// Server is a running daemon. Its methods are safe for concurrent use.
type Server struct {
	d      *daemon.Daemon
	socket string
	clock  *offsetClock
	temp   []string // directories Close removes

	closeOnce sync.Once
	closeErr  error
}

// Start assembles a daemon from cfg, starts it and returns once it
// answers requests on its socket, or with an error (ctx ended, a bad
// flag, the socket or data dir in use).
func Start(ctx context.Context, cfg Config) (*Server, error) {
	for _, f := range cfg.Flags {
		name, _, _ := strings.Cut(strings.TrimLeft(f, "-"), "=")
		if name == "socket" || name == "data-dir" {
			return nil, fmt.Errorf("embed: flag %q: set Config.Socket or Config.DataDir instead", f)
		}
	}
	o, err := options.Parse(cfg.Flags, io.Discard)
	if err != nil {
		return nil, fmt.Errorf("embed: %w", err)
	}
	s := &Server{clock: &offsetClock{base: cfg.Clock}}
	if s.clock.base == nil {
		s.clock.base = systemClock{}
	}
	fail := func(err error) (*Server, error) {
		s.removeTemp()
		return nil, err
	}
	if cfg.Socket == "" {
		// os.MkdirTemp, not a test's TempDir: a socket path must be short
		// (108 bytes on Linux), and a test's name can be long.
		dir, err := os.MkdirTemp("", "cyberdb")
		if err != nil {
			return fail(fmt.Errorf("embed: %w", err))
		}
		s.temp = append(s.temp, dir)
		cfg.Socket = filepath.Join(dir, "cyberdb.sock")
	}
	if cfg.DataDir == "" {
		dir, err := os.MkdirTemp("", "cyberdb-data")
		if err != nil {
			return fail(fmt.Errorf("embed: %w", err))
		}
		s.temp = append(s.temp, dir)
		cfg.DataDir = dir
	}
	o.Socket, o.DataDir = cfg.Socket, cfg.DataDir
	s.socket = o.Socket
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d, err := daemon.New(daemon.Config{Options: o, Version: "embed", Logger: logger, Clock: s.clock})
	if err != nil {
		return fail(fmt.Errorf("embed: %w", err))
	}
	if err := d.Start(ctx); err != nil {
		_ = d.Shutdown(context.Background())
		return fail(fmt.Errorf("embed: %w", err))
	}
	s.d = d
	return s, nil
}

// Socket is the path of the daemon's Unix socket, for libcyberdb.Open.
func (s *Server) Socket() string { return s.socket }

// FastForward moves the daemon's expiry clock ahead by d: entries and
// tables whose deadline it passes are expired from then on, as if d had
// gone by. It cannot move the clock back (d <= 0 does nothing).
func (s *Server) FastForward(d time.Duration) {
	if d > 0 {
		s.clock.offset.Add(int64(d))
	}
}

// Now is the daemon's time: the clock's reading plus the fast-forwards.
func (s *Server) Now() time.Time { return s.clock.Now() }

// Shutdown stops the daemon as SIGTERM would: it answers the requests
// already read, closes the connections (abruptly once ctx ends, and then
// returns ctx's error) and takes the shutdown snapshot. It keeps the
// temporary directories; Close removes them.
func (s *Server) Shutdown(ctx context.Context) error { return s.d.Shutdown(ctx) }

// Close shuts the daemon down, giving requests in flight 5 seconds, and
// removes the temporary socket directory and data dir it made. Close is
// idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := s.d.Shutdown(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("embed: requests still running after 5s were cut off: %w", err)
		}
		s.closeErr = errors.Join(err, s.removeTemp())
	})
	return s.closeErr
}

func (s *Server) removeTemp() error {
	var errs []error
	for _, dir := range s.temp {
		errs = append(errs, os.RemoveAll(dir))
	}
	s.temp = nil
	return errors.Join(errs...)
}

// offsetClock is base's time plus what FastForward added.
type offsetClock struct {
	base   interface{ Now() time.Time }
	offset atomic.Int64 // nanoseconds
}

func (c *offsetClock) Now() time.Time { return c.base.Now().Add(time.Duration(c.offset.Load())) }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
