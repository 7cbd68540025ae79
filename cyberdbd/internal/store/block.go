package store

import (
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Blocking pops and moves (lbpop, lbmove: PROTOCOL.md 6.6).
//
// A blocking request that finds a value is answered at once, as the plain
// pop or move it then is (and journaled as such). Otherwise it becomes a
// Waiter: a small struct, queued on each list it names (by name: the lists
// need not stay, and may be dropped and created again meanwhile), with a
// timer for its time-out. No goroutine waits for it.
//
// Every write that may add elements to a list (wake) hands them out after
// releasing its table locks: serve takes the oldest live waiter of the
// list, locks the list (and, for a move, the destination, in name order),
// claims the waiter (waiting -> claimed, an atomic compare-and-swap that a
// cancel or the time-out races with, so exactly one of them wins), pops,
// journals the plain pop or move, unlocks and calls the waiter's deliver
// function. A waiter whose connection is gone was cancelled before it
// could be claimed, so the value stays in the list for the next one; one
// that goes between the claim and the reply gets Delivery.GiveBack, which
// puts the popped value back where it was.
//
// Fairness: the waiters of a list are served in arrival order, and a new
// blocking request does not take a value from a list that has waiters:
// it queues behind them. (A plain lpop is not a waiter and takes what it
// finds, as in Redis.)
//
// Locks: Store.wmu guards the queues and is a leaf: it is never held while
// a table lock is taken or a deliver function runs.

// Waiter states.
const (
	waiting   uint32 = iota
	claimed          // a value (or the time-out's null) is on its way to deliver
	cancelled        // Cancel won: deliver is never called
)

// Delivery is the answer to a parked blocking request.
type Delivery struct {
	// Result is the encoded result item: [t, value], or null when the
	// request timed out. Err is set instead when the pop could not be
	// made durable.
	Result []byte
	Err    *wire.Error
	// GiveBack, when not nil, puts the popped value back where it was
	// taken from: the server calls it when the reply cannot be sent
	// because the connection is gone. It must be called at most once,
	// and never under a lock of the store.
	GiveBack func()
}

// Waiter is a blocking request parked until one of its lists has a value.
type Waiter struct {
	s      *Store
	state  atomic.Uint32
	names  []string // the lists, in the order given; lbmove: the source
	left   bool     // pop from the left
	move   bool     // lbmove: push onto dst
	dst    string
	toLeft bool
	args   wire.Args // lbmove: [src, dst, from, to] for the journal
	to     Recipient // told the outcome, with id
	id     uint64
	timer  *time.Timer // guarded by Store.wmu
}

// Cancel stops w waiting and reports whether it did: false means w was
// already claimed, and its deliver function is called (or was).
func (w *Waiter) Cancel() bool {
	if !w.state.CompareAndSwap(waiting, cancelled) {
		return false
	}
	w.leave()
	return true
}

// leave stops w's timer and takes w out of the count; its queue entries
// are dropped lazily. Called once, by whoever moved w out of waiting.
func (w *Waiter) leave() {
	s := w.s
	s.wmu.Lock()
	if w.timer != nil {
		w.timer.Stop()
	}
	s.nwait.Add(-1)
	for _, name := range w.names {
		if q := s.waits[name]; q != nil {
			q.dead++
			q.compact()
			if q.live() == 0 && len(q.ws) == q.head {
				delete(s.waits, name)
			}
		}
	}
	s.wmu.Unlock()
}

// expire answers w with null when its time-out ends first.
func (w *Waiter) expire() {
	if w.state.CompareAndSwap(waiting, claimed) {
		w.leave()
		w.to.Deliver(w.id, Delivery{Result: []byte{0xf6}})
	}
}

// waitQueue is one list's waiters in arrival order: ws[head:], of which
// dead are no longer waiting.
type waitQueue struct {
	ws   []*Waiter
	head int
	dead int
}

func (q *waitQueue) live() int { return len(q.ws) - q.head - q.dead }

// compact drops the entries of waiters gone when they are more than half.
func (q *waitQueue) compact() {
	if n := len(q.ws) - q.head; q.dead < 32 || q.dead*2 < n {
		return
	}
	keep := q.ws[:0]
	for _, w := range q.ws[q.head:] {
		if w.state.Load() == waiting {
			keep = append(keep, w)
		}
	}
	clear(q.ws[len(keep):])
	q.ws, q.head, q.dead = keep, 0, 0
}

// first returns the oldest waiter still waiting on name, or nil. Must
// hold wmu.
func (s *Store) firstLocked(name string) *Waiter {
	q := s.waits[name]
	if q == nil {
		return nil
	}
	for q.head < len(q.ws) {
		w := q.ws[q.head]
		if w.state.Load() == waiting {
			return w
		}
		q.ws[q.head] = nil
		q.head++
		q.dead = max(q.dead-1, 0)
	}
	q.ws, q.head, q.dead = q.ws[:0], 0, 0
	return nil
}

func (s *Store) hasWaiters(name string) bool {
	if s.nwait.Load() == 0 {
		return false
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.firstLocked(name) != nil
}

// Waiting returns the number of parked blocking requests.
func (s *Store) Waiting() int { return int(s.nwait.Load()) }

// wake hands the elements of the list name, if it has any, to its
// waiters. Writers call it after releasing their table locks; it costs
// one atomic load when nobody waits.
func (s *Store) wake(name string) {
	if s.nwait.Load() == 0 {
		return
	}
	s.serve(name)
}

// serve gives elements of list name to its waiters, oldest first, until
// the list is empty or nobody waits. A waiter that cannot take a value
// now (an lbmove whose destination was dropped while it waited) is
// passed over, so that it does not hold up the waiters behind it: it
// keeps its place for the next value.
func (s *Store) serve(name string) {
	var skipped []*Waiter
	for {
		s.wmu.Lock()
		w := s.nextLocked(name, skipped)
		s.wmu.Unlock()
		if w == nil {
			return
		}
		served, skip, d := s.handTo(w, name)
		if skip {
			skipped = append(skipped, w)
			continue
		}
		if !served {
			return
		}
		if d != nil { // w is ours: no lock is held now
			w.leave()
			w.to.Deliver(w.id, *d)
			if w.move && w.dst != name {
				s.wake(w.dst)
			}
		}
	}
}

// nextLocked is firstLocked passing over the waiters in skip. Must hold
// wmu.
func (s *Store) nextLocked(name string, skip []*Waiter) *Waiter {
	w := s.firstLocked(name)
	if w == nil || len(skip) == 0 {
		return w
	}
	q := s.waits[name]
	for _, w := range q.ws[q.head:] {
		if w.state.Load() == waiting && !slices.Contains(skip, w) {
			return w
		}
	}
	return nil
}

// handTo pops from list name for w. served is false when the list had
// nothing to give (missing, not a list, empty, or the disk refuses
// writes); skip is true instead when it has, but not for w: w moves into
// a destination that is missing or not a list. d is nil when w had gone
// meanwhile; otherwise the caller, once handTo has released the locks,
// delivers it.
func (s *Store) handTo(w *Waiter, name string) (served, skip bool, d *Delivery) {
	s.gate.RLock()
	defer s.gate.RUnlock()
	names := []string{name}
	if w.move && w.dst != name {
		names = append(names, w.dst)
	}
	ts := s.acquireAll(names)
	defer func() {
		for _, t := range ts {
			if t != nil {
				s.release(t, true)
			}
		}
	}()
	src, dst := ts[0], ts[len(ts)-1]
	now := s.now()
	if src == nil || src.kind != kindList || len(src.l.items) == 0 || src.expiredAt(now) { // past its deadline a table is gone, to waiters too
		return false, false, nil
	}
	if dst == nil || dst.kind != kindList || dst.expiredAt(now) {
		return false, true, nil
	}
	j := s.journal.Load()
	if j != nil && j.precheck(wire.OpLPop) != nil {
		return false, false, nil // the disk refuses writes: the waiter times out instead
	}
	if !w.state.CompareAndSwap(waiting, claimed) {
		return true, false, nil
	}
	src.capture()
	if dst != src {
		dst.capture()
	}
	d = &Delivery{}
	var v string
	var op wire.Op
	var args wire.Args
	if w.move {
		v = moveValue(src.l, dst.l, w.left, w.toLeft)
		op, args = wire.OpLMove, w.args
	} else {
		op = wire.OpLPop
		if w.left {
			op = wire.OpLPopLeft
			v = src.l.popFront()
		} else {
			v = src.l.popBack()
		}
		args = wire.Args{Op: op, Items: []wire.Raw{wire.AppendText(nil, name)}}
	}
	src.seq++
	if dst != src {
		dst.seq++
	}
	var held []*table
	if s.hookCount() > 0 {
		held = []*table{src, dst}
	}
	if j != nil || held != nil {
		if err := s.record(j, held, op, args); err != nil {
			if w.move {
				moveValue(dst.l, src.l, w.toLeft, w.left)
			} else if w.left {
				src.l.pushFront(v)
			} else {
				src.l.pushBack(v)
			}
			d.Err = wire.AsError(err)
			return true, false, d
		}
	}
	d.Result = popResult(name, v)
	if !w.move {
		// name may alias the request of the writer that woke w (wake),
		// whose buffer is reused once its request is done; the give-back
		// runs later, from another goroutine.
		left, name := w.left, strings.Clone(name)
		d.GiveBack = func() { s.giveBack(name, v, left) }
	}
	return true, false, d
}

// popResult encodes [name, v].
func popResult(name, v string) []byte {
	out := make([]byte, 0, 12+len(name)+len(v))
	out = wire.AppendText(append(out, 0x82), name)
	return append(out, v...)
}

// acquireAll locks the tables of names (one or two, distinct) for
// writing in name order; a missing one is nil. ts[i] is names[i]'s.
func (s *Store) acquireAll(names []string) []*table {
	ts := make([]*table, len(names))
	order := []int{0}
	if len(names) == 2 {
		order = []int{0, 1}
		if names[1] < names[0] {
			order = []int{1, 0}
		}
	}
	for _, i := range order {
		ts[i] = s.acquire(names[i], true)
	}
	return ts
}

// giveBack puts v back at the end of list name it was popped from, as a
// journaled append, when its waiter's connection went away before the
// reply was sent. If the list is gone by then, so is the value.
func (s *Store) giveBack(name, v string, left bool) {
	op := wire.OpLAppend
	if left {
		op = wire.OpLAppendLeft
	}
	args := wire.Args{Op: op, Items: []wire.Raw{wire.AppendText(nil, name), wire.Raw(v)}}
	if s.giveBackLocked(op, name, args) {
		s.wake(name) // after the unlocks, as exec does
	}
}

// giveBackLocked runs the give-back's append under the gate and the
// list's lock. It is not refused over --max-memory: the value was in the
// list a moment ago, and pops go on over the limit (PROTOCOL.md 6.5), so
// refusing it would lose the value.
func (s *Store) giveBackLocked(op wire.Op, name string, args wire.Args) bool {
	s.gate.RLock()
	defer s.gate.RUnlock()
	t := s.acquire(name, true)
	if t == nil {
		return false
	}
	t.capture()
	defer s.release(t, true)
	now := s.now()
	_, err := s.execOn(t, nil, op, handler(op), args, nil, now, now, false)
	return err == nil
}

// isHugeUint says whether argument i is an unsigned integer beyond the
// int64 range (2^63 .. 2^64-1, or a bignum): a time-out that waits for ever.
func isHugeUint(a wire.Args, i int) bool {
	if !a.Has(i) || (a.Items[i][0]>>5 != 0 && a.Items[i][0] != 0xc2) {
		return false
	}
	n, ok := wire.DecodeNumber(a.Items[i])
	return ok && !n.IsFloat && n.Int.Sign() > 0 && !n.Int.IsInt64()
}

// MaxBlockMillis is the longest time-out a blocking request may give, in
// milliseconds (about 35 years); a longer one, like null, waits forever.
const MaxBlockMillis = 1 << 40

// Block runs a blocking op, lbpop or lbmove. If it can be answered at
// once (a list has a value and no waiter is ahead; or its time-out is 0)
// it is, like Exec: the result is appended to out and w is nil. Otherwise
// it is parked: w is not nil, nothing is appended, and deliver is called
// once, from whatever goroutine served or timed it out and under no lock
// of the store, unless w.Cancel returns true first.
//
// The order of checks is a request's (PROTOCOL.md 3): the table names,
// the tables' existence and kind, in the order given, then the other
// arguments.
func (s *Store) Block(op wire.Op, args wire.Args, out []byte, deliver func(Delivery)) (res []byte, w *Waiter, err error) {
	return s.BlockFor(op, args, out, deliverFunc(deliver), 0)
}

// Recipient is told the outcome of a parked blocking request: id is the
// one given to BlockFor.
type Recipient interface {
	Deliver(id uint64, d Delivery)
}

// deliverFunc is Block's function as a Recipient.
type deliverFunc func(Delivery)

func (f deliverFunc) Deliver(_ uint64, d Delivery) { f(d) }

// BlockFor is Block telling to, with id, rather than calling a function:
// a server passes its connection and the request's id, where a function
// closing over them would be allocated for every request, parked or not.
func (s *Store) BlockFor(op wire.Op, args wire.Args, out []byte, to Recipient, id uint64) (res []byte, w *Waiter, err error) {
	args.Op = op
	// The request's fields, in locals: the Waiter is made only to park
	// (a queue's consumers mostly find a value at once). The names alias
	// the request until then.
	var (
		nbuf         [4]string
		rbuf         [4]wire.Raw
		names        []string
		raws         []wire.Raw // the names as sent, for the pops below
		left, toLeft bool
		move         bool
		dst          string
		margs        wire.Args
		timeoutArg   int
	)
	switch op {
	case wire.OpLBPop:
		if args.Len() == 0 {
			return out, nil, args.Want(2, 3)
		}
		if names, raws, err = namesArg(args, 0, nbuf[:0], rbuf[:0]); err != nil {
			return out, nil, err
		}
		if err := s.checkLists(names); err != nil {
			return out, nil, err
		}
		if err := args.Want(2, 3); err != nil {
			return out, nil, err
		}
		if left, err = endArg(args, 1); err != nil {
			return out, nil, err
		}
		timeoutArg = 2
	case wire.OpLBMove:
		src, err := tableName(args)
		if err != nil {
			return out, nil, err
		}
		dst, err = nameArg(args, 1)
		if err != nil {
			return out, nil, err
		}
		if err := s.checkLists([]string{src, dst}); err != nil {
			return out, nil, err
		}
		if err := args.Want(4, 5); err != nil {
			return out, nil, err
		}
		if left, err = endArg(args, 2); err != nil {
			return out, nil, err
		}
		if toLeft, err = endArg(args, 3); err != nil {
			return out, nil, err
		}
		names, move = append(nbuf[:0], src), true
		timeoutArg = 4
	default:
		return out, nil, errBadRequest("%s is not a blocking op", op)
	}
	ms, forever := int64(0), true
	if isHugeUint(args, timeoutArg) {
		// Beyond int64, and so beyond MaxBlockMillis: for ever, as
		// PROTOCOL.md 6.6 says of every time-out from 2^40 ms on.
	} else if raw, has, err := args.OptInt(timeoutArg); err != nil {
		return out, nil, err
	} else if has {
		if raw < 0 {
			return out, nil, errBadRequest("%s: the time-out must be a number of milliseconds, 0 or more, or null (forever); got %d", op, raw)
		}
		ms, forever = raw, raw >= MaxBlockMillis
	}
	if move {
		margs = wire.Args{Op: wire.OpLMove, Items: slices.Clone(args.Items[:4])}
		for i, it := range margs.Items {
			margs.Items[i] = slices.Clone(it) // args alias the request
		}
	}

	// At once, if a list has a value and nobody waits on it: the result,
	// [name, value], is appended to out as it is made.
	for k, name := range names {
		if s.hasWaiters(name) {
			continue
		}
		mark := len(out)
		out = wire.AppendText(append(out, 0x82), name)
		if move {
			out, err = s.Exec(wire.OpLMove, margs, out)
		} else {
			pop := wire.OpLPop
			if left {
				pop = wire.OpLPopLeft
			}
			out, err = s.Exec(pop, wire.Args{Items: []wire.Raw{raws[k]}}, out)
		}
		if err == nil {
			return out, nil, nil
		}
		out = out[:mark]
		if c := wire.AsError(err).Code; c != wire.CodeIndexOutOfRange && c != wire.CodeNoSuchTable && c != wire.CodeWrongKind {
			return out, nil, err // io_error: not applied
		}
	}
	if !forever && ms == 0 {
		return wire.AppendNull(out), nil, nil
	}

	w = &Waiter{s: s, to: to, id: id, names: make([]string, len(names)),
		left: left, move: move, dst: strings.Clone(dst), toLeft: toLeft, args: margs}
	for i, n := range names {
		w.names[i] = strings.Clone(n) // they alias the request
	}
	// Park.
	s.wmu.Lock()
	for _, name := range w.names {
		q := s.waits[name]
		if q == nil {
			q = &waitQueue{}
			s.waits[name] = q
		}
		q.ws = append(q.ws, w)
	}
	s.nwait.Add(1)
	if !forever { // under wmu, as leave reads it
		w.timer = time.AfterFunc(time.Duration(min(ms, math.MaxInt64/int64(time.Millisecond)))*time.Millisecond, w.expire)
	}
	s.wmu.Unlock()
	// A value that came between the attempt above and the queueing saw
	// nobody waiting: look again.
	for _, name := range w.names {
		if s.length(name) > 0 {
			s.serve(name)
		}
	}
	return out, w, nil
}

// length returns the length of list name, 0 if it is not a list.
func (s *Store) length(name string) int {
	t := s.acquire(name, false)
	if t == nil {
		return 0
	}
	defer s.release(t, false)
	if t.kind != kindList || t.expiredAt(s.now()) {
		return 0
	}
	return len(t.l.items)
}

// checkLists checks, in order, that each name is a list table.
func (s *Store) checkLists(names []string) error {
	for _, name := range names {
		t := s.acquire(name, false)
		if t == nil {
			return errNoSuchTable(name)
		}
		k := t.kind
		if t.expiredAt(s.now()) {
			k = kindNone
		}
		s.release(t, false)
		switch k {
		case kindList:
		case kindNone:
			return errNoSuchTable(name)
		default:
			return wire.Errorf(wire.CodeWrongKind, "table %q is a %s; a blocking pop needs a list", name, k)
		}
	}
	return nil
}

// nameArg reads argument i as a table name.
func nameArg(a wire.Args, i int) (string, error) {
	name, err := a.Text(i)
	if err != nil {
		return "", errBadRequest("%s: argument %d must be a table name, a text string", a.Op, i+1)
	}
	if name == "" || len(name) > MaxNameLen {
		return "", errBadRequest("%s: a table name is 1 to %d bytes of text, got %d bytes", a.Op, MaxNameLen, len(name))
	}
	return name, nil
}

// maxBlockLists bounds the lists one blocking pop may name.
const maxBlockLists = 1024

// namesArg reads argument i, an array of 1 to maxBlockLists table names.
func namesArg(a wire.Args, i int, names []string, raws []wire.Raw) ([]string, []wire.Raw, error) {
	if i >= a.Len() || len(a.Items[i]) == 0 || a.Items[i][0]>>5 != 4 {
		return nil, nil, errBadRequest("%s: argument %d must be an array of list table names", a.Op, i+1)
	}
	raws, err := wire.SplitArrayInto(a.Items[i], raws)
	if err != nil {
		return nil, nil, prefixed(err, "%s: argument %d: ", a.Op, i+1)
	}
	if len(raws) == 0 || len(raws) > maxBlockLists {
		return nil, nil, errBadRequest("%s: argument %d must name 1 to %d lists, got %d", a.Op, i+1, maxBlockLists, len(raws))
	}
	for k, it := range raws {
		// Canonical text aliases the request, without the library;
		// other forms of text (indefinite length) are decoded.
		name, ok := wire.ItemText(it)
		if !ok && it[0]>>5 == 3 && wire.Unmarshal(it, &name) == nil {
			ok = true
		}
		if !ok || name == "" || len(name) > MaxNameLen {
			return nil, nil, errBadRequest("%s: argument %d, element %d must be a table name: 1 to %d bytes of text", a.Op, i+1, k, MaxNameLen)
		}
		names = append(names, name)
	}
	return names, raws, nil
}

// move runs lmove outside a batch: both tables locked in name order.
func (s *Store) move(args wire.Args, out []byte, now, base int64) ([]byte, error) {
	args.Op = wire.OpLMove
	src, err := tableName(args)
	if err != nil {
		return out, err
	}
	dst, err := nameArg(args, 1)
	if err != nil {
		return out, err
	}
	res, err := s.moveLocked(src, dst, args, out, now, base)
	if err == nil {
		s.wake(dst)
	}
	return res, err
}

func (s *Store) moveLocked(src, dst string, args wire.Args, out []byte, now, base int64) ([]byte, error) {
	s.gate.RLock()
	defer s.gate.RUnlock()
	names := []string{src}
	if dst != src {
		names = append(names, dst)
	}
	ts := s.acquireAll(names)
	defer func() {
		for _, t := range ts {
			if t != nil {
				s.release(t, true)
			}
		}
	}()
	if ts[0] == nil {
		return out, errNoSuchTable(src)
	}
	t2 := ts[len(ts)-1]
	if t2 == nil {
		return out, errNoSuchTable(dst)
	}
	for _, t := range ts {
		t.capture()
	}
	return s.execOn(ts[0], t2, wire.OpLMove, opLMove, args, out, now, base, true)
}
