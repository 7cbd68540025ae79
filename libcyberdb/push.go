package libcyberdb

import (
	"context"
	"errors"
	"strings"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Server push: the seam for subscriptions (watch, pub/sub) and the read
// cache's invalidations (issue 16).
//
// Every connection asks for the push extension in HELLO (PROTOCOL.md 3.1)
// and conn.push says whether the daemon agreed. On a push connection the
// daemon may send, between any two replies, a push message [0, 0, {"push":
// KIND, ...}]. The reader goroutine hands it to the connection's pushHooks:
// those of a dedicated connection (pool.pushConn), else the pool's
// (pool.setPushHooks), else nobody (the message is dropped, as are kinds
// a hook does not know).
//
// Ordering. A hook runs on the reader goroutine, so it sees the messages
// of its connection in the order the daemon sent them, and it runs before
// the reader hands out any reply that followed the message on the wire.
// So for the read cache: an invalidation of key k pushed before the reply
// of a read of k is seen by the hook before the read's caller gets the
// reply (the caller can then be told "do not cache"); one pushed after it
// is seen after. A hook must not block, nor call the connection it
// serves (it would wait for its own reader): the replies of every call on
// the connection wait while it runs. Hand work to another goroutine.
//
// Loss. When a connection ends for any reason (the daemon crashed or
// stopped, an I/O error, the pool retiring an idle or old connection,
// Client.Close), lost is called once, on the reader goroutine after the
// connection left the pool and before the calls it held are failed. The
// subscriptions made on it are gone, and so is the tracking of the reads
// it served: subscribe again on another connection, empty the cache.
//
// Use, for issue 16:
//
//	h := &pushHooks{push: onPush, lost: onLost}
//	cn, err := c.p.pushConn(ctx, h) // dedicated: subscriptions
//	err = cn.exec(ctx, newCall(wire.OpSubscribe).text("chan")) // its reply: cl.result
//	...
//	cn.retire() // done: closes once its calls are answered
//
//	c.p.setPushHooks(h) // or on every shared connection: the read cache
//
// A dedicated connection is pinned: it is not shared with other calls
// nor counted in the pool size, and Client.Close closes it. It is not
// redialed when lost: lost says so, and the owner dials another.
type pushHooks struct {
	// push gets each push message: kind is its "push" field, msg the
	// whole map. msg aliases the reader's buffer: it is valid until push
	// returns; copy what you keep.
	push func(c *conn, kind string, msg wire.Raw)
	// lost is told why the connection ended (ErrClosed after Client.Close).
	lost func(c *conn, err error)
}

// setPushHooks sets the hooks of the pool's shared connections, those
// open now and those dialed later; nil removes them. Connections pinned by
// a Conn or dedicated by pushConn are not shared: they keep theirs.
func (p *pool) setPushHooks(h *pushHooks) {
	p.pushHooks.Store(h)
	// A connection with hooks is read all the time (readside.go): wake
	// the readers of idle ones, which nobody read.
	for _, cn := range *p.conns.Load() {
		cn.kickReader()
	}
}

// pushConn dials a connection dedicated to h: pinned (not shared, not
// counted in the pool size), with h set before its reader starts so that
// it misses no message. It fails with errors.ErrUnsupported when the
// daemon does not speak the push extension.
func (p *pool) pushConn(ctx context.Context, h *pushHooks) (*conn, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	// The hooks are set as it is dialed: a connection WithOnConnect
	// started before they were set read as an ordinary one, its callers
	// reading their own replies, and once they were set nobody read: the
	// read cache's tracking call waited its whole time-out after a daemon
	// restart.
	cn, err := p.dial(ctx, h)
	if err != nil {
		return nil, err
	}
	if !cn.push {
		cn.shutdown(errPushUnsupported(p))
		return nil, errPushUnsupported(p)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.addLocked(cn, true); err != nil {
		return nil, err
	}
	return cn, nil
}

func errPushUnsupported(p *pool) error {
	return errors.Join(errors.ErrUnsupported,
		errors.New("cyberdb: the daemon at "+p.dialer.display+" does not speak the push extension (PROTOCOL.md 3.1); upgrade cyberdbd"))
}

// exec runs cl on this connection only, with the retry rules of the pool
// (a call never sent is not resent elsewhere: the connection being gone,
// it fails with ErrConnClosed). Through the Call hooks, as every call:
// a read cache's miss and its tracking call, a subscription's call.
func (c *conn) exec(ctx context.Context, cl *call) error {
	return c.p.exec(ctx, cl, onConn{c})
}

// onConn is a connSource of one connection.
type onConn struct{ c *conn }

func (o onConn) get(context.Context) (*conn, error) {
	if o.c.unusable.Load() {
		return nil, ErrConnClosed
	}
	return o.c, nil
}

func (o onConn) fresh(ctx context.Context) (*conn, func(), error) {
	cn, err := o.get(ctx)
	return cn, nil, err
}

// pushMessage recognises a push frame [0, 0, {"push": KIND, ...}] and
// returns its kind and its map.
func pushMessage(body []byte) (kind string, msg wire.Raw, ok bool) {
	id, code, rest, ok := wire.ReplyHead(body)
	if !ok || id != 0 || code != 0 || len(rest) == 0 || rest[0]>>5 != 5 {
		return "", nil, false
	}
	// Walked, not unmarshalled: a subscriber gets one per message, and
	// reflection made it a third of a subscriber's CPU (issue 16).
	found := false
	err := wire.Pairs(rest, func(k, v wire.Raw) error {
		if !found && pushKey(k) == "push" {
			if kind, found = wire.ItemText(v); found {
				kind = internKind(kind)
			}
		}
		return nil
	})
	if err != nil || !found {
		return "", nil, false
	}
	return kind, wire.Raw(rest), true
}

// pushKey returns the name of the key k of a push message when it is one
// that this package reads, else "". The daemon sends them as short text
// in their canonical form, which is compared as bytes: no UTF-8 check and
// no allocation for each message of a subscriber's stream; another form
// of the same text goes the long way.
func pushKey(k wire.Raw) string {
	if len(k) >= 1 && len(k) <= 24 && k[0] == 0x60|byte(len(k)-1) {
		switch string(k[1:]) {
		case "push":
			return "push"
		case "channel":
			return "channel"
		case "pattern":
			return "pattern"
		case "data":
			return "data"
		}
		return ""
	}
	switch name, _ := wire.ItemText(k); name {
	case "push", "channel", "pattern", "data":
		return name
	}
	return ""
}

// internKind returns kind (which aliases a read buffer) as a string of
// its own, without allocating for the kinds PROTOCOL.md defines.
func internKind(kind string) string {
	for _, k := range [...]string{"message", "event", "invalidate", "lost", "monitor"} {
		if kind == k {
			return k
		}
	}
	return strings.Clone(kind)
}

func (c *conn) pushHooks() *pushHooks {
	if c.hooks != nil {
		return c.hooks
	}
	return c.p.pushHooks.Load()
}

// deliverPush hands a push message to the hooks; called by the reader.
func (c *conn) deliverPush(kind string, msg wire.Raw) {
	if h := c.pushHooks(); h != nil && h.push != nil {
		h.push(c, kind, msg)
	}
}

// lost tells the hooks that the connection ended; called once, by finish.
func (c *conn) lost(err error) {
	if h := c.pushHooks(); h != nil && h.lost != nil {
		h.lost(c, err)
	}
}
