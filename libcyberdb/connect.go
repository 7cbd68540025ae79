package libcyberdb

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// How a Client opens its connections and bounds its calls: WithDialer,
// WithOnConnect, WithTimeout, WithHealthCheck.

// Defaults of the connection options.
const (
	// DefaultTimeout bounds a call whose context has no deadline
	// (WithTimeout): a daemon that is hung (stopped, deadlocked, swapped
	// out) fails the call after this long instead of blocking it forever.
	// Generous, since a big operation (Save, Keys of a large table) may
	// take seconds.
	DefaultTimeout = 10 * time.Second

	// DefaultHealthCheck is how long a connection may carry no call
	// before its next use first checks it with a PING (WithHealthCheck).
	DefaultHealthCheck = 30 * time.Second
)

// DialFunc opens a connection, as net.Dialer's DialContext does. network
// is "unix" or "tcp". WithDialer's function opens the network connection
// only (TLS and HELLO come after it); the next function of a Hook.Dial
// returns the connection with its HELLO answered.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// connectConfig holds the options of this file (config.conn).
type connectConfig struct {
	dial        DialFunc                                 // WithDialer; nil: net.Dialer
	onConnect   func(ctx context.Context, c *Conn) error // WithOnConnect
	timeout     time.Duration                            // WithTimeout; 0: none
	healthCheck time.Duration                            // WithHealthCheck; 0: never
}

// logCheck is a hook for tests: a failed health check.
func (connectConfig) logCheck(addr string, id uint64, err error) {}

func defaultConnectConfig() connectConfig {
	return connectConfig{timeout: DefaultTimeout, healthCheck: DefaultHealthCheck}
}

// WithDialer makes the Client open its connections with dial instead of
// net.Dialer: to go through a proxy or a tunnel, set socket options, or
// count connections. dial gets "unix" and the socket path, or "tcp" and
// host:port for tcp:// addresses (TLS is then done over the connection
// dial returns). With WithServerUID, dial must return a *net.UnixConn, whose
// peer is checked. A dial error of a daemon that is not there yet (a
// missing socket, ECONNREFUSED) is retried within the dial time-out, as
// with the default dialer.
func WithDialer(dial DialFunc) Option { return func(c *config) { c.conn.dial = dial } }

// WithOnConnect calls f on every new connection, once its HELLO is
// answered and before any call uses it: to create the tables the
// program needs after a restart of the daemon, or to check its version
// (c.Info). c carries the calls f makes over that connection only; f must
// not keep it, nor close it. An error from f closes the connection and
// fails the call that needed it (it is not retried): return one only
// when the connection must not be used. f runs within the dial time-out.
func WithOnConnect(f func(ctx context.Context, c *Conn) error) Option {
	return func(c *config) { c.conn.onConnect = f }
}

// WithTimeout bounds each call whose context has no deadline to d,
// resends included (default DefaultTimeout); a call that runs out fails
// with an error matching context.DeadlineExceeded. A context deadline,
// when there is one, is the only bound, earlier or later. d <= 0 turns
// the default bound off: such calls then wait as long as their context.
// Opening a connection is bounded by WithDialTimeout.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.conn.timeout = max(d, 0) } }

// WithHealthCheck makes a connection that carried no call for d answer a
// PING before its next call (default DefaultHealthCheck): a shared one,
// and a Conn's alike. One that does not answer within the dial time-out
// (or 2 s, if shorter) is closed and the call goes to another connection
// (a Conn dials its next one), so that a connection that died silently
// while idle (a network path gone, a daemon frozen) costs one check
// rather than a call's time-out. A connection the daemon closes (restart,
// --idle-timeout) is dropped at once, without a check. Stats counts the
// checks (HealthChecks) and those that failed (HealthChecksFailed).
// The connections that Subscribe and CachedDict dedicate to the daemon's
// pushes are not checked: they carry no calls to check before. d <= 0
// turns checks off.
func WithHealthCheck(d time.Duration) Option {
	return func(c *config) { c.conn.healthCheck = max(d, 0) }
}

// netDial opens the network connection of a dial: WithDialer's function
// or net.Dialer.
func (d dialer) netDial(ctx context.Context, network, address string) (net.Conn, error) {
	if d.custom != nil {
		return d.custom(ctx, network, address)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, address)
}

// connected runs WithOnConnect's function on a connection that has just
// completed its handshake. The connection's goroutines are started for
// it, and it is counted as pinned meanwhile, so that Client.Close closes
// it; the caller adds it to the pool afterwards (start is then a no-op).
func (p *pool) connected(ctx context.Context, cn *conn) (*conn, error) {
	f := p.cfg.conn.onConnect
	if f == nil {
		return cn, nil
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = cn.nc.Close()
		return nil, ErrClosed
	}
	cn.start()
	p.pinned[cn] = struct{}{}
	p.mu.Unlock()

	c := &Client{p: p}
	c.tableOps.x = c
	pc := &Conn{c: c, cn: cn, fixed: true}
	pc.tableOps.x = pc
	err := f(ctx, pc)
	if err == nil && cn.unusable.Load() {
		err = fmt.Errorf("the connection was lost: %w", ErrConnClosed)
	}
	p.mu.Lock()
	delete(p.pinned, cn)
	p.mu.Unlock()
	if err != nil {
		p.stats.dialErrors.Add(1)
		cn.shutdown(err)
		return nil, fmt.Errorf("cyberdb: on-connect function (WithOnConnect) on a new connection to %s: %w", p.dialer.display, err)
	}
	return cn, nil
}

// tickClock bounds the calls that WithTimeout applies to without a timer
// per call (a timer's start and stop cost a few hundred nanoseconds, a
// tenth of a pipelined call): a goroutine per Client, started by the
// first such call, ticks timeoutTicks times per time-out, closing a
// channel at each tick; a waiting call wakes at each tick and gives up
// once the tick count reaches its expiry. A call expires between one
// time-out and one time-out plus a tick after it started.
type tickClock struct {
	n    atomic.Int64                  // ticks so far
	ch   atomic.Pointer[chan struct{}] // closed at the next tick
	once sync.Once                     // starts the goroutine
}

// timeoutTicks is how many ticks make a time-out.
const timeoutTicks = 8

func (t *tickClock) init() {
	ch := make(chan struct{})
	t.ch.Store(&ch)
}

// expiry returns the tick at which cl expires when WithTimeout bounds it
// (ctx has no deadline), else 0; it starts the clock the first time.
func (p *pool) expiry(ctx context.Context, cl *call) int64 {
	if p.cfg.conn.timeout <= 0 || cl.blocking {
		// A blocking pop waits as long as its own time-out says (the
		// daemon answers null then), or its context.
		return 0
	}
	if _, ok := ctx.Deadline(); ok {
		return 0
	}
	p.ticks.once.Do(p.startTicks)
	cl.timeout = p.cfg.conn.timeout
	// +1: the current tick is partly gone.
	return p.ticks.n.Load() + timeoutTicks + 1
}

func (p *pool) startTicks() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return // calls fail with ErrClosed: nothing to bound
	}
	p.wg.Add(1)
	go p.tickLoop(max(p.cfg.conn.timeout/timeoutTicks, time.Millisecond))
}

func (p *pool) tickLoop(period time.Duration) {
	defer p.wg.Done()
	tk := time.NewTicker(period)
	defer tk.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-tk.C:
		}
		next := make(chan struct{})
		old := p.ticks.ch.Swap(&next)
		p.ticks.n.Add(1) // before the close: a woken call sees the new count
		close(*old)
	}
}

// channel is what a call waits on for WithTimeout: nil when it has no
// bound.
func (t *tickClock) channel(cl *call) <-chan struct{} {
	if cl.expires == 0 {
		return nil
	}
	return *t.ch.Load()
}

// next is channel after a tick: nil once cl has expired.
func (t *tickClock) next(cl *call) <-chan struct{} {
	if t.n.Load() >= cl.expires {
		return nil
	}
	return *t.ch.Load()
}

// canceled is why a call stopped waiting: its context, or its WithTimeout
// bound.
func (cl *call) canceled(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return &timeoutError{cl.timeout}
}

// timeoutError is a call that ran out of its WithTimeout bound.
type timeoutError struct{ d time.Duration }

func (e *timeoutError) Error() string {
	return fmt.Sprintf("no reply within %s (WithTimeout; the daemon may be hung or overloaded): %v", e.d, context.DeadlineExceeded)
}

func (e *timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// Timeout makes it a net.Error-style time-out.
func (e *timeoutError) Timeout() bool { return true }

// markIdleLocked notes, for WithHealthCheck, the connections, shared or
// pinned by a Conn, that have carried no call since the last look for at
// least the check's period: their next use checks them first (checked).
// It reads each connection's request counter, so that calls pay nothing
// for it. Called by the cleaner with p.mu held.
func (p *pool) markIdleLocked(now time.Time) {
	d := p.cfg.conn.healthCheck
	if d <= 0 {
		return
	}
	for _, cn := range p.list {
		p.markIfIdleLocked(cn, now, d)
	}
	for cn := range p.pinned {
		// A dedicated push connection (subscriptions, the read cache's
		// invalidations) takes no calls to check before: skipped.
		if cn.hooks == nil {
			p.markIfIdleLocked(cn, now, d)
		}
	}
}

func (p *pool) markIfIdleLocked(cn *conn, now time.Time, d time.Duration) {
	cn.mu.Lock()
	id := cn.nextID
	cn.mu.Unlock()
	if id != cn.seenID || cn.seenAt.IsZero() {
		cn.seenID, cn.seenAt = id, now
		return
	}
	if now.Sub(cn.seenAt) >= d && cn.load.Load() == 0 {
		cn.stale.Store(true)
		cn.seenAt = now // checked again after another period, if still idle
	}
}

// checked reports whether cn may take a call: it is not marked stale by
// markIdleLocked, or it answers a PING. One that does not is closed. A
// check that the caller's context ends tells nothing about cn: cn stays
// stale, for its next use to check, and takes the call, which fails on
// that context.
func (p *pool) checked(ctx context.Context, cn *conn) bool {
	if !cn.alive() { // readside.go: a quiet Unix connection whose daemon left
		return false
	}
	if !cn.stale.Load() || !cn.stale.CompareAndSwap(true, false) {
		return true
	}
	p.stats.healthChecks.Add(1)
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, min(p.cfg.dialTimeout, 2*time.Second))
	defer cancel()
	cl := newCall(wire.OpPing)
	cn.roundTrip(ctx, cl)
	ok := cl.fate == fateReply
	var err error
	if ok {
		_, err = decodeReply(cl.reply)
		ok = err == nil
	} else if cl.err != nil {
		err = cl.err
	}
	if cl.state != stateAbandoned {
		cl.release()
	}
	if !ok && cl.fate == fateCanceled && parent.Err() != nil {
		cn.stale.Store(true)
		return true
	}
	if !ok {
		// Closed as a lost connection (not shutdown's deliberate close):
		// a call that took it meanwhile gets the resend rules of a lost
		// connection, and the pool counts a reconnect.
		p.stats.healthChecksFailed.Add(1)
		p.cfg.conn.logCheck(p.dialer.display, cn.serverID, err)
		cn.unusable.Store(true)
		_ = cn.nc.Close()
	}
	return ok
}
