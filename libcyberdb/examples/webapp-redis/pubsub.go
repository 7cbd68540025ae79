package main

// webapp-redis pubsub: the Redis side of "cyberdb bench-pubsub" (issue
// 16's goal), in the same shape: one publisher PUBLISHing -n messages of
// -size bytes on one channel in pipelined batches of -chunk, to
// -subscribers go-redis subscriptions (each a connection of its own).
// Reports the deliveries per second from the first publish to the last
// receipt.

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func pubsubMain(addr string, args []string) error {
	fs := flag.NewFlagSet("pubsub", flag.ExitOnError)
	subs := fs.Int("subscribers", 64, "subscribers")
	n := fs.Int("n", 20000, "messages published")
	chunk := fs.Int("chunk", 64, "publishes per pipelined batch")
	size := fs.Int("size", 64, "message bytes")
	csv := fs.Bool("csv", false, `one line: "pubsub",deliveries/s,lost`)
	fs.Parse(args)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb := client(addr)
	defer rdb.Close()
	channel := fmt.Sprintf("bench-pubsub:%d", time.Now().UnixNano())
	var received, lastAt atomic.Int64
	var wg sync.WaitGroup
	var ready sync.WaitGroup
	for range *subs {
		ps := client(addr).Subscribe(ctx, channel)
		if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
			return err
		}
		ch := ps.Channel()
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			defer ps.Close()
			ready.Done()
			got := 0
			for {
				select {
				case <-ch:
					got++
					received.Add(1)
					lastAt.Store(time.Now().UnixNano())
					if got == *n {
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	ready.Wait()
	msg := strings.Repeat("m", *size)
	start := time.Now()
	for sent := 0; sent < *n; {
		k := min(*chunk, *n-sent)
		p := rdb.Pipeline()
		for range k {
			p.Publish(ctx, channel, msg)
		}
		if _, err := p.Exec(ctx); err != nil {
			return err
		}
		sent += k
	}
	want := int64(*subs) * int64(*n)
	idle := time.Now()
	for prev := received.Load(); received.Load() < want; {
		time.Sleep(time.Millisecond)
		if cur := received.Load(); cur != prev {
			prev, idle = cur, time.Now()
		} else if time.Since(idle) > time.Second {
			break
		}
	}
	cancel()
	wg.Wait()
	got := received.Load()
	el := time.Duration(lastAt.Load() - start.UnixNano())
	rate := float64(got) / el.Seconds()
	if *csv {
		fmt.Printf("\"pubsub\",\"%.0f\",\"%d\"\n", rate, want-got)
		return nil
	}
	fmt.Printf("pubsub: 1 publisher, %d subscribers, %d messages of %d bytes: %d deliveries in %v: %.0f deliveries/s (%d lost)\n",
		*subs, *n, *size, got, el.Round(time.Millisecond), rate, want-got)
	return nil
}
