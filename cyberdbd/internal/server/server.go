package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/procs"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Config holds the server's settings; the zero value of a field means its default.
type Config struct {
	Version     string        // reported in HELLO and INFO
	MaxConns    int           // simultaneous connections; default 10000
	IdleTimeout time.Duration // close a connection silent this long; 0 = never
	MaxFrame    int           // largest request frame in bytes; default wire.DefaultMaxFrame
	Logger      *slog.Logger  // default slog.Default()

	// AllowUIDs and AllowGIDs, when either is set, admit on Unix sockets
	// only the peers whose uid, or effective or supplementary group, is
	// listed (SO_PEERCRED); others get a forbidden error. See peercred.go.
	AllowUIDs []uint32
	AllowGIDs []uint32

	// Persistence (cyberdbd/internal/persist); nil: none. Durable is
	// called before a connection sends replies that follow write ops and
	// blocks until those writes are as durable as --fsync promises (one
	// call covers a whole pipelined burst); if it fails the replies are
	// not sent and the connection is closed, since the writes may not be
	// durable. Save answers the save op once a snapshot is durable. Info
	// adds the persistence fields to the info op's map.
	Durable func() error
	Save    func() error
	// DurableSlow says Durable waits for fsyncs (--fsync always): an
	// event loop then calls it on a goroutine of its own and goes on
	// serving its other connections meanwhile, so that a reply to a read
	// never waits for other clients' fsyncs. Otherwise a loop calls it
	// inline: it returns in microseconds, less than the hand-off costs.
	DurableSlow bool
	Info        func(map[string]any)

	// What the daemon is doing (observe.go). Requests that take at least
	// SlowLog go to the slow log (0: none; SetSlowLog changes it live),
	// which keeps SlowLogLen entries (0: DefaultSlowLogLen). Settings
	// answers config_get and config_set (nil: they fail).
	SlowLog    time.Duration
	SlowLogLen int
	Settings   Settings
	// NoLatencyTracking turns the per-op latency histograms off
	// (SetLatencyTracking changes it live).
	NoLatencyTracking bool

	// IOLoops is how many event loops serve Unix-socket connections, each
	// from one goroutine with its own epoll set (Linux; ioloop_linux.go).
	// 0 serves each connection from a goroutine of its own, as TCP
	// connections always are (TLS) and every connection is on other
	// systems.
	IOLoops int

	// What a connection may make the daemon hold (limits.go). PartialTimeout
	// closes a connection that began a request frame and did not finish it
	// in time; default DefaultPartialTimeout. MaxPartialMemory bounds the
	// memory held for requests still arriving, across all connections;
	// default the larger of DefaultMaxPartialMemory and 2*MaxFrame.
	// OutputLimit bounds each connection's unread replies (nil:
	// DefaultOutputLimit), MaxOutputMemory all of them; default
	// DefaultMaxOutputMemory, negative: no limit.
	PartialTimeout   time.Duration
	MaxPartialMemory int64
	OutputLimit      *OutputLimit
	MaxOutputMemory  int64

	// MaxPushBuffer bounds each push connection's queue of server-pushed
	// messages not yet written, in bytes (push.go): past it, the
	// subscription whose message did not fit is dropped with a "lost"
	// push. Default DefaultMaxPushBuffer.
	MaxPushBuffer int
}

// DefaultMaxConns is the default for Config.MaxConns.
const DefaultMaxConns = 10000

// Server serves the protocol on any number of listeners.
type Server struct {
	cfg   Config
	store *store.Store
	log   *slog.Logger
	start time.Time

	closing      atomic.Bool // set under mu (see mu), read anywhere
	forceClose   atomic.Bool // Shutdown's context ended: close without a last frame
	nconns       atomic.Int64
	tcp          tcpState // what TCP listeners share: limits, throttle (tcp.go)
	connID       atomic.Uint64
	total        atomic.Uint64      // connections accepted since start
	opCount      [256]atomic.Uint64 // requests of authenticated connections, by known op
	unknownOps   atomic.Uint64      // and those with an op number no op has
	blockedTotal atomic.Uint64      // blocking requests parked since start
	obs          observer           // latency, slow log, monitors (observe.go)

	partial  memBudget    // memory held for requests still arriving (limits.go)
	outTotal atomic.Int64 // unsent replies of the connections whose socket is full
	outLimit OutputLimit
	warns    *warnLimits

	ps       pubsub        // channel and pattern subscriptions (pubsub.go)
	run      uint64        // this run's id, random: watch replies give it (a restart changes it)
	pushed   atomic.Uint64 // pushes queued since start
	pushLost atomic.Uint64 // pushes that did not fit a connection's queue (push.go)

	// mu guards listeners, conns, loops and loopsOff, and orders new
	// connections against Shutdown: accept adds one (to conns, or to a
	// loop) under mu only if closing is still false, and Shutdown sets
	// closing under mu, so it reaches every connection. Lock order: mu,
	// then ioLoop.mu (accept adopts a connection under mu); ioLoop.wmu,
	// a leaf, is taken under it too (Shutdown wakes the loops). It is
	// never held while a request runs (doc.go, "Locks").
	mu        sync.Mutex
	listeners map[net.Listener]struct{} // those Serve accepts on
	conns     map[*conn]struct{}        // connections with a goroutine of their own; a loop's are in ioLoop.conns
	wg        sync.WaitGroup            // connection goroutines and event loops
	loops     []*ioLoop                 // started by the first Serve, then never changed; nil: none
	loopsOff  bool                      // IOLoops is 0, or starting them failed
	workers   *workPool                 // the loops' slow requests (workers.go); set with loops
}

// New returns a server over st.
func New(cfg Config, st *store.Store) *Server {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = wire.DefaultMaxFrame
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.PartialTimeout <= 0 {
		cfg.PartialTimeout = DefaultPartialTimeout
	}
	if cfg.MaxPartialMemory <= 0 {
		cfg.MaxPartialMemory = max(DefaultMaxPartialMemory, 2*int64(cfg.MaxFrame))
	}
	if cfg.MaxPushBuffer <= 0 {
		cfg.MaxPushBuffer = DefaultMaxPushBuffer
	}
	if cfg.MaxOutputMemory == 0 {
		cfg.MaxOutputMemory = DefaultMaxOutputMemory
	}
	outLimit := DefaultOutputLimit
	if cfg.OutputLimit != nil {
		outLimit = *cfg.OutputLimit
	}
	s := &Server{
		cfg:       cfg,
		store:     st,
		log:       cfg.Logger,
		start:     time.Now(),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		outLimit:  outLimit,
		warns:     newWarnLimits(),
		run:       rand.Uint64(),
	}
	s.partial.limit = cfg.MaxPartialMemory
	s.obs.tracking.Store(!cfg.NoLatencyTracking)
	s.SetSlowLog(cfg.SlowLog, cfg.SlowLogLen)
	return s
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("cyberdbd: server closed")

// Serve accepts connections on l until Shutdown is called or l fails. It
// always returns a non-nil error; after Shutdown, ErrServerClosed. TCP
// listeners are served by ServeTCP (tcp.go).
func (s *Server) Serve(l net.Listener) error { return s.serve(l, nil) }

// serve is Serve, and ServeTCP when tl is not nil.
func (s *Server) serve(l net.Listener, tl *tcpListener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	if tl == nil {
		s.startLoops()
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// EMFILE and friends: wait and retry, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "listener", l.Addr().String(), "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept on %s: %w", l.Addr(), err)
		}
		backoff = 0
		s.accept(nc, tl)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// accept admits or refuses a new connection; tl is its TCP listener's
// state, nil on Unix sockets.
func (s *Server) accept(nc net.Conn, tl *tcpListener) {
	id := s.connID.Add(1)
	s.total.Add(1)
	if !s.admitPeer(nc, id) {
		return
	}
	if tl != nil {
		var ok bool
		if nc, ok = tl.admit(s, nc, id); !ok { // the address allowlist; TLS
			return
		}
	}
	if n := s.nconns.Add(1); n > int64(s.cfg.MaxConns) {
		s.nconns.Add(-1)
		warn(&s.warns.tooManyConns, s.log, "connection refused: too many connections", "conn", id, "remote", remoteName(nc), "max_conns", s.cfg.MaxConns)
		go refuse(nc, wire.Errorf(wire.CodeTooManyConns,
			"the server is at its limit of %d connections (--max-conns); close idle connections or raise the limit", s.cfg.MaxConns))
		return
	}
	c := newConn(s, nc, id)
	c.setPeer()
	c.tcp = tl
	if tl != nil && !tl.reserve(s, c) { // --max-tcp-conns, --max-tcp-unauth-conns
		s.nconns.Add(-1)
		return
	}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		c.releaseTCP()
		s.nconns.Add(-1)
		go refuse(nc, wire.Errorf(wire.CodeShuttingDown, "the server is shutting down; reconnect shortly"))
		return
	}
	if tl == nil && len(s.loops) > 0 {
		// Under s.mu, so that Shutdown's loops see every connection added.
		err := s.loops[id%uint64(len(s.loops))].adopt(c)
		if err == nil {
			s.mu.Unlock()
			return
		}
		s.log.Warn("the event loop could not take a connection; it gets a goroutine of its own", "conn", id, "err", err)
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		// A connection with a goroutine of its own computes off the
		// loops: it borrows the processors they leave (internal/procs).
		procs.Borrow()
		defer procs.Return()
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.releaseTCP()
		// Uncounted before it closes: a client that sees its connection
		// end may dial again at once without finding it still counted.
		s.nconns.Add(-1)
		c.nc.Close()
	}()
}

// startLoops starts Config.IOLoops event loops, once. If they cannot be
// started, connections get a goroutine each. Must hold s.mu.
func (s *Server) startLoops() {
	if s.loops != nil || s.loopsOff {
		return
	}
	if s.cfg.IOLoops <= 0 {
		s.loopsOff = true
		return
	}
	loops := make([]*ioLoop, 0, s.cfg.IOLoops)
	for range s.cfg.IOLoops {
		l, err := newIOLoop(s)
		if err != nil {
			for _, l := range loops {
				l.release()
			}
			s.log.Warn("event loops unavailable; serving each connection from its own goroutine", "err", err)
			s.loopsOff = true
			return
		}
		loops = append(loops, l)
	}
	s.loops = loops
	s.workers = newWorkPool(len(loops))
	for _, l := range loops {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer procs.Lean(1)() // while it runs, a loop needs one processor (internal/procs)
			l.run()
		}()
	}
}

// ioLoops is the number of event loops serving the Unix sockets (0: a
// goroutine per connection).
func (s *Server) ioLoops() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.loops)
}

// connClosed accounts for a connection an event loop closed.
func (s *Server) connClosed() { s.nconns.Add(-1) }

// refuse writes one error frame (id 0) and closes nc.
func refuse(nc net.Conn, e *wire.Error) {
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = nc.Write(wire.AppendError(nil, 0, e))
	_ = nc.Close()
}

// Shutdown stops every listener, lets requests already read finish and
// their replies be written, and closes all connections. It returns when all
// connections are closed or ctx ends (then the rest are closed abruptly).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	for l := range s.listeners {
		_ = l.Close()
	}
	for c := range s.conns {
		c.interrupt()
	}
	for _, l := range s.loops {
		l.wake()
	}
	s.mu.Unlock()
	s.stopMonitors()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.forceClose.Store(true)
		s.mu.Lock()
		for c := range s.conns {
			_ = c.nc.Close()
		}
		for _, l := range s.loops {
			l.wake()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// Conns is the number of open connections.
func (s *Server) Conns() int { return int(s.nconns.Load()) }

// info builds the INFO result map.
func (s *Server) info() map[string]any {
	st := s.store.Stats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	counts := make(map[string]uint64)
	var total uint64
	for i := range s.opCount {
		if n := s.opCount[i].Load(); n > 0 {
			counts[wire.Op(i).String()] = n
			total += n
		}
	}
	if n := s.unknownOps.Load(); n > 0 {
		counts["unknown"] = n // op numbers no op has
		total += n
	}
	pst := procs.Stats()
	m := map[string]any{
		"version":           s.cfg.Version,
		"proto":             wire.ProtocolVersion,
		"uptime_seconds":    int64(time.Since(s.start).Seconds()),
		"connections":       s.nconns.Load(),
		"connections_total": s.total.Load(),
		"max_connections":   s.cfg.MaxConns,
		"tables":            st.Tables,
		"entries":           st.Entries,
		"data_bytes":        st.Bytes,
		"expired":           st.Expired,
		"expired_tables":    st.ExpiredTables,
		"evicted":           st.Evicted,
		"pushed":            s.pushed.Load(),
		"push_lost":         s.pushLost.Load(),
		"tracking_keys":     st.TrackingKeys,
		"tracking_evicted":  st.TrackingEvicted,
		"ttl_entries":       st.TTLs,
		"memory_bytes":      ms.Sys - ms.HeapReleased,
		"heap_bytes":        ms.HeapAlloc,
		"ops":               counts,
		"ops_total":         total,
		"go_version":        runtime.Version(),
		"goroutines":        runtime.NumGoroutine(),
		"io_loops":          s.ioLoops(),
		"procs":             pst.Procs,
		"procs_full":        pst.Full,
		"procs_changes":     pst.Changes,
		"blocked_requests":  s.store.Waiting(),
		"blocked_total":     s.blockedTotal.Load(),
		"latency_us":        s.latencyInfo(), // op -> "p50/p99/p99.9"
		"slowlog_len":       s.obs.slow.len(),
	}
	s.tcpInfo(m)
	if s.cfg.Info != nil {
		s.cfg.Info(m)
	}
	return m
}

func remoteName(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil && a.String() != "" && a.String() != "@" {
		return a.String()
	}
	return "unix"
}
