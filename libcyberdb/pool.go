package libcyberdb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// pool is the Client's set of shared connections.
//
// Calls pick the least-loaded usable connection without taking a lock
// (the set is an immutable slice swapped atomically). A new connection is
// dialed, by the calling goroutine, only when every open one already has
// calls in flight and the pool is below its size; so a Client used by one
// goroutine at a time keeps one connection, and one under heavy
// concurrency spreads over all of them. Dead connections leave the set as
// soon as their reader notices; they are replaced lazily, by the next call
// that needs one.
type pool struct {
	cfg       config
	dialer    dialer
	rawFrames bool       // DialRaw: connections for the caller's own frames, without the push extension
	hooks     hookChains // WithHooks (hooks.go)
	ticks     tickClock  // WithTimeout's clock (connect.go)

	conns     atomic.Pointer[[]*conn]   // shared connections, read without locking
	pushHooks atomic.Pointer[pushHooks] // push hooks of the shared connections (push.go), or nil
	cache     atomic.Pointer[cache]     // the read cache (cache.go), made by the first CachedDict

	mu      sync.Mutex
	list    []*conn // == *conns; written under mu
	pinned  map[*conn]struct{}
	dialing int
	changed chan struct{} // closed (and replaced) whenever the set changes
	closed  bool
	lost    int // connections lost and not yet replaced
	// The last dial that found no daemon (ErrUnavailable, not its
	// caller's context): when it began, and its error. The callers that
	// were already waiting in get when it began get its error too.
	failedDial struct {
		start time.Time
		err   error
	}
	cleaning bool
	done     chan struct{} // closed by close

	wg sync.WaitGroup // connection goroutines and the cleaner

	stats struct {
		dialAttempts, dials, dialErrors atomic.Uint64
		waits, waitNanos, timeouts      atomic.Uint64
		retries, reconnects             atomic.Uint64
		closedIdle, closedLifetime      atomic.Uint64
		lostConns                       atomic.Uint64

		healthChecks, healthChecksFailed atomic.Uint64 // WithHealthCheck (connect.go)
	}
}

func newPool(cfg config, d dialer) *pool {
	p := &pool{
		cfg:     cfg,
		dialer:  d,
		pinned:  make(map[*conn]struct{}),
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
	p.conns.Store(&[]*conn{})
	p.composeHooks()
	p.ticks.init()
	return p
}

// setListLocked publishes a new set of shared connections.
func (p *pool) setListLocked(list []*conn) {
	p.list = list
	p.conns.Store(&list)
	p.wakeLocked()
}

// wakeLocked wakes the callers waiting in get for the shared set to
// change or a dial to end. Must hold mu.
func (p *pool) wakeLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// liveLocked counts the shared connections that take calls. One marked
// unusable (lost, retired) leaves its slot at once: a caller dials in its
// place rather than wait for it to leave the list, a wake-up that a
// connection lost while nobody read it could leave unsent. Must hold mu.
func (p *pool) liveLocked() int {
	n := 0
	for _, cn := range p.list {
		if !cn.unusable.Load() {
			n++
		}
	}
	return n
}

// get returns a shared connection for one call.
func (p *pool) get(ctx context.Context) (*conn, error) {
	var waitStart time.Time
	for {
		conns := *p.conns.Load()
		var best *conn
		var bestLoad int32
		usable := 0
		for _, cn := range conns {
			if cn.unusable.Load() {
				continue
			}
			usable++
			if l := cn.load.Load(); best == nil || l < bestLoad {
				best, bestLoad = cn, l
			}
		}
		if best != nil && (bestLoad == 0 || usable >= p.cfg.poolSize) {
			if !p.checked(ctx, best) { // WithHealthCheck (connect.go)
				continue
			}
			p.endWait(waitStart)
			return best, nil
		}

		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if p.liveLocked()+p.dialing < p.cfg.poolSize {
			p.dialing++
			p.mu.Unlock()
			dialStart := time.Now()
			cn, err := p.dial(ctx, nil)
			p.mu.Lock()
			p.dialing--
			if err == nil {
				err = p.addLocked(cn, false)
			}
			if err != nil {
				if ctx.Err() == nil && errors.Is(err, ErrUnavailable) {
					// No daemon to be had within the whole dial
					// time-out: the callers that waited for this dial all
					// along fail with it, rather than each dial in turn
					// and wait pool-size-th of their number of time-outs.
					// (A refusal, or WithOnConnect's error, is not shared:
					// their own dial may fare otherwise.)
					p.failedDial.start, p.failedDial.err = dialStart, err
				}
				// The others try their own dial: the set did not change,
				// and nothing else would wake them.
				p.wakeLocked()
			}
			p.mu.Unlock()
			if err != nil {
				if best != nil && err != ErrClosed {
					p.endWait(waitStart)
					return best, nil // make do with what we have
				}
				return nil, err
			}
			p.endWait(waitStart)
			return cn, nil
		}
		if best != nil {
			p.mu.Unlock()
			p.endWait(waitStart)
			return best, nil
		}
		if f := p.failedDial; f.err != nil && !waitStart.IsZero() && waitStart.Before(f.start) {
			p.mu.Unlock()
			p.endWait(waitStart)
			return nil, f.err
		}
		// Nothing usable and every slot is being dialed by other calls:
		// wait for one of them.
		ch := p.changed
		p.mu.Unlock()
		if waitStart.IsZero() {
			waitStart = time.Now()
			p.stats.waits.Add(1)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			p.endWait(waitStart)
			return nil, ctx.Err()
		}
	}
}

// fresh dials a connection for a call's last attempt (database/sql's
// alwaysNewConn): pinned while the call runs, so that it does not count
// against the pool size that the dead connections of a crash may still
// fill, then given back to the shared set when there is room (unpin).
func (p *pool) fresh(ctx context.Context) (*conn, func(), error) {
	cn, err := p.pin(ctx)
	if err != nil {
		return nil, nil, err
	}
	return cn, func() { p.unpin(cn) }, nil
}

func (p *pool) endWait(start time.Time) {
	if !start.IsZero() {
		p.stats.waitNanos.Add(uint64(time.Since(start)))
	}
}

// addLocked starts a freshly dialed connection and adds it to the shared
// set, or to the pinned ones.
func (p *pool) addLocked(cn *conn, pinned bool) error {
	if p.closed {
		_ = cn.nc.Close()
		return ErrClosed
	}
	p.stats.dials.Add(1)
	if p.lost > 0 {
		p.lost--
		p.stats.reconnects.Add(1)
	}
	cn.start()
	if pinned {
		p.pinned[cn] = struct{}{}
	} else {
		p.setListLocked(append(p.list[:len(p.list):len(p.list)], cn))
	}
	p.startCleanerLocked()
	return nil
}

// connGone removes a connection whose reader has ended.
func (p *pool) connGone(cn *conn, broken bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pinned, cn)
	for i, x := range p.list {
		if x == cn {
			list := make([]*conn, 0, len(p.list)-1)
			list = append(append(list, p.list[:i]...), p.list[i+1:]...)
			p.setListLocked(list)
			break
		}
	}
	if broken && !p.closed {
		p.lost++
		p.stats.lostConns.Add(1)
	}
}

// pin dials a connection for a Conn's exclusive use. Pinned connections do
// not count against the pool size.
func (p *pool) pin(ctx context.Context) (*conn, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	cn, err := p.dial(ctx, nil)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.addLocked(cn, true); err != nil {
		return nil, err
	}
	return cn, nil
}

// unpin returns a pinned connection: to the shared set when it is healthy
// and there is room, else it is closed once its calls are answered.
func (p *pool) unpin(cn *conn) {
	p.mu.Lock()
	delete(p.pinned, cn)
	expired := p.cfg.maxLifetime > 0 && p.cfg.now().Sub(cn.created) >= p.cfg.maxLifetime
	if !p.closed && !cn.unusable.Load() && !expired && len(p.list) < p.cfg.poolSize {
		p.setListLocked(append(p.list[:len(p.list):len(p.list)], cn))
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	cn.retire()
}

// startCleanerLocked starts the cleaner if there is something for it to
// do: an idle time-out or a lifetime is set, and connections are open. It
// stops itself when none are left (database/sql does the same).
func (p *pool) startCleanerLocked() {
	if p.cleaning || p.closed || (p.cfg.idleTimeout == 0 && p.cfg.maxLifetime == 0 && p.cfg.conn.healthCheck == 0) {
		return
	}
	p.cleaning = true
	interval := p.cfg.idleTimeout
	for _, l := range []time.Duration{p.cfg.maxLifetime, p.cfg.conn.healthCheck} {
		if l > 0 && (interval == 0 || l < interval) {
			interval = l
		}
	}
	interval = max(interval/2, 100*time.Millisecond)
	p.wg.Add(1)
	go p.cleaner(interval)
}

func (p *pool) cleaner(interval time.Duration) {
	defer p.wg.Done()
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		if !p.clean() {
			return
		}
		t.Reset(interval)
	}
}

// clean retires connections idle or older than allowed, at the pool's
// clock. It reports whether the cleaner should keep running.
func (p *pool) clean() bool {
	now := p.cfg.now()
	var retire []*conn
	p.mu.Lock()
	keep := make([]*conn, 0, len(p.list))
	for _, cn := range p.list {
		switch {
		case p.cfg.maxLifetime > 0 && now.Sub(cn.created) >= p.cfg.maxLifetime:
			p.stats.closedLifetime.Add(1)
			retire = append(retire, cn)
		case p.cfg.idleTimeout > 0 && cn.idle() &&
			now.Sub(time.Unix(0, cn.lastUsed.Load())) >= p.cfg.idleTimeout:
			p.stats.closedIdle.Add(1)
			retire = append(retire, cn)
		default:
			keep = append(keep, cn)
		}
	}
	if len(retire) > 0 {
		p.setListLocked(keep)
	}
	p.markIdleLocked(now) // WithHealthCheck (connect.go)
	for cn := range p.pinned {
		// A pinned connection past its lifetime is replaced at its next call.
		if p.cfg.maxLifetime > 0 && now.Sub(cn.created) >= p.cfg.maxLifetime && !cn.retired.Load() {
			p.stats.closedLifetime.Add(1)
			retire = append(retire, cn)
		}
	}
	running := !p.closed && (len(p.list) > 0 || len(p.pinned) > 0)
	p.cleaning = running
	p.mu.Unlock()
	for _, cn := range retire {
		cn.retire()
	}
	return running
}

// close closes every connection and waits for all goroutines.
func (p *pool) close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	all := append([]*conn(nil), p.list...)
	for cn := range p.pinned {
		all = append(all, cn)
	}
	close(p.done)
	p.setListLocked(nil)
	p.mu.Unlock()
	for _, cn := range all {
		cn.shutdown(ErrClosed)
	}
	p.wg.Wait()
	return nil
}

// Stats describes a Client's connections and calls. Counters are totals
// since Open.
type Stats struct {
	PoolSize int // the most shared connections (WithPoolSize)
	Open     int // connections open: shared and pinned
	Pinned   int // of which held by Conns
	Idle     int // open connections with no call in flight
	InFlight int // calls queued or awaiting a reply, blocking ones excepted
	Blocked  int // blocking calls (List.PopWait...) queued or waiting for a value

	Dials         uint64        // connections opened
	DialErrors    uint64        // connection attempts that gave up
	Waits         uint64        // calls that waited for another call's dial
	WaitDuration  time.Duration // total time spent in those waits
	Timeouts      uint64        // calls ended by their context (deadline or cancellation)
	Retries       uint64        // calls resent after their connection failed
	Reconnects    uint64        // connections opened to replace one that was lost
	LostConns     uint64        // connections lost (daemon stopped or crashed, I/O error)
	ClosedIdle    uint64        // connections closed by WithIdleTimeout
	ClosedMaxLife uint64        // connections retired by WithMaxLifetime

	// WithHealthCheck: PINGs sent to connections that had carried no call
	// for its period, and those that were not answered in time (each such
	// connection is closed and replaced, and counts in LostConns too).
	HealthChecks, HealthChecksFailed uint64

	// The read cache (CachedDict): reads served from it, reads that went
	// to the daemon, invalidations received (pushes of the daemon, each
	// of one or more keys, "lost" included), entries dropped to keep
	// within WithCache's bounds; entries and bytes held now.
	CacheHits, CacheMisses, CacheInvalidations, CacheEvictions uint64
	CacheEntries                                               int
	CacheBytes                                                 int64
}

func (p *pool) statsNow() Stats {
	p.mu.Lock()
	open := make([]*conn, 0, len(p.list)+len(p.pinned))
	open = append(open, p.list...)
	for cn := range p.pinned {
		open = append(open, cn)
	}
	s := Stats{PoolSize: p.cfg.poolSize, Open: len(open), Pinned: len(p.pinned)}
	p.mu.Unlock()
	if c := p.cache.Load(); c != nil {
		s.CacheHits, s.CacheMisses = c.hits.Load(), c.misses.Load()
		s.CacheInvalidations, s.CacheEvictions = c.invalidations.Load(), c.dropped.Load()
		c.mu.Lock()
		s.CacheEntries, s.CacheBytes = c.entries, c.bytes
		c.mu.Unlock()
	}
	for _, cn := range open {
		s.InFlight += int(cn.load.Load())
		s.Blocked += int(cn.blocked.Load())
		if cn.idle() {
			s.Idle++
		}
	}
	s.Dials = p.stats.dials.Load()
	s.DialErrors = p.stats.dialErrors.Load()
	s.Waits = p.stats.waits.Load()
	s.WaitDuration = time.Duration(p.stats.waitNanos.Load())
	s.Timeouts = p.stats.timeouts.Load()
	s.Retries = p.stats.retries.Load()
	s.Reconnects = p.stats.reconnects.Load()
	s.LostConns = p.stats.lostConns.Load()
	s.ClosedIdle = p.stats.closedIdle.Load()
	s.ClosedMaxLife = p.stats.closedLifetime.Load()
	s.HealthChecks = p.stats.healthChecks.Load()
	s.HealthChecksFailed = p.stats.healthChecksFailed.Load()
	return s
}

func (s Stats) String() string {
	return fmt.Sprintf("open=%d/%d pinned=%d idle=%d inflight=%d blocked=%d dials=%d dial_errors=%d waits=%d timeouts=%d retries=%d reconnects=%d lost=%d closed_idle=%d closed_maxlife=%d health_checks=%d health_checks_failed=%d",
		s.Open, s.PoolSize, s.Pinned, s.Idle, s.InFlight, s.Blocked, s.Dials, s.DialErrors, s.Waits, s.Timeouts, s.Retries, s.Reconnects, s.LostConns, s.ClosedIdle, s.ClosedMaxLife, s.HealthChecks, s.HealthChecksFailed)
}
