package libcyberdb

import (
	"context"
	"iter"
	"net"
	"strings"

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
	// Dial wraps each attempt to open a connection: the network dial
	// (net.Dialer, or WithDialer's function) and, for tcp://, the TLS
	// handshake; HELLO follows it. A dial that the daemon refuses while it
	// starts is attempted again, through Dial again.
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
// so that a Client without hooks takes the direct paths.
type hookChains struct {
	dial  DialFunc
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
	var dial DialFunc
	var calls CallFunc
	for i := len(hs) - 1; i >= 0; i-- {
		if f := hs[i].Dial; f != nil {
			if dial == nil {
				dial = func(ctx context.Context, _, _ string) (net.Conn, error) { return p.dialer.dial(ctx) }
			}
			dial = f(dial)
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
	p.hooks.dial, p.hooks.call = dial, calls
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

// openConn opens a network connection for a dial, through the Dial
// hooks if any.
func (p *pool) openConn(ctx context.Context) (net.Conn, error) {
	if p.hooks.dial == nil {
		return p.dialer.dial(ctx)
	}
	return p.hooks.dial(ctx, p.dialer.network, p.dialer.address)
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
		_, err := c.nc.Write(frames)
		return err
	}
	return c.flush(Flush{ConnID: c.serverID, Calls: calls, Frames: frames})
}
