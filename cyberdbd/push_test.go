package main

// Server push with the real daemon (issue 16): a subscriber that stops
// reading cannot make the daemon's memory grow without bound.

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// TestSlowSubscriberMemory: a connection subscribed to a channel, watching
// a table and tracking reads stops reading while 256 MiB of messages and
// changes are pushed at it. The daemon's RSS must grow by less than
// 64 MiB (the push queue is bounded by --max-push-buffer, 1 MiB by
// default), the subscriptions are dropped with "lost" pushes, and the
// connection still answers requests. Set CYBERDB_PUSH_BUFFER=1GiB to see
// the test fail without the bound.
func TestSlowSubscriberMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 256 MiB at a client (-short)")
	}
	args := []string{}
	if b := os.Getenv("CYBERDB_PUSH_BUFFER"); b != "" {
		args = append(args, "--max-push-buffer="+b)
	}
	d := daemontest.Start(t, args...)
	sub := daemontest.Dial(t, d.Socket)
	sub.MustCall(t, nil, wire.OpHello, 1, map[string]any{"push": true})
	if uc, ok := sub.NetConn().(interface{ SetReadBuffer(int) error }); ok {
		_ = uc.SetReadBuffer(4 << 10)
	}
	pub := daemontest.DialHello(t, d.Socket)
	pub.MustCall(t, nil, wire.OpCreateDict, "hot")
	sub.MustCall(t, nil, wire.OpSubscribe, "firehose")
	sub.MustCall(t, nil, wire.OpWatch, "hot", map[string]any{"values": true})
	sub.MustCall(t, nil, wire.OpTracking, true)
	sub.MustCall(t, nil, wire.OpDGet, "hot", "k", nil)

	before := rss(t, d)
	msg := strings.Repeat("m", 4096)
	total := 256 << 20
	if daemontest.Race {
		total = 64 << 20 // a -race daemon is several times slower
	}
	start := time.Now()
	var frames []byte
	for sent := 0; sent < total; {
		frames = frames[:0]
		n := 0
		for ; n < 64; n++ {
			if n%2 == 0 {
				frames, _ = wire.AppendRequest(frames, uint64(n+1), wire.OpPublish, "firehose", msg)
			} else {
				frames, _ = wire.AppendRequest(frames, uint64(n+1), wire.OpDSet, "hot", "k", msg)
			}
			sent += len(msg)
		}
		_ = pub.NetConn().SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := pub.NetConn().Write(frames); err != nil {
			t.Fatal(err)
		}
		for range n {
			if r, err := pub.Read(); err != nil || r.Err != nil {
				t.Fatalf("publisher: %v %v", err, r.Err)
			}
		}
		// The subscriber re-registers its key now and then (its reads are
		// answered though it reads no pushes: it never reads at all here,
		// so the request just waits in its socket).
	}
	after := rss(t, d)
	var info map[string]any
	pub.MustCall(t, &info, wire.OpInfo)
	t.Logf("pushed %d MiB at a subscriber that does not read in %v: RSS %d MiB before, %d MiB after; pushed %v, push_lost %v",
		total>>20, time.Since(start).Round(time.Millisecond), before/mib, after/mib, info["pushed"], info["push_lost"])
	if grow := after - before; grow > 64*mib {
		t.Errorf("the daemon grew by %d MiB for a subscriber that does not read (bound: 64 MiB)", grow/mib)
	}
	if n, _ := info["push_lost"].(uint64); n == 0 {
		t.Errorf("no push was lost: the subscriber read everything?")
	}
	// The subscriber reads again: the pushes that fit, the lost notices,
	// then the reply to its ping. Its connection was not closed.
	id, err := sub.Send(wire.OpPing)
	if err != nil {
		t.Fatal(err)
	}
	lost := map[uint64]bool{}
	for {
		r, err := sub.Read()
		if err != nil {
			t.Fatalf("the subscriber's connection: %v (lost notices so far: %v)", err, lost)
		}
		if r.ID == id {
			break
		}
		var p map[string]any
		if r.ID != 0 || wire.Unmarshal(r.Result, &p) != nil {
			t.Fatalf("unexpected frame %+v", r)
		}
		if p["push"] == "lost" {
			lost[p["sub"].(uint64)] = true
		}
	}
	// The channel's (1) and the watch's (2); tracking (3) got its one
	// invalidation of "k", which fit: a key is invalidated once per read.
	if len(lost) != 2 || !lost[1] || !lost[2] {
		t.Errorf("lost notices for subscriptions %v, want the channel's (1) and the watch's (2)", lost)
	}
	t.Logf("read back in %v", time.Since(start).Round(time.Millisecond))
}

// TestPushLatency measures, with the real daemon, the time from a write's
// acknowledgement (its reply read by the writer) to the invalidation of
// the key (read-cache tracking) and to the watch event arriving in 8
// other processes (issue 16's goal: p99 under 1 ms on an idle machine).
// It logs the figures and asserts only a generous bound (p99 < 50 ms),
// robust on a loaded machine. Each helper process (this test binary, in
// TestPushLatencyHelper) tracks the key and watches the table; the k-th
// invalidation it receives follows the write of the value it read last
// plus one, and each event carries the value written: both pair exactly
// with the writer's rounds.
func TestPushLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 8 processes (-short)")
	}
	const procs, rounds = 8, 300
	d := daemontest.Start(t)
	w := daemontest.DialHello(t, d.Socket)
	w.MustCall(t, nil, wire.OpCreateDict, "lat")
	w.MustCall(t, nil, wire.OpDSet, "lat", "k", 0)
	var helpers []*exec.Cmd
	var outs []*daemontest.Buffer
	for range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPushLatencyHelper$")
		cmd.Env = append(os.Environ(), "CYBERDBD_TEST_LATENCY="+d.Socket)
		out := &daemontest.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		helpers, outs = append(helpers, cmd), append(outs, out)
	}
	t.Cleanup(func() {
		for _, h := range helpers {
			_ = h.Process.Kill()
			_ = h.Wait()
		}
	})
	for i, o := range outs {
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(o.String(), "READY") {
			if time.Now().After(deadline) {
				t.Fatalf("helper %d did not start:\n%s", i, o.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	acks := make([]int64, rounds+1)
	for r := 1; r <= rounds; r++ {
		w.MustCall(t, nil, wire.OpDSet, "lat", "k", r)
		acks[r] = time.Now().UnixNano()
		time.Sleep(3 * time.Millisecond) // the helpers read the key again meanwhile
	}
	time.Sleep(200 * time.Millisecond)
	var inv, ev []time.Duration
	for i, h := range helpers {
		_ = h.Process.Signal(os.Interrupt)
		_ = h.Wait()
		for _, line := range strings.Split(outs[i].String(), "\n") {
			var kind string
			var r int
			var at int64
			if n, _ := fmt.Sscanf(line, "%s %d %d", &kind, &r, &at); n != 3 || r < 1 || r > rounds {
				continue
			}
			lat := time.Duration(at - acks[r])
			if kind == "INV" {
				inv = append(inv, lat)
			} else if kind == "EV" {
				ev = append(ev, lat)
			}
		}
	}
	report := func(what string, l []time.Duration) time.Duration {
		if len(l) < procs*rounds/2 {
			t.Fatalf("%s: only %d of %d arrivals paired", what, len(l), procs*rounds)
		}
		slices.Sort(l)
		p := func(q float64) time.Duration { return l[int(q*float64(len(l)-1))] }
		t.Logf("write ack -> %s in %d processes: %d arrivals, p50 %v, p99 %v, max %v (negative: before the writer read its reply)",
			what, procs, len(l), p(0.5), p(0.99), l[len(l)-1])
		return p(0.99)
	}
	bound := 50 * time.Millisecond
	if daemontest.Race {
		bound = 500 * time.Millisecond // a -race daemon, on a loaded machine
	}
	if p99 := report("invalidation", inv); p99 > bound {
		t.Errorf("invalidation p99 %v (bound %v on a loaded machine)", p99, bound)
	}
	if p99 := report("watch event", ev); p99 > bound {
		t.Errorf("watch event p99 %v (bound %v on a loaded machine)", p99, bound)
	}
}

// TestPushLatencyHelper is a process of TestPushLatency: it tracks key k
// of table lat and watches lat, printing "INV r t" for the invalidation
// of the write of value r and "EV r t" for its event (t: unix ns).
func TestPushLatencyHelper(t *testing.T) {
	socket := os.Getenv("CYBERDBD_TEST_LATENCY")
	if socket == "" {
		t.Skip("a process of TestPushLatency")
	}
	c := daemontest.Dial(t, socket)
	c.MustCall(t, nil, wire.OpHello, 1, map[string]any{"push": true})
	c.MustCall(t, nil, wire.OpTracking, true)
	c.MustCall(t, nil, wire.OpWatch, "lat", map[string]any{"values": true})
	var last int
	c.MustCall(t, &last, wire.OpDGet, "lat", "k")
	fmt.Println("READY")
	var readID uint64
	for {
		r, err := c.Read()
		now := time.Now().UnixNano()
		if err != nil {
			return
		}
		if r.ID != 0 {
			if r.ID == readID && r.Err == nil {
				_ = wire.Unmarshal(r.Result, &last)
			}
			continue
		}
		var p struct {
			Push  string `cbor:"push"`
			Value int    `cbor:"value"`
		}
		if wire.Unmarshal(r.Result, &p) != nil {
			continue
		}
		switch p.Push {
		case "invalidate":
			fmt.Printf("INV %d %d\n", last+1, now)
			if readID, err = c.Send(wire.OpDGet, "lat", "k"); err != nil { // register again
				return
			}
		case "event":
			fmt.Printf("EV %d %d\n", p.Value, now)
		}
	}
}
