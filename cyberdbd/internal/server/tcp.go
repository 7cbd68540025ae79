package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// TCPConfig is how a TCP listener admits and authenticates its peers
// (PROTOCOL.md, "Remote clients"). Unix sockets need none of it: their file
// permissions decide who connects.
//
// A TCP connection goes through, in order:
//  1. the address allowlist, checked at accept: a peer not in Allow is
//     closed at once, before the TLS handshake, without a frame, and logged;
//  2. the connection limits: --max-conns, as on Unix sockets; of those at
//     most MaxConns on TCP, so that the Unix socket always keeps the rest;
//     and of those at most MaxUnauth not authenticated yet, so that peers
//     without the password cannot take the slots of those with it. Over a
//     limit: a too_many_connections frame (inside TLS), then a close;
//  3. the TLS handshake (TLS 1.3 only, as TLS decides);
//  4. HELLO, which must carry the password; any other request before it
//     gets a handshake error and reaches nothing.
//
// Steps 3 and 4 must finish within HandshakeTimeout of the accept, so a
// silent peer cannot hold a connection slot. A failed password gets an
// auth_failed error after AuthFailDelay, then the connection is closed;
// each address may try only so often (see throttle).
type TCPConfig struct {
	// TLS is the listener's TLS configuration; it should take its
	// certificate through GetCertificate or GetConfigForClient so that a
	// reload needs no new listener. nil serves plaintext, which the daemon
	// allows only on loopback addresses (--tcp-insecure).
	TLS *tls.Config
	// Password is the shared secret every TCP client sends in HELLO.
	// Required.
	Password *Password
	// Allow lists the networks peers may connect from; empty admits only
	// loopback addresses.
	Allow []netip.Prefix
	// HandshakeTimeout bounds the TLS handshake plus HELLO; default
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// AuthFailDelay is how long a failed login waits for its error;
	// default DefaultAuthFailDelay.
	AuthFailDelay time.Duration
	// AuthBurst and AuthRefill shape each address's password attempts:
	// AuthBurst at once, then AuthRefill a second; defaults
	// DefaultAuthBurst and DefaultAuthRefill.
	AuthBurst  int
	AuthRefill float64
	// MaxConns bounds the TCP connections, of all TCP listeners together,
	// within Config.MaxConns: the Unix socket always keeps the rest, so
	// remote peers can never lock local clients out. Default: half of
	// Config.MaxConns. MaxUnauth bounds those that have not authenticated
	// yet (TLS handshake and a HELLO with the password, within the
	// handshake time-out); default DefaultMaxTCPUnauth.
	MaxConns  int
	MaxUnauth int
}

// Defaults of TCPConfig.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultAuthFailDelay    = 250 * time.Millisecond
	// DefaultMaxTCPUnauth allows a burst of 256 logins in flight: at a
	// few milliseconds a login, thousands a second; at the handshake
	// time-out, a peer holding them all costs the daemon ~20 MiB.
	DefaultMaxTCPUnauth = 256
)

// LoopbackOnly is the default allowlist: 127.0.0.0/8 and ::1/128.
var LoopbackOnly = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// tcpListener is the state one ServeTCP shares between its connections.
type tcpListener struct {
	cfg      TCPConfig
	throttle *throttle  // the server's, shared by all TCP listeners
	refused  logLimiter // allowlist refusals, connection limits, handshake time-outs
	failed   logLimiter // failed logins
}

// tcpState is what all TCP listeners of a Server share: one throttle (an
// address gets its attempts once, not once per listener) and the counts
// behind TCPConfig.MaxConns and TCPConfig.MaxUnauth.
type tcpState struct {
	once         sync.Once
	throttle     *throttle
	conns        atomic.Int64  // open TCP connections, counted in Server.nconns too
	unauth       atomic.Int64  // of conns, not authenticated yet
	authFailures atomic.Uint64 // failed logins since start, throttled ones included
}

// ServeTCP accepts connections on the TCP listener l until Shutdown is
// called or l fails, admitting and authenticating them as cfg says. Like
// Serve, it always returns a non-nil error; after Shutdown, ErrServerClosed.
func (s *Server) ServeTCP(l net.Listener, cfg TCPConfig) error {
	if cfg.Password == nil {
		return errors.New("cyberdbd: a TCP listener needs a password")
	}
	if len(cfg.Allow) == 0 {
		cfg.Allow = LoopbackOnly
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.AuthFailDelay <= 0 {
		cfg.AuthFailDelay = DefaultAuthFailDelay
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = max(1, s.cfg.MaxConns/2)
	}
	if cfg.MaxUnauth <= 0 {
		cfg.MaxUnauth = DefaultMaxTCPUnauth
	}
	s.tcp.once.Do(func() { s.tcp.throttle = newThrottle(cfg.AuthBurst, cfg.AuthRefill) })
	tl := &tcpListener{
		cfg:      cfg,
		throttle: s.tcp.throttle,
		refused:  logLimiter{perSecond: 10},
		failed:   logLimiter{perSecond: 10},
	}
	return s.serve(l, tl)
}

// reserve counts a new TCP connection against MaxConns and MaxUnauth;
// over either it refuses the connection (a frame,
// inside TLS, and a close) and returns false. c.releaseTCP gives back
// what it took.
func (tl *tcpListener) reserve(s *Server, c *conn) bool {
	var e *wire.Error
	if n := s.tcp.conns.Add(1); n > int64(tl.cfg.MaxConns) {
		s.tcp.conns.Add(-1)
		e = wire.Errorf(wire.CodeTooManyConns, "the server is at its limit of %d TCP connections (--max-tcp-conns); "+
			"close idle connections or raise the limit", tl.cfg.MaxConns)
	} else if n := s.tcp.unauth.Add(1); n > int64(tl.cfg.MaxUnauth) {
		s.tcp.unauth.Add(-1)
		s.tcp.conns.Add(-1)
		e = wire.Errorf(wire.CodeTooManyConns, "the server has %d TCP connections that have not logged in yet "+
			"(--max-tcp-unauth-conns); try again shortly", tl.cfg.MaxUnauth)
	}
	if e == nil {
		c.unauth = true
		c.session = &tcpSession{}
		return true
	}
	if ok, suppressed := tl.refused.allow(time.Now()); ok {
		s.log.Warn("connection refused: TCP connection limit", withSuppressed(suppressed, "conn", c.id, "remote", remoteName(c.nc), "reason", e.Message)...)
	}
	go refuse(c.nc, e)
	return false
}

// releaseTCP gives back what reserve took, once the connection is over.
func (c *conn) releaseTCP() {
	if c.tcp == nil {
		return
	}
	c.authenticated()
	c.s.tcp.conns.Add(-1)
}

// authenticated moves c out of the count of connections not logged in.
func (c *conn) authenticated() {
	if c.unauth {
		c.unauth = false
		c.s.tcp.unauth.Add(-1)
	}
}

// tcpSession is what another goroutine may ask of a TCP connection: the
// password it logged in with. It is made before the connection is served,
// so the pointer itself is never written concurrently.
type tcpSession struct {
	gen atomic.Uint64 // the Password generation of its HELLO; 0 before
}

// errPasswordChanged is the last frame of a session that logged in with
// a password replaced since (EndOldSessions). Its requests without a reply
// were not executed.
var errPasswordChanged = wire.Errorf(wire.CodeAuthFailed,
	"the server's password was changed: this session logged in with the old one and is closed; "+
		"requests without a reply were not executed: reconnect with the new password")

// sessionEnded reports whether c is a session EndOldSessions ended, and
// then sends its last frame. Called by the connection's goroutine when it
// is about to wait for the next request, and when that wait is
// interrupted.
func (c *conn) sessionEnded() bool {
	if c.session == nil || !c.tcp.cfg.Password.stale(c.session.gen.Load()) {
		return false
	}
	c.final(errPasswordChanged)
	c.log.Info("session closed: it logged in with a password replaced since", "remote", remoteName(c.nc))
	return true
}

// EndOldSessions closes the TCP sessions that logged in with a password
// that p no longer is (Password.Set), after answering the requests each
// has read, with an auth_failed frame; it returns how many it closes.
// Sessions not yet logged in carry on: their HELLO is checked against
// the current password.
func (s *Server) EndOldSessions(p *Password) int {
	cur := p.cur.Load()
	if cur == nil {
		return 0
	}
	if cur.gen > p.endBefore.Load() {
		p.endBefore.Store(cur.gen) // only the reloader sets passwords: no race
	}
	n := 0
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		// c.session and c.tcp were set before c was added to s.conns.
		if c.session != nil && c.tcp.cfg.Password == p && p.stale(c.session.gen.Load()) {
			c.interrupt() // its goroutine sees sessionEnded once the read is interrupted
			n++
		}
	}
	return n
}

// tcpInfo adds the TCP fields of the info op.
func (s *Server) tcpInfo(m map[string]any) {
	m["tcp_connections"] = s.tcp.conns.Load()
	m["tcp_unauthenticated"] = s.tcp.unauth.Load()
	m["auth_failures"] = s.tcp.authFailures.Load()
}

// peerAddr is the IP address of a TCP peer, IPv4-mapped IPv6 addresses
// (from a listener on [::]) read as IPv4.
func peerAddr(nc net.Conn) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(nc.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// admit applies the allowlist to a new connection; a refused one is
// closed at once: before the TLS handshake there is no channel to send an
// error on that the peer could trust, and staying silent tells a scanner
// nothing. It returns the connection to serve: nc wrapped in TLS.
func (tl *tcpListener) admit(s *Server, nc net.Conn, id uint64) (net.Conn, bool) {
	ip, ok := peerAddr(nc)
	allowed := false
	for _, p := range tl.cfg.Allow {
		if ok && p.Contains(ip) {
			allowed = true
			break
		}
	}
	if !allowed {
		_ = nc.Close()
		if ok, suppressed := tl.refused.allow(time.Now()); ok {
			s.log.Warn("connection refused: address not in --allow", withSuppressed(suppressed, "conn", id, "remote", nc.RemoteAddr().String())...)
		}
		return nil, false
	}
	if tl.cfg.TLS != nil {
		nc = tls.Server(nc, tl.cfg.TLS) // the handshake runs in the connection's goroutine
	}
	return nc, true
}

// startTCP runs the TLS handshake within the handshake time-out, which
// then also bounds the wait for HELLO. It reports whether to go on.
func (c *conn) startTCP() bool {
	c.authBy = time.Now().Add(c.tcp.cfg.HandshakeTimeout)
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return true
	}
	_ = c.nc.SetDeadline(c.authBy)
	ctx, cancel := context.WithDeadline(context.Background(), c.authBy)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.log.Debug("TLS handshake failed; closing", "remote", remoteName(c.nc), "err", err)
		return false
	}
	_ = c.nc.SetWriteDeadline(time.Time{})
	st := tc.ConnectionState()
	if len(st.PeerCertificates) > 0 {
		c.log = c.log.With("client_cert", st.PeerCertificates[0].Subject.String())
	}
	return true
}

// readDeadline is the deadline for the next read: until HELLO has
// authenticated a TCP peer, the handshake time-out's, if earlier.
func (c *conn) readDeadline(idle time.Time) time.Time {
	if c.tcp == nil || c.hello {
		return idle
	}
	if idle.IsZero() || c.authBy.Before(idle) {
		return c.authBy
	}
	return idle
}

// handshakeExpired ends a TCP connection that did not authenticate within
// the handshake time-out, and reports whether that is what happened.
func (c *conn) handshakeExpired() bool {
	if c.tcp == nil || c.hello {
		return false
	}
	c.final(wire.Errorf(wire.CodeHandshake, "no successful HELLO within %s of connecting (--handshake-timeout); reconnect and send HELLO with the password",
		c.tcp.cfg.HandshakeTimeout))
	if ok, suppressed := c.tcp.refused.allow(time.Now()); ok {
		c.log.Info("connection closed: no HELLO within the handshake time-out",
			withSuppressed(suppressed, "remote", remoteName(c.nc), "handshake_timeout", c.tcp.cfg.HandshakeTimeout)...)
	}
	return true
}

// authenticate checks HELLO's password on a TCP connection. On failure it
// marks the connection, whose loop then closes it after the delay.
func (c *conn) authenticate(opts map[string]any) error {
	if c.tcp == nil {
		return nil // Unix socket: its file permissions are the access control
	}
	ip, _ := peerAddr(c.nc)
	key := throttleKey(ip)
	if ok, wait := c.tcp.throttle.take(key); !ok {
		c.authFailed = true
		c.s.tcp.authFailures.Add(1)
		wait = max(wait.Round(time.Second), time.Second)
		c.logAuthFailure("too many failed logins from this address", ip)
		return wire.Errorf(wire.CodeAuthFailed, "too many failed logins from %s; try again in %s", ip, wait)
	}
	given, _ := opts["password"].(string)
	ok, gen := c.tcp.cfg.Password.check(given)
	if !ok {
		c.authFailed = true
		c.s.tcp.authFailures.Add(1)
		reason := "wrong password"
		if given == "" {
			reason = "no password"
		}
		c.logAuthFailure(reason, ip)
		return wire.Errorf(wire.CodeAuthFailed, "authentication failed: HELLO needs the server's password in its \"password\" option")
	}
	c.tcp.throttle.giveBack(key)
	c.authenticated()
	c.session.gen.Store(gen)
	c.log.Debug("authenticated", "remote", remoteName(c.nc))
	return nil
}

func (c *conn) logAuthFailure(reason string, ip netip.Addr) {
	if ok, suppressed := c.tcp.failed.allow(time.Now()); ok {
		c.log.Warn("login failed", withSuppressed(suppressed, "reason", reason, "remote", ip.String())...)
	}
}

// withSuppressed adds to args how many similar lines were not logged.
func withSuppressed(n int, args ...any) []any {
	if n > 0 {
		args = append(args, "suppressed_since_last", n)
	}
	return args
}

// throttleKey is the throttle's key for ip: the address, or for IPv6 its
// /64.
func throttleKey(ip netip.Addr) string {
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// failAuth ends a connection whose login failed: the reply waits for the
// delay (this goroutine sleeps; other connections are not held up), then
// the connection is closed. Requests pipelined after the HELLO are not
// executed.
func (c *conn) failAuth() string {
	t := time.NewTimer(c.tcp.cfg.AuthFailDelay)
	defer t.Stop()
	<-t.C
	_ = c.flush()
	return "authentication failed"
}
