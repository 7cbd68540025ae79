package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/signal"
	"strconv"

	"github.com/cyberdb/cyberdb/libcyberdb"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// The event commands: publish, subscribe and watch (PROTOCOL.md 6.8).
// subscribe and watch print one JSON object per line until interrupted
// (SIGINT) or, with --count N, after N lines.

const groupEvents = "events"

func init() {
	for _, c := range []*command{
		{name: "publish", group: groupEvents, args: "CHANNEL MESSAGE", summary: "publish a message on a channel and print how many subscribers received it", min: 2, max: 2,
			ops: []wire.Op{wire.OpPublish},
			help: `MESSAGE is JSON (or text, as every VALUE; "-" reads stdin). Fire and forget:
a message published while nobody is subscribed is gone. Prints the number of
subscriptions that received it.

Example:
  cyberdb publish config '{"flag": "on"}'`, run: runPublish},
		{name: "subscribe", group: groupEvents, args: "CHANNEL... [--pattern] [--count N]", summary: "print the messages of channels, one JSON line each, until interrupted", min: 1, max: -1,
			ops: []wire.Op{wire.OpSubscribe, wire.OpPSubscribe, wire.OpUnsubscribe},
			help: `Prints {"channel": ..., "data": ...} for each message (and "pattern" with
--pattern, which takes Redis glob patterns: * ? [abc]). When messages were
lost (the terminal read too slowly), prints {"lost": true} and goes on.
--count N exits after N messages.

Examples:
  cyberdb subscribe config news
  cyberdb subscribe --pattern 'news.*'`, run: runSubscribe},
		{name: "watch", group: groupEvents, args: "TABLE [KEY] [--count N]", summary: "print the changes of a dict table (or of one key), one JSON line each, until interrupted", min: 1, max: 4,
			ops: []wire.Op{wire.OpWatch, wire.OpTracking},
			help: `Prints {"seq": N, "op": ..., "key": ..., "value": ...} for every change of
TABLE (or of KEY only), in the order the changes were applied: sets,
deletes, increments, clears, drops, expiry ("expired") and eviction
("evicted"). When events may have been missed (the daemon restarted, or the
terminal read too slowly) prints {"resynced": true} and goes on.
--count N exits after N events. (Tracking, the read cache's protocol, is
used by libcyberdb's CachedDict.)

Examples:
  cyberdb watch flags
  cyberdb watch flags beta --count 1`, run: runWatch},
	} {
		register(c)
	}
}

// streamFlags takes --count N and --pattern out of args.
func streamFlags(args []string) (rest []string, count int, pattern bool, err error) {
	count = -1
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--pattern", "-p":
			pattern = true
		case "--count", "-n":
			if i+1 >= len(args) {
				return nil, 0, false, usagef("--count needs a number")
			}
			n, err := strconv.Atoi(args[i+1])
			if err != nil || n < 1 {
				return nil, 0, false, usagef("--count %q: want a positive integer", args[i+1])
			}
			count = n
			i++
		default:
			rest = append(rest, args[i])
		}
	}
	return rest, count, pattern, nil
}

// streamContext is the parent context (no --timeout: a stream runs until
// interrupted), ended by SIGINT.
func streamContext(e *env) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(e.parent, os.Interrupt)
}

func runPublish(e *env, a []string) error {
	v, err := e.value(a[1])
	if err != nil {
		return err
	}
	return call(e, wire.OpPublish, a[0], v)
}

func runSubscribe(e *env, a []string) error {
	names, count, pattern, err := streamFlags(a)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return usagef("name at least one channel")
	}
	c, err := e.Client()
	if err != nil {
		return err
	}
	ctx, cancel := streamContext(e)
	defer cancel()
	seq := c.Subscribe(ctx, names...)
	if pattern {
		seq = c.PSubscribe(ctx, names...)
	}
	for m, err := range seq {
		switch {
		case errors.Is(err, libcyberdb.ErrLost):
			if err := e.line([]byte(`{"lost":true}`)); err != nil {
				return err
			}
			continue
		case err != nil && ctx.Err() != nil:
			return nil // interrupted
		case err != nil:
			return err
		}
		var b bytes.Buffer
		b.WriteString(`{"channel":`)
		writeJSONString(&b, m.Channel)
		if m.Pattern != "" {
			b.WriteString(`,"pattern":`)
			writeJSONString(&b, m.Pattern)
		}
		b.WriteString(`,"data":`)
		jsonOrDiag(&b, m.Data)
		b.WriteByte('}')
		if err := e.line(b.Bytes()); err != nil {
			return err
		}
		if count--; count == 0 {
			return nil
		}
	}
	return nil
}

func runWatch(e *env, a []string) error {
	args, count, _, err := streamFlags(a)
	if err != nil {
		return err
	}
	if len(args) < 1 || len(args) > 2 {
		return usagef("want TABLE [KEY]")
	}
	c, err := e.Client()
	if err != nil {
		return err
	}
	opts := []libcyberdb.WatchOption{libcyberdb.WatchValues()}
	if len(args) == 2 {
		k, err := e.value(args[1])
		if err != nil {
			return err
		}
		opts = append(opts, libcyberdb.WatchKey(k))
	}
	ctx, cancel := streamContext(e)
	defer cancel()
	d := libcyberdb.NewDict[any, wire.Raw](c, args[0])
	for ev, err := range d.Watch(ctx, opts...) {
		switch {
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			return err
		}
		var b bytes.Buffer
		if ev.Resynced {
			b.WriteString(`{"resynced":true}`)
		} else {
			b.WriteString(`{"seq":`)
			b.WriteString(strconv.FormatUint(ev.Seq, 10))
			b.WriteString(`,"op":`)
			writeJSONString(&b, ev.Op)
			if ev.HasKey {
				b.WriteString(`,"key":`)
				k, err := wire.Marshal(ev.Key)
				if err != nil {
					return err
				}
				jsonOrDiag(&b, k)
			}
			if ev.HasValue {
				b.WriteString(`,"value":`)
				jsonOrDiag(&b, ev.Value)
			}
			if len(ev.Args) > 0 && !ev.HasKey {
				b.WriteString(`,"args":[`)
				for i, x := range ev.Args {
					if i > 0 {
						b.WriteByte(',')
					}
					jsonOrDiag(&b, x)
				}
				b.WriteByte(']')
			}
			b.WriteByte('}')
		}
		if err := e.line(b.Bytes()); err != nil {
			return err
		}
		if count--; count == 0 {
			return nil
		}
	}
	return nil
}

// jsonOrDiag writes raw as JSON, or as a JSON string of its diagnostic
// notation when JSON cannot show it.
func jsonOrDiag(b *bytes.Buffer, raw []byte) {
	n := b.Len()
	if !appendJSON(b, raw) {
		b.Truncate(n)
		writeJSONString(b, wire.Diagnose(raw))
	}
}

// line writes one line of a stream.
func (e *env) line(b []byte) error {
	_, err := e.stdout.Write(append(b, '\n'))
	return err
}
