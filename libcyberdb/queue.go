package libcyberdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrLeaseLost is returned by Worker.Ack when the job is no longer in the
// worker's in-progress list: the worker's lease ran out and Queue.Recover
// gave its jobs back to the queue (another worker may be doing this one).
var ErrLeaseLost = errors.New("libcyberdb: the worker's lease ran out and its jobs were requeued")

// Queue is a reliable work queue on the daemon (the README's
// reliable-queue pattern): producers Put jobs on a list; each worker
// takes a job by moving it, atomically (MoveWait: Redis's BLMOVE), into
// an in-progress list of its own, and acknowledges it when done (Ack
// removes it there). Workers hold a lease, a key with a TTL that they
// renew; Recover moves the jobs of workers whose lease ran out back to
// the front of the queue.
//
// Guarantees, as far as the daemon keeps its data (--fsync):
//   - At least once. From Put until its Ack, a job is in the queue or in
//     exactly one worker's in-progress list: no crash of a worker, of the
//     producer or of the connection loses it (a move is one operation).
//   - With Ack, no job is done twice unless its worker died, or stalled
//     without renewing its lease for longer than the lease, before the
//     Ack: only then does Recover hand the job to another worker. Ack of
//     a job so taken away fails with ErrLeaseLost. Make jobs idempotent,
//     or a stall longer than the lease impossible (Worker.Renew during
//     long jobs).
//   - Jobs are taken in the order they were Put, first from the front;
//     a requeued job goes back to the front. Waiting workers are served
//     first come, first served.
//
// Jobs are compared by value (Ack removes the first equal job from the
// worker's list): give each job something unique, an id.
//
// Tables: the queue is the list table name; the leases are the dict
// name+".workers"; worker w's in-progress list is name+".inprogress."+w.
// Recover must run from time to time (every lease period, say) in some
// process: any worker, or a supervisor.
type Queue[V any] struct {
	x      Executor
	name   string
	jobs   *List[V]
	leases string
}

// NewQueue returns a handle on the queue name (see Create).
func NewQueue[V any](x Executor, name string) *Queue[V] {
	return &Queue[V]{x: x, name: name, jobs: NewList[V](x, name), leases: name + ".workers"}
}

// Create creates the queue's tables unless they exist.
func (q *Queue[V]) Create(ctx context.Context) error {
	t := tableOps{asExecutor(q.x)}
	if err := t.CreateList(ctx, q.name, nil, IfNotExists()); err != nil {
		return err
	}
	return t.CreateDict(ctx, q.leases, nil, IfNotExists())
}

// Jobs is the list of jobs waiting.
func (q *Queue[V]) Jobs() *List[V] { return q.jobs }

// Put appends jobs at the back of the queue.
func (q *Queue[V]) Put(ctx context.Context, jobs ...V) error {
	if len(jobs) == 0 {
		return nil
	}
	_, err := q.jobs.Extend(ctx, jobs)
	return err
}

func (q *Queue[V]) inProgressPrefix() string { return q.name + ".inprogress." }

// Worker registers a worker: it takes the lease of id (a random id when
// id is empty), valid for lease and renewed by Take and Renew, and
// creates its in-progress list. Two live workers cannot share an id: the
// second fails with ErrLockHeld.
func (q *Queue[V]) Worker(ctx context.Context, id string, lease time.Duration) (*Worker[V], error) {
	if lease <= 0 {
		return nil, fmt.Errorf("libcyberdb: Queue.Worker: the lease must be positive, not %v", lease)
	}
	if id == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	w := &Worker[V]{
		q:      q,
		id:     id,
		lease:  NewLock(q.x, q.leases, id, lease),
		ttl:    lease,
		inprog: NewList[V](q.x, q.inProgressPrefix()+id),
	}
	if err := w.register(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// Recover gives the jobs of every worker whose lease has run out back to
// the front of the queue, in their order, drops their in-progress lists,
// and returns how many jobs it requeued. Each job moves in one batch
// guarded by "the lease is absent", so a worker that registers again
// meanwhile keeps what it takes from then on. Safe to run from several
// processes at once.
func (q *Queue[V]) Recover(ctx context.Context) (int, error) {
	tables, err := tableOps{asExecutor(q.x)}.Tables(ctx)
	if err != nil {
		return 0, err
	}
	leases := NewDict[string, string](q.x, q.leases)
	// The live workers' lists are left alone without a call each: the
	// guarded batch below would fail for them anyway (and count as a
	// guard_failed batch in the daemon's monitor and op counts). A lease
	// that runs out after this read is caught by the next Recover.
	live, err := leases.Keys(ctx)
	if err != nil && !errors.Is(err, ErrNoTable) {
		return 0, err
	}
	prefix := q.inProgressPrefix()
	n := 0
	for _, t := range tables {
		id, ok := strings.CutPrefix(t.Name, prefix)
		if !ok || t.Kind != KindList || slices.Contains(live, id) {
			continue
		}
		inprog := NewList[V](q.x, t.Name)
		for {
			b := &Batch{x: asExecutor(q.x)}
			leases.In(b).GuardAbsent(id)
			inprog.In(b).Move(q.jobs, Right, Left)
			err := b.Exec(ctx)
			if err == nil {
				n++
				continue
			}
			if errors.Is(err, ErrIndexOutOfRange) {
				// Empty: drop it, unless its worker came back meanwhile.
				b := &Batch{x: asExecutor(q.x)}
				leases.In(b).GuardAbsent(id)
				inprog.In(b).GuardLen(0)
				b.Drop(t.Name)
				if err := b.Exec(ctx); err != nil && !errors.Is(err, ErrGuardFailed) && !errors.Is(err, ErrNoTable) {
					return n, err
				}
			} else if !errors.Is(err, ErrGuardFailed) && !errors.Is(err, ErrNoTable) {
				return n, err
			}
			break // alive (guard), gone, or done
		}
	}
	return n, nil
}

// Worker is one consumer of a Queue, with its lease and in-progress list.
// Use it from one goroutine at a time.
type Worker[V any] struct {
	q         *Queue[V]
	id        string
	lease     *Lock
	ttl       time.Duration
	inprog    *List[V]
	renewedAt time.Time // when the lease was last taken or renewed (our clock, before the request)

	// held counts the jobs Take returned that Ack has not taken back, by
	// their CBOR; suspect: a move may have happened whose reply was lost
	// (ErrConnClosed), so the in-progress list may hold a job nobody was
	// given. Take looks for it there (adopt) before it waits again.
	held    map[string]int
	suspect bool
}

// ID is the worker's id.
func (w *Worker[V]) ID() string { return w.id }

// InProgress is the worker's in-progress list: the jobs it took and has
// not acknowledged.
func (w *Worker[V]) InProgress() *List[V] { return w.inprog }

// register takes the lease and creates the in-progress list.
func (w *Worker[V]) register(ctx context.Context) error {
	at := time.Now()
	ok, err := w.lease.TryAcquire(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: worker id %q of queue %q is in use by a live worker", ErrLockHeld, w.id, w.q.name)
	}
	if err := (tableOps{asExecutor(w.q.x)}).CreateList(ctx, w.inprog.name, nil, IfNotExists()); err != nil {
		return err
	}
	w.renewedAt = at
	return nil
}

// Renew extends the worker's lease. A worker whose lease ran out (its
// jobs may have been requeued) registers again: Renew returns
// ErrLeaseLost then, and the worker goes on with a fresh lease. Take
// renews by itself; call Renew during a job that may last longer than a
// third of the lease.
func (w *Worker[V]) Renew(ctx context.Context) error {
	at := time.Now()
	ok, err := w.lease.Renew(ctx)
	if err != nil {
		return err
	}
	if ok {
		w.renewedAt = at
		return nil
	}
	if err := w.register(ctx); err != nil {
		return err
	}
	return ErrLeaseLost
}

// renewIfDue renews the lease when a third of it has passed.
func (w *Worker[V]) renewIfDue(ctx context.Context) error {
	if time.Since(w.renewedAt) < w.ttl/3 {
		return nil
	}
	if err := w.Renew(ctx); err != nil && !errors.Is(err, ErrLeaseLost) {
		return err
	}
	return nil
}

// Take moves the next job from the front of the queue into the worker's
// in-progress list and returns it, waiting up to timeout for one (0: for
// ever, or until ctx ends; < 0: not at all), as List.PopWait does. While
// it waits it keeps the lease renewed. ok is false when the time-out
// ended with no job. A worker whose lease ran out and whose jobs Recover
// requeued registers again, as Renew does, and takes on.
//
// A move whose reply is lost with its connection (the daemon restarts)
// may or may not have happened. Take does not fail with ErrConnClosed
// then: it looks in the worker's in-progress list, and returns a job
// it finds there that it did not give out (or else waits on). Without
// this, such a job stayed in a live worker's list, never done, until the
// worker stopped or died.
func (w *Worker[V]) Take(ctx context.Context, timeout time.Duration) (job V, ok bool, err error) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	registered := false
	for {
		if w.suspect {
			// The last move's reply was lost: if it moved a job, the
			// job is in our list and nobody has it. Alive, this worker
			// would keep it there for good (Recover leaves a live
			// worker's list alone): it is this Take's job.
			job, ok, err := w.adopt(ctx)
			if err != nil || ok {
				return job, ok, err
			}
		}
		if err := w.renewIfDue(ctx); err != nil {
			return job, false, err
		}
		wait := max(w.ttl/3, time.Millisecond)
		if timeout < 0 {
			wait = -1
		} else if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return job, false, nil
			}
			wait = min(wait, left)
		}
		job, ok, err = w.q.jobs.MoveWait(ctx, w.inprog, Left, Right, wait)
		if errors.Is(err, ErrConnClosed) && ctx.Err() == nil {
			w.suspect = true // the move may have happened: adopt looks
			continue
		}
		if err == nil && ok {
			w.hold(job)
		}
		if errors.Is(err, ErrNoTable) && !registered {
			// The in-progress list is gone: the lease ran out without
			// this worker's clock seeing it due (the daemon's clock saw
			// a stall, or moved on), and Recover dropped the list. As
			// Renew does: take the lease again, make the list, go on.
			registered = true
			if err := w.Renew(ctx); err != nil && !errors.Is(err, ErrLeaseLost) {
				return job, false, err
			}
			if err := (tableOps{asExecutor(w.q.x)}).CreateList(ctx, w.inprog.name, nil, IfNotExists()); err != nil {
				return job, false, err
			}
			continue
		}
		if err != nil || ok || timeout < 0 {
			return job, ok, err
		}
	}
}

// Ack acknowledges a job done: it removes it from the worker's
// in-progress list. ErrLeaseLost: the job was no longer there, because
// the lease had run out and Recover requeued it.
func (w *Worker[V]) Ack(ctx context.Context, job V) error {
	err := w.inprog.Remove(ctx, job)
	if errors.Is(err, ErrValueNotFound) || errors.Is(err, ErrNoTable) {
		w.unhold(job)
		return fmt.Errorf("%w (worker %q, queue %q)", ErrLeaseLost, w.id, w.q.name)
	}
	if err == nil {
		w.unhold(job)
	}
	return err
}

// hold notes job as given out by Take.
func (w *Worker[V]) hold(job V) {
	b, err := appendValue(nil, job)
	if err != nil {
		return
	}
	if w.held == nil {
		w.held = map[string]int{}
	}
	w.held[string(b)]++
}

// unhold notes job as taken back (Ack).
func (w *Worker[V]) unhold(job V) {
	b, err := appendValue(nil, job)
	if err != nil {
		return
	}
	if w.held[string(b)]--; w.held[string(b)] <= 0 {
		delete(w.held, string(b))
	}
}

// adopt returns a job of the in-progress list that Take did not give
// out (a move whose reply was lost), ok false when there is none. The
// list is this worker's alone, and short: its jobs in progress.
func (w *Worker[V]) adopt(ctx context.Context) (job V, ok bool, err error) {
	jobs, err := w.inprog.Values(ctx)
	if errors.Is(err, ErrNoTable) {
		w.suspect = false // Recover requeued them (the lease ran out): nothing to adopt
		return job, false, nil
	}
	if err != nil {
		return job, false, err
	}
	w.suspect = false
	seen := map[string]int{}
	for i := len(jobs) - 1; i >= 0; i-- { // a move appends on the right
		b, err := appendValue(nil, jobs[i])
		if err != nil {
			continue
		}
		k := string(b)
		seen[k]++
		if seen[k] > w.held[k] {
			w.hold(jobs[i])
			return jobs[i], true, nil
		}
	}
	return job, false, nil
}

// Stop ends the worker cleanly: its unacknowledged jobs go back to the
// front of the queue, its lease is released and its list dropped.
func (w *Worker[V]) Stop(ctx context.Context) error {
	for {
		_, err := w.inprog.Move(ctx, w.q.jobs, Right, Left)
		if errors.Is(err, ErrIndexOutOfRange) || errors.Is(err, ErrNoTable) {
			break
		}
		if err != nil {
			return err
		}
	}
	clear(w.held) // all back in the queue
	if _, err := w.lease.Release(ctx); err != nil {
		return err
	}
	b := &Batch{x: asExecutor(w.q.x)}
	w.inprog.In(b).GuardLen(0)
	b.Drop(w.inprog.name)
	if err := b.Exec(ctx); err != nil && !errors.Is(err, ErrGuardFailed) && !errors.Is(err, ErrNoTable) {
		return err
	}
	return nil
}
