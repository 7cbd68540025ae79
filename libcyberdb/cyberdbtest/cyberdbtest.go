// Package cyberdbtest runs a real cyberdb daemon inside a test, as
// net/http/httptest runs an HTTP server: one line gives a test its own
// daemon on a temporary Unix socket and a Client connected to it, both
// gone when the test ends.
//
//	func TestHits(t *testing.T) {
//		db := cyberdbtest.New(t)
//		hits := libcyberdb.NewDict[string, int](db.Client, "hits")
//		...
//		db.FastForward(time.Hour) // entries with a TTL under an hour are gone
//	}
//
// The daemon is the one the cyberdbd command runs (package
// cyberdbd/embed), not a simulation: what passes here passes against a
// deployed daemon. Each Server is independent, so tests using it can run
// in parallel. Its expiry clock moves only forward, with real time and
// FastForward.
package cyberdbtest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/embed"
	"github.com/cyberdb/cyberdb/libcyberdb"
)

// Server is a running daemon and a Client connected to it.
type Server struct {
	// Client is connected to the daemon; Close closes it.
	Client *libcyberdb.Client
	// Addr is the daemon's socket path, for libcyberdb.Open or the
	// cyberdb command (cyberdb -s ADDR ...).
	Addr string

	srv *embed.Server
}

// Option configures a Server.
type Option func(*config)

type config struct {
	flags      []string
	clientOpts []libcyberdb.Option
	logger     *slog.Logger
	dataDir    string
}

// WithFlags passes cyberdbd's command-line flags (cyberdbd --help) to
// the daemon, e.g. WithFlags("--idle-timeout=1s", "--max-conns=8").
// --socket and --data-dir are not accepted: see WithDataDir.
func WithFlags(flags ...string) Option {
	return func(c *config) { c.flags = append(c.flags, flags...) }
}

// WithClientOptions configures Server.Client.
func WithClientOptions(opts ...libcyberdb.Option) Option {
	return func(c *config) { c.clientOpts = append(c.clientOpts, opts...) }
}

// WithDataDir keeps the daemon's snapshot and log in dir (which the test
// owns), so that a second Server on the same dir finds the data.
// Default: a temporary directory removed at Close.
func WithDataDir(dir string) Option { return func(c *config) { c.dataDir = dir } }

// WithLogger sends the daemon's log to l. New's default is the test's
// log (t.Log), warnings and errors only; Start's is none.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// New starts a daemon for the test t and returns it with a connected
// Client; t.Cleanup closes both. A daemon that cannot start fails the
// test (t.Fatal).
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	w := &testWriter{t: t}
	opts = append([]Option{WithLogger(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})))}, opts...)
	s, err := Start(opts...)
	if err != nil {
		t.Fatalf("cyberdbtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("cyberdbtest: %v", err)
		}
		w.stop() // nothing logs to t once its test is over
	})
	return s
}

// Start starts a daemon and connects a Client, for code that has no
// testing.TB (an Example, a TestMain); call Close when done.
func Start(opts ...Option) (*Server, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := embed.Start(ctx, embed.Config{Flags: cfg.flags, DataDir: cfg.dataDir, Logger: cfg.logger})
	if err != nil {
		return nil, err
	}
	c, err := libcyberdb.Open(ctx, srv.Socket(), cfg.clientOpts...)
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("connecting to the daemon at %s: %w", srv.Socket(), err)
	}
	return &Server{Client: c, Addr: srv.Socket(), srv: srv}, nil
}

// FastForward moves the daemon's expiry clock ahead by d, as if d had
// gone by: entries and tables whose deadline it passes are expired from
// the next call on (reads stop seeing them at once; the sweeper removes
// them within a second). TTLs report what is left after the jump.
func (s *Server) FastForward(d time.Duration) { s.srv.FastForward(d) }

// Now is the daemon's time: the system's plus the fast-forwards.
func (s *Server) Now() time.Time { return s.srv.Now() }

// Close closes the Client and the daemon, and removes the temporary
// files. Close is idempotent.
func (s *Server) Close() error {
	s.Client.Close()
	return s.srv.Close()
}

// testWriter writes the daemon's log lines to t.Log, until stop.
type testWriter struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log("cyberdbd: " + strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
