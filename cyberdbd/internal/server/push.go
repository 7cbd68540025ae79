package server

import (
	"strings"
	"sync"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Server-pushed messages (PROTOCOL.md 3.1, 6.7-6.9): pub/sub messages,
// watch events and read-cache invalidations.
//
// Each push connection has a pushQueue: the push frames produced for it
// by other goroutines (a publisher's connection, a writer under its table
// locks, the expiry sweeper) wait there until the connection's owner
// takes them (an event loop in its next round, or a goroutine started for
// a goroutine-served connection) and writes them. The queue is bounded by
// Config.MaxPushBuffer bytes: a push that does not fit drops its
// subscription and queues one small "lost" push instead (for the read
// cache's tracking: "lost" means "invalidate everything", and tracking
// goes on). So a subscriber that stops reading costs the daemon at most
// the bound, plus one "lost" frame per subscription, and its connection
// still serves requests.

// DefaultMaxPushBuffer is the default for Config.MaxPushBuffer.
const DefaultMaxPushBuffer = 1 << 20

// Subscription kinds.
const (
	subChannels = iota + 1 // subscribe
	subPatterns            // psubscribe
	subWatch               // watch
	subTracking            // tracking
)

// subscription is one live subscription of a connection.
type subscription struct {
	kind    int
	names   []string // channels or patterns
	watch   *store.Watch
	tracker *store.Tracker
}

// pushQueue is a connection's push state, shared by every goroutine that
// pushes to it.
type pushQueue struct {
	s      *Server
	notify func() // tells the connection's owner there is something to take; called without mu

	// mu guards everything below; a leaf (Push runs under table locks).
	mu       sync.Mutex
	buf      []byte          // push frames not yet taken
	lostSent map[uint64]bool // subscriptions told "lost" since buf was last taken
	subs     map[uint64]*subscription
	nextSub  uint64
	tracker  *store.Tracker // the live tracking subscription, if any
	closed   bool
	flushing bool // goroutine-served connections: a writer goroutine is running
	dropped  uint64
}

func newPushQueue(s *Server, notify func()) *pushQueue {
	return &pushQueue{s: s, notify: notify, subs: make(map[uint64]*subscription)}
}

// live reports whether q has subscriptions (channels, patterns, watches,
// tracking): its connection waits for pushes, and is not idle however
// long it sends nothing (--idle-timeout; Redis exempts its pub/sub
// clients likewise). Nil-safe.
func (q *pushQueue) live() bool {
	if q == nil {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.subs) > 0
}

// add registers a new subscription and returns its id.
func (q *pushQueue) add(sub *subscription) uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.nextSub++
	q.subs[q.nextSub] = sub
	return q.nextSub
}

// Push implements store.Sink: it queues frames for subscription sub, or,
// when they do not fit, drops the subscription (tracking: forgets what it
// tracked) and queues a "lost" push. A subscription that is no longer
// live takes nothing.
func (q *pushQueue) Push(sub uint64, frames []byte) bool {
	_, ok := q.push(sub, frames)
	return ok
}

// push is Push that also says whether the frames were queued (false for
// a subscription no longer live, which Push does not count as lost).
func (q *pushQueue) push(sub uint64, frames []byte) (queued, ok bool) {
	q.mu.Lock()
	sb := q.subs[sub]
	if q.closed || sb == nil {
		q.mu.Unlock()
		return false, true // gone already: nothing to tell
	}
	was := len(q.buf)
	if len(q.buf)+len(frames) > q.s.cfg.MaxPushBuffer {
		q.dropped++
		q.s.pushLost.Add(1)
		if sb.kind != subTracking {
			delete(q.subs, sub)
		}
		if !q.lostSent[sub] {
			if q.lostSent == nil {
				q.lostSent = make(map[uint64]bool)
			}
			q.lostSent[sub] = true
			q.buf = appendLost(q.buf, sub, "overflow")
		}
		q.mu.Unlock()
		if was == 0 {
			q.notify()
		}
		return false, false
	}
	q.buf = append(q.buf, frames...)
	q.mu.Unlock()
	q.s.pushed.Add(1)
	if was == 0 {
		q.notify()
	}
	return true, true
}

// appendLost appends {"push": "lost", "sub": sub, "reason": why}.
func appendLost(b []byte, sub uint64, why string) []byte {
	b, start := wire.BeginReply(b, 0)
	b = wire.AppendMapHeader(b, 3)
	b = wire.AppendText(b, "push")
	b = wire.AppendText(b, "lost")
	b = wire.AppendText(b, "sub")
	b = wire.AppendUint(b, sub)
	b = wire.AppendText(b, "reason")
	b = wire.AppendText(b, why)
	return wire.EndFrame(b, start)
}

// take appends the queued frames to out and empties the queue.
func (q *pushQueue) take(out []byte) []byte {
	q.mu.Lock()
	out = append(out, q.buf...)
	if cap(q.buf) > 64<<10 {
		q.buf = nil
	} else {
		q.buf = q.buf[:0]
	}
	clear(q.lostSent)
	q.mu.Unlock()
	return out
}

// pending says whether frames wait.
func (q *pushQueue) pending() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.buf) > 0
}

// remove ends subscription sub and reports whether it was live.
func (q *pushQueue) remove(sub uint64) bool {
	q.mu.Lock()
	sb := q.subs[sub]
	delete(q.subs, sub)
	if sb != nil && sb.kind == subTracking {
		q.tracker = nil
	}
	q.mu.Unlock()
	if sb == nil {
		return false
	}
	q.s.endSub(q, sub, sb)
	return true
}

// close ends every subscription: the connection is gone.
func (q *pushQueue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	subs := q.subs
	q.subs = map[uint64]*subscription{}
	q.tracker = nil
	q.buf = nil
	q.mu.Unlock()
	for id, sb := range subs {
		q.s.endSub(q, id, sb)
	}
}

// endSub takes subscription id of q out of the server and the store.
func (s *Server) endSub(q *pushQueue, id uint64, sb *subscription) {
	switch sb.kind {
	case subChannels, subPatterns:
		s.ps.remove(q, id, sb)
	case subWatch:
		s.store.RemoveWatch(sb.watch)
	case subTracking:
		s.store.StopTracking(sb.tracker)
	}
}

// pushes returns the connection's push queue, made on first use.
func (c *conn) pushes() *pushQueue {
	if c.pq == nil {
		if c.notifyPush != nil {
			c.pq = newPushQueue(c.s, c.notifyPush)
		} else {
			c.pq = newPushQueue(c.s, c.flushPushAsync)
		}
	}
	return c.pq
}

// flushPushAsync writes the push queue of a goroutine-served connection
// from a goroutine of its own (one at a time), as deliverAsync does.
func (c *conn) flushPushAsync() {
	q := c.pq
	q.mu.Lock()
	if q.flushing {
		q.mu.Unlock()
		return
	}
	q.flushing = true
	q.mu.Unlock()
	go func() {
		var buf []byte
		for {
			// Taken under wmu, as flush takes what is left before a
			// reply: whoever holds wmu writes every push queued so far,
			// so pushes keep their order, and come before the replies
			// sent after them.
			c.shared.wmu.Lock()
			buf = q.take(buf[:0])
			if len(buf) == 0 {
				c.shared.wmu.Unlock()
				q.mu.Lock()
				if len(q.buf) == 0 {
					q.flushing = false
					q.mu.Unlock()
					return
				}
				q.mu.Unlock()
				continue
			}
			if !c.gone && !c.shared.broken.Load() {
				_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
				if _, err := c.nc.Write(buf); err != nil {
					c.writeBroke("its pushes", err)
				}
				c.writeDL = time.Time{}
			}
			c.shared.wmu.Unlock()
		}
	}()
}

// needPush refuses a subscription on a connection without push.
func needPush(op wire.Op) error {
	return wire.Errorf(wire.CodeBadRequest,
		"%s needs the push extension: send \"push\": true in HELLO's options (PROTOCOL.md 3.1)", op)
}

// subResult encodes {"sub": id} plus extra pairs.
func subResult(out []byte, id uint64, extra ...any) []byte {
	out = wire.AppendMapHeader(out, 1+len(extra)/2)
	out = wire.AppendText(out, "sub")
	out = wire.AppendUint(out, id)
	for i := 0; i+1 < len(extra); i += 2 {
		out = wire.AppendText(out, extra[i].(string))
		switch v := extra[i+1].(type) {
		case uint64:
			out = wire.AppendUint(out, v)
		case bool:
			out = wire.AppendBool(out, v)
		}
	}
	return out
}

// execPush runs the ops of push and pub/sub (80-85).
func (c *conn) execPush(req wire.Request, out []byte) ([]byte, error) {
	a := req.Args
	a.Op = req.Op
	switch req.Op {
	case wire.OpPublish:
		if err := a.Want(2, 2); err != nil {
			return out, err
		}
		ch, err := a.Text(0)
		if err != nil {
			return out, wire.Errorf(wire.CodeBadRequest, "publish: argument 1 must be the channel, a text string")
		}
		msg, err := a.Value(1)
		if err != nil {
			return out, err
		}
		return wire.AppendUint(out, uint64(c.s.ps.publish(ch, msg))), nil
	case wire.OpSubscribe, wire.OpPSubscribe:
		if !c.push {
			return out, needPush(req.Op)
		}
		if a.Len() == 0 {
			return out, wire.Errorf(wire.CodeBadRequest, "%s: name at least one channel", req.Op)
		}
		names := make([]string, a.Len())
		for i := range names {
			n, err := a.Text(i)
			if err != nil {
				return out, wire.Errorf(wire.CodeBadRequest, "%s: argument %d must be a channel name or pattern, a text string", req.Op, i+1)
			}
			names[i] = strings.Clone(n) // n aliases the request
		}
		kind := subChannels
		if req.Op == wire.OpPSubscribe {
			kind = subPatterns
		}
		q := c.pushes()
		sb := &subscription{kind: kind, names: names}
		id := q.add(sb)
		c.s.ps.add(q, id, sb)
		return subResult(out, id), nil
	case wire.OpUnsubscribe:
		if err := a.Want(1, 1); err != nil {
			return out, err
		}
		id, err := a.Uint(0)
		if err != nil {
			return out, err
		}
		if c.pq == nil {
			return wire.AppendBool(out, false), nil
		}
		return wire.AppendBool(out, c.pq.remove(id)), nil
	case wire.OpWatch:
		return c.watch(a, out)
	case wire.OpTracking:
		return c.tracking(a, out)
	}
	return out, wire.Errorf(wire.CodeUnknownOp, "unknown op %d", uint16(req.Op))
}

// watch: [t, {"key": k | "prefix": p, "values": bool}?] -> {"sub", "seq", "exists", "run"}.
func (c *conn) watch(a wire.Args, out []byte) ([]byte, error) {
	if !c.push {
		return out, needPush(a.Op)
	}
	if err := a.Want(1, 2); err != nil {
		return out, err
	}
	name, err := a.Text(0)
	if err != nil || name == "" || len(name) > store.MaxNameLen {
		return out, wire.Errorf(wire.CodeBadRequest, "watch: argument 1 must be the table name, 1 to %d bytes of text", store.MaxNameLen)
	}
	w := &store.Watch{Table: name}
	if a.Has(1) {
		raw := a.Items[1]
		if len(raw) == 0 || raw[0]>>5 != 5 {
			return out, wire.Errorf(wire.CodeBadRequest, `watch: argument 2 must be a map of options ("key", "prefix", "values"), got %s`, wire.TypeName(raw))
		}
		err := wire.Pairs(raw, func(k, v wire.Raw) error {
			opt, _ := wire.Args{Items: []wire.Raw{k}}.Text(0)
			item := wire.Args{Op: a.Op, Items: []wire.Raw{v}}
			switch opt {
			case "key":
				key, err := item.Value(0)
				if err != nil {
					return err
				}
				w.Key = append([]byte(nil), key...)
			case "prefix":
				p, err := item.Text(0)
				if err != nil {
					return wire.Errorf(wire.CodeBadRequest, `watch: "prefix" must be text`)
				}
				w.Prefix, w.HasPrefix = strings.Clone(p), true
			case "values":
				if len(v) != 1 || (v[0] != 0xf4 && v[0] != 0xf5) {
					return wire.Errorf(wire.CodeBadRequest, `watch: "values" must be true or false`)
				}
				w.Values = v[0] == 0xf5
			default:
				return wire.Errorf(wire.CodeBadRequest, `watch: unknown option %s (watch takes "key", "prefix" and "values")`, wire.Diagnose(k))
			}
			return nil
		})
		if err != nil {
			return out, err
		}
		if w.Key != nil && w.HasPrefix {
			return out, wire.Errorf(wire.CodeBadRequest, `watch: give "key" or "prefix", not both`)
		}
	}
	q := c.pushes()
	sb := &subscription{kind: subWatch, watch: w}
	id := q.add(sb)
	w.Sub, w.Sink = id, q
	seq, exists := c.s.store.AddWatch(w)
	return subResult(out, id, "seq", seq, "exists", exists, "run", c.s.run), nil
}

// tracking: [on] -> {"sub": id} (on), or bool (off: tracking was on).
func (c *conn) tracking(a wire.Args, out []byte) ([]byte, error) {
	if !c.push {
		return out, needPush(a.Op)
	}
	if err := a.Want(1, 1); err != nil {
		return out, err
	}
	on := a.Items[0]
	if len(on) != 1 || (on[0] != 0xf4 && on[0] != 0xf5) {
		return out, wire.Errorf(wire.CodeBadRequest, "tracking: argument 1 must be true (start) or false (stop)")
	}
	q := c.pushes()
	if on[0] == 0xf4 {
		q.mu.Lock()
		tr := q.tracker
		q.mu.Unlock()
		if tr == nil {
			return wire.AppendBool(out, false), nil
		}
		return wire.AppendBool(out, q.remove(tr.Sub)), nil
	}
	q.mu.Lock()
	if tr := q.tracker; tr != nil {
		q.mu.Unlock()
		return subResult(out, tr.Sub), nil // already on: the same subscription
	}
	tr := &store.Tracker{Sink: q}
	q.nextSub++
	tr.Sub = q.nextSub
	q.subs[tr.Sub] = &subscription{kind: subTracking, tracker: tr}
	q.tracker = tr
	q.mu.Unlock()
	c.tracker = tr
	c.s.store.StartTracking(tr)
	return subResult(out, tr.Sub), nil
}
