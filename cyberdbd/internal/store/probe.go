package store

import (
	"context"
	"strconv"
)

// Probe is the watchdog's round trip through the store (cyberdbd's health
// check): it takes, one after the other and each for an instant, the
// write gate and the store lock shared, then every table's lock shared, as
// a write op and a read op of each table would. It returns once it has had
// them all, or an error naming the lock it was still waiting for when ctx
// ended: a lock held that long (a stuck op, a stuck snapshot cut) hangs
// every client of that table. It holds no two locks at once, so the lock
// order does not apply. While one probe is stuck, the next fails at once
// (health.Waiter): probes never pile up behind a lock.
func (s *Store) Probe(ctx context.Context) error {
	return s.probe.Wait(ctx, func(step func(string)) {
		step("the write gate (a snapshot cut?)")
		s.gate.RLock()
		s.gate.RUnlock() // held for an instant: having had it is the point
		step("the store lock")
		s.mu.RLock()
		tables := make([]*table, 0, len(s.tables))
		for _, t := range s.tables {
			tables = append(tables, t)
		}
		s.mu.RUnlock()
		for _, t := range tables {
			step("the lock of table " + strconv.Quote(t.name))
			t.mu.RLock()
			t.mu.RUnlock()
		}
	})
}
