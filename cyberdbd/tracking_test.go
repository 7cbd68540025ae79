package main

// The cap of read-cache tracking with the real daemon (issue 16,
// --tracking-max-keys): a client reading many distinct keys keeps the
// daemon's registrations under the cap, and what the daemon forgets is
// invalidated in the client's cache first, so that no Get returns a value
// another process has since overwritten.

import (
	"context"
	"fmt"
	"testing"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

type trackingInfo struct {
	Keys    int64 `cbor:"tracking_keys"`
	Evicted int64 `cbor:"tracking_evicted"`
}

func TestTrackingMaxKeys(t *testing.T) {
	t.Parallel()
	for _, loops := range ioModels {
		t.Run(loops, func(t *testing.T) {
			t.Parallel()
			testTrackingMaxKeys(t, loops)
		})
	}
}

func testTrackingMaxKeys(t *testing.T, loops string) {
	const max, n = 1000, 5000
	d := daemontest.Start(t, "--tracking-max-keys=1000", "--metrics=127.0.0.1:0", loops)
	ctx := context.Background()
	admin := daemontest.DialHello(t, d.Socket)
	info := func() trackingInfo {
		var ti trackingInfo
		admin.MustCall(t, &ti, wire.OpInfo)
		return ti
	}
	var got [][]any
	admin.MustCall(t, &got, wire.OpConfigGet, "tracking-max-keys")
	if len(got) != 1 || got[0][1] != "1000" || got[0][2] != true {
		t.Fatalf("config_get tracking-max-keys: %v", got)
	}

	reader := daemontest.Open(t, libcyberdb.Open, d.Socket)
	writer := daemontest.Open(t, libcyberdb.Open, d.Socket)
	w := libcyberdb.NewDict[string, int](writer, "t")
	daemontest.Must(t, writer.CreateDict(ctx, "t", nil))
	for lo := 0; lo < n; lo += 500 {
		m := map[string]int{}
		for i := lo; i < lo+500; i++ {
			m[fmt.Sprint("k", i)] = i
		}
		daemontest.Must(t, w.Update(ctx, m))
	}

	cached := libcyberdb.NewCachedDict[string, int](reader, "t")
	for i := range n {
		v, err := cached.Get(ctx, fmt.Sprint("k", i))
		if err != nil || v != i {
			t.Fatalf("Get k%d: %v %v", i, v, err)
		}
	}
	ti := info()
	st := reader.Stats()
	t.Logf("%d keys read: daemon tracks %d, evicted %d; client caches %d, invalidations %d",
		n, ti.Keys, ti.Evicted, st.CacheEntries, st.CacheInvalidations)
	if ti.Keys > max || ti.Keys == 0 {
		t.Errorf("info tracking_keys = %d, want 1 to %d", ti.Keys, max)
	}
	if ti.Evicted < n-max {
		t.Errorf("info tracking_evicted = %d, want at least %d", ti.Evicted, n-max)
	}
	// An eviction's invalidation is queued before the reply to the read
	// that caused it: once the reads are answered, the client has them.
	// (CacheInvalidations counts pushes: one eviction round sends one
	// for several keys.)
	if st.CacheEntries > int(ti.Keys) || st.CacheInvalidations == 0 {
		t.Errorf("the client caches %d keys (the daemon tracks %d) after %d invalidations", st.CacheEntries, ti.Keys, st.CacheInvalidations)
	}
	scrapeTracking(t, d, ti)

	// Another process overwrites every key. Once its writes are
	// answered, one round trip on the tracking connection (a Get of a
	// key never read) brings every invalidation queued before: no Get
	// may then return an old value, evicted registration or not.
	overwrite := func(round int) {
		for lo := 0; lo < n; lo += 500 {
			m := map[string]int{}
			for i := lo; i < lo+500; i++ {
				m[fmt.Sprint("k", i)] = round*n + i
			}
			daemontest.Must(t, w.Update(ctx, m))
		}
		if _, err := cached.Get(ctx, fmt.Sprint("sync", round)); err == nil {
			t.Fatal("sync key found")
		}
		stale := 0
		for i := range n {
			v, err := cached.Get(ctx, fmt.Sprint("k", i))
			if err != nil {
				t.Fatalf("Get k%d: %v", i, err)
			}
			if v != round*n+i {
				stale++
				if stale < 5 {
					t.Errorf("round %d: Get k%d = %d, want %d (stale)", round, i, v, round*n+i)
				}
			}
		}
		if stale > 0 {
			t.Fatalf("round %d: %d stale values of %d", round, stale, n)
		}
	}
	overwrite(1)
	if ti := info(); ti.Keys > max {
		t.Errorf("after reading again: info tracking_keys = %d, over %d", ti.Keys, max)
	}

	// A lower cap, live: the excess is forgotten (and invalidated) by
	// the time config_set is answered.
	admin.MustCall(t, nil, wire.OpConfigSet, "tracking-max-keys", "100")
	if ti := info(); ti.Keys > 100 {
		t.Errorf("after config_set tracking-max-keys 100: info tracking_keys = %d", ti.Keys)
	}
	overwrite(2)
	if ti := info(); ti.Keys > 100 {
		t.Errorf("cap 100: info tracking_keys = %d", ti.Keys)
	}
	if _, err := admin.Call(wire.OpConfigSet, "tracking-max-keys", "-1"); err == nil {
		t.Error("config_set tracking-max-keys -1: accepted")
	}
	// 0 lifts the cap: every key read stays registered.
	admin.MustCall(t, nil, wire.OpConfigSet, "tracking-max-keys", "0")
	evicted := info().Evicted
	overwrite(3)
	if ti := info(); ti.Keys < n || ti.Evicted != evicted {
		t.Errorf("no cap: info tracking_keys = %d (want at least %d), evicted %d -> %d", ti.Keys, n, evicted, ti.Evicted)
	}
}

// scrapeTracking checks that the Prometheus endpoint exports what info
// said (nothing read or written since).
func scrapeTracking(t *testing.T, d *daemontest.Daemon, want trackingInfo) {
	t.Helper()
	value := scrapeMetrics(t, metricsAddr(t, d))
	if k, e := value("cyberdb_tracking_keys", ""), value("cyberdb_tracking_evicted_total", ""); k != float64(want.Keys) || e != float64(want.Evicted) {
		t.Errorf("metrics: tracking keys %v, evicted %v; info said %d, %d", k, e, want.Keys, want.Evicted)
	}
}
