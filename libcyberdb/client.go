package libcyberdb

import (
	"context"
	"fmt"
	"sync"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Client is a connection pool to one cyberdb daemon. Create one per
// process with Open and share it between all goroutines; its methods are
// safe for concurrent use.
type Client struct {
	p *pool
	tableOps
}

// Open returns a Client for the daemon at addr and checks that the daemon
// answers, opening the first connection (retrying while the daemon starts,
// within ctx and the dial time-out).
//
// addr is a Unix socket path, bare ("/run/cyberdb/cyberdb.sock",
// "./cyberdb.sock") or as a URL ("unix:///run/cyberdb/cyberdb.sock",
// "unix:cyberdb.sock"). An empty addr means $CYBERDB_ADDR, or when that is
// unset the daemon's default: /run/cyberdb/cyberdb.sock when it exists,
// else ./cyberdb.sock.
//
// A daemon on another host is reached at "tcp://host:port" (port 9980 when
// left out) over TLS 1.3, with its password: WithPasswordFile, WithPassword
// or $CYBERDB_PASSWORD_FILE. The server's certificate is checked against
// the system's CAs, a CA file (WithTLSCAFile, $CYBERDB_TLS_CA) or a pinned
// fingerprint (WithTLSFingerprint, $CYBERDB_TLS_FINGERPRINT). A wrong
// password fails with ErrAuthFailed and is not retried.
// "tcp+insecure://" is plaintext, for a loopback address only (a daemon
// with --tcp-insecure, e.g. behind an SSH tunnel).
func Open(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	cfg, d, err := configure(addr, opts)
	if err != nil {
		return nil, err
	}
	c := &Client{p: newPool(cfg, d)}
	c.tableOps.x = c
	if _, err := c.p.get(ctx); err != nil {
		c.p.close()
		return nil, err
	}
	return c, nil
}

// configure reads addr and opts into a configuration and a dialer, for
// Open and DialRaw.
func configure(addr string, opts []Option) (config, dialer, error) {
	d, err := parseAddr(addr)
	if err != nil {
		return config{}, dialer{}, err
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := prepareRemote(&cfg, &d); err != nil { // tcp://: TLS and password (tls.go)
		return config{}, dialer{}, err
	}
	if err := prepareLocal(&cfg, &d); err != nil { // Unix sockets: WithServerUID (serveruid.go)
		return config{}, dialer{}, err
	}
	d.custom = cfg.conn.dial
	return cfg, d, nil
}

// Addr is the socket path the Client connects to, or host:port for tcp://.
func (c *Client) Addr() string { return c.p.dialer.address }

// Close closes every connection, pinned ones included, and waits until
// the Client's goroutines have ended. Calls in flight fail with ErrClosed
// (a write among them may or may not have been applied). Close is
// idempotent.
func (c *Client) Close() error { return c.p.close() }

// Stats reports the Client's connections and call counters.
func (c *Client) Stats() Stats { return c.p.statsNow() }

func (c *Client) exec(ctx context.Context, cl *call) error {
	return c.p.exec(ctx, cl, c.p) // through the Call hooks, if any (hooks.go)
}

// connSource is where run takes connections from: the pool's shared ones
// (Client) or one pinned connection (Conn).
type connSource interface {
	// get returns a connection for an attempt.
	get(ctx context.Context) (*conn, error)
	// fresh returns a connection dialed for the last attempt, and what to
	// call once the attempt is over (nil: nothing).
	fresh(ctx context.Context) (*conn, func(), error)
}

// Retry budget: a request that was never written, or that the daemon said
// it did not execute, is resent up to maxResends times (each resend goes
// to a healthy or freshly dialed connection, and dialing waits for a
// restarting daemon); a read-only request whose connection was lost is
// resent up to maxReadRetries times. Then, as database/sql does, it is
// sent once more on a brand-new connection: after a crash, the pool's
// other connections may be dead without their readers having noticed yet,
// and a new one waits (within the dial time-out) for the daemon to be
// back. A write whose connection was lost is never resent: it gets
// ErrConnClosed.
const (
	maxResends     = 10
	maxReadRetries = 2
)

// run sends cl on connections from src until it has a reply or a final
// error; on success cl.result holds the result.
func (p *pool) run(ctx context.Context, cl *call, src connSource) error {
	if cl.encErr != nil {
		return cl.encErr
	}
	if ca := p.cache.Load(); ca != nil && cl.op.IsWrite() {
		// This process's writes keep its read cache right (cache.go).
		ca.localWrite(cl, false)
		defer ca.localWrite(cl, true)
	}
	cl.expires = p.expiry(ctx, cl) // WithTimeout (connect.go)
	resends, readRetries := 0, 0
	last := false // the budget is spent: this is the attempt on a new connection
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			p.stats.timeouts.Add(1)
			return fmt.Errorf("cyberdb: %s: %w", cl.op, err)
		}
		var cn *conn
		var done func()
		var err error
		if last {
			cn, done, err = src.fresh(ctx)
		} else {
			cn, err = src.get(ctx)
		}
		if err != nil {
			if ctx.Err() != nil {
				p.stats.timeouts.Add(1)
			}
			return err
		}
		cn.roundTrip(ctx, cl)
		if done != nil {
			done()
		}
		switch cl.fate {
		case fateReply:
			res, err := decodeReply(cl.reply)
			if err != nil && !cl.daemonText {
				return goHints(err) // hints.go
			} else if err != nil {
				return err
			}
			cl.result = res
			return nil
		case fateCanceled:
			p.stats.timeouts.Add(1)
			return fmt.Errorf("cyberdb: %s: %w", cl.op, cl.err)
		case fateFailed:
			return cl.err
		case fateNotSent, fateNotExecuted:
			if resends < maxResends {
				resends++
			} else if !last {
				last = true
			} else {
				return fmt.Errorf("cyberdb: %s: gave up after %d attempts: %w", cl.op, attempt, orConnClosed(cl.err))
			}
		case fateMaybe:
			if cl.op.IsWrite() {
				return fmt.Errorf("cyberdb: %s: %w (%v)", cl.op, ErrConnClosed, cl.err)
			}
			if readRetries < maxReadRetries {
				readRetries++
			} else if !last {
				last = true
			} else {
				return fmt.Errorf("cyberdb: %s: %w (%v)", cl.op, ErrConnClosed, cl.err)
			}
		default:
			return &ProtocolError{Msg: "call ended without a fate"}
		}
		p.stats.retries.Add(1)
		cl.reset()
		if cl.blocking && !cl.waitUntil.IsZero() {
			cl.appendTimeout() // what is left of it
		}
	}
}

func orConnClosed(err error) error {
	if err == nil {
		return ErrConnClosed
	}
	return err
}

// Do runs one raw protocol operation (PROTOCOL.md section 6) with args
// encoded as CBOR, and returns its result, which the caller owns. Table
// handles are more convenient; Do is for tools and new operations. Its
// errors carry the daemon's messages as sent, whose hints name protocol
// ops; the typed API names its own methods instead.
func (c *Client) Do(ctx context.Context, op wire.Op, args ...any) (wire.Raw, error) {
	return do(ctx, c, op, args...)
}

func do(ctx context.Context, x executor, op wire.Op, args ...any) (wire.Raw, error) {
	cl := newCall(op)
	defer cl.release()
	cl.daemonText = true
	for _, a := range args {
		cl.value(a)
	}
	if err := x.exec(ctx, cl); err != nil {
		return nil, err
	}
	return append(wire.Raw(nil), cl.result...), nil
}

// Conn is one connection pinned for the exclusive use of its holder,
// CyberDB's proxy: table handles created on a Conn send every call over
// it, in order. Conn is safe for concurrent use, but it exists for one
// flow of work; share the Client instead. If its connection is lost, the
// next call opens a new one (with the same resend rules as the Client).
// Close returns the connection to the Client's pool.
type Conn struct {
	c *Client
	tableOps

	// mu guards the fields below. It is never held while dialing, so
	// that the Conn's other users wait for a dial under their own
	// contexts. Lock order: Conn.mu, then pool.mu, then conn.mu.
	mu      sync.Mutex
	cn      *conn         // nil, or a dead one, until get dials another
	dialing chan struct{} // closed when the dial under way ends; nil if none
	closed  bool

	fixed bool // WithOnConnect's: never dials another, and Close does nothing
}

// Conn opens a connection for the caller's exclusive use. Pinned
// connections do not count against the pool size: each is one more
// connection on the daemon until Close.
func (c *Client) Conn(ctx context.Context) (*Conn, error) {
	cn, err := c.p.pin(ctx)
	if err != nil {
		return nil, err
	}
	pc := &Conn{c: c, cn: cn}
	pc.tableOps.x = pc
	return pc, nil
}

// get returns the Conn's connection, dialing a new one when it is lost
// or expired. One caller dials at a time; the others wait for it, or for
// their context, and then look again (if that dial failed, the next
// caller dials with its own context).
func (pc *Conn) get(ctx context.Context) (*conn, error) {
	for {
		pc.mu.Lock()
		if pc.closed {
			pc.mu.Unlock()
			return nil, ErrClosed
		}
		if cn := pc.cn; cn != nil && !cn.unusable.Load() {
			pc.mu.Unlock()
			// WithHealthCheck, as for the shared connections: one that
			// died while the Conn sat idle is replaced (below, on the
			// next turn), not waited on for the call's time-out.
			if !pc.c.p.checked(ctx, cn) {
				continue
			}
			return cn, nil
		}
		if pc.fixed {
			pc.mu.Unlock()
			return nil, fmt.Errorf("cyberdb: the new connection was lost during WithOnConnect's function: %w", ErrConnClosed)
		}
		if wait := pc.dialing; wait != nil {
			pc.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if pc.cn != nil {
			pc.cn.retire() // expired: close it once its calls are answered
			pc.cn = nil
		}
		done := make(chan struct{})
		pc.dialing = done
		pc.mu.Unlock()

		cn, err := pc.c.p.pin(ctx)

		pc.mu.Lock()
		pc.dialing = nil
		close(done)
		closed := pc.closed
		if err == nil && !closed {
			pc.cn = cn
		}
		pc.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if closed { // Close ran while we dialed
			pc.c.p.unpin(cn)
			return nil, ErrClosed
		}
		return cn, nil
	}
}

// fresh is get: a Conn whose connection was lost dials a new one anyway.
func (pc *Conn) fresh(ctx context.Context) (*conn, func(), error) {
	cn, err := pc.get(ctx)
	return cn, nil, err
}

func (pc *Conn) exec(ctx context.Context, cl *call) error {
	return pc.c.p.exec(ctx, cl, pc)
}

// Do is Client.Do on this connection.
func (pc *Conn) Do(ctx context.Context, op wire.Op, args ...any) (wire.Raw, error) {
	return do(ctx, pc, op, args...)
}

// ID is the daemon's id for the connection (its conn_id, as in its logs),
// or 0 when no connection is open.
func (pc *Conn) ID() uint64 {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.cn == nil {
		return 0
	}
	return pc.cn.serverID
}

// Close returns the connection to the pool (or closes it when the pool is
// full). The Conn cannot be used afterwards. Close is idempotent.
func (pc *Conn) Close() error {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.closed || pc.fixed {
		return nil
	}
	pc.closed = true
	if pc.cn != nil {
		pc.c.p.unpin(pc.cn)
		pc.cn = nil
	}
	return nil
}
