package libcyberdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"sync"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Publish/subscribe and table watches (PROTOCOL.md 6.8). Each
// subscription has a connection of its own (pool.pushConn), so that its
// messages never wait behind the replies of the Client's other calls, and
// a slow consumer only risks its own subscription.

// ErrLost is reported by a subscription's iterator when messages may have
// been missed: the daemon dropped the subscription because its consumer
// was too slow (past the daemon's --max-push-buffer, or this side's
// buffer), or the connection was lost. The iterator then subscribes again
// and goes on; what was published meanwhile is gone (pub/sub is fire and
// forget). A watch reports the same moment as an Event with Resynced set.
var ErrLost = errors.New("cyberdb: subscription lost: messages may have been missed")

// subBuffer is how many pushes a subscription holds for its consumer;
// past it, it counts as lost.
const subBuffer = 4096

// Message is one pub/sub message.
type Message struct {
	Channel string
	Pattern string   // the pattern that matched (PSubscribe), else ""
	Data    wire.Raw // the message, CBOR: decode it with Decode
}

// Decode decodes the message's data into v. Data that does not fit v
// fails with a *DecodeError (ErrDecode), as a table's reads do.
func (m Message) Decode(v any) error {
	if err := unmarshal(m.Data, v); err != nil {
		return fmt.Errorf("%w (a message on channel %s)", decodeErr(wire.OpSubscribe, "", nil, 0, m.Data, v, err), shorten(strconv.Quote(m.Channel)))
	}
	return nil
}

// Text returns the data when it is a text string.
func (m Message) Text() (string, bool) { return wire.ItemText(m.Data) }

// pushStream is a dedicated push connection and the pushes it received,
// for one subscription. The reader goroutine appends to items and signals
// once; the consumer takes everything pending at once: one wake-up per
// burst, not per message.
type pushStream struct {
	p      *pool
	signal chan struct{} // capacity 1: items has something
	mu     sync.Mutex
	items  []pushItem // at most subBuffer
	spare  []pushItem // the consumer's last batch, reused
	cn     *conn
	full   bool   // a push did not fit: report lost once drained
	arena  []byte // the block keep carves copies from
}

type pushItem struct {
	kind string
	msg  wire.Raw // a copy
	err  error    // the connection ended
}

func newPushStream(p *pool) *pushStream {
	return &pushStream{p: p, signal: make(chan struct{}, 1)}
}

func (s *pushStream) add(it pushItem) {
	s.mu.Lock()
	if len(s.items) >= subBuffer {
		s.full = true
	} else {
		if it.msg != nil {
			it.msg = s.keep(it.msg)
		}
		s.items = append(s.items, it)
	}
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// arenaSize is the size of the blocks keep copies push messages into.
const arenaSize = 8 << 10

// keep returns a copy of msg (which aliases the reader's buffer), carved
// from a block shared with the messages before it: one allocation per
// block, not per message (a subscriber's hottest path). A message the
// user keeps keeps its block alive; a block is never written again where
// a message was carved. Called with s.mu held.
func (s *pushStream) keep(msg wire.Raw) wire.Raw {
	if len(msg) > arenaSize/4 {
		return append(wire.Raw(nil), msg...)
	}
	if cap(s.arena)-len(s.arena) < len(msg) {
		s.arena = make([]byte, 0, arenaSize)
	}
	start := len(s.arena)
	s.arena = append(s.arena, msg...)
	return wire.Raw(s.arena[start:len(s.arena):len(s.arena)])
}

func (s *pushStream) hooks() *pushHooks {
	return &pushHooks{
		push: func(cn *conn, kind string, msg wire.Raw) {
			s.add(pushItem{kind: kind, msg: msg}) // add copies msg
		},
		lost: func(cn *conn, err error) { s.add(pushItem{err: err}) },
	}
}

// drain forgets what is pending (a new connection starts).
func (s *pushStream) drain() {
	s.mu.Lock()
	s.items, s.full = s.items[:0], false
	s.mu.Unlock()
}

// open dials the stream's connection and sends the subscribing call.
func (s *pushStream) open(ctx context.Context, cl *call, out any) error {
	cn, err := s.p.pushConn(ctx, s.hooks())
	if err != nil {
		cl.release()
		return err
	}
	err = cn.exec(ctx, cl)
	if err == nil && out != nil {
		err = unmarshal(cl.result, out)
	}
	cl.release()
	if err != nil {
		cn.retire()
		return err
	}
	s.mu.Lock()
	s.cn = cn
	s.mu.Unlock()
	return nil
}

func (s *pushStream) close() {
	s.mu.Lock()
	cn := s.cn
	s.cn = nil
	s.mu.Unlock()
	if cn != nil {
		cn.retire()
	}
}

// batch waits for pushes and returns all pending, in order; lost (true)
// when some may have been missed before them.
func (s *pushStream) batch(ctx context.Context) (items []pushItem, lost bool, err error) {
	for {
		s.mu.Lock()
		if len(s.items) > 0 || s.full {
			items, s.items, s.spare = s.items, s.spare[:0], nil
			lost, s.full = s.full, false
			s.mu.Unlock()
			return items, lost, nil
		}
		s.mu.Unlock()
		select {
		case <-s.signal:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// done gives a batch's slice back for reuse.
func (s *pushStream) done(items []pushItem) {
	clear(items)
	s.mu.Lock()
	s.spare = items[:0]
	s.mu.Unlock()
}

// Subscribe subscribes to channels and returns an iterator of their
// messages, which runs until ctx ends (it then yields ctx's error once)
// or the loop breaks. When messages may have been missed it yields
// ErrLost, subscribes again and goes on. Pub/sub is fire and forget: a
// message published while nobody is subscribed is gone.
func (c *Client) Subscribe(ctx context.Context, channels ...string) iter.Seq2[Message, error] {
	return c.subscribe(ctx, wire.OpSubscribe, channels)
}

// PSubscribe is Subscribe to Redis glob patterns (*, ?, [abc], \x):
// Message.Pattern says which matched.
func (c *Client) PSubscribe(ctx context.Context, patterns ...string) iter.Seq2[Message, error] {
	return c.subscribe(ctx, wire.OpPSubscribe, patterns)
}

func (c *Client) subscribe(ctx context.Context, op wire.Op, names []string) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		if len(names) == 0 {
			yield(Message{}, fmt.Errorf("cyberdb: %s: name at least one channel", op))
			return
		}
		s := newPushStream(c.p)
		defer s.close()
		subscribe := func() error {
			cl := newCall(op)
			for _, n := range names {
				cl.text(n)
			}
			return s.open(ctx, cl, nil)
		}
		if err := subscribe(); err != nil {
			yield(Message{}, err)
			return
		}
		for {
			items, lost, err := s.batch(ctx)
			if err != nil {
				yield(Message{}, err)
				return
			}
			for k, it := range items {
				if it.err != nil || it.kind == "lost" {
					lost = true
					items = items[:k]
					break
				}
			}
			for _, it := range items {
				if it.kind != "message" {
					continue
				}
				m, ok := parseMessage(it.msg)
				if !ok {
					continue
				}
				if !yield(m, nil) {
					return
				}
			}
			s.done(items)
			if lost {
				s.close()
				s.drain() // the old connection's
				if !yield(Message{}, ErrLost) {
					return
				}
				if err := resubscribe(ctx, subscribe); err != nil {
					yield(Message{}, err)
					return
				}
			}
		}
	}
}

// resubscribe retries fn until it succeeds or ctx ends, backing off from
// 10 ms to 1 s (the daemon may be restarting).
func resubscribe(ctx context.Context, fn func() error) error {
	wait := 10 * time.Millisecond
	for {
		err := fn()
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, time.Second)
	}
}

// Publish sends message to the subscribers of channel and returns how
// many subscriptions received it (fire and forget: none is kept).
func (c *Client) Publish(ctx context.Context, channel string, message any) (int, error) {
	cl := arg(newCall(wire.OpPublish).text(channel), message)
	err := c.exec(ctx, cl)
	n := 0
	if err == nil {
		err = unmarshal(cl.result, &n)
	}
	cl.release()
	return n, err
}

// Event is one change of a watched table, or a resync marker.
type Event[K comparable, V any] struct {
	// Op is the write op that made the change ("dset", "ddel", "dincr",
	// "dclear", "drop", ...), "expired" or "evicted".
	Op     string
	Key    K    // the key changed, when HasKey
	HasKey bool // false: a change of the whole table (clear, drop, popitem...)
	// Value is the key's value after the change, when HasValue (the
	// watch asked for values, and the key holds one).
	Value    V
	HasValue bool
	Seq      uint64     // the table's change counter (PROTOCOL.md 6.8)
	Args     []wire.Raw // the op's arguments after the table (and key)

	// Resynced marks the moment events may have been missed (the watch
	// was dropped, or its connection lost, and was made again). With
	// WatchResync, Snapshot holds the table as read right after the watch
	// was made again (nil: the table does not exist).
	Resynced bool
	Snapshot map[K]V
}

// WatchOption configures Dict.Watch.
type WatchOption func(*watchConfig)

type watchConfig struct {
	key    any
	hasKey bool
	prefix *string
	values bool
	resync bool
}

// WatchKey watches one key only.
func WatchKey[K comparable](key K) WatchOption {
	return func(c *watchConfig) { c.key, c.hasKey = key, true }
}

// WatchPrefix watches the text keys starting with prefix.
func WatchPrefix(prefix string) WatchOption { return func(c *watchConfig) { c.prefix = &prefix } }

// WatchValues makes events carry the value a key holds after the change.
func WatchValues() WatchOption { return func(c *watchConfig) { c.values = true } }

// WatchResync makes a Resynced marker carry the table as re-read.
func WatchResync() WatchOption { return func(c *watchConfig) { c.resync = true } }

// Watch returns an iterator of the changes of the table, in the order
// they were applied, until ctx ends (it then yields ctx's error once) or
// the loop breaks. When events may have been missed (the daemon dropped
// the watch of a slow consumer, the connection was lost, the daemon
// restarted) it watches again and yields an Event with Resynced set
// before the events that follow; with WatchResync the marker holds the
// table as re-read after watching again, so that the events that follow
// apply to it. A reconnect that provably missed nothing (same daemon run,
// same change counter) yields no marker.
func (d *Dict[K, V]) Watch(ctx context.Context, opts ...WatchOption) iter.Seq2[Event[K, V], error] {
	var cfg watchConfig
	for _, o := range opts {
		o(&cfg)
	}
	return func(yield func(Event[K, V], error) bool) {
		var p *pool
		switch x := d.x.(type) {
		case *Client:
			p = x.p
		case *Conn:
			p = x.c.p
		default:
			yield(Event[K, V]{}, fmt.Errorf("cyberdb: Watch needs a Dict of a *Client or *Conn, not of a %T", d.x))
			return
		}
		s := newPushStream(p)
		defer s.close()
		var run, seq uint64
		started := false
		watch := func() (missed bool, err error) {
			cl := newCall(wire.OpWatch).raw(d.enc)
			o := map[string]any{}
			if cfg.hasKey {
				o["key"] = cfg.key
			}
			if cfg.prefix != nil {
				o["prefix"] = *cfg.prefix
			}
			if cfg.values {
				o["values"] = true
			}
			cl.value(o)
			var r struct {
				Seq uint64 `cbor:"seq"`
				Run uint64 `cbor:"run"`
			}
			if err := s.open(ctx, cl, &r); err != nil {
				return false, err
			}
			missed = started && (r.Run != run || r.Seq != seq)
			run, seq, started = r.Run, r.Seq, true
			return missed, nil
		}
		if _, err := watch(); err != nil {
			yield(Event[K, V]{}, err)
			return
		}
		for {
			items, lost, err := s.batch(ctx)
			if err != nil {
				yield(Event[K, V]{}, err)
				return
			}
			missed := lost // this side's buffer overflowed
			for k, it := range items {
				if it.err != nil || it.kind == "lost" {
					lost, missed = true, missed || it.kind == "lost"
					items = items[:k]
					break
				}
			}
			for _, it := range items {
				if !d.yieldEvent(it, &seq, yield) {
					return
				}
			}
			s.done(items)
			if lost {
				s.close()
				s.drain()
				if err := resubscribe(ctx, func() error {
					m, err := watch()
					missed = missed || m
					return err
				}); err != nil {
					yield(Event[K, V]{}, err)
					return
				}
				if missed {
					ev := Event[K, V]{Resynced: true, Seq: seq}
					if cfg.resync {
						m, err := d.Map(ctx)
						if err != nil && !errors.Is(err, ErrNoTable) {
							yield(Event[K, V]{}, err)
							return
						}
						ev.Snapshot = m
					}
					if !yield(ev, nil) {
						return
					}
				}
			}
		}
	}
}

// yieldEvent decodes an "event" push and yields it; false: stop.
func (d *Dict[K, V]) yieldEvent(it pushItem, seq *uint64, yield func(Event[K, V], error) bool) bool {
	if it.kind != "event" {
		return true
	}
	var m struct {
		Op    string     `cbor:"op"`
		Seq   uint64     `cbor:"seq"`
		Key   wire.Raw   `cbor:"key"`
		Value wire.Raw   `cbor:"value"`
		Args  []wire.Raw `cbor:"args"`
	}
	if err := wire.Unmarshal(it.msg, &m); err != nil {
		return true
	}
	*seq = m.Seq
	ev := Event[K, V]{Op: m.Op, Seq: m.Seq, Args: m.Args}
	// A key or value that does not fit K or V fails as Dict's reads do:
	// a *DecodeError naming the table and the key.
	if m.Key != nil {
		if err := unmarshal(m.Key, &ev.Key); err != nil {
			e := decodeErr(wire.OpWatch, d.name, nil, 0, m.Key, &ev.Key, err)
			if de, ok := e.(*DecodeError); ok {
				de.Key, de.KeyItself = bytes.Clone(m.Key), true
			}
			return yield(Event[K, V]{}, e)
		}
		ev.HasKey = true
	}
	if m.Value != nil {
		if err := unmarshal(m.Value, &ev.Value); err != nil {
			e := decodeErr(wire.OpWatch, d.name, nil, 0, m.Value, &ev.Value, err)
			if de, ok := e.(*DecodeError); ok && de.Key == nil && m.Key != nil {
				de.Key = bytes.Clone(m.Key)
			}
			return yield(Event[K, V]{}, e)
		}
		ev.HasValue = true
	}
	return yield(ev, nil)
}

// parseMessage reads a "message" push without reflection (it is the hot
// path of a subscriber): {"push", "sub", "channel", "pattern"?, "data"}.
func parseMessage(msg wire.Raw) (m Message, ok bool) {
	// msg is a copy of what the reader checked with wire.Pairs
	// (pushMessage): walked again, not checked again.
	err := wire.WalkMap(msg, func(k, v wire.Raw) error {
		switch pushKey(k) {
		case "channel":
			m.Channel, _ = wire.ItemText(v)
		case "pattern":
			m.Pattern, _ = wire.ItemText(v)
		case "data":
			m.Data = v
		}
		return nil
	})
	return m, err == nil
}
