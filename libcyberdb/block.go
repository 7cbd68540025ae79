package libcyberdb

import (
	"context"
	"fmt"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Blocking pops and moves (PROTOCOL.md 6.6): Redis's BLPOP, BRPOP and
// BLMOVE.
//
// A blocked call does not hold up the others: the Client's connections
// speak the push extension (PROTOCOL.md 3.1), so the daemon parks the
// call and goes on answering the calls sent after it on the same
// connection; its reply comes whenever a value arrives. A thousand
// goroutines blocked in PopWait share the Client's few connections and
// cost the daemon a small record each.
//
// The time-out. timeout > 0 waits at most that long (rounded up to the
// millisecond); timeout == 0 waits for ever, or until ctx ends, like
// Redis's BLPOP with 0; timeout < 0 does not wait: a value is taken if
// one is there. ctx's deadline, when it comes first, is sent to the daemon
// as the time-out, so a ctx deadline ends the wait by itself.
//
// Results. A value: (v, true, nil). The time-out ended with none: (zero,
// false, nil). ctx ended first: an error matching ctx.Err(), and nothing
// was taken (the daemon was told, by a cancel request, and confirmed it).
// If a value was handed to the call just as ctx ended, the value is
// returned with a nil error rather than dropped: it has left its list.
// A value that does not fit V: ok is true and err matches ErrDecode (the
// value has left its list too; the error shows it).
//
// Values are never lost between the daemon and a client that dies or
// disconnects while waiting: the daemon gives a value to a waiter only
// while its connection is alive, and puts it back when the reply cannot
// be written. But a value whose reply was written belongs to the caller:
// if the caller's process then dies, it is gone. Where a job must survive
// its worker, use MoveWait into a per-worker list (Queue does).
//
// Retries. A blocking call that was never sent, or that the daemon says
// it did not execute (it was shutting down: parked calls are cancelled),
// is sent again, with what is left of its time-out. One whose connection
// was lost while it waited is not: the daemon may have taken a value for
// it just before it crashed or the connection broke, and a second pop
// would take a second value while the first is lost in flight. It fails
// with ErrConnClosed; call again. (With MoveWait nothing is lost even
// then: the value is in dst, where Queue.Recover finds it.)

// PopWait removes and returns a value from end from of the list, waiting
// up to timeout for one when the list is empty (see "The time-out"
// above): d.popleft() with Left, d.pop() with Right, Redis's BLPOP and
// BRPOP. The list must exist (ErrNoTable); once waiting, the call waits
// on the name, so a list dropped and created again serves it. Waiters
// are served first come, first served.
func (l *List[V]) PopWait(ctx context.Context, from End, timeout time.Duration) (v V, ok bool, err error) {
	cl := newCall(wire.OpLBPop)
	cl.args = wire.AppendArrayHeader(cl.args, 1)
	cl.args = append(cl.args, l.enc...)
	cl.nargs++
	cl.text(from.String())
	bound := cl.blockTimeout(ctx, timeout)
	_, v, ok, err = finishBlocking[V](ctx, l.x, l.name, cl, bound)
	return v, ok, err
}

// MoveWait is Move that waits up to timeout for a value in l (Redis's
// BLMOVE): it pops from end from of l and pushes onto end to of dst, as
// one atomic operation, and returns the value. See PopWait for the
// time-out and results. dst may be l itself.
func (l *List[V]) MoveWait(ctx context.Context, dst *List[V], from, to End, timeout time.Duration) (v V, ok bool, err error) {
	cl := l.call(wire.OpLBMove).raw(dst.enc).text(from.String()).text(to.String())
	bound := cl.blockTimeout(ctx, timeout)
	_, v, ok, err = finishBlocking[V](ctx, l.x, l.name, cl, bound)
	return v, ok, err
}

// PopWait removes and returns a value from end from of the first of the
// lists named that has one, waiting up to timeout when none has (Redis's
// BLPOP and BRPOP of several keys): table is the list it came from. The
// lists are tried in the order given; each must exist. See List.PopWait
// for the time-out and results. For typed values use PopWaitFirst.
func (t tableOps) PopWait(ctx context.Context, from End, timeout time.Duration, tables ...string) (table string, value wire.Raw, ok bool, err error) {
	return popWaitFirst[wire.Raw](ctx, t.x, from, timeout, tables...)
}

// PopWaitFirst is Client.PopWait that decodes the value as a V.
func PopWaitFirst[V any](ctx context.Context, x Executor, from End, timeout time.Duration, tables ...string) (table string, v V, ok bool, err error) {
	return popWaitFirst[V](ctx, asExecutor(x), from, timeout, tables...)
}

func popWaitFirst[V any](ctx context.Context, x executor, from End, timeout time.Duration, tables ...string) (table string, v V, ok bool, err error) {
	if len(tables) == 0 {
		return "", v, false, fmt.Errorf("cyberdb: PopWait: %w: no list named", ErrBadRequest)
	}
	cl := newCall(wire.OpLBPop)
	cl.args = wire.AppendArrayHeader(cl.args, len(tables))
	for _, name := range tables {
		cl.args = wire.AppendText(cl.args, name)
	}
	cl.nargs++
	cl.text(from.String())
	bound := cl.blockTimeout(ctx, timeout)
	return finishBlocking[V](ctx, x, "", cl, bound)
}

// blockTimeout appends the time-out argument (the last) and records what
// a resend needs to recompute it. It reports whether the wait is bounded
// by ctx's deadline rather than by timeout.
func (cl *call) blockTimeout(ctx context.Context, timeout time.Duration) (byCtx bool) {
	cl.timeoutAt = len(cl.args)
	cl.nargs++
	if timeout < 0 {
		cl.args = wire.AppendUint(cl.args, 0)
		return false
	}
	var until time.Time
	if timeout > 0 {
		until = time.Now().Add(timeout)
	}
	if dl, ok := ctx.Deadline(); ok && (until.IsZero() || dl.Before(until)) {
		until, byCtx = dl, true
	}
	cl.waitUntil = until
	cl.appendTimeout()
	return byCtx
}

// appendTimeout (re)writes the time-out argument from waitUntil: null
// (for ever) when it is zero, else the milliseconds left, rounded up.
func (cl *call) appendTimeout() {
	cl.args = cl.args[:cl.timeoutAt]
	if cl.waitUntil.IsZero() {
		cl.args = wire.AppendNull(cl.args)
		return
	}
	left := time.Until(cl.waitUntil)
	ms := max((left+time.Millisecond-1)/time.Millisecond, 0)
	cl.args = wire.AppendUint(cl.args, uint64(ms))
}

// finishBlocking runs a blocking call and decodes its [table, value]
// result (null: the time-out ended, or the call was cancelled).
func finishBlocking[V any](ctx context.Context, x executor, table string, cl *call, byCtx bool) (src string, v V, ok bool, err error) {
	defer cl.release()
	if err := x.exec(ctx, cl); err != nil {
		return "", v, false, err
	}
	if len(cl.result) == 1 && cl.result[0] == 0xf6 { // null: nothing taken
		if err := ctx.Err(); err != nil {
			return "", v, false, fmt.Errorf("cyberdb: %s: %w", cl.op, err)
		}
		if byCtx {
			// The daemon's clock ended the wait a moment before ctx's.
			return "", v, false, fmt.Errorf("cyberdb: %s: %w", cl.op, context.DeadlineExceeded)
		}
		return "", v, false, nil
	}
	src, v, err = decodePair[V](cl, table, cl.result)
	return src, v, err == nil || src != "", err
}

// decodePair decodes a blocking op's [table, value] result. A value that
// does not fit V is reported with the table it was taken from (src is
// set then: the value has left its list).
func decodePair[V any](cl *call, table string, result []byte) (src string, v V, err error) {
	pair, derr := wire.SplitArray(result)
	if derr != nil || len(pair) != 2 {
		return "", v, &ProtocolError{Msg: fmt.Sprintf("%s result is not [table, value] nor null: %s", cl.op, wire.Diagnose(result))}
	}
	t, isText := wire.ItemText(pair[0])
	if !isText {
		return "", v, &ProtocolError{Msg: fmt.Sprintf("%s result names no table: %s", cl.op, wire.Diagnose(result))}
	}
	src = t
	if table == "" {
		table = src
	}
	if raw, isRaw := any(&v).(*wire.Raw); isRaw {
		*raw = append(wire.Raw(nil), pair[1]...)
		return src, v, nil
	}
	if fv, fast := decodeFast[V](pair[1]); fast {
		return src, fv, nil
	}
	if uerr := unmarshal(pair[1], &v); uerr != nil {
		err = decodeErr(cl.op, table, cl.args, cl.nargs, pair[1], &v, uerr)
		return src, v, fmt.Errorf("%w (the value was taken from %q: %s)", err, src, wire.Diagnose(pair[1]))
	}
	return src, v, nil
}
