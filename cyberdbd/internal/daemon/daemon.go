// Package daemon assembles cyberdbd from its parts and runs it: given
// Options, New opens the Unix socket (or takes the ones systemd passed),
// the TCP listener with its TLS material and password, the store, and the
// data dir, whose snapshot and log it loads; Start serves and returns once
// requests are answered; Shutdown answers what was read, takes the last
// snapshot and closes everything; Run is the three for a process, and
// Reload applies a changed configuration. It touches nothing that belongs
// to the process (signals, the default logger, the garbage collector,
// $LISTEN_FDS; only test builds' hooks catch SIGUSR1), so a Go program can
// run a real daemon in-process, as package main does for the command.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/memlimit"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/options"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/persist"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/server"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
)

// Config is what New needs: the options, and what the process around the
// daemon provides.
type Config struct {
	// Options are the settings; New validates them (Parse already has).
	Options *options.Options
	// Version is reported in HELLO, INFO and the ready line; "" is "dev".
	Version string
	// Logger receives the daemon's log; nil: slog.Default().
	Logger *slog.Logger
	// LogLevel is the level of Logger's handler: a reload that changes
	// log-level sets it. Nil: a changed log-level needs a restart.
	LogLevel *slog.LevelVar
	// Unix and TCP are listening sockets systemd passed (socket
	// activation), which the daemon serves and closes. When Unix is empty
	// it listens at Options.Socket; it listens at Options.TCP when set.
	Unix, TCP []net.Listener
	// Metrics are sockets systemd passed for the Prometheus endpoint
	// (metrics.go); else it listens at Options.Metrics when set.
	Metrics []net.Listener
	// Activated says Unix and TCP came from systemd, for the log.
	Activated bool
	// Notifier hears what the daemon does (systemd); nil: nobody.
	Notifier Notifier
	// Reparse reads the configuration again for Reload: the command line
	// and the --config file. Nil: Reload fails, saying so.
	Reparse func() (*options.Options, error)
	// Clock is where the store reads the time for expiry; nil: the
	// system clock. Tests move it (package embed's FastForward).
	Clock store.Clock
}

// Notifier hears the daemon's progress; systemd.Notifier tells systemd.
// Progress and Ready are called while Start runs, Stopping by Shutdown,
// Reloading and Reloaded by the goroutine of the reloads.
type Notifier interface {
	// Progress reports start-up work that takes a while (loading data).
	Progress(status string, extend time.Duration)
	// Ready says the daemon answers requests; status summarises it in one
	// line, and check is the health check (Daemon.Check).
	Ready(status func() string, check func(limit time.Duration) error)
	Reloading()
	Reloaded(err error)
	Stopping()
}

// shutdownGrace is how long Run lets requests in flight take after ctx
// ends (a stop signal).
const shutdownGrace = 10 * time.Second

// Daemon is an assembled cyberdbd.
type Daemon struct {
	o       *options.Options // as given to New; a reload's are in applied
	version string
	log     *slog.Logger
	level   *slog.LevelVar
	notify  Notifier
	reparse func() (*options.Options, error)

	st        *store.Store
	mem       *memlimit.Guard // --max-memory
	srv       *server.Server
	data      *dataDir
	unix      []net.Listener // served like --socket
	tcp       *tcpListener   // nil: no TCP listener
	metrics   *metricsServer // nil: no Prometheus endpoint (metrics.go)
	activated bool

	serveErr chan error // the first error of each Serve; buffered for all

	// The store's sweeper and the memory guard run from Start until stop,
	// which ends them (cancel) and waits (background) before the log closes.
	cancel     context.CancelFunc
	background sync.WaitGroup

	// Of the goroutine that calls Start and Shutdown.
	started  bool
	stopOnce sync.Once

	// The reloads (reload.go). Reload sends on reloads; watchReloads,
	// started by Start, runs them until stopReloads is closed.
	reloads     chan struct{}
	stopReloads chan struct{}
	// reloadMu guards applied and reloadHooks; it is held while a reload
	// applies settings, so reloads apply one at a time. Lock order:
	// reloadMu before any lock of the server or the store (a reload
	// closes old password sessions: Server.mu).
	reloadMu    sync.Mutex
	applied     *options.Options // the settings in effect
	reloadHooks []func() error   // test hooks (testhooks.go), run by each reload
}

// New assembles a daemon: it opens the Unix socket at Options.Socket
// unless cfg.Unix has sockets, loads the TCP listener's TLS material and
// password and opens Options.TCP (so that a bad file stops the daemon
// before anything is served), then locks the data dir and loads it into a
// new store. Clients that connect meanwhile wait in the listen backlog.
// Nothing is served until Start. New takes the sockets in cfg: on error
// they are closed.
func New(cfg Config) (*Daemon, error) {
	if cfg.Options == nil {
		cfg.Options = options.Default()
	}
	o := cfg.Options
	listeners := slices.Concat(cfg.Unix, cfg.TCP, cfg.Metrics)
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	if err := o.Validate(); err != nil {
		closeAll()
		return nil, err
	}
	uids, gids, _ := o.PeerIDs() // checked by Validate
	d := &Daemon{
		o:           o,
		version:     cfg.Version,
		log:         cfg.Logger,
		level:       cfg.LogLevel,
		notify:      cfg.Notifier,
		reparse:     cfg.Reparse,
		st:          newStore(cfg.Clock),
		mem:         memlimit.New(o.MemoryLimit()),
		data:        &dataDir{},
		unix:        cfg.Unix,
		activated:   cfg.Activated,
		reloads:     make(chan struct{}, 1),
		stopReloads: make(chan struct{}),
		applied:     o,
	}
	d.st.SetTrackingMaxKeys(int64(o.TrackingMaxKeys))
	if d.version == "" {
		d.version = "dev"
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.notify == nil {
		d.notify = nobody{}
	}
	d.srv = server.New(server.Config{
		Version:     d.version,
		MaxConns:    o.MaxConns,
		IdleTimeout: o.IdleTimeout,
		MaxFrame:    int(o.MaxFrame),
		IOLoops:     o.Loops(),

		PartialTimeout:    o.PartialTimeout,
		MaxPartialMemory:  int64(o.MaxPartialMemory),
		OutputLimit:       &o.OutputLimit,
		MaxOutputMemory:   o.OutputMemory(),
		MaxPushBuffer:     int(o.MaxPushBuffer),
		Logger:            d.log,
		AllowUIDs:         uids,
		AllowGIDs:         gids,
		Durable:           d.data.durable,
		DurableSlow:       o.Fsync == persist.FsyncAlways,
		Save:              d.data.save,
		Info:              d.info,
		SlowLog:           o.SlowLogThreshold,
		SlowLogLen:        o.SlowLogLen,
		NoLatencyTracking: !o.LatencyTracking,
		Settings:          settings{d},
	}, d.st)

	// systemd's sockets, or the one at --socket (listen.go).
	if len(d.unix) == 0 {
		l, err := listenUnix(o)
		if err != nil {
			closeAll()
			return nil, err
		}
		d.unix = []net.Listener{l}
		listeners = append(listeners, l)
	}
	// The TCP listener, if --tcp or systemd's "tcp" socket (tcp.go).
	tcp, err := newTCPListener(o, cfg.TCP, d.srv, d.log)
	if err != nil {
		closeAll()
		return nil, err
	}
	d.tcp = tcp
	if tcp != nil && len(tcp.ls) > len(cfg.TCP) {
		listeners = append(listeners, tcp.ls[len(cfg.TCP):]...)
	}
	// The Prometheus endpoint, if --metrics or systemd's "metrics" socket.
	if d.metrics, err = newMetricsServer(d, o.Metrics, cfg.Metrics); err != nil {
		closeAll()
		return nil, err
	}
	if d.metrics != nil && len(cfg.Metrics) == 0 {
		listeners = append(listeners, d.metrics.ls...)
	}
	// Lock the data dir, load the snapshot and replay the log (data.go).
	if err := d.data.open(o, d.st, d.log, d.notify); err != nil {
		closeAll()
		return nil, err
	}
	d.mem.Check(d.st) // the first requests find the store told

	d.serveErr = make(chan error, len(listeners))
	return d, nil
}

// Start serves the sockets and returns once requests are answered (every
// event loop, the store and the log's writer answer, and a HELLO over each
// Unix socket; see waitServing), or with an error when ctx ends or a
// socket fails first; then call Shutdown. Once ready it logs the ready
// line, tells the Notifier, and from then on runs the reloads asked for.
func (d *Daemon) Start(ctx context.Context) error {
	d.started = true
	// Expiry: what expired while the daemon was down goes first. And the
	// memory limit. Both end in stop, before the log closes.
	bg, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.background.Add(2)
	go func() { defer d.background.Done(); d.st.RunExpiry(bg) }()
	go func() { defer d.background.Done(); d.mem.Run(bg, d.st) }()
	for _, l := range d.unix {
		go func() { d.serveErr <- d.srv.Serve(l) }()
	}
	if d.tcp != nil {
		for _, l := range d.tcp.ls {
			go func() { d.serveErr <- d.srv.ServeTCP(l, d.tcp.config) }()
		}
	}
	if d.metrics != nil {
		d.metrics.start(d.log)
	}
	d.installTestHooks() // test builds only (testhooks.go); nothing in a release

	if err := waitServing(ctx, d.srv, d.unix, d.Check, d.serveErr, d.log); err != nil {
		return err
	}
	d.log.Info("cyberdbd ready", "version", d.version, "socket", d.socketsString(), "mode", d.checkModes(),
		"max_conns", d.o.MaxConns, "idle_timeout", d.o.IdleTimeout, "max_frame", int(d.o.MaxFrame),
		"max_memory", d.mem.Limit())
	d.notify.Ready(d.Status, d.Check)
	go d.watchReloads()
	return nil
}

// Run starts the daemon and serves until ctx ends (a stop signal), then
// shuts down, giving requests in flight shutdownGrace to finish; it
// returns nil. If a socket fails first it stops at once and returns the
// error.
func (d *Daemon) Run(ctx context.Context) error {
	err := d.Start(ctx)
	if err == nil {
		select {
		case <-ctx.Done():
		case err = <-d.serveErr:
		}
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, server.ErrServerClosed) {
		d.stop(context.Background(), false)
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	_ = d.Shutdown(sctx)
	return nil
}

// Shutdown stops accepting, answers the requests already read, closes
// the connections (abruptly once ctx ends: then it returns ctx's error),
// takes the shutdown snapshot and unlocks the data dir. Only the first
// call does anything.
func (d *Daemon) Shutdown(ctx context.Context) error {
	return d.stop(ctx, true)
}

// stop is Shutdown; a stop that is not graceful (a socket failed) logs
// only what went wrong.
func (d *Daemon) stop(ctx context.Context, graceful bool) (err error) {
	d.stopOnce.Do(func() {
		if graceful {
			d.log.Info("stopping: finishing requests in flight")
		}
		close(d.stopReloads)
		d.notify.Stopping()
		if !d.started { // nothing serves them yet, so Server.Shutdown would not close them
			for _, l := range d.unix {
				l.Close()
			}
			if d.tcp != nil {
				for _, l := range d.tcp.ls {
					l.Close()
				}
			}
		}
		if d.metrics != nil {
			d.metrics.stop() // before the data dir closes: scrapes read it
		}
		if err = d.srv.Shutdown(ctx); err != nil && graceful {
			d.log.Warn("connections closed before their requests finished", "err", err)
		}
		if d.cancel != nil {
			d.cancel() // the sweeper journals: it stops before the log closes
			d.background.Wait()
		}
		d.data.close(d.log) // the snapshot at clean shutdown, once no request runs
		if graceful {
			d.log.Info("cyberdbd stopped")
		}
	})
	return err
}

// newStore returns the store, reading clock when one is given.
func newStore(clock store.Clock) *store.Store {
	if clock == nil {
		return store.New()
	}
	return store.New(store.WithClock(clock))
}

// info adds the data dir's and the memory limit's figures to INFO.
func (d *Daemon) info(m map[string]any) {
	d.data.info(m)
	m["used_memory"] = d.mem.Used()
	m["max_memory"] = d.mem.Limit()
	m["over_memory"] = d.mem.Over()
}

// Activity is what memory trimming cannot read from the runtime: the
// bytes the store holds, and the open connections.
func (d *Daemon) Activity() (dataBytes int64, conns int) {
	return d.st.Stats().Bytes, d.srv.Conns()
}

// Status is the one-line summary (systemd's STATUS=), e.g. "serving 3
// connections; 5 tables, 1200 entries". It takes the store's lock.
func (d *Daemon) Status() string {
	s := d.st.Stats()
	return fmt.Sprintf("serving %s; %s, %s", count(int64(d.srv.Conns()), "connection"),
		count(int64(s.Tables), "table"), count(s.Entries, "entry"))
}

func count(n int64, noun string) string {
	switch {
	case n == 1:
		return "1 " + noun
	case strings.HasSuffix(noun, "y"):
		return fmt.Sprintf("%d %sies", n, noun[:len(noun)-1])
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// nobody is the Notifier when none is given.
type nobody struct{}

func (nobody) Progress(string, time.Duration)                       {}
func (nobody) Ready(func() string, func(limit time.Duration) error) {}
func (nobody) Reloading()                                           {}
func (nobody) Reloaded(error)                                       {}
func (nobody) Stopping()                                            {}
