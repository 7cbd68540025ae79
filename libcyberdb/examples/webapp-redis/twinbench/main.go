// Command twinbench runs cyberdb and Redis side by side on cases that
// need a client of each (make bench-redis, bench/bench-redis.sh):
//
//	twinbench -redis R.sock -cyberdb C.sock stall -case lsort -n 2000000
//	twinbench -redis R.sock -cyberdb C.sock pooled -c 256 -d 5s
//
// stall (issue 17 §1): one client runs a slow operation on a big table
// (lsort: Redis SORT ... STORE; ltolist: LRANGE 0 -1; drop: DEL of a hash;
// bigreq: one 4 MiB request of tiny items, RPUSH for Redis) while another
// client, on its own connection, reads a key of another table without a
// pause. It prints, per system, how long the slow operation took and the
// latency of the reads made meanwhile: the stall a slow op causes others.
//
// pooled (issue 17 §4): c goroutines call Get through one client:
// libcyberdb.Client (automatic pipelining) against rueidis on Redis (the
// same technique), and print the calls per second.
//
// Output: CSV lines "system,case,op_ms,gets,p50_us,p99_us,max_us" (stall)
// or "system,pooled,c,rps" (pooled), one per system.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
	"github.com/redis/rueidis"
)

func main() {
	fs := flag.NewFlagSet("twinbench", flag.ExitOnError)
	rsock := fs.String("redis", "/tmp/redis.sock", "Redis's Unix socket")
	csock := fs.String("cyberdb", "./cyberdb.sock", "cyberdbd's Unix socket")
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() < 1 {
		fail(fmt.Errorf("usage: twinbench [-redis SOCK] [-cyberdb SOCK] stall|pooled [flags]"))
	}
	ctx := context.Background()
	switch cmd, args := fs.Arg(0), fs.Args()[1:]; cmd {
	case "stall":
		sf := flag.NewFlagSet("stall", flag.ExitOnError)
		which := sf.String("case", "lsort", "lsort, ltolist, drop or bigreq")
		n := sf.Int("n", 2_000_000, "elements of the big table (bigreq: bytes of the request)")
		_ = sf.Parse(args)
		fail(stall(ctx, *rsock, *csock, *which, *n))
	case "pooled":
		pf := flag.NewFlagSet("pooled", flag.ExitOnError)
		c := pf.Int("c", 256, "goroutines calling Get")
		d := pf.Duration("d", 5*time.Second, "duration of each run")
		_ = pf.Parse(args)
		fail(pooled(ctx, *rsock, *csock, *c, *d))
	default:
		fail(fmt.Errorf("unknown command %q (stall, pooled)", cmd))
	}
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "twinbench:", err)
		os.Exit(1)
	}
}

// system is one side of the comparison.
type system struct {
	name  string
	setup func(ctx context.Context) error // the big table, and the key the reader reads
	get   func(ctx context.Context) error // one read of the other table
	slow  func(ctx context.Context) error // the slow operation
	close func()
}

func stall(ctx context.Context, rsock, csock, which string, n int) error {
	r, err := redisSystem(rsock, which, n)
	if err != nil {
		return err
	}
	defer r.close()
	c, err := cyberdbSystem(ctx, csock, which, n)
	if err != nil {
		return err
	}
	defer c.close()
	for _, s := range []*system{r, c} {
		if err := s.setup(ctx); err != nil {
			return fmt.Errorf("%s setup: %w", s.name, err)
		}
		if err := measure(ctx, s, which); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// measure reads without a pause while s runs its slow op, and prints the
// latency of the reads that overlapped it.
func measure(ctx context.Context, s *system, which string) error {
	type sample struct{ start, end time.Time }
	var (
		samples []sample
		stop    atomic.Bool
		rerr    error
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			t0 := time.Now()
			if err := s.get(ctx); err != nil {
				rerr = err
				return
			}
			samples = append(samples, sample{t0, time.Now()})
		}
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	err := s.slow(ctx)
	end := time.Now()
	time.Sleep(50 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		return err
	}
	if rerr != nil {
		return rerr
	}
	var lat []time.Duration
	for _, x := range samples {
		if x.end.After(start) && x.start.Before(end) {
			lat = append(lat, x.end.Sub(x.start))
		}
	}
	if len(lat) == 0 {
		return fmt.Errorf("no read overlapped the slow op")
	}
	slices.Sort(lat)
	us := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e3, 'f', 1, 64) }
	fmt.Printf("%s,%s,%s,%d,%s,%s,%s\n", s.name, which, strconv.FormatFloat(float64(end.Sub(start))/1e6, 'f', 1, 64),
		len(lat), us(lat[len(lat)/2]), us(lat[len(lat)*99/100]), us(lat[len(lat)-1]))
	return nil
}

func randomInts(n int) []int64 {
	r := rand.New(rand.NewPCG(1, 2))
	v := make([]int64, n)
	for i := range v {
		v[i] = r.Int64N(1 << 40)
	}
	return v
}

const chunk = 10_000

func redisSystem(sock, which string, n int) (*system, error) {
	// Two clients: the reader's connection is its own.
	// Slow ops take seconds on a loaded machine: longer than rueidis's
	// default time-out for a reply.
	opt := rueidis.ClientOption{InitAddress: []string{sock}, DisableCache: true, ConnWriteTimeout: 5 * time.Minute,
		DialFn: func(string, *net.Dialer, *tls.Config) (net.Conn, error) { return net.Dial("unix", sock) }}
	reader, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, err
	}
	hog, err := rueidis.NewClient(opt)
	if err != nil {
		reader.Close()
		return nil, err
	}
	s := &system{name: "redis", close: func() { reader.Close(); hog.Close() }}
	do := func(ctx context.Context, c rueidis.Client, cmd rueidis.Completed) error {
		return c.Do(ctx, cmd).Error()
	}
	s.get = func(ctx context.Context) error { return do(ctx, reader, reader.B().Get().Key("other").Build()) }
	s.setup = func(ctx context.Context) error {
		if err := do(ctx, hog, hog.B().Flushall().Build()); err != nil {
			return err
		}
		if err := do(ctx, hog, hog.B().Set().Key("other").Value("v").Build()); err != nil {
			return err
		}
		switch which {
		case "lsort", "ltolist":
			v := randomInts(n)
			for i := 0; i < n; i += chunk {
				var els []string
				for _, x := range v[i:min(n, i+chunk)] {
					els = append(els, strconv.FormatInt(x, 10))
				}
				if err := do(ctx, hog, hog.B().Rpush().Key("big").Element(els...).Build()); err != nil {
					return err
				}
			}
		case "drop":
			for i := 0; i < n; i += chunk {
				cmd := hog.B().Hset().Key("big").FieldValue()
				for j := i; j < min(n, i+chunk); j++ {
					cmd = cmd.FieldValue("key-"+strconv.Itoa(j), strconv.Itoa(j))
				}
				if err := do(ctx, hog, cmd.Build()); err != nil {
					return err
				}
			}
		}
		return nil
	}
	switch which {
	case "lsort":
		s.slow = func(ctx context.Context) error { return do(ctx, hog, hog.B().Sort().Key("big").Store("big").Build()) }
	case "ltolist":
		s.slow = func(ctx context.Context) error {
			return do(ctx, hog, hog.B().Lrange().Key("big").Start(0).Stop(-1).Build())
		}
	case "drop":
		s.slow = func(ctx context.Context) error { return do(ctx, hog, hog.B().Del().Key("big").Build()) }
	case "bigreq":
		// RPUSH of one-character elements: 7 bytes each in RESP.
		els := make([]string, n/7)
		for i := range els {
			els[i] = "0"
		}
		cmd := hog.B().Rpush().Key("huge").Element(els...).Build()
		s.slow = func(ctx context.Context) error { return do(ctx, hog, cmd) }
	default:
		return nil, fmt.Errorf("unknown case %q (lsort, ltolist, drop, bigreq)", which)
	}
	return s, nil
}

func cyberdbSystem(ctx context.Context, sock, which string, n int) (*system, error) {
	reader, err := libcyberdb.Open(ctx, sock, libcyberdb.WithPoolSize(1))
	if err != nil {
		return nil, err
	}
	hog, err := libcyberdb.Open(ctx, sock, libcyberdb.WithPoolSize(1))
	if err != nil {
		reader.Close()
		return nil, err
	}
	s := &system{name: "cyberdb", close: func() { reader.Close(); hog.Close() }}
	s.get = func(ctx context.Context) error { _, err := reader.Do(ctx, wire.OpDGet, "other", "k"); return err }
	s.setup = func(ctx context.Context) error {
		for _, t := range []string{"other", "big", "huge"} {
			_, _ = hog.Do(ctx, wire.OpDrop, t)
		}
		if _, err := hog.Do(ctx, wire.OpCreateDict, "other", map[string]string{"k": "v"}); err != nil {
			return err
		}
		switch which {
		case "lsort", "ltolist":
			if _, err := hog.Do(ctx, wire.OpCreateList, "big"); err != nil {
				return err
			}
			v := randomInts(n)
			for i := 0; i < n; i += chunk {
				if _, err := hog.Do(ctx, wire.OpLExtend, "big", v[i:min(n, i+chunk)]); err != nil {
					return err
				}
			}
		case "drop":
			if _, err := hog.Do(ctx, wire.OpCreateDict, "big"); err != nil {
				return err
			}
			for i := 0; i < n; i += chunk {
				m := make(map[string]int, chunk)
				for j := i; j < min(n, i+chunk); j++ {
					m["key-"+strconv.Itoa(j)] = j
				}
				if _, err := hog.Do(ctx, wire.OpDUpdate, "big", m); err != nil {
					return err
				}
			}
		}
		return nil
	}
	switch which {
	case "lsort":
		s.slow = func(ctx context.Context) error { _, err := hog.Do(ctx, wire.OpLSort, "big"); return err }
	case "ltolist":
		s.slow = func(ctx context.Context) error { _, err := hog.Do(ctx, wire.OpLToList, "big"); return err }
	case "drop":
		s.slow = func(ctx context.Context) error { _, err := hog.Do(ctx, wire.OpDrop, "big"); return err }
	case "bigreq":
		// A create_list of one-byte items (zeros): one byte each in CBOR,
		// encoded before the clock starts.
		zeros := make([]int, n-64)
		nc, err := libcyberdb.DialRaw(ctx, sock)
		if err != nil {
			return nil, err
		}
		frame, err := wire.AppendRequest(nil, 2, wire.OpCreateList, "huge", zeros)
		if err != nil {
			return nil, err
		}
		prev := s.close
		s.close = func() { nc.Close(); prev() }
		s.slow = func(ctx context.Context) error {
			if _, err := nc.Write(frame); err != nil {
				return err
			}
			body, err := wire.ReadFrame(nc, nil, -1)
			if err != nil {
				return err
			}
			r, err := wire.DecodeReply(body)
			if err != nil {
				return err
			}
			if r.Err != nil {
				return r.Err
			}
			return nil
		}
	default:
		return nil, fmt.Errorf("unknown case %q (lsort, ltolist, drop, bigreq)", which)
	}
	return s, nil
}

// pooled: c goroutines call Get through one client, for d; prints the
// calls per second of each system.
func pooled(ctx context.Context, rsock, csock string, c int, d time.Duration) error {
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rsock}, DisableCache: true,
		DialFn: func(string, *net.Dialer, *tls.Config) (net.Conn, error) { return net.Dial("unix", rsock) }})
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := rc.Do(ctx, rc.B().Set().Key("k").Value("v").Build()).Error(); err != nil {
		return err
	}
	cc, err := libcyberdb.Open(ctx, csock)
	if err != nil {
		return err
	}
	defer cc.Close()
	dict := libcyberdb.NewDict[string, string](cc, "pooled")
	_, _ = cc.Do(ctx, wire.OpCreateDict, "pooled")
	if err := dict.Set(ctx, "k", "v"); err != nil {
		return err
	}
	run := func(name string, get func() error) error {
		var calls atomic.Int64
		var firstErr atomic.Value
		deadline := time.Now().Add(d)
		var wg sync.WaitGroup
		for range c {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := int64(0)
				for time.Now().Before(deadline) {
					if err := get(); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					n++
				}
				calls.Add(n)
			}()
		}
		wg.Wait()
		if err, _ := firstErr.Load().(error); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Printf("%s,pooled,%d,%.0f\n", name, c, float64(calls.Load())/d.Seconds())
		return nil
	}
	get := rc.B().Get().Key("k").Build().Pin()
	if err := run("redis", func() error { return rc.Do(ctx, get).Error() }); err != nil {
		return err
	}
	return run("cyberdb", func() error { _, err := dict.Get(ctx, "k"); return err })
}
