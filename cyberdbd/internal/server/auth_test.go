package server

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestPasswordCheck(t *testing.T) {
	p := NewPassword([]byte("s3cret"))
	for _, tc := range []struct {
		given string
		ok    bool
	}{
		{"s3cret", true},
		{"s3cre", false},
		{"s3cret\n", false},
		{"S3cret", false},
		{"", false},
	} {
		if got := p.Check(tc.given); got != tc.ok {
			t.Errorf("Check(%q) = %v, want %v", tc.given, got, tc.ok)
		}
	}
	p.Set([]byte("new"))
	if p.Check("s3cret") || !p.Check("new") {
		t.Error("Set did not replace the password")
	}
	if (&Password{}).Check("") || (&Password{}).Check("x") {
		t.Error("a Password never set admitted someone")
	}
	if NewPassword(nil).Check("") {
		t.Error("an empty password admitted an empty one")
	}
}

// fakeClock is a settable time.Now.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{t: time.Unix(1_000_000, 0)} }

// newTestThrottle allows 3 attempts at once, then one a second.
func newTestThrottle(c *fakeClock) *throttle {
	th := newThrottle(3, 1)
	th.now = c.now
	return th
}

func TestThrottleBurstThenRefill(t *testing.T) {
	clk := newFakeClock()
	th := newTestThrottle(clk)
	for i := range 3 {
		if ok, _ := th.take("10.0.0.1"); !ok {
			t.Fatalf("attempt %d refused within the burst", i+1)
		}
	}
	ok, wait := th.take("10.0.0.1")
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("4th attempt: ok=%v wait=%s, want refused with a wait of at most 1s", ok, wait)
	}
	if ok, _ := th.take("10.0.0.2"); !ok {
		t.Fatal("another address was throttled")
	}
	clk.add(time.Second)
	if ok, _ := th.take("10.0.0.1"); !ok {
		t.Fatal("no token after the refill interval")
	}
	if ok, _ := th.take("10.0.0.1"); ok {
		t.Fatal("more than one token after one refill interval")
	}
	clk.add(time.Hour)
	for i := range 3 {
		if ok, _ := th.take("10.0.0.1"); !ok {
			t.Fatalf("attempt %d refused after a long rest: the bucket must refill to the burst", i+1)
		}
	}
}

func TestThrottleSuccessGivesBack(t *testing.T) {
	th := newTestThrottle(newFakeClock())
	for i := range 100 {
		if ok, _ := th.take("10.0.0.1"); !ok {
			t.Fatalf("successful login %d throttled", i+1)
		}
		th.giveBack("10.0.0.1")
	}
}

// TestThrottleBoundedMemory: a table full of throttled addresses never
// throttles an address that has not failed (it used to share one small
// bucket among all of them: the right password was refused); the least
// recently used bucket makes room instead.
func TestThrottleBoundedMemory(t *testing.T) {
	clk := newFakeClock()
	th := newTestThrottle(clk)
	th.maxEntries = 10
	// Fill the table with throttled addresses, 10.0.0.0 used first.
	for i := range 10 {
		for range 3 {
			th.take(fmt.Sprintf("10.0.0.%d", i))
		}
		clk.add(time.Millisecond)
	}
	for i := range 20 {
		addr := fmt.Sprintf("10.0.1.%d", i)
		for k := range 3 {
			if ok, _ := th.take(addr); !ok {
				t.Fatalf("new address %d, attempt %d: throttled because other addresses failed", i, k+1)
			}
		}
		if len(th.buckets) > 10 || th.lru.Len() != len(th.buckets) {
			t.Fatalf("%d buckets (%d in the LRU list), want at most 10", len(th.buckets), th.lru.Len())
		}
	}
	// The evicted buckets are the oldest: the last 10 new addresses are
	// still throttled.
	if ok, _ := th.take("10.0.1.19"); ok {
		t.Fatal("the most recent failing address was forgotten")
	}
	if _, ok := th.buckets["10.0.0.0"]; ok {
		t.Fatal("the least recently used bucket was kept")
	}
	// A success that refills its bucket forgets it.
	th.take("10.0.2.1")
	th.giveBack("10.0.2.1")
	if _, ok := th.buckets["10.0.2.1"]; ok {
		t.Fatal("a full bucket is kept after a success")
	}
	th.giveBack("10.9.9.9") // unknown: nothing to do
	// Once they have refilled, buckets are forgotten as new ones come.
	clk.add(time.Minute)
	th.take("10.0.3.1")
	if len(th.buckets) != 1 {
		t.Fatalf("%d addresses tracked after all refilled, want 1", len(th.buckets))
	}
}

func TestThrottleKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2::9":      "2001:db8:1:2::/64",
		"::1":                  "::/64",
	} {
		if got := throttleKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("throttleKey(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestLogLimiter(t *testing.T) {
	l := logLimiter{perSecond: 2}
	t0 := time.Unix(1_000_000, 0)
	var logged int
	for range 10 {
		if ok, _ := l.allow(t0); ok {
			logged++
		}
	}
	if logged != 2 {
		t.Fatalf("logged %d lines in one second, want 2", logged)
	}
	ok, suppressed := l.allow(t0.Add(time.Second))
	if !ok || suppressed != 8 {
		t.Fatalf("next second: ok=%v suppressed=%d, want true and 8", ok, suppressed)
	}
}
