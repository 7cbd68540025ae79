// Command webapp-redis is libcyberdb/examples/webapp with Redis in place of
// cyberdbd: the same worker processes behind one port, the same handler and
// JSON, but each worker reads the value with a go-redis client. It exists
// to compare the two under the same load (README, "Performance"); it is a
// module of its own so that cyberdb's module does not depend on a Redis
// client.
//
//	webapp-redis [-redis /tmp/redis.sock] init
//	webapp-redis [-redis /tmp/redis.sock] serve -workers 4 -addr :8080
//	webapp-redis [-redis /tmp/redis.sock] queue -consumers 8 -n 200000
//
// queue is the Redis side of "cyberdb bench-queue" (queue.go).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix(fmt.Sprintf("webapp-redis[%d]: ", os.Getpid()))
	fs := flag.NewFlagSet("webapp-redis", flag.ExitOnError)
	addr := fs.String("redis", "/tmp/redis.sock", "Redis's address: a Unix socket path, or host:port")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage:\n  webapp-redis [-redis ADDR] init\n  webapp-redis [-redis ADDR] serve [-workers N] [-addr :8080]\n  webapp-redis [-redis ADDR] queue [-consumers N] [-n N] [-csv]\n  webapp-redis [-redis ADDR] pubsub [-subscribers N] [-n N] [-csv]\n\nflags:\n")
		fs.PrintDefaults()
	}
	fs.Parse(os.Args[1:])
	if fs.NArg() == 0 {
		fs.Usage()
		os.Exit(2)
	}
	args := fs.Args()[1:]
	var err error
	switch fs.Arg(0) {
	case "init":
		err = initKey(*addr)
	case "serve":
		err = serve(*addr, args)
	case "worker": // started by serve, with the listener as fd 3
		err = worker(*addr)
	case "queue": // the queue benchmark's Redis side (queue.go)
		err = queueMain(*addr, args)
	case "pubsub": // the pub/sub benchmark's Redis side (pubsub.go)
		err = pubsubMain(*addr, args)
	default:
		fs.Usage()
		os.Exit(2)
	}
	if err != nil {
		log.Fatal(err)
	}
}

func client(addr string) *redis.Client {
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	return redis.NewClient(&redis.Options{Network: network, Addr: addr})
}

// initKey is the tutorial's init step: the hash "centre" and its content.
func initKey(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := client(addr)
	defer c.Close()
	if err := c.HSet(ctx, "centre", "content", "Hello CyberDB!").Err(); err != nil {
		return err
	}
	return c.HSetNX(ctx, "flags", "beta", "off").Err()
}

// sessionTTL is how long a visitor's session lives after its last visit,
// as in the cyberdb web app.
const sessionTTL = 30 * time.Minute

// serve is webapp's: listen once, start the workers on the inherited socket.
func serve(addr string, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	workers := fs.Int("workers", 4, "worker processes")
	listen := fs.String("addr", ":8080", "TCP address to listen on")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		return err
	}
	ln.Close()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	var cmds []*exec.Cmd
	for i := 0; i < *workers; i++ {
		cmd := exec.Command(os.Args[0], "-redis", addr, "worker")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.ExtraFiles = []*os.File{f}
		if err := cmd.Start(); err != nil {
			return err
		}
		cmds = append(cmds, cmd)
	}
	f.Close()
	fmt.Printf("listening on %s with %d workers\n", ln.Addr(), len(cmds))

	exited := make(chan error, len(cmds))
	var wg sync.WaitGroup
	for _, cmd := range cmds {
		wg.Add(1)
		go func() { defer wg.Done(); exited <- cmd.Wait() }()
	}
	var firstErr error
	select {
	case sig := <-sigs:
		log.Printf("%v: stopping the workers", sig)
	case err := <-exited:
		firstErr = fmt.Errorf("a worker exited: %v", err)
	}
	for _, cmd := range cmds {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	wg.Wait()
	return firstErr
}

// worker serves HTTP on the inherited listener with its own Redis client
// (go-redis's default pool: 10 connections per CPU).
func worker(addr string) error {
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		return fmt.Errorf("worker needs the listener as fd 3 (start it with 'webapp-redis serve'): %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c := client(addr)
	defer c.Close()
	pid := strconv.Itoa(os.Getpid())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		// The same work as libcyberdb/examples/webapp's handler, as a
		// go-redis user writes it: the content, the feature flag (a
		// round trip each time: go-redis has no client-side cache), and
		// the visitor's session count with its deadline pushed back, in
		// one MULTI/EXEC.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Worker-Pid", pid)
		fail := func(err error) {
			w.WriteHeader(http.StatusInternalServerError)
			json.NewEncoder(w).Encode(map[string]any{"code": 0, "error": err.Error()})
		}
		content, err := c.HGet(r.Context(), "centre", "content").Result()
		if err != nil {
			fail(err)
			return
		}
		beta, err := c.HGet(r.Context(), "flags", "beta").Result()
		if errors.Is(err, redis.Nil) {
			beta, err = "off", nil
		}
		if err != nil {
			fail(err)
			return
		}
		sid := ""
		if ck, err := r.Cookie("session"); err == nil && len(ck.Value) == 32 {
			sid = ck.Value
		} else {
			var b [16]byte
			rand.Read(b[:])
			sid = hex.EncodeToString(b[:])
		}
		var visits *redis.IntCmd
		if _, err := c.TxPipelined(r.Context(), func(p redis.Pipeliner) error {
			visits = p.Incr(r.Context(), "sessions:"+sid)
			p.Expire(r.Context(), "sessions:"+sid, sessionTTL)
			return nil
		}); err != nil {
			fail(err)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "session", Value: sid, Path: "/", HttpOnly: true,
			SameSite: http.SameSiteLaxMode, MaxAge: int(sessionTTL / time.Second)})
		json.NewEncoder(w).Encode(struct {
			Code    int    `json:"code"`
			Content string `json:"content"`
			Visits  int    `json:"visits"`
			Beta    string `json:"beta"`
		}{1, content, int(visits.Val()), beta})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutCtx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
