package store

import (
	"fmt"
	"sync"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// cacheModel is what a client's read cache does with a tracker's pushes:
// a read stores the value, an invalidation drops the keys (all of the
// table's when keys is null).
type cacheModel struct {
	rec   *sinkRec
	cache map[string]string // "table/key" -> value, as dget returned it
}

func (c *cacheModel) read(t *testing.T, s *Store, tr *Tracker, table, key string) {
	t.Helper()
	out, err := s.ExecTracked(wire.OpDGet, mkArgs(t, wire.OpDGet, table, key, nil), nil, tr)
	if err != nil {
		t.Fatal(err)
	}
	// The reply is before any push the read caused (the eviction runs
	// after it): store it, then apply the pushes.
	c.cache[table+"/"+key] = wire.Diagnose(out)
	c.apply(t)
}

func (c *cacheModel) apply(t *testing.T) (dropped int) {
	t.Helper()
	for _, p := range c.rec.take() {
		if p["push"] != "invalidate" {
			t.Fatalf("push %v", p)
		}
		table := p["table"].(string)
		if p["keys"] == nil {
			for k := range c.cache {
				if len(k) > len(table) && k[:len(table)+1] == table+"/" {
					delete(c.cache, k)
					dropped++
				}
			}
			continue
		}
		for _, k := range p["keys"].([]any) {
			if _, ok := c.cache[table+"/"+k.(string)]; ok {
				dropped++
			}
			delete(c.cache, table+"/"+k.(string))
		}
	}
	return dropped
}

// stale returns the cached entries whose value is not the store's.
func (c *cacheModel) stale(t *testing.T, s *Store) []string {
	t.Helper()
	var bad []string
	for tk, v := range c.cache {
		var table, key string
		for i := range tk {
			if tk[i] == '/' {
				table, key = tk[:i], tk[i+1:]
				break
			}
		}
		if now := do(t, s, wire.OpDGet, table, key, nil); now != v {
			bad = append(bad, fmt.Sprintf("%s: cached %s, holds %s", tk, v, now))
		}
	}
	return bad
}

// TestTrackingCap: past --tracking-max-keys the store forgets registered
// keys, invalidating each first, so a client's cache (the model) never
// holds a value that a later write changed; the counts add up.
func TestTrackingCap(t *testing.T) {
	const max, n = 100, 1000
	s := New()
	s.SetTrackingMaxKeys(max)
	a, b := &cacheModel{rec: &sinkRec{}, cache: map[string]string{}}, &cacheModel{rec: &sinkRec{}, cache: map[string]string{}}
	ta, tb := &Tracker{Sub: 1, Sink: a.rec}, &Tracker{Sub: 2, Sink: b.rec}
	s.StartTracking(ta)
	s.StartTracking(tb)
	for _, table := range []string{"x", "y"} {
		do(t, s, wire.OpCreateDict, table)
		for i := range n {
			do(t, s, wire.OpDSet, table, fmt.Sprint("k", i), i)
		}
	}
	for i := range n {
		for _, table := range []string{"x", "y"} {
			key := fmt.Sprint("k", i)
			a.read(t, s, ta, table, key)
			if i%3 == 0 {
				b.read(t, s, tb, table, key) // some keys have two registrations
			}
			if k := s.Stats().TrackingKeys; k > max {
				t.Fatalf("after reading %s/%s: %d keys tracked, over the cap of %d", table, key, k, max)
			}
		}
	}
	st := s.Stats()
	if st.TrackingEvicted < 2*n-max {
		t.Fatalf("%d keys tracked, %d evicted: want at least %d evicted", st.TrackingKeys, st.TrackingEvicted, 2*n-max)
	}
	// A read by one client can evict the other's registrations: apply
	// the invalidations each has pending (a read applies only its own
	// client's) before comparing. Without this, the test failed now and
	// then, when the last evictions hit b's keys.
	a.apply(t)
	b.apply(t)
	union := map[string]bool{}
	for _, c := range []*cacheModel{a, b} {
		for k := range c.cache {
			union[k] = true
		}
	}
	if len(union) != int(st.TrackingKeys) || len(a.cache) == 0 || len(b.cache) == 0 {
		t.Fatalf("the clients cache %d and %d keys, %d distinct; the store tracks %d", len(a.cache), len(b.cache), len(union), st.TrackingKeys)
	}
	// Every key is written: the cached ones are invalidated, the
	// forgotten ones were invalidated already.
	for _, table := range []string{"x", "y"} {
		for i := range n {
			do(t, s, wire.OpDSet, table, fmt.Sprint("k", i), -i-1)
		}
	}
	a.apply(t)
	b.apply(t)
	for _, c := range []*cacheModel{a, b} {
		if bad := c.stale(t, s); len(bad) > 0 {
			t.Fatalf("stale cache entries: %v", bad)
		}
		if len(c.cache) != 0 {
			t.Fatalf("%d entries left cached after every key was written", len(c.cache))
		}
	}
	if k := s.Stats().TrackingKeys; k != 0 {
		t.Fatalf("%d keys tracked after every key was written", k)
	}
}

// TestTrackingCapLowered: lowering the cap forgets the excess at once,
// invalidated; 0 lifts the cap.
func TestTrackingCapLowered(t *testing.T) {
	s := New()
	s.SetTrackingMaxKeys(0)
	c := &cacheModel{rec: &sinkRec{}, cache: map[string]string{}}
	tr := &Tracker{Sub: 1, Sink: c.rec}
	s.StartTracking(tr)
	do(t, s, wire.OpCreateDict, "d")
	for i := range 500 {
		c.read(t, s, tr, "d", fmt.Sprint(i))
	}
	if k := s.Stats().TrackingKeys; k != 500 {
		t.Fatalf("no cap: %d keys tracked, want 500", k)
	}
	s.SetTrackingMaxKeys(10)
	st := s.Stats()
	if st.TrackingKeys > 10 || st.TrackingEvicted < 490 {
		t.Fatalf("cap lowered to 10: %d keys tracked, %d evicted", st.TrackingKeys, st.TrackingEvicted)
	}
	if dropped := c.apply(t); dropped != int(st.TrackingEvicted) || len(c.cache) != int(st.TrackingKeys) {
		t.Fatalf("the client dropped %d keys and keeps %d; the store evicted %d and tracks %d",
			dropped, len(c.cache), st.TrackingEvicted, st.TrackingKeys)
	}
}

// TestTrackingDroppedTable: the registrations of a table that leaves the
// store leave the count, whether the drop was seen by a live tracker or
// the trackers had stopped (the table's registrations were all dead).
func TestTrackingDroppedTable(t *testing.T) {
	s := New()
	c := &cacheModel{rec: &sinkRec{}, cache: map[string]string{}}
	tr := &Tracker{Sub: 1, Sink: c.rec}
	s.StartTracking(tr)
	do(t, s, wire.OpCreateDict, "d")
	do(t, s, wire.OpCreateDict, "e")
	for i := range 50 {
		c.read(t, s, tr, "d", fmt.Sprint(i))
		c.read(t, s, tr, "e", fmt.Sprint(i))
	}
	do(t, s, wire.OpDrop, "d")
	if k := s.Stats().TrackingKeys; k != 50 {
		t.Fatalf("after dropping d: %d keys tracked, want e's 50", k)
	}
	if c.apply(t); len(c.cache) != 50 {
		t.Fatalf("after dropping d the client caches %d keys, want e's 50", len(c.cache))
	}
	s.StopTracking(tr)
	do(t, s, wire.OpDrop, "e") // nobody hooked: no invalidation runs
	if k := s.Stats().TrackingKeys; k != 0 {
		t.Fatalf("after dropping e: %d keys tracked", k)
	}
	if st := s.Stats(); st.TrackingEvicted != 0 {
		t.Fatalf("drops counted as evictions: %d", st.TrackingEvicted)
	}
}

// TestTrackingCapConcurrent: readers of distinct keys and writers at once
// (run with -race): the count stays near the cap and adds up at the end.
func TestTrackingCapConcurrent(t *testing.T) {
	const max = 64
	s := New()
	s.SetTrackingMaxKeys(max)
	do(t, s, wire.OpCreateDict, "a")
	do(t, s, wire.OpCreateDict, "b")
	var wg sync.WaitGroup
	trs := make([]*Tracker, 4)
	for g := range trs {
		trs[g] = &Tracker{Sub: uint64(g + 1), Sink: &sinkRec{}}
		s.StartTracking(trs[g])
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				table := []string{"a", "b"}[i%2]
				key := fmt.Sprint(g, "-", i%300)
				if _, err := s.ExecTracked(wire.OpDGet, mkArgs(t, wire.OpDGet, table, key, nil), nil, trs[g]); err != nil {
					t.Error(err)
					return
				}
				if i%7 == 0 {
					if _, err := s.Exec(wire.OpDSet, mkArgs(t, wire.OpDSet, table, key, i), nil); err != nil {
						t.Error(err)
						return
					}
				}
				// Each reader may be one key over while it evicts.
				if k := s.Stats().TrackingKeys; k > max+int64(len(trs)) {
					t.Errorf("%d keys tracked, cap %d", k, max)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.StopTracking(trs[0])
	do(t, s, wire.OpDClear, "a")
	do(t, s, wire.OpDrop, "b")
	if k := s.Stats().TrackingKeys; k != 0 {
		t.Fatalf("%d keys tracked once every table was cleared or dropped", k)
	}
}
