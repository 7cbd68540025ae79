package server

import (
	"container/list"
	"crypto/sha256"
	"crypto/subtle"
	"sync"
	"sync/atomic"
	"time"
)

// Password is the shared secret of the TCP listener. It is replaced
// atomically (on SIGHUP), so connections authenticate against whichever
// password is current when their HELLO arrives. Connections already
// authenticated stay open unless Server.EndOldSessions ends those that
// logged in with a password replaced since.
//
// Only the SHA-256 of the password is kept. Check hashes what the client
// sent and compares the two digests in constant time, so neither the
// content nor the length of the password leaks through timing.
type Password struct {
	cur atomic.Pointer[secret]
	// endBefore: sessions that logged in with a generation below it are
	// to end (EndOldSessions).
	endBefore atomic.Uint64
}

// secret is one password: its digest and its generation, which counts
// the passwords set (from 1), so that a session knows which one it used.
type secret struct {
	digest [sha256.Size]byte
	gen    uint64
}

// NewPassword returns a Password set to pw.
func NewPassword(pw []byte) *Password {
	p := &Password{}
	p.Set(pw)
	return p
}

// Set replaces the password, and reports whether it changed.
func (p *Password) Set(pw []byte) (changed bool) {
	s := &secret{digest: sha256.Sum256(pw), gen: 1}
	old := p.cur.Load()
	if old != nil {
		if subtle.ConstantTimeCompare(old.digest[:], s.digest[:]) == 1 {
			return false
		}
		s.gen = old.gen + 1
	}
	p.cur.Store(s)
	return true
}

// Check reports whether given is the password. An empty given never is,
// and a Password never set admits nobody.
func (p *Password) Check(given string) bool {
	ok, _ := p.check(given)
	return ok
}

// check is Check, also returning the generation of the password matched.
func (p *Password) check(given string) (ok bool, gen uint64) {
	want := p.cur.Load()
	if want == nil {
		return false, 0
	}
	got := sha256.Sum256([]byte(given))
	ok = subtle.ConstantTimeCompare(got[:], want.digest[:]) == 1
	return ok && given != "", want.gen
}

// stale reports whether a session that logged in with generation gen
// is to end.
func (p *Password) stale(gen uint64) bool { return gen != 0 && gen < p.endBefore.Load() }

// throttle limits password attempts per client address with a token bucket
// each: an address may try burst times at once, then once every
// 1/refill seconds. A HELLO takes a token before its password is checked,
// so concurrent guesses are limited too, and a correct password gives its
// token back, so legitimate clients never run dry.
//
// Memory is bounded by keeping only the buckets that matter, at most
// maxEntries (an IPv6 client counts by its /64, which one host usually
// has): a bucket that has refilled is the same as none, so a success that
// refills its bucket drops it, and refilled buckets are dropped from the
// least recently used end. When the table is still full, the bucket used
// least recently is evicted. An address never shares a bucket with
// another, so failures from any number of other addresses never refuse a
// correct password from an address that has not failed.
//
// The price of eviction: an attacker cycling through more addresses than
// the table holds has its oldest buckets forgotten and may try again
// sooner. Against that many addresses a per-address limit bounds nothing
// anyway (maxEntries buckets refilling at 0.5 a second each allow 8192
// attempts a second, more TLS handshakes than the daemon completes): a
// long random password is what defeats guessing (README, "What is not").
type throttle struct {
	burst      float64
	refill     float64 // tokens per second
	maxEntries int
	now        func() time.Time

	mu      sync.Mutex               // guards buckets and lru, and the buckets' fields; a leaf
	buckets map[string]*list.Element // of *bucket, in lru
	lru     list.List                // front: used most recently
}

type bucket struct {
	key    string
	tokens float64
	last   time.Time
}

// Throttle defaults: 10 attempts at once, then one every 2 seconds; at
// most maxThrottled addresses tracked (about 200 bytes each).
const (
	DefaultAuthBurst  = 10
	DefaultAuthRefill = 0.5 // per second
	maxThrottled      = 16384
)

func newThrottle(burst int, refill float64) *throttle {
	if burst <= 0 {
		burst = DefaultAuthBurst
	}
	if refill <= 0 {
		refill = DefaultAuthRefill
	}
	return &throttle{
		burst:      float64(burst),
		refill:     refill,
		maxEntries: maxThrottled,
		now:        time.Now,
		buckets:    make(map[string]*list.Element),
	}
}

// fill brings b up to date at now.
func (t *throttle) fill(b *bucket, now time.Time) {
	if !b.last.IsZero() {
		b.tokens = min(t.burst, b.tokens+now.Sub(b.last).Seconds()*t.refill)
	}
	b.last = now
}

// take takes a token for one attempt from key. When there is none it
// returns false and how long until there is.
func (t *throttle) take(key string) (ok bool, wait time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	b := t.bucketLocked(key, now)
	t.fill(b, now)
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) / t.refill * float64(time.Second))
	}
	b.tokens--
	return true, 0
}

// giveBack returns the token of a successful attempt; a bucket that is
// full again is forgotten.
func (t *throttle) giveBack(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.buckets[key]
	if !ok {
		return // evicted meanwhile: as good as full
	}
	b := e.Value.(*bucket)
	t.fill(b, t.now())
	if b.tokens = min(t.burst, b.tokens+1); b.tokens >= t.burst {
		t.removeLocked(e)
	}
}

// bucketLocked finds or makes the bucket of key, and marks it used. Must
// hold t.mu.
func (t *throttle) bucketLocked(key string, now time.Time) *bucket {
	if e, ok := t.buckets[key]; ok {
		t.lru.MoveToFront(e)
		return e.Value.(*bucket)
	}
	// Refilled buckets are the same as none: forget those at the old end.
	for e := t.lru.Back(); e != nil; e = t.lru.Back() {
		b := e.Value.(*bucket)
		t.fill(b, now)
		if b.tokens < t.burst {
			break
		}
		t.removeLocked(e)
	}
	if len(t.buckets) >= t.maxEntries {
		t.removeLocked(t.lru.Back()) // the least recently used
	}
	b := &bucket{key: key, tokens: t.burst, last: now}
	t.buckets[key] = t.lru.PushFront(b)
	return b
}

// removeLocked forgets a bucket. Must hold t.mu.
func (t *throttle) removeLocked(e *list.Element) {
	delete(t.buckets, e.Value.(*bucket).key)
	t.lru.Remove(e)
}

// logLimiter keeps what a peer can make the daemon log (refused addresses,
// failed logins) to a few lines a second, and counts the rest.
type logLimiter struct {
	perSecond int

	mu         sync.Mutex // guards window, n and suppressed; a leaf
	window     time.Time
	n          int
	suppressed int
}

// allow reports whether to log one more line now, and how many lines
// were suppressed in the windows before (to be reported with it).
func (l *logLimiter) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.window) >= time.Second {
		l.window, l.n = now, 0
	}
	if l.n >= l.perSecond {
		l.suppressed++
		return false, 0
	}
	l.n++
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
