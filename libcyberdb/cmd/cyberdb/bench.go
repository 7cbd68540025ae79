package main

// cyberdb bench: a load generator with redis-benchmark's habits, so that
// the two can be run with the same parameters and compared one to one.
//
// Each client is one connection that writes -P requests, then reads their
// -P replies, like redis-benchmark's clients; latency is measured per
// request from the write of its pipeline to the read of its reply. On
// Linux one event loop drives all of a process's connections, as
// redis-benchmark's does (bench_loop_linux.go says why that matters);
// elsewhere each has a goroutine. With --pooled, the clients are instead goroutines
// sharing one libcyberdb.Client, which pipelines by itself: the number to
// compare with redis-benchmark -P, obtained with no effort from the caller.
// With --processes the clients are spread over that many OS processes
// (re-executions of this command), the multi-process case of a server
// with worker processes.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
	flag "github.com/spf13/pflag"
)

func init() {
	register(&command{name: "bench", group: groupBench, args: "[FLAGS]", summary: "measure throughput and latency, with redis-benchmark's flags and output", max: -1,
		ownFlags: true,
		help: `Runs each test (-t) with -c clients until -n requests are done, and prints
requests per second and latency (avg, min, p50, p95, p99, max) per test.
Its tables are its own: _cyberdb.bench.PID.dict and _cyberdb.bench.PID.list
(names starting with "_cyberdb." are reserved for cyberdb's tools: "cyberdb
create" refuses them), made for the run and dropped after it, also when it
fails or is interrupted (Ctrl-C); --keep keeps them.

Flags (as redis-benchmark's; -h is the host, as there: --help is the help):
  -h, --host HOST      a daemon's TCP listener on HOST (tcp://HOST:PORT, TLS
                       with the global --tls-ca/--tls-fingerprint and
                       --password-file, or their environment variables)
  -p, --port PORT      its port (default 9980; with -p alone, HOST is 127.0.0.1)
  -s, --socket PATH    the daemon's socket (or the global -s/--addr)
  -c N                 clients, each one connection (default 50)
  -n N                 requests per test, over all clients (default 100000)
  -d N                 value size in bytes for set and append (default 3)
  -P N                 pipeline N requests per client (default 1: none)
  -t LIST              tests, comma-separated: ping,set,get,incr,append,pop,
                       lpush,rpop,bpop (default all). lpush and rpop are
                       redis-benchmark's (appendleft, pop); bpop is a
                       blocking pop (lbpop, 1 s time-out) of the list that
                       is filled first, as for pop and rpop
  -r N                 keys are key:NNNNNNNNNNNN with NNN... random below N;
                       without -r every request uses the one key key:__rand_int__
  --sequential         keys are key:000000000000, key:000000000001, ... in
                       order, one per request (-r is ignored): loads -n
                       distinct keys, e.g. -t set -n 1000000 -d 32 -P 64
  --ttl DURATION       set gives each entry this TTL (e.g. 1h): measures what
                       deadlines cost against the same run without --ttl
  --processes N        spread the clients over N OS processes (default 1)
  --threads N          OS threads running each process's clients (default 1,
                       as redis-benchmark: the load generator then leaves
                       the other cores to the daemon; 0: all cores)
  --pooled             clients are goroutines sharing one libcyberdb.Client
                       (automatic pipelining) instead of one connection each
  -l, --loop           loop: run the tests again and again until Ctrl-C
  -k 1|0               1: keep each client's connection (default); 0: a new
                       connection (with its HELLO) for each request, or each
                       pipeline of -P requests
  -q                   quiet: one line per test
  --csv                CSV with redis-benchmark's columns
  --keep               keep the tables after the run (their names go to stderr),
                       e.g. to measure the memory of what -t set --sequential loaded

Examples:
  cyberdb bench -q
  cyberdb bench -s /run/cyberdb/cyberdb.sock -c 50 -n 200000 -t set,get --csv
  cyberdb bench -c 200 --processes 8 -t get -r 100000
  cyberdb bench --pooled -c 256 -t get -q
  cyberdb --tls-ca cert.pem --password-file pw bench -h db1.example.com -t get,set
  cyberdb bench -l -q -t get -k 0`,
		run: runBench})
}

// benchTests are the tests in the order they run (pop after append, so
// the list has something to pop).
var benchTests = []string{"ping", "set", "get", "incr", "append", "pop", "lpush", "rpop", "bpop"}

// listTests pop from the bench list: fillList fills it first.
var listTests = map[string]bool{"pop": true, "rpop": true, "bpop": true}

type benchConfig struct {
	addr      string
	clients   int
	requests  int
	size      int
	pipeline  int
	tests     []string
	keyspace  int
	processes int
	pooled    bool
	quiet     bool
	// sequential: request i uses key number i (next hands them out), to
	// load a known set of distinct keys.
	sequential bool
	next       *atomic.Int64
	threads    int // GOMAXPROCS of each process; 0 leaves Go's default
	csv        bool
	loop       bool   // -l: until interrupted
	keepAlive  bool   // -k 1
	keep       bool   // --keep: the tables stay
	tablesID   string // the run's tables are named after it (the parent's pid)
	dict, list string
	opts       []libcyberdb.Option // the global --tls-ca, --password-file, ...
	globalArgs []string            // the global flags, for the workers
	worker     bool                // internal: a child process of --processes
	ttlMS      int64               // --ttl: set gives each entry a deadline (ms); 0: none

	// stop, once set, ends the run at the next chance: active (the
	// budget of the test running in this process) is emptied, and no
	// test starts after.
	stop   atomic.Bool
	active atomic.Pointer[atomic.Int64]
}

// benchTables are the names of a run's tables: under the reserved
// prefix, with the process id, so two runs never share them and no user's
// table is one.
func benchTables(id string) (dict, list string) {
	return reservedPrefix + "bench." + id + ".dict", reservedPrefix + "bench." + id + ".list"
}

// interrupt stops the run as soon as it can.
func (cfg *benchConfig) interrupt() {
	cfg.stop.Store(true)
	if r := cfg.active.Load(); r != nil {
		r.Store(0)
	}
}

func parseBench(e *env, args []string) (*benchConfig, error) {
	fs := flag.NewFlagSet("cyberdb bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg := &benchConfig{addr: e.addr, opts: e.opts, globalArgs: e.globalArgs}
	socket := fs.StringP("socket", "s", "", "")
	addr := fs.String("addr", "", "")
	host := fs.StringP("host", "h", "", "")
	port := fs.IntP("port", "p", 0, "")
	help := fs.Bool("help", false, "")
	fs.BoolVarP(&cfg.loop, "loop", "l", false, "")
	keepAlive := fs.IntP("keepalive", "k", 1, "")
	fs.BoolVar(&cfg.keep, "keep", false, "")
	tablesID := fs.String("tables-id", strconv.Itoa(os.Getpid()), "")
	_ = fs.MarkHidden("tables-id")
	fs.IntVarP(&cfg.clients, "clients", "c", 50, "")
	fs.IntVarP(&cfg.requests, "requests", "n", 100000, "")
	fs.IntVarP(&cfg.size, "datasize", "d", 3, "")
	fs.IntVarP(&cfg.pipeline, "pipeline", "P", 1, "")
	tests := fs.StringP("tests", "t", strings.Join(benchTests, ","), "")
	fs.IntVarP(&cfg.keyspace, "keyspacelen", "r", 0, "")
	fs.IntVar(&cfg.processes, "processes", 1, "")
	ttl := fs.String("ttl", "", "")
	fs.IntVar(&cfg.threads, "threads", 1, "")
	fs.BoolVar(&cfg.pooled, "pooled", false, "")
	fs.BoolVar(&cfg.sequential, "sequential", false, "")
	fs.BoolVarP(&cfg.quiet, "quiet", "q", false, "")
	fs.BoolVar(&cfg.csv, "csv", false, "")
	fs.BoolVar(&cfg.worker, "worker", false, "")
	_ = fs.MarkHidden("worker")
	if err := fs.Parse(args); err != nil {
		return nil, usagef("%v", err)
	}
	if *help {
		return nil, errHelp
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q", fs.Arg(0))
	}
	if *ttl != "" {
		d, err := parseTTL(*ttl)
		if err != nil || d.Milliseconds() < 1 {
			return nil, usagef("--ttl %s: want a duration of at least 1ms, e.g. 1h", *ttl)
		}
		cfg.ttlMS = d.Milliseconds()
	}
	if *addr != "" {
		cfg.addr = *addr
	}
	if *socket != "" {
		cfg.addr = *socket
	}
	if *host != "" || *port != 0 {
		if *addr != "" || *socket != "" {
			return nil, usagef("-h/-p name a TCP address: leave out -s and --addr")
		}
		h, p := *host, libcyberdb.DefaultTCPPort
		if h == "" {
			h = "127.0.0.1"
		}
		if *port != 0 {
			if *port < 1 || *port > 65535 {
				return nil, usagef("-p %d: a port is 1 to 65535", *port)
			}
			p = strconv.Itoa(*port)
		}
		cfg.addr = "tcp://" + net.JoinHostPort(h, p)
	}
	switch *keepAlive {
	case 0, 1:
		cfg.keepAlive = *keepAlive == 1
	default:
		return nil, usagef("-k is 1 (keep connections) or 0 (reconnect for each request), not %d", *keepAlive)
	}
	if !cfg.keepAlive && cfg.pooled {
		return nil, usagef("-k 0 reconnects each client's connection; --pooled clients share a Client: leave one out")
	}
	cfg.tablesID = *tablesID
	cfg.dict, cfg.list = benchTables(*tablesID)
	switch {
	case cfg.clients < 1:
		return nil, usagef("-c must be at least 1")
	case cfg.requests < 1:
		return nil, usagef("-n must be at least 1")
	case cfg.size < 0 || cfg.size > 64<<20:
		return nil, usagef("-d must be between 0 and 64MiB")
	case cfg.pipeline < 1:
		return nil, usagef("-P must be at least 1")
	case cfg.keyspace < 0:
		return nil, usagef("-r must not be negative")
	case cfg.processes < 1 || cfg.processes > cfg.clients:
		return nil, usagef("--processes must be between 1 and -c (%d)", cfg.clients)
	case cfg.threads < 0:
		return nil, usagef("--threads must not be negative")
	case cfg.sequential && cfg.processes > 1:
		return nil, usagef("--sequential works in one process: leave out --processes")
	}
	cfg.next = new(atomic.Int64)
	for _, t := range strings.Split(*tests, ",") {
		t = strings.ToLower(strings.TrimSpace(t))
		if t == "" {
			continue
		}
		if !contains(benchTests, t) {
			return nil, usagef("unknown test %q; the tests are %s", t, strings.Join(benchTests, ","))
		}
		cfg.tests = append(cfg.tests, t)
	}
	if len(cfg.tests) == 0 {
		return nil, usagef("-t names no test")
	}
	return cfg, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// errHelp: bench --help.
var errHelp = errors.New("help")

func runBench(e *env, args []string) error {
	cfg, err := parseBench(e, args)
	if errors.Is(err, errHelp) {
		commandUsage(e.stdout, commands["bench"])
		return nil
	}
	if err != nil {
		return err
	}
	path, err := libcyberdb.ResolveAddr(cfg.addr)
	if err != nil {
		return err
	}
	cfg.addr = path
	if cfg.threads > 0 {
		// Like redis-benchmark's --threads: by default one thread drives
		// all the clients of a process.
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(cfg.threads))
	}
	// A benchmark runs as long as it needs: the global --timeout is for
	// single commands.
	ctx := context.WithoutCancel(e.ctx)
	// Ctrl-C (or SIGINT) ends the run, and the tables are dropped all the
	// same; a worker of --processes stops its test and reports.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			cfg.interrupt()
		}
	}()
	if cfg.worker {
		return benchWorker(ctx, cfg, os.Stdin, e.stdout)
	}
	if err := benchSetup(ctx, cfg); err != nil {
		return err
	}
	defer benchCleanup(cfg, e.stderr)
	out := e.stdout
	if cfg.csv {
		fmt.Fprintln(out, `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"`)
	}
	var runner func(test string) (*benchResult, error)
	if cfg.processes > 1 {
		pr, err := startWorkers(ctx, cfg)
		if err != nil {
			return err
		}
		defer pr.close()
		runner = pr.run
		go func() { // pass an interrupt on to the workers
			for !cfg.stop.Load() {
				time.Sleep(50 * time.Millisecond)
			}
			pr.interrupt()
		}()
	} else {
		runner = func(test string) (*benchResult, error) {
			if listTests[test] {
				if err := fillList(ctx, cfg); err != nil {
					return nil, err
				}
			}
			return runTest(ctx, cfg, test, cfg.clients, cfg.requests)
		}
	}
	for {
		for _, test := range cfg.tests {
			if cfg.stop.Load() {
				return interrupted(cfg)
			}
			if cfg.processes > 1 && listTests[test] {
				if err := fillList(ctx, cfg); err != nil {
					return err
				}
			}
			r, err := runner(test)
			if cfg.stop.Load() { // a test cut short has no figures to show
				return interrupted(cfg)
			}
			if err != nil {
				return err
			}
			report(out, cfg, r)
			if r.errors > 0 {
				return fmt.Errorf("%s: %d of %d requests failed; first error: %s", strings.ToUpper(test), r.errors, r.count, r.firstErr)
			}
		}
		if !cfg.loop {
			return nil
		}
	}
}

// interrupted is how a run stopped by Ctrl-C ends: the normal end of -l,
// an error otherwise.
func interrupted(cfg *benchConfig) error {
	if cfg.loop {
		return nil
	}
	return errors.New("interrupted")
}

// benchCleanup drops the run's tables, unless --keep.
func benchCleanup(cfg *benchConfig, stderr io.Writer) {
	if cfg.keep {
		fmt.Fprintf(stderr, "cyberdb bench: kept the tables %s and %s\n", cfg.dict, cfg.list)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := openSetupClient(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "cyberdb bench: could not drop its tables %s and %s: %v\n", cfg.dict, cfg.list, err)
		return
	}
	defer c.Close()
	for _, t := range []string{cfg.dict, cfg.list} {
		if err := c.Drop(ctx, t); err != nil && !errors.Is(err, libcyberdb.ErrNoTable) {
			fmt.Fprintf(stderr, "cyberdb bench: could not drop its table %s: %v\n", t, err)
		}
	}
}

// openSetupClient opens the one-connection client used for setting up.
func openSetupClient(ctx context.Context, cfg *benchConfig) (*libcyberdb.Client, error) {
	return libcyberdb.Open(ctx, cfg.addr, append([]libcyberdb.Option{libcyberdb.WithPoolSize(1), libcyberdb.WithClientName("cyberdb-bench")}, cfg.opts...)...)
}

// benchSetup creates the tables the tests use.
func benchSetup(ctx context.Context, cfg *benchConfig) error {
	c, err := openSetupClient(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	// Fresh tables: any left by an earlier run of the same pid go.
	b := c.Batch()
	for _, t := range []string{cfg.dict, cfg.list} {
		if ok, err := c.Exists(ctx, t); err != nil {
			return err
		} else if ok {
			b.Drop(t)
		}
	}
	b.CreateDict(cfg.dict, nil)
	b.CreateList(cfg.list, nil)
	if err := b.Exec(ctx); err != nil {
		return err
	}
	return nil
}

// fillList makes sure the list holds at least -n values, so the pop
// test never pops from an empty list (redis-benchmark's LPOP follows its
// LPUSH test in the same way).
func fillList(ctx context.Context, cfg *benchConfig) error {
	c, err := openSetupClient(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	l := libcyberdb.NewList[string](c, cfg.list)
	n, err := l.Len(ctx)
	if err != nil {
		return err
	}
	val := strings.Repeat("x", cfg.size)
	chunk := make([]string, 0, 10000)
	for missing := cfg.requests - n; missing > 0; missing -= len(chunk) {
		chunk = chunk[:0]
		for range min(missing, cap(chunk)) {
			chunk = append(chunk, val)
		}
		if _, err := l.Extend(ctx, chunk); err != nil {
			return err
		}
	}
	return nil
}

// benchResult is one test's outcome, mergeable across processes.
type benchResult struct {
	Test     string   `json:"test"`
	Count    int64    `json:"count"`
	Errors   int64    `json:"errors"`
	FirstErr string   `json:"first_err,omitempty"`
	Start    int64    `json:"start"` // unix ns
	End      int64    `json:"end"`
	Hist     []uint64 `json:"hist"` // latency histogram, see bucketOf

	count, errors int64
	firstErr      string
}

// The latency histogram is log-linear: exact below 128 ns, then 64 buckets
// per power of two (under 1.6% error), enough from nanoseconds to minutes.
const histBuckets = 64 * 40

func bucketOf(ns int64) int {
	v := uint64(max(ns, 0))
	if v < 128 {
		return int(v)
	}
	e := bits.Len64(v) - 7
	return min(e*64+int(v>>e), histBuckets-1)
}

func bucketValue(i int) float64 {
	if i < 128 {
		return float64(i)
	}
	e := i/64 - 1
	m := i - e*64
	return (float64(m) + 0.5) * math.Exp2(float64(e))
}

func (r *benchResult) merge(o *benchResult) {
	if r.Hist == nil {
		r.Hist = make([]uint64, histBuckets)
		r.Start, r.End = o.Start, o.End
	}
	r.Count += o.Count
	r.Errors += o.Errors
	if r.FirstErr == "" {
		r.FirstErr = o.FirstErr
	}
	r.Start = min(r.Start, o.Start)
	r.End = max(r.End, o.End)
	for i, n := range o.Hist {
		r.Hist[i] += n
	}
	r.count, r.errors, r.firstErr = r.Count, r.Errors, r.FirstErr
}

// quantile returns the latency in ms at quantile q (0..1).
func (r *benchResult) quantile(q float64) float64 {
	target := uint64(math.Ceil(q * float64(r.Count)))
	target = max(target, 1)
	var seen uint64
	for i, n := range r.Hist {
		seen += n
		if seen >= target {
			return bucketValue(i) / 1e6
		}
	}
	return 0
}

func (r *benchResult) stats() (rps, avg, lo, p50, p95, p99, hi float64) {
	secs := float64(r.End-r.Start) / 1e9
	if secs > 0 {
		rps = float64(r.Count) / secs
	}
	var sum float64
	first, last := -1, 0
	for i, n := range r.Hist {
		if n > 0 {
			if first < 0 {
				first = i
			}
			last = i
			sum += float64(n) * bucketValue(i)
		}
	}
	if r.Count > 0 {
		avg = sum / float64(r.Count) / 1e6
	}
	return rps, avg, bucketValue(max(first, 0)) / 1e6, r.quantile(0.50), r.quantile(0.95), r.quantile(0.99), bucketValue(last) / 1e6
}

func report(w io.Writer, cfg *benchConfig, r *benchResult) {
	rps, avg, lo, p50, p95, p99, hi := r.stats()
	name := strings.ToUpper(r.Test)
	switch {
	case cfg.csv:
		fmt.Fprintf(w, "%q,\"%.2f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\"\n", name, rps, avg, lo, p50, p95, p99, hi)
	case cfg.quiet:
		fmt.Fprintf(w, "%s: %.2f requests per second, p50=%.3f msec\n", name, rps, p50)
	default:
		mode := "connections"
		if cfg.pooled {
			mode = "goroutines on one pooled Client"
		}
		fmt.Fprintf(w, "====== %s ======\n", name)
		fmt.Fprintf(w, "  %d requests completed in %.2f seconds\n", r.Count, float64(r.End-r.Start)/1e9)
		fmt.Fprintf(w, "  %d parallel clients (%s) in %d process(es)\n", cfg.clients, mode, cfg.processes)
		fmt.Fprintf(w, "  %d bytes payload\n  pipeline depth %d\n\n", cfg.size, cfg.pipeline)
		fmt.Fprintf(w, "Summary:\n  throughput summary: %.2f requests per second\n", rps)
		fmt.Fprintf(w, "  latency summary (msec):\n          avg       min       p50       p95       p99       max\n")
		fmt.Fprintf(w, "    %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n\n", avg, lo, p50, p95, p99, hi)
	}
}

// runTest runs one test with the given number of clients and requests in
// this process.
func runTest(ctx context.Context, cfg *benchConfig, test string, clients, requests int) (*benchResult, error) {
	res := &benchResult{Test: test, Hist: make([]uint64, histBuckets)}
	cfg.next.Store(0) // --sequential: each test covers keys 0 .. -n-1
	var (
		remaining atomic.Int64
		mu        sync.Mutex
		wg        sync.WaitGroup
	)
	remaining.Store(int64(requests))
	cfg.active.Store(&remaining)
	defer cfg.active.Store(nil)
	if cfg.stop.Load() { // interrupted before it could register
		remaining.Store(0)
	}
	merge := func(h []uint64, n, errs int64, first string) {
		mu.Lock()
		defer mu.Unlock()
		for i, v := range h {
			res.Hist[i] += v
		}
		res.Count += n
		res.Errors += errs
		if res.FirstErr == "" {
			res.FirstErr = first
		}
	}
	val := strings.Repeat("x", cfg.size)
	stop := progress(cfg, test, &remaining, requests)
	defer stop()

	if cfg.pooled {
		c, err := libcyberdb.Open(ctx, cfg.addr, append([]libcyberdb.Option{libcyberdb.WithClientName("cyberdb-bench")}, cfg.opts...)...)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		// get and set go through a typed handle, as an application's
		// would; the other tests through Do.
		dict := libcyberdb.NewDict[string, string](c, cfg.dict)
		res.Start = time.Now().UnixNano()
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := make([]uint64, histBuckets)
				var n, errs int64
				var first string
				rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
				for remaining.Add(-1) >= 0 {
					var err error
					var t0 time.Time
					switch test {
					case "get":
						key := benchKey("key:", cfg, rng)
						t0 = time.Now()
						if _, err = dict.Get(ctx, key); errors.Is(err, libcyberdb.ErrNotFound) {
							err = nil // as the raw get, which asks for null when absent
						}
					case "set":
						key := benchKey("key:", cfg, rng)
						t0 = time.Now()
						if cfg.ttlMS > 0 {
							err = dict.Set(ctx, key, val, libcyberdb.TTL(time.Duration(cfg.ttlMS)*time.Millisecond))
						} else {
							err = dict.Set(ctx, key, val)
						}
					default:
						op, args := benchRequest(test, cfg, rng, val)
						t0 = time.Now()
						_, err = c.Do(ctx, op, args...)
					}
					h[bucketOf(time.Since(t0).Nanoseconds())]++
					n++
					if err != nil {
						if errs == 0 {
							first = err.Error()
						}
						errs++
					}
				}
				merge(h, n, errs, first)
			}()
		}
		wg.Wait()
		res.End = time.Now().UnixNano()
		res.count, res.errors, res.firstErr = res.Count, res.Errors, res.FirstErr
		return res, nil
	}

	conns := make([]*benchConn, clients)
	for i := range conns {
		bc, err := dialBench(ctx, cfg)
		if err != nil {
			for _, c := range conns[:i] {
				c.nc.Close()
			}
			return nil, err
		}
		conns[i] = bc
	}
	res.Start = time.Now().UnixNano()
	if cfg.keepAlive {
		merge(runConns(conns, test, cfg, &remaining, val))
	} else { // -k 0: each connection is redialed, from its goroutine
		merge(runConnsGoroutines(conns, test, cfg, &remaining, val))
	}
	res.End = time.Now().UnixNano()
	res.count, res.errors, res.firstErr = res.Count, res.Errors, res.FirstErr
	return res, nil
}

// runConnsGoroutines drives each connection from a goroutine of its own
// (runConns, on Linux, an event loop instead) and merges their results.
func runConnsGoroutines(conns []*benchConn, test string, cfg *benchConfig, remaining *atomic.Int64, val string) (h []uint64, n, errs int64, first string) {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	h = make([]uint64, histBuckets)
	for _, bc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer bc.nc.Close()
			bh, bn, berrs, bfirst := bc.run(test, cfg, remaining, val)
			mu.Lock()
			defer mu.Unlock()
			for i, v := range bh {
				h[i] += v
			}
			n += bn
			errs += berrs
			if first == "" {
				first = bfirst
			}
		}()
	}
	wg.Wait()
	return h, n, errs, first
}

// benchKey returns the key of one request, as redis-benchmark names them.
func benchKey(prefix string, cfg *benchConfig, rng *rand.Rand) string {
	if cfg.sequential {
		return fmt.Sprintf("%s%012d", prefix, cfg.next.Add(1)-1)
	}
	if cfg.keyspace == 0 {
		return prefix + "__rand_int__"
	}
	return fmt.Sprintf("%s%012d", prefix, rng.IntN(cfg.keyspace))
}

func benchRequest(test string, cfg *benchConfig, rng *rand.Rand, val string) (wire.Op, []any) {
	switch test {
	case "set":
		if cfg.ttlMS > 0 {
			return wire.OpDSet, []any{cfg.dict, benchKey("key:", cfg, rng), val, map[string]any{"ttl": cfg.ttlMS}}
		}
		return wire.OpDSet, []any{cfg.dict, benchKey("key:", cfg, rng), val}
	case "get":
		return wire.OpDGet, []any{cfg.dict, benchKey("key:", cfg, rng), nil}
	case "incr":
		return wire.OpDIncr, []any{cfg.dict, benchKey("counter:", cfg, rng)}
	case "append":
		return wire.OpLAppend, []any{cfg.list, val}
	case "pop", "rpop":
		return wire.OpLPop, []any{cfg.list}
	case "lpush":
		return wire.OpLAppendLeft, []any{cfg.list, val}
	case "bpop":
		return wire.OpLBPop, []any{[]string{cfg.list}, "right", bpopTimeoutMS}
	}
	return wire.OpPing, nil
}

// bpopTimeoutMS is the time-out of the bpop test's blocking pops: the list
// is filled first, so they find a value at once unless -n outruns it.
const bpopTimeoutMS = 1000

// maxBenchReply bounds a reply frame the load generator accepts.
const maxBenchReply = 1 << 28

// splitReplies calls fn with the body of each whole frame at the start of
// b, in order, and returns the bytes after them: the start of a frame not
// yet complete. A frame declaring more than maxBenchReply bytes is an
// error. fn's body aliases b.
func splitReplies(b []byte, fn func(body []byte)) ([]byte, error) {
	for {
		body, rest, err := wire.SplitFrame(b, maxBenchReply)
		switch {
		case err != nil && err != wire.ErrEmptyFrame:
			var tooLarge *wire.FrameTooLargeError // SplitFrame's only other error
			errors.As(err, &tooLarge)
			return b, fmt.Errorf("a reply frame of %d bytes (more than %d)", tooLarge.Size, tooLarge.Max)
		case err == nil && body == nil:
			return b, nil // the rest of the frame is still to come
		}
		fn(body) // an empty frame (ErrEmptyFrame) has an empty body: not a reply
		b = rest
	}
}

// benchConn is one raw protocol connection, as a redis-benchmark client.
type benchConn struct {
	nc  net.Conn
	r   *bufio.Reader
	out []byte
	buf []byte
	id  uint64
	cfg *benchConfig
}

// dialBench opens one client's connection, as libcyberdb does (Unix
// socket, or TLS and password for tcp://), HELLO included.
func dialBench(ctx context.Context, cfg *benchConfig) (*benchConn, error) {
	nc, err := libcyberdb.DialRaw(ctx, cfg.addr, append([]libcyberdb.Option{libcyberdb.WithClientName("cyberdb-bench")}, cfg.opts...)...)
	if err != nil {
		return nil, err
	}
	return &benchConn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10), cfg: cfg}, nil
}

// redial replaces the connection with a new one (-k 0).
func (bc *benchConn) redial() error {
	bc.nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nb, err := dialBench(ctx, bc.cfg)
	if err != nil {
		return err
	}
	bc.nc = nb.nc
	bc.r.Reset(nb.nc)
	return nil
}

// appendBenchRequest encodes one request frame with no allocation.
func (bc *benchConn) appendBenchRequest(test string, cfg *benchConfig, rng *rand.Rand, val string, keybuf []byte) {
	bc.id++
	dst, start := wire.BeginFrame(bc.out)
	key := func(prefix string) {
		if cfg.keyspace == 0 && !cfg.sequential {
			dst = wire.AppendText(dst, prefix+"__rand_int__")
			return
		}
		k := append(keybuf[:0], prefix...)
		var n uint64
		if cfg.sequential {
			n = uint64(cfg.next.Add(1) - 1)
		} else {
			n = uint64(rng.IntN(cfg.keyspace))
		}
		k = append(k, "000000000000"...)
		for i := len(k) - 1; n > 0 && i >= len(prefix); i-- {
			k[i] = byte('0' + n%10)
			n /= 10
		}
		dst = wire.AppendText(dst, string(k))
	}
	switch test {
	case "ping":
		dst = wire.AppendArrayHeader(dst, 2)
		dst = wire.AppendUint(dst, bc.id)
		dst = wire.AppendUint(dst, uint64(wire.OpPing))
	case "set":
		n := 5
		if cfg.ttlMS > 0 {
			n = 6
		}
		dst = wire.AppendArrayHeader(dst, n)
		dst = wire.AppendUint(dst, bc.id)
		dst = wire.AppendUint(dst, uint64(wire.OpDSet))
		dst = wire.AppendText(dst, cfg.dict)
		key("key:")
		dst = wire.AppendText(dst, val)
		if cfg.ttlMS > 0 {
			dst = wire.AppendMapHeader(dst, 1)
			dst = wire.AppendText(dst, "ttl")
			dst = wire.AppendUint(dst, uint64(cfg.ttlMS))
		}
	case "get":
		dst = wire.AppendArrayHeader(dst, 5)
		dst = wire.AppendUint(dst, bc.id)
		dst = wire.AppendUint(dst, uint64(wire.OpDGet))
		dst = wire.AppendText(dst, cfg.dict)
		key("key:")
		dst = wire.AppendNull(dst)
	case "incr":
		dst = wire.AppendArrayHeader(dst, 4)
		dst = wire.AppendUint(dst, bc.id)
		dst = wire.AppendUint(dst, uint64(wire.OpDIncr))
		dst = wire.AppendText(dst, cfg.dict)
		key("counter:")
	case "append":
		dst = wire.AppendArrayHeader(dst, 4)
		dst = wire.AppendUint(dst, bc.id)
		dst = wire.AppendUint(dst, uint64(wire.OpLAppend))
		dst = wire.AppendText(dst, cfg.list)
		dst = wire.AppendText(dst, val)
	case "pop", "rpop":
		dst = wire.AppendArrayHeader(dst, 3)
		dst = wire.AppendUint(dst, bc.id)
		dst = wire.AppendUint(dst, uint64(wire.OpLPop))
		dst = wire.AppendText(dst, cfg.list)
	case "lpush":
		dst = wire.AppendArrayHeader(dst, 4)
		dst = wire.AppendUint(dst, bc.id)
		dst = wire.AppendUint(dst, uint64(wire.OpLAppendLeft))
		dst = wire.AppendText(dst, cfg.list)
		dst = wire.AppendText(dst, val)
	case "bpop":
		dst = wire.AppendArrayHeader(dst, 5)
		dst = wire.AppendUint(dst, bc.id)
		dst = wire.AppendUint(dst, uint64(wire.OpLBPop))
		dst = wire.AppendArrayHeader(dst, 1)
		dst = wire.AppendText(dst, cfg.list)
		dst = wire.AppendText(dst, "right")
		dst = wire.AppendUint(dst, bpopTimeoutMS)
	}
	bc.out = wire.EndFrame(dst, start)
}

// run drives the connection until the shared budget of requests is spent.
func (bc *benchConn) run(test string, cfg *benchConfig, remaining *atomic.Int64, val string) (h []uint64, n, errs int64, first string) {
	h = make([]uint64, histBuckets)
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	keybuf := make([]byte, 0, 32)
	for {
		k := remaining.Add(-int64(cfg.pipeline))
		batch := cfg.pipeline
		if k < 0 {
			batch += int(k)
		}
		if batch <= 0 {
			return
		}
		if !cfg.keepAlive && bc.id > 0 { // -k 0: a new connection for each pipeline
			if err := bc.redial(); err != nil {
				return h, n, errs + int64(batch), "reconnect: " + err.Error()
			}
		}
		bc.out = bc.out[:0]
		for range batch {
			bc.appendBenchRequest(test, cfg, rng, val, keybuf)
		}
		t0 := time.Now()
		if _, err := bc.nc.Write(bc.out); err != nil {
			return h, n, errs + int64(batch), "write: " + err.Error()
		}
		for range batch {
			body, err := wire.ReadFrame(bc.r, bc.buf, math.MaxInt32)
			if err != nil {
				return h, n, errs + int64(batch), "read: " + err.Error()
			}
			bc.buf = body[:0]
			h[bucketOf(time.Since(t0).Nanoseconds())]++
			n++
			if _, code, ok := wire.PeekReply(body); ok && code == wire.CodeOK {
				continue
			}
			if rep, err := wire.DecodeReply(body); err != nil || rep.Err != nil {
				if errs == 0 {
					first = fmt.Sprint(errors.Join(err, errOrNil(rep.Err)))
				}
				errs++
			}
		}
	}
}

func errOrNil(e *wire.Error) error {
	if e == nil {
		return nil
	}
	return e
}

// progress prints a live line on a terminal while a test runs.
func progress(cfg *benchConfig, test string, remaining *atomic.Int64, total int) (stop func()) {
	if cfg.quiet || cfg.csv || cfg.worker || !isTerminal(os.Stderr) {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(os.Stderr, "\r\033[K")
				return
			case <-t.C:
				doneN := total - int(max(remaining.Load(), 0))
				fmt.Fprintf(os.Stderr, "\r\033[K%s: %.2f requests per second (%d of %d)", strings.ToUpper(test),
					float64(doneN)/time.Since(start).Seconds(), doneN, total)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Multi-process runs: the parent re-executes this command with --worker
// for each process; a worker connects its share of the clients, then for
// each test says "ready", waits for "go" on stdin, runs, and prints its
// result as one JSON line. The parent starts all workers' tests together
// and merges their histograms.

type workerSet struct {
	cmds []*exec.Cmd
	ins  []io.WriteCloser
	outs []*bufio.Scanner
}

func startWorkers(ctx context.Context, cfg *benchConfig) (*workerSet, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ws := &workerSet{}
	for p := range cfg.processes {
		clients := cfg.clients / cfg.processes
		if p < cfg.clients%cfg.processes {
			clients++
		}
		requests := cfg.requests / cfg.processes
		if p < cfg.requests%cfg.processes {
			requests++
		}
		args := append(slices.Clone(cfg.globalArgs), "bench", "--worker", "--addr", cfg.addr, "--tables-id", cfg.tablesID,
			"-k", strconv.Itoa(boolInt(cfg.keepAlive)), "-c", strconv.Itoa(clients), "-n", strconv.Itoa(max(requests, 1)),
			"-d", strconv.Itoa(cfg.size), "-P", strconv.Itoa(cfg.pipeline), "-t", strings.Join(cfg.tests, ","), "-r", strconv.Itoa(cfg.keyspace), "--threads", strconv.Itoa(cfg.threads))
		if cfg.pooled {
			args = append(args, "--pooled")
		}
		if cfg.ttlMS > 0 {
			args = append(args, "--ttl", strconv.FormatInt(cfg.ttlMS, 10)+"ms")
		}
		if cfg.loop {
			args = append(args, "--loop")
		}
		cmd := exec.CommandContext(ctx, self, args...)
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			ws.close()
			return nil, fmt.Errorf("start bench worker: %w", err)
		}
		ws.cmds = append(ws.cmds, cmd)
		ws.ins = append(ws.ins, in)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		ws.outs = append(ws.outs, sc)
	}
	return ws, nil
}

func (ws *workerSet) run(test string) (*benchResult, error) {
	for i, sc := range ws.outs {
		if !sc.Scan() || sc.Text() != "ready "+test {
			return nil, fmt.Errorf("bench worker %d did not get ready for %s: %v", i, test, sc.Err())
		}
	}
	for _, in := range ws.ins {
		if _, err := io.WriteString(in, "go\n"); err != nil {
			return nil, err
		}
	}
	total := &benchResult{Test: test}
	for i, sc := range ws.outs {
		if !sc.Scan() {
			return nil, fmt.Errorf("bench worker %d ended during %s: %v", i, test, sc.Err())
		}
		var r benchResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("bench worker %d: %w", i, err)
		}
		total.merge(&r)
	}
	return total, nil
}

func (ws *workerSet) close() {
	for _, in := range ws.ins {
		in.Close()
	}
	for _, c := range ws.cmds {
		_ = c.Wait()
	}
}

func benchWorker(ctx context.Context, cfg *benchConfig, stdin io.Reader, stdout io.Writer) error {
	in := bufio.NewScanner(stdin)
	for {
		for _, test := range cfg.tests {
			fmt.Fprintf(stdout, "ready %s\n", test)
			if !in.Scan() {
				return nil // the parent ended the run (-l, interrupted)
			}
			if in.Text() != "go" {
				return fmt.Errorf("bench worker: %q from the parent", in.Text())
			}
			r, err := runTest(ctx, cfg, test, cfg.clients, cfg.requests)
			if err != nil {
				return err
			}
			b, _ := json.Marshal(r)
			fmt.Fprintf(stdout, "%s\n", b)
		}
		if !cfg.loop {
			return nil
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// interrupt passes Ctrl-C on to the workers, which end their test early.
func (ws *workerSet) interrupt() {
	for _, c := range ws.cmds {
		if c.Process != nil {
			_ = c.Process.Signal(os.Interrupt)
		}
	}
}
