package store

import (
	"sync"
	"sync/atomic"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// kind is what a table holds.
type kind uint8

const (
	kindNone kind = iota // an empty slot: a name locked by a batch or a create, or a dropped table
	kindDict
	kindList
)

func (k kind) String() string {
	switch k {
	case kindDict:
		return "dict"
	case kindList:
		return "list"
	}
	return "none"
}

// table is one named slot of the store. The store's map points at it; mu
// guards everything but the published fields, which Stats and the tables
// op read without taking mu (so they never wait behind a long sort).
type table struct {
	name string

	mu      sync.RWMutex
	dropped bool // the slot left the store's map (or is about to): look the name up again
	kind    kind
	d       *dict // when kind == kindDict
	l       *list // when kind == kindList
	expires int64 // the table's deadline, unix ms; 0: none (expiry.go)
	// seq counts the write ops that changed the table (each once, with
	// what they expired or evicted) since the daemon started or the name
	// was last created: watch events carry it (events.go).
	seq uint64

	// Read-cache tracking (events.go): the trackers that read each key
	// (by its CBOR). tmu guards track, taken under mu (shared by a
	// registering read, exclusive by an invalidating write).
	tmu   sync.Mutex
	track map[string][]trackReg

	// What the write op running on the table did besides its own change
	// (mu held for writing), for the journal: Exec and batch write it out
	// and reset it (journalEffects).
	fxDropped bool     // the table itself expired: journal a drop first
	fxExpired []string // keys removed because their deadline had passed
	fxEvicted []string // keys a cache table evicted
	fxTimed   int      // deadlines the op computed from the clock: journal it timed, or rewritten
	// fxAt is set when the op's only deadline from the clock came from a
	// "ttl" option: argument fxAtArg, rewritten with "at" (fxAt), makes
	// the op's record, smaller than a timed one (Redis logs SET EX as SET PXAT).
	fxAt      []byte
	fxAtArg   int
	fxWritten []string // keys the op stored in a cache table: it must not evict them

	timedBuf     []byte      // scratch of timedArgs
	rewriteItems []wire.Raw  // scratch of rewriteAt
	timedItems   [2]wire.Raw // scratch of timedArgs

	// Snapshot copy-on-write (snapshot.go): pending is set at a cut and
	// cleared by whoever copies the table first, the snapshot (Cut.Take)
	// or a writer (capture, keeping the copy in frozen for the snapshot).
	pending atomic.Bool
	frozen  *TableImage

	// Published after every change, under mu held for writing.
	pubKind    atomic.Uint32
	pubLen     atomic.Int64
	pubBytes   atomic.Int64
	pubExpires atomic.Int64 // expires
	pubTTLs    atomic.Int64 // dict entries with a deadline
	pubNext    atomic.Int64 // the earliest deadline of the table or an entry (0: none): when the sweeper looks
}

// length returns the number of entries or elements not expired at now; mu
// must be held.
func (t *table) length(now int64) int {
	switch t.kind {
	case kindDict:
		return t.d.liveAt(now)
	case kindList:
		return len(t.l.items)
	}
	return 0
}

// publish copies kind, length and size to the fields readable without mu.
// mu must be held for writing.
func (t *table) publish() {
	var n, b, ttls int64
	switch t.kind {
	case kindDict:
		n, b, ttls = int64(t.d.live), t.d.bytes, int64(t.d.ttls)
	case kindList:
		n, b = int64(len(t.l.items)), t.l.bytes
	}
	if k := uint32(t.kind); t.pubKind.Load() != k {
		t.pubKind.Store(k)
	}
	publish(&t.pubLen, n)
	publish(&t.pubBytes, b)
	publish(&t.pubTTLs, ttls)
	next := t.expires
	if t.kind == kindDict && t.d.minDL != 0 && (next == 0 || t.d.minDL < next) {
		next = t.d.minDL
	}
	if t.kind == kindNone {
		next = 0
	}
	publish(&t.pubExpires, t.expires)
	publish(&t.pubNext, next)
}

// publish stores v in f unless f holds it already. Every write publishes,
// and most change none of these figures or one (a set of an existing
// key); an atomic store is a locked instruction on amd64, a load a plain
// one (perf, -P 16 sets: publish was 3.5% of the daemon's time). Only the
// writer, holding mu, stores, so the load cannot miss a concurrent store.
func publish(f *atomic.Int64, v int64) {
	if f.Load() != v {
		f.Store(v)
	}
}

// expiredAt reports whether the table's own deadline has passed at now.
func (t *table) expiredAt(now int64) bool { return expiredAt(t.expires, now) }

// isCache reports whether the table is a dict that may lose entries to
// eviction.
func (t *table) isCache() bool { return t.kind == kindDict && t.d.evict }

// undoLog records how to take back the changes of a batch (or of a single
// op whose journal write failed). Steps run in reverse order, so each one
// sees exactly the state its own change left behind. A nil *undoLog
// records nothing: the common single op pays for no closures.
type undoLog struct {
	steps []func()
}

func (u *undoLog) add(step func()) { u.steps = append(u.steps, step) }

// rollback runs the steps last to first and forgets them.
func (u *undoLog) rollback() {
	for i := len(u.steps) - 1; i >= 0; i-- {
		u.steps[i]()
	}
	u.steps = nil
}

// Size returns the number of entries or elements of the table named name
// as of its last write (0 when there is none), without its lock: the
// server reads it to decide, before running a request, whether an op whose
// cost grows with its table should run off the event loops. It takes the
// store lock for the map lookup only, and does not allocate.
func (s *Store) Size(name []byte) int64 {
	s.mu.RLock()
	t := s.tables[string(name)]
	s.mu.RUnlock()
	if t == nil {
		return 0
	}
	return t.pubLen.Load()
}
