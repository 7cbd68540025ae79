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

func TestThrottleBoundedMemory(t *testing.T) {
	clk := newFakeClock()
	th := newTestThrottle(clk)
	th.maxEntries = 10
	// Fill the table with throttled addresses.
	for i := range 10 {
		for range 3 {
			th.take(fmt.Sprintf("10.0.0.%d", i))
		}
	}
	// New addresses share the overflow bucket: 3 attempts in all, not each.
	allowed := 0
	for i := range 20 {
		if ok, _ := th.take(fmt.Sprintf("10.0.1.%d", i)); ok {
			allowed++
		}
	}
	if allowed != 3 || len(th.buckets) != 10 {
		t.Fatalf("with a full table, %d new addresses got attempts (want 3, the overflow bucket's) and %d are tracked (want 10)", allowed, len(th.buckets))
	}
	// Once they have refilled, the entries are forgotten and new
	// addresses get buckets of their own again.
	clk.add(time.Minute)
	if ok, _ := th.take("10.0.2.1"); !ok {
		t.Fatal("a new address was throttled after the table refilled")
	}
	if len(th.buckets) != 1 {
		t.Fatalf("%d addresses tracked after the sweep, want 1", len(th.buckets))
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
