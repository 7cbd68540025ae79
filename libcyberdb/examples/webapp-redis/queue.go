package main

// webapp-redis queue: the Redis side of "cyberdb bench-queue" (issue 15's
// goal), in the same shape: one producer (this process) and N consumer
// processes taking items with go-redis BLPOP; the producer RPUSHes. The
// phases, the items and the report are those of bench-queue
// (libcyberdb/cmd/cyberdb/bench_queue.go): throughput (-n items in
// RPUSHes of -chunk, as fast as possible), then latency (-latency-n items
// one at a time at -rate per second, each holding its push time).

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

type queueBench struct {
	addr      string
	consumers int
	n, chunk  int
	latN      int
	rate      int
	csv       bool
	key       string
}

func queueMain(addr string, args []string) error {
	q := &queueBench{addr: addr}
	fs := flag.NewFlagSet("queue", flag.ExitOnError)
	fs.IntVar(&q.consumers, "consumers", 8, "consumer processes")
	fs.IntVar(&q.n, "n", 200000, "items of the throughput phase")
	fs.IntVar(&q.chunk, "chunk", 64, "items per RPUSH of the throughput phase")
	fs.IntVar(&q.latN, "latency-n", 20000, "items of the latency phase")
	fs.IntVar(&q.rate, "rate", 10000, "items per second of the latency phase")
	fs.BoolVar(&q.csv, "csv", false, `one line: "queue",items/s,p50 ms,p99 ms`)
	consumer := fs.String("consumer", "", "(internal) consume from this key")
	fs.Parse(args)
	ctx := context.Background()
	if *consumer != "" {
		q.key = *consumer
		return q.consume(ctx, os.Stdout)
	}
	rdb := client(addr)
	defer rdb.Close()
	q.key = fmt.Sprintf("bench-queue:%d", os.Getpid())
	rdb.Del(ctx, q.key)
	defer rdb.Del(context.Background(), q.key)

	recs, start, err := q.phase(ctx, func() error {
		chunk := make([]any, 0, q.chunk)
		for left := q.n; left > 0; left -= len(chunk) {
			chunk = chunk[:0]
			for range min(left, q.chunk) {
				chunk = append(chunk, "0")
			}
			if err := rdb.RPush(ctx, q.key, chunk...).Err(); err != nil {
				return err
			}
		}
		return nil
	}, rdb)
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

	var lat []int64
	if q.latN > 0 {
		recs, _, err = q.phase(ctx, func() error {
			t0 := time.Now()
			every := time.Second / time.Duration(q.rate)
			for i := range q.latN {
				if d := time.Until(t0.Add(time.Duration(i) * every)); d > 0 {
					time.Sleep(d)
				}
				if err := rdb.RPush(ctx, q.key, strconv.FormatInt(time.Now().UnixNano(), 10)).Err(); err != nil {
					return err
				}
			}
			return nil
		}, rdb)
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
		fmt.Printf("\"queue\",\"%.2f\",\"%.3f\",\"%.3f\"\n", ips, pct(0.50), pct(0.99))
		return nil
	}
	fmt.Printf("queue: 1 producer, %d consumer processes (BLPOP)\n", q.consumers)
	fmt.Printf("  throughput: %d items in RPUSHes of %d: %.0f items/s\n", q.n, q.chunk, ips)
	fmt.Printf("  latency, push to receipt, %d items at %d/s: p50 %.3f ms, p99 %.3f ms\n", len(lat), q.rate, pct(0.50), pct(0.99))
	return nil
}

type consumerReport struct {
	count int
	last  int64
	lat   []int64
}

func (q *queueBench) phase(ctx context.Context, produce func() error, rdb *redis.Client) ([]consumerReport, time.Time, error) {
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
		cmd := exec.Command(self, "-redis", q.addr, "queue", "-consumer", q.key)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, time.Time{}, err
		}
		if err := cmd.Start(); err != nil {
			return nil, time.Time{}, err
		}
		procs[i] = proc{cmd, bufio.NewReader(out)}
		defer cmd.Process.Kill()
	}
	for _, p := range procs {
		if line, err := p.out.ReadString('\n'); err != nil || line != "ready\n" {
			return nil, time.Time{}, fmt.Errorf("a consumer did not start: %q %v", line, err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := produce(); err != nil {
		return nil, start, err
	}
	stops := make([]any, q.consumers)
	for i := range stops {
		stops[i] = "-1"
	}
	if err := rdb.RPush(ctx, q.key, stops...).Err(); err != nil {
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

func (q *queueBench) consume(ctx context.Context, stdout io.Writer) error {
	rdb := client(q.addr)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	fmt.Fprintln(w, "ready")
	w.Flush()
	count, last := 0, int64(0)
	var lat []int64
	for {
		res, err := rdb.BLPop(ctx, 0, q.key).Result()
		now := time.Now().UnixNano()
		if err != nil {
			return err
		}
		v, err := strconv.ParseInt(res[1], 10, 64)
		if err != nil {
			return err
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
