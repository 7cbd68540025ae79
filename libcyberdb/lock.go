package libcyberdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// ErrLockHeld is returned by Lock.Acquire when ctx ends while another
// holder has the lock.
var ErrLockHeld = errors.New("libcyberdb: the lock is held by another holder")

// Lock is a lease on one key of a dict table: whoever sets the key first
// (SetIfAbsent with a TTL) holds it until it releases it or the lease runs
// out; Renew extends a lease still held, Release lets it go only if it is
// still held (DeleteIfEqual on a random token), so a holder whose lease
// ran out never removes its successor's. The table must exist (a
// Dict[string, string]); one table can hold many locks.
//
//	lk := libcyberdb.NewLock(c, "locks", "nightly-report", 30*time.Second)
//	if ok, err := lk.TryAcquire(ctx); err != nil || !ok {
//		return err // someone else runs it
//	}
//	defer lk.Release(context.WithoutCancel(ctx))
//
// Limits. It is a lease, not a mutex: a holder that stalls (a pause, a
// long GC, a partition from the daemon) past its TTL loses the lock while
// it still thinks it holds it. Renew well before the TTL ends (at a third
// of it, say), treat the lock as lost once TTL has passed on your own
// clock since the acquiring request was sent, and protect what the lock
// guards with a check the daemon makes (CompareAndSwap on a version) where
// a stale holder would do harm. Deadlines are judged by the one daemon's
// clock (a jump of its wall clock moves every deadline); there is no
// consensus across several daemons (no Redlock). A lock survives a daemon
// restart with its deadline, as far as --fsync makes the acquire durable.
type Lock struct {
	d     *Dict[string, string]
	key   string
	token string
	ttl   time.Duration
}

// NewLock returns a lock on key of the dict table named table, with leases
// of ttl, and a fresh random token that identifies this holder.
func NewLock(x Executor, table, key string, ttl time.Duration) *Lock {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return &Lock{d: NewDict[string, string](x, table), key: key, token: hex.EncodeToString(b[:]), ttl: ttl}
}

// Token is what the lock's key holds while this holder has it.
func (l *Lock) Token() string { return l.token }

// TryAcquire takes the lock if nobody holds it, and reports whether it did.
func (l *Lock) TryAcquire(ctx context.Context) (bool, error) {
	return l.d.SetIfAbsent(ctx, l.key, l.token, TTL(l.ttl))
}

// Acquire waits until it takes the lock, trying again with a growing
// pause (up to a tenth of the TTL, at most a second); when ctx ends first
// it returns an error wrapping ErrLockHeld and ctx's error.
func (l *Lock) Acquire(ctx context.Context) error {
	pause := 5 * time.Millisecond
	for {
		ok, err := l.TryAcquire(ctx)
		if err != nil || ok {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: %q in table %q: %w", ErrLockHeld, l.key, l.d.name, ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, max(l.ttl/10, 5*time.Millisecond), time.Second)
	}
}

// Renew extends the lease to the TTL from now if this holder still has
// the lock, and reports whether it does.
func (l *Lock) Renew(ctx context.Context) (bool, error) {
	return l.d.CompareAndSwap(ctx, l.key, l.token, l.token, TTL(l.ttl))
}

// Release lets the lock go if this holder still has it, and reports
// whether it did (false: the lease had run out, and perhaps another holder
// has the lock now, which is left alone).
func (l *Lock) Release(ctx context.Context) (bool, error) {
	return l.d.DeleteIfEqual(ctx, l.key, l.token)
}
