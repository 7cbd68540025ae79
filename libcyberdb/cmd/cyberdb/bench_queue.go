package main

// cyberdb bench-queue: a work queue between processes, in the shape of
// issue 15's goal and of its Redis twin (webapp-redis queue, go-redis
// RPUSH/BLPOP): one producer (this process) and N consumer processes
// (re-executions of this command) that take items with blocking pops.
//
// Two phases, each on a fresh list:
//   - throughput: the producer appends -n items in chunks of --chunk as
//     fast as it can; each consumer pops one item per blocking pop. Items
//     per second = n / (last receipt - first append).
//   - latency: the producer appends --latency-n items one at a time, at
//     --rate items per second; each item holds its append time, and each
//     consumer records now - that time when it gets it: p50 and p99.
//
// Each consumer ends on a stop item (-1) and reports on stdout.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb"
	flag "github.com/spf13/pflag"
)

func init() {
	register(&command{name: "bench-queue", group: groupBench, args: "[FLAGS]", summary: "measure a work queue: one producer, N consumer processes with blocking pops", max: -1,
		ownFlags: true,
		help: `One producer (this process) and --consumers processes taking items with
blocking pops (lbpop), as the README's queue goal measures it against Redis
(RPUSH/BLPOP; make bench-redis). Its list is _cyberdb.bench.PID.queue,
dropped after the run.

Flags:
  -s, --socket PATH   the daemon's socket (or the global -s/--addr)
  --consumers N       consumer processes (default 8)
  -n N                items of the throughput phase (default 200000)
  --chunk N           items per append of the throughput phase (default 64)
  --latency-n N       items of the latency phase (default 20000)
  --rate N            items per second of the latency phase (default 10000)
  --csv               one line: "queue",items/s,p50 ms,p99 ms

Example:
  cyberdb bench-queue --consumers 8 -n 200000`,
		run: runBenchQueue})
}

type queueBench struct {
	addr      string
	consumers int
	n, chunk  int
	latN      int
	rate      int
	csv       bool
	consumer  bool // a consumer process
	list      string
}

func runBenchQueue(e *env, args []string) error {
	q := &queueBench{addr: e.addr}
	fs := flag.NewFlagSet("bench-queue", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	socket := fs.StringP("socket", "s", "", "")
	fs.IntVar(&q.consumers, "consumers", 8, "")
	fs.IntVarP(&q.n, "requests", "n", 200000, "")
	fs.IntVar(&q.chunk, "chunk", 64, "")
	fs.IntVar(&q.latN, "latency-n", 20000, "")
	fs.IntVar(&q.rate, "rate", 10000, "")
	fs.BoolVar(&q.csv, "csv", false, "")
	fs.BoolVar(&q.consumer, "consumer", false, "")
	fs.StringVar(&q.list, "list", "", "")
	help := fs.BoolP("help", "h", false, "")
	_ = fs.MarkHidden("consumer")
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if *help {
		commandUsage(e.stdout, commands["bench-queue"])
		return nil
	}
	if *socket != "" {
		q.addr = *socket
	}
	if q.consumers < 1 || q.n < 1 || q.chunk < 1 || q.latN < 0 || q.rate < 1 {
		return usagef("--consumers, -n, --chunk and --rate must be at least 1")
	}
	path, err := libcyberdb.ResolveAddr(q.addr)
	if err != nil {
		return err
	}
	q.addr = path
	ctx := context.WithoutCancel(e.ctx)
	if q.consumer {
		return q.consume(ctx, e.stdout)
	}
	c, err := libcyberdb.Open(ctx, q.addr, libcyberdb.WithPoolSize(1))
	if err != nil {
		return err
	}
	defer c.Close()
	q.list = fmt.Sprintf("_cyberdb.bench.%d.queue", os.Getpid())
	_ = c.Drop(ctx, q.list)
	if err := c.CreateList(ctx, q.list, nil); err != nil {
		return err
	}
	defer func() { _ = c.Drop(context.Background(), q.list) }()
	l := libcyberdb.NewList[int64](c, q.list)

	// Throughput.
	recs, start, err := q.phase(ctx, func() error {
		chunk := make([]int64, 0, q.chunk)
		for left := q.n; left > 0; left -= len(chunk) {
			chunk = chunk[:0]
			for range min(left, q.chunk) {
				chunk = append(chunk, 0)
			}
			if _, err := l.Extend(ctx, chunk); err != nil {
				return err
			}
		}
		return nil
	}, l)
	if err != nil {
		return err
	}
	var last int64
	got := 0
	for _, r := range recs {
		last = max(last, r.last)
		got += r.count
	}
	if got != q.n {
		return fmt.Errorf("the consumers got %d items of %d", got, q.n)
	}
	ips := float64(q.n) / time.Duration(last-start.UnixNano()).Seconds()

	// Latency, at a steady rate.
	var lat []int64
	if q.latN > 0 {
		recs, _, err = q.phase(ctx, func() error {
			t0 := time.Now()
			every := time.Second / time.Duration(q.rate)
			for i := range q.latN {
				if d := time.Until(t0.Add(time.Duration(i) * every)); d > 0 {
					time.Sleep(d)
				}
				if _, err := l.Append(ctx, time.Now().UnixNano()); err != nil {
					return err
				}
			}
			return nil
		}, l)
		if err != nil {
			return err
		}
		for _, r := range recs {
			lat = append(lat, r.lat...)
		}
		slices.Sort(lat)
	}
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / 1e6
	}
	if q.csv {
		fmt.Fprintf(e.stdout, "\"queue\",\"%.2f\",\"%.3f\",\"%.3f\"\n", ips, pct(0.50), pct(0.99))
		return nil
	}
	fmt.Fprintf(e.stdout, "queue: 1 producer, %d consumer processes (blocking pops)\n", q.consumers)
	fmt.Fprintf(e.stdout, "  throughput: %d items in chunks of %d: %.0f items/s\n", q.n, q.chunk, ips)
	fmt.Fprintf(e.stdout, "  latency, append to receipt, %d items at %d/s: p50 %.3f ms, p99 %.3f ms\n", len(lat), q.rate, pct(0.50), pct(0.99))
	return nil
}

// consumerReport is what a consumer process says when it stops.
type consumerReport struct {
	count int
	last  int64   // Unix nanoseconds of its last receipt
	lat   []int64 // nanoseconds from append to receipt, of items holding their time
}

// phase starts the consumers, waits until they are all blocked, runs
// produce, stops them with one stop item each and collects their reports.
func (q *queueBench) phase(ctx context.Context, produce func() error, l *libcyberdb.List[int64]) ([]consumerReport, time.Time, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, time.Time{}, err
	}
	type proc struct {
		cmd *exec.Cmd
		out *bufio.Reader
	}
	procs := make([]proc, q.consumers)
	for i := range procs {
		cmd := exec.Command(self, "-s", q.addr, "bench-queue", "--consumer", "--list", q.list)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, time.Time{}, err
		}
		if err := cmd.Start(); err != nil {
			return nil, time.Time{}, err
		}
		procs[i] = proc{cmd, bufio.NewReader(out)}
		defer cmd.Process.Kill() //nolint: a consumer left over by an error
	}
	for _, p := range procs {
		if line, err := p.out.ReadString('\n'); err != nil || line != "ready\n" {
			return nil, time.Time{}, fmt.Errorf("a consumer did not start: %q %v", line, err)
		}
	}
	time.Sleep(50 * time.Millisecond) // their first pops are parked
	start := time.Now()
	if err := produce(); err != nil {
		return nil, start, err
	}
	stops := make([]int64, q.consumers)
	for i := range stops {
		stops[i] = -1
	}
	if _, err := l.Extend(ctx, stops); err != nil {
		return nil, start, err
	}
	recs := make([]consumerReport, q.consumers)
	for i, p := range procs {
		r := &recs[i]
		for {
			line, err := p.out.ReadString('\n')
			if err != nil {
				return nil, start, fmt.Errorf("consumer %d: %v", i, err)
			}
			f := strings.Fields(line)
			if len(f) == 3 && f[0] == "done" {
				r.count, _ = strconv.Atoi(f[1])
				r.last, _ = strconv.ParseInt(f[2], 10, 64)
				break
			}
			if v, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64); err == nil {
				r.lat = append(r.lat, v)
			}
		}
		if err := p.cmd.Wait(); err != nil {
			return nil, start, fmt.Errorf("consumer %d: %v", i, err)
		}
	}
	return recs, start, nil
}

// consume is a consumer process: one connection, one blocking pop per
// item, until the stop item.
func (q *queueBench) consume(ctx context.Context, stdout io.Writer) error {
	c, err := libcyberdb.Open(ctx, q.addr, libcyberdb.WithPoolSize(1))
	if err != nil {
		return err
	}
	defer c.Close()
	l := libcyberdb.NewList[int64](c, q.list)
	w := bufio.NewWriter(stdout)
	fmt.Fprintln(w, "ready")
	w.Flush()
	count, last := 0, int64(0)
	var lat []int64
	for {
		v, ok, err := l.PopWait(ctx, libcyberdb.Left, 0) // BLPOP list 0
		now := time.Now().UnixNano()
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("a pop without a time-out answered none")
		}
		if v < 0 {
			break
		}
		count++
		last = now
		if v > 0 {
			lat = append(lat, now-v)
		}
	}
	for _, d := range lat {
		fmt.Fprintln(w, d)
	}
	fmt.Fprintf(w, "done %d %d\n", count, last)
	return w.Flush()
}
