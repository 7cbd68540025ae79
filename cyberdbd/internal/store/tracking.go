package store

import "math"

// The tracking cap (--tracking-max-keys, PROTOCOL.md 6.8), as Redis's
// tracking-table-max-keys: a client that reads millions of distinct keys
// with tracking on would otherwise make the registrations grow without
// bound. Past the cap the store forgets registered keys chosen at random,
// and for each it first queues an ordinary invalidation on every
// connection that registered it: a forgotten registration can never
// leave a client serving a value that a later write changed, it only
// costs that client a read.
//
// Why it is safe to forget a key under its table's tmu alone (not the
// table's lock): a registration is made under tmu too, after its read,
// and an invalidation a write queues is computed under tmu. The eviction
// queues its invalidation before it lets tmu go, so a write that comes
// after it finds no registration and the connection has the invalidation
// already; a read that registers the key again after it registers
// afresh. The eviction's push may reach the client before the reply of a
// read of the key in flight: the client must then not cache that reply,
// as for any invalidation (README: "the crossing race").

// DefaultTrackingMaxKeys is --tracking-max-keys' default: keys registered
// by read-cache tracking, over all connections. A key of 11 bytes read
// by one connection costs 132 bytes of heap (its key, a map entry, a
// record per connection; measured over 1M dgets), so the default bounds
// them at about 130 MB.
const DefaultTrackingMaxKeys = 1_000_000

// trimBudget bounds the keys one registering read may evict: a cap
// lowered by a lot is brought down by SetTrackingMaxKeys, not by reads.
const trimBudget = 4096

// SetTrackingMaxKeys sets the cap of registered keys (0: none), and when
// more are registered forgets the excess at once, invalidating it.
func (s *Store) SetTrackingMaxKeys(n int64) {
	s.trackMax.Store(max(n, 0))
	s.trimTracking(math.MaxInt)
}

// TrackingMaxKeys returns the cap SetTrackingMaxKeys set (0: none).
func (s *Store) TrackingMaxKeys() int64 { return s.trackMax.Load() }

// trackKeyAdded counts a key new in t.track (t.tmu held) and reports
// whether the cap is now passed.
func (s *Store) trackKeyAdded(t *table) bool {
	if len(t.track) == 1 {
		s.trmu.Lock()
		if s.trackTables == nil {
			s.trackTables = make(map[*table]struct{})
		}
		s.trackTables[t] = struct{}{}
		s.trmu.Unlock()
	}
	n := s.trackKeys.Add(1)
	m := s.trackMax.Load()
	return m > 0 && n > m
}

// trackKeysRemoved counts n keys gone from t.track (t.tmu held).
func (s *Store) trackKeysRemoved(t *table, n int) {
	if n == 0 {
		return
	}
	s.trackKeys.Add(-int64(n))
	if len(t.track) == 0 {
		s.trmu.Lock()
		delete(s.trackTables, t)
		s.trmu.Unlock()
	}
}

// trimTracking forgets registered keys until no more than the cap are
// left, at most budget of them, each invalidated first. It evicts a few
// more than the excess (1/128 of the cap, at most 256), so that a client
// streaming distinct keys costs one eviction round per few reads, not one
// per read. Callers hold no table lock.
func (s *Store) trimTracking(budget int) {
	for budget > 0 {
		m := s.trackMax.Load()
		over := s.trackKeys.Load() - m
		if m <= 0 || over <= 0 {
			return
		}
		t := s.trackVictim()
		if t == nil {
			return
		}
		want := int(min(over+min(m>>7, 256), int64(budget)))
		budget -= s.forgetTracked(t, want, true)
	}
}

// trackVictim returns a table with registered keys, picked at random (a
// map's iteration starts at a random place), or nil when there is none.
func (s *Store) trackVictim() *table {
	s.trmu.Lock()
	defer s.trmu.Unlock()
	for t := range s.trackTables {
		return t
	}
	return nil
}

// forgetTracked forgets up to n registered keys of t, random ones, and
// returns how many it forgot (at least one when t has any). Each is
// invalidated, under t.tmu, at the live trackers that registered it,
// with one push per tracker. evicted counts them as evicted by the cap.
func (s *Store) forgetTracked(t *table, n int, evicted bool) int {
	type inval struct {
		tr   *Tracker
		keys [][]byte
	}
	var todo []inval
	t.tmu.Lock()
	defer t.tmu.Unlock()
	done := 0
	for key, regs := range t.track {
		if done >= max(n, 1) {
			break
		}
		delete(t.track, key)
		done++
		for _, r := range regs {
			if r.tr.closed.Load() || r.gen != r.tr.gen.Load() {
				continue // dead: its connection forgot it already
			}
			i := 0
			for i < len(todo) && todo[i].tr != r.tr {
				i++
			}
			if i == len(todo) {
				todo = append(todo, inval{tr: r.tr})
			}
			todo[i].keys = append(todo[i].keys, []byte(key))
		}
	}
	if len(t.track) == 0 {
		t.track = nil
	}
	s.trackKeysRemoved(t, done)
	if done == 0 {
		// Emptied meanwhile (a write invalidated it): it left
		// trackTables then, but make sure.
		s.trmu.Lock()
		delete(s.trackTables, t)
		s.trmu.Unlock()
	}
	for _, v := range todo {
		v.tr.invalidate(t.name, v.keys, false)
	}
	if evicted {
		s.trackEvicted.Add(int64(done))
	}
	return done
}

// untrackTable forgets every registration of t, a table leaving the store
// (t.mu held for writing): when it was dropped by a write op, emit has
// invalidated and forgotten them already, unless nobody was watching or
// tracking then; what is left is invalidated all the same.
func (s *Store) untrackTable(t *table) {
	t.tmu.Lock()
	n := len(t.track)
	t.tmu.Unlock()
	if n > 0 {
		s.forgetTracked(t, n, false)
	}
}
