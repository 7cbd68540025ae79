package libcyberdb

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"strings"
	"sync"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Hook is middleware around what a Client does, for tracing, metrics or
// logging (see the otelcyberdb module for OpenTelemetry tracing). Each
// field is optional; each wraps the next function, which it must call
// (or not, to short-circuit) and whose error it returns:
//
//	logCalls := libcyberdb.Hook{
//		Call: func(next libcyberdb.CallFunc) libcyberdb.CallFunc {
//			return func(ctx context.Context, c *libcyberdb.Call) error {
//				start := time.Now()
//				err := next(ctx, c)
//				slog.Debug("cyberdb", "op", c.Op(), "table", c.Table(), "took", time.Since(start), "err", err)
//				return err
//			}
//		},
//	}
//	c, err := libcyberdb.Open(ctx, addr, libcyberdb.WithHooks(logCalls))
//
// A Client without hooks pays nothing for them. Hooks run on the calling
// goroutine (Call, Dial) or on a connection's writer (Flush), so they must
// be safe for concurrent use and must not block for long.
type Hook struct {
	// Dial wraps each attempt to open a connection, from the network
	// dial (net.Dialer, or WithDialer's function) to the daemon's answer
	// to HELLO, the TLS handshake (tcp://) and the password included:
	// next returns a connection ready for calls, or why there is none. So
	// a dial that connects but whose HELLO fails (ErrAuthFailed, a daemon
	// that does not answer, one at its connection limits) is a failed
	// dial, with that error, and its duration is the whole handshake. A
	// dial that the daemon refuses while it starts or at its limits is
	// attempted again, through Dial again. WithOnConnect's function runs
	// after Dial returns, its calls through Call. Dial should return the
	// connection next returned (or one wrapping it, which then carries
	// everything after HELLO; to see every byte, wrap connections in
	// WithDialer's function instead).
	Dial func(next DialFunc) DialFunc
	// Call wraps each operation of the typed API, each Do and each
	// Batch.Exec, from the first attempt to the final result (resends
	// to another connection included).
	Call func(next CallFunc) CallFunc
	// Flush wraps each write of requests to a connection: concurrent
	// calls on a connection are pipelined, and one write carries all that
	// queued meanwhile.
	Flush func(next FlushFunc) FlushFunc
}

// CallFunc runs one call (Hook.Call).
type CallFunc func(ctx context.Context, c *Call) error

// FlushFunc writes requests to a connection (Hook.Flush).
type FlushFunc func(f Flush) error

// Flush is one write of requests to a connection.
type Flush struct {
	ConnID uint64 // the daemon's id of the connection (conn_id in its logs)
	Calls  int    // requests in the write
	Frames []byte // the frames written; only valid until the FlushFunc returns
}

// WithHooks installs hooks, in order: the first one's functions are the
// outermost (they see what the later ones do).
func WithHooks(hooks ...Hook) Option {
	return func(c *config) { c.hooks = append(c.hooks, hooks...) }
}

// Call is one operation as a Hook.Call sees it. It is valid only until
// the CallFunc returns.
type Call call

// Op is the protocol operation (wire.OpDGet, ...); its String is the
// name in PROTOCOL.md ("dget").
func (c *Call) Op() wire.Op { return c.op }

// Table is the name of the table the operation is on, or "" for the
// operations of the server (ping, info, save, tables, batch).
func (c *Call) Table() string {
	switch c.op {
	case wire.OpHello, wire.OpPing, wire.OpInfo, wire.OpSave, wire.OpTables, wire.OpBatch:
		return ""
	}
	n := wire.ItemLen(c.args)
	if n <= 0 || n > len(c.args) {
		return ""
	}
	name, _ := wire.ItemText(c.args[:n])
	return strings.Clone(name) // it aliases the call's buffer, which is reused
}

// Args returns the arguments as sent, one CBOR item each (decode them
// with wire.Unmarshal). For Batch.Exec it is one array of [op, args...].
func (c *Call) Args() iter.Seq[wire.Raw] {
	return func(yield func(wire.Raw) bool) {
		rest := c.args
		for range c.nargs {
			n := wire.ItemLen(rest)
			if n <= 0 || n > len(rest) || !yield(wire.Raw(rest[:n:n])) {
				return
			}
			rest = rest[n:]
		}
	}
}

// Result is the result of the call once the next CallFunc has returned
// nil: one CBOR item. It is valid until the hook returns.
func (c *Call) Result() wire.Raw { return c.result }

// hookChains are the Hooks composed: nil where no hook has that field,
// so that a Client without hooks takes the direct paths (dials, rare and
// slow, always take the same one).
type hookChains struct {
	dial  []func(DialFunc) DialFunc // composed per attempt (dialOnce), innermost first
	call  CallFunc
	flush []func(FlushFunc) FlushFunc // composed per connection (flushChain)
}

// composeHooks builds p's chains from its configuration.
func (p *pool) composeHooks() {
	hs := p.cfg.hooks
	for i := len(hs) - 1; i >= 0; i-- {
		if f := hs[i].Flush; f != nil {
			p.hooks.flush = append(p.hooks.flush, f)
		}
	}
	var calls CallFunc
	for i := len(hs) - 1; i >= 0; i-- {
		if f := hs[i].Dial; f != nil {
			p.hooks.dial = append(p.hooks.dial, f)
		}
		if f := hs[i].Call; f != nil {
			if calls == nil {
				calls = func(ctx context.Context, c *Call) error {
					cl := (*call)(c)
					return p.run(ctx, cl, cl.src)
				}
			}
			calls = f(calls)
		}
	}
	p.hooks.call = calls
}

// exec runs cl on connections from src, through the Call hooks if any.
func (p *pool) exec(ctx context.Context, cl *call, src connSource) error {
	if p.hooks.call == nil {
		return p.run(ctx, cl, src)
	}
	cl.src = src
	err := p.hooks.call(ctx, (*Call)(cl))
	cl.src = nil
	return err
}

// attempt is an attempt to open a connection (dialOnce) while the Dial
// hooks run.
type attempt struct {
	mu    sync.Mutex
	cn    *conn // HELLO answered; taken by dialOnce once the hooks return
	hello bool  // the network connection was opened: the error is HELLO's
	ioErr bool  // HELLO's frames could not be exchanged (handshake's ioErr)
	over  bool  // dialOnce returned: a late connection is not wanted
}

// dialOnce makes one attempt to open a connection, the network dial and
// the HELLO exchange, through the Dial hooks if any. On failure, hello
// reports that the error is HELLO's (the network connection was opened),
// and ioErr that HELLO's frames could not be exchanged. The hooks are
// composed for each attempt, around a function that keeps the conn it
// opened in the attempt (they pass only a net.Conn on): a few closures
// beside a connect and a round trip.
func (p *pool) dialOnce(ctx context.Context) (cn *conn, hello, ioErr bool, err error) {
	a := &attempt{}
	next := DialFunc(func(ctx context.Context, _, _ string) (net.Conn, error) {
		nc, err := p.dialer.dial(ctx)
		if err != nil {
			a.mu.Lock()
			a.hello, a.ioErr = false, false // (if a hook calls next again)
			a.mu.Unlock()
			return nil, err
		}
		cn, ioErr, err := p.handshake(ctx, nc)
		a.mu.Lock()
		defer a.mu.Unlock()
		a.hello, a.ioErr = true, ioErr
		if err != nil {
			nc.Close()
			return nil, err
		}
		if a.over {
			nc.Close() // a hook gave up on next and returned
			return nil, errors.New("cyberdb: the Dial hook returned before its next function")
		}
		if a.cn != nil {
			_ = a.cn.nc.Close() // a hook called next again: it does not want the first
		}
		a.cn = cn
		return nc, nil
	})
	for _, h := range p.hooks.dial {
		next = h(next)
	}
	nc, err := next(ctx, p.dialer.network, p.dialer.address)
	a.mu.Lock()
	a.over = true
	cn, hello, ioErr = a.cn, a.hello, a.ioErr
	a.cn = nil
	a.mu.Unlock()
	switch {
	case err != nil:
		if cn != nil {
			// HELLO succeeded, but a hook failed the dial: the error is
			// the hook's, not HELLO's.
			_ = cn.nc.Close()
			return nil, false, false, err
		}
		return nil, hello, ioErr, err
	case cn == nil:
		if nc != nil {
			_ = nc.Close()
		}
		return nil, false, false, errors.New("cyberdb: a Dial hook returned a connection that its next function did not open " +
			"(it had no HELLO): return next's connection, or wrap connections in WithDialer's function")
	case nc != nil && nc != cn.nc:
		cn.adopt(nc)
	}
	return cn, false, false, nil
}

// adopt makes nc, which a Dial hook returned in place of the connection
// it wraps, the one that carries c's frames after HELLO. Anything the
// daemon sent after its HELLO reply stays buffered in c.br, where start
// hands it to the frame reader (readside.go), which reads nc after it.
func (c *conn) adopt(nc net.Conn) {
	c.nc = nc
	if _, ok := nc.(*net.UnixConn); !ok {
		// A wrapper may buffer what the socket's peek would not see, or
		// not pass read deadlines on (a caller's cancelled read would
		// wait for its reply): its reader goroutine reads it all the
		// time, as on TCP (readside.go).
		c.unix = false
	}
}

// flushChain returns the Flush hooks composed around a write to c, or
// nil when there are none; built once per connection.
func (c *conn) flushChain() FlushFunc {
	if len(c.p.hooks.flush) == 0 {
		return nil
	}
	nc := c.nc
	f := FlushFunc(func(fl Flush) error {
		_, err := nc.Write(fl.Frames)
		return err
	})
	for _, h := range c.p.hooks.flush {
		f = h(f)
	}
	return f
}

// write writes frames holding calls requests to the connection, through
// the Flush hooks if any.
func (c *conn) write(frames []byte, calls int) error {
	if c.flush == nil {
		n, err := c.nc.Write(frames)
		if err != nil && nothingWritten(n, err) {
			return fmt.Errorf("%w: %w", errNothingWritten, err)
		}
		return err
	}
	return c.flush(Flush{ConnID: c.serverID, Calls: calls, Frames: frames})
}
