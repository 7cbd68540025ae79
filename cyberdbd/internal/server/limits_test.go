package server

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestMemBudget(t *testing.T) {
	b := &memBudget{limit: 100}
	if !b.take(60) || b.take(50) || !b.take(40) {
		t.Fatal("take: want 60 and 40 to fit 100, 50 after 60 not")
	}
	if !b.tight() {
		t.Fatal("a spent budget is not tight")
	}
	b.give(40)
	b.force(70) // held already: charged over the limit
	if b.used.Load() != 130 || b.take(1) {
		t.Fatalf("used %d after force; take must fail", b.used.Load())
	}
	b.give(130)

	// wait returns once another connection gives back, well before its
	// deadline, and fails at the deadline or at shutdown.
	var closing atomic.Bool
	b.force(100)
	go func() { time.Sleep(20 * time.Millisecond); b.give(100) }()
	start := time.Now()
	if !b.wait(50, start.Add(10*time.Second), &closing) {
		t.Fatal("wait: not granted after the give")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("wait took %s after a give at 20ms", took)
	}
	if b.wait(60, time.Now().Add(30*time.Millisecond), &closing) {
		t.Fatal("wait: granted 60 with 50 of 100 taken")
	}
	closing.Store(true)
	if b.wait(60, time.Now().Add(10*time.Second), &closing) {
		t.Fatal("wait: granted while closing")
	}
	if b.waiters.Load() != 0 {
		t.Fatalf("%d waiters left", b.waiters.Load())
	}
}

func TestOutputLimitExceeded(t *testing.T) {
	lim := OutputLimit{Hard: 1000, Soft: 100, SoftFor: time.Second}
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		unsent          int
		overSoft        time.Time
		total, maxTotal int64
		want            string
	}{
		{unsent: 50, want: ""},
		{unsent: 1001, want: "hard"},
		{unsent: 500, overSoft: now, want: ""},                              // over soft just now
		{unsent: 500, overSoft: now.Add(-999 * time.Millisecond), want: ""}, // not yet for SoftFor
		{unsent: 500, overSoft: now.Add(-time.Second), want: "soft"},
		{unsent: 500, overSoft: now, total: 2000, maxTotal: 1500, want: "total"},
		{unsent: 50, total: 2000, maxTotal: 1500, want: ""}, // under soft: never for the total
		{unsent: 500, overSoft: now, total: 2000, maxTotal: -1, want: ""},
	} {
		if got := lim.exceeded(tc.unsent, tc.overSoft, now, tc.total, tc.maxTotal); got != tc.want {
			t.Errorf("exceeded(%d, %v, total %d of %d) = %q, want %q", tc.unsent, now.Sub(tc.overSoft), tc.total, tc.maxTotal, got, tc.want)
		}
	}
	if got := (OutputLimit{}).exceeded(1<<40, now.Add(-time.Hour), now, 1<<40, 1); got != "" {
		t.Errorf("a zero limit closed: %q", got)
	}
}
