package main

// cyberdb bench-pubsub: one publisher, N subscribers (issue 16's goal,
// against Redis PUBLISH/SUBSCRIBE with go-redis in the same shape:
// libcyberdb/examples/webapp-redis pubsub; make bench-redis).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
	flag "github.com/spf13/pflag"
)

func init() {
	register(&command{name: "bench-pubsub", group: groupBench, args: "[FLAGS]", summary: "measure pub/sub: one publisher, N subscribers, messages delivered per second", max: -1,
		ownFlags: true,
		help: `One publisher publishes -n messages of --size bytes on one channel, in
pipelined batches of --chunk, to --subscribers subscribers (each with a
connection of its own, through libcyberdb's Subscribe). Reports the messages
delivered per second (all subscribers' receipts over the time from the first
publish to the last receipt) and the messages lost (a subscriber too slow
for the daemon's --max-push-buffer).

Flags:
  -s, --socket PATH    the daemon's socket (or the global -s/--addr)
  --subscribers N      subscribers (default 64)
  -n N                 messages published (default 20000)
  --chunk N            publishes per pipelined batch (default 64)
  --size N             message bytes (default 64)
  --csv                one line: "pubsub",deliveries/s,lost

Example:
  cyberdb bench-pubsub --subscribers 64 -n 20000`,
		run: runBenchPubSub})
}

func runBenchPubSub(e *env, args []string) error {
	fs := flag.NewFlagSet("bench-pubsub", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	socket := fs.StringP("socket", "s", "", "")
	subs := fs.Int("subscribers", 64, "")
	n := fs.IntP("requests", "n", 20000, "")
	chunk := fs.Int("chunk", 64, "")
	size := fs.Int("size", 64, "")
	csv := fs.Bool("csv", false, "")
	help := fs.BoolP("help", "h", false, "")
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if *help {
		commandUsage(e.stdout, commands["bench-pubsub"])
		return nil
	}
	if *subs < 1 || *n < 1 || *chunk < 1 || *size < 0 {
		return usagef("--subscribers, -n and --chunk must be at least 1")
	}
	addr := e.addr
	if *socket != "" {
		addr = *socket
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(e.ctx))
	defer cancel()
	c, err := libcyberdb.Open(ctx, addr, libcyberdb.WithPoolSize(1))
	if err != nil {
		return err
	}
	defer c.Close()
	channel := fmt.Sprintf("_cyberdb.bench.%d", time.Now().UnixNano())

	var received, lost atomic.Int64
	var lastAt atomic.Int64
	var wg sync.WaitGroup
	for range *subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := 0
			for _, err := range c.Subscribe(ctx, channel) {
				if errors.Is(err, libcyberdb.ErrLost) {
					lost.Add(1)
					continue
				}
				if err != nil {
					return
				}
				got++
				received.Add(1)
				lastAt.Store(time.Now().UnixNano())
				if got == *n+1 { // the probe and every message
					return
				}
			}
		}()
	}
	// Subscribed: the probe reaches every subscriber.
	deadline := time.Now().Add(30 * time.Second)
	for {
		k, err := c.Publish(ctx, channel, "probe")
		if err != nil {
			return err
		}
		if k == *subs {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d subscribers subscribed after 30s", k, *subs)
		}
		// A probe reached some: they count it; others will count the next.
		time.Sleep(10 * time.Millisecond)
	}
	for received.Load() < int64(*subs) { // (each has at least one probe)
		time.Sleep(time.Millisecond)
	}
	base := received.Load()

	nc, err := libcyberdb.DialRaw(ctx, addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	r := bufio.NewReaderSize(nc, 64<<10)
	msg := strings.Repeat("m", *size)
	start := time.Now()
	var frames []byte
	id := uint64(1)
	for sent := 0; sent < *n; {
		frames = frames[:0]
		k := min(*chunk, *n-sent)
		for range k {
			id++
			frames, _ = wire.AppendRequest(frames, id, wire.OpPublish, channel, msg)
		}
		if _, err := nc.Write(frames); err != nil {
			return err
		}
		for range k {
			body, err := wire.ReadFrame(r, nil, 1<<20)
			if err != nil {
				return err
			}
			if rep, err := wire.DecodeReply(body); err != nil || rep.Err != nil {
				return fmt.Errorf("publish: %v %v", err, rep.Err)
			}
		}
		sent += k
	}
	want := base + int64(*subs)*int64(*n)
	idle := time.Now()
	for prev := received.Load(); received.Load() < want; {
		time.Sleep(time.Millisecond)
		if cur := received.Load(); cur != prev {
			prev, idle = cur, time.Now()
		} else if time.Since(idle) > time.Second {
			break // lost ones never come
		}
	}
	cancel()
	wg.Wait()
	got := received.Load() - base
	el := time.Duration(lastAt.Load() - start.UnixNano())
	rate := float64(got) / el.Seconds()
	if *csv {
		fmt.Fprintf(e.stdout, "\"pubsub\",\"%.0f\",\"%d\"\n", rate, int64(*subs)*int64(*n)-got)
		return nil
	}
	fmt.Fprintf(e.stdout, "pubsub: 1 publisher, %d subscribers, %d messages of %d bytes: %d deliveries in %v: %.0f deliveries/s (%d lost, %d lost notices)\n",
		*subs, *n, *size, got, el.Round(time.Millisecond), rate, int64(*subs)*int64(*n)-got, lost.Load())
	return nil
}
