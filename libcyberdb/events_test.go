package libcyberdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

func TestSubscribePublish(t *testing.T) {
	_, c := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan Message, 10)
	ready := make(chan struct{})
	go func() {
		defer close(got)
		first := true
		for m, err := range c.PSubscribe(ctx, "news.*") {
			if err != nil {
				return
			}
			if first {
				first = false
			}
			got <- m
		}
	}()
	go func() {
		// Wait until the subscription is live: publish until one receives.
		for {
			n, err := c.Publish(ctx, "news.probe", "probe")
			if err != nil || n > 0 {
				close(ready)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	<-ready
	n, err := c.Publish(ctx, "news.sport", map[string]any{"score": 3})
	if err != nil || n != 1 {
		t.Fatalf("Publish = %d, %v; want 1 receiver", n, err)
	}
	for m := range got {
		if m.Channel == "news.probe" {
			continue
		}
		var v map[string]int
		if m.Channel != "news.sport" || m.Pattern != "news.*" || m.Decode(&v) != nil || v["score"] != 3 {
			t.Fatalf("message %+v", m)
		}
		break
	}
	cancel()
	for range got {
	}
}

// TestSubscribeLost: a consumer that stops reading gets ErrLost, then
// messages again.
func TestSubscribeLost(t *testing.T) {
	d := startWith(t, "--max-push-buffer=64KiB")
	c := open(t, d.Socket)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type item struct {
		m   Message
		err error
	}
	items := make(chan item)
	go func() {
		defer close(items)
		for m, err := range c.Subscribe(ctx, "firehose") {
			select {
			case items <- item{m, err}: // the test reads only when it wants: a slow consumer
			case <-ctx.Done():
				return
			}
		}
	}()
	for { // live?
		if n, _ := c.Publish(ctx, "firehose", "probe"); n == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	big := make([]byte, 4096)
	for i := 0; i < 3*subBuffer; i++ { // past what the iterator buffers
		if _, err := c.Publish(ctx, "firehose", big); err != nil {
			t.Fatal(err)
		}
	}
	for it := range items {
		if errors.Is(it.err, ErrLost) {
			break
		}
		if it.err != nil {
			t.Fatal(it.err)
		}
	}
	// Subscribed again: a new message arrives.
	go func() {
		for ctx.Err() == nil {
			_, _ = c.Publish(ctx, "firehose", "after")
			time.Sleep(10 * time.Millisecond)
		}
	}()
	for it := range items {
		if it.err != nil && !errors.Is(it.err, ErrLost) {
			t.Fatal(it.err)
		}
		if s, _ := it.m.Text(); s == "after" {
			cancel()
			break
		}
	}
	for range items {
	}
}

func TestWatch(t *testing.T) {
	_, c := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := NewDict[string, int](c, "w")
	must(t, c.CreateDict(ctx, "w", nil))
	events := make(chan Event[string, int], 100)
	go func() {
		defer close(events)
		for ev, err := range d.Watch(ctx, WatchValues()) {
			if err != nil {
				return
			}
			events <- ev
		}
	}()
	// The watch is live once a change shows up.
	var first Event[string, int]
	for first.Op == "" {
		must(t, d.Set(ctx, "probe", 1))
		select {
		case first = <-events:
		case <-time.After(20 * time.Millisecond):
		}
	}
	for len(events) > 0 {
		<-events
	}
	must(t, d.Set(ctx, "a", 1))
	if _, err := d.Incr(ctx, "a", 41); err != nil {
		t.Fatal(err)
	}
	must(t, d.Delete(ctx, "a"))
	var got []string
	for range 3 {
		ev := <-events
		got = append(got, fmt.Sprint(ev.Op, " ", ev.Key, " ", ev.Value, " ", ev.HasValue))
	}
	if fmt.Sprint(got) != "[dset a 1 true dincr a 42 true ddel a 0 false]" {
		t.Fatalf("events %q", got)
	}
	cancel()
	for range events {
	}
}

// TestWatchResync: the daemon restarts; the watch comes back with a
// Resynced marker holding the table as re-read.
func TestWatchResync(t *testing.T) {
	d := startWith(t, "--data-dir="+t.TempDir())
	c := open(t, d.Socket)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dict := NewDict[string, int](c, "r")
	must(t, c.CreateDict(ctx, "r", nil))
	events := make(chan Event[string, int], 100)
	go func() {
		defer close(events)
		for ev, err := range dict.Watch(ctx, WatchResync()) {
			if err != nil {
				return
			}
			events <- ev
		}
	}()
	for {
		must(t, dict.Set(ctx, "x", 1))
		select {
		case <-events:
		case <-time.After(20 * time.Millisecond):
			continue
		}
		break
	}
	must(t, c.Save(ctx))
	d.Kill(t)
	d.Restart(t)
	must(t, dict.Set(ctx, "y", 2))
	for {
		select {
		case ev := <-events:
			if ev.Resynced {
				if ev.Snapshot["x"] != 1 {
					t.Fatalf("snapshot %v", ev.Snapshot)
				}
				cancel()
				for range events {
				}
				return
			}
		case <-ctx.Done():
			t.Fatal("no Resynced marker after a restart")
		}
	}
}

// TestCachedGet: hits, own writes, another client's writes.
func TestCachedGet(t *testing.T) {
	d, c := start(t)
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "flags", nil))
	raw := NewDict[string, string](c, "flags")
	must(t, raw.Set(ctx, "mode", "a"))
	cd := NewCachedDict[string, string](c, "flags")
	for i := range 3 {
		v, err := cd.Get(ctx, "mode")
		if err != nil || v != "a" {
			t.Fatalf("get %d: %q %v", i, v, err)
		}
	}
	if st := c.Stats(); st.CacheHits != 2 || st.CacheMisses != 1 || st.CacheEntries != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Our own write: never an older value once acknowledged.
	must(t, cd.Set(ctx, "mode", "b"))
	if v, _ := cd.Get(ctx, "mode"); v != "b" {
		t.Fatalf("after our own write: %q", v)
	}
	// Another process's write: invalidated by the daemon.
	other := open(t, d.Socket)
	must(t, NewDict[string, string](other, "flags").Set(ctx, "mode", "c"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, err := cd.Get(ctx, "mode")
		if err != nil {
			t.Fatal(err)
		}
		if v == "c" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %q 5s after another client's write", v)
		}
		time.Sleep(time.Millisecond)
	}
	if c.Stats().CacheInvalidations == 0 {
		t.Fatal("no invalidation counted")
	}
	if _, err := cd.Get(ctx, "absent"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent key: %v", err)
	}
	// The connection is lost (daemon restart): the cache is emptied.
	d.Kill(t)
	d.Restart(t)
	_ = c.CreateDict(ctx, "flags", nil) // (kept if the daemon has a data dir)
	must(t, raw.Set(ctx, "mode", "z"))
	if v, err := cd.Get(ctx, "mode"); err != nil || v != "z" {
		t.Fatalf("after a restart: %q %v", v, err)
	}
}

// TestCachedGetAfterBatch: a batch invalidates what its writes name, as
// the calls alone would: a batch on another table, one that only reads,
// and a guard of the cached key leave the cache as it was; a batch that
// writes the cached key (or clears, drops its table) is read back at
// once. Any batch used to empty the whole cache: a web worker that ran a
// batch per request got almost no hits.
func TestCachedGetAfterBatch(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "flags", nil))
	must(t, c.CreateDict(ctx, "other", nil))
	cd := NewCachedDict[string, string](c, "flags")
	must(t, cd.Set(ctx, "mode", "a"))
	must(t, cd.Set(ctx, "color", "red"))
	other := NewDict[string, int](c, "other")
	hit := func(what, key, want string) {
		t.Helper()
		before := c.Stats()
		v, err := cd.Get(ctx, key)
		if err != nil || v != want {
			t.Fatalf("after %s: Get %s = %q, %v; want %q", what, key, v, err, want)
		}
		if c.Stats().CacheMisses != before.CacheMisses {
			t.Errorf("after %s: Get %s was a miss", what, key)
		}
	}
	miss := func(what, key, want string) {
		t.Helper()
		before := c.Stats()
		v, err := cd.Get(ctx, key)
		if err != nil || v != want {
			t.Fatalf("after %s: Get %s = %q, %v; want %q", what, key, v, err, want)
		}
		if c.Stats().CacheMisses == before.CacheMisses {
			t.Errorf("after %s: Get %s was a hit: the batch's write did not invalidate it", what, key)
		}
	}
	_, _ = cd.Get(ctx, "mode")
	_, _ = cd.Get(ctx, "color")

	b := c.Batch()
	other.In(b).Set("x", 1)
	other.In(b).Incr("y", 2)
	must(t, b.Exec(ctx))
	hit("a batch on another table", "mode", "a")

	b = c.Batch()
	raw := NewDict[string, string](c, "flags")
	raw.In(b).GuardEq("mode", "a")
	raw.In(b).Get("color")
	other.In(b).Set("x", 3)
	must(t, b.Exec(ctx))
	hit("a batch guarding and reading the cached table", "mode", "a")
	hit("a batch guarding and reading the cached table", "color", "red")

	b = c.Batch()
	other.In(b).Set("x", 4)
	raw.In(b).Set("mode", "b")
	must(t, b.Exec(ctx))
	miss("a batch setting the key", "mode", "b")
	hit("a batch setting another key", "color", "red")

	b = c.Batch()
	raw.In(b).Clear()
	must(t, b.Exec(ctx))
	if _, err := cd.Get(ctx, "color"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after a batch clearing the table: Get color: %v, want ErrNotFound", err)
	}
}

// TestCacheCrossingRace: a read's reply and an invalidation of its key
// cross: the reply comes (the value it read is old by then), the
// invalidation follows before the cache stores the value. The value is
// returned but not stored, so the next Get reads the new one. Without the
// rule (an in-flight read poisoned by an invalidation), the stale value
// is cached until the key changes again.
func TestCacheCrossingRace(t *testing.T) {
	d, c := start(t)
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "t", nil))
	other := open(t, d.Socket)
	od := NewDict[string, string](other, "t")
	must(t, od.Set(ctx, "k", "old"))
	cd := NewCachedDict[string, string](c, "t")
	var once sync.Once
	testHookBeforeStore = func(table, key string) {
		once.Do(func() {
			// The read of "old" is answered; now another client writes,
			// and the daemon pushes the invalidation, which the tracking
			// connection's reader handles before we store.
			inv := c.Stats().CacheInvalidations
			must(t, od.Set(ctx, "k", "new"))
			for c.Stats().CacheInvalidations == inv {
				time.Sleep(100 * time.Microsecond)
			}
		})
	}
	defer func() { testHookBeforeStore = nil }()
	if v, err := cd.Get(ctx, "k"); err != nil || v != "old" {
		t.Fatalf("first Get: %q %v", v, err)
	}
	if v, err := cd.Get(ctx, "k"); err != nil || v != "new" {
		t.Fatalf("second Get: %q %v: a stale value was cached across the invalidation", v, err)
	}
}

// TestCacheBounds: the cache holds at most its entries.
func TestCacheBounds(t *testing.T) {
	_, c := start(t, WithCache(10, 0))
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "b", nil))
	cd := NewCachedDict[int, int](c, "b")
	for i := range 100 {
		must(t, cd.Set(ctx, i, i))
		if v, err := cd.Get(ctx, i); err != nil || v != i {
			t.Fatal(v, err)
		}
	}
	if st := c.Stats(); st.CacheEntries > 10 || st.CacheEvictions == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// startWith runs a fresh daemon with flags.
func startWith(t *testing.T, flags ...string) *daemontest.Daemon {
	t.Helper()
	return daemontest.Start(t, flags...)
}

// TestSubscribeKeepsMessages: messages are copied out of the reader's
// buffer into shared blocks (pushStream.keep); a message the consumer
// keeps must stay intact while later ones, small and large, arrive.
func TestSubscribeKeepsMessages(t *testing.T) {
	_, c := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 3000
	msg := func(i int) string { return strings.Repeat(string(rune('a'+i%26)), i%37+i%5*900) }
	kept := make(chan []Message, 1)
	go func() {
		var ms []Message
		for m, err := range c.Subscribe(ctx, "keep") {
			if err != nil {
				break
			}
			if m.Channel != "keep" {
				continue
			}
			ms = append(ms, m)
			if len(ms) == n+1 {
				break
			}
		}
		kept <- ms
	}()
	for { // until the subscription is live
		k, err := c.Publish(ctx, "keep", "probe")
		if err != nil {
			t.Fatal(err)
		}
		if k == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range n {
		if _, err := c.Publish(ctx, "keep", msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	ms := <-kept
	// The one probe that reached the subscription, then ours.
	if len(ms) != n+1 {
		t.Fatalf("got %d messages, want %d", len(ms), n+1)
	}
	for i, m := range ms[1:] {
		if s, ok := m.Text(); !ok || s != msg(i) {
			t.Fatalf("message %d: got %d bytes (%.10q...), want %d bytes of %q", i, len(s), s, len(msg(i)), msg(i)[:1])
		}
	}
}

// TestCachedDictDecodeError: a stored value that does not fit V fails
// CachedDict.Get and GetOr as it fails Dict.Get, on a miss and on a hit:
// a *DecodeError naming the table and the key. They returned the
// library's bare message under a daemon's error code (found by a new
// user's trial: an admin's `cyberdb set config mode 2` without -S).
func TestCachedDictDecodeError(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "config", nil))
	must(t, NewDict[string, int](c, "config").Set(ctx, "mode", 2))
	_, want := NewDict[string, string](c, "config").Get(ctx, "mode")
	if !errors.Is(want, ErrDecode) {
		t.Fatalf("Dict.Get: %v, want ErrDecode", want)
	}
	cd := NewCachedDict[string, string](c, "config")
	for _, what := range []string{"a miss", "a hit"} {
		_, err := cd.Get(ctx, "mode")
		var de *DecodeError
		if !errors.As(err, &de) || !errors.Is(err, ErrDecode) {
			t.Fatalf("CachedDict.Get, %s: %v; want a *DecodeError", what, err)
		}
		if err.Error() != want.Error() {
			t.Errorf("CachedDict.Get, %s: %q; Dict.Get says %q", what, err, want)
		}
		if _, err := cd.GetOr(ctx, "mode", "off"); !errors.Is(err, ErrDecode) {
			t.Errorf("CachedDict.GetOr, %s: %v; want ErrDecode", what, err)
		}
	}
	if st := c.Stats(); st.CacheHits == 0 {
		t.Errorf("the value was never cached: %v", st)
	}
}

// TestWatchDecodeError: an event whose value does not fit V fails as
// Dict.Get does, with a *DecodeError naming the table and the key (it was
// the library's bare message), and the watch goes on.
func TestWatchDecodeError(t *testing.T) {
	_, c := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, c.CreateDict(ctx, "w", nil))
	d := NewDict[string, int](c, "w")
	other := NewDict[string, string](c, "w")
	type result struct {
		ev  Event[string, int]
		err error
	}
	results := make(chan result, 100)
	go func() {
		defer close(results)
		for ev, err := range d.Watch(ctx, WatchValues()) {
			results <- result{ev, err}
		}
	}()
	// The watch is live once a change shows up.
	for live := false; !live; {
		must(t, d.Set(ctx, "probe", 1))
		select {
		case <-results:
			live = true
		case <-time.After(20 * time.Millisecond):
		}
	}
	for len(results) > 0 {
		<-results
	}
	must(t, other.Set(ctx, "k", "text"))
	must(t, d.Set(ctx, "n", 7))
	r := <-results
	var de *DecodeError
	if !errors.As(r.err, &de) || de.Table != "w" || wire.Diagnose(de.Key) != `"k"` || de.KeyItself {
		t.Fatalf("event of a value that does not fit: %v (%#v); want a *DecodeError on table w, key \"k\"", r.err, de)
	}
	t.Logf("the error: %v", r.err)
	if r = <-results; r.err != nil || r.ev.Key != "n" || r.ev.Value != 7 {
		t.Fatalf("the next event: %+v, %v", r.ev, r.err)
	}
}

// TestMessageDecodeError: data that does not fit fails Message.Decode
// with a *DecodeError (it was the library's message under bad_request, a
// daemon's error code), naming the channel.
func TestMessageDecodeError(t *testing.T) {
	m := Message{Channel: "news", Data: wire.AppendText(nil, "text")}
	var n int
	err := m.Decode(&n)
	var de *DecodeError
	if !errors.As(err, &de) || !errors.Is(err, ErrDecode) || errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), `channel "news"`) {
		t.Fatalf("Decode into an int: %v", err)
	}
	var s string
	if err := m.Decode(&s); err != nil || s != "text" {
		t.Fatalf("Decode into a string: %q, %v", s, err)
	}
}

// TestCachedDictWithOnConnect: with WithOnConnect, the read cache's
// tracking connection is started by the on-connect call, before it is
// known to be a push connection. Its hooks are set as it is dialed: set
// afterwards, the connection read as an ordinary one until then, and
// then nobody read it (the tracking call waited its whole time-out, a
// new user's service saw it after daemon restarts). Fresh Clients, and
// one across a daemon kill and restart, read through the cache at once.
func TestCachedDictWithOnConnect(t *testing.T) {
	d, c := start(t)
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "config", nil))
	must(t, NewDict[string, string](c, "config").Set(ctx, "mode", "on"))
	var connects atomic.Int64
	opts := []Option{
		WithOnConnect(func(context.Context, *Conn) error { connects.Add(1); return nil }),
		WithTimeout(3 * time.Second), WithDialTimeout(10 * time.Second),
	}
	get := func(cd *CachedDict[string, string], what string) {
		t.Helper()
		for range 3 {
			if v, err := cd.Get(ctx, "mode"); err != nil || v != "on" {
				t.Fatalf("%s: Get = %q, %v", what, v, err)
			}
		}
	}
	for i := range 20 {
		oc := open(t, d.Socket, opts...)
		get(NewCachedDict[string, string](oc, "config"), fmt.Sprintf("client %d", i))
		oc.Close()
	}
	oc := open(t, d.Socket, opts...)
	cd := NewCachedDict[string, string](oc, "config")
	get(cd, "before the restart")
	for i := range 3 {
		d.Kill(t)
		d.Restart(t)
		_ = c.CreateDict(ctx, "config", nil) // (kept if the daemon has a data dir)
		must(t, NewDict[string, string](c, "config").Set(ctx, "mode", "on"))
		get(cd, fmt.Sprintf("after restart %d", i+1))
	}
	if connects.Load() == 0 {
		t.Fatal("the on-connect function never ran")
	}
}
