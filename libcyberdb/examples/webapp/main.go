// Command webapp is CyberDB's Flask + gunicorn tutorial in Go: a web
// server run as several worker processes behind one listening port, each
// with its own libcyberdb Client, all reading the same table from cyberdbd.
//
//	webapp init                         # create the table "centre"
//	webapp serve -workers 4 -addr :8080 # GET / -> {"code":1,"content":"Hello CyberDB!","visits":1}
//
// See README.md next to this file.
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
	"sync"
	"syscall"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix(fmt.Sprintf("webapp[%d]: ", os.Getpid()))
	fs := flag.NewFlagSet("webapp", flag.ExitOnError)
	socket := fs.String("socket", "", "cyberdbd's socket (default: $CYBERDB_ADDR, else the daemon's default)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage:\n  webapp [-socket PATH] init\n  webapp [-socket PATH] serve [-workers N] [-addr :8080]\n\nflags:\n")
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
		err = initTables(*socket)
	case "serve":
		err = serve(*socket, args)
	case "worker": // started by serve, with the listener as fd 3
		err = worker(*socket)
	default:
		fs.Usage()
		os.Exit(2)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// sessionTTL is how long a visitor's session lasts after their last
// request: each request pushes the deadline back (a sliding session).
const sessionTTL = 30 * time.Minute

// initTables is the tutorial's init step: the table and its content, and
// the sessions table, whose entries expire by themselves.
func initTables(socket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := libcyberdb.Open(ctx, socket)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.CreateDict(ctx, "centre", nil, libcyberdb.IfNotExists()); err != nil {
		return err
	}
	if err := c.CreateDict(ctx, "sessions", nil, libcyberdb.DefaultTTL(sessionTTL), libcyberdb.IfNotExists()); err != nil {
		return err
	}
	// A feature flag every worker reads on every request, through its
	// read cache: a change shows in every worker within a millisecond or
	// so, with no restart and no polling.
	if err := c.CreateDict(ctx, "flags", nil, libcyberdb.IfNotExists()); err != nil {
		return err
	}
	if _, err := libcyberdb.NewDict[string, string](c, "flags").SetIfAbsent(ctx, "beta", "off"); err != nil {
		return err
	}
	return libcyberdb.NewDict[string, string](c, "centre").Set(ctx, "content", "Hello CyberDB!")
}

// serve listens once and starts the workers, which all accept on the same
// socket (passed as an inherited file descriptor, the way gunicorn's
// master shares its socket). It prints "listening on ADDR" when ready,
// forwards SIGINT/SIGTERM to the workers, and exits when they have.
func serve(socket string, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	workers := fs.Int("workers", 4, "worker processes")
	addr := fs.String("addr", ":8080", "TCP address to listen on")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		return err
	}
	ln.Close() // the workers hold the socket now

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	var cmds []*exec.Cmd
	for i := 0; i < *workers; i++ {
		cmd := exec.Command(os.Args[0], "-socket", socket, "worker")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.ExtraFiles = []*os.File{f} // fd 3 in the worker
		cmd.Env = append(os.Environ(), "WEBAPP_WORKER="+strconv.Itoa(i))
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

// worker serves HTTP on the inherited listener with its own Client.
func worker(socket string) error {
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		return fmt.Errorf("worker needs the listener as fd 3 (start it with 'webapp serve'): %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c, err := libcyberdb.Open(ctx, socket) // one Client per process, shared by every request
	if err != nil {
		return err
	}
	defer c.Close()
	centre := libcyberdb.NewDict[string, string](c, "centre")
	sessions := libcyberdb.NewDict[string, int](c, "sessions")
	// Served from this process's memory after the first read; the daemon
	// invalidates it when the flag changes (README, "the read cache").
	flags := libcyberdb.NewCachedDict[string, string](c, "flags")
	pid := strconv.Itoa(os.Getpid())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Worker-Pid", pid)
		fail := func(err error) {
			w.WriteHeader(http.StatusInternalServerError)
			json.NewEncoder(w).Encode(map[string]any{"code": 0, "error": err.Error()})
		}
		content, err := centre.Get(r.Context(), "content")
		if err != nil {
			fail(err)
			return
		}
		beta, err := flags.GetOr(r.Context(), "beta", "off")
		if err != nil {
			fail(err)
			return
		}
		// The visitor's session, whichever worker answers: its visit count,
		// and a deadline pushed back to sessionTTL from now by every visit,
		// in one atomic batch. A session that expired starts again at 1.
		sid := ""
		if ck, err := r.Cookie("session"); err == nil && len(ck.Value) == 32 {
			sid = ck.Value
		} else {
			var b [16]byte
			rand.Read(b[:])
			sid = hex.EncodeToString(b[:])
		}
		b := c.Batch()
		visits := sessions.In(b).Incr(sid, 1)
		sessions.In(b).Expire(sid, sessionTTL)
		if err := b.Exec(r.Context()); err != nil {
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
		}{1, content, visits.Value(), beta})
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
