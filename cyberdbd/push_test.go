package main

// Server push with the real daemon (issue 16): a subscriber that stops
// reading cannot make the daemon's memory grow without bound.

import (
	"os"
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
	const total = 256 << 20
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
	t.Logf("pushed 256 MiB at a subscriber that does not read in %v: RSS %d MiB before, %d MiB after; pushed %v, push_lost %v",
		time.Since(start).Round(time.Millisecond), before/mib, after/mib, info["pushed"], info["push_lost"])
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
