package libcyberdb

import (
	"sync"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// fate is how a call left a connection.
type fate uint8

const (
	fateNone        fate = iota
	fateReply            // a reply arrived: reply holds its frame body
	fateNotSent          // never written: always safe to resend
	fateNotExecuted      // written, but the server said it did not execute it (shutting_down)
	fateMaybe            // written, connection lost without a reply: may have been applied
	fateFailed           // a final error (err) that resending would not cure
	fateCanceled         // the caller's context ended first
)

// Call states, guarded by the owning conn's mu.
const (
	stateNew       = iota
	stateQueued    // in conn.queue, waiting for the writer
	stateInFlight  // written (or being written), in conn.fifo
	stateDone      // taken by the reader or the failure path; done will be signalled
	stateAbandoned // its caller gave up; never signalled, never recycled
)

// call is one request on its way: the encoded arguments, and once done
// the reply. Calls are recycled through callPool, except abandoned ones,
// which a connection goroutine may still be reading.
type call struct {
	op     wire.Op
	nargs  int
	args   []byte // the encoded arguments, concatenated
	encErr error

	daemonText bool // Do: keep the daemon's error messages as sent (hints.go)

	// A blocking call (lbpop, lbmove) waits in conn.parked once written,
	// and its caller's context ending cancels it (conn.cancel). Its
	// time-out argument is the last, from args[timeoutAt]; when
	// waitUntil is set, a resend recomputes it (block.go).
	blocking  bool
	timeoutAt int
	waitUntil time.Time

	id     uint64 // assigned by the conn at enqueue
	state  int
	unsent bool          // its write failed before any byte left (errNothingWritten)
	done   chan struct{} // capacity 1: one signal per use

	fate  fate
	err   error  // with fateFailed / fateMaybe: the cause
	reply []byte // with fateReply: the whole reply frame body (a copy)

	// Set by exec on success.
	result wire.Raw // the result item, aliasing reply

	// WithTimeout's bound (connect.go): the tick of the pool's clock at
	// which the call expires, 0 for none; and the bound, for the message.
	expires int64
	timeout time.Duration

	src connSource // while the Call hooks run (hooks.go)
}

var callPool = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

func newCall(op wire.Op) *call {
	cl := callPool.Get().(*call)
	cl.op = op
	cl.blocking = op.IsBlocking()
	return cl
}

// release returns cl to the pool. Abandoned calls must not be released.
func (cl *call) release() {
	if cl.state == stateAbandoned {
		return
	}
	if cap(cl.args) > 64<<10 {
		cl.args = nil
	}
	if cap(cl.reply) > 64<<10 {
		cl.reply = nil
	}
	cl.args = cl.args[:0]
	cl.reply = cl.reply[:0]
	cl.nargs, cl.encErr, cl.id, cl.state, cl.fate, cl.err, cl.result = 0, nil, 0, stateNew, fateNone, nil, nil
	cl.unsent = false
	cl.daemonText = false
	cl.blocking, cl.timeoutAt, cl.waitUntil = false, 0, time.Time{}
	cl.expires = 0
	callPool.Put(cl)
}

// reset clears the per-attempt state before a resend.
func (cl *call) reset() {
	cl.id, cl.state, cl.fate, cl.err, cl.result = 0, stateNew, fateNone, nil, nil
	cl.unsent = false
	cl.reply = cl.reply[:0]
}

func (cl *call) text(s string) *call {
	cl.args = wire.AppendText(cl.args, s)
	cl.nargs++
	return cl
}

func (cl *call) raw(r []byte) *call {
	cl.args = append(cl.args, r...)
	cl.nargs++
	return cl
}

func (cl *call) int(i int) *call {
	cl.args = wire.AppendInt(cl.args, int64(i))
	cl.nargs++
	return cl
}

func (cl *call) uint(u uint64) *call {
	cl.args = wire.AppendUint(cl.args, u)
	cl.nargs++
	return cl
}

func (cl *call) bool(b bool) *call {
	cl.args = wire.AppendBool(cl.args, b)
	cl.nargs++
	return cl
}

func (cl *call) null() *call {
	cl.args = wire.AppendNull(cl.args)
	cl.nargs++
	return cl
}

// value appends any Go value as one argument; an encoding error is kept
// and returned by exec before anything is sent.
func (cl *call) value(v any) *call {
	var err error
	cl.args, err = appendValue(cl.args, v)
	if err != nil && cl.encErr == nil {
		cl.encErr = err
	}
	cl.nargs++
	return cl
}

// appendValue encodes v, with fast paths for the common scalar types.
func appendValue(dst []byte, v any) ([]byte, error) {
	if out, ok := appendScalar(dst, v); ok { // fastpath.go
		return out, nil
	}
	switch x := v.(type) {
	case nil:
		return wire.AppendNull(dst), nil
	case []byte:
		if x == nil {
			// A nil []byte is still a (empty) byte string, not null.
			return append(dst, 0x40), nil
		}
	case wire.Raw:
		if len(x) == 0 {
			return wire.AppendNull(dst), nil
		}
		return append(dst, x...), nil
	}
	start := len(dst)
	out, err := wire.AppendMarshal(dst, v)
	if err != nil {
		return dst[:start], &EncodeError{Value: v, Err: err}
	}
	return out, nil
}

// frameSize is the size of the request body [id, op, args...] on the wire.
func (cl *call) bodySize(id uint64) int {
	return wire.HeadLen(uint64(2+cl.nargs)) + wire.HeadLen(id) + wire.HeadLen(uint64(cl.op)) + len(cl.args)
}

// appendFrame appends the request frame of cl to dst.
func (cl *call) appendFrame(dst []byte) []byte {
	dst, start := wire.BeginFrame(dst)
	dst = wire.AppendArrayHeader(dst, 2+cl.nargs)
	dst = wire.AppendUint(dst, cl.id)
	dst = wire.AppendUint(dst, uint64(cl.op))
	dst = append(dst, cl.args...)
	return wire.EndFrame(dst, start)
}

// decodeReply turns a reply body into its result or its *wire.Error.
func decodeReply(body []byte) (wire.Raw, error) {
	if _, code, rest, ok := wire.ReplyHead(body); ok && code == 0 {
		return wire.Raw(rest), nil
	}
	r, err := wire.DecodeReply(body)
	if err != nil {
		return nil, &ProtocolError{Msg: "malformed reply " + wire.Diagnose(body) + ": " + err.Error()}
	}
	if r.Err != nil {
		return nil, r.Err
	}
	return r.Result, nil
}
