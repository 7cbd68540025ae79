package server

import (
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// offLoopFrame: a request bigger than this runs off the event loop
// whatever its op (see ioloop_linux.go's round bounds for why 64 KiB).
const offLoopFrame = 64 << 10

// Which requests are too slow for an event loop (issue 17 §1). An event
// loop serves all of its connections from one goroutine, so one request
// that runs for 700 ms (an lsort of two million elements) holds up every
// other connection on the loop for as long. Such requests run on the
// server's worker pool instead (ioloop_linux.go: startOffLoop), answered in
// order on their own connection while the loop serves the others.
//
// The decision is made before each request runs and must cost next to
// nothing, so it reads what is known without decoding: the op, the frame's
// size, and for the ops whose cost grows with their table, the table's
// size as published by its last write (store.Size: no table lock). This is
// what Redis's lazyfree does for UNLINK and FLUSHALL ASYNC (an effort
// estimate from the object's size: lazyfreeGetFreeEffort, and a threshold,
// LAZYFREE_THRESHOLD), applied to every op rather than to freeing only. A
// size read a moment before the request runs can be stale (another client
// grows the table in between): the estimate errs, at worst, by what one
// other request changed.
const (
	// slowCost is the estimated run time, in nanoseconds, above which a
	// request leaves the loop. Running it off the loop costs about 10 µs
	// (two epoll_ctl, a worker's wake-up, the loop's wake-up): at 250 µs
	// that is a few percent of the request, and no request run on a loop
	// holds the others up by more than that.
	slowCost = 250_000

	// itemsFrame: a request of an op that carries many items (create
	// with content, dupdate, lextend, a batch...) bigger than this leaves
	// the loop. Decoding and storing tiny items costs about 150 ns a byte:
	// 4 KiB is about 0.6 ms at worst.
	itemsFrame = 4 << 10
)

// perElement is the estimated cost of an op per element (entry) of its
// table, in nanoseconds, for the ops whose cost grows with their table;
// zero for the others. Measured on the benchmark machine, rounded up:
// lsort of 2M small integers about 350 ns an element, a copy-out (ltolist,
// ditems) about 40, a scan or a move of the slice about 5 to 20.
var perElement = [256]uint16{
	wire.OpLSort: 400,

	// Copy every element (or entry) into the reply.
	wire.OpLToList: 60, wire.OpLSlice: 60, wire.OpDKeys: 60, wire.OpDValues: 60,
	wire.OpDItems: 80, wire.OpDToDict: 80,

	// Walk or move the elements.
	wire.OpLRemove: 20, wire.OpLCount: 20, wire.OpLIndex: 20, wire.OpLContains: 20,
	wire.OpLReverse: 10, wire.OpLRotate: 10, wire.OpLInsert: 5, wire.OpLDel: 5, wire.OpLPop: 5,
	wire.OpLDelSlice: 20, wire.OpLSetSlice: 20,

	// The table goes whole. Go's collector frees it concurrently (what
	// Redis's lazyfree does on a thread of its own), but a table a snapshot
	// is still copying is copied first (copy-on-write): off the loop too.
	wire.OpDrop: 5, wire.OpDClear: 5, wire.OpLClear: 5,
}

// carriesItems says which ops take their data in their request: their
// cost grows with the frame (itemsFrame).
var carriesItems = [256]bool{
	wire.OpCreateDict: true, wire.OpCreateList: true, wire.OpBatch: true,
	wire.OpDUpdate: true, wire.OpLExtend: true, wire.OpLExtendLeft: true,
	wire.OpLAppend: true, wire.OpLAppendLeft: true, wire.OpLSetSlice: true,
	wire.OpDRemove: true,
}

// slowRequest says whether the request body (a whole frame's body, not
// yet run) is expected to take long enough (slowCost) that it should run
// off the event loop.
func (s *Server) slowRequest(body []byte) bool {
	if len(body) > offLoopFrame {
		return true
	}
	op, ok := wire.PeekRequestOp(body)
	if !ok {
		return false // malformed: the decoder answers it, at once
	}
	if op == wire.OpSave {
		return s.cfg.Save != nil
	}
	if op == wire.OpConfigSet {
		// Rare, and lowering tracking-max-keys forgets (and
		// invalidates) up to millions of registrations at once.
		return true
	}
	if carriesItems[op] && len(body) > itemsFrame {
		return true
	}
	if op == wire.OpBatch {
		return s.slowBatch(body)
	}
	return s.opCost(op, requestArgs(body)) > slowCost
}

// opCost estimates the cost in nanoseconds of op with the arguments
// args (the CBOR items after the op, undecoded), from its table's
// published size.
func (s *Server) opCost(op wire.Op, args []byte) int64 {
	per := perElement[op]
	if per == 0 && op != wire.OpLRange && op != wire.OpDScan {
		return 0
	}
	name, rest, ok := nextText(args)
	if !ok {
		return 0
	}
	n := s.store.Size(name)
	switch op {
	case wire.OpLRange: // [t, start, count]: count elements at most
		if count, ok := wire.ItemUint(skipInt(rest)); ok {
			n = min(n, int64(min(count, 1<<62)))
		}
		per = 60
	case wire.OpDScan: // [t, cursor, count]: count entries at most (clamped to 10000 by the store)
		if count, ok := wire.ItemUint(skipInt(rest)); ok {
			n = min(n, int64(min(count, 10000)))
		}
		per = 80
	}
	return n * int64(per)
}

// slowBatch estimates a batch, [[op, arg...]...], as the sum of its ops.
// Its body is at most itemsFrame bytes (slowRequest), which bounds how
// deep nextItem recurses.
func (s *Server) slowBatch(body []byte) bool {
	ops := requestArgs(body)
	major, count, h, ok := wire.ReadHead(ops)
	if !ok || major != 4 {
		return false
	}
	ops = ops[h:]
	var cost int64
	for range count {
		sub, rest, ok := nextItem(ops)
		if !ok {
			return false
		}
		ops = rest
		major, n, h, ok := wire.ReadHead(sub)
		if !ok || major != 4 || n == 0 {
			continue
		}
		args := skipInt(sub[h:])
		op, ok := wire.ItemUint(sub[h : len(sub)-len(args)])
		if args == nil || !ok || op > 255 {
			continue
		}
		if cost += s.opCost(wire.Op(op), args); cost > slowCost {
			return true
		}
	}
	return false
}

// requestArgs returns the items after a request's id and op: the
// arguments, undecoded (nil if body is not a request).
func requestArgs(body []byte) []byte {
	major, n, h, ok := wire.ReadHead(body)
	if !ok || major != 4 || n < 2 {
		return nil
	}
	return skipInt(skipInt(body[h:])) // the id and the op
}

// skipInt returns what follows the integer at the start of b; nil if b
// does not start with one. Only integers are skipped here: walking an
// item of any kind recurses as deep as it nests, and this runs on bytes
// no decoder has checked yet.
func skipInt(b []byte) []byte {
	major, _, h, ok := wire.ReadHead(b)
	if !ok || major > 1 {
		return nil
	}
	return b[h:]
}

// nextItem splits the CBOR item at the start of b from the rest.
func nextItem(b []byte) (item, rest []byte, ok bool) {
	n := wire.ItemLen(b)
	if n <= 0 || n > len(b) {
		return nil, nil, false
	}
	return b[:n], b[n:], true
}

// nextText reads a definite text string at the start of b (a table name).
func nextText(b []byte) (text, rest []byte, ok bool) {
	major, n, h, ok := wire.ReadHead(b)
	if !ok || major != 3 || uint64(len(b)-h) < n {
		return nil, nil, false
	}
	return b[h : h+int(n)], b[h+int(n):], true
}
