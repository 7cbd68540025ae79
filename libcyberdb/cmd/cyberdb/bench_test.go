package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
)

// TestBench runs cyberdb bench in each of its modes against the real
// daemon and checks what it reports; it asserts no speed, only that every
// request was made and answered and that the output has the promised shape.
func TestBench(t *testing.T) {
	t.Parallel()
	c := newCLI(t)

	out, errs, code := c.run("bench", "-q", "-n", "300", "-c", "4", "-P", "3", "-d", "16")
	if code != 0 {
		t.Fatalf("bench -q: exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(benchTests) {
		t.Fatalf("bench -q printed %d lines, want one per test:\n%s", len(lines), out)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, strings.ToUpper(benchTests[i])+": ") || !strings.Contains(l, "requests per second") {
			t.Fatalf("line %d: %q", i, l)
		}
	}
	// The run's tables are gone.
	c.ok("", "tables")

	for _, mode := range [][]string{
		{"--csv", "-t", "set,get", "-n", "400", "-c", "6", "-r", "50"},
		{"--csv", "-t", "set,get", "-n", "400", "-c", "6", "--processes", "3"},
		{"--csv", "-t", "get,incr", "-n", "400", "-c", "32", "--pooled"},
		{"--csv", "-t", "set,get", "-n", "400", "-c", "3", "-P", "7", "-k", "0"},
		{"--csv", "-t", "set,get", "-n", "400", "-c", "3", "-P", "7", "--sequential", "--keep"},
	} {
		out, errs, code := c.run(append([]string{"bench"}, mode...)...)
		if code != 0 {
			t.Fatalf("bench %v: exit %d: %s", mode, code, errs)
		}
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil || len(rows) != 3 {
			t.Fatalf("bench %v: csv %v:\n%s", mode, err, out)
		}
		if strings.Join(rows[0], ",") != "test,rps,avg_latency_ms,min_latency_ms,p50_latency_ms,p95_latency_ms,p99_latency_ms,max_latency_ms" {
			t.Fatalf("csv header %q", rows[0])
		}
		for _, r := range rows[1:] {
			var v [7]float64
			for i := range v {
				if v[i], err = strconv.ParseFloat(r[i+1], 64); err != nil || v[i] < 0 {
					t.Fatalf("row %v: column %d: %v", r, i+1, err)
				}
			}
			if v[0] <= 0 || !(v[2] <= v[3] && v[3] <= v[4] && v[4] <= v[5] && v[5] <= v[6]) {
				t.Fatalf("row %v: want rps > 0 and min <= p50 <= p95 <= p99 <= max", r)
			}
		}
	}
	// --keep kept the last run's tables, named on stderr: --sequential set
	// 400 distinct keys, key:000000000000 .. key:000000000399.
	out, _, _ = c.run("tables")
	m := regexp.MustCompile(`^\{"name":"(_cyberdb\.bench\.\d+\.dict)","kind":"dict","len":400\}\n\{"name":"_cyberdb\.bench\.\d+\.list","kind":"list","len":0\}\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("tables after --keep:\n%s", out)
	}
	c.ok("\"xxx\"\n", "get", m[1], "key:000000000399")
	c.fails(2, "unknown test", "bench", "-t", "hset")
	c.fails(2, "--processes", "bench", "-c", "2", "--processes", "3")
	c.fails(2, "-k is 1", "bench", "-k", "2")
	c.fails(2, "leave one out", "bench", "-k", "0", "--pooled")
	c.fails(2, "argument", "bench", "-h") // -h is the host, as in redis-benchmark: it needs a value
	if out, _, code := c.run("bench", "--help"); code != 0 || !strings.Contains(out, "-h, --host HOST") {
		t.Fatalf("bench --help: exit %d\n%s", code, out)
	}
}

// TestBenchTCP runs bench against a daemon's TLS listener named with
// redis-benchmark's -h and -p, the trust and the password given by the
// global flags, in one process and in two (whose workers get the same
// flags).
func TestBenchTCP(t *testing.T) {
	t.Parallel()
	p := daemontest.NewPKI(t)
	pw := daemontest.WriteSecret(t, filepath.Join(p.Dir, "password"), "s3cret")
	d := daemontest.Start(t, "--tcp=127.0.0.1:0", "--tls-cert="+p.CertFile, "--tls-key="+p.KeyFile, "--password-file="+pw)
	host, port, err := net.SplitHostPort(d.TCPAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, bin: buildCLI(t), socket: d.Socket}
	for _, extra := range [][]string{nil, {"--processes", "2"}, {"--pooled"}} {
		args := append([]string{"--tls-fingerprint", p.ServerFingerprint, "--password-file", pw, "bench", "-h", host, "-p", port,
			"-q", "-n", "200", "-c", "2", "-t", "ping,set,get"}, extra...)
		cmd := exec.Command(c.bin, args...)
		cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Count(string(out), "requests per second") != 3 {
			t.Fatalf("bench %v: %v\n%s", extra, err, out)
		}
	}
	c.ok("", "tables")
}

// TestBenchLoop: -l runs the tests until Ctrl-C (SIGINT), then drops its
// tables and exits 0, in one process and with workers.
func TestBenchLoop(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	for _, extra := range [][]string{nil, {"--processes", "2"}} {
		cmd := exec.Command(c.bin, append([]string{"-s", c.socket, "bench", "-l", "-q", "-t", "ping,set", "-n", "2000", "-c", "2"}, extra...)...)
		cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		var lines []string
		for len(lines) < 5 && sc.Scan() { // more lines than tests: it loops
			lines = append(lines, sc.Text())
		}
		if len(lines) < 5 {
			t.Fatalf("bench -l %v printed %q, then ended: %s", extra, lines, stderr.String())
		}
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		go io.Copy(io.Discard, stdout)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("bench -l %v after SIGINT: %v\n%s", extra, err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("bench -l %v did not stop after SIGINT", extra)
		}
		c.ok("", "tables")
	}
}

func TestHistogramQuantiles(t *testing.T) {
	r := &benchResult{Hist: make([]uint64, histBuckets)}
	for v := int64(1); v <= 1000; v++ {
		r.Hist[bucketOf(v*1000)]++ // 1µs .. 1ms
		r.Count++
	}
	r.Start, r.End = 0, 1e9
	rps, _, lo, p50, _, p99, hi := r.stats()
	near := func(got, want float64) bool { return got > want*0.97 && got < want*1.03 }
	if rps != 1000 || !near(lo, 0.001) || !near(p50, 0.5) || !near(p99, 0.99) || !near(hi, 1.0) {
		t.Fatalf("rps %v min %v p50 %v p99 %v max %v", rps, lo, p50, p99, hi)
	}
	for _, v := range []int64{0, 1, 127, 128, 1 << 20, 1 << 40} {
		b := bucketOf(v)
		if got := bucketValue(b); v >= 128 && (got < float64(v)*0.98 || got > float64(v)*1.02) {
			t.Fatalf("bucket of %d holds %v", v, got)
		}
	}
}

// TestBenchDrivers runs both ways of driving raw connections (the event
// loop runConns uses on Linux, and a goroutine per connection) against the
// real daemon: every request is answered, pipelines split across reads
// included, and a daemon that dies mid-run gives errors, not a hang.
func TestBenchDrivers(t *testing.T) {
	t.Parallel()
	d := daemontest.Start(t)
	ctx := context.Background()
	cfg := &benchConfig{addr: d.Socket, clients: 5, size: 64 << 10, pipeline: 9, keyspace: 100, next: new(atomic.Int64), keepAlive: true}
	cfg.dict, cfg.list = benchTables("drivers")
	if err := benchSetup(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	dial := func() []*benchConn {
		conns := make([]*benchConn, cfg.clients)
		for i := range conns {
			bc, err := dialBench(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			conns[i] = bc
		}
		return conns
	}
	val := strings.Repeat("v", cfg.size) // 9 x 64 KiB per pipeline: more than a socket buffer
	for name, drive := range map[string]func([]*benchConn, string, *benchConfig, *atomic.Int64, string) ([]uint64, int64, int64, string){
		"runConns": runConns, "goroutines": runConnsGoroutines,
	} {
		for _, test := range []string{"set", "get", "ping"} {
			var remaining atomic.Int64
			remaining.Store(1000)
			h, n, errs, first := drive(dial(), test, cfg, &remaining, val)
			var sum uint64
			for _, v := range h {
				sum += v
			}
			if n != 1000 || errs != 0 || sum != 1000 {
				t.Fatalf("%s %s: %d answered, %d in the histogram, %d errors (%s); want 1000, 1000, 0", name, test, n, sum, errs, first)
			}
		}
	}

	// The daemon dies during a run: the drivers report errors and return.
	conns := dial()
	var remaining atomic.Int64
	remaining.Store(1 << 40)
	done := make(chan int64, 1)
	go func() {
		_, _, errs, _ := runConns(conns, "ping", cfg, &remaining, val)
		done <- errs
	}()
	time.Sleep(100 * time.Millisecond)
	d.Kill(t)
	select {
	case errs := <-done:
		if errs == 0 {
			t.Fatal("the daemon was killed and the run reported no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("runConns hangs after the daemon died")
	}
}
